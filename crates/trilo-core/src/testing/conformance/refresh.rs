//! Conformance cases for the refresh-token part of `GrantStore`: the first token stored
//! with its family, rotation as a compare-and-set, and what revocation does to it.

use std::sync::Arc;

use time::Duration;
use tokio::sync::Barrier;

use crate::crypto::{random_token, sha256};
use crate::model::{NewRefreshToken, Redeemed, RefreshToken, Rotation, TokenFamily, TokenHash};
use crate::store::Store;
use crate::testing::fixtures::{self, World, at};

/// A family with its first refresh token (`hash`), issued at `at(2)`.
async fn family_with_token(store: &dyn Store, w: &World, hash: TokenHash) -> TokenFamily {
    let code = fixtures::new_code(at(1));
    store
        .accept_consent(
            &w.consent(&["read:jira-work", "offline_access"], at(1)),
            &fixtures::new_id(),
            &code,
        )
        .await
        .unwrap();
    let new_family = fixtures::new_family_with_refresh(at(2), hash);
    match store
        .redeem_code(&code.code_hash, &new_family, at(2))
        .await
        .unwrap()
    {
        Redeemed::First(family) => family,
        other => panic!("expected First, got {other:?}"),
    }
}

fn rotation(family: &TokenFamily, parent: TokenHash, generation: i64, at_s: i64) -> Rotation {
    Rotation {
        family_id: family.family_id.clone(),
        parent_hash: parent,
        parent_generation: generation,
        child: NewRefreshToken {
            token_hash: sha256(&random_token()),
            inactivity_expires_at: at(at_s) + Duration::days(90),
        },
        at: at(at_s),
    }
}

pub async fn redeem_code_stores_the_first_refresh_token_with_its_family(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let hash = sha256(&random_token());
    let family = family_with_token(store.as_ref(), &w, hash).await;
    assert_eq!(family.head_generation, 0);
    let state = store.refresh_token(&hash).await.unwrap().unwrap();
    assert_eq!(
        state.token,
        RefreshToken {
            token_hash: hash,
            family_id: family.family_id.clone(),
            generation: 0,
            issued_at: at(2),
            inactivity_expires_at: at(2) + Duration::days(90),
            rotated_at: None,
        }
    );
    assert_eq!(state.family, family);
    assert!(state.grant_live);
    assert_eq!(
        state.account_credential_generation,
        Some(w.user.credential_generation)
    );
    assert_eq!(
        store
            .refresh_token_of_generation(&family.family_id, 0)
            .await
            .unwrap(),
        Some(state.token)
    );
    assert!(
        store
            .refresh_token(&sha256("unknown"))
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn rotate_refresh_token_is_a_compare_and_set_on_the_head(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let parent = sha256(&random_token());
    let family = family_with_token(store.as_ref(), &w, parent).await;

    let first = rotation(&family, parent, 0, 3);
    assert!(store.rotate_refresh_token(&first).await.unwrap());
    // The same parent again, or a stale generation: the head moved, nothing changes.
    let again = rotation(&family, parent, 0, 4);
    assert!(!store.rotate_refresh_token(&again).await.unwrap());
    assert!(
        store
            .refresh_token(&again.child.token_hash)
            .await
            .unwrap()
            .is_none()
    );

    let parent_now = store.refresh_token(&parent).await.unwrap().unwrap();
    assert_eq!(parent_now.token.rotated_at, Some(at(3)));
    assert_eq!(parent_now.family.head_generation, 1);
    let child = store
        .refresh_token(&first.child.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(child.token.generation, 1);
    assert_eq!(child.token.issued_at, at(3));
    assert_eq!(
        child.token.inactivity_expires_at,
        first.child.inactivity_expires_at
    );
    assert_eq!(child.token.rotated_at, None);

    // The child rotates on.
    let second = rotation(&family, first.child.token_hash, 1, 5);
    assert!(store.rotate_refresh_token(&second).await.unwrap());
    let head = store.family(&family.family_id).await.unwrap().unwrap();
    assert_eq!(head.head_generation, 2);
}

pub async fn rotation_of_a_revoked_family_changes_nothing(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let parent = sha256(&random_token());
    let family = family_with_token(store.as_ref(), &w, parent).await;
    assert!(
        store
            .revoke_family(&family.family_id, "refresh_token_reused", at(3))
            .await
            .unwrap()
    );
    let attempt = rotation(&family, parent, 0, 4);
    assert!(!store.rotate_refresh_token(&attempt).await.unwrap());
    let state = store.refresh_token(&parent).await.unwrap().unwrap();
    assert_eq!(state.token.rotated_at, None);
    assert_eq!(state.family.head_generation, 0);
    assert_eq!(state.family.revoked_at, Some(at(3)));
}

pub async fn deleting_the_app_deletes_its_refresh_tokens(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let hash = sha256(&random_token());
    family_with_token(store.as_ref(), &w, hash).await;
    assert!(store.delete_app(&w.app.app_id).await.unwrap());
    assert!(store.refresh_token(&hash).await.unwrap().is_none());
}

pub async fn concurrent_rotations_of_one_token_have_exactly_one_winner(store: Arc<dyn Store>) {
    const CALLERS: usize = 16;
    let w = World::seed(store.as_ref()).await.unwrap();
    let parent = sha256(&random_token());
    let family = family_with_token(store.as_ref(), &w, parent).await;

    let barrier = Arc::new(Barrier::new(CALLERS));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let attempt = rotation(&family, parent, 0, 3);
            tokio::spawn(async move {
                barrier.wait().await;
                let won = store.rotate_refresh_token(&attempt).await.unwrap();
                (won, attempt.child.token_hash)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (won, child) = task.await.unwrap();
        let stored = store.refresh_token(&child).await.unwrap();
        assert_eq!(stored.is_some(), won, "only the winner's child is stored");
        if won {
            winners.push(child);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one rotation wins");
    let head = store.family(&family.family_id).await.unwrap().unwrap();
    assert_eq!(head.head_generation, 1);
    assert!(
        store
            .refresh_token_of_generation(&family.family_id, 2)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn refresh_token_state_reports_a_revoked_grant(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let hash = sha256(&random_token());
    let family = family_with_token(store.as_ref(), &w, hash).await;
    store.revoke_grant(&family.grant_id, at(3)).await.unwrap();
    let state = store.refresh_token(&hash).await.unwrap().unwrap();
    assert!(!state.grant_live);
    assert!(state.family.revoked_at.is_some(), "its families go with it");
}
