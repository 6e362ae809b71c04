//! Conformance cases for `EventStore`: subscriptions, the outbox, leased claims, attempt
//! outcomes, redelivery and container objects.

use std::collections::HashSet;
use std::sync::Arc;

use super::assert_not_found;
use super::consent_at;
use crate::model::{
    AttemptOutcome, ContainerObject, DeliveryCounts, DeliveryStatus, Event, FinishedAttempt,
    Installation, InstalledBy, NewDelivery, ObjectChange, Outbox, Policy, WebhookSubscription,
};
use crate::store::Store;
use crate::testing::fixtures::{self, World, at};

fn subscription(app_id: &str, events: &[&str], created: i64) -> WebhookSubscription {
    WebhookSubscription {
        subscription_id: fixtures::new_id(),
        app_id: app_id.to_owned(),
        url: "https://receiver.example/hook".into(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        created_at: at(created),
    }
}

fn event(w: &World, name: &str, created: i64) -> Event {
    Event {
        event_id: fixtures::new_id(),
        name: name.to_owned(),
        cloud_id: Some(w.site.cloud_id.clone()),
        product_key: Some(w.product.key.clone()),
        container_key: Some("DEMO".into()),
        account_id: Some(w.user.account_id.clone()),
        body: r#"{"webhookEvent":"jira:issue_created"}"#.into(),
        created_at: at(created),
    }
}

fn outbox_to(event: Event, subscriptions: &[&WebhookSubscription]) -> Outbox {
    Outbox {
        deliveries: subscriptions
            .iter()
            .map(|s| NewDelivery {
                delivery_id: fixtures::new_id(),
                subscription_id: s.subscription_id.clone(),
                app_id: s.app_id.clone(),
                url: format!("{}?triggeredByUser=x", s.url),
            })
            .collect(),
        event,
        object: None,
    }
}

fn object(w: &World, container: &str, id: &str) -> ContainerObject {
    ContainerObject {
        cloud_id: w.site.cloud_id.clone(),
        product_key: w.product.key.clone(),
        container_key: container.to_owned(),
        kind: "issue".into(),
        object_id: id.to_owned(),
    }
}

async fn installed(store: &dyn Store, w: &World) {
    store
        .install_app(&Installation {
            app_id: w.app.app_id.clone(),
            cloud_id: w.site.cloud_id.clone(),
            installed_by_account_id: w.user.account_id.clone(),
            installed_by: InstalledBy::Admin,
            created_at: at(1),
        })
        .await
        .unwrap();
}

pub async fn subscriptions_round_trip_list_by_event_and_delete(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    installed(store.as_ref(), &w).await;
    let first = subscription(&w.app.app_id, &["jira:issue_created", "comment_created"], 1);
    let second = subscription(&w.app.app_id, &["jira:issue_updated"], 2);
    store.insert_subscription(&first).await.unwrap();
    store.insert_subscription(&second).await.unwrap();
    assert_eq!(
        store.subscriptions_of_app(&w.app.app_id).await.unwrap(),
        vec![first.clone(), second.clone()]
    );

    let on_site = store
        .subscribers("comment_created", &w.site.cloud_id)
        .await
        .unwrap();
    assert_eq!(on_site.len(), 1);
    assert_eq!(on_site[0].subscription, first);
    assert!(on_site[0].installed);
    let elsewhere = store
        .subscribers("comment_created", &w.other_site.cloud_id)
        .await
        .unwrap();
    assert!(!elsewhere[0].installed, "not installed on the other site");
    let subscribers = store
        .subscribers("page_created", &w.site.cloud_id)
        .await
        .unwrap();
    assert!(subscribers.is_empty());

    let unknown_app = subscription("no-such-app", &["jira:issue_created"], 3);
    assert_not_found(store.insert_subscription(&unknown_app).await);

    assert!(
        !store
            .delete_subscription("other-app", &first.subscription_id)
            .await
            .unwrap()
    );
    assert!(
        store
            .delete_subscription(&w.app.app_id, &first.subscription_id)
            .await
            .unwrap()
    );
    assert_eq!(
        store.subscriptions_of_app(&w.app.app_id).await.unwrap(),
        vec![second]
    );
}

pub async fn member_grant_scopes_are_those_of_live_grants_of_members(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let none = store
        .member_grant_scopes(&w.app.app_id, &w.site.cloud_id, &w.product.key)
        .await
        .unwrap();
    assert!(none.is_empty());
    let (grant, _) = consent_at(&w, store.as_ref(), &["read:jira-work", "offline_access"], 1).await;
    assert_eq!(
        store
            .member_grant_scopes(&w.app.app_id, &w.site.cloud_id, &w.product.key)
            .await
            .unwrap(),
        vec![vec![
            "read:jira-work".to_owned(),
            "offline_access".to_owned()
        ]]
    );
    assert!(
        store
            .member_grant_scopes(&w.app.app_id, &w.site.cloud_id, "confluence")
            .await
            .unwrap()
            .is_empty(),
        "the user is no member of confluence"
    );
    store.revoke_grant(&grant.grant_id, at(2)).await.unwrap();
    let member_grant_scopes = store
        .member_grant_scopes(&w.app.app_id, &w.site.cloud_id, &w.product.key)
        .await
        .unwrap();
    assert!(member_grant_scopes.is_empty());
}

pub async fn recorded_events_are_claimed_once_until_their_lease_ends(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let sub = subscription(&w.app.app_id, &["jira:issue_created"], 1);
    store.insert_subscription(&sub).await.unwrap();
    let outbox = outbox_to(event(&w, "jira:issue_created", 10), &[&sub, &sub]);
    assert!(store.record_event(&outbox).await.unwrap());
    // A product's retry with the same event id records nothing more.
    let mut again = outbox_to(outbox.event.clone(), &[&sub]);
    again.event.body = "{}".into();
    assert!(!store.record_event(&again).await.unwrap());
    assert_eq!(
        store.delivery_counts().await.unwrap(),
        DeliveryCounts {
            pending: 2,
            delivered: 0,
            dead: 0
        }
    );

    assert!(
        store
            .claim_deliveries(at(9), at(100), 10)
            .await
            .unwrap()
            .is_empty(),
        "not due before the event"
    );
    let claimed = store.claim_deliveries(at(10), at(40), 1).await.unwrap();
    assert_eq!(claimed.len(), 1, "at most the limit");
    let rest = store.claim_deliveries(at(11), at(40), 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    let first = &claimed[0];
    assert_eq!(first.body, outbox.event.body);
    assert_eq!(first.delivery.event_name, "jira:issue_created");
    assert_eq!(first.delivery.attempts, 1);
    assert_eq!(first.delivery.next_attempt_at, at(40));
    assert_eq!(first.delivery.url, format!("{}?triggeredByUser=x", sub.url));
    assert!(
        store
            .claim_deliveries(at(39), at(80), 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    // The sender died: after the lease the delivery is claimed again.
    let reclaimed = store.claim_deliveries(at(40), at(80), 10).await.unwrap();
    assert_eq!(reclaimed.len(), 2);
    assert!(reclaimed.iter().all(|d| d.delivery.attempts == 2));
}

pub async fn attempt_outcomes_deliver_retry_or_kill_and_ignore_stale_claims(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let sub = subscription(&w.app.app_id, &["jira:issue_created"], 1);
    store.insert_subscription(&sub).await.unwrap();
    for n in 0..3 {
        store
            .record_event(&outbox_to(event(&w, "jira:issue_created", 10 + n), &[&sub]))
            .await
            .unwrap();
    }
    let claimed = store.claim_deliveries(at(20), at(50), 10).await.unwrap();
    let ids: Vec<&str> = claimed
        .iter()
        .map(|d| d.delivery.delivery_id.as_str())
        .collect();
    let finished = |i: usize, attempt, outcome| FinishedAttempt {
        delivery_id: ids[i].to_owned(),
        attempt,
        outcome,
    };
    store
        .finish_attempts(
            &[
                finished(0, 1, AttemptOutcome::Delivered { status_code: 204 }),
                finished(
                    1,
                    1,
                    AttemptOutcome::Failed {
                        status_code: Some(500),
                        error: "HTTP 500".into(),
                        retry_at: Some(at(30)),
                    },
                ),
                finished(
                    2,
                    1,
                    AttemptOutcome::Failed {
                        status_code: None,
                        error: "connection refused".into(),
                        retry_at: None,
                    },
                ),
            ],
            at(21),
        )
        .await
        .unwrap();
    // An outcome of an older claim changes nothing.
    store
        .finish_attempts(
            &[finished(
                0,
                7,
                AttemptOutcome::Delivered { status_code: 299 },
            )],
            at(22),
        )
        .await
        .unwrap();

    let listed = store.deliveries_of_app(&w.app.app_id, 10).await.unwrap();
    let by_id = |id: &str| {
        listed
            .iter()
            .find(|d| d.delivery_id == id)
            .cloned()
            .unwrap()
    };
    let delivered = by_id(ids[0]);
    assert_eq!(delivered.status, DeliveryStatus::Delivered);
    assert_eq!(delivered.last_status_code, Some(204));
    assert_eq!(delivered.finished_at, Some(at(21)));
    let retrying = by_id(ids[1]);
    assert_eq!(retrying.status, DeliveryStatus::Pending);
    assert_eq!(retrying.next_attempt_at, at(30));
    assert_eq!(retrying.last_error.as_deref(), Some("HTTP 500"));
    let dead = by_id(ids[2]);
    assert_eq!(dead.status, DeliveryStatus::Dead);
    assert_eq!(dead.last_status_code, None);
    assert_eq!(
        store.delivery_counts().await.unwrap(),
        DeliveryCounts {
            pending: 1,
            delivered: 1,
            dead: 1
        }
    );
    // Newest first.
    assert_eq!(listed[0].delivery_id, ids[2]);

    let due = store.claim_deliveries(at(30), at(60), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].delivery.delivery_id, ids[1]);
    assert_eq!(due[0].delivery.attempts, 2);

    // Redelivery makes a dead delivery due again with a fresh count; only for its app.
    assert!(!store.redeliver("other-app", ids[2], at(31)).await.unwrap());
    assert!(
        store
            .redeliver(&w.app.app_id, ids[2], at(31))
            .await
            .unwrap()
    );
    let again = store.claim_deliveries(at(31), at(60), 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.delivery_id, ids[2]);
    assert_eq!(again[0].delivery.attempts, 1);
}

pub async fn concurrent_claims_hand_each_delivery_to_one_claimant(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let sub = subscription(&w.app.app_id, &["jira:issue_created"], 1);
    store.insert_subscription(&sub).await.unwrap();
    for n in 0..60 {
        store
            .record_event(&outbox_to(event(&w, "jira:issue_created", n), &[&sub]))
            .await
            .unwrap();
    }
    let claimants: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = store.claim_deliveries(at(100), at(500), 4).await.unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|d| d.delivery.delivery_id));
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut total = 0;
    for c in claimants {
        for id in c.await.unwrap() {
            total += 1;
            assert!(seen.insert(id), "a delivery was claimed twice");
        }
    }
    assert_eq!(total, 60);
}

pub async fn deleting_a_subscription_or_app_drops_its_deliveries(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let sub = subscription(&w.app.app_id, &["jira:issue_created"], 1);
    store.insert_subscription(&sub).await.unwrap();
    store
        .record_event(&outbox_to(event(&w, "jira:issue_created", 2), &[&sub]))
        .await
        .unwrap();
    store
        .delete_subscription(&w.app.app_id, &sub.subscription_id)
        .await
        .unwrap();
    assert!(
        store
            .claim_deliveries(at(5), at(50), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let sub = subscription(&w.app.app_id, &["jira:issue_created"], 3);
    store.insert_subscription(&sub).await.unwrap();
    store
        .record_event(&outbox_to(event(&w, "jira:issue_created", 4), &[&sub]))
        .await
        .unwrap();
    assert!(store.delete_app(&w.app.app_id).await.unwrap());
    assert_eq!(
        store.delivery_counts().await.unwrap(),
        DeliveryCounts::default()
    );
}

pub async fn container_objects_are_reported_listed_capped_and_counted(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let many: Vec<ContainerObject> = (0..1_500)
        .map(|n| object(&w, "DEMO", &format!("{n:05}")))
        .chain((0..10).map(|n| object(&w, "OPS", &format!("{n:05}"))))
        .collect();
    store.put_container_objects(&many).await.unwrap();
    // Reported again: kept once.
    store.put_container_objects(&many[..5]).await.unwrap();

    let containers = vec![
        (w.product.key.clone(), "DEMO".to_owned()),
        (w.product.key.clone(), "OPS".to_owned()),
    ];
    let (listed, total) = store
        .container_objects(&w.site.cloud_id, &containers, 1_000)
        .await
        .unwrap();
    assert_eq!(total, 1_510);
    assert_eq!(listed.len(), 1_000);
    assert_eq!(listed[0], object(&w, "DEMO", "00000"));
    let (all, total) = store
        .container_objects(&w.site.cloud_id, &containers, 10_000)
        .await
        .unwrap();
    assert_eq!((all.len(), total), (1_510, 1_510));
    assert_eq!(all[1_500], object(&w, "OPS", "00000"));

    // An event's object change commits with it.
    let mut added = outbox_to(event(&w, "jira:issue_created", 1), &[]);
    added.object = Some(ObjectChange::Put(object(&w, "OPS", "new")));
    store.record_event(&added).await.unwrap();
    let mut removed = outbox_to(event(&w, "jira:issue_deleted", 2), &[]);
    removed.object = Some(ObjectChange::Remove(object(&w, "OPS", "00003")));
    store.record_event(&removed).await.unwrap();
    let (ops, n) = store
        .container_objects(&w.site.cloud_id, &containers[1..], 100)
        .await
        .unwrap();
    assert_eq!(n, 10);
    assert!(ops.contains(&object(&w, "OPS", "new")));
    assert!(!ops.contains(&object(&w, "OPS", "00003")));
}

pub async fn a_policy_and_its_events_commit_together(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let sub = subscription(
        &w.app.app_id,
        &["avi:ecosystem.data-security-policy:activated"],
        1,
    );
    store.insert_subscription(&sub).await.unwrap();
    let policy = Policy {
        policy_id: fixtures::new_id(),
        cloud_id: w.site.cloud_id.clone(),
        name: "Secret".into(),
        blocks_apps: true,
        active: true,
        containers: vec![],
        created_at: at(1),
        updated_at: at(1),
    };
    let mut ev = event(&w, "avi:ecosystem.data-security-policy:activated", 1);
    ev.product_key = None;
    store
        .put_policy(&policy, &[outbox_to(ev.clone(), &[&sub])])
        .await
        .unwrap();
    assert_eq!(store.delivery_counts().await.unwrap().pending, 1);

    // A policy that cannot be stored leaves no event behind.
    let mut bad = policy.clone();
    bad.policy_id = fixtures::new_id();
    bad.containers = vec![(w.product.key.clone(), "NOPE".into())];
    let mut ev2 = ev;
    ev2.event_id = fixtures::new_id();
    assert_not_found(store.put_policy(&bad, &[outbox_to(ev2, &[&sub])]).await);
    assert_eq!(store.delivery_counts().await.unwrap().pending, 1);
}

pub async fn a_batch_of_events_commits_together_and_skips_retries_and_deleted_subscriptions(
    store: Arc<dyn Store>,
) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let kept = subscription(&w.app.app_id, &["jira:issue_created"], 1);
    let deleted = subscription(&w.app.app_id, &["jira:issue_created"], 2);
    store.insert_subscription(&kept).await.unwrap();
    store.insert_subscription(&deleted).await.unwrap();
    let earlier = outbox_to(event(&w, "jira:issue_created", 3), &[&kept]);
    store.record_event(&earlier).await.unwrap();
    // Chosen as recipients, then deleted before the events are stored.
    store
        .delete_subscription(&w.app.app_id, &deleted.subscription_id)
        .await
        .unwrap();
    let batch = vec![
        outbox_to(event(&w, "jira:issue_created", 4), &[&kept, &deleted]),
        outbox_to(earlier.event.clone(), &[&kept]),
        outbox_to(event(&w, "jira:issue_created", 5), &[&kept]),
    ];
    assert_eq!(
        store.record_events(&batch).await.unwrap(),
        vec![true, false, true]
    );
    assert_eq!(store.delivery_counts().await.unwrap().pending, 3);
    let claimed = store.claim_deliveries(at(10), at(20), 10).await.unwrap();
    assert!(
        claimed
            .iter()
            .all(|d| d.delivery.subscription_id == kept.subscription_id)
    );
}
