//! Queue checks: delivery, visibility, release, dead letters, depth.

use super::*;

/// Bodies come back byte-identical, once each, with receive count 1; deleted messages are gone.
pub async fn queue_round_trip(p: &Ports) {
    let sent = [
        r#"{"events":[{"id":"e1","tenant":"acme"}]}"#,
        "ünïcødé ✓ 😀 — テスト",
        "line one\nline two\ttabbed <xml attr=\"1\"> & 'quotes' \\ backslash",
    ];
    send(&*p.events_queue, &sent).await;
    let got = receive_n(&*p.events_receiver, sent.len(), HIDDEN).await;
    let mut expected: Vec<String> = sent.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(bodies(&got), expected);
    assert!(got.iter().all(|m| m.receive_count == 1), "{got:?}");
    let ids: BTreeSet<_> = got.iter().map(|m| m.message_id.clone()).collect();
    let receipts: Vec<String> = got.iter().map(|m| m.receipt.clone()).collect();
    assert_eq!(ids.len(), sent.len(), "message ids must be distinct");
    assert_eq!(receipts.iter().collect::<BTreeSet<_>>().len(), sent.len(), "receipts must be distinct");
    p.events_receiver.delete(&receipts).await.expect("delete");
    assert_eq!(depth(&*p.events_receiver).await, QueueDepth { visible: 0, in_flight: 0 });
    assert_empty(&*p.events_receiver, "after delete").await;
}

/// One `send` of more bodies than one SQS batch holds delivers all of them.
pub async fn queue_send_many_in_one_call(p: &Ports) {
    let sent: Vec<String> = (0..25).map(|i| format!("message {i:02}")).collect();
    p.detections_queue.send(&sent).await.expect("send");
    let got = receive_n(&*p.detections_receiver, sent.len(), HIDDEN).await;
    assert_eq!(bodies(&got), sent);
}

/// A body of 250 KiB (close to the queue limit) round-trips unchanged.
pub async fn queue_large_body(p: &Ports) {
    let unit = "0123456789abcdef{\"k\":\"v\"}\n";
    let mut big: String = unit.repeat(250 * 1024 / unit.len() + 1);
    big.truncate(250 * 1024);
    p.events_queue.send(std::slice::from_ref(&big)).await.expect("send");
    let got = receive_one(&*p.events_receiver, HIDDEN).await;
    assert_eq!(got.body.len(), big.len());
    assert!(got.body == big, "large body changed in transit");
}

/// A message not deleted within its visibility timeout is received again, with a new receipt.
pub async fn queue_redelivery_after_visibility(p: &Ports) {
    send(&*p.events_queue, &["redeliver me"]).await;
    let first = receive_one(&*p.events_receiver, Duration::ZERO).await;
    assert_eq!(first.receive_count, 1);
    let second = receive_one(&*p.events_receiver, HIDDEN).await;
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.body, "redeliver me");
    assert_eq!(second.receive_count, 2);
    assert_ne!(second.receipt, first.receipt, "every receive gives a new receipt");
}

/// A received message stays invisible while its visibility timeout runs.
pub async fn queue_invisible_while_in_flight(p: &Ports) {
    send(&*p.events_queue, &["in flight"]).await;
    let m = receive_one(&*p.events_receiver, HIDDEN).await;
    assert_eq!(m.body, "in flight");
    assert_empty(&*p.events_receiver, "while in flight").await;
}

/// `release` makes a received message visible again before its timeout.
pub async fn queue_release(p: &Ports) {
    send(&*p.events_queue, &["retry me"]).await;
    let first = receive_one(&*p.events_receiver, HIDDEN).await;
    p.events_receiver.release(&first.receipt, Duration::ZERO).await.expect("release");
    let second = receive_one(&*p.events_receiver, HIDDEN).await;
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.receive_count, 2);
    p.events_receiver.delete(std::slice::from_ref(&second.receipt)).await.expect("delete");
    assert_eq!(depth(&*p.events_receiver).await, QueueDepth { visible: 0, in_flight: 0 });
}

/// Deleting with a receipt from an earlier receive is not an error, and the current receipt deletes.
/// (Whether the stale receipt deletes is not specified: SQS says it "might not".)
pub async fn queue_delete_with_stale_receipt_succeeds(p: &Ports) {
    send(&*p.events_queue, &["stale"]).await;
    let first = receive_one(&*p.events_receiver, Duration::ZERO).await;
    let second = receive_one(&*p.events_receiver, HIDDEN).await;
    assert_ne!(first.receipt, second.receipt);
    p.events_receiver.delete(std::slice::from_ref(&first.receipt)).await.expect("delete with a stale receipt");
    p.events_receiver.delete(std::slice::from_ref(&second.receipt)).await.expect("delete with the current receipt");
    assert_eq!(depth(&*p.events_receiver).await, QueueDepth { visible: 0, in_flight: 0 });
}

/// After the queue's maximum receive count, the message moves to the dead-letter queue.
pub async fn queue_dead_letter_after_max_receives(p: &Ports) {
    let queues: [(&dyn QueueSender, &dyn QueueReceiver, &dyn QueueReceiver, u32); 2] = [
        (&*p.events_queue, &*p.events_receiver, &*p.events_dead_letters, EVENTS_QUEUE.max_receive_count),
        (
            &*p.detections_queue,
            &*p.detections_receiver,
            &*p.detections_dead_letters,
            DETECTIONS_QUEUE.max_receive_count,
        ),
    ];
    for (tx, rx, dlq, max) in queues {
        send(tx, &["poison"]).await;
        let mut deliveries = Vec::new();
        for _ in 0..max + 3 {
            let got = rx.receive(10, Duration::ZERO, POLL).await.expect("receive");
            if got.is_empty() {
                break;
            }
            deliveries.extend(got);
        }
        let counts: Vec<u32> = deliveries.iter().map(|m| m.receive_count).collect();
        assert_eq!(counts, (1..=max).collect::<Vec<_>>(), "deliveries before dead-lettering");
        assert_empty(rx, "after dead-lettering").await;
        let dead = receive_one(dlq, HIDDEN).await;
        assert_eq!(dead.body, "poison");
        assert_eq!(depth(rx).await, QueueDepth { visible: 0, in_flight: 0 });
    }
}

/// Depth counts visible and in-flight messages.
pub async fn queue_depth_counts_visible_and_in_flight(p: &Ports) {
    assert_eq!(depth(&*p.events_receiver).await, QueueDepth { visible: 0, in_flight: 0 });
    send(&*p.events_queue, &["a", "b", "c"]).await;
    assert_eq!(depth(&*p.events_receiver).await, QueueDepth { visible: 3, in_flight: 0 });
    let m = receive_one(&*p.events_receiver, HIDDEN).await;
    assert_eq!(depth(&*p.events_receiver).await, QueueDepth { visible: 2, in_flight: 1 });
    p.events_receiver.delete(&[m.receipt]).await.expect("delete");
    assert_eq!(depth(&*p.events_receiver).await, QueueDepth { visible: 2, in_flight: 0 });
}

/// A receive with `wait` that is in progress when a message is sent gets it (or the next receive does);
/// `wait` zero on an empty queue returns empty.
pub async fn queue_long_poll_receives_message_sent_meanwhile(p: &Ports) {
    assert!(p.events_receiver.receive(10, HIDDEN, Duration::ZERO).await.expect("receive").is_empty());
    let rx = p.events_receiver.clone();
    let waiter = tokio::spawn(async move { rx.receive(10, HIDDEN, POLL).await });
    tokio::task::yield_now().await;
    send(&*p.events_queue, &["while you wait"]).await;
    let mut got = waiter.await.expect("join").expect("receive");
    if got.is_empty() {
        got = receive_n(&*p.events_receiver, 1, HIDDEN).await;
    }
    assert_eq!(bodies(&got), vec!["while you wait".to_string()]);
}

/// The four queues of the bundle are distinct.
pub async fn queues_are_independent(p: &Ports) {
    send(&*p.events_queue, &["event batch"]).await;
    send(&*p.detections_queue, &["detection batch"]).await;
    assert_empty(&*p.events_dead_letters, "events dead letters").await;
    assert_empty(&*p.detections_dead_letters, "detections dead letters").await;
    assert_eq!(bodies(&receive_n(&*p.events_receiver, 1, HIDDEN).await), vec!["event batch".to_string()]);
    assert_eq!(bodies(&receive_n(&*p.detections_receiver, 1, HIDDEN).await), vec!["detection batch".to_string()]);
    assert_empty(&*p.events_receiver, "events").await;
    assert_empty(&*p.detections_receiver, "detections").await;
}
