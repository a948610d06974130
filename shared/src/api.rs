//! HTTP plumbing shared by every HTTP function: JSON bodies, JSON errors, query strings. The handlers take
//! and return plain `http` types, so Lambda (`lambda_http`) and `vigil serve` run exactly the same code.

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use serde::Serialize;

use crate::auth::AuthError;

pub type HttpRequest = http::Request<Bytes>;
pub type HttpResponse = http::Response<Bytes>;

/// An error answer: `{"error": "...", "detail": ...}` with a 4xx or 5xx status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub detail: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError { status, error: error.into(), detail: None }
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> ApiError {
        self.detail = Some(detail);
        self
    }

    pub fn bad_request(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, error)
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not found")
    }

    /// A backend failure: the client should retry. The cause is logged, not returned.
    pub fn unavailable() -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable; retry the request")
    }

    pub fn into_response(self) -> HttpResponse {
        let mut body = serde_json::json!({ "error": self.error });
        if let Some(d) = self.detail {
            body["detail"] = d;
        }
        json(self.status, &body)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match e {
            AuthError::Unauthenticated(m) => ApiError::new(StatusCode::UNAUTHORIZED, m),
            AuthError::Forbidden { .. } => ApiError::new(StatusCode::FORBIDDEN, e.to_string()),
        }
    }
}

/// A JSON response.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> HttpResponse {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{\"error\":\"response encoding failed\"}".to_vec());
    let mut resp = http::Response::new(Bytes::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Decoded `key=value` pairs of the request's query string.
pub fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    req.uri().query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

pub fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    query_pairs(req).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The path split into non-empty segments.
pub fn path_segments(req: &HttpRequest) -> Vec<&str> {
    req.uri().path().split('/').filter(|s| !s.is_empty()).collect()
}

/// `GET /healthz`, answered by every function.
pub fn healthz() -> HttpResponse {
    json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}
