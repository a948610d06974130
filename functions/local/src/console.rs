//! The triage console: three static files (functions/local/console/) compiled into the binary, so `vigil serve`
//! serves them at `/console/` with nothing else to install. The same files can be hosted beside a deployed API
//! (same origin, e.g. a CloudFront behaviour for `/console/*`); they call the API at their own origin unless
//! the sign-in form names another.

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use vigil::api::HttpResponse;

const INDEX: &str = include_str!("../console/index.html");
const APP: &str = include_str!("../console/app.js");
const STYLE: &str = include_str!("../console/style.css");

/// The console's files: (path under `/console/`, content type, content).
pub const FILES: [(&str, &str, &str); 3] = [
    ("index.html", "text/html; charset=utf-8", INDEX),
    ("app.js", "text/javascript; charset=utf-8", APP),
    ("style.css", "text/css; charset=utf-8", STYLE),
];

/// Only the console's own script and style; API calls to the same origin or, when signed in with another API,
/// to that one (connect-src https:).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self' https: http://127.0.0.1:* http://localhost:*; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// The answer for a `GET` of `path`, when it is the console's.
pub fn serve(path: &str) -> Option<HttpResponse> {
    if path == "/console" {
        let mut resp = http::Response::new(Bytes::new());
        *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
        resp.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/console/"));
        return Some(resp);
    }
    let name = path.strip_prefix("/console/")?;
    let name = if name.is_empty() { "index.html" } else { name };
    let (_, content_type, body) = FILES.iter().find(|(n, _, _)| *n == name)?;
    let mut resp = http::Response::new(Bytes::from_static(body.as_bytes()));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_is_served_from_the_binary() {
        let index = serve("/console/").expect("index");
        assert_eq!(index.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(std::str::from_utf8(index.body()).unwrap_or_default().contains("app.js"));
        assert!(index.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap_or_default()
            .contains("script-src 'self'"));
        assert_eq!(
            serve("/console/app.js").expect("script").headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(serve("/console").expect("redirect").status(), StatusCode::MOVED_PERMANENTLY);
        assert!(serve("/console/../Cargo.toml").is_none());
        assert!(serve("/v1/tickets").is_none());
    }
}
