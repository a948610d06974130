//! The Splunk HTTP Event Collector protocol as Splunk clients expect it: the status codes and texts of every
//! answer (the one place an error becomes a HEC answer), where a HEC request carries its token, data channels,
//! and indexer acknowledgement.
//!
//! **Acknowledgement without state.** Ingest answers 2xx only once the queue holds every accepted event, so an
//! `ackId` is issued at the moment its events are durable: there is never a pending ack. What
//! `POST /services/collector/ack` must still tell apart is an id Vigil issued on this channel from one it did
//! not (a typo, another channel's id, a client restarted with a new channel). An `ackId` is therefore
//! self-certifying: `nonce << 27 | check`, where `nonce` is 26 random bits and `check` the first 27 bits of
//! SHA-256 over (tenant, channel, nonce). The ack route recomputes the check — no table, no cache, the same
//! answer from every Lambda instance, after a restart, and on both backends. Ids stay below 2^53, so
//! JavaScript clients read them exactly. The check is not secret: a client that forges an id for its own
//! channel only fools itself, and a tenant is part of the check, so no id carries over to another tenant.

use http::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::api::{json as json_response, ApiError, HttpResponse};
use crate::parse::{HEC_EVENT_BLANK, HEC_EVENT_REQUIRED, HEC_FIELDS_INVALID};

/// Splunk's HEC status codes (docs.splunk.com, "Troubleshoot HTTP Event Collector"), with their HTTP status
/// and text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HecCode {
    Success = 0,
    TokenRequired = 2,
    InvalidAuthorization = 3,
    InvalidToken = 4,
    NoData = 5,
    InvalidDataFormat = 6,
    InternalError = 8,
    ServerBusy = 9,
    ChannelMissing = 10,
    InvalidChannel = 11,
    EventRequired = 12,
    EventBlank = 13,
    AckDisabled = 14,
    IndexedFields = 15,
    QueryAuthDisabled = 16,
    Healthy = 17,
}

impl HecCode {
    pub fn number(self) -> u32 {
        self as u32
    }

    pub fn status(self) -> StatusCode {
        use HecCode::*;
        match self {
            Success | Healthy => StatusCode::OK,
            TokenRequired | InvalidAuthorization => StatusCode::UNAUTHORIZED,
            InvalidToken => StatusCode::FORBIDDEN,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            ServerBusy => StatusCode::SERVICE_UNAVAILABLE,
            NoData | InvalidDataFormat | ChannelMissing | InvalidChannel | EventRequired | EventBlank | AckDisabled
            | IndexedFields | QueryAuthDisabled => StatusCode::BAD_REQUEST,
        }
    }

    pub fn text(self) -> &'static str {
        use HecCode::*;
        match self {
            Success => "Success",
            TokenRequired => "Token is required",
            InvalidAuthorization => "Invalid authorization",
            InvalidToken => "Invalid token",
            NoData => "No data",
            InvalidDataFormat => "Invalid data format",
            InternalError => "Internal server error",
            ServerBusy => "Server is busy",
            ChannelMissing => "Data channel is missing",
            InvalidChannel => "Invalid data channel",
            EventRequired => "Event field is required",
            EventBlank => "Event field cannot be blank",
            AckDisabled => "ACK is disabled",
            IndexedFields => "Error in handling indexed fields",
            QueryAuthDisabled => "Query string authorization is not enabled",
            Healthy => "HEC is healthy",
        }
    }

    /// The code of an event the body parser rejected.
    pub fn of_rejection(error: &str) -> HecCode {
        match error {
            e if e == HEC_EVENT_REQUIRED => HecCode::EventRequired,
            e if e == HEC_EVENT_BLANK => HecCode::EventBlank,
            e if e == HEC_FIELDS_INVALID => HecCode::IndexedFields,
            _ => HecCode::InvalidDataFormat,
        }
    }
}

/// A HEC error answer: Splunk's `text` and `code` (what HEC clients read and log), plus Vigil's own `error`
/// and `detail` so the answer also says what was wrong and where.
#[derive(Clone, Debug, PartialEq)]
pub struct HecError {
    pub code: HecCode,
    /// The HTTP status; the code's own unless Vigil's is more precise (413, 405, 415 keep theirs).
    pub status: StatusCode,
    pub error: String,
    pub detail: Option<Value>,
    /// Splunk's `invalid-event-number`: the 0-based index of the event that made the request fail.
    pub invalid_event: Option<usize>,
}

impl HecError {
    pub fn new(code: HecCode, error: impl Into<String>) -> HecError {
        HecError { code, status: code.status(), error: error.into(), detail: None, invalid_event: None }
    }

    pub fn with_detail(mut self, detail: Value) -> HecError {
        self.detail = Some(detail);
        self
    }

    pub fn into_response(self) -> HttpResponse {
        let mut body = json!({ "text": self.code.text(), "code": self.code.number(), "error": self.error });
        if let Some(i) = self.invalid_event {
            body["invalid-event-number"] = json!(i);
        }
        if let Some(d) = self.detail {
            body["detail"] = d;
        }
        json_response(self.status, &body)
    }
}

/// Every Vigil error as a HEC answer. The mapping by status is the one place to extend (e.g. a 503 for
/// backpressure is `Server is busy`, with the `Retry-After` the caller adds).
impl From<ApiError> for HecError {
    fn from(e: ApiError) -> HecError {
        let code = match e.status {
            StatusCode::UNAUTHORIZED => HecCode::InvalidAuthorization,
            StatusCode::FORBIDDEN => HecCode::InvalidToken,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => HecCode::ServerBusy,
            s if s.is_server_error() => HecCode::InternalError,
            _ => HecCode::InvalidDataFormat,
        };
        HecError { code, status: e.status, error: e.error, detail: e.detail, invalid_event: None }
    }
}

/// `200 {"text": "HEC is healthy", "code": 17}`.
pub fn healthy() -> HttpResponse {
    json_response(StatusCode::OK, &json!({ "text": HecCode::Healthy.text(), "code": HecCode::Healthy.number() }))
}

/// A data channel is a GUID (`8-4-4-4-12` hex digits), as Splunk requires; compared in lower case.
pub fn valid_channel(channel: &str) -> bool {
    let groups: Vec<&str> = channel.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

const NONCE_BITS: u32 = 26;
const CHECK_BITS: u32 = 27;

fn check(tenant: &str, channel: &str, nonce: u64) -> u64 {
    let mut h = Sha256::new();
    for part in [b"vigil-hec-ack".as_slice(), tenant.as_bytes(), channel.to_ascii_lowercase().as_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(nonce.to_be_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) >> (64 - CHECK_BITS)
}

/// A new `ackId` for a request on `channel` whose events are in the queue.
pub fn issue_ack(tenant: &str, channel: &str) -> u64 {
    let nonce = rand::random::<u64>() & ((1 << NONCE_BITS) - 1);
    nonce << CHECK_BITS | check(tenant, channel, nonce)
}

/// Whether `ack` was issued by [`issue_ack`] for this tenant and channel (and so its events are durable).
pub fn ack_is_durable(tenant: &str, channel: &str, ack: u64) -> bool {
    if ack >> (NONCE_BITS + CHECK_BITS) != 0 {
        return false;
    }
    ack & ((1 << CHECK_BITS) - 1) == check(tenant, channel, ack >> CHECK_BITS)
}

/// The ack ids one `POST /services/collector/ack` may ask about.
pub const MAX_ACKS_PER_QUERY: usize = 10_000;

/// Answers an ack query body `{"acks": [id, …]}` with `{"acks": {"id": bool, …}}`.
pub fn answer_acks(tenant: &str, channel: &str, body: &[u8]) -> Result<Value, HecError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        HecError::new(HecCode::InvalidDataFormat, format!("body is not valid JSON: {e}"))
            .with_detail(json!({ "line": e.line(), "column": e.column() }))
    })?;
    let Some(ids) = v.get("acks").and_then(Value::as_array) else {
        return Err(HecError::new(HecCode::InvalidDataFormat, "body must be {\"acks\": [ackId, ...]}"));
    };
    if ids.len() > MAX_ACKS_PER_QUERY {
        return Err(HecError::new(HecCode::InvalidDataFormat, "too many acks in one query")
            .with_detail(json!({ "limit": MAX_ACKS_PER_QUERY })));
    }
    let mut out = serde_json::Map::new();
    for (i, id) in ids.iter().enumerate() {
        let Some(n) = id.as_u64() else {
            return Err(HecError::new(HecCode::InvalidDataFormat, format!("acks[{i}] is not a non-negative integer"))
                .with_detail(json!({ "index": i })));
        };
        out.insert(n.to_string(), json!(ack_is_durable(tenant, channel, n)));
    }
    Ok(json!({ "acks": out }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANNEL: &str = "0D6E0A4C-54C1-4E37-A8E3-0D2E0F0B9A11";

    #[test]
    fn ack_ids_are_durable_only_for_their_tenant_and_channel() {
        let other = "11111111-2222-3333-4444-555555555555";
        for _ in 0..200 {
            let id = issue_ack("acme", CHANNEL);
            assert!(id < 1 << 53, "exact in a JavaScript number");
            assert!(ack_is_durable("acme", CHANNEL, id));
            assert!(ack_is_durable("acme", &CHANNEL.to_lowercase(), id), "channels compare without case");
            assert!(!ack_is_durable("globex", CHANNEL, id));
            assert!(!ack_is_durable("acme", other, id));
        }
        let forged = (0..1000u64).filter(|n| ack_is_durable("acme", CHANNEL, *n)).count();
        assert!(forged <= 1, "guessed ids are almost never valid ({forged} of 1000)");
        assert!(!ack_is_durable("acme", CHANNEL, u64::MAX));
    }

    #[test]
    fn ack_queries_answer_per_id_and_refuse_malformed_bodies() {
        let good = issue_ack("acme", CHANNEL);
        let body = format!("{{\"acks\": [{good}, 7]}}");
        let v = answer_acks("acme", CHANNEL, body.as_bytes()).expect("answer");
        assert_eq!(v["acks"][good.to_string()], true);
        assert_eq!(v["acks"]["7"], false);
        for bad in ["", "{}", "{\"acks\": 3}", "{\"acks\": [-1]}", "{\"acks\": [\"x\"]}"] {
            let e = answer_acks("acme", CHANNEL, bad.as_bytes()).expect_err(bad);
            assert_eq!((e.code, e.status), (HecCode::InvalidDataFormat, StatusCode::BAD_REQUEST), "{bad}");
        }
    }

    #[test]
    fn channels_are_guids() {
        assert!(valid_channel(CHANNEL));
        assert!(valid_channel(&CHANNEL.to_lowercase()));
        for bad in ["", "abc", "0D6E0A4C-54C1-4E37-A8E3-0D2E0F0B9A1", "0D6E0A4C-54C1-4E37-A8E3-0D2E0F0B9A1G"] {
            assert!(!valid_channel(bad), "{bad}");
        }
    }

    #[test]
    fn codes_carry_splunks_status_and_text() {
        assert_eq!((HecCode::TokenRequired.status(), HecCode::TokenRequired.number()), (StatusCode::UNAUTHORIZED, 2));
        assert_eq!(
            (HecCode::InvalidToken.status(), HecCode::InvalidToken.text()),
            (StatusCode::FORBIDDEN, "Invalid token")
        );
        assert_eq!(HecCode::ServerBusy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(HecCode::of_rejection(HEC_EVENT_REQUIRED), HecCode::EventRequired);
        assert_eq!(HecCode::of_rejection(HEC_EVENT_BLANK), HecCode::EventBlank);
        assert_eq!(HecCode::of_rejection(HEC_FIELDS_INVALID), HecCode::IndexedFields);
        assert_eq!(HecCode::of_rejection("time: soon is not a time"), HecCode::InvalidDataFormat);
        let busy = HecError::from(ApiError::unavailable());
        assert_eq!((busy.code, busy.status), (HecCode::ServerBusy, StatusCode::SERVICE_UNAVAILABLE));
        let big = HecError::from(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body larger than 10 bytes"));
        assert_eq!((big.code, big.status), (HecCode::InvalidDataFormat, StatusCode::PAYLOAD_TOO_LARGE));
    }
}
