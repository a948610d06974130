//! Events, detection windows, alerts and tickets in the embedded database.

use std::sync::Arc;

use async_trait::async_trait;
use redb::{Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::aggregates::{self, apply_in};
use super::{
    corrupt, db_err, split_expiry, with_expiry, Shared, ALERTS, ALERT_DETECTIONS, ALERT_HEADS, EVENTS, EVENTS_TTL,
    TICKETS, TICKETS_BY_ASSIGNEE, TICKETS_BY_RULE, TICKETS_BY_SEVERITY, TICKETS_BY_STATUS, WINDOWS, WINDOWS_TTL,
    WINDOW_ENTRIES,
};
use crate::error::{StoreError, StoreResult};
use crate::model::{Alert, Event, Ticket, TicketStatus, Timestamp};
use crate::ports::{
    roll_up, AggregateWrite, Aggregates, AlertCandidate, AlertStore, EventStore, HourlyCount, Page, PageRequest,
    RecordOutcome, Sample, TicketFilter, WindowEntry, WindowStore, WindowUpdate, TICKET_NOT_FOUND,
};

/// Expired records removed per write call: bounded, so purging never makes one call slow.
const PURGE_BATCH: usize = 256;
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

type KeyedTable<'t> = Table<'t, (&'static str, &'static str), &'static [u8]>;

fn to_json<T: Serialize>(what: &str, v: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| StoreError::Permanent(format!("encoding {what}: {e}")))
}

fn from_json<T: DeserializeOwned>(what: &str, v: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(v).map_err(|e| corrupt(what, e))
}

/// Events, windows, alerts and tickets: one object implements all three store ports.
pub(crate) struct EmbeddedStore {
    pub(super) shared: Arc<Shared>,
}

impl EmbeddedStore {
    pub(crate) fn new(shared: &Arc<Shared>) -> EmbeddedStore {
        EmbeddedStore { shared: shared.clone() }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Events

/// Removes up to [`PURGE_BATCH`] events whose expiry has passed.
fn purge_events(
    events: &mut KeyedTable<'_>,
    ttl: &mut Table<'_, (i64, &'static str, &'static str), ()>,
    now: i64,
) -> StoreResult<()> {
    let mut due = Vec::new();
    for item in ttl.range(..(now.saturating_add(1), "", "")).map_err(db_err)?.take(PURGE_BATCH) {
        let (k, _) = item.map_err(db_err)?;
        let (at, tenant, id) = k.value();
        due.push((at, tenant.to_string(), id.to_string()));
    }
    for (at, tenant, id) in due {
        ttl.remove((at, tenant.as_str(), id.as_str())).map_err(db_err)?;
        let stored = match events.get((tenant.as_str(), id.as_str())).map_err(db_err)? {
            Some(g) => split_expiry("event", g.value()).ok().map(|(e, _)| e),
            None => None,
        };
        // A record stored again after it expired carries a later expiry: keep it.
        if stored == Some(at) {
            events.remove((tenant.as_str(), id.as_str())).map_err(db_err)?;
        }
    }
    Ok(())
}

#[async_trait]
impl EventStore for EmbeddedStore {
    /// One durable write transaction for the whole slice. An expired record counts as absent.
    async fn put_new(&self, events: &[Event], expires_at: Timestamp) -> StoreResult<Vec<bool>> {
        let expires = expires_at.timestamp_millis();
        let rows = events
            .iter()
            .map(|e| Ok((e.tenant.clone(), e.id.clone(), with_expiry(expires, &to_json("event", e)?))))
            .collect::<StoreResult<Vec<_>>>()?;
        self.shared
            .run(move |s| {
                let now = s.now_ms();
                let tx = s.db.begin_write().map_err(db_err)?;
                let mut out = Vec::with_capacity(rows.len());
                {
                    let mut table = tx.open_table(EVENTS).map_err(db_err)?;
                    let mut ttl = tx.open_table(EVENTS_TTL).map_err(db_err)?;
                    for (tenant, id, value) in &rows {
                        let key = (tenant.as_str(), id.as_str());
                        let stored = match table.get(key).map_err(db_err)? {
                            Some(g) => Some(split_expiry("event", g.value())?.0),
                            None => None,
                        };
                        match stored {
                            Some(at) if at > now => {
                                out.push(false);
                                continue;
                            }
                            Some(at) => {
                                ttl.remove((at, tenant.as_str(), id.as_str())).map_err(db_err)?;
                            }
                            None => {}
                        }
                        table.insert(key, value.as_slice()).map_err(db_err)?;
                        ttl.insert((expires, tenant.as_str(), id.as_str()), ()).map_err(db_err)?;
                        out.push(true);
                    }
                    purge_events(&mut table, &mut ttl, now)?;
                }
                // Durable even when nothing was new: it also persists earlier non-durable window merges.
                tx.commit().map_err(db_err)?;
                Ok(out)
            })
            .await
    }

    async fn get(&self, tenant: &str, id: &str) -> StoreResult<Option<Event>> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.shared
            .run(move |s| {
                let now = s.now_ms();
                let tx = s.db.begin_read().map_err(db_err)?;
                let table = tx.open_table(EVENTS).map_err(db_err)?;
                let Some(g) = table.get((tenant.as_str(), id.as_str())).map_err(db_err)? else {
                    return Ok(None);
                };
                let (at, json) = split_expiry("event", g.value())?;
                if at <= now {
                    return Ok(None);
                }
                from_json("event", json).map(Some)
            })
            .await
    }
}

// ---------------------------------------------------------------------------------------------------------
// Windows
//
// One key per entry, (window key, `WindowEntry::encode`), so a merge inserts only its new entries instead of
// rewriting the whole set; `windows` holds each window's expiry.

type EntryTable<'t> = Table<'t, (&'static str, &'static str), ()>;

/// Bounds of every entry key of one window: (key, *) sorts before (key + "\0", "").
fn entry_range(key: &str) -> ((&str, &str), String) {
    ((key, ""), format!("{key}\0"))
}

fn read_entries(entries: &EntryTable<'_>, key: &str) -> StoreResult<Vec<WindowEntry>> {
    let (from, past) = entry_range(key);
    let mut out = Vec::new();
    for item in entries.range(from..(past.as_str(), "")).map_err(db_err)? {
        let (k, _) = item.map_err(db_err)?;
        let encoded = k.value().1;
        out.push(WindowEntry::decode(encoded).ok_or_else(|| corrupt("window entry", encoded))?);
    }
    Ok(out)
}

fn clear_entries(entries: &mut EntryTable<'_>, key: &str) -> StoreResult<()> {
    let (from, past) = entry_range(key);
    entries.retain_in(from..(past.as_str(), ""), |_, _| false).map_err(db_err)
}

fn purge_windows(
    windows: &mut Table<'_, &'static str, i64>,
    entries: &mut EntryTable<'_>,
    ttl: &mut Table<'_, (i64, &'static str), ()>,
    now: i64,
) -> StoreResult<()> {
    let mut due = Vec::new();
    for item in ttl.range(..(now.saturating_add(1), "")).map_err(db_err)?.take(PURGE_BATCH) {
        let (k, _) = item.map_err(db_err)?;
        let (at, key) = k.value();
        due.push((at, key.to_string()));
    }
    for (at, key) in due {
        ttl.remove((at, key.as_str())).map_err(db_err)?;
        let stored = windows.get(key.as_str()).map_err(db_err)?.map(|g| g.value());
        if stored == Some(at) {
            windows.remove(key.as_str()).map_err(db_err)?;
            clear_entries(entries, &key)?;
        }
    }
    Ok(())
}

#[async_trait]
impl WindowStore for EmbeddedStore {
    /// One write transaction for every update, committed without `fsync` (see the module docs: the durable
    /// commits that follow in the same message's handling persist it, and a redelivery repeats it). An expired
    /// window starts empty.
    async fn merge(&self, updates: &[WindowUpdate], expires_at: Timestamp) -> StoreResult<Vec<Vec<WindowEntry>>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let expires = expires_at.timestamp_millis();
        let updates: Vec<(String, Vec<String>)> =
            updates.iter().map(|u| (u.key.clone(), u.entries.iter().map(WindowEntry::encode).collect())).collect();
        self.shared
            .run(move |s| {
                let now = s.now_ms();
                let mut tx = s.db.begin_write().map_err(db_err)?;
                tx.set_durability(Durability::None).map_err(db_err)?;
                let mut out = Vec::with_capacity(updates.len());
                {
                    let mut windows = tx.open_table(WINDOWS).map_err(db_err)?;
                    let mut entries = tx.open_table(WINDOW_ENTRIES).map_err(db_err)?;
                    let mut ttl = tx.open_table(WINDOWS_TTL).map_err(db_err)?;
                    for (key, new) in &updates {
                        let old = windows.get(key.as_str()).map_err(db_err)?.map(|g| g.value());
                        let live = old.filter(|at| *at > now);
                        if old.is_some() && live.is_none() {
                            clear_entries(&mut entries, key)?;
                        }
                        if !new.is_empty() {
                            for e in new {
                                entries.insert((key.as_str(), e.as_str()), ()).map_err(db_err)?;
                            }
                            let new_expiry = live.map_or(expires, |at| at.max(expires));
                            if old != Some(new_expiry) {
                                windows.insert(key.as_str(), new_expiry).map_err(db_err)?;
                                if let Some(at) = old {
                                    ttl.remove((at, key.as_str())).map_err(db_err)?;
                                }
                                ttl.insert((new_expiry, key.as_str()), ()).map_err(db_err)?;
                            }
                        }
                        out.push(read_entries(&entries, key)?);
                    }
                    purge_windows(&mut windows, &mut entries, &mut ttl, now)?;
                }
                tx.commit().map_err(db_err)?;
                Ok(out)
            })
            .await
    }

    /// Removes the given entries (non-durably, like `merge`); a window left empty is deleted.
    async fn prune(&self, removals: &[WindowUpdate]) -> StoreResult<()> {
        let removals: Vec<(String, Vec<String>)> = removals
            .iter()
            .filter(|u| !u.entries.is_empty())
            .map(|u| (u.key.clone(), u.entries.iter().map(WindowEntry::encode).collect()))
            .collect();
        if removals.is_empty() {
            return Ok(());
        }
        self.shared
            .run(move |s| {
                let mut tx = s.db.begin_write().map_err(db_err)?;
                tx.set_durability(Durability::None).map_err(db_err)?;
                {
                    let mut windows = tx.open_table(WINDOWS).map_err(db_err)?;
                    let mut entries = tx.open_table(WINDOW_ENTRIES).map_err(db_err)?;
                    let mut ttl = tx.open_table(WINDOWS_TTL).map_err(db_err)?;
                    for (key, gone) in &removals {
                        let Some(at) = windows.get(key.as_str()).map_err(db_err)?.map(|g| g.value()) else {
                            continue;
                        };
                        for e in gone {
                            entries.remove((key.as_str(), e.as_str())).map_err(db_err)?;
                        }
                        let (from, past) = entry_range(key);
                        let empty = entries.range(from..(past.as_str(), "")).map_err(db_err)?.next().is_none();
                        if empty {
                            windows.remove(key.as_str()).map_err(db_err)?;
                            ttl.remove((at, key.as_str())).map_err(db_err)?;
                        }
                    }
                }
                tx.commit().map_err(db_err)
            })
            .await
    }
}

// ---------------------------------------------------------------------------------------------------------
// Alerts and tickets

fn page_limit(limit: usize) -> usize {
    if limit == 0 {
        DEFAULT_PAGE
    } else {
        limit.min(MAX_PAGE)
    }
}

/// Newest first (descending id) within one tenant, from after the cursor (the last id of the previous page).
fn list_page<T: DeserializeOwned>(
    s: &Shared,
    def: TableDefinition<'static, (&'static str, &'static str), &'static [u8]>,
    what: &str,
    tenant: &str,
    page: &PageRequest,
    keep: impl Fn(&T) -> bool,
) -> StoreResult<Page<T>> {
    let limit = page_limit(page.limit);
    let tx = s.db.begin_read().map_err(db_err)?;
    let table = tx.open_table(def).map_err(db_err)?;
    // Every key (tenant, *) sorts before (tenant + "\0", ""), the next tenant string.
    let past_tenant = format!("{tenant}\0");
    let range = match page.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(cursor) => table.range((tenant, "")..(tenant, cursor)),
        None => table.range((tenant, "")..(past_tenant.as_str(), "")),
    }
    .map_err(db_err)?;
    let mut items = Vec::new();
    let mut last_id = None;
    let mut more = false;
    for item in range.rev() {
        let (k, v) = item.map_err(db_err)?;
        let value: T = from_json(what, v.value())?;
        if !keep(&value) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        last_id = Some(k.value().1.to_string());
        items.push(value);
    }
    Ok(Page { items, next: if more { last_id } else { None } })
}

fn get_json<T: DeserializeOwned>(
    s: &Shared,
    def: TableDefinition<'static, (&'static str, &'static str), &'static [u8]>,
    what: &str,
    tenant: &str,
    id: &str,
) -> StoreResult<Option<T>> {
    let tx = s.db.begin_read().map_err(db_err)?;
    let table = tx.open_table(def).map_err(db_err)?;
    let Some(g) = table.get((tenant, id)).map_err(db_err)? else {
        return Ok(None);
    };
    from_json(what, g.value()).map(Some)
}

/// The open-or-roll-up decision, inside the caller's write transaction. Returns the outcome and whether
/// anything was written.
fn record_in(tx: &redb::WriteTransaction, c: &AlertCandidate) -> StoreResult<(RecordOutcome, bool)> {
    let d = &c.detection;
    let (tenant, rule, entity) = (c.alert.tenant.as_str(), c.alert.rule.as_str(), c.alert.entity.as_str());
    let seen_key = (tenant, rule, entity, d.id.as_str());
    let mut seen = tx.open_table(ALERT_DETECTIONS).map_err(db_err)?;
    // Idempotent per detection id, whichever alert it went into (the one it opened included).
    let recorded = seen.get(seen_key).map_err(db_err)?.map(|g| g.value().to_string());
    if let Some(alert_id) = recorded {
        return Ok((RecordOutcome::AlreadyRecorded { alert_id }, false));
    }
    let mut heads = tx.open_table(ALERT_HEADS).map_err(db_err)?;
    let mut alerts = tx.open_table(ALERTS).map_err(db_err)?;
    let head = heads.get((tenant, rule, entity)).map_err(db_err)?.map(|g| g.value().to_string());
    let open: Option<Alert> = match &head {
        Some(id) => match alerts.get((tenant, id.as_str())).map_err(db_err)? {
            Some(g) => Some(from_json("alert", g.value())?),
            None => {
                tracing::warn!(tenant, rule, entity, alert = %id, "alert head points at a missing alert");
                None
            }
        },
        None => None,
    };
    match open {
        Some(mut alert) if d.last_seen < alert.suppress_until => {
            roll_up(&mut alert, d, c.alert.updated_at);
            alerts.insert((tenant, alert.id.as_str()), to_json("alert", &alert)?.as_slice()).map_err(db_err)?;
            seen.insert(seen_key, alert.id.as_str()).map_err(db_err)?;
            Ok((RecordOutcome::RolledUp { alert_id: alert.id }, true))
        }
        _ => {
            let alert_id = c.alert.id.clone();
            if alerts.get((tenant, alert_id.as_str())).map_err(db_err)?.is_some() {
                // Never overwrite an alert (and the analyst's ticket): only a lost detection record gets here.
                seen.insert(seen_key, alert_id.as_str()).map_err(db_err)?;
                return Ok((RecordOutcome::AlreadyRecorded { alert_id }, true));
            }
            alerts.insert((tenant, alert_id.as_str()), to_json("alert", &c.alert)?.as_slice()).map_err(db_err)?;
            put_ticket(tx, None, &c.ticket)?;
            heads.insert((tenant, rule, entity), alert_id.as_str()).map_err(db_err)?;
            seen.insert(seen_key, alert_id.as_str()).map_err(db_err)?;
            Ok((RecordOutcome::Opened { alert_id, ticket_id: c.ticket.id.clone() }, true))
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Ticket indexes: (tenant, value, ticket id) -> () per filterable field, kept in the transaction that writes
// the ticket, so listing with a filter walks only the matching tickets.

type IndexDef = TableDefinition<'static, (&'static str, &'static str, &'static str), ()>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TicketIndex {
    Status,
    Assignee,
    Rule,
    Severity,
}

impl TicketIndex {
    const ALL: [TicketIndex; 4] =
        [TicketIndex::Status, TicketIndex::Assignee, TicketIndex::Rule, TicketIndex::Severity];

    fn table(self) -> IndexDef {
        match self {
            TicketIndex::Status => TICKETS_BY_STATUS,
            TicketIndex::Assignee => TICKETS_BY_ASSIGNEE,
            TicketIndex::Rule => TICKETS_BY_RULE,
            TicketIndex::Severity => TICKETS_BY_SEVERITY,
        }
    }

    /// The ticket's value in this index (`None`: not in it).
    fn value(self, t: &Ticket) -> Option<String> {
        match self {
            TicketIndex::Status => Some(t.status.as_str().to_string()),
            TicketIndex::Assignee => t.assignee.clone(),
            TicketIndex::Rule => Some(t.rule.clone()),
            TicketIndex::Severity => Some(t.severity.as_str().to_string()),
        }
    }

    /// The index a filter is served from: status, unless it asks for closed tickets (the bulk of them) and
    /// names something narrower; then assignee, rule, severity.
    fn pick(f: &TicketFilter) -> Option<(TicketIndex, String)> {
        let narrower = f.assignee.is_some() || f.rule.is_some();
        match (&f.status, &f.assignee, &f.rule, &f.severity) {
            (Some(s), ..) if !(*s == TicketStatus::Closed && narrower) => {
                Some((TicketIndex::Status, s.as_str().to_string()))
            }
            (_, Some(a), ..) => Some((TicketIndex::Assignee, a.clone())),
            (_, _, Some(r), _) => Some((TicketIndex::Rule, r.clone())),
            (Some(s), ..) => Some((TicketIndex::Status, s.as_str().to_string())),
            (_, _, _, Some(s)) => Some((TicketIndex::Severity, s.as_str().to_string())),
            _ => None,
        }
    }
}

/// Writes `new` (replacing `old`, the stored version, if any) and moves its index entries.
fn put_ticket(tx: &redb::WriteTransaction, old: Option<&Ticket>, new: &Ticket) -> StoreResult<()> {
    let mut tickets = tx.open_table(TICKETS).map_err(db_err)?;
    tickets.insert((new.tenant.as_str(), new.id.as_str()), to_json("ticket", new)?.as_slice()).map_err(db_err)?;
    for index in TicketIndex::ALL {
        let before = old.and_then(|t| index.value(t));
        let after = index.value(new);
        if before == after {
            continue;
        }
        let mut table = tx.open_table(index.table()).map_err(db_err)?;
        if let Some(v) = before {
            table.remove((new.tenant.as_str(), v.as_str(), new.id.as_str())).map_err(db_err)?;
        }
        if let Some(v) = after {
            table.insert((new.tenant.as_str(), v.as_str(), new.id.as_str()), ()).map_err(db_err)?;
        }
    }
    Ok(())
}

/// Fills the ticket indexes from the tickets table when they are empty but tickets exist (a database written
/// before the indexes existed). Called once when the database opens.
pub(crate) fn rebuild_ticket_indexes(tx: &redb::WriteTransaction) -> StoreResult<()> {
    {
        let status = tx.open_table(TICKETS_BY_STATUS).map_err(db_err)?;
        let tickets = tx.open_table(TICKETS).map_err(db_err)?;
        if !status.is_empty().map_err(db_err)? || tickets.is_empty().map_err(db_err)? {
            return Ok(());
        }
    }
    let all: Vec<Ticket> = {
        let tickets = tx.open_table(TICKETS).map_err(db_err)?;
        let mut all = Vec::new();
        for item in tickets.iter().map_err(db_err)? {
            let (_, v) = item.map_err(db_err)?;
            all.push(from_json("ticket", v.value())?);
        }
        all
    };
    for index in TicketIndex::ALL {
        let mut table = tx.open_table(index.table()).map_err(db_err)?;
        for t in &all {
            if let Some(v) = index.value(t) {
                table.insert((t.tenant.as_str(), v.as_str(), t.id.as_str()), ()).map_err(db_err)?;
            }
        }
    }
    tracing::info!(tickets = all.len(), "ticket indexes rebuilt");
    Ok(())
}

/// A page of the tenant's tickets whose `index` value is `value`, newest first, keeping those matching the
/// rest of `filter`.
fn list_by_index(
    s: &Shared,
    index: TicketIndex,
    tenant: &str,
    value: &str,
    filter: &TicketFilter,
    page: &PageRequest,
) -> StoreResult<Page<Ticket>> {
    let limit = page_limit(page.limit);
    let tx = s.db.begin_read().map_err(db_err)?;
    let entries = tx.open_table(index.table()).map_err(db_err)?;
    let tickets = tx.open_table(TICKETS).map_err(db_err)?;
    let past_value = format!("{value}\0");
    let range = match page.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(cursor) => entries.range((tenant, value, "")..(tenant, value, cursor)),
        None => entries.range((tenant, value, "")..(tenant, past_value.as_str(), "")),
    }
    .map_err(db_err)?;
    let mut items = Vec::new();
    let mut more = false;
    for item in range.rev() {
        let (k, _) = item.map_err(db_err)?;
        let id = k.value().2;
        let Some(g) = tickets.get((tenant, id)).map_err(db_err)? else {
            tracing::warn!(tenant, ticket = id, "ticket index names a missing ticket");
            continue;
        };
        let t: Ticket = from_json("ticket", g.value())?;
        if !filter.matches(&t) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(t);
    }
    let next = if more { items.last().map(|t: &Ticket| t.id.clone()) } else { None };
    Ok(Page { items, next })
}

fn check_next_version(ticket: &Ticket, expected_version: u64) -> StoreResult<()> {
    if expected_version.checked_add(1) == Some(ticket.version) {
        Ok(())
    } else {
        Err(StoreError::Permanent(format!(
            "ticket {} has version {}; an update from version {expected_version} must carry {}",
            ticket.id,
            ticket.version,
            expected_version.saturating_add(1)
        )))
    }
}

fn not_found(t: &Ticket) -> StoreError {
    StoreError::Permanent(format!("{TICKET_NOT_FOUND}: tenant {} has no ticket {}", t.tenant, t.id))
}

#[async_trait]
impl AlertStore for EmbeddedStore {
    /// One durable write transaction; redb runs one writer at a time, so concurrent calls serialise.
    /// The candidate's `on_open` / `on_detection` writes are applied in the same transaction.
    async fn record(&self, candidate: &AlertCandidate) -> StoreResult<RecordOutcome> {
        let c = candidate.clone();
        self.shared
            .run(move |s| {
                let tx = s.db.begin_write().map_err(db_err)?;
                let (outcome, changed) = record_in(&tx, &c)?;
                let tenant = c.alert.tenant.as_str();
                match &outcome {
                    RecordOutcome::Opened { .. } => {
                        apply_in(&tx, tenant, &c.on_open)?;
                        apply_in(&tx, tenant, &c.on_detection)?;
                    }
                    RecordOutcome::RolledUp { .. } => apply_in(&tx, tenant, &c.on_detection)?,
                    RecordOutcome::AlreadyRecorded { .. } => {}
                }
                if changed {
                    tx.commit().map_err(db_err)?;
                } else {
                    tx.abort().map_err(db_err)?;
                }
                Ok(outcome)
            })
            .await
    }

    async fn get_alert(&self, tenant: &str, id: &str) -> StoreResult<Option<Alert>> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.shared.run(move |s| get_json(s, ALERTS, "alert", &tenant, &id)).await
    }

    async fn list_alerts(&self, tenant: &str, page: &PageRequest) -> StoreResult<Page<Alert>> {
        let (tenant, page) = (tenant.to_string(), page.clone());
        self.shared.run(move |s| list_page(s, ALERTS, "alert", &tenant, &page, |_: &Alert| true)).await
    }

    async fn get_ticket(&self, tenant: &str, id: &str) -> StoreResult<Option<Ticket>> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.shared.run(move |s| get_json(s, TICKETS, "ticket", &tenant, &id)).await
    }

    /// One durable write transaction: version check, ticket, its index entries and the aggregate writes.
    async fn update_ticket(
        &self,
        ticket: &Ticket,
        expected_version: u64,
        writes: &[AggregateWrite],
    ) -> StoreResult<()> {
        check_next_version(ticket, expected_version)?;
        let (ticket, writes) = (ticket.clone(), writes.to_vec());
        self.shared
            .run(move |s| {
                let tx = s.db.begin_write().map_err(db_err)?;
                let old: Ticket = {
                    let tickets = tx.open_table(TICKETS).map_err(db_err)?;
                    let stored = tickets.get((ticket.tenant.as_str(), ticket.id.as_str())).map_err(db_err)?;
                    match stored {
                        Some(g) => from_json("ticket", g.value())?,
                        None => return Err(not_found(&ticket)),
                    }
                };
                if old.version != expected_version {
                    return Err(StoreError::Conflict(format!(
                        "ticket {} is at version {}, not {expected_version}",
                        ticket.id, old.version
                    )));
                }
                put_ticket(&tx, Some(&old), &ticket)?;
                apply_in(&tx, &ticket.tenant, &writes)?;
                tx.commit().map_err(db_err)
            })
            .await
    }

    async fn list_tickets(&self, tenant: &str, filter: &TicketFilter, page: &PageRequest) -> StoreResult<Page<Ticket>> {
        let (tenant, filter, page) = (tenant.to_string(), filter.clone(), page.clone());
        self.shared
            .run(move |s| match TicketIndex::pick(&filter) {
                Some((index, value)) => list_by_index(s, index, &tenant, &value, &filter, &page),
                None => list_page(s, TICKETS, "ticket", &tenant, &page, |_: &Ticket| true),
            })
            .await
    }
}

#[async_trait]
impl Aggregates for EmbeddedStore {
    /// One durable write transaction: all or nothing, and serialised with every other writer.
    async fn apply(&self, tenant: &str, writes: &[AggregateWrite]) -> StoreResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let (tenant, writes) = (tenant.to_string(), writes.to_vec());
        self.shared
            .run(move |s: &Shared| {
                let tx = s.db.begin_write().map_err(db_err)?;
                apply_in(&tx, &tenant, &writes)?;
                tx.commit().map_err(db_err)
            })
            .await
    }

    async fn totals(&self, tenant: &str) -> StoreResult<Vec<(String, i64)>> {
        let tenant = tenant.to_string();
        self.shared.run(move |s: &Shared| aggregates::totals_in(s, &tenant)).await
    }

    async fn hourly(&self, tenant: &str, from: Timestamp, to: Timestamp) -> StoreResult<Vec<HourlyCount>> {
        let tenant = tenant.to_string();
        self.shared.run(move |s: &Shared| aggregates::hourly_in(s, &tenant, from, to)).await
    }

    async fn samples(&self, tenant: &str, kind: &str, from: Timestamp, to: Timestamp) -> StoreResult<Vec<Sample>> {
        let (tenant, kind) = (tenant.to_string(), kind.to_string());
        self.shared.run(move |s: &Shared| aggregates::samples_in(s, &tenant, &kind, from, to)).await
    }
}
