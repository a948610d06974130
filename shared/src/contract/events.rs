//! Event store checks: conditional puts, round trip, tenant isolation.

use super::*;

/// `put_new` stores only unseen ids and reports which were new; storing again changes nothing.
pub async fn events_put_new_is_idempotent(p: &Ports) {
    let (a, b, c) = (event(TENANT, "ev-a"), event(TENANT, "ev-b"), event(TENANT, "ev-c"));
    let first = p.events.put_new(&[a.clone(), b.clone()], later()).await.expect("put_new");
    assert_eq!(first, vec![true, true]);
    let again = p.events.put_new(&[a.clone(), b.clone()], later()).await.expect("put_new");
    assert_eq!(again, vec![false, false]);
    let mut changed_b = b.clone();
    changed_b.message = Some("a retry must not overwrite".into());
    let mixed = p.events.put_new(&[changed_b, c.clone()], later()).await.expect("put_new");
    assert_eq!(mixed, vec![false, true]);
    for e in [&a, &b, &c] {
        assert_eq!(p.events.get(TENANT, &e.id).await.expect("get").as_ref(), Some(e));
    }
    assert_eq!(p.events.get(TENANT, "ev-missing").await.expect("get"), None);
    assert_eq!(p.events.put_new(&[], later()).await.expect("empty put_new"), Vec::<bool>::new());
}

/// The same id twice in one slice is stored once.
pub async fn events_duplicate_ids_in_one_slice(p: &Ports) {
    let a = event(TENANT, "ev-dup");
    let got = p.events.put_new(&[a.clone(), a.clone()], later()).await.expect("put_new");
    assert_eq!(got.iter().filter(|n| **n).count(), 1, "{got:?}");
    assert_eq!(p.events.get(TENANT, "ev-dup").await.expect("get"), Some(a));
}

/// Every field survives storage, including minimal events.
pub async fn events_round_trip_every_field(p: &Ports) {
    let full = event(TENANT, "ev-full");
    let minimal =
        Event { id: "ev-min".into(), tenant: TENANT.into(), timestamp: t0(), received_at: t0(), ..Event::default() };
    assert_eq!(p.events.put_new(&[full.clone(), minimal.clone()], later()).await.expect("put_new"), vec![true, true]);
    assert_eq!(p.events.get(TENANT, "ev-full").await.expect("get"), Some(full));
    assert_eq!(p.events.get(TENANT, "ev-min").await.expect("get"), Some(minimal));
}

/// The same id in two tenants is two events; a tenant never sees another's.
pub async fn events_tenant_isolation(p: &Ports) {
    let ours = event(TENANT, "ev-shared-id");
    let mut theirs = event(OTHER_TENANT, "ev-shared-id");
    theirs.user = Some("someone-else".into());
    assert_eq!(p.events.put_new(std::slice::from_ref(&ours), later()).await.expect("put_new"), vec![true]);
    assert_eq!(p.events.put_new(std::slice::from_ref(&theirs), later()).await.expect("put_new"), vec![true]);
    assert_eq!(p.events.get(TENANT, "ev-shared-id").await.expect("get"), Some(ours));
    assert_eq!(p.events.get(OTHER_TENANT, "ev-shared-id").await.expect("get"), Some(theirs));
    assert_eq!(p.events.get("initech", "ev-shared-id").await.expect("get"), None);
}
