//! The tickets API: alerts and tickets of the caller's tenant. Reads need role `viewer`.

use std::sync::Arc;

use http::{Method, StatusCode};

use crate::api::{healthz, json, path_segments, query_pairs, ApiError, HttpRequest, HttpResponse};
use crate::auth::{Authenticator, Role};
use crate::model::{Severity, TicketStatus};
use crate::ports::{AlertStore, PageRequest, TicketFilter};

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

pub struct TicketsHandler<A: ?Sized> {
    store: Arc<A>,
    auth: Arc<Authenticator>,
}

/// Whether a path belongs to this function.
pub fn owns(req: &HttpRequest) -> bool {
    matches!(path_segments(req).as_slice(), ["v1", "alerts", ..] | ["v1", "tickets", ..])
}

impl<A: AlertStore + ?Sized> TicketsHandler<A> {
    pub fn new(store: Arc<A>, auth: Arc<Authenticator>) -> Self {
        TicketsHandler { store, auth }
    }

    pub async fn handle(&self, req: HttpRequest) -> HttpResponse {
        match self.route(&req).await {
            Ok(resp) => resp,
            Err(e) => e.into_response(),
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
        if req.method() != Method::GET {
            return Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "use GET"));
        }
        let claims = self.auth.authorize(req.headers(), Role::Viewer, false)?;
        let store_err = |e: crate::error::StoreError| {
            tracing::error!(error = %e, "store read failed");
            ApiError::unavailable()
        };
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
            ["v1", "tickets", id] => {
                let t = self.store.get_ticket(&claims.tenant, id).await.map_err(store_err)?;
                t.map(|t| json(StatusCode::OK, &t)).ok_or_else(ApiError::not_found)
            }
            _ => Err(ApiError::not_found()),
        }
    }
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
                    TicketStatus::parse(&v).ok_or_else(|| invalid_param("status", &v, "new|acknowledged|in_progress|closed"))?,
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
