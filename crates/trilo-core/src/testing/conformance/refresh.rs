//! Conformance cases for the refresh-token part of `GrantStore`: the first token stored
//! with its family, rotation as a compare-and-set, and what revocation does to it.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;

use super::{consent_at, redeem_at, revoke_family_at};
use crate::crypto::{random_token, sha256};
use trilo_protocol::rotation::RotationDecision;

use crate::model::{
    KeptHead, NewRefreshToken, Redeemed, RefreshToken, RefreshTokenKey, RefreshTokenState,
    Rotation, TokenFamily, TokenHash, TokenKeeping,
};
use crate::refresh_plan::{RefreshPlan, RotationRule};
use crate::store::{Durable, Refreshed, Store, StoreError, StoreResult};
use crate::testing::fixtures::{self, World, at};

/// A family with its first refresh token (`hash`), issued at `at(2)`.
async fn family_with_token(store: &dyn Store, w: &World, hash: TokenHash) -> TokenFamily {
    let (_, code) = consent_at(w, store, &["read:jira-work", "offline_access"], 1).await;
    let new_family = fixtures::new_family_with_refresh(at(2), hash);
    match redeem_at(store, &code.code_hash, &new_family, 2).await {
        Redeemed::First(family) => family,
        other => panic!("expected First, got {other:?}"),
    }
}

/// Both ways of keeping tokens: rows of their own (tokens from before migration 0020 and
/// their successors) and the family's row (every token issued now).
const KEEPINGS: [TokenKeeping; 2] = [TokenKeeping::Row, TokenKeeping::Family];

/// A family whose first token, issued at `at(2)`, is kept as `kept`, and that token's key.
async fn family_keeping(
    store: &dyn Store,
    w: &World,
    kept: TokenKeeping,
) -> (RefreshTokenKey, TokenFamily) {
    match kept {
        TokenKeeping::Row => {
            let hash = sha256(&random_token());
            let family = family_with_token(store, w, hash).await;
            (key(&family, 0, hash), family)
        }
        TokenKeeping::Family => {
            let (_, code) = consent_at(w, store, &["read:jira-work", "offline_access"], 1).await;
            let new_family = fixtures::new_family_keeping_tokens(at(2));
            match redeem_at(store, &code.code_hash, &new_family, 2).await {
                Redeemed::First(family) => (fixtures::kept_token_key(&family.family_id, 0), family),
                other => panic!("expected First, got {other:?}"),
            }
        }
    }
}

/// Where the successor `plan` names is kept: the next generation of the parent's family,
/// kept the same way.
fn child_key(plan: &RefreshPlan) -> RefreshTokenKey {
    RefreshTokenKey {
        generation: plan.parent.generation + 1,
        token_hash: plan.child.token_hash,
        ..plan.parent.clone()
    }
}

/// A key of `kept`'s shape that names no token the store holds.
fn unknown_key(kept: TokenKeeping) -> RefreshTokenKey {
    match kept {
        TokenKeeping::Row => fixtures::token_key(&fixtures::new_id(), 0, sha256(&random_token())),
        TokenKeeping::Family => fixtures::kept_token_key(&fixtures::new_id(), 0),
    }
}

/// Where the token of `family`'s `generation` with `hash` is stored.
fn key(family: &TokenFamily, generation: i64, hash: TokenHash) -> RefreshTokenKey {
    fixtures::token_key(&family.family_id, generation, hash)
}

fn rotation(family: &TokenFamily, parent: TokenHash, generation: i64, at_s: i64) -> Rotation {
    Rotation {
        family_id: family.family_id.clone(),
        parent_hash: parent,
        parent_generation: generation,
        child: NewRefreshToken {
            token_hash: sha256(&random_token()),
            inactivity_expires_at: at(at_s) + Duration::days(90),
            kept: TokenKeeping::Row,
        },
        at: at(at_s),
    }
}

pub async fn redeem_code_stores_the_first_refresh_token_with_its_family(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let hash = sha256(&random_token());
    let family = family_with_token(store.as_ref(), &w, hash).await;
    assert_eq!(family.head_generation, 0);
    let state = store
        .refresh_token(&key(&family, 0, hash))
        .await
        .unwrap()
        .unwrap();
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
    // The right place with another hash (a token whose family or generation was edited),
    // or a place with no token, finds nothing.
    for unknown in [
        key(&family, 0, sha256("unknown")),
        key(&family, 1, hash),
        RefreshTokenKey {
            family_id: fixtures::new_id(),
            ..key(&family, 0, hash)
        },
    ] {
        assert!(store.refresh_token(&unknown).await.unwrap().is_none());
    }
    // A token stored today is found by its key only.
    assert!(store.legacy_refresh_token(&hash).await.unwrap().is_none());
}

/// A family that keeps its tokens stores nothing of them: its row says which generation
/// is the head, when it was issued and when it ends, and dates the two rotations before
/// it, so each generation reads as the rotation decision needs it.
pub async fn a_family_keeping_its_tokens_dates_their_rotations(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let w = World::seed(store).await.unwrap();
    let app = w.app.app_id.as_str();
    let (first, family) = family_keeping(store, &w, TokenKeeping::Family).await;
    let family_id = family.family_id.clone();
    assert_eq!(
        family.kept_head,
        Some(KeptHead {
            issued_at: at(2),
            inactivity_expires_at: at(2) + Duration::days(90),
            previous_issued_at: None,
        })
    );
    assert_eq!(
        store.family(&family_id).await.unwrap(),
        Some(family.clone())
    );
    assert!(
        store
            .refresh_token_of_generation(&family_id, 0)
            .await
            .unwrap()
            .is_none(),
        "no row of its own"
    );
    let state = store.refresh_token(&first).await.unwrap().unwrap();
    assert_eq!(
        state.token,
        RefreshToken {
            token_hash: first.token_hash,
            family_id: family_id.clone(),
            generation: 0,
            issued_at: at(2),
            inactivity_expires_at: at(2) + Duration::days(90),
            rotated_at: None,
        }
    );
    assert_eq!(state.family, family);

    let mut parent = first;
    for at_s in [3, 5, 7] {
        let rotating = plan(parent, app, at(at_s), None);
        let refreshed = once_durable(store.refresh_and_rotate(&rotating).await)
            .await
            .unwrap()
            .unwrap();
        assert!(refreshed.rotated, "the head at {at_s} s");
        parent = child_key(&rotating);
    }
    let family = store.family(&family_id).await.unwrap().unwrap();
    assert_eq!(family.head_generation, 3);
    assert_eq!(
        family.kept_head,
        Some(KeptHead {
            issued_at: at(7),
            inactivity_expires_at: at(7) + Duration::days(90),
            previous_issued_at: Some(at(5)),
        })
    );
    // (generation, its rotation time as the family dates it, the decision at 8 s)
    for (generation, rotated_at, decision) in [
        (3, None, RotationDecision::Rotate),
        (2, Some(at(7)), RotationDecision::ReturnCurrent),
        (1, Some(at(5)), RotationDecision::ReuseDetected),
        (0, None, RotationDecision::ReuseDetected),
    ] {
        assert_eq!(
            family.kept_rotation_time(generation),
            rotated_at,
            "{generation}"
        );
        let key = fixtures::kept_token_key(&family_id, generation);
        let state = store.refresh_token(&key).await.unwrap().unwrap();
        assert_eq!(state.token.generation, generation);
        assert_eq!(state.token.rotated_at.is_none(), generation == 3);
        let rule = plan(key, app, at(8), None).rule;
        assert_eq!(rule.decide(&state), decision, "{generation}");
    }
    let beyond = fixtures::kept_token_key(&family_id, 4);
    assert!(store.refresh_token(&beyond).await.unwrap().is_none());
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
            .refresh_token(&key(&family, 1, again.child.token_hash))
            .await
            .unwrap()
            .is_none()
    );

    let parent_now = store
        .refresh_token(&key(&family, 0, parent))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(parent_now.token.rotated_at, Some(at(3)));
    assert_eq!(parent_now.family.head_generation, 1);
    let child = store
        .refresh_token(&key(&family, 1, first.child.token_hash))
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
    assert!(revoke_family_at(store.as_ref(), &family.family_id, "refresh_token_reused", 3).await);
    let attempt = rotation(&family, parent, 0, 4);
    assert!(!store.rotate_refresh_token(&attempt).await.unwrap());
    let state = store
        .refresh_token(&key(&family, 0, parent))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.token.rotated_at, None);
    assert_eq!(state.family.head_generation, 0);
    assert_eq!(state.family.revoked_at, Some(at(3)));
}

pub async fn deleting_the_app_deletes_its_refresh_tokens(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let hash = sha256(&random_token());
    let family = family_with_token(store.as_ref(), &w, hash).await;
    assert!(store.delete_app(&w.app.app_id).await.unwrap());
    assert!(
        store
            .refresh_token(&key(&family, 0, hash))
            .await
            .unwrap()
            .is_none()
    );
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
        let stored = store.refresh_token(&key(&family, 1, child)).await.unwrap();
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
    let state = store
        .refresh_token(&key(&family, 0, hash))
        .await
        .unwrap()
        .unwrap();
    assert!(!state.grant_live);
    assert!(state.family.revoked_at.is_some(), "its families go with it");
}

/// A plan for presenting `parent` as `app_id` at `at_s`, with a fresh successor.
fn plan(
    parent: RefreshTokenKey,
    app_id: &str,
    now: OffsetDateTime,
    scope: Option<&str>,
) -> RefreshPlan {
    let kept = parent.kept;
    RefreshPlan {
        rule: RotationRule {
            app_id: app_id.to_owned(),
            now,
            reuse_leeway: Duration::minutes(10),
        },
        parent,
        child: NewRefreshToken {
            token_hash: sha256(&random_token()),
            inactivity_expires_at: now + Duration::days(90),
            kept,
        },
        scope: scope.map(str::to_owned),
    }
}

/// A refresh's answer once its commit is on disk: a store may answer before (SQLite's
/// committer does), and what a case reads next must see the write.
async fn once_durable(answer: StoreResult<Option<Refreshed>>) -> StoreResult<Option<Refreshed>> {
    let Some(mut refreshed) = answer? else {
        return Ok(None);
    };
    std::mem::replace(&mut refreshed.durable, Durable::committed())
        .wait()
        .await?;
    Ok(Some(refreshed))
}

/// Presents `parent` with `plan` and checks that the store rotated exactly when
/// `expected` says, that this is what the plan itself asks for, and where the head is.
async fn refresh_case(store: &dyn Store, case: &str, plan: &RefreshPlan, expected: bool) {
    let refreshed = once_durable(store.refresh_and_rotate(plan).await)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{case}: the token was not found"));
    assert_eq!(refreshed.rotated, expected, "{case}");
    assert_eq!(
        plan.rotation(&refreshed.state).is_some(),
        expected,
        "{case}: the plan disagrees"
    );
    let family = &refreshed.state.family;
    let head = store.family(&family.family_id).await.unwrap().unwrap();
    let child = store.refresh_token(&child_key(plan)).await.unwrap();
    if expected {
        assert_eq!(
            head.head_generation,
            refreshed.state.token.generation + 1,
            "{case}"
        );
        let child = child.unwrap_or_else(|| panic!("{case}: no child"));
        assert_eq!(child.token.generation, head.head_generation, "{case}");
        assert_eq!(child.token.issued_at, plan.rule.now, "{case}");
        let parent = store.refresh_token(&plan.parent).await.unwrap().unwrap();
        assert_eq!(parent.token.rotated_at, Some(plan.rule.now), "{case}");
    } else {
        assert_eq!(head.head_generation, family.head_generation, "{case}");
        // (A kept child is the family's head or not: the head did not move.)
        if plan.parent.kept == TokenKeeping::Row {
            assert!(child.is_none(), "{case}: a child was stored");
        }
    }
}

pub async fn refresh_and_rotate_rotates_exactly_when_the_rule_allows(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let w = World::seed(store).await.unwrap();
    for kept in KEEPINGS {
        rotates_exactly_when_the_rule_allows(store, &w, kept).await;
    }
}

async fn rotates_exactly_when_the_rule_allows(store: &dyn Store, w: &World, kept: TokenKeeping) {
    let app = w.app.app_id.as_str();
    let fresh = async || family_keeping(store, w, kept).await;

    let (head, _) = fresh().await;
    refresh_case(
        store,
        "the head, in time",
        &plan(head.clone(), app, at(3), None),
        true,
    )
    .await;
    let again = plan(head.clone(), app, at(4), None);
    refresh_case(store, "the used parent, in the leeway", &again, false).await;

    let (hash, _) = fresh().await;
    let wrong_client = plan(hash.clone(), "another-app", at(3), None);
    refresh_case(store, "another client", &wrong_client, false).await;
    let idle = plan(hash.clone(), app, at(2) + Duration::days(90), None);
    refresh_case(store, "idle past its inactivity expiry", &idle, false).await;
    let ended = plan(hash.clone(), app, at(2) + Duration::days(366), None);
    refresh_case(store, "past the family's absolute expiry", &ended, false).await;
    let narrowed = plan(hash, app, at(3), Some("read:jira-work"));
    refresh_case(store, "a narrowing scope", &narrowed, true).await;

    let (hash, _) = fresh().await;
    let widened = plan(hash, app, at(3), Some("read:jira-work write:jira-work"));
    refresh_case(store, "a scope beyond the grant", &widened, false).await;

    let (hash, family) = fresh().await;
    store
        .revoke_family(&family.family_id, "test", at(3))
        .await
        .unwrap();
    let revoked = plan(hash, app, at(4), None);
    refresh_case(store, "a revoked family", &revoked, false).await;

    let (hash, family) = fresh().await;
    store.revoke_grant(&family.grant_id, at(3)).await.unwrap();
    let grant_revoked = plan(hash, app, at(4), None);
    refresh_case(store, "a revoked grant", &grant_revoked, false).await;

    let (hash, _) = fresh().await;
    store
        .change_password(&w.user.account_id, "new-hash", None, at(3))
        .await
        .unwrap();
    let password_changed = plan(hash, app, at(4), None);
    refresh_case(store, "after a password change", &password_changed, false).await;

    // A key the family does not hold: for a stored token another hash (a token whose
    // family or generation was edited), for a kept one a generation not issued yet, or
    // the other way of keeping. Nothing is found and the family stays as it was.
    let (real, family) = fresh().await;
    let other_way = match kept {
        TokenKeeping::Row => TokenKeeping::Family,
        TokenKeeping::Family => TokenKeeping::Row,
    };
    for edited in [
        RefreshTokenKey {
            token_hash: sha256("no such token"),
            ..real.clone()
        },
        RefreshTokenKey {
            generation: 1,
            ..real.clone()
        },
        RefreshTokenKey {
            kept: other_way,
            ..real.clone()
        },
    ] {
        let found = match (kept, edited.generation) {
            // A kept token is the family's to say: its hash is not stored.
            (TokenKeeping::Family, 0) if edited.kept == kept => continue,
            _ => store
                .refresh_and_rotate(&plan(edited.clone(), app, at(3), None))
                .await
                .unwrap(),
        };
        assert!(found.is_none(), "{edited:?}");
    }
    let unchanged = store.family(&family.family_id).await.unwrap().unwrap();
    assert_eq!(unchanged.head_generation, 0);
}

/// A re-consent replaces the grant's scopes, and they govern the family: without
/// `offline_access` nothing refreshes (in SQL too, where a store writes the rule there),
/// and a wider grant gives the family back no more than it was issued with.
pub async fn a_grant_without_offline_access_refreshes_nothing(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let w = World::seed(store).await.unwrap();
    for kept in KEEPINGS {
        refreshes_only_with_offline_access(store, &w, kept).await;
    }
}

async fn refreshes_only_with_offline_access(store: &dyn Store, w: &World, kept: TokenKeeping) {
    let app = w.app.app_id.as_str();
    let (hash, _) = family_keeping(store, w, kept).await;

    w.consented(store, &["read:jira-work"], at(3))
        .await
        .unwrap();
    let state = store.refresh_token(&hash).await.unwrap().unwrap();
    assert_eq!(state.grant_scopes, vec!["read:jira-work".to_owned()]);
    assert!(!state.grant_refreshable());
    assert_eq!(state.live_scopes(), vec!["read:jira-work".to_owned()]);
    let without_offline = plan(hash.clone(), app, at(4), None);
    refresh_case(
        store,
        "a grant without offline_access",
        &without_offline,
        false,
    )
    .await;

    let wider = ["read:jira-work", "write:jira-work", "offline_access"];
    w.consented(store, &wider, at(5)).await.unwrap();
    let state = store.refresh_token(&hash).await.unwrap().unwrap();
    assert!(state.grant_refreshable());
    assert_eq!(
        state.live_scopes(),
        vec!["read:jira-work".to_owned(), "offline_access".to_owned()]
    );
    let again = plan(hash, app, at(6), None);
    refresh_case(store, "the grant holds offline_access again", &again, true).await;
    let beyond = plan(child_key(&again), app, at(7), Some("write:jira-work"));
    refresh_case(
        store,
        "a scope the grant holds but the family never had",
        &beyond,
        false,
    )
    .await;
}

pub async fn concurrent_refreshes_of_one_token_rotate_it_once(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    for kept in KEEPINGS {
        let (parent, family) = family_keeping(store.as_ref(), &w, kept).await;
        let racers: Vec<RefreshPlan> = (0..8)
            .map(|_| plan(parent.clone(), &w.app.app_id, at(3), None))
            .collect();
        let mut winners = 0;
        for answer in refresh_all_at_once(&store, racers.iter()).await {
            winners += usize::from(answer.unwrap().unwrap().rotated);
        }
        assert_eq!(winners, 1, "{kept:?}");
        let head = store.family(&family.family_id).await.unwrap().unwrap();
        assert_eq!(head.head_generation, 1, "{kept:?}");
    }
}

/// Presents every plan's token at the same moment (the tasks wait on one barrier) and
/// returns the answers in the plans' order.
async fn refresh_all_at_once(
    store: &Arc<dyn Store>,
    plans: impl Iterator<Item = &RefreshPlan>,
) -> Vec<StoreResult<Option<Refreshed>>> {
    let plans: Vec<RefreshPlan> = plans.cloned().collect();
    let barrier = Arc::new(Barrier::new(plans.len()));
    let mut tasks = Vec::new();
    for plan in plans {
        let (store, barrier) = (Arc::clone(store), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            once_durable(store.refresh_and_rotate(&plan).await).await
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// Many refreshes at once (a store may write them together, as PostgreSQL's group commit
/// does): each caller gets the answer for its own token, whether it rotated, was refused
/// or is unknown, and each rotation lands in its own family.
pub async fn concurrent_refreshes_of_many_tokens_each_get_their_own_answer(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    for kept in KEEPINGS {
        many_refreshes_each_get_their_own_answer(&store, &w, kept).await;
    }
}

async fn many_refreshes_each_get_their_own_answer(
    store: &Arc<dyn Store>,
    w: &World,
    kept: TokenKeeping,
) {
    let app = w.app.app_id.as_str();
    // (plan, the family presented, whether it rotates); `None` for an unknown token.
    let mut requests = Vec::new();
    for i in 0..20 {
        let (parent, family) = family_keeping(store.as_ref(), w, kept).await;
        let asking_app = if i % 4 == 3 { "another-app" } else { app };
        requests.push((
            plan(parent, asking_app, at(3), None),
            Some(family),
            i % 4 != 3,
        ));
    }
    for _ in 0..4 {
        requests.push((plan(unknown_key(kept), app, at(3), None), None, false));
    }
    let answers = refresh_all_at_once(store, requests.iter().map(|(plan, _, _)| plan)).await;
    for ((plan, family, rotates), answer) in requests.iter().zip(answers) {
        let answer = answer.unwrap();
        let Some(family) = family else {
            assert!(answer.is_none(), "an unknown token has no state");
            continue;
        };
        let answer = answer.expect("a stored token has its state");
        assert_eq!(answer.state.token.token_hash, plan.parent.token_hash);
        assert_eq!(answer.state.family.family_id, family.family_id);
        assert_eq!(answer.rotated, *rotates, "{}", plan.rule.app_id);
        let head = store.family(&family.family_id).await.unwrap().unwrap();
        assert_eq!(head.head_generation, i64::from(*rotates));
        let child = store.refresh_token(&child_key(plan)).await.unwrap();
        match child {
            Some(child) => {
                assert!(rotates, "only a rotation stores its successor");
                assert_eq!(child.token.family_id, family.family_id);
                assert_eq!(child.token.generation, 1);
            }
            None => assert!(!rotates, "a rotation stores its successor"),
        }
    }
}

/// A refresh that fails on its own (here: a successor that would expire no later than it
/// is issued, which the store refuses) fails alone, even when the store writes it together
/// with others, and leaves its family as it was.
pub async fn a_failing_refresh_does_not_fail_those_written_with_it(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    for kept in KEEPINGS {
        a_failing_refresh_fails_alone(&store, &w, kept).await;
    }
}

async fn a_failing_refresh_fails_alone(store: &Arc<dyn Store>, w: &World, kept: TokenKeeping) {
    let app = w.app.app_id.as_str();
    let mut requests = Vec::new();
    for i in 0..12 {
        let (parent, family) = family_keeping(store.as_ref(), w, kept).await;
        let mut plan = plan(parent, app, at(3), None);
        let fails = i % 2 == 1;
        if fails {
            plan.child.inactivity_expires_at = plan.rule.now;
        }
        requests.push((fails, plan, family));
    }
    let answers = refresh_all_at_once(store, requests.iter().map(|(_, plan, _)| plan)).await;
    for ((fails, _, family), answer) in requests.iter().zip(answers) {
        match answer {
            Ok(answer) => {
                assert!(!fails, "a successor that expires at once is refused");
                assert!(answer.unwrap().rotated, "nothing refuses this refresh");
            }
            Err(StoreError::Unavailable(reason)) => panic!("the store is there: {reason}"),
            Err(_) => assert!(fails, "only the broken refresh fails"),
        }
        let head = store.family(&family.family_id).await.unwrap().unwrap();
        assert_eq!(head.head_generation, i64::from(!fails));
    }
}

/// Families for a bulk loader to write (`fixtures::families_to_load`) under a grant of a
/// new world in `store`; [`loaded_families_read_back`] checks them once written.
pub async fn families_to_load(store: &dyn Store) -> Vec<TokenFamily> {
    let w = World::seed(store).await.unwrap();
    let (grant, _) = w
        .consented(store, &["read:jira-work", "offline_access"], at(1))
        .await
        .unwrap();
    fixtures::families_to_load(&grant, at(2))
}

/// The store reads each loaded family as it was written, a family keeping its tokens with
/// its head's times.
pub async fn loaded_families_read_back(store: &dyn Store, families: &[TokenFamily]) {
    for family in families {
        assert_eq!(
            store.family(&family.family_id).await.unwrap().as_ref(),
            Some(family)
        );
    }
}

/// Tokens of three families, stored by a store migrated up to 0017 (before refresh tokens
/// were keyed by family and generation): each family's first token rotated once, the second
/// family revoked. Each token's key and its state, to compare after 0018 with
/// [`tokens_after_keying`].
pub async fn tokens_before_keying(
    store: &dyn Store,
) -> (World, Vec<(RefreshTokenKey, RefreshTokenState)>) {
    let w = World::seed(store).await.unwrap();
    let mut keys = Vec::new();
    for i in 0..3 {
        let first = sha256(&random_token());
        let family = family_with_token(store, &w, first).await;
        let rotation = rotation(&family, first, 0, 3 + i);
        assert!(store.rotate_refresh_token(&rotation).await.unwrap());
        keys.extend([
            key(&family, 0, first),
            key(&family, 1, rotation.child.token_hash),
        ]);
        if i == 1 {
            revoke_family_at(store, &family.family_id, "test", 10).await;
        }
    }
    let mut tokens = Vec::new();
    for key in keys {
        let state = store.refresh_token(&key).await.unwrap().unwrap();
        tokens.push((key, state));
    }
    (w, tokens)
}

/// After migration 0018: every token from [`tokens_before_keying`] is where it was, field
/// for field, and also found by its hash alone (a client holds such a token as a bare
/// secret); a family's head from before rotates on, and its successor, stored now, is
/// found by its key only.
pub async fn tokens_after_keying(
    store: &dyn Store,
    w: &World,
    before: &[(RefreshTokenKey, RefreshTokenState)],
) {
    for (key, state) in before {
        assert_eq!(
            store.refresh_token(key).await.unwrap().as_ref(),
            Some(state)
        );
        assert_eq!(
            store.legacy_refresh_token(&key.token_hash).await.unwrap(),
            Some(key.clone())
        );
    }
    let (head, _) = &before[1];
    let plan = plan(head.clone(), &w.app.app_id, at(20), None);
    let refreshed = once_durable(store.refresh_and_rotate(&plan).await)
        .await
        .unwrap()
        .unwrap();
    assert!(refreshed.rotated, "a head from before rotates");
    let child = RefreshTokenKey {
        generation: 2,
        ..key(&refreshed.state.family, 0, plan.child.token_hash)
    };
    assert_eq!(
        store
            .refresh_token(&child)
            .await
            .unwrap()
            .unwrap()
            .token
            .generation,
        2
    );
    assert_eq!(
        store
            .legacy_refresh_token(&plan.child.token_hash)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .legacy_refresh_token(&sha256("unknown"))
            .await
            .unwrap(),
        None
    );
}
