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
            ["services", "collector"]
            | ["services", "collector", "event"]
            | ["services", "collector", "event", "1.0"] => Route::HecEvent,
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
        BodyError::TooManyEvents { limit } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
            .with_detail(serde_json::json!({ "limit": limit })),
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
            "application/json"
                | "application/x-ndjson"
                | "application/ndjson"
                | "application/jsonl"
                | "application/x-jsonlines"
                | "application/jsonlines"
                | "text/plain"
                | ""
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
        other => {
            Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("unsupported content encoding {other:?}"))
                .with_detail(serde_json::json!({ "accepted": "gzip, identity" })))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::TimeZone;

    use super::*;
    use crate::auth::{mint_hs256, Claims};
    use crate::clock::ManualClock;
    use crate::config::AuthConfig;
    use crate::error::{StoreError, StoreResult};

    const SECRET: &str = "ingest-test-secret-0123456789abcdef";

    /// Records what was sent; `fail` makes every send fail like an unreachable SQS.
    #[derive(Default)]
    struct RecordingQueue {
        sent: Mutex<Vec<String>>,
        fail: bool,
    }

    #[async_trait]
    impl QueueSender for RecordingQueue {
        async fn send(&self, bodies: &[String]) -> StoreResult<()> {
            if self.fail {
                return Err(StoreError::Transient("connection refused".into()));
            }
            self.sent.lock().unwrap().extend(bodies.iter().cloned());
            Ok(())
        }
    }

    impl RecordingQueue {
        fn events(&self) -> Vec<Event> {
            self.sent
                .lock()
                .unwrap()
                .iter()
                .flat_map(|b| serde_json::from_str::<crate::model::EventBatch>(b).unwrap().events)
                .collect()
        }
    }

    fn handler(queue: Arc<RecordingQueue>, limits: IngestLimits) -> IngestHandler<RecordingQueue> {
        let auth =
            Authenticator::from_config(&AuthConfig { secret: Some(SECRET.into()), ..Default::default() }).unwrap();
        let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap());
        IngestHandler::new(queue, Arc::new(auth), limits, Arc::new(clock))
    }

    fn token(role: Role) -> String {
        let exp = (chrono::Utc::now().timestamp() + 600) as u64;
        mint_hs256(SECRET, &Claims { sub: "s".into(), tenant: "acme".into(), role, exp, iss: None, aud: None }).unwrap()
    }

    fn req(path: &str, ct: Option<&str>) -> http::request::Builder {
        let mut b = http::Request::builder()
            .method("POST")
            .uri(path)
            .header("authorization", format!("Bearer {}", token(Role::Sender)));
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        b
    }

    async fn call(h: &IngestHandler<RecordingQueue>, r: HttpRequest) -> (StatusCode, serde_json::Value) {
        let resp = h.handle(r).await;
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        (resp.status(), serde_json::from_slice(resp.body()).unwrap())
    }

    fn post(path: &str, ct: Option<&str>, body: &str) -> HttpRequest {
        req(path, ct).body(bytes::Bytes::from(body.to_string())).unwrap()
    }

    const SSH_FAIL: &str =
        "<38>Mar 10 11:59:01 web-1 sshd[1]: Failed password for root from 203.0.113.7 port 4000 ssh2";

    #[tokio::test]
    async fn accepts_json_ndjson_and_syslog_with_202_and_queues_every_event_for_the_tokens_tenant() {
        let q = Arc::new(RecordingQueue::default());
        let h = handler(q.clone(), IngestLimits::default());
        let (s, b) = call(
            &h,
            post("/v1/events", Some("application/json"), r#"{"message":"hello","tenant":"evil","host":"h1"}"#),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        assert_eq!(b["accepted"], 1);
        let (s, b) =
            call(&h, post("/v1/events", Some("application/x-ndjson"), "{\"message\":\"a\"}\n{\"message\":\"b\"}\n"))
                .await;
        assert_eq!((s, b["accepted"].as_u64()), (StatusCode::ACCEPTED, Some(2)));
        let (s, b) = call(&h, post("/v1/syslog", Some("text/plain"), SSH_FAIL)).await;
        assert_eq!((s, b["accepted"].as_u64()), (StatusCode::ACCEPTED, Some(1)));
        let events = q.events();
        assert_eq!(events.len(), 4);
        assert!(events.iter().all(|e| e.tenant == "acme"), "the payload's tenant is ignored");
    }

    #[tokio::test]
    async fn partial_batches_list_the_rejected_index_and_accept_the_rest() {
        let q = Arc::new(RecordingQueue::default());
        let h = handler(q.clone(), IngestLimits::default());
        let (s, b) = call(&h, post("/v1/events", None, "{\"message\":\"ok\"}\n{not json\n{\"message\":\"ok2\"}")).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        assert_eq!(b["accepted"], 2);
        assert_eq!(b["rejected"][0]["index"], 1);
        assert_eq!(q.events().len(), 2);
    }

    #[tokio::test]
    async fn unreadable_bodies_are_400_naming_where() {
        let h = handler(Arc::new(RecordingQueue::default()), IngestLimits::default());
        let (s, b) = call(&h, post("/v1/events", Some("application/json"), "[{\"message\": \"x\"},")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert!(b["error"].is_string());
        assert!(b["detail"]["line"].is_number(), "{b}");
        let (s, b) = call(&h, post("/v1/events", None, "")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        let (s, b) = call(&h, post("/v1/events", None, "{oops}\n{also bad}\n")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(b["detail"]["line"], 1, "{b}");
        // Valid JSON, but no event is acceptable: 400 listing each rejection.
        let body = "{\"message\":\"a\",\"src_ip\":\"not-an-ip\"}\n{\"message\":\"b\",\"timestamp\":\"yesterday\"}\n";
        let (s, b) = call(&h, post("/v1/events", None, body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(b["detail"]["rejected"].as_array().map(Vec::len), Some(2), "{b}");
        let r = req("/v1/syslog", None).body(bytes::Bytes::from_static(b"\xff\xfe bad utf8")).unwrap();
        let (s, b) = call(&h, r).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(b["detail"]["byte_offset"], 0);
    }

    #[tokio::test]
    async fn limits_give_413_and_content_types_415() {
        let limits = IngestLimits { max_body_bytes: 1000, max_event_bytes: 500, max_events_per_request: 3 };
        let h = handler(Arc::new(RecordingQueue::default()), limits);
        let (s, b) = call(&h, post("/v1/syslog", None, &"x".repeat(1001))).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
        assert_eq!(b["detail"]["limit"], 1000);
        let (s, _) = call(&h, post("/v1/syslog", None, &"x".repeat(1000))).await;
        assert_ne!(s, StatusCode::PAYLOAD_TOO_LARGE, "exactly at the limit is allowed");
        let (s, b) = call(&h, post("/v1/syslog", None, "a\nb\nc\nd\n")).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
        let (s, b) = call(&h, post("/v1/events", Some("application/xml"), "<a/>")).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{b}");
        assert!(b["detail"]["accepted"].is_string());
        let (s, _) = call(&h, post("/v1/syslog", Some("application/json"), "x")).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let r = req("/v1/syslog", None).header("content-encoding", "br").body(bytes::Bytes::from_static(b"x")).unwrap();
        assert_eq!(call(&h, r).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[tokio::test]
    async fn gzip_bodies_are_decoded_and_bombs_stop_at_the_limit() {
        let limits = IngestLimits { max_body_bytes: 10_000, ..IngestLimits::default() };
        let q = Arc::new(RecordingQueue::default());
        let h = handler(q.clone(), limits);
        let r = req("/v1/syslog", None)
            .header("content-encoding", "gzip")
            .body(bytes::Bytes::from(gzip(SSH_FAIL.as_bytes())))
            .unwrap();
        let (s, b) = call(&h, r).await;
        assert_eq!((s, b["accepted"].as_u64()), (StatusCode::ACCEPTED, Some(1)), "{b}");
        let bomb = gzip(&vec![b'a'; 10_000_000]);
        assert!(bomb.len() < 20_000);
        let r = req("/v1/syslog", None).header("content-encoding", "gzip").body(bytes::Bytes::from(bomb)).unwrap();
        assert_eq!(call(&h, r).await.0, StatusCode::PAYLOAD_TOO_LARGE);
        let r = req("/v1/syslog", None)
            .header("content-encoding", "gzip")
            .body(bytes::Bytes::from_static(b"not gzip"))
            .unwrap();
        assert_eq!(call(&h, r).await.0, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn auth_failures_are_401_and_never_queue_anything() {
        let q = Arc::new(RecordingQueue::default());
        let h = handler(q.clone(), IngestLimits::default());
        let no_auth =
            http::Request::builder().method("POST").uri("/v1/syslog").body(bytes::Bytes::from(SSH_FAIL)).unwrap();
        let (s, b) = call(&h, no_auth).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(b["error"].as_str().unwrap().contains("Authorization"));
        let bad = http::Request::builder()
            .method("POST")
            .uri("/v1/syslog")
            .header("authorization", "Bearer not.a.jwt")
            .body(bytes::Bytes::from(SSH_FAIL))
            .unwrap();
        assert_eq!(call(&h, bad).await.0, StatusCode::UNAUTHORIZED);
        assert!(q.events().is_empty());
    }

    #[tokio::test]
    async fn a_queue_failure_is_503_so_the_sender_retries() {
        let h = handler(Arc::new(RecordingQueue { fail: true, ..Default::default() }), IngestLimits::default());
        let (s, b) = call(&h, post("/v1/syslog", None, SSH_FAIL)).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!b["error"].as_str().unwrap().contains("refused"), "backend details stay in the logs");
    }

    #[tokio::test]
    async fn wrong_method_unknown_path_and_health() {
        let h = handler(Arc::new(RecordingQueue::default()), IngestLimits::default());
        let r = http::Request::builder().method("GET").uri("/v1/events").body(bytes::Bytes::new()).unwrap();
        assert_eq!(call(&h, r).await.0, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(call(&h, post("/v1/nothing", None, "x")).await.0, StatusCode::NOT_FOUND);
        let r = http::Request::builder().method("GET").uri("/healthz").body(bytes::Bytes::new()).unwrap();
        assert_eq!(call(&h, r).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn hec_answers_like_splunk_and_takes_the_splunk_scheme() {
        let q = Arc::new(RecordingQueue::default());
        let h = handler(q.clone(), IngestLimits::default());
        let body = r#"{"event":"Failed password for root from 203.0.113.9 port 1 ssh2","time":1773143941.5,"host":"h","sourcetype":"linux_secure"}{"event":{"message":"x"}}"#;
        let r = http::Request::builder()
            .method("POST")
            .uri("/services/collector/event")
            .header("authorization", format!("Splunk {}", token(Role::Sender)))
            .body(bytes::Bytes::from(body))
            .unwrap();
        let (s, b) = call(&h, r).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(
            (b["text"].as_str(), b["code"].as_u64(), b["accepted"].as_u64()),
            (Some("Success"), Some(0), Some(2))
        );
        let r = http::Request::builder()
            .method("POST")
            .uri("/services/collector/raw")
            .body(bytes::Bytes::from("x"))
            .unwrap();
        let (s, b) = call(&h, r).await;
        assert_eq!((s, b["code"].as_u64()), (StatusCode::UNAUTHORIZED, Some(3)));
        let r = http::Request::builder()
            .method("GET")
            .uri("/services/collector/health/1.0")
            .body(bytes::Bytes::new())
            .unwrap();
        assert_eq!(call(&h, r).await.1["code"], 17);
    }

    #[tokio::test]
    async fn thousands_of_events_are_packed_into_few_messages_within_the_sqs_limit() {
        let q = Arc::new(RecordingQueue::default());
        let h = handler(q.clone(), IngestLimits::default());
        let body: String = (0..5000)
            .map(|i| format!("<38>Mar 10 11:{:02}:{:02} web-1 sshd[{i}]: Failed password for root from 198.51.100.{} port {} ssh2\n", i / 60 % 60, i % 60, i % 250, 1024 + i))
            .collect();
        let (s, b) = call(&h, post("/v1/syslog", None, &body)).await;
        assert_eq!((s, b["accepted"].as_u64()), (StatusCode::ACCEPTED, Some(5000)), "{b}");
        let sent = q.sent.lock().unwrap().clone();
        assert!(sent.iter().all(|m| m.len() <= MAX_QUEUE_MESSAGE_BYTES));
        assert!(sent.len() < 5000 / 100, "{} messages for 5000 events", sent.len());
        assert_eq!(q.events().len(), 5000);
    }
}
