//! The ingest function: authenticates a sender, reads the body (JSON, NDJSON, syslog, Splunk HEC), and queues
//! the events packed many to an SQS message. It answers 2xx only once the queue holds every accepted event.

use std::io::Read;
use std::sync::Arc;

use http::{header, Method, StatusCode};
use serde::Serialize;
use tracing::Instrument;

use crate::api::{healthz, json, path_segments, query_param, ApiError, HttpRequest, HttpResponse};
use crate::auth::{request_token, Authenticator, Claims, CredentialError, Role, Schemes};
use crate::clock::Clock;
use crate::config::{HecConfig, IngestLimits};
use crate::hec::{self, HecCode, HecError};
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
    /// `POST /services/collector/ack`: which acknowledgement ids are durable.
    HecAck,
}

impl Route {
    fn is_hec(self) -> bool {
        matches!(self, Route::HecEvent | Route::HecRaw | Route::HecAck)
    }
}

/// The header Splunk clients name their data channel in (or the `channel` query parameter).
pub const CHANNEL_HEADER: &str = "x-splunk-request-channel";

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
    hec: HecConfig,
}

impl<Q: QueueSender + ?Sized> IngestHandler<Q> {
    pub fn new(queue: Arc<Q>, auth: Arc<Authenticator>, limits: IngestLimits, clock: Arc<dyn Clock>) -> Self {
        IngestHandler { queue, auth, limits, clock, hec: HecConfig::default() }
    }

    /// The HEC options (acknowledgement, query-string tokens); the defaults otherwise.
    pub fn with_hec(mut self, hec: HecConfig) -> Self {
        self.hec = hec;
        self
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
            ["services", "collector", "ack"] | ["services", "collector", "ack", "1.0"] => Route::HecAck,
            _ => return None,
        };
        if req.method() != Method::POST {
            return Some(Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "use POST")));
        }
        Some(Ok(route))
    }

    pub async fn handle(&self, req: HttpRequest) -> HttpResponse {
        let span = crate::access_log::span(&req);
        self.respond(req).instrument(span).await
    }

    async fn respond(&self, req: HttpRequest) -> HttpResponse {
        let segs = path_segments(&req);
        match (req.method(), segs.as_slice()) {
            (&Method::GET, ["healthz"]) => return healthz(),
            (&Method::GET, ["services", "collector", "health", ..]) => return hec::healthy(),
            _ => {}
        }
        let route = match Self::route(&req) {
            Some(Ok(r)) => r,
            Some(Err(e)) if path_segments(&req).first() == Some(&"services") => {
                crate::access_log::rejected(e.status, &e.error);
                return HecError::from(e).into_response();
            }
            Some(Err(e)) => return crate::access_log::error_response(e),
            None => return crate::access_log::error_response(ApiError::not_found()),
        };
        if route.is_hec() {
            return match self.hec(route, &req).await {
                Ok(body) => json(StatusCode::OK, &body),
                Err(e) => {
                    crate::access_log::rejected(e.status, &format!("{} (HEC code {})", e.error, e.code.number()));
                    e.into_response()
                }
            };
        }
        let result = match self.authorize(&req) {
            Ok(claims) => self.ingest(route, &req, &claims).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(accepted) => json(StatusCode::ACCEPTED, &accepted),
            Err(e) => crate::access_log::error_response(e),
        }
    }

    fn authorize(&self, req: &HttpRequest) -> Result<Claims, ApiError> {
        let claims = self.auth.authorize(req.headers(), Role::Sender, false)?;
        crate::access_log::set_tenant(&claims.tenant);
        Ok(claims)
    }

    /// A HEC request, answered with Splunk's codes: the token, the data channel, then the events (or the ack
    /// query).
    async fn hec(&self, route: Route, req: &HttpRequest) -> Result<serde_json::Value, HecError> {
        let claims = self.hec_claims(req)?;
        let channel = match req.headers().get(CHANNEL_HEADER) {
            Some(v) => Some(v.to_str().unwrap_or_default().trim().to_string()),
            None => query_param(req, "channel"),
        };
        if let Some(c) = channel.as_deref() {
            if self.hec.ack && !hec::valid_channel(c) {
                return Err(HecError::new(HecCode::InvalidChannel, "the data channel must be a GUID")
                    .with_detail(serde_json::json!({ "channel": c })));
            }
        }
        if route == Route::HecAck {
            if !self.hec.ack {
                return Err(HecError::new(HecCode::AckDisabled, "indexer acknowledgement is off (VIGIL_HEC_ACK)"));
            }
            let Some(channel) = channel else {
                return Err(HecError::new(
                    HecCode::ChannelMissing,
                    "name the data channel in X-Splunk-Request-Channel or ?channel=",
                ));
            };
            return hec::answer_acks(&claims.tenant, &channel, req.body());
        }
        let accepted = self.ingest(route, req, &claims).await.map_err(hec_body_error)?;
        let mut body = serde_json::to_value(&accepted).unwrap_or_default();
        body["text"] = HecCode::Success.text().into();
        body["code"] = HecCode::Success.number().into();
        if let Some(c) = channel.filter(|_| self.hec.ack) {
            // Issued only now that the queue holds every accepted event: the ack is durable from the start.
            body["ackId"] = hec::issue_ack(&claims.tenant, &c).into();
        }
        Ok(body)
    }

    /// The token of a HEC request: `Authorization` (Splunk, Bearer or Basic), or `?token=` where enabled.
    fn hec_claims(&self, req: &HttpRequest) -> Result<Claims, HecError> {
        let token = match request_token(req.headers(), Schemes::Hec) {
            Ok(t) => t,
            Err(CredentialError::Missing) => match query_param(req, "token") {
                Some(t) if self.hec.query_token && !t.trim().is_empty() => t.trim().to_string(),
                Some(_) if !self.hec.query_token => {
                    return Err(HecError::new(
                        HecCode::QueryAuthDisabled,
                        "?token= is not accepted (VIGIL_HEC_QUERY_TOKEN); send Authorization: Splunk <token>",
                    ))
                }
                _ => return Err(HecError::new(HecCode::TokenRequired, "missing Authorization header")),
            },
            Err(CredentialError::Malformed(m)) => return Err(HecError::new(HecCode::InvalidAuthorization, m)),
        };
        let claims = self
            .auth
            .authorize_token(&token, Role::Sender)
            .map_err(|e| HecError::new(HecCode::InvalidToken, e.to_string()))?;
        crate::access_log::set_tenant(&claims.tenant);
        Ok(claims)
    }

    async fn ingest(&self, route: Route, req: &HttpRequest, claims: &Claims) -> Result<Accepted, ApiError> {
        if !route.is_hec() {
            // HEC clients send any content type (curl's form default, syslog-ng's none): the body decides there.
            check_content_type(route, req)?;
        }
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
            Route::HecRaw | Route::HecAck => parse::parse_hec_raw(text, &ctx),
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

/// An ingest error as HEC answers it: an empty body is `No data`, a request none of whose events is valid
/// fails with the first rejection's code (`Event field is required`, …) and its `invalid-event-number`.
fn hec_body_error(e: ApiError) -> HecError {
    let first_rejection = e
        .detail
        .as_ref()
        .and_then(|d| d.get("rejected"))
        .and_then(|r| r.get(0))
        .map(|r| (r["index"].as_u64().unwrap_or(0) as usize, r["error"].as_str().unwrap_or_default().to_string()));
    let empty = e.status == StatusCode::BAD_REQUEST && (e.error == "empty body" || e.error == "no events in body");
    let mut out = HecError::from(e);
    if empty {
        out.code = HecCode::NoData;
    } else if let Some((index, error)) = first_rejection {
        out.code = HecCode::of_rejection(&error);
        out.invalid_event = Some(index);
    }
    out
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
        Route::Syslog => ct.starts_with("text/") || ct == "application/octet-stream" || ct.is_empty(),
        Route::HecEvent | Route::HecRaw | Route::HecAck => true,
    };
    if ok {
        Ok(())
    } else {
        let accepted = match route {
            Route::Events => "application/json, application/x-ndjson",
            _ => "text/plain",
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
        mint_hs256(
            SECRET,
            &Claims { sub: "s".into(), tenant: "acme".into(), role, exp, iss: None, aud: None, scope: None },
        )
        .unwrap()
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
        assert_eq!(
            (s, b["code"].as_u64(), b["text"].as_str()),
            (StatusCode::UNAUTHORIZED, Some(2), Some("Token is required"))
        );
        let r = http::Request::builder()
            .method("GET")
            .uri("/services/collector/health/1.0")
            .body(bytes::Bytes::new())
            .unwrap();
        assert_eq!(call(&h, r).await.1["code"], 17);
    }

    fn hec(path: &str, headers: &[(&str, &str)], body: &str) -> HttpRequest {
        let mut b = http::Request::builder().method("POST").uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(bytes::Bytes::from(body.to_string())).unwrap()
    }

    const CHANNEL: &str = "FE0ECFAD-13D5-401B-847D-77833BD77131";

    #[tokio::test]
    async fn hec_takes_any_content_type_and_the_splunk_bearer_and_basic_schemes() {
        use base64::Engine as _;
        let q = Arc::new(RecordingQueue::default());
        let h = handler(q.clone(), IngestLimits::default());
        let splunk = format!("Splunk {}", token(Role::Sender));
        let basic =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("x:{}", token(Role::Sender))));
        let bearer = format!("Bearer {}", token(Role::Sender));
        // Splunk's own curl example sends application/x-www-form-urlencoded; syslog-ng's http() sends none.
        for (auth, ct) in [
            (&splunk, Some("application/x-www-form-urlencoded")),
            (&basic, None),
            (&bearer, Some("application/octet-stream")),
            (&splunk, Some("text/plain")),
        ] {
            let mut headers = vec![("authorization", auth.as_str())];
            if let Some(ct) = ct {
                headers.push(("content-type", ct));
            }
            let (s, b) = call(&h, hec("/services/collector/event", &headers, r#"{"event":"hello"}"#)).await;
            assert_eq!((s, b["code"].as_u64()), (StatusCode::OK, Some(0)), "{ct:?}: {b}");
            let (s, b) = call(&h, hec("/services/collector/raw", &headers, "hello raw\n")).await;
            assert_eq!((s, b["code"].as_u64()), (StatusCode::OK, Some(0)), "{ct:?}: {b}");
        }
        assert_eq!(q.events().len(), 8);
    }

    #[tokio::test]
    async fn hec_errors_carry_splunks_codes_and_texts() {
        let q = Arc::new(RecordingQueue::default());
        let h = handler(q.clone(), IngestLimits::default());
        let splunk = format!("Splunk {}", token(Role::Sender));
        let auth = [("authorization", splunk.as_str())];
        let cases: Vec<(HttpRequest, StatusCode, u64)> = vec![
            (hec("/services/collector/event", &[], "{\"event\":\"x\"}"), StatusCode::UNAUTHORIZED, 2),
            (hec("/services/collector/event", &[("authorization", "Token abc")], "x"), StatusCode::UNAUTHORIZED, 3),
            (hec("/services/collector/event", &[("authorization", "Splunk not.a.jwt")], "x"), StatusCode::FORBIDDEN, 4),
            (hec("/services/collector/event", &auth, ""), StatusCode::BAD_REQUEST, 5),
            (hec("/services/collector/event", &auth, "{\"event\": oops}"), StatusCode::BAD_REQUEST, 6),
            (hec("/services/collector/event", &auth, "{\"time\": 1}"), StatusCode::BAD_REQUEST, 12),
            (hec("/services/collector/event", &auth, "{\"event\": \"  \"}"), StatusCode::BAD_REQUEST, 13),
            (
                hec("/services/collector/event", &auth, "{\"event\": \"x\", \"fields\": [1]}"),
                StatusCode::BAD_REQUEST,
                15,
            ),
            (hec("/services/collector/event?token=abc", &[], "x"), StatusCode::BAD_REQUEST, 16),
            (hec("/services/collector/ack", &auth, "{\"acks\": [1]}"), StatusCode::BAD_REQUEST, 10),
            (
                hec("/services/collector/event", &[auth[0], (CHANNEL_HEADER, "not-a-guid")], "{\"event\":\"x\"}"),
                StatusCode::BAD_REQUEST,
                11,
            ),
        ];
        for (r, status, code) in cases {
            let what = format!("{} {:?}", r.uri(), r.headers().get("authorization"));
            let (s, b) = call(&h, r).await;
            assert_eq!((s, b["code"].as_u64()), (status, Some(code)), "{what}: {b}");
            assert!(b["text"].is_string() && b["error"].is_string(), "{b}");
        }
        let (_, b) = call(&h, hec("/services/collector/event", &auth, "{\"event\":\"ok\"}{\"time\":1}")).await;
        assert_eq!(b["code"], 0, "a partly valid request is accepted, naming the rejected event: {b}");
        let (_, b) = call(&h, hec("/services/collector/event", &auth, "{\"time\":1}{\"event\":\"\"}")).await;
        assert_eq!((b["code"].as_u64(), b["invalid-event-number"].as_u64()), (Some(12), Some(0)), "{b}");
        let busy = handler(Arc::new(RecordingQueue { fail: true, ..Default::default() }), IngestLimits::default());
        let (s, b) = call(&busy, hec("/services/collector/event", &auth, "{\"event\":\"x\"}")).await;
        assert_eq!(
            (s, b["code"].as_u64(), b["text"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some(9), Some("Server is busy"))
        );
        assert_eq!(q.events().len(), 1);
    }

    #[tokio::test]
    async fn query_string_tokens_only_when_enabled() {
        let q = Arc::new(RecordingQueue::default());
        let h = handler(q.clone(), IngestLimits::default())
            .with_hec(HecConfig { query_token: true, ..HecConfig::default() });
        let path = format!("/services/collector/event?token={}", token(Role::Sender));
        let (s, b) = call(&h, hec(&path, &[], "{\"event\":\"x\"}")).await;
        assert_eq!((s, b["code"].as_u64()), (StatusCode::OK, Some(0)), "{b}");
        let (s, b) = call(&h, hec("/services/collector/event?token=forged", &[], "{\"event\":\"x\"}")).await;
        assert_eq!((s, b["code"].as_u64()), (StatusCode::FORBIDDEN, Some(4)), "{b}");
    }

    #[tokio::test]
    async fn indexer_acknowledgement_answers_true_for_the_acks_it_issued_on_the_channel() {
        let q = Arc::new(RecordingQueue::default());
        let h = handler(q.clone(), IngestLimits::default());
        let splunk = format!("Splunk {}", token(Role::Sender));
        let with_channel = [("authorization", splunk.as_str()), (CHANNEL_HEADER, CHANNEL)];
        let (s, b) = call(&h, hec("/services/collector/event", &with_channel, "{\"event\":\"x\"}")).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let ack = b["ackId"].as_u64().expect("an ackId");
        let path = format!("/services/collector/raw?channel={CHANNEL}");
        let (_, b) = call(&h, hec(&path, &with_channel[..1], "raw line")).await;
        let ack2 = b["ackId"].as_u64().expect("an ackId with ?channel=");
        let (_, b) = call(&h, hec("/services/collector/event", &with_channel[..1], "{\"event\":\"x\"}")).await;
        assert!(b.get("ackId").is_none(), "no channel, no ack: {b}");
        let query = format!("{{\"acks\": [{ack}, {ack2}, 12345]}}");
        let (s, b) = call(&h, hec("/services/collector/ack", &with_channel, &query)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["acks"][ack.to_string()], true, "{b}");
        assert_eq!(b["acks"][ack2.to_string()], true, "{b}");
        assert_eq!(b["acks"]["12345"], false, "{b}");
        let other = [("authorization", splunk.as_str()), (CHANNEL_HEADER, "11111111-2222-3333-4444-555555555555")];
        let (_, b) = call(&h, hec("/services/collector/ack", &other, &query)).await;
        assert_eq!(b["acks"][ack.to_string()], false, "another channel's ack: {b}");
        // A failed request gets no ackId at all.
        let failing = handler(Arc::new(RecordingQueue { fail: true, ..Default::default() }), IngestLimits::default());
        let (_, b) = call(&failing, hec("/services/collector/event", &with_channel, "{\"event\":\"x\"}")).await;
        assert!(b.get("ackId").is_none(), "{b}");
        let off = handler(q, IngestLimits::default()).with_hec(HecConfig { ack: false, ..HecConfig::default() });
        let (s, b) = call(&off, hec("/services/collector/ack", &with_channel, &query)).await;
        assert_eq!((s, b["code"].as_u64()), (StatusCode::BAD_REQUEST, Some(14)), "{b}");
        let (_, b) = call(&off, hec("/services/collector/event", &with_channel, "{\"event\":\"x\"}")).await;
        assert!(b.get("ackId").is_none() && b["code"] == 0, "{b}");
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
