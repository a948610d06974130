//! The ingest function: authenticates a sender, reads the body (JSON, NDJSON, syslog, Splunk HEC), and queues
//! the events packed many to an SQS message. It answers 2xx only once the queue holds every accepted event.

use std::io::Read;
use std::sync::Arc;

use http::{header, Method, StatusCode};
use serde::Serialize;

use crate::api::{healthz, json, path_segments, query_param, ApiError, HttpRequest, HttpResponse};
use crate::auth::{Authenticator, Role};
use crate::clock::Clock;
use crate::config::IngestLimits;
use crate::model::Event;
use crate::pack::pack_encoded;
use crate::parse::{self, BodyError, ParseContext, Parsed, Rejection};
use crate::ports::{QueueSender, MAX_QUEUE_MESSAGE_BYTES};

/// The body formats ingest understands, one per route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Events,
    Syslog,
    HecEvent,
    HecRaw,
}

impl Route {
    fn is_hec(self) -> bool {
        matches!(self, Route::HecEvent | Route::HecRaw)
    }
}

/// What ingest answers on success.
#[derive(Debug, Serialize, PartialEq)]
pub struct Accepted {
    pub accepted: usize,
    pub ids: Vec<String>,
    pub rejected: Vec<Rejection>,
}

pub struct IngestHandler<Q: QueueSender + ?Sized> {
    queue: Arc<Q>,
    auth: Arc<Authenticator>,
    limits: IngestLimits,
    clock: Arc<dyn Clock>,
}

impl<Q: QueueSender + ?Sized> IngestHandler<Q> {
    pub fn new(queue: Arc<Q>, auth: Arc<Authenticator>, limits: IngestLimits, clock: Arc<dyn Clock>) -> Self {
        IngestHandler { queue, auth, limits, clock }
    }

    /// The ingest routes, or `None` when the request is for another function.
    pub fn route(req: &HttpRequest) -> Option<Result<Route, ApiError>> {
        let segs = path_segments(req);
        let route = match segs.as_slice() {
            ["v1", "events"] => Route::Events,
            ["v1", "syslog"] => Route::Syslog,
            ["services", "collector"] | ["services", "collector", "event"] | ["services", "collector", "event", "1.0"] => {
                Route::HecEvent
            }
            ["services", "collector", "raw"] | ["services", "collector", "raw", "1.0"] => Route::HecRaw,
            _ => return None,
        };
        if req.method() != Method::POST {
            return Some(Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "use POST")));
        }
        Some(Ok(route))
    }

    pub async fn handle(&self, req: HttpRequest) -> HttpResponse {
        let segs = path_segments(&req);
        match (req.method(), segs.as_slice()) {
            (&Method::GET, ["healthz"]) => return healthz(),
            (&Method::GET, ["services", "collector", "health", ..]) => {
                return json(StatusCode::OK, &serde_json::json!({"text": "HEC is healthy", "code": 17}))
            }
            _ => {}
        }
        let route = match Self::route(&req) {
            Some(Ok(r)) => r,
            Some(Err(e)) => return e.into_response(),
            None => return ApiError::not_found().into_response(),
        };
        match self.ingest(route, &req).await {
            Ok(accepted) if route.is_hec() => {
                let mut body = serde_json::to_value(&accepted).unwrap_or_default();
                body["text"] = "Success".into();
                body["code"] = 0.into();
                json(StatusCode::OK, &body)
            }
            Ok(accepted) => json(StatusCode::ACCEPTED, &accepted),
            Err(e) if route.is_hec() => hec_error(e),
            Err(e) => e.into_response(),
        }
    }

    async fn ingest(&self, route: Route, req: &HttpRequest) -> Result<Accepted, ApiError> {
        let claims = self.auth.authorize(req.headers(), Role::Sender, route.is_hec())?;
        check_content_type(route, req)?;
        let body = decoded_body(req, self.limits.max_body_bytes)?;
        let text = std::str::from_utf8(&body).map_err(|e| {
            ApiError::bad_request("body is not valid UTF-8")
                .with_detail(serde_json::json!({ "byte_offset": e.valid_up_to() }))
        })?;
        let source = query_param(req, "sourcetype").or_else(|| query_param(req, "source"));
        let host = query_param(req, "host");
        let ctx = ParseContext {
            tenant: &claims.tenant,
            received_at: self.clock.now(),
            max_event_bytes: self.limits.max_event_bytes,
            max_events: self.limits.max_events_per_request,
            source: source.as_deref(),
            host: host.as_deref(),
        };
        let parsed = match route {
            Route::Events => parse::parse_json_events(text, &ctx),
            Route::Syslog => parse::parse_syslog_lines(text, &ctx),
            Route::HecEvent => parse::parse_hec_events(text, &ctx),
            Route::HecRaw => parse::parse_hec_raw(text, &ctx),
        }
        .map_err(body_error)?;
        let Parsed { events, rejected } = parsed;
        if events.is_empty() {
            let error = if rejected.is_empty() { "no events in body" } else { "no valid events in body" };
            return Err(ApiError::bad_request(error).with_detail(serde_json::json!({ "rejected": rejected })));
        }
        self.enqueue(&events).await?;
        tracing::info!(tenant = %claims.tenant, sub = %claims.sub, accepted = events.len(), rejected = rejected.len(), "ingested");
        Ok(Accepted { accepted: events.len(), ids: events.into_iter().map(|e| e.id).collect(), rejected })
    }

    async fn enqueue(&self, events: &[Event]) -> Result<(), ApiError> {
        let encoded: Vec<String> = events
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("event encoding failed: {e}")))?;
        let bodies = pack_encoded(&encoded, "events", MAX_QUEUE_MESSAGE_BYTES).map_err(|i| {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "event too large for the queue")
                .with_detail(serde_json::json!({ "index": i }))
        })?;
        self.queue.send(&bodies).await.map_err(|e| {
            tracing::error!(error = %e, messages = bodies.len(), "events queue send failed");
            ApiError::unavailable()
        })
    }
}

fn body_error(e: BodyError) -> ApiError {
    match e {
        BodyError::Malformed { error, line, column } => {
            ApiError::bad_request(error).with_detail(serde_json::json!({ "line": line, "column": column }))
        }
        BodyError::TooManyEvents { limit } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).with_detail(serde_json::json!({ "limit": limit }))
        }
    }
}

/// Splunk clients read `text` and `code`; keep `error` too so every Vigil error has the same shape.
fn hec_error(e: ApiError) -> HttpResponse {
    let code = match e.status {
        StatusCode::UNAUTHORIZED => 3,
        StatusCode::FORBIDDEN => 4,
        StatusCode::SERVICE_UNAVAILABLE => 9,
        _ if e.error.starts_with("no ") => 5,
        _ => 6,
    };
    let mut body = serde_json::json!({ "error": e.error, "text": e.error, "code": code });
    if let Some(d) = e.detail {
        body["detail"] = d;
    }
    json(e.status, &body)
}

fn check_content_type(route: Route, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else { return Ok(()) };
    let ct = value.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let ok = match route {
        Route::Events => matches!(
            ct.as_str(),
            "application/json" | "application/x-ndjson" | "application/ndjson" | "application/jsonl"
                | "application/x-jsonlines" | "application/jsonlines" | "text/plain" | ""
        ),
        Route::Syslog | Route::HecRaw => ct.starts_with("text/") || ct == "application/octet-stream" || ct.is_empty(),
        Route::HecEvent => ct == "application/json" || ct.starts_with("text/") || ct.is_empty(),
    };
    if ok {
        Ok(())
    } else {
        let accepted = match route {
            Route::Events => "application/json, application/x-ndjson",
            Route::Syslog | Route::HecRaw => "text/plain",
            Route::HecEvent => "application/json",
        };
        Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("unsupported content type {ct:?}"))
            .with_detail(serde_json::json!({ "accepted": accepted })))
    }
}

/// The body after `Content-Encoding` (gzip is what Vector and Fluent Bit send), never more than `limit` bytes.
fn decoded_body(req: &HttpRequest, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("body larger than {limit} bytes"))
            .with_detail(serde_json::json!({ "limit": limit }))
    };
    let raw = req.body();
    let encoding = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" => {
            if raw.len() > limit {
                return Err(too_large());
            }
            Ok(raw.to_vec())
        }
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            // Read one byte past the limit to tell "exactly at the limit" from "over it" (gzip bombs stop here).
            flate2::read::MultiGzDecoder::new(raw.as_ref())
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::bad_request(format!("gzip body cannot be decoded: {e}")))?;
            if out.len() > limit {
                return Err(too_large());
            }
            Ok(out)
        }
        other => Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("unsupported content encoding {other:?}"))
            .with_detail(serde_json::json!({ "accepted": "gzip, identity" }))),
    }
}
