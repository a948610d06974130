//! Window store checks: set-union merges, key isolation, concurrency, pruning.

use super::*;

/// A window is a set: merging returns everything it holds, and an entry merged twice counts once.
pub async fn windows_merge_is_set_union(p: &Ports) {
    let key = "acme#ssh-brute-force#src_ip=203.0.113.7";
    let (e1, e2, e3) = (entry(1_000, "ev1", "failure"), entry(2_000, "ev2", "failure"), entry(3_000, "ev3", "success"));
    let got = p.windows.merge(&[update(key, vec![e1.clone(), e2.clone()])], later()).await.expect("merge");
    assert_eq!(got.len(), 1);
    assert_eq!(set(&got[0]), set(&[e1.clone(), e2.clone()]));
    let got = p.windows.merge(&[update(key, vec![e2.clone(), e3.clone()])], later()).await.expect("merge");
    assert_eq!(set(&got[0]), set(&[e1.clone(), e2.clone(), e3.clone()]));
    let got = p.windows.merge(&[update(key, vec![e1.clone(), e2.clone(), e3.clone()])], later()).await.expect("merge");
    assert_eq!(got[0].len(), 3, "{:?}", got[0]);
}

/// One call updates several keys and answers per key, in input order.
pub async fn windows_merge_several_keys_in_one_call(p: &Ports) {
    let (k1, k2, k3) = ("acme#r1#user=alice", "acme#r1#user=bob", "acme#r2#user=alice");
    let (a, b, c, d) = (entry(1, "a", "x"), entry(2, "b", "x"), entry(3, "c", "y"), entry(4, "d", "z"));
    let got = p
        .windows
        .merge(
            &[update(k1, vec![a.clone()]), update(k2, vec![b.clone(), c.clone()]), update(k3, vec![d.clone()])],
            later(),
        )
        .await
        .expect("merge");
    assert_eq!(got.len(), 3);
    assert_eq!(set(&got[0]), set(std::slice::from_ref(&a)));
    assert_eq!(set(&got[1]), set(&[b.clone(), c.clone()]));
    assert_eq!(set(&got[2]), set(std::slice::from_ref(&d)));
    let e = entry(5, "e", "x");
    let got =
        p.windows.merge(&[update(k2, vec![e.clone()]), update(k1, vec![b.clone()])], later()).await.expect("merge");
    assert_eq!(set(&got[0]), set(&[b.clone(), c, e]));
    assert_eq!(set(&got[1]), set(&[a, b]));
}

/// Keys of different tenants never share entries.
pub async fn windows_keys_are_isolated(p: &Ports) {
    let ours = "acme#ssh-brute-force#src_ip=198.51.100.1";
    let theirs = "globex#ssh-brute-force#src_ip=198.51.100.1";
    let (e1, e2) = (entry(10, "ev1", "failure"), entry(20, "ev2", "failure"));
    p.windows.merge(&[update(ours, vec![e1.clone()])], later()).await.expect("merge");
    let got = p.windows.merge(&[update(theirs, vec![e2.clone()])], later()).await.expect("merge");
    assert_eq!(set(&got[0]), set(&[e2]));
    let e3 = entry(30, "ev3", "failure");
    let got = p.windows.merge(&[update(ours, vec![e3.clone()])], later()).await.expect("merge");
    assert_eq!(set(&got[0]), set(&[e1, e3]));
}

/// Merges into one key from many tasks at once never lose an entry.
pub async fn windows_concurrent_merges_lose_nothing(p: &Ports) {
    let key = "acme#ssh-brute-force#src_ip=192.0.2.99";
    let mut tasks = Vec::new();
    for t in 0..10 {
        let windows = p.windows.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                let e = entry(i64::from(t * 100 + i), &format!("ev-{t}-{i}"), "failure");
                windows.merge(&[update(key, vec![e])], later()).await.expect("merge");
            }
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    let last = entry(9_999, "ev-last", "failure");
    let got = p.windows.merge(&[update(key, vec![last])], later()).await.expect("merge");
    assert_eq!(set(&got[0]).len(), 51, "{:?}", got[0]);
}

/// `prune` removes exactly the given entries; unknown keys and entries are fine.
pub async fn windows_prune(p: &Ports) {
    let key = "acme#http-scan#src_ip=203.0.113.50";
    let (e1, e2, e3, e4) =
        (entry(1, "ev1", "404"), entry(2, "ev2", "404"), entry(3, "ev3", "200"), entry(4, "ev4", "404"));
    p.windows.merge(&[update(key, vec![e1.clone(), e2.clone(), e3.clone()])], later()).await.expect("merge");
    p.windows
        .prune(&[
            update(key, vec![e1.clone(), e2.clone(), entry(99, "never-merged", "x")]),
            update("acme#nope#x", vec![e1.clone()]),
        ])
        .await
        .expect("prune");
    let got = p.windows.merge(&[update(key, vec![e4.clone()])], later()).await.expect("merge");
    assert_eq!(set(&got[0]), set(&[e3.clone(), e4.clone()]));
    p.windows.prune(&[update(key, vec![e3, e4])]).await.expect("prune");
    let e5 = entry(5, "ev5", "404");
    let got = p.windows.merge(&[update(key, vec![e5.clone()])], later()).await.expect("merge");
    assert_eq!(set(&got[0]), set(&[e5]));
}
