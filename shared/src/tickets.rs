//! The tickets API: alerts, their evidence events (`GET /v1/events/{id}`) and tickets of the caller's tenant.
//! Reads need role `viewer`; transitions
//! (`POST /v1/tickets/{id}/{acknowledge|respond|assign|escalate|close|reopen}`) need role `analyst`.
//!
//! A transition reads the ticket, applies the action ([`crate::ticket_flow`]) and writes it back with
//! `update_ticket(expected_version = the version read)`, together with the aggregate writes it implies. When
//! another change got there first (a version conflict) it re-reads and re-applies, a bounded number of times,
//! so a concurrent change that makes the action illegal answers 409 — never last-writer-wins. An optional
//! `If-Match: <version>` makes the action conditional on that version (412 when the ticket has moved on).

use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Method, StatusCode};
use rand::Rng;
use tracing::Instrument;

use crate::aggregates::coalesce;
use crate::api::{healthz, json, path_segments, query_pairs, ApiError, HttpRequest, HttpResponse};
use crate::auth::{Authenticator, Claims, Role};
use crate::clock::Clock;
use crate::error::StoreError;
use crate::model::{Severity, Ticket, TicketStatus};
use crate::ports::{AlertStore, EventStore, PageRequest, TicketFilter, TICKET_NOT_FOUND};
use crate::ticket_flow::{self, Action, Command, CommandInput, IllegalTransition, DISPOSITIONS};

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;
/// Reads-and-applies of one transition before giving up on a ticket that keeps changing under it.
pub const MAX_TRANSITION_ATTEMPTS: usize = 5;
/// A transition body is a few small fields; anything larger is refused.
pub const MAX_TRANSITION_BODY_BYTES: usize = 64 * 1024;

pub struct TicketsHandler<A: ?Sized> {
    store: Arc<A>,
    auth: Arc<Authenticator>,
    clock: Arc<dyn Clock>,
    /// Scored events, for `GET /v1/events/{id}` (an alert's evidence); without it that route is 404.
    events: Option<Arc<dyn EventStore>>,
}

/// Whether a path belongs to this function.
pub fn owns(req: &HttpRequest) -> bool {
    matches!(path_segments(req).as_slice(), ["v1", "alerts", ..] | ["v1", "tickets", ..] | ["v1", "events", _])
}

fn store_err(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "store call failed");
    ApiError::unavailable()
}

fn method_not_allowed(allow: &'static str) -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, format!("use {allow}"))
}

fn state_json(t: &Ticket) -> serde_json::Value {
    serde_json::json!({ "status": t.status.as_str(), "escalated": t.escalated, "version": t.version })
}

/// `ETag: "<version>"`, the value `If-Match` takes.
fn with_etag(mut resp: HttpResponse, version: u64) -> HttpResponse {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

fn illegal(e: IllegalTransition) -> ApiError {
    let detail = e.state_json();
    ApiError::new(StatusCode::CONFLICT, e.to_string()).with_detail(detail)
}

impl<A: AlertStore + ?Sized> TicketsHandler<A> {
    pub fn new(store: Arc<A>, auth: Arc<Authenticator>, clock: Arc<dyn Clock>) -> Self {
        TicketsHandler { store, auth, clock, events: None }
    }

    /// Serves `GET /v1/events/{id}` from `events`.
    pub fn with_events(mut self, events: Arc<dyn EventStore>) -> Self {
        self.events = Some(events);
        self
    }

    pub async fn handle(&self, req: HttpRequest) -> HttpResponse {
        let span = crate::access_log::span(&req);
        self.respond(req).instrument(span).await
    }

    async fn respond(&self, req: HttpRequest) -> HttpResponse {
        match self.route(&req).await {
            Ok(resp) => resp,
            Err(e) => {
                crate::access_log::rejected(e.status, &e.error);
                let allow = (e.status == StatusCode::METHOD_NOT_ALLOWED)
                    .then(|| e.error.trim_start_matches("use ").to_string());
                let mut resp = e.into_response();
                if let Some(v) = allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
                    resp.headers_mut().insert(header::ALLOW, v);
                }
                resp
            }
        }
    }

    async fn route(&self, req: &HttpRequest) -> Result<HttpResponse, ApiError> {
        let segs = path_segments(req);
        if let (&Method::GET, ["healthz"]) = (req.method(), segs.as_slice()) {
            return Ok(healthz());
        }
        if !owns(req) {
            return Err(ApiError::not_found());
        }
        if let ["v1", "tickets", id, action] = segs.as_slice() {
            if req.method() != Method::POST {
                return Err(method_not_allowed("POST"));
            }
            let claims = self.auth.authorize(req.headers(), Role::Analyst, false)?;
            crate::access_log::set_tenant(&claims.tenant);
            let action = Action::parse(action).ok_or_else(|| {
                ApiError::not_found().with_detail(serde_json::json!({ "actions": Action::ALL.map(Action::as_str) }))
            })?;
            return self.transition(req, &claims, id, action).await;
        }
        if req.method() != Method::GET {
            return Err(method_not_allowed("GET"));
        }
        let claims = self.auth.authorize(req.headers(), Role::Viewer, false)?;
        crate::access_log::set_tenant(&claims.tenant);
        match segs.as_slice() {
            ["v1", "alerts"] => {
                let page = page_request(req)?;
                let p = self.store.list_alerts(&claims.tenant, &page).await.map_err(store_err)?;
                Ok(json(StatusCode::OK, &p))
            }
            ["v1", "alerts", id] => {
                let a = self.store.get_alert(&claims.tenant, id).await.map_err(store_err)?;
                a.map(|a| json(StatusCode::OK, &a)).ok_or_else(ApiError::not_found)
            }
            ["v1", "tickets"] => {
                let page = page_request(req)?;
                let filter = ticket_filter(req)?;
                let p = self.store.list_tickets(&claims.tenant, &filter, &page).await.map_err(store_err)?;
                Ok(json(StatusCode::OK, &p))
            }
            ["v1", "events", id] => {
                let Some(events) = &self.events else { return Err(ApiError::not_found()) };
                let e = events.get(&claims.tenant, id).await.map_err(store_err)?;
                // The key holds the tenant; the check keeps another tenant's event out whatever the store does.
                e.filter(|e| e.tenant == claims.tenant)
                    .map(|e| json(StatusCode::OK, &e))
                    .ok_or_else(ApiError::not_found)
            }
            ["v1", "tickets", id] => {
                let t = self.store.get_ticket(&claims.tenant, id).await.map_err(store_err)?;
                t.map(|t| with_etag(json(StatusCode::OK, &t), t.version)).ok_or_else(ApiError::not_found)
            }
            _ => Err(ApiError::not_found()),
        }
    }

    /// Read, apply, conditional write; on a version conflict, again from the read.
    async fn transition(
        &self,
        req: &HttpRequest,
        claims: &Claims,
        id: &str,
        action: Action,
    ) -> Result<HttpResponse, ApiError> {
        let command = transition_command(req, action)?;
        let if_match = if_match(req)?;
        let mut last_read: Option<serde_json::Value> = None;
        for attempt in 0..MAX_TRANSITION_ATTEMPTS {
            if attempt > 0 {
                // A little jitter so competing writers do not collide again in lockstep.
                let ms = rand::rng().random_range(2..=10u64) * attempt as u64;
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let ticket = self.store.get_ticket(&claims.tenant, id).await.map_err(store_err)?;
            let Some(mut ticket) = ticket.filter(|t| t.tenant == claims.tenant) else {
                return Err(ApiError::not_found());
            };
            if let Some(v) = if_match {
                if ticket.version != v {
                    return Err(ApiError::new(
                        StatusCode::PRECONDITION_FAILED,
                        format!("the ticket is at version {}, not {v} (If-Match)", ticket.version),
                    )
                    .with_detail(state_json(&ticket)));
                }
            }
            let expected = ticket.version;
            last_read = Some(state_json(&ticket));
            let writes = ticket_flow::apply(&mut ticket, &command, &claims.sub, self.clock.now()).map_err(illegal)?;
            match self.store.update_ticket(&ticket, expected, &coalesce(writes)).await {
                Ok(()) => {
                    tracing::info!(ticket = %ticket.id, action = %action, version = ticket.version, "ticket updated");
                    return Ok(with_etag(json(StatusCode::OK, &ticket), ticket.version));
                }
                Err(StoreError::Conflict(m)) => {
                    tracing::debug!(ticket = %id, action = %action, attempt, conflict = %m, "ticket changed concurrently; re-reading");
                }
                // Deleted between the read and the write.
                Err(StoreError::Permanent(m)) if m.starts_with(TICKET_NOT_FOUND) => return Err(ApiError::not_found()),
                Err(e) => return Err(store_err(e)),
            }
        }
        let detail = last_read.unwrap_or(serde_json::Value::Null);
        Err(ApiError::new(StatusCode::CONFLICT, "the ticket kept changing concurrently; read it again and retry")
            .with_detail(detail))
    }
}

/// Parses and validates a transition body: a JSON object (or an empty body) with only the fields the action
/// takes (`note`, `assignee`, `disposition`), each a string or null.
pub fn transition_command(req: &HttpRequest, action: Action) -> Result<Command, ApiError> {
    let body = req.body();
    if body.len() > MAX_TRANSITION_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {MAX_TRANSITION_BODY_BYTES} bytes"),
        ));
    }
    let empty = body.iter().all(u8::is_ascii_whitespace);
    if !empty {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
            let mime = ct.split(';').next().unwrap_or_default().trim();
            if !(mime == "application/json" || mime.ends_with("+json")) {
                return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "the body must be application/json")
                    .with_detail(serde_json::json!({ "content_type": mime })));
            }
        }
    }
    let value: serde_json::Value = if empty {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("body is not valid JSON: {e}"))
                .with_detail(serde_json::json!({ "line": e.line(), "column": e.column() }))
        })?
    };
    let serde_json::Value::Object(fields) = value else {
        return Err(ApiError::bad_request("body must be a JSON object"));
    };
    let allowed = action.fields();
    let mut input = CommandInput::default();
    for (name, v) in fields {
        if !allowed.contains(&name.as_str()) {
            let error = if ["note", "assignee", "disposition"].contains(&name.as_str()) {
                format!("{action} does not take field {name}")
            } else {
                format!("unknown field {name}")
            };
            return Err(
                ApiError::bad_request(error).with_detail(serde_json::json!({ "field": name, "allowed": allowed }))
            );
        }
        let text = match v {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s),
            _ => {
                return Err(ApiError::bad_request(format!("field {name} must be a string"))
                    .with_detail(serde_json::json!({ "field": name })))
            }
        };
        match name.as_str() {
            "note" => input.note = text,
            "assignee" => input.assignee = text,
            _ => {
                input.disposition = match text {
                    None => None,
                    Some(d) => Some(ticket_flow::parse_disposition(d.trim()).ok_or_else(|| {
                        ApiError::bad_request(format!("invalid disposition; allowed: {}", DISPOSITIONS.join(", ")))
                            .with_detail(
                                serde_json::json!({ "field": "disposition", "value": d, "allowed": DISPOSITIONS }),
                            )
                    })?),
                }
            }
        }
    }
    Command::new(action, input).map_err(|e| {
        let mut detail = serde_json::json!({ "field": e.field });
        if e.field == "disposition" {
            detail["allowed"] = serde_json::json!(DISPOSITIONS);
        }
        ApiError::bad_request(e.to_string()).with_detail(detail)
    })
}

/// `If-Match: <version>` (quotes and a weak `W/` prefix tolerated; `*` matches any version).
pub fn if_match(req: &HttpRequest) -> Result<Option<u64>, ApiError> {
    let Some(v) = req.headers().get(header::IF_MATCH) else { return Ok(None) };
    let raw = v.to_str().unwrap_or_default().trim();
    if raw == "*" {
        return Ok(None);
    }
    let bare = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
    bare.parse::<u64>().map(Some).map_err(|_| {
        ApiError::bad_request("If-Match must be a ticket version (a number)")
            .with_detail(serde_json::json!({ "if_match": raw }))
    })
}

fn invalid_param(name: &str, value: &str, expected: &str) -> ApiError {
    ApiError::bad_request(format!("invalid query parameter {name}"))
        .with_detail(serde_json::json!({ "parameter": name, "value": value, "expected": expected }))
}

pub fn page_request(req: &HttpRequest) -> Result<PageRequest, ApiError> {
    let mut page = PageRequest { limit: DEFAULT_PAGE, cursor: None };
    for (k, v) in query_pairs(req) {
        match k.as_str() {
            "limit" => {
                page.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| invalid_param("limit", &v, "a number from 1 to 500"))?
            }
            "cursor" => page.cursor = Some(v),
            _ => {}
        }
    }
    Ok(page)
}

fn ticket_filter(req: &HttpRequest) -> Result<TicketFilter, ApiError> {
    let mut f = TicketFilter::default();
    for (k, v) in query_pairs(req) {
        match k.as_str() {
            "status" => {
                f.status = Some(
                    TicketStatus::parse(&v)
                        .ok_or_else(|| invalid_param("status", &v, "new|acknowledged|in_progress|closed"))?,
                )
            }
            "severity" => {
                f.severity = Some(
                    serde_json::from_value::<Severity>(serde_json::Value::String(v.clone()))
                        .map_err(|_| invalid_param("severity", &v, "info|low|medium|high|critical"))?,
                )
            }
            "assignee" => f.assignee = Some(v),
            "rule" => f.rule = Some(v),
            "limit" | "cursor" => {}
            other => return Err(invalid_param(other, &v, "one of status, severity, assignee, rule, limit, cursor")),
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::model::Disposition;

    fn req(body: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut b = http::Request::builder().method(Method::POST).uri("/v1/tickets/T1/close");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Bytes::from(body.to_string())).expect("request")
    }

    fn field(e: &ApiError) -> Option<&str> {
        e.detail.as_ref().and_then(|d| d["field"].as_str())
    }

    #[test]
    fn bodies_are_parsed_per_action() {
        assert_eq!(transition_command(&req("", &[]), Action::Acknowledge), Ok(Command::Acknowledge { note: None }));
        assert_eq!(transition_command(&req("  \n", &[]), Action::Escalate), Ok(Command::Escalate { note: None }));
        assert_eq!(
            transition_command(
                &req(r#"{"disposition":"benign","note":null}"#, &[("content-type", "application/json; charset=utf-8")]),
                Action::Close
            ),
            Ok(Command::Close { disposition: Disposition::Benign, note: None })
        );
        let e = transition_command(&req(r#"{"disposition":"benign","colour":"red"}"#, &[]), Action::Close)
            .expect_err("unknown");
        assert_eq!((e.status, field(&e)), (StatusCode::BAD_REQUEST, Some("colour")));
        assert!(e.error.contains("colour"));
        let e = transition_command(&req(r#"{"assignee":"bob"}"#, &[]), Action::Close).expect_err("not taken");
        assert_eq!(field(&e), Some("assignee"));
        let e = transition_command(&req(r#"{"disposition":"nah"}"#, &[]), Action::Close).expect_err("bad disposition");
        assert_eq!(e.detail.as_ref().map(|d| d["allowed"].clone()), Some(serde_json::json!(DISPOSITIONS)));
        let e = transition_command(&req(r#"{"note":["x"]}"#, &[]), Action::Respond).expect_err("not a string");
        assert_eq!(field(&e), Some("note"));
        let e = transition_command(&req(r#"{}"#, &[]), Action::Respond).expect_err("note required");
        assert_eq!(field(&e), Some("note"));
        let e = transition_command(&req("{\"note\":", &[]), Action::Respond).expect_err("malformed");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.detail.as_ref().is_some_and(|d| d["line"] == 1), "{e:?}");
        let e = transition_command(&req("\"ack\"", &[]), Action::Acknowledge).expect_err("not an object");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = transition_command(
            &req("note=x", &[("content-type", "application/x-www-form-urlencoded")]),
            Action::Respond,
        )
        .expect_err("form");
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let big = format!("{{\"note\":\"{}\"}}", "x".repeat(MAX_TRANSITION_BODY_BYTES));
        assert_eq!(
            transition_command(&req(&big, &[]), Action::Respond).map_err(|e| e.status),
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        );
    }

    #[test]
    fn if_match_takes_a_version() {
        assert_eq!(if_match(&req("", &[])), Ok(None));
        assert_eq!(if_match(&req("", &[("if-match", "3")])), Ok(Some(3)));
        assert_eq!(if_match(&req("", &[("if-match", "\"4\"")])), Ok(Some(4)));
        assert_eq!(if_match(&req("", &[("if-match", "W/\"5\"")])), Ok(Some(5)));
        assert_eq!(if_match(&req("", &[("if-match", "*")])), Ok(None));
        assert_eq!(if_match(&req("", &[("if-match", "v3")])).map_err(|e| e.status), Err(StatusCode::BAD_REQUEST));
    }
}
