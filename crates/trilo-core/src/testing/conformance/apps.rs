//! Conformance cases for `AppStore`: apps, secrets, deletion and installations.

use std::sync::Arc;

use super::{assert_not_found, conflict};
use super::{consent_at, installed_by_admin, redeem_at, redeem_first};
use crate::model::{AuditQuery, ClientType, Distribution, InstalledBy, Redeemed, ReviewState};
use crate::store::Store;
use crate::testing::fixtures::{self, World, at, t0};

pub async fn app_round_trips_with_ordered_callback_urls_and_scopes(store: Arc<dyn Store>) {
    let owner = fixtures::any_account();
    store.insert_account(&owner).await.unwrap();
    let mut app = fixtures::app(&owner.account_id);
    // Deliberately unsorted: the stored order is the registered order.
    app.callback_urls = vec![
        "https://z.example.test/cb".into(),
        "https://a.example.test/cb?x=1".into(),
        "http://127.0.0.1/cb".into(),
    ];
    app.scopes = vec![
        "write:jira-work".into(),
        "read:jira-work".into(),
        "offline_access".into(),
    ];
    app.avatar_url = Some("https://avatars.example.test/app.png".into());
    app.distribution = Distribution::Private;
    app.review_state = ReviewState::Approved;
    app.updated_at = at(30);
    store.insert_app(&app, None).await.unwrap();

    assert_eq!(store.app(&app.app_id).await.unwrap(), Some(app.clone()));
    assert_eq!(
        store.app_by_client_id(&app.client_id).await.unwrap(),
        Some(app.clone())
    );
    assert_eq!(store.app("no-such-app").await.unwrap(), None);
    let app_by_client_id = store.app_by_client_id("no-such-client").await.unwrap();
    assert_eq!(app_by_client_id, None);
}

pub async fn app_client_id_is_unique(store: Arc<dyn Store>) {
    let owner = fixtures::any_account();
    store.insert_account(&owner).await.unwrap();
    let first = fixtures::app(&owner.account_id);
    store.insert_app(&first, None).await.unwrap();
    let mut second = fixtures::app(&owner.account_id);
    second.client_id = first.client_id.clone();
    let secret = fixtures::secret(&second.app_id, t0());
    assert_eq!(
        conflict(store.insert_app(&second, Some(&secret)).await),
        "apps.client_id"
    );
    // Nothing of the refused app was kept.
    assert_eq!(store.app(&second.app_id).await.unwrap(), None);
    assert!(
        store
            .app_secrets(&second.app_id, t0())
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn list_apps_filters_by_owner_oldest_first(store: Arc<dyn Store>) {
    let (alice, bob) = (fixtures::any_account(), fixtures::any_account());
    store.insert_account(&alice).await.unwrap();
    store.insert_account(&bob).await.unwrap();
    let mut a_new = fixtures::app(&alice.account_id);
    a_new.created_at = at(20);
    let mut a_old = fixtures::app(&alice.account_id);
    a_old.created_at = at(10);
    a_old.callback_urls = vec!["https://only.example.test/cb".into()];
    a_old.scopes = vec![];
    let b = fixtures::app(&bob.account_id);
    for app in [&a_new, &b, &a_old] {
        store.insert_app(app, None).await.unwrap();
    }
    assert_eq!(
        store.list_apps(Some(&alice.account_id)).await.unwrap(),
        vec![a_old.clone(), a_new.clone()]
    );
    assert_eq!(
        store.list_apps(Some(&bob.account_id)).await.unwrap(),
        vec![b.clone()]
    );
    assert_eq!(store.list_apps(None).await.unwrap(), vec![b, a_old, a_new]);
    assert!(store.list_apps(Some("nobody")).await.unwrap().is_empty());
}

pub async fn update_app_replaces_the_mutable_fields_only(store: Arc<dyn Store>) {
    let owner = fixtures::any_account();
    store.insert_account(&owner).await.unwrap();
    let app = fixtures::app(&owner.account_id);
    store.insert_app(&app, None).await.unwrap();

    let mut changed = app.clone();
    changed.name = "Renamed".into();
    changed.description = "New words".into();
    changed.avatar_url = Some("https://avatars.example.test/new.png".into());
    changed.callback_urls = vec!["https://new.example.test/cb".into()];
    changed.scopes = vec!["read:jira-user".into(), "read:jira-work".into()];
    changed.web_origins = vec![
        "https://spa.example.test".into(),
        "http://localhost:3000".into(),
    ];
    changed.distribution = Distribution::Private;
    changed.review_state = ReviewState::Approved;
    changed.updated_at = at(60);
    // Not mutable through update_app:
    let mut attempt = changed.clone();
    attempt.client_id = "another-client-id".into();
    attempt.client_type = ClientType::Public;
    attempt.created_at = at(99);
    store.update_app(&attempt).await.unwrap();
    assert_eq!(store.app(&app.app_id).await.unwrap(), Some(changed.clone()));
    assert_eq!(
        store.app_by_client_id(&app.client_id).await.unwrap(),
        Some(changed.clone())
    );
    // A preflight asks whether any app registered an origin.
    assert!(
        store
            .web_origin_registered("http://localhost:3000")
            .await
            .unwrap()
    );
    assert!(
        !store
            .web_origin_registered(&app.web_origins[0])
            .await
            .unwrap()
    );
    assert!(
        !store
            .web_origin_registered("https://other.example.test")
            .await
            .unwrap()
    );
    assert_eq!(store.list_apps(None).await.unwrap(), vec![changed]);
}

pub async fn update_unknown_app_is_not_found(store: Arc<dyn Store>) {
    let app = fixtures::app("no-such-owner");
    assert_not_found(store.update_app(&app).await);
}

pub async fn public_app_is_stored_without_secret(store: Arc<dyn Store>) {
    let owner = fixtures::any_account();
    store.insert_account(&owner).await.unwrap();
    let mut app = fixtures::app(&owner.account_id);
    app.client_type = ClientType::Public;
    store.insert_app(&app, None).await.unwrap();
    assert_eq!(store.app(&app.app_id).await.unwrap(), Some(app.clone()));
    assert!(
        store
            .app_secrets(&app.app_id, t0())
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn rotate_app_secret_keeps_old_secret_until_its_grace_ends(store: Arc<dyn Store>) {
    let owner = fixtures::any_account();
    store.insert_account(&owner).await.unwrap();
    let app = fixtures::app(&owner.account_id);
    let first = fixtures::secret(&app.app_id, t0());
    store.insert_app(&app, Some(&first)).await.unwrap();
    assert_eq!(
        store.app_secrets(&app.app_id, at(1)).await.unwrap(),
        vec![first.clone()]
    );

    let second = fixtures::secret(&app.app_id, at(10));
    store.rotate_app_secret(&second, at(70)).await.unwrap();
    let mut first_rotated = first.clone();
    first_rotated.expires_at = Some(at(70));
    // Newest first; the old one is valid until its grace ends, then gone.
    assert_eq!(
        store.app_secrets(&app.app_id, at(11)).await.unwrap(),
        vec![second.clone(), first_rotated.clone()]
    );
    assert_eq!(
        store
            .app_secrets(&app.app_id, at(70) - time::Duration::milliseconds(1))
            .await
            .unwrap(),
        vec![second.clone(), first_rotated]
    );
    assert_eq!(
        store.app_secrets(&app.app_id, at(70)).await.unwrap(),
        vec![second.clone()]
    );

    // A second rotation gives the then-current secret its grace; expired ones stay expired.
    let third = fixtures::secret(&app.app_id, at(100));
    store.rotate_app_secret(&third, at(160)).await.unwrap();
    let mut second_rotated = second;
    second_rotated.expires_at = Some(at(160));
    assert_eq!(
        store.app_secrets(&app.app_id, at(101)).await.unwrap(),
        vec![third.clone(), second_rotated]
    );
    assert_eq!(
        store.app_secrets(&app.app_id, at(200)).await.unwrap(),
        vec![third]
    );
}

pub async fn delete_app_removes_everything_it_holds_but_keeps_audit(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    // A second app of the same developer must be untouched.
    let other = fixtures::app(&w.developer.account_id);
    store.insert_app(&other, None).await.unwrap();
    let other_code = fixtures::new_code(at(1));
    let mut other_consent = w.consent(&["read:jira-work"], at(1));
    other_consent.app_id = other.app_id.clone();
    store
        .accept_consent(&other_consent, &fixtures::new_id(), &other_code)
        .await
        .unwrap();

    let (grant, code) = consent_at(&w, store.as_ref(), &["read:jira-work"], 1).await;
    let family = redeem_first(store.as_ref(), &code.code_hash, 2).await;
    let (_, unused_code) = consent_at(&w, store.as_ref(), &["read:jira-work"], 3).await;
    store
        .install_app(&fixtures::installation(
            &w.app.app_id,
            &w.other_site.cloud_id,
            &w.developer.account_id,
            InstalledBy::Admin,
        ))
        .await
        .unwrap();
    let mut event = fixtures::audit_event("app.created", Some(&w.site.cloud_id), at(0));
    event.target = w.app.app_id.clone();
    store.append_audit(&event).await.unwrap();

    assert!(store.delete_app(&w.app.app_id).await.unwrap());

    assert_eq!(store.app(&w.app.app_id).await.unwrap(), None);
    let app_by_client_id = store.app_by_client_id(&w.app.client_id).await.unwrap();
    assert_eq!(app_by_client_id, None);
    assert!(
        store
            .app_secrets(&w.app.app_id, t0())
            .await
            .unwrap()
            .is_empty()
    );
    let installations_of_app = store.installations_of_app(&w.app.app_id).await.unwrap();
    assert!(installations_of_app.is_empty());
    assert_eq!(store.grant(&grant.grant_id).await.unwrap(), None);
    let live_grant = store
        .live_grant(&w.app.app_id, &w.user.account_id)
        .await
        .unwrap();
    assert_eq!(live_grant, None);
    assert_eq!(store.code(&code.code_hash).await.unwrap(), None);
    assert_eq!(store.code(&unused_code.code_hash).await.unwrap(), None);
    assert_eq!(store.family(&family.family_id).await.unwrap(), None);
    assert_eq!(
        redeem_at(
            store.as_ref(),
            &unused_code.code_hash,
            &fixtures::new_family(at(4)),
            4
        )
        .await,
        Redeemed::NotFound
    );
    let grants = store.grants_of_account(&w.user.account_id).await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].app_id, other.app_id);

    // The audit trail outlives the app.
    let events = store.audit_events(&AuditQuery::default()).await.unwrap();
    assert_eq!(events, vec![event]);

    // The other app and what it holds are still there.
    assert!(store.app(&other.app_id).await.unwrap().is_some());
    assert!(store.code(&other_code.code_hash).await.unwrap().is_some());
    let installs = store.installations_of_site(&w.site.cloud_id).await.unwrap();
    assert_eq!(installs.len(), 1);
    assert_eq!(installs[0].app_id, other.app_id);
    // The site and the accounts stay.
    assert!(store.site(&w.site.cloud_id).await.unwrap().is_some());
    assert!(store.account(&w.user.account_id).await.unwrap().is_some());

    assert!(!store.delete_app(&w.app.app_id).await.unwrap());
}

pub async fn install_app_is_idempotent_and_the_first_record_wins(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let by_admin = installed_by_admin(&w);
    assert_eq!(store.install_app(&by_admin).await.unwrap(), by_admin);
    let mut by_user = fixtures::installation(
        &w.app.app_id,
        &w.site.cloud_id,
        &w.user.account_id,
        InstalledBy::UserConsent,
    );
    by_user.created_at = at(50);
    assert_eq!(store.install_app(&by_user).await.unwrap(), by_admin);

    let mut elsewhere = fixtures::installation(
        &w.app.app_id,
        &w.other_site.cloud_id,
        &w.user.account_id,
        InstalledBy::UserConsent,
    );
    elsewhere.created_at = at(60);
    store.install_app(&elsewhere).await.unwrap();
    assert_eq!(
        store.installations_of_app(&w.app.app_id).await.unwrap(),
        vec![by_admin.clone(), elsewhere.clone()]
    );
    assert_eq!(
        store.installations_of_site(&w.site.cloud_id).await.unwrap(),
        vec![by_admin]
    );

    assert!(
        store
            .uninstall_app(&w.app.app_id, &w.site.cloud_id)
            .await
            .unwrap()
    );
    assert!(
        !store
            .uninstall_app(&w.app.app_id, &w.site.cloud_id)
            .await
            .unwrap()
    );
    assert_eq!(
        store.installations_of_app(&w.app.app_id).await.unwrap(),
        vec![elsewhere]
    );
    let installations_of_site = store.installations_of_site(&w.site.cloud_id).await.unwrap();
    assert!(installations_of_site.is_empty());
    // After an uninstall the next install is recorded anew.
    assert_eq!(store.install_app(&by_user).await.unwrap(), by_user);
}

pub async fn install_app_needs_known_app_and_site(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    assert_not_found(
        store
            .install_app(&fixtures::installation(
                "no-such-app",
                &w.site.cloud_id,
                &w.user.account_id,
                InstalledBy::Admin,
            ))
            .await,
    );
    assert_not_found(
        store
            .install_app(&fixtures::installation(
                &w.app.app_id,
                "no-such-site",
                &w.user.account_id,
                InstalledBy::Admin,
            ))
            .await,
    );
}
