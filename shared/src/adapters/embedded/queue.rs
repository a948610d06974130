//! Durable queues with SQS semantics: visibility timeouts, receive counts, receipts that change on every
//! receive, redrive to a dead-letter queue, retention, and long polling.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use tokio::sync::Notify;

use super::{corrupt, db_err, retention_ms, Shared, QUEUE_SEQ};
use crate::error::{StoreError, StoreResult};
use crate::ports::{QueueDepth, QueueReceiver, QueueSender, ReceivedMessage, MAX_QUEUE_MESSAGE_BYTES};
use crate::schema::QueueSpec;

/// The two tables of one queue, keyed by a per-queue sequence number (send order).
pub(crate) struct QueueTables {
    name: String,
    meta: String,
    body: String,
}

impl QueueTables {
    fn new(name: &str) -> QueueTables {
        QueueTables { name: name.to_string(), meta: format!("queue.{name}.meta"), body: format!("queue.{name}.body") }
    }

    /// Small per-message state, rewritten on every receive; the body is written once.
    fn meta(&self) -> TableDefinition<'_, u64, &'static [u8]> {
        TableDefinition::new(&self.meta)
    }

    fn body(&self) -> TableDefinition<'_, u64, &'static str> {
        TableDefinition::new(&self.body)
    }

    pub(crate) fn create(&self, tx: &WriteTransaction) -> StoreResult<()> {
        tx.open_table(self.meta()).map_err(db_err)?;
        tx.open_table(self.body()).map_err(db_err)?;
        Ok(())
    }

    /// On open, messages still in flight were received by a process that is gone (the database admits one
    /// process at a time): make them visible now instead of after their visibility timeout, and void their
    /// receipts. Receive counts stay, so a message that crashes the host still reaches the dead-letter queue.
    pub(crate) fn recover_in_flight(&self, tx: &WriteTransaction, now: i64) -> StoreResult<usize> {
        let mut metas = tx.open_table(self.meta()).map_err(db_err)?;
        let mut stuck = Vec::new();
        for item in metas.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            let m = Meta::decode(v.value())?;
            if m.nonce != 0 && m.visible_at > now {
                stuck.push((k.value(), m));
            }
        }
        for (seq, m) in &stuck {
            let m = Meta { visible_at: now, nonce: 0, ..m.clone() };
            metas.insert(*seq, m.encode().as_slice()).map_err(db_err)?;
        }
        Ok(stuck.len())
    }
}

/// Reserves `n` sequence numbers of a queue and returns the first.
fn next_seqs(tx: &WriteTransaction, queue: &str, n: usize) -> StoreResult<u64> {
    let mut seqs = tx.open_table(QUEUE_SEQ).map_err(db_err)?;
    let last = seqs.get(queue).map_err(db_err)?.map(|g| g.value()).unwrap_or(0);
    let n = u64::try_from(n).map_err(|_| StoreError::Permanent("too many messages".into()))?;
    let end = last.checked_add(n).ok_or_else(|| corrupt("queue sequence", "exhausted"))?;
    seqs.insert(queue, end).map_err(db_err)?;
    Ok(last + 1)
}

/// Per-message state: `visible_at` (ms) | `receive_count` | receipt nonce (0 = no receipt) | `sent_at` (ms) |
/// message id (the rest), fixed-width fields big-endian.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Meta {
    visible_at: i64,
    receive_count: u32,
    nonce: u64,
    sent_at: i64,
    message_id: String,
}

const META_FIXED: usize = 8 + 4 + 8 + 8;

impl Meta {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(META_FIXED + self.message_id.len());
        v.extend_from_slice(&self.visible_at.to_be_bytes());
        v.extend_from_slice(&self.receive_count.to_be_bytes());
        v.extend_from_slice(&self.nonce.to_be_bytes());
        v.extend_from_slice(&self.sent_at.to_be_bytes());
        v.extend_from_slice(self.message_id.as_bytes());
        v
    }

    fn decode(v: &[u8]) -> StoreResult<Meta> {
        let bad = || corrupt("queue message state", format!("{} bytes", v.len()));
        let (visible_at, rest) = v.split_first_chunk::<8>().ok_or_else(bad)?;
        let (receive_count, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
        let (nonce, rest) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
        let (sent_at, rest) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
        let message_id = std::str::from_utf8(rest).map_err(|e| corrupt("queue message id", e))?.to_string();
        Ok(Meta {
            visible_at: i64::from_be_bytes(*visible_at),
            receive_count: u32::from_be_bytes(*receive_count),
            nonce: u64::from_be_bytes(*nonce),
            sent_at: i64::from_be_bytes(*sent_at),
            message_id,
        })
    }
}

/// `seq:nonce`. The nonce is new on every receive, so an older receipt no longer matches.
fn receipt(seq: u64, nonce: u64) -> String {
    format!("{seq}:{nonce:016x}")
}

fn parse_receipt(r: &str) -> Option<(u64, u64)> {
    let (seq, nonce) = r.split_once(':')?;
    let nonce = u64::from_str_radix(nonce, 16).ok().filter(|n| *n != 0)?;
    Some((seq.parse().ok()?, nonce))
}

fn new_nonce() -> u64 {
    rand::random::<u64>().max(1)
}

fn new_message_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Where a queue moves messages received too often.
struct Redrive {
    max_receive_count: u32,
    target: Arc<QueueTables>,
    notify: Arc<Notify>,
}

/// One queue: both its sending and its receiving side.
pub(crate) struct EmbeddedQueue {
    shared: Arc<Shared>,
    tables: Arc<QueueTables>,
    retention_ms: i64,
    /// Signalled when messages may have become visible (send, release, redrive into this queue).
    notify: Arc<Notify>,
    redrive: Option<Redrive>,
}

#[derive(Default)]
struct ReceiveOnce {
    messages: Vec<ReceivedMessage>,
    /// Some messages moved to the dead-letter queue.
    dead_lettered: bool,
    /// The earliest time (ms) an in-flight message becomes visible again.
    next_visible: Option<i64>,
}

impl EmbeddedQueue {
    /// A dead-letter queue: no redrive of its own.
    pub(crate) fn dead_letter(shared: &Arc<Shared>, spec: &QueueSpec) -> EmbeddedQueue {
        EmbeddedQueue {
            shared: shared.clone(),
            tables: Arc::new(QueueTables::new(spec.dead_letter_name)),
            retention_ms: retention_ms(spec, true),
            notify: Arc::new(Notify::new()),
            redrive: None,
        }
    }

    /// A main queue, redriving into `dead_letters` after the spec's maximum receive count.
    pub(crate) fn source(shared: &Arc<Shared>, spec: &QueueSpec, dead_letters: &EmbeddedQueue) -> EmbeddedQueue {
        EmbeddedQueue {
            shared: shared.clone(),
            tables: Arc::new(QueueTables::new(spec.default_name)),
            retention_ms: retention_ms(spec, false),
            notify: Arc::new(Notify::new()),
            redrive: Some(Redrive {
                max_receive_count: spec.max_receive_count,
                target: dead_letters.tables.clone(),
                notify: dead_letters.notify.clone(),
            }),
        }
    }

    pub(crate) fn tables(&self) -> &QueueTables {
        &self.tables
    }

    /// One receive attempt, in one write transaction (committed only if something changed).
    async fn receive_once(&self, max: usize, visibility: Duration) -> StoreResult<ReceiveOnce> {
        let tables = self.tables.clone();
        let redrive = self.redrive.as_ref().map(|r| (r.max_receive_count, r.target.clone()));
        let retention = self.retention_ms;
        let visibility = millis(visibility);
        self.shared
            .run(move |s| {
                let now = s.now_ms();
                let tx = s.db.begin_write().map_err(db_err)?;
                let mut out = ReceiveOnce::default();
                let mut changed = false;
                {
                    let mut metas = tx.open_table(tables.meta()).map_err(db_err)?;
                    let mut bodies = tx.open_table(tables.body()).map_err(db_err)?;
                    let mut picked = Vec::new();
                    let mut dead = Vec::new();
                    let mut expired = Vec::new();
                    for item in metas.iter().map_err(db_err)? {
                        let (k, v) = item.map_err(db_err)?;
                        let seq = k.value();
                        let m = Meta::decode(v.value())?;
                        if now.saturating_sub(m.sent_at) >= retention {
                            expired.push(seq);
                        } else if m.visible_at > now {
                            out.next_visible = Some(out.next_visible.map_or(m.visible_at, |t| t.min(m.visible_at)));
                        } else if redrive.as_ref().is_some_and(|(max_rc, _)| m.receive_count >= *max_rc) {
                            dead.push((seq, m));
                        } else {
                            picked.push((seq, m));
                            if picked.len() >= max {
                                break;
                            }
                        }
                    }
                    for seq in expired {
                        metas.remove(seq).map_err(db_err)?;
                        bodies.remove(seq).map_err(db_err)?;
                        changed = true;
                    }
                    if let (false, Some((_, target))) = (dead.is_empty(), redrive.as_ref()) {
                        let first = next_seqs(&tx, &target.name, dead.len())?;
                        let mut target_metas = tx.open_table(target.meta()).map_err(db_err)?;
                        let mut target_bodies = tx.open_table(target.body()).map_err(db_err)?;
                        for (seq, (old_seq, m)) in (first..).zip(dead) {
                            metas.remove(old_seq).map_err(db_err)?;
                            let body = bodies.remove(old_seq).map_err(db_err)?.map(|g| g.value().to_string());
                            let Some(body) = body else {
                                tracing::error!(queue = %tables.name, seq = old_seq, "queue message without body dropped");
                                continue;
                            };
                            // Like SQS: same message id, original send time, receive count carried over.
                            let moved = Meta { visible_at: now, nonce: 0, ..m };
                            target_metas.insert(seq, moved.encode().as_slice()).map_err(db_err)?;
                            target_bodies.insert(seq, body.as_str()).map_err(db_err)?;
                        }
                        out.dead_lettered = true;
                        changed = true;
                    }
                    for (seq, mut m) in picked {
                        changed = true;
                        let body = bodies.get(seq).map_err(db_err)?.map(|g| g.value().to_string());
                        let Some(body) = body else {
                            tracing::error!(queue = %tables.name, seq, "queue message without body dropped");
                            metas.remove(seq).map_err(db_err)?;
                            continue;
                        };
                        m.receive_count = m.receive_count.saturating_add(1);
                        m.nonce = new_nonce();
                        m.visible_at = now.saturating_add(visibility);
                        metas.insert(seq, m.encode().as_slice()).map_err(db_err)?;
                        out.messages.push(ReceivedMessage {
                            receipt: receipt(seq, m.nonce),
                            message_id: m.message_id,
                            body,
                            receive_count: m.receive_count,
                        });
                    }
                }
                if changed {
                    tx.commit().map_err(db_err)?;
                } else {
                    tx.abort().map_err(db_err)?;
                }
                Ok(out)
            })
            .await
    }
}

#[async_trait]
impl QueueSender for EmbeddedQueue {
    /// Appends every body in one durable commit: `Ok` means they survive a crash.
    async fn send(&self, bodies: &[String]) -> StoreResult<()> {
        if bodies.is_empty() {
            return Ok(());
        }
        if let Some(b) = bodies.iter().find(|b| b.len() > MAX_QUEUE_MESSAGE_BYTES) {
            return Err(StoreError::Permanent(format!(
                "message of {} bytes exceeds the queue limit of {MAX_QUEUE_MESSAGE_BYTES}",
                b.len()
            )));
        }
        let bodies = bodies.to_vec();
        let tables = self.tables.clone();
        self.shared
            .run(move |s| {
                let now = s.now_ms();
                let tx = s.db.begin_write().map_err(db_err)?;
                {
                    let first = next_seqs(&tx, &tables.name, bodies.len())?;
                    let mut metas = tx.open_table(tables.meta()).map_err(db_err)?;
                    let mut stored = tx.open_table(tables.body()).map_err(db_err)?;
                    for (seq, body) in (first..).zip(&bodies) {
                        let m = Meta {
                            visible_at: now,
                            receive_count: 0,
                            nonce: 0,
                            sent_at: now,
                            message_id: new_message_id(),
                        };
                        metas.insert(seq, m.encode().as_slice()).map_err(db_err)?;
                        stored.insert(seq, body.as_str()).map_err(db_err)?;
                    }
                }
                tx.commit().map_err(db_err)
            })
            .await?;
        self.notify.notify_waiters();
        Ok(())
    }
}

#[async_trait]
impl QueueReceiver for EmbeddedQueue {
    /// Up to `max` visible messages in send order. With `wait` > 0 it long-polls: it returns as soon as a
    /// message is available (woken by `send`/`release`, or when an in-flight message's visibility ends), or
    /// empty after `wait`.
    async fn receive(&self, max: usize, visibility: Duration, wait: Duration) -> StoreResult<Vec<ReceivedMessage>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let start = tokio::time::Instant::now();
        let deadline = start.checked_add(wait).unwrap_or(start + Duration::from_secs(365 * 24 * 3600));
        loop {
            // Registered before looking, so a send between the look and the wait is not missed.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let got = self.receive_once(max, visibility).await?;
            if got.dead_lettered {
                if let Some(r) = &self.redrive {
                    r.notify.notify_waiters();
                }
            }
            if !got.messages.is_empty() || wait.is_zero() {
                return Ok(got.messages);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let mut nap = deadline - now;
            if let Some(at) = got.next_visible {
                let until = at.saturating_sub(self.shared.now_ms()).max(1);
                nap = nap.min(Duration::from_millis(u64::try_from(until).unwrap_or(u64::MAX)));
            }
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    /// Deletes the messages whose receipt is current; unknown or stale receipts are ignored.
    async fn delete(&self, receipts: &[String]) -> StoreResult<()> {
        let wanted: Vec<(u64, u64)> = receipts.iter().filter_map(|r| parse_receipt(r)).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let tables = self.tables.clone();
        self.shared
            .run(move |s| {
                let tx = s.db.begin_write().map_err(db_err)?;
                let mut changed = false;
                {
                    let mut metas = tx.open_table(tables.meta()).map_err(db_err)?;
                    let mut bodies = tx.open_table(tables.body()).map_err(db_err)?;
                    for (seq, nonce) in wanted {
                        let current = match metas.get(seq).map_err(db_err)? {
                            Some(g) => Meta::decode(g.value())?.nonce == nonce,
                            None => false,
                        };
                        if current {
                            metas.remove(seq).map_err(db_err)?;
                            bodies.remove(seq).map_err(db_err)?;
                            changed = true;
                        }
                    }
                }
                if changed {
                    tx.commit().map_err(db_err)
                } else {
                    tx.abort().map_err(db_err)
                }
            })
            .await
    }

    /// Makes the message visible at now + `delay`; an unknown or stale receipt is ignored.
    async fn release(&self, receipt: &str, delay: Duration) -> StoreResult<()> {
        let Some((seq, nonce)) = parse_receipt(receipt) else {
            return Ok(());
        };
        let tables = self.tables.clone();
        let delay = millis(delay);
        let released = self
            .shared
            .run(move |s| {
                let now = s.now_ms();
                let tx = s.db.begin_write().map_err(db_err)?;
                let mut changed = false;
                {
                    let mut metas = tx.open_table(tables.meta()).map_err(db_err)?;
                    let current = match metas.get(seq).map_err(db_err)? {
                        Some(g) => Some(Meta::decode(g.value())?).filter(|m| m.nonce == nonce),
                        None => None,
                    };
                    if let Some(mut m) = current {
                        m.visible_at = now.saturating_add(delay);
                        metas.insert(seq, m.encode().as_slice()).map_err(db_err)?;
                        changed = true;
                    }
                }
                if changed {
                    tx.commit().map_err(db_err)?;
                } else {
                    tx.abort().map_err(db_err)?;
                }
                Ok(changed)
            })
            .await?;
        if released {
            self.notify.notify_waiters();
        }
        Ok(())
    }

    async fn depth(&self) -> StoreResult<QueueDepth> {
        let tables = self.tables.clone();
        self.shared
            .run(move |s| {
                let now = s.now_ms();
                let tx = s.db.begin_read().map_err(db_err)?;
                let metas = tx.open_table(tables.meta()).map_err(db_err)?;
                let mut depth = QueueDepth::default();
                for item in metas.iter().map_err(db_err)? {
                    let (_, v) = item.map_err(db_err)?;
                    if Meta::decode(v.value())?.visible_at > now {
                        depth.in_flight += 1;
                    } else {
                        depth.visible += 1;
                    }
                }
                Ok(depth)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_rejects_short_records() {
        let m =
            Meta { visible_at: -5, receive_count: 7, nonce: 42, sent_at: 1_700_000_000_000, message_id: "abc".into() };
        assert_eq!(Meta::decode(&m.encode()).unwrap(), m);
        assert!(matches!(Meta::decode(&[1, 2, 3]), Err(StoreError::Permanent(_))));
    }

    #[test]
    fn receipts_parse_and_reject_garbage() {
        assert_eq!(parse_receipt(&receipt(12, 0xabc)), Some((12, 0xabc)));
        assert_eq!(parse_receipt("12:0"), None);
        assert_eq!(parse_receipt("x:1"), None);
        assert_eq!(parse_receipt("nonsense"), None);
    }
}
