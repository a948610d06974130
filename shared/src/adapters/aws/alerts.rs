//! [`AlertStore`] on the alerts and tickets tables (alert heads in the state table): transactional open,
//! roll-up with optimistic concurrency, ticket updates with their aggregate writes.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::DeserializeOwned;

use super::{backoff, sdk_error};
use crate::error::{StoreError, StoreResult};
use crate::model::{Alert, Ticket, TicketStatus};
use crate::ports::{
    roll_up, AggregateWrite, AlertCandidate, AlertStore, Page, PageRequest, RecordOutcome, TicketFilter,
    ALERT_DETECTION_IDS_CAP, TICKET_NOT_FOUND,
};
use crate::schema::{
    IndexSpec, STATE_TABLE, TICKETS_BY_ASSIGNEE, TICKETS_BY_RULE, TICKETS_BY_SEVERITY, TICKETS_BY_STATUS,
};

use super::aggregate_plan::{chunk, plan, AggOp};
use super::item::*;
use super::store::*;

/// Page size of a list request with limit 0, and the largest page a list returns.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;
/// How long an alert head is kept after its suppression ends.
const HEAD_TTL_AFTER_SUPPRESSION_SECS: i64 = 7 * 24 * 3600;

enum OpenAttempt {
    Opened,
    /// An alert with the candidate's id exists: this detection opened it before.
    AlertExists,
    /// An alert for (tenant, rule, entity) is open at the detection's time.
    HeadHeld,
    /// Cancelled by a concurrent transaction or throttling: try again.
    Contended,
}

impl DynamoStore {
    fn head_key(c: &AlertCandidate) -> Item {
        let d = &c.detection;
        HashMap::from([
            ("pk".to_string(), s(format!("H#{}#{}#{}", d.tenant, d.rule, d.entity))),
            ("sk".to_string(), s("H")),
        ])
    }

    /// `first_ops` (the candidate's aggregate writes that fit) join the open transaction.
    async fn try_open(&self, c: &AlertCandidate, first_ops: &[AggOp], attempt: u32) -> StoreResult<OpenAttempt> {
        let suppress_ms = c.alert.suppress_until.timestamp_millis();
        let mut head = Self::head_key(c);
        head.insert("alert_id".into(), s(&c.alert.id));
        head.insert("suppress_until".into(), n(suppress_ms));
        head.insert(
            STATE_TABLE.ttl.unwrap_or("expires_at").into(),
            n(suppress_ms / 1000 + HEAD_TTL_AFTER_SUPPRESSION_SECS),
        );
        let head_put = Put::builder()
            .table_name(&self.tables.state)
            .set_item(Some(head))
            .condition_expression("attribute_not_exists(pk) OR #su <= :last_seen")
            .expression_attribute_names("#su", "suppress_until")
            .expression_attribute_values(":last_seen", n(c.detection.last_seen.timestamp_millis()))
            .build()
            .map_err(build_err)?;

        let mut alert = Self::tenant_key(&c.alert.tenant, &c.alert.id);
        alert.insert("alert".into(), s(to_json("alert", &c.alert)?));
        alert.insert("version".into(), n(0));
        alert.insert("detection_ids".into(), AttributeValue::Ss(vec![c.detection.id.clone()]));
        let alert_put = Put::builder()
            .table_name(&self.tables.alerts)
            .set_item(Some(alert))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_err)?;

        let ticket_put = Put::builder()
            .table_name(&self.tables.tickets)
            .set_item(Some(ticket_item(&c.ticket)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_err)?;

        let mut actions = vec![
            TransactWriteItem::builder().put(head_put).build(),
            TransactWriteItem::builder().put(alert_put).build(),
            TransactWriteItem::builder().put(ticket_put).build(),
        ];
        actions.extend(self.aggregate_actions(first_ops, attempt > 0).await?);
        let Err(TransactFailure { codes }) = self.transact(actions).await? else {
            return Ok(OpenAttempt::Opened);
        };
        if failed_check(&codes, 0) {
            Ok(OpenAttempt::HeadHeld)
        } else if failed_check(&codes, 1) {
            Ok(OpenAttempt::AlertExists)
        } else if failed_check(&codes, 2) {
            Err(StoreError::Conflict(format!("ticket {} exists without its alert", c.ticket.id)))
        } else {
            // Contention, or a sample pointer of the aggregate writes moved: read again and retry.
            Ok(OpenAttempt::Contended)
        }
    }

    /// Rolls the detection into the alert the head names. `None` if the head is gone or no longer covers
    /// the detection (the caller tries to open again).
    ///
    /// `first_ops` (the candidate's `on_detection` writes that fit) join the roll-up write, which is then a
    /// transaction instead of a conditional `PutItem`.
    async fn roll_into_open(&self, c: &AlertCandidate, first_ops: &[AggOp]) -> StoreResult<Option<RecordOutcome>> {
        let d = &c.detection;
        let Some(head) = self.get_item(&self.tables.state, Self::head_key(c)).await? else {
            return Ok(None);
        };
        let suppress_until = get_n(&head, "suppress_until").unwrap_or(i64::MIN);
        if suppress_until <= d.last_seen.timestamp_millis() {
            return Ok(None);
        }
        let alert_id = get_s(&head, "alert_id")
            .ok_or_else(|| StoreError::Permanent("alert head without alert_id".into()))?
            .to_string();
        let tenant = &c.alert.tenant;
        for attempt in 0..MAX_CONTENDED_ATTEMPTS {
            let item = self
                .get_item(&self.tables.alerts, Self::tenant_key(tenant, &alert_id))
                .await?
                .ok_or_else(|| StoreError::Conflict(format!("alert {alert_id} named by its head does not exist")))?;
            let mut ids = get_ss(&item, "detection_ids").to_vec();
            if ids.contains(&d.id) {
                return Ok(Some(RecordOutcome::AlreadyRecorded { alert_id }));
            }
            let version = get_n(&item, "version").unwrap_or(0);
            let mut alert: Alert = from_item(&item, "alert")?;
            roll_up(&mut alert, d, c.alert.updated_at);
            if ids.len() >= ALERT_DETECTION_IDS_CAP {
                ids.sort();
                ids.drain(..=ids.len() - ALERT_DETECTION_IDS_CAP);
            }
            ids.push(d.id.clone());

            let mut updated = Self::tenant_key(tenant, &alert_id);
            updated.insert("alert".into(), s(to_json("alert", &alert)?));
            updated.insert("version".into(), n(version + 1));
            updated.insert("detection_ids".into(), AttributeValue::Ss(ids));
            if first_ops.is_empty() {
                self.counters.ddb_write(1);
                let res = self
                    .client
                    .put_item()
                    .table_name(&self.tables.alerts)
                    .set_item(Some(updated))
                    .condition_expression("#v = :v")
                    .expression_attribute_names("#v", "version")
                    .expression_attribute_values(":v", n(version))
                    .send()
                    .await;
                match res {
                    Ok(_) => return Ok(Some(RecordOutcome::RolledUp { alert_id })),
                    Err(e) => match sdk_error(&format!("PutItem {}", self.tables.alerts), e) {
                        StoreError::Conflict(_) => backoff(attempt).await,
                        other => return Err(other),
                    },
                }
            } else {
                let put = Put::builder()
                    .table_name(&self.tables.alerts)
                    .set_item(Some(updated))
                    .condition_expression("#v = :v")
                    .expression_attribute_names("#v", "version")
                    .expression_attribute_values(":v", n(version))
                    .build()
                    .map_err(build_err)?;
                let mut actions = vec![TransactWriteItem::builder().put(put).build()];
                actions.extend(self.aggregate_actions(first_ops, attempt > 0).await?);
                match self.transact(actions).await? {
                    Ok(()) => return Ok(Some(RecordOutcome::RolledUp { alert_id })),
                    // The alert changed (another roll-up), or contention: read it again.
                    Err(_) => backoff(attempt).await,
                }
            }
        }
        Err(StoreError::Transient(format!("alert {alert_id}: too many concurrent roll-ups")))
    }

    /// A page of `T`s (stored as JSON in `attr`) from a tenant's partition, or from the partition `value` of
    /// the global secondary index `index`, newest first, keeping those `keep` accepts. Queries (`sk <` the
    /// cursor, or the last key read) until the page is full or the partition ends.
    #[allow(clippy::too_many_arguments)]
    async fn list_page<T: DeserializeOwned>(
        &self,
        table: &str,
        tenant: &str,
        index: Option<(&IndexSpec, String)>,
        attr: &str,
        page: &PageRequest,
        filtered: bool,
        keep: impl Fn(&T) -> bool,
    ) -> StoreResult<Page<T>> {
        let limit = if page.limit == 0 { DEFAULT_PAGE } else { page.limit.min(MAX_PAGE) };
        let mut below = match &page.cursor {
            Some(c) if !c.is_empty() => Some(
                URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| StoreError::Permanent("invalid page cursor".into()))?,
            ),
            _ => None,
        };
        let (hash_attr, hash_value) = match &index {
            Some((spec, value)) => (spec.key.hash, value.clone()),
            None => ("pk", tenant.to_string()),
        };
        // One more than the page, to know whether another page follows.
        let mut found: Vec<(String, T)> = Vec::new();
        loop {
            let want = limit + 1 - found.len();
            let query_limit = if filtered { want.max(100) } else { want };
            self.counters.ddb_read();
            let mut q = self
                .client
                .query()
                .table_name(table)
                .expression_attribute_names("#h", hash_attr)
                .expression_attribute_values(":h", s(&hash_value))
                .scan_index_forward(false)
                .limit(query_limit.min(MAX_PAGE + 1) as i32);
            q = match &below {
                Some(c) => {
                    q.key_condition_expression("#h = :h AND sk < :below").expression_attribute_values(":below", s(c))
                }
                None => q.key_condition_expression("#h = :h"),
            };
            // Index reads are eventually consistent (DynamoDB offers nothing else on a GSI).
            q = match &index {
                Some((spec, _)) => q.index_name(spec.name),
                None => q.consistent_read(true),
            };
            let out = q.send().await.map_err(|e| sdk_error(&format!("Query {table}"), e))?;
            for item in out.items() {
                let value: T = from_item(item, attr)?;
                if keep(&value) {
                    let sk = get_s(item, "sk").unwrap_or_default().to_string();
                    found.push((sk, value));
                    if found.len() > limit {
                        break;
                    }
                }
            }
            if found.len() > limit {
                break;
            }
            match out.last_evaluated_key().and_then(|k| get_s(k, "sk")) {
                Some(sk) => below = Some(sk.to_string()),
                None => break,
            }
        }
        let next = if found.len() > limit {
            found.truncate(limit);
            found.last().map(|(sk, _)| URL_SAFE_NO_PAD.encode(sk))
        } else {
            None
        };
        Ok(Page { items: found.into_iter().map(|(_, v)| v).collect(), next })
    }
}

/// The tickets-table item of `t`: keys, JSON, version and the keys of the indexes it belongs to.
fn ticket_item(t: &Ticket) -> StoreResult<Item> {
    let version = i64::try_from(t.version)
        .map_err(|_| StoreError::Permanent(format!("ticket version {} is too large", t.version)))?;
    let mut item = DynamoStore::tenant_key(&t.tenant, &t.id);
    item.insert("ticket".into(), s(to_json("ticket", t)?));
    item.insert("version".into(), n(version));
    item.insert(TICKETS_BY_STATUS.key.hash.into(), s(format!("{}#{}", t.tenant, t.status.as_str())));
    item.insert(TICKETS_BY_SEVERITY.key.hash.into(), s(format!("{}#{}", t.tenant, t.severity.as_str())));
    item.insert(TICKETS_BY_RULE.key.hash.into(), s(format!("{}#{}", t.tenant, t.rule)));
    if let Some(a) = &t.assignee {
        item.insert(TICKETS_BY_ASSIGNEE.key.hash.into(), s(format!("{}#{a}", t.tenant)));
    }
    Ok(item)
}

/// The index a ticket filter is served from, and the filtered value: status, unless it asks for closed
/// tickets (the bulk of them) and names something narrower; then assignee, rule, severity. `None`: no
/// filter, the table itself.
fn pick_index(f: &TicketFilter) -> Option<(&'static IndexSpec, String)> {
    let narrower = f.assignee.is_some() || f.rule.is_some();
    if let Some(status) = f.status.filter(|s| !(*s == TicketStatus::Closed && narrower)) {
        return Some((&TICKETS_BY_STATUS, status.as_str().to_string()));
    }
    if let Some(a) = &f.assignee {
        return Some((&TICKETS_BY_ASSIGNEE, a.clone()));
    }
    if let Some(r) = &f.rule {
        return Some((&TICKETS_BY_RULE, r.clone()));
    }
    if let Some(status) = f.status {
        return Some((&TICKETS_BY_STATUS, status.as_str().to_string()));
    }
    f.severity.map(|sev| (&TICKETS_BY_SEVERITY, sev.as_str().to_string()))
}

#[async_trait]
impl AlertStore for DynamoStore {
    /// Opening is one transaction (head, alert, ticket, and the `on_open` + `on_detection` aggregate items);
    /// a roll-up is one conditional write of the alert, a transaction with the `on_detection` items when
    /// there are any. Aggregate items beyond what fits in that transaction (100 actions) follow in further
    /// transactions after it, atomic per transaction only.
    async fn record(&self, candidate: &AlertCandidate) -> StoreResult<RecordOutcome> {
        let alert_id = candidate.alert.id.clone();
        let ticket_id = candidate.ticket.id.clone();
        let tenant = candidate.alert.tenant.as_str();
        let mut open_ops =
            chunk(plan(tenant, candidate.on_open.iter().chain(&candidate.on_detection))?, MAX_TRANSACT_ITEMS - 3);
        let mut detection_ops = chunk(plan(tenant, &candidate.on_detection)?, MAX_TRANSACT_ITEMS - 1);
        for attempt in 0..MAX_CONTENDED_ATTEMPTS {
            match self.try_open(candidate, &open_ops[0], attempt).await? {
                OpenAttempt::Opened => {
                    for rest in open_ops.drain(1..) {
                        self.apply_chunk(&rest).await?;
                    }
                    return Ok(RecordOutcome::Opened { alert_id, ticket_id });
                }
                OpenAttempt::AlertExists => return Ok(RecordOutcome::AlreadyRecorded { alert_id }),
                OpenAttempt::HeadHeld => {
                    if let Some(outcome) = self.roll_into_open(candidate, &detection_ops[0]).await? {
                        if matches!(outcome, RecordOutcome::RolledUp { .. }) {
                            for rest in detection_ops.drain(1..) {
                                self.apply_chunk(&rest).await?;
                            }
                        }
                        return Ok(outcome);
                    }
                }
                OpenAttempt::Contended => backoff(attempt).await,
            }
        }
        Err(StoreError::Transient(format!("recording detection {}: too much contention", candidate.detection.id)))
    }

    async fn get_alert(&self, tenant: &str, id: &str) -> StoreResult<Option<Alert>> {
        match self.get_item(&self.tables.alerts, Self::tenant_key(tenant, id)).await? {
            Some(item) => from_item(&item, "alert").map(Some),
            None => Ok(None),
        }
    }

    async fn list_alerts(&self, tenant: &str, page: &PageRequest) -> StoreResult<Page<Alert>> {
        self.list_page(&self.tables.alerts, tenant, None, "alert", page, false, |_: &Alert| true).await
    }

    async fn get_ticket(&self, tenant: &str, id: &str) -> StoreResult<Option<Ticket>> {
        match self.get_item(&self.tables.tickets, Self::tenant_key(tenant, id)).await? {
            Some(item) => from_item(&item, "ticket").map(Some),
            None => Ok(None),
        }
    }

    /// One transaction: the ticket put conditional on `version = expected_version`, and the aggregate items
    /// (those beyond 99 follow in further transactions). On a failed condition one `GetItem` tells a version
    /// conflict from an unknown ticket.
    async fn update_ticket(
        &self,
        ticket: &Ticket,
        expected_version: u64,
        writes: &[AggregateWrite],
    ) -> StoreResult<()> {
        if expected_version.checked_add(1) != Some(ticket.version) {
            return Err(StoreError::Permanent(format!(
                "ticket {} has version {}; an update from version {expected_version} must carry {}",
                ticket.id,
                ticket.version,
                expected_version.saturating_add(1)
            )));
        }
        let expected = i64::try_from(expected_version)
            .map_err(|_| StoreError::Permanent(format!("ticket version {expected_version} is too large")))?;
        let mut ops = chunk(plan(&ticket.tenant, writes)?, MAX_TRANSACT_ITEMS - 1);
        let item = ticket_item(ticket)?;
        for attempt in 0..MAX_CONTENDED_ATTEMPTS {
            let put = Put::builder()
                .table_name(&self.tables.tickets)
                .set_item(Some(item.clone()))
                .condition_expression("#v = :expected")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":expected", n(expected))
                .build()
                .map_err(build_err)?;
            let mut actions = vec![TransactWriteItem::builder().put(put).build()];
            actions.extend(self.aggregate_actions(&ops[0], attempt > 0).await?);
            match self.transact(actions).await? {
                Ok(()) => {
                    for rest in ops.drain(1..) {
                        self.apply_chunk(&rest).await?;
                    }
                    return Ok(());
                }
                Err(TransactFailure { codes }) if failed_check(&codes, 0) => {
                    let key = Self::tenant_key(&ticket.tenant, &ticket.id);
                    return match self.get_item(&self.tables.tickets, key).await? {
                        None => Err(StoreError::Permanent(format!(
                            "{TICKET_NOT_FOUND}: tenant {} has no ticket {}",
                            ticket.tenant, ticket.id
                        ))),
                        Some(stored) => Err(StoreError::Conflict(format!(
                            "ticket {} is at version {}, not {expected_version}",
                            ticket.id,
                            get_n(&stored, "version").unwrap_or_default()
                        ))),
                    };
                }
                // Contention, or a sample pointer moved: try again.
                Err(_) => backoff(attempt).await,
            }
        }
        Err(StoreError::Transient(format!("updating ticket {}: too much contention", ticket.id)))
    }

    async fn list_tickets(&self, tenant: &str, filter: &TicketFilter, page: &PageRequest) -> StoreResult<Page<Ticket>> {
        let filtered = *filter != TicketFilter::default();
        let index = pick_index(filter).map(|(spec, value)| (spec, format!("{tenant}#{value}")));
        self.list_page(&self.tables.tickets, tenant, index, "ticket", page, filtered, |t: &Ticket| filter.matches(t))
            .await
    }
}
