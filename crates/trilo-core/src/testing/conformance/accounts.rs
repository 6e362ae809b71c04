//! Conformance cases for `AccountStore`, `SessionStore`, time precision and `Store` itself.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::{assert_not_found, conflict};
use super::{consent_at, redeem_first};
use crate::model::AccountStatus;
use crate::store::Store;
use crate::testing::fixtures::{self, World, at, t0};

pub async fn account_round_trips_with_every_field(store: Arc<dyn Store>) {
    let mut a = fixtures::account("Grace.Hopper@Example.test");
    a.status = AccountStatus::Inactive;
    a.credential_generation = 7;
    a.picture = None;
    a.extended_profile.department = Some("R&D 'quoted' \"text\"; DROP TABLE accounts".into());
    store.insert_account(&a).await.unwrap();

    assert_eq!(store.account(&a.account_id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store
            .account_by_email("Grace.Hopper@Example.test")
            .await
            .unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.account("no-such-account").await.unwrap(), None);
    let account_by_email = store.account_by_email("nobody@example.test").await.unwrap();
    assert_eq!(account_by_email, None);
}

pub async fn account_email_is_unique_case_insensitively(store: Arc<dyn Store>) {
    let first = fixtures::account("Ada@Example.test");
    store.insert_account(&first).await.unwrap();
    let second = fixtures::account("ada@example.TEST");
    assert_eq!(
        conflict(store.insert_account(&second).await),
        "accounts.email"
    );
    // The lookup ignores case and the stored email keeps the case it was given.
    let found = store
        .account_by_email("ADA@EXAMPLE.TEST")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.account_id, first.account_id);
    assert_eq!(found.email, "Ada@Example.test");
    assert_eq!(store.account(&second.account_id).await.unwrap(), None);
}

pub async fn account_id_is_unique(store: Arc<dyn Store>) {
    let first = fixtures::any_account();
    store.insert_account(&first).await.unwrap();
    let mut again = fixtures::any_account();
    again.account_id = first.account_id.clone();
    conflict(store.insert_account(&again).await);
}

pub async fn list_accounts_returns_every_account_oldest_first(store: Arc<dyn Store>) {
    let list_accounts = store.list_accounts().await.unwrap();
    assert!(list_accounts.is_empty());
    let mut older = fixtures::any_account();
    older.created_at = at(-60);
    let newer = fixtures::any_account();
    store.insert_account(&newer).await.unwrap();
    store.insert_account(&older).await.unwrap();
    assert_eq!(store.list_accounts().await.unwrap(), vec![older, newer]);
}

pub async fn change_password_bumps_generation_ends_other_sessions_and_revokes_families(
    store: Arc<dyn Store>,
) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let kept = fixtures::session(&w.user.account_id, at(3600));
    let other = fixtures::session(&w.user.account_id, at(3600));
    let someone_elses = fixtures::session(&w.developer.account_id, at(3600));
    for s in [&kept, &other, &someone_elses] {
        store.insert_session(s).await.unwrap();
    }
    let (_, code) = consent_at(&w, store.as_ref(), &["read:jira-work"], 1).await;
    let family = redeem_first(store.as_ref(), &code.code_hash, 2).await;

    let now = at(10);
    let updated = store
        .change_password(
            &w.user.account_id,
            "$argon2id$new",
            Some(&kept.id_hash),
            now,
        )
        .await
        .unwrap();
    assert_eq!(updated.password_hash, "$argon2id$new");
    assert_eq!(
        updated.credential_generation,
        w.user.credential_generation + 1
    );
    assert_eq!(
        store.account(&w.user.account_id).await.unwrap(),
        Some(updated)
    );

    assert_eq!(
        store.session(&kept.id_hash, now).await.unwrap(),
        Some(kept.clone())
    );
    assert_eq!(store.session(&other.id_hash, now).await.unwrap(), None);
    assert_eq!(
        store.session(&someone_elses.id_hash, now).await.unwrap(),
        Some(someone_elses)
    );

    let family = store.family(&family.family_id).await.unwrap().unwrap();
    assert_eq!(family.revoked_at, Some(now));
    assert_eq!(family.revoke_reason.as_deref(), Some("password_changed"));
    // The grant itself stays: only the token families end.
    assert!(
        store
            .live_grant(&w.app.app_id, &w.user.account_id)
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn change_password_without_a_kept_session_ends_every_session(store: Arc<dyn Store>) {
    let a = fixtures::any_account();
    store.insert_account(&a).await.unwrap();
    let s1 = fixtures::session(&a.account_id, at(3600));
    let s2 = fixtures::session(&a.account_id, at(3600));
    store.insert_session(&s1).await.unwrap();
    store.insert_session(&s2).await.unwrap();
    let first = store
        .change_password(&a.account_id, "$argon2id$one", None, at(1))
        .await
        .unwrap();
    let second = store
        .change_password(&a.account_id, "$argon2id$two", None, at(2))
        .await
        .unwrap();
    assert_eq!(first.credential_generation, 1);
    assert_eq!(second.credential_generation, 2);
    assert_eq!(store.session(&s1.id_hash, at(3)).await.unwrap(), None);
    assert_eq!(store.session(&s2.id_hash, at(3)).await.unwrap(), None);
}

pub async fn change_password_of_unknown_account_is_not_found(store: Arc<dyn Store>) {
    assert_not_found(
        store
            .change_password("no-such-account", "$argon2id$x", None, t0())
            .await,
    );
}

pub async fn session_is_returned_until_it_expires(store: Arc<dyn Store>) {
    let a = fixtures::any_account();
    store.insert_account(&a).await.unwrap();
    let s = fixtures::session(&a.account_id, at(60));
    store.insert_session(&s).await.unwrap();
    assert_eq!(
        store.session(&s.id_hash, t0()).await.unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        store
            .session(&s.id_hash, at(60) - Duration::milliseconds(1))
            .await
            .unwrap(),
        Some(s.clone())
    );
    assert_eq!(store.session(&s.id_hash, at(60)).await.unwrap(), None);
    assert_eq!(store.session(&s.id_hash, at(61)).await.unwrap(), None);
    assert_eq!(
        store.session(&fixtures::random_hash(), t0()).await.unwrap(),
        None
    );
}

pub async fn delete_session_removes_only_that_session(store: Arc<dyn Store>) {
    let a = fixtures::any_account();
    store.insert_account(&a).await.unwrap();
    let gone = fixtures::session(&a.account_id, at(60));
    let stays = fixtures::session(&a.account_id, at(60));
    store.insert_session(&gone).await.unwrap();
    store.insert_session(&stays).await.unwrap();
    store.delete_session(&gone.id_hash).await.unwrap();
    assert_eq!(store.session(&gone.id_hash, t0()).await.unwrap(), None);
    assert_eq!(
        store.session(&stays.id_hash, t0()).await.unwrap(),
        Some(stays)
    );
    // Deleting what is not there is not an error (logout twice).
    store.delete_session(&gone.id_hash).await.unwrap();
}

pub async fn timestamps_round_trip_at_millisecond_precision(store: Arc<dyn Store>) {
    // Milliseconds survive exactly; anything finer is cut off (not rounded).
    let precise = OffsetDateTime::from_unix_timestamp_nanos(1_772_366_400_987_654_321).unwrap();
    let truncated = OffsetDateTime::from_unix_timestamp_nanos(1_772_366_400_987_000_000).unwrap();
    let mut a = fixtures::any_account();
    a.created_at = precise;
    store.insert_account(&a).await.unwrap();
    let back = store.account(&a.account_id).await.unwrap().unwrap();
    assert_eq!(back.created_at, truncated);
    assert_eq!(back.created_at.offset(), time::UtcOffset::UTC);

    // A time given in another offset comes back as the same instant, in UTC.
    let mut s = fixtures::session(&a.account_id, at(60));
    s.created_at = at(1).to_offset(time::macros::offset!(+05:30));
    store.insert_session(&s).await.unwrap();
    let back = store.session(&s.id_hash, t0()).await.unwrap().unwrap();
    assert_eq!(back.created_at, at(1));
    assert_eq!(back.created_at.offset(), time::UtcOffset::UTC);
    assert_eq!(back.expires_at, at(60));
}

pub async fn ping_answers_and_backend_is_named(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    assert!(
        ["sqlite", "postgres"].contains(&store.backend()),
        "backend {}",
        store.backend()
    );
}

/// An invitation is accepted once, while its link is live and its account still invited;
/// an acceptance that fails changes nothing (the link stays usable, the account invited).
pub async fn an_invitation_is_accepted_once_and_only_for_an_invited_account(store: Arc<dyn Store>) {
    use crate::crypto::sha256;
    use crate::model::PasswordReset;
    let link = |account_id: &str, token: &str, expires: i64| PasswordReset {
        token_hash: sha256(token),
        account_id: account_id.to_owned(),
        created_at: t0(),
        expires_at: at(expires),
    };
    let mut invited = fixtures::any_account();
    invited.status = AccountStatus::Invited;
    store.insert_account(&invited).await.unwrap();
    let active = fixtures::any_account();
    store.insert_account(&active).await.unwrap();
    for reset in [
        link(&invited.account_id, "invite", 600),
        link(&invited.account_id, "expired", 60),
        link(&active.account_id, "reset", 600),
    ] {
        store.insert_password_reset(&reset).await.unwrap();
    }

    // An expired link, and a live link of an account that is not invited: nothing changes.
    let accept = |token: &'static str, now| {
        let store = store.clone();
        async move {
            store
                .accept_invitation(&sha256(token), now, "New Name", "new-hash")
                .await
                .unwrap()
        }
    };
    assert_eq!(accept("expired", at(61)).await, None);
    assert_eq!(accept("reset", at(61)).await, None);
    assert_eq!(
        store
            .password_reset_account(&sha256("reset"), at(61))
            .await
            .unwrap(),
        Some(active.account_id.clone()),
        "a refused acceptance leaves the link live"
    );
    assert_eq!(
        store.account(&active.account_id).await.unwrap(),
        Some(active.clone())
    );

    let accepted = accept("invite", at(61)).await.expect("accepted");
    assert_eq!(accepted.account_id, invited.account_id);
    assert_eq!(accepted.status, AccountStatus::Active);
    assert_eq!(accepted.name, "New Name");
    assert_eq!(accepted.password_hash, "new-hash");
    assert_eq!(
        store.account(&invited.account_id).await.unwrap(),
        Some(accepted)
    );
    // Once only.
    assert_eq!(accept("invite", at(62)).await, None);
}
