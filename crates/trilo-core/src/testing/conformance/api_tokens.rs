//! Conformance cases for `ApiTokenStore`.

use std::sync::Arc;

use crate::crypto::{random_token, sha256};
use crate::model::ApiToken;
use crate::store::Store;
use crate::testing::conformance::assert_not_found;
use crate::testing::fixtures::{self, World, at};

fn token(account_id: &str, label: &str, at_s: i64) -> ApiToken {
    ApiToken {
        token_id: fixtures::new_id(),
        account_id: account_id.to_owned(),
        label: label.to_owned(),
        token_hash: sha256(&random_token()),
        created_at: at(at_s),
        expires_at: Some(at(at_s + 3600)),
        last_used_at: None,
        revoked_at: None,
    }
}

pub async fn api_token_round_trips_and_is_found_by_hash(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let first = token(&w.user.account_id, "ci script", 1);
    let second = ApiToken {
        expires_at: None,
        ..token(&w.user.account_id, "backup", 2)
    };
    store.insert_api_token(&first).await.unwrap();
    store.insert_api_token(&second).await.unwrap();
    assert_eq!(
        store.api_token_by_hash(&first.token_hash).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.api_token_by_hash(&sha256("nope")).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .api_tokens_of_account(&w.user.account_id)
            .await
            .unwrap(),
        vec![second, first],
        "newest first"
    );
    let api_tokens_of_account = store
        .api_tokens_of_account(&w.developer.account_id)
        .await
        .unwrap();
    assert!(api_tokens_of_account.is_empty());
}

pub async fn api_token_needs_a_known_account(store: Arc<dyn Store>) {
    assert_not_found(
        store
            .insert_api_token(&token("no-such-account", "x", 1))
            .await,
    );
}

pub async fn revoke_api_token_acts_once_and_only_for_its_account(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let t = token(&w.user.account_id, "ci", 1);
    store.insert_api_token(&t).await.unwrap();
    assert!(
        !store
            .revoke_api_token(&w.developer.account_id, &t.token_id, at(2))
            .await
            .unwrap(),
        "another account cannot revoke it"
    );
    assert!(
        store
            .revoke_api_token(&w.user.account_id, &t.token_id, at(3))
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_api_token(&w.user.account_id, &t.token_id, at(4))
            .await
            .unwrap()
    );
    let stored = store
        .api_token_by_hash(&t.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.revoked_at, Some(at(3)));
}

pub async fn touch_api_token_records_the_last_use(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let t = token(&w.user.account_id, "ci", 1);
    store.insert_api_token(&t).await.unwrap();
    store.touch_api_token(&t.token_id, at(9)).await.unwrap();
    let stored = store
        .api_token_by_hash(&t.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.last_used_at, Some(at(9)));
}
