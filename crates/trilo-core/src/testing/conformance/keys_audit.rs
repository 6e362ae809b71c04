//! Conformance cases for `KeyStore` and `AuditLog`.

use std::sync::Arc;

use time::Duration;

use super::conflict;
use crate::crypto::SealingKey;
use crate::keys::KeyRing;
use crate::model::{AuditQuery, KeyState};
use crate::store::Store;
use crate::testing::fixtures::{self, at};

pub async fn signing_keys_round_trip_and_only_one_is_current(store: Arc<dyn Store>) {
    let signing_keys = store.signing_keys().await.unwrap();
    assert!(signing_keys.is_empty());
    let retired = fixtures::signing_key(KeyState::Retired, at(0));
    let current = fixtures::signing_key(KeyState::Current, at(1));
    let mut next = fixtures::signing_key(KeyState::Next, at(2));
    next.private_key_encrypted = (0..=255).collect();
    for key in [&next, &current, &retired] {
        store.insert_signing_key(key).await.unwrap();
    }
    // Two instances starting at once: the second current key is refused.
    let rival = fixtures::signing_key(KeyState::Current, at(3));
    assert_eq!(
        conflict(store.insert_signing_key(&rival).await),
        "signing_keys.current"
    );
    let mut same_kid = fixtures::signing_key(KeyState::Retired, at(4));
    same_kid.kid = retired.kid.clone();
    conflict(store.insert_signing_key(&same_kid).await);
    // And a second next key.
    conflict(
        store
            .insert_signing_key(&fixtures::signing_key(KeyState::Next, at(5)))
            .await,
    );

    // Oldest first.
    assert_eq!(
        store.signing_keys().await.unwrap(),
        vec![retired, current, next]
    );
}

/// A rotation retires the current key, promotes the next and adds a new next, all at once;
/// a rotation from keys that are no longer current and next changes nothing.
pub async fn a_rotation_is_a_compare_and_set_on_current_and_next(store: Arc<dyn Store>) {
    let current = fixtures::signing_key(KeyState::Current, at(1));
    let next = fixtures::signing_key(KeyState::Next, at(2));
    store.insert_signing_key(&current).await.unwrap();
    store.insert_signing_key(&next).await.unwrap();
    let newer = fixtures::signing_key(KeyState::Next, at(3));
    store
        .rotate_signing_keys(&current.kid, &next.kid, &newer, at(10))
        .await
        .unwrap();
    let keys = store.signing_keys().await.unwrap();
    let state_of = |kid: &str| {
        let k = keys.iter().find(|k| k.kid == kid).unwrap();
        (k.state, k.activated_at, k.retired_at)
    };
    assert_eq!(
        state_of(&current.kid),
        (KeyState::Retired, Some(at(1)), Some(at(10)))
    );
    assert_eq!(state_of(&next.kid), (KeyState::Current, Some(at(10)), None));
    assert_eq!(state_of(&newer.kid), (KeyState::Next, None, None));

    // A second instance that read the keys before the rotation loses, and changes nothing.
    let rival = fixtures::signing_key(KeyState::Next, at(4));
    let lost = store
        .rotate_signing_keys(&current.kid, &next.kid, &rival, at(11))
        .await;
    assert_eq!(conflict(lost), "signing_keys.rotated");
    // Current right but next stale: the retirement is rolled back with the rest.
    let half_stale = store
        .rotate_signing_keys(&next.kid, &current.kid, &rival, at(11))
        .await;
    assert_eq!(conflict(half_stale), "signing_keys.rotated");
    assert_eq!(store.signing_keys().await.unwrap(), keys);
}

/// Two instances' schedules find the keys due at once (or one instance's key loop and an
/// explicit turn of it): the first rotates; the second, whose keys were read before that
/// rotation, reads them again and finds them no longer due, so the period gets one rotation.
pub async fn a_scheduled_rotation_beaten_to_it_rotates_nothing_more(store: Arc<dyn Store>) {
    let sealing = SealingKey::new(&[7; 32]);
    let kept = Duration::days(1);
    let every = Some(Duration::days(30));
    let first = KeyRing::load_or_create(store.as_ref(), &sealing, kept, at(0))
        .await
        .unwrap();
    let second = KeyRing::load_or_create(store.as_ref(), &sealing, kept, at(0))
        .await
        .unwrap();
    let due = at(0) + Duration::days(30);
    assert!(first.rotation_due(due, Duration::days(30)));
    assert!(second.rotation_due(due, Duration::days(30)));

    let rotated = first.rotate(store.as_ref(), due, every).await.unwrap();
    assert!(rotated.is_some());
    assert_eq!(
        second.rotate(store.as_ref(), due, every).await.unwrap(),
        None
    );
    assert_eq!(second.current_kid(), first.current_kid());
    let keys = store.signing_keys().await.unwrap();
    let count = |state: KeyState| keys.iter().filter(|k| k.state == state).count();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert_eq!(count(KeyState::Retired), 1);
    // By hand, a rotation is never "not due".
    assert!(
        second
            .rotate(store.as_ref(), due, None)
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn audit_events_filter_by_site_and_action_prefix_newest_first(store: Arc<dyn Store>) {
    let (site_a, site_b) = (fixtures::site().cloud_id, fixtures::site().cloud_id);
    let mut e1 = fixtures::audit_event("grant.consented", Some(&site_a), at(1));
    e1.actor_account_id = Some(fixtures::new_id());
    e1.details = serde_json::json!({ "scopes": "read:jira-work", "nested": { "list": [1, 2] } });
    let e2 = fixtures::audit_event("grant.revoked", Some(&site_b), at(2));
    let e3 = fixtures::audit_event("app.created", None, at(3));
    let e4 = fixtures::audit_event("grantee.added", Some(&site_a), at(4));
    let e5 = fixtures::audit_event("code_x.replayed", Some(&site_a), at(5));
    let e6 = fixtures::audit_event("codeXx.replayed", Some(&site_a), at(6));
    let e7 = fixtures::audit_event("Grant.consented", Some(&site_a), at(7));
    for e in [&e3, &e1, &e5, &e2, &e7, &e4, &e6] {
        store.append_audit(e).await.unwrap();
    }
    conflict(store.append_audit(&e1).await);

    let query = |cloud_id: Option<&str>, prefix: Option<&str>, limit: u32| AuditQuery {
        cloud_id: cloud_id.map(str::to_owned),
        action_prefix: prefix.map(str::to_owned),
        limit,
        ..AuditQuery::default()
    };
    let all = store.audit_events(&query(None, None, 0)).await.unwrap();
    assert_eq!(
        all,
        vec![
            e7.clone(),
            e6.clone(),
            e5.clone(),
            e4.clone(),
            e3.clone(),
            e2.clone(),
            e1.clone()
        ]
    );
    assert_eq!(
        store
            .audit_events(&query(Some(&site_a), None, 0))
            .await
            .unwrap(),
        vec![e7.clone(), e6.clone(), e5.clone(), e4.clone(), e1.clone()]
    );
    // A prefix is matched literally and case-sensitively.
    assert_eq!(
        store
            .audit_events(&query(None, Some("grant."), 0))
            .await
            .unwrap(),
        vec![e2.clone(), e1.clone()]
    );
    assert_eq!(
        store
            .audit_events(&query(None, Some("code_"), 0))
            .await
            .unwrap(),
        vec![e5.clone()]
    );
    assert_eq!(
        store
            .audit_events(&query(None, Some("%"), 0))
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        store
            .audit_events(&query(Some(&site_a), Some("grant"), 0))
            .await
            .unwrap(),
        vec![e4.clone(), e1.clone()]
    );
    assert_eq!(
        store.audit_events(&query(None, None, 2)).await.unwrap(),
        vec![e7, e6]
    );
    assert_eq!(
        store
            .audit_events(&query(Some("no-such-site"), None, 0))
            .await
            .unwrap(),
        vec![]
    );
}

pub async fn audit_limit_zero_means_one_hundred(store: Arc<dyn Store>) {
    for i in 0..105 {
        store
            .append_audit(&fixtures::audit_event("token.issued", None, at(i)))
            .await
            .unwrap();
    }
    let events = store.audit_events(&AuditQuery::default()).await.unwrap();
    assert_eq!(events.len(), 100);
    assert_eq!(events[0].at, at(104));
    assert_eq!(events[99].at, at(5));
    let limited = store
        .audit_events(&AuditQuery {
            limit: 101,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 101);
}

/// Failure counters count per key and window, forget a key on clear, and the janitor's
/// sweep removes ended windows only.
pub async fn failure_counters_count_per_key_and_window(store: Arc<dyn Store>) {
    use crate::crypto::sha256;
    use crate::store::Sweep;
    let (alice, bob) = (sha256("alice"), sha256("bob"));
    let (w1, w2) = (at(0), at(900));
    assert_eq!(store.failures(&alice, w1).await.unwrap(), 0);
    for expected in 1..=3 {
        assert_eq!(store.add_failure(&alice, w1, w2).await.unwrap(), expected);
    }
    assert_eq!(store.add_failure(&bob, w1, w2).await.unwrap(), 1);
    assert_eq!(store.add_failure(&alice, w2, at(1800)).await.unwrap(), 1);
    assert_eq!(store.failures(&alice, w1).await.unwrap(), 3);
    assert_eq!(store.failures(&alice, w2).await.unwrap(), 1);

    // The first window ended at w2: its two rows go, the second window's stays.
    assert_eq!(
        store
            .sweep(Sweep::EndedFailureWindows(at(901)), 10)
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.failures(&alice, w1).await.unwrap(), 0);
    assert_eq!(store.failures(&alice, w2).await.unwrap(), 1);
    store.clear_failures(&alice).await.unwrap();
    assert_eq!(store.failures(&alice, w2).await.unwrap(), 0);
}

/// Audit events by date range, a page at a time: the page after an event starts just
/// below it, also among events of the same moment.
pub async fn audit_events_page_by_date_and_cursor(store: Arc<dyn Store>) {
    let mut events = Vec::new();
    for (i, second) in [1, 2, 3, 3, 4, 5].into_iter().enumerate() {
        let mut e = fixtures::audit_event("page.test", None, at(second));
        e.event_id = format!("event-{i}");
        store.append_audit(&e).await.unwrap();
        events.push(e);
    }
    let ids = |list: Vec<crate::model::AuditEvent>| -> Vec<String> {
        list.into_iter().map(|e| e.event_id).collect()
    };
    let window = AuditQuery {
        from: Some(at(2)),
        until: Some(at(5)),
        ..AuditQuery::default()
    };
    assert_eq!(
        ids(store.audit_events(&window).await.unwrap()),
        ["event-4", "event-3", "event-2", "event-1"]
    );
    let first_page = AuditQuery {
        limit: 2,
        ..window.clone()
    };
    let page = store.audit_events(&first_page).await.unwrap();
    assert_eq!(ids(page.clone()), ["event-4", "event-3"]);
    let last = page.last().unwrap();
    let next_page = AuditQuery {
        after_event: Some((last.at, last.event_id.clone())),
        ..first_page
    };
    assert_eq!(
        ids(store.audit_events(&next_page).await.unwrap()),
        ["event-2", "event-1"]
    );
}
