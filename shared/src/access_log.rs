//! Operator logging of refused and failed requests: every 4xx and 5xx answer is logged once, by the handler
//! that gives it, with the route, the tenant (once the token is verified), the status and the reason — never
//! the token, the query string (it may hold `?token=`) or the body. 4xx are `info` (a sender's mistake, visible
//! at the default level so an operator can see why a shipper fails), 5xx `warn`.
//!
//! Each handler runs a request inside [`span`]; [`set_tenant`] records the tenant on it after authentication,
//! and [`rejected`] / [`error_response`] log inside it, so the line carries the span's fields (as `span` in
//! JSON logs).

use http::StatusCode;

use crate::api::{ApiError, HttpRequest, HttpResponse};

/// The span a request is handled in: `method`, `route` (the path, without the query string), `tenant` (empty
/// until [`set_tenant`]).
pub fn span(req: &HttpRequest) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %req.method(),
        route = %req.uri().path(),
        tenant = tracing::field::Empty,
    )
}

/// Records the authenticated tenant on the current request span.
pub fn set_tenant(tenant: &str) {
    tracing::Span::current().record("tenant", tenant);
}

/// Logs a refused (4xx) or failed (5xx) answer once.
pub fn rejected(status: StatusCode, reason: &str) {
    let code = status.as_u16();
    if status.is_server_error() {
        tracing::warn!(status = code, reason, "request failed");
    } else if status.is_client_error() {
        tracing::info!(status = code, reason, "request refused");
    }
}

/// The answer of an error, logged.
pub fn error_response(e: ApiError) -> HttpResponse {
    rejected(e.status, &e.error);
    e.into_response()
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use tracing::Instrument;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_refusal_is_one_line_with_route_tenant_status_and_reason_but_no_token_or_query() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let req = http::Request::builder()
            .method("POST")
            .uri("/services/collector/event?token=SECRET-TOKEN")
            .header("authorization", "Splunk SECRET-TOKEN")
            .body(bytes::Bytes::from_static(b"{\"event\": \"SECRET-BODY\"}"))
            .expect("request");
        async {
            set_tenant("acme");
            let _ = error_response(ApiError::bad_request("no valid events in body"));
        }
        .instrument(span(&req))
        .await;
        let text = String::from_utf8(out.0.lock().expect("log buffer").clone()).expect("utf-8");
        let lines: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).expect("a JSON log line")).collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line = &lines[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["fields"]["status"], 400);
        assert_eq!(line["fields"]["reason"], "no valid events in body");
        assert_eq!(line["span"]["route"], "/services/collector/event");
        assert_eq!(line["span"]["tenant"], "acme");
        assert!(!text.contains("SECRET"), "{text}");
    }
}
