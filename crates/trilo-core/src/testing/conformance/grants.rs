//! Conformance cases for `GrantStore`: consent, grants, single-use codes and token families.

use std::sync::Arc;

use tokio::sync::Barrier;

use super::{
    consent_at, installed_by_admin, redeem_at, redeem_first, revoke_family_at, stored_grant,
};
use crate::code_plan::{CodeExchanged, CodePlan};
use crate::model::{
    AccountStatus, AuditEvent, AuditQuery, AuthorizationCode, GrantChange, InstalledBy, NewCode,
    NewFamily, NewRefreshToken, Redeemed, RefreshTokenKey, TokenFamily, TokenKeeping,
};
use crate::store::{Store, StoreError};
use crate::testing::fixtures::{self, World, at};

/// The scopes most cases consent to first.
const READ_WRITE_WORK: &[&str] = &["read:jira-work", "write:jira-work"];

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

pub async fn accept_consent_creates_grant_installs_app_and_links_code(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let grant_id = fixtures::new_id();
    let mut code = fixtures::new_code(at(1));
    code.nonce = Some("n-0S6_WzA2Mj".into());
    let grant = store
        .accept_consent(
            &w.consent(&["read:jira-work", "offline_access"], at(1)),
            &grant_id,
            &code,
        )
        .await
        .unwrap();

    assert_eq!(grant.grant_id, grant_id);
    assert_eq!(grant.app_id, w.app.app_id);
    assert_eq!(grant.account_id, w.user.account_id);
    assert_eq!(grant.scopes, strings(&["read:jira-work", "offline_access"]));
    assert_eq!(grant.cloud_ids, vec![w.site.cloud_id.clone()]);
    assert_eq!(grant.created_at, at(1));
    assert_eq!(grant.updated_at, at(1));
    assert_eq!(grant.revoked_at, None);
    assert_eq!(store.grant(&grant_id).await.unwrap(), Some(grant.clone()));
    assert_eq!(
        store
            .live_grant(&w.app.app_id, &w.user.account_id)
            .await
            .unwrap(),
        Some(grant.clone())
    );
    assert_eq!(
        store.grants_of_account(&w.user.account_id).await.unwrap(),
        vec![grant.clone()]
    );
    assert_eq!(store.grant("no-such-grant").await.unwrap(), None);
    let live_grant = store
        .live_grant(&w.app.app_id, &w.developer.account_id)
        .await
        .unwrap();
    assert_eq!(live_grant, None);

    let installs = store.installations_of_app(&w.app.app_id).await.unwrap();
    assert_eq!(installs.len(), 1);
    assert_eq!(installs[0].cloud_id, w.site.cloud_id);
    assert_eq!(installs[0].installed_by, InstalledBy::UserConsent);
    assert_eq!(installs[0].installed_by_account_id, w.user.account_id);
    assert_eq!(installs[0].created_at, at(1));

    assert_eq!(
        store.code(&code.code_hash).await.unwrap(),
        Some(AuthorizationCode {
            code_hash: code.code_hash,
            app_id: w.app.app_id.clone(),
            account_id: w.user.account_id.clone(),
            grant_id: grant_id.clone(),
            cloud_id: Some(w.site.cloud_id.clone()),
            scopes: strings(&["read:jira-work", "offline_access"]),
            redirect_uri: code.redirect_uri.clone(),
            code_challenge: code.code_challenge.clone(),
            nonce: code.nonce.clone(),
            auth_time: code.auth_time,
            created_at: at(1),
            expires_at: code.expires_at,
            used_at: None,
            family_id: None,
            audience: code.audience.clone(),
        })
    );
    assert_eq!(store.code(&fixtures::random_hash()).await.unwrap(), None);
}

pub async fn second_consent_replaces_scopes_of_the_same_grant(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let (first, _) = consent_at(&w, store.as_ref(), READ_WRITE_WORK, 1).await;
    let (second, code) = consent_at(&w, store.as_ref(), &["read:jira-user"], 5).await;
    assert_eq!(second.grant_id, first.grant_id);
    assert_eq!(second.scopes, strings(&["read:jira-user"]));
    assert_eq!(second.created_at, at(1));
    assert_eq!(second.updated_at, at(5));
    assert_eq!(second.cloud_ids, vec![w.site.cloud_id.clone()]);
    assert_eq!(store.grant(&first.grant_id).await.unwrap(), Some(second));
    let code = store.code(&code.code_hash).await.unwrap().unwrap();
    assert_eq!(code.grant_id, first.grant_id);
    assert_eq!(code.scopes, strings(&["read:jira-user"]));
    let grants_of_account = store.grants_of_account(&w.user.account_id).await.unwrap();
    assert_eq!(grants_of_account.len(), 1);
}

pub async fn incremental_consent_adds_to_the_granted_scopes(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let (first, _) = consent_at(&w, store.as_ref(), &["read:jira-work", "offline_access"], 1).await;
    let mut more = w.consent(&["write:jira-work", "read:jira-work"], at(2));
    more.change = GrantChange::Add;
    let code = fixtures::new_code(at(2));
    let grant = store
        .accept_consent(&more, &fixtures::new_id(), &code)
        .await
        .unwrap();
    assert_eq!(grant.grant_id, first.grant_id);
    // Earlier scopes first, then the new ones, each once.
    let union = strings(&["read:jira-work", "offline_access", "write:jira-work"]);
    assert_eq!(grant.scopes, union);
    assert_eq!(grant.updated_at, at(2));
    // The code carries everything the grant now holds.
    assert_eq!(
        store.code(&code.code_hash).await.unwrap().unwrap().scopes,
        union
    );
}

pub async fn consents_on_more_sites_accumulate_cloud_ids_in_order(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let mut on_other = w.consent(&["read:jira-work"], at(2));
    on_other.cloud_id = Some(w.other_site.cloud_id.clone());
    let mut grant = None;
    for (i, consent) in [
        w.consent(&["read:jira-work"], at(1)),
        on_other,
        w.consent(&["read:jira-work"], at(3)),
    ]
    .into_iter()
    .enumerate()
    {
        let code = fixtures::new_code(consent.at);
        let g = store
            .accept_consent(&consent, &fixtures::new_id(), &code)
            .await
            .unwrap();
        let stored = store.code(&code.code_hash).await.unwrap().unwrap();
        assert_eq!(stored.cloud_id, consent.cloud_id, "code of consent {i}");
        grant = Some(g);
    }
    let grant = grant.unwrap();
    let expected = vec![w.site.cloud_id.clone(), w.other_site.cloud_id.clone()];
    assert_eq!(grant.cloud_ids, expected);
    assert_eq!(
        stored_grant(store.as_ref(), &grant.grant_id)
            .await
            .cloud_ids,
        expected
    );
    let mut installed: Vec<String> = store
        .installations_of_app(&w.app.app_id)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.cloud_id)
        .collect();
    installed.sort();
    let mut expected = expected;
    expected.sort();
    assert_eq!(installed, expected);
}

pub async fn consent_keeps_an_existing_installation(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let by_admin = installed_by_admin(&w);
    store.install_app(&by_admin).await.unwrap();
    consent_at(&w, store.as_ref(), &["read:jira-work"], 1).await;
    assert_eq!(
        store.installations_of_app(&w.app.app_id).await.unwrap(),
        vec![by_admin]
    );
}

pub async fn consent_after_revocation_creates_a_new_grant(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let (old, _) = consent_at(&w, store.as_ref(), READ_WRITE_WORK, 1).await;
    assert!(store.revoke_grant(&old.grant_id, at(2)).await.unwrap());
    let live_grant = store
        .live_grant(&w.app.app_id, &w.user.account_id)
        .await
        .unwrap();
    assert_eq!(live_grant, None);

    // Even an incremental consent starts from nothing: revoked scopes never come back.
    let mut again = w.consent(&["read:jira-work"], at(3));
    again.change = GrantChange::Add;
    let new_id = fixtures::new_id();
    let new = store
        .accept_consent(&again, &new_id, &fixtures::new_code(at(3)))
        .await
        .unwrap();
    assert_eq!(new.grant_id, new_id);
    assert_ne!(new.grant_id, old.grant_id);
    assert_eq!(new.scopes, strings(&["read:jira-work"]));
    assert_eq!(new.cloud_ids, vec![w.site.cloud_id.clone()]);
    assert_eq!(new.created_at, at(3));
    assert_eq!(
        store
            .live_grant(&w.app.app_id, &w.user.account_id)
            .await
            .unwrap(),
        Some(new.clone())
    );

    let mut old_revoked = old;
    old_revoked.revoked_at = Some(at(2));
    // Newest first, revoked ones included.
    assert_eq!(
        store.grants_of_account(&w.user.account_id).await.unwrap(),
        vec![new, old_revoked]
    );
}

/// The access-token check's one read: the family as `family` reports it, its grant's
/// scopes while the grant is live, and the account's current credential generation;
/// nothing for an unknown family.
/// Many standings read at once (PostgreSQL reads them in batches): each caller gets its
/// own family's, the same family may be asked for twice in one batch, and an unknown
/// family is `None`.
pub async fn concurrent_standings_each_answer_their_own_family(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let mut families = Vec::new();
    for at_s in 1..=3 {
        let (_, code) = consent_at(&w, store.as_ref(), &["read:jira-work"], at_s).await;
        families.push(Some(
            redeem_first(store.as_ref(), &code.code_hash, at_s).await,
        ));
    }
    families.push(None);
    let reads: Vec<_> = (0..24)
        .map(|i| {
            let store = Arc::clone(&store);
            let expected = families[i % families.len()].clone();
            tokio::spawn(async move {
                let family_id = expected
                    .as_ref()
                    .map_or_else(fixtures::new_id, |f| f.family_id.clone());
                let standing = store.access_token_standing(&family_id).await.unwrap();
                (standing.map(|s| s.family), expected)
            })
        })
        .collect();
    for read in reads {
        let (got, expected) = read.await.unwrap();
        assert_eq!(got, expected);
    }
}

pub async fn access_token_standing_reads_family_live_grant_and_account(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let scopes = ["read:jira-work", "offline_access"];
    let (grant, code) = consent_at(&w, store.as_ref(), &scopes, 1).await;
    let family = redeem_first(store.as_ref(), &code.code_hash, 2).await;
    let standing_now = || async {
        store
            .access_token_standing(&family.family_id)
            .await
            .unwrap()
            .expect("the family is stored")
    };

    let standing = standing_now().await;
    assert_eq!(standing.family, family);
    assert_eq!(standing.grant_scopes, Some(strings(&scopes)));
    assert_eq!(
        standing.account_credential_generation,
        Some(w.user.credential_generation)
    );

    store
        .change_password(&w.user.account_id, "$argon2id$changed", None, at(3))
        .await
        .unwrap();
    let changed = standing_now().await;
    assert_eq!(
        changed.account_credential_generation,
        Some(w.user.credential_generation + 1)
    );
    assert_eq!(changed.family.revoked_at, Some(at(3)), "a password change");
    assert_eq!(changed.grant_scopes, Some(strings(&scopes)));

    assert!(store.revoke_grant(&grant.grant_id, at(4)).await.unwrap());
    assert_eq!(standing_now().await.grant_scopes, None);
    assert_eq!(
        store.access_token_standing("no-such-family").await.unwrap(),
        None
    );
}

/// An account that is not active has no credential generation in its families'
/// standings, so none of its tokens is live.
pub async fn access_token_standing_of_an_inactive_account_has_no_generation(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let mut inactive = fixtures::any_account();
    inactive.status = AccountStatus::Inactive;
    store.insert_account(&inactive).await.unwrap();
    let consent = fixtures::consent(
        &w.app.app_id,
        &inactive.account_id,
        &w.site.cloud_id,
        &["read:jira-work"],
        at(1),
    );
    let code = fixtures::new_code(at(1));
    store
        .accept_consent(&consent, &fixtures::new_id(), &code)
        .await
        .unwrap();
    let family = redeem_first(store.as_ref(), &code.code_hash, 2).await;

    let standing = store
        .access_token_standing(&family.family_id)
        .await
        .unwrap()
        .expect("the family is stored");
    assert_eq!(standing.account_credential_generation, None);
    assert_eq!(standing.grant_scopes, Some(strings(&["read:jira-work"])));
}

pub async fn revoke_grant_revokes_its_families(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let (grant, c1) = consent_at(&w, store.as_ref(), &["read:jira-work"], 1).await;
    let (_, c2) = consent_at(&w, store.as_ref(), &["read:jira-work"], 2).await;
    let f1 = redeem_first(store.as_ref(), &c1.code_hash, 3).await;
    let f2 = redeem_first(store.as_ref(), &c2.code_hash, 4).await;
    // A family revoked earlier keeps its own reason and time.
    assert!(revoke_family_at(store.as_ref(), &f2.family_id, "refresh_reused", 5).await);

    assert!(store.revoke_grant(&grant.grant_id, at(10)).await.unwrap());
    let revoked = stored_grant(store.as_ref(), &grant.grant_id).await;
    assert_eq!(revoked.revoked_at, Some(at(10)));
    assert_eq!(revoked.scopes, grant.scopes);

    let f1 = store.family(&f1.family_id).await.unwrap().unwrap();
    assert_eq!(f1.revoked_at, Some(at(10)));
    assert_eq!(f1.revoke_reason.as_deref(), Some("grant_revoked"));
    let f2 = store.family(&f2.family_id).await.unwrap().unwrap();
    assert_eq!(f2.revoked_at, Some(at(5)));
    assert_eq!(f2.revoke_reason.as_deref(), Some("refresh_reused"));

    assert!(!store.revoke_grant(&grant.grant_id, at(11)).await.unwrap());
    assert_eq!(
        stored_grant(store.as_ref(), &grant.grant_id)
            .await
            .revoked_at,
        Some(at(10))
    );
    assert!(!store.revoke_grant("no-such-grant", at(11)).await.unwrap());
}

/// The token endpoint's exchange may be answered before its commit (SQLite's committer
/// does): once its `Durable` resolves the family is stored with its first refresh token
/// (the code holds `offline_access`) and its audit event, and the code is used; a second
/// exchange reads the code used and redeems nothing.
pub async fn a_code_exchange_answered_early_is_stored_once_durable(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    for kept in [TokenKeeping::Row, TokenKeeping::Family] {
        an_exchange_is_stored_once_durable(&store, &w, kept).await;
    }
}

/// One exchange whose first refresh token is kept as `kept`.
async fn an_exchange_is_stored_once_durable(store: &Arc<dyn Store>, w: &World, kept: TokenKeeping) {
    let (_, code) = consent_at(w, store.as_ref(), &["read:jira-work", "offline_access"], 1).await;
    let mut plan = fixtures::code_plan(&w.app.app_id, &code, at(2));
    plan.first_refresh_token.kept = kept;
    let (exchanged, durable) = store.exchange_code(&plan).await.unwrap();
    let exchanged = exchanged.expect("the code is stored");
    let Some(Redeemed::First(family)) = exchanged.redeemed else {
        panic!("the first exchange must redeem, got {exchanged:?}");
    };
    assert_eq!(exchanged.code.used_at, None, "the code as read");
    durable.wait().await.unwrap();
    assert_eq!(
        store.family(&family.family_id).await.unwrap(),
        Some(family.clone())
    );
    assert_eq!(family.family_id, plan.family_id);
    let first_key = RefreshTokenKey {
        kept,
        ..fixtures::first_token_key(&plan.family_id, plan.first_refresh_token.token_hash)
    };
    let first = store
        .refresh_token(&first_key)
        .await
        .unwrap()
        .expect("offline_access stores the first refresh token");
    assert_eq!(first.token.generation, 0);
    assert_eq!(first.token.issued_at, at(2));
    assert_eq!(
        first.token.inactivity_expires_at,
        plan.first_refresh_token.inactivity_expires_at
    );
    let own_row = store
        .refresh_token_of_generation(&plan.family_id, 0)
        .await
        .unwrap();
    assert_eq!(own_row.is_some(), kept == TokenKeeping::Row, "{kept:?}");
    assert_eq!(family.kept_head.is_some(), kept == TokenKeeping::Family);
    let issued = store
        .audit_events(&AuditQuery {
            action_prefix: Some("token.issued".to_owned()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let issued: Vec<AuditEvent> = issued
        .into_iter()
        .filter(|e| e.target == family.family_id)
        .collect();
    assert_eq!(issued, vec![plan.family(&exchanged.code).issued.unwrap()]);
    let used = store.code(&code.code_hash).await.unwrap().unwrap();
    assert_eq!(used.family_id.as_deref(), Some(family.family_id.as_str()));

    let mut again = fixtures::code_plan(&w.app.app_id, &code, at(3));
    again.first_refresh_token.kept = kept;
    let (exchanged, durable) = store.exchange_code(&again).await.unwrap();
    durable.wait().await.unwrap();
    assert_eq!(
        exchanged,
        Some(CodeExchanged {
            code: used,
            redeemed: None
        })
    );
    assert_eq!(store.family(&again.family_id).await.unwrap(), None);
}

/// An exchange the plan refuses (another client, an expired code, another redirect URI, a
/// wrong verifier) reads the code and changes nothing; a code without `offline_access`
/// starts a family without a refresh token; an unknown code is `None`.
pub async fn a_refused_code_exchange_changes_nothing(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let (_, code) = consent_at(&w, store.as_ref(), &["read:jira-work"], 1).await;
    let valid = fixtures::code_plan(&w.app.app_id, &code, at(2));
    let refused = [
        CodePlan {
            app_id: w.developer.account_id.clone(),
            ..valid.clone()
        },
        CodePlan {
            now: code.expires_at,
            ..valid.clone()
        },
        CodePlan {
            redirect_uri: Some("https://app.example.test/elsewhere".to_owned()),
            ..valid.clone()
        },
        CodePlan {
            code_verifier: Some(fixtures::CODE_VERIFIER.replace('d', "e")),
            ..valid.clone()
        },
        CodePlan {
            code_verifier: None,
            ..valid.clone()
        },
    ];
    for plan in &refused {
        assert!(
            plan.check(&store.code(&code.code_hash).await.unwrap().unwrap())
                .is_err()
        );
        let (exchanged, durable) = store.exchange_code(plan).await.unwrap();
        durable.wait().await.unwrap();
        let exchanged = exchanged.expect("the code is stored");
        assert_eq!(exchanged.redeemed, None, "{plan:?}");
        assert_eq!(store.family(&plan.family_id).await.unwrap(), None);
        let stored = store.code(&code.code_hash).await.unwrap().unwrap();
        assert_eq!(stored.used_at, None, "{plan:?}");
    }

    // Kept in the family's row, the missing token is a family without a head.
    let kept = CodePlan {
        first_refresh_token: NewRefreshToken {
            kept: TokenKeeping::Family,
            ..valid.first_refresh_token.clone()
        },
        family_id: fixtures::new_id(),
        event_id: fixtures::new_id(),
        ..valid.clone()
    };
    let (exchanged, durable) = store.exchange_code(&kept).await.unwrap();
    durable.wait().await.unwrap();
    let redeemed = exchanged.and_then(|e| e.redeemed);
    let Some(Redeemed::First(family)) = redeemed else {
        panic!("the first exchange redeems, got {redeemed:?}");
    };
    assert_eq!(
        family.kept_head, None,
        "no offline_access, no refresh token"
    );
    assert_eq!(
        store
            .refresh_token(&fixtures::kept_token_key(&kept.family_id, 0))
            .await
            .unwrap(),
        None
    );
    let Some(CodeExchanged { redeemed: None, .. }) = store.exchange_code(&valid).await.unwrap().0
    else {
        panic!("a used code is not redeemed again");
    };
    let (_, code) = consent_at(&w, store.as_ref(), &["read:jira-work"], 1).await;
    let valid = CodePlan {
        code_hash: code.code_hash,
        ..valid
    };
    let (exchanged, durable) = store.exchange_code(&valid).await.unwrap();
    durable.wait().await.unwrap();
    let redeemed = exchanged.and_then(|e| e.redeemed);
    assert!(matches!(redeemed, Some(Redeemed::First(_))), "{redeemed:?}");
    assert_eq!(
        store
            .refresh_token(&fixtures::first_token_key(
                &valid.family_id,
                valid.first_refresh_token.token_hash,
            ))
            .await
            .unwrap(),
        None,
        "no offline_access, no refresh token"
    );

    let unknown = CodePlan {
        code_hash: fixtures::random_hash(),
        ..valid
    };
    assert_eq!(store.exchange_code(&unknown).await.unwrap().0, None);
}

/// A code issued without a PKCE challenge or a redirect URI (a confidential client that
/// sent neither): a presented verifier refuses it (P5), any redirect URI is accepted, and
/// without a verifier it is redeemed. The branches a store restating the check must keep.
pub async fn a_code_without_pkce_is_refused_with_a_verifier(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let code = NewCode {
        code_challenge: None,
        redirect_uri: None,
        ..fixtures::new_code(at(1))
    };
    store
        .accept_consent(
            &w.consent(&["read:jira-work"], at(1)),
            &fixtures::new_id(),
            &code,
        )
        .await
        .unwrap();
    let with_verifier = fixtures::code_plan(&w.app.app_id, &code, at(2));
    let malformed = CodePlan {
        code_verifier: Some("short".to_owned()),
        ..with_verifier.clone()
    };
    for plan in [&with_verifier, &malformed] {
        let (exchanged, durable) = store.exchange_code(plan).await.unwrap();
        durable.wait().await.unwrap();
        assert_eq!(
            exchanged.expect("the code is stored").redeemed,
            None,
            "{plan:?}"
        );
        assert_eq!(store.family(&plan.family_id).await.unwrap(), None);
    }
    let without = CodePlan {
        code_verifier: None,
        redirect_uri: Some("https://app.example.test/anywhere".to_owned()),
        ..fixtures::code_plan(&w.app.app_id, &code, at(3))
    };
    assert!(
        without
            .check(&store.code(&code.code_hash).await.unwrap().unwrap())
            .is_ok()
    );
    let (exchanged, durable) = store.exchange_code(&without).await.unwrap();
    durable.wait().await.unwrap();
    let redeemed = exchanged.and_then(|e| e.redeemed);
    assert!(matches!(redeemed, Some(Redeemed::First(_))), "{redeemed:?}");
}

pub async fn redeem_code_first_then_already_used_then_not_found(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let (grant, code) =
        consent_at(&w, store.as_ref(), &["read:jira-work", "offline_access"], 1).await;

    let new_family = fixtures::new_family(at(2));
    let Redeemed::First(family) = redeem_at(store.as_ref(), &code.code_hash, &new_family, 2).await
    else {
        panic!("the first redemption must win");
    };
    assert_eq!(
        family,
        TokenFamily {
            family_id: new_family.family_id.clone(),
            grant_id: grant.grant_id.clone(),
            app_id: w.app.app_id.clone(),
            account_id: w.user.account_id.clone(),
            scopes: strings(&["read:jira-work", "offline_access"]),
            credential_generation: w.user.credential_generation,
            created_at: at(2),
            absolute_expires_at: new_family.absolute_expires_at,
            head_generation: 0,
            revoked_at: None,
            revoke_reason: None,
            // The audience the authorization asked for goes with the family.
            audience: code.audience.clone(),
            kept_head: None,
        }
    );
    assert_eq!(
        store.family(&family.family_id).await.unwrap(),
        Some(family.clone())
    );

    let used = store.code(&code.code_hash).await.unwrap().unwrap();
    assert_eq!(used.used_at, Some(at(2)));
    assert_eq!(used.family_id.as_deref(), Some(family.family_id.as_str()));

    let replay_family = fixtures::new_family(at(3));
    match redeem_at(store.as_ref(), &code.code_hash, &replay_family, 3).await {
        Redeemed::AlreadyUsed(record) => assert_eq!(record, used),
        other => panic!("expected AlreadyUsed, got {other:?}"),
    }
    // The replay created nothing.
    assert_eq!(store.family(&replay_family.family_id).await.unwrap(), None);
    assert_eq!(store.family("no-such-family").await.unwrap(), None);

    assert_eq!(
        store
            .redeem_code(
                &fixtures::random_hash(),
                &fixtures::new_family(at(4)),
                at(4)
            )
            .await
            .unwrap(),
        Redeemed::NotFound
    );
}

pub async fn redeem_code_under_a_revoked_grant_creates_a_revoked_family(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let (grant, code) = consent_at(&w, store.as_ref(), &["read:jira-work"], 1).await;
    assert!(store.revoke_grant(&grant.grant_id, at(2)).await.unwrap());
    // The code is used up either way; what it produced is never live under a revoked grant.
    let family = redeem_first(store.as_ref(), &code.code_hash, 3).await;
    assert_eq!(family.grant_id, grant.grant_id);
    assert_eq!(family.revoked_at, Some(at(3)));
    assert_eq!(family.revoke_reason.as_deref(), Some("grant_revoked"));
    assert_eq!(store.family(&family.family_id).await.unwrap(), Some(family));
}

/// The audit event of a redemption is stored with its first, live family only: not for a
/// replay, and not for a family born revoked.
pub async fn redeem_code_appends_its_issued_event_with_a_live_family(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let issued = |family: &NewFamily| AuditEvent {
        event_id: fixtures::new_id(),
        at: at(2),
        actor_account_id: Some(w.user.account_id.clone()),
        action: "token.issued".to_owned(),
        target: family.family_id.clone(),
        cloud_id: None,
        details: serde_json::json!({ "app_id": w.app.app_id }),
    };
    let with_event = |at_s| {
        let mut family = fixtures::new_family(at(at_s));
        family.issued = Some(issued(&family));
        family
    };
    let (grant, live) = consent_at(&w, store.as_ref(), &["read:jira-work"], 1).await;
    let first = with_event(2);
    let Redeemed::First(family) = redeem_at(store.as_ref(), &live.code_hash, &first, 2).await
    else {
        panic!("first redemption");
    };
    let replay = with_event(3);
    let Redeemed::AlreadyUsed(_) = redeem_at(store.as_ref(), &live.code_hash, &replay, 3).await
    else {
        panic!("replay");
    };
    // A second code of the same grant, redeemed after the grant was revoked.
    let (_, late) = consent_at(&w, store.as_ref(), &["read:jira-work"], 4).await;
    assert!(store.revoke_grant(&grant.grant_id, at(5)).await.unwrap());
    let born_revoked = with_event(6);
    let Redeemed::First(revoked) =
        redeem_at(store.as_ref(), &late.code_hash, &born_revoked, 6).await
    else {
        panic!("redemption under a revoked grant");
    };
    assert!(revoked.revoked_at.is_some());
    let query = AuditQuery {
        action_prefix: Some("token.issued".to_owned()),
        ..AuditQuery::default()
    };
    let events = store.audit_events(&query).await.unwrap();
    let targets: Vec<&str> = events.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(targets, [family.family_id.as_str()]);
    assert_eq!(events[0], first.issued.unwrap());
}

pub async fn redeemed_family_copies_the_credential_generation(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let (_, code) = consent_at(&w, store.as_ref(), &["read:jira-work"], 1).await;
    for i in 0..3 {
        store
            .change_password(&w.user.account_id, "$argon2id$changed", None, at(2 + i))
            .await
            .unwrap();
    }
    // The generation at redemption, not at consent.
    let family = redeem_first(store.as_ref(), &code.code_hash, 10).await;
    assert_eq!(
        family.credential_generation,
        w.user.credential_generation + 3
    );
    assert_eq!(family.revoked_at, None);
}

pub async fn concurrent_redemptions_yield_exactly_one_first(store: Arc<dyn Store>) {
    const CALLERS: usize = 20;
    let w = World::seed(store.as_ref()).await.unwrap();
    let (_, code) = consent_at(&w, store.as_ref(), &["read:jira-work"], 1).await;

    let barrier = Arc::new(Barrier::new(CALLERS));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let hash = code.code_hash;
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .redeem_code(&hash, &fixtures::new_family(at(2)), at(2))
                    .await
            })
        })
        .collect();
    let mut firsts = Vec::new();
    let mut replays = Vec::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Redeemed::First(family) => firsts.push(family),
            Redeemed::AlreadyUsed(record) => replays.push(record),
            Redeemed::NotFound => panic!("the code exists"),
        }
    }
    assert_eq!(firsts.len(), 1, "exactly one caller gets First");
    assert_eq!(replays.len(), CALLERS - 1);
    let winner = &firsts[0].family_id;
    for record in &replays {
        assert_eq!(record.family_id.as_ref(), Some(winner));
    }
    let stored = store.code(&code.code_hash).await.unwrap().unwrap();
    assert_eq!(stored.family_id.as_ref(), Some(winner));
}

/// A burst of exchanges of many codes of one grant, each code presented twice: every
/// code is redeemed exactly once, into a family of its own with its first refresh token.
/// (PostgreSQL writes such a burst as batches of one statement, where several codes share
/// the grant row they lock.)
pub async fn a_burst_of_redemptions_redeems_each_code_once(store: Arc<dyn Store>) {
    const CODES: usize = 12;
    let w = World::seed(store.as_ref()).await.unwrap();
    let mut codes = Vec::new();
    for _ in 0..CODES {
        let (grant, code) =
            consent_at(&w, store.as_ref(), &["read:jira-work", "offline_access"], 1).await;
        codes.push((grant.grant_id, code.code_hash));
    }
    let barrier = Arc::new(Barrier::new(CODES * 2));
    let tasks: Vec<_> = codes
        .iter()
        .chain(codes.iter())
        .map(|(_, hash)| {
            let (store, barrier, hash) = (Arc::clone(&store), Arc::clone(&barrier), *hash);
            tokio::spawn(async move {
                let first_token = fixtures::random_hash();
                barrier.wait().await;
                let family = fixtures::new_family_with_refresh(at(2), first_token);
                let redeemed = store.redeem_code(&hash, &family, at(2)).await;
                (hash, first_token, redeemed)
            })
        })
        .collect();
    let mut firsts = Vec::new();
    let mut replays = 0;
    for task in tasks {
        let (hash, first_token, redeemed) = task.await.unwrap();
        match redeemed.unwrap() {
            Redeemed::First(family) => firsts.push((hash, first_token, family)),
            Redeemed::AlreadyUsed(_) => replays += 1,
            Redeemed::NotFound => panic!("every code exists"),
        }
    }
    assert_eq!(firsts.len(), CODES, "each code redeemed once");
    assert_eq!(replays, CODES);
    let grant_id = &codes[0].0;
    for (hash, first_token, family) in &firsts {
        assert_eq!(&family.grant_id, grant_id, "one grant for every code");
        assert!(family.revoked_at.is_none());
        let stored = store.code(hash).await.unwrap().unwrap();
        assert_eq!(stored.family_id.as_ref(), Some(&family.family_id));
        let token = store
            .refresh_token(&fixtures::first_token_key(&family.family_id, *first_token))
            .await
            .unwrap();
        assert!(
            token.is_some(),
            "the family's first refresh token is stored"
        );
    }
    let mut families: Vec<&str> = firsts
        .iter()
        .map(|(_, _, f)| f.family_id.as_str())
        .collect();
    families.sort_unstable();
    families.dedup();
    assert_eq!(families.len(), CODES, "a family each");
}

pub async fn concurrent_consents_share_one_live_grant(store: Arc<dyn Store>) {
    const CALLERS: usize = 10;
    let w = World::seed(store.as_ref()).await.unwrap();
    let barrier = Arc::new(Barrier::new(CALLERS));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|i| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let consent = w.consent(&["read:jira-work"], at(1));
            tokio::spawn(async move {
                let code = fixtures::new_code(at(1));
                barrier.wait().await;
                let grant = store
                    .accept_consent(&consent, &format!("grant-{i}"), &code)
                    .await;
                (grant, code.code_hash)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        let (grant, code_hash) = task.await.unwrap();
        outcomes.push((grant.unwrap(), code_hash));
    }
    let grant_id = outcomes[0].0.grant_id.clone();
    for (grant, code_hash) in &outcomes {
        assert_eq!(grant.grant_id, grant_id, "every consent lands on one grant");
        let code = store.code(code_hash).await.unwrap().unwrap();
        assert_eq!(code.grant_id, grant_id);
    }
    let grants = store.grants_of_account(&w.user.account_id).await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].cloud_ids, vec![w.site.cloud_id.clone()]);
    let installations_of_app = store.installations_of_app(&w.app.app_id).await.unwrap();
    assert_eq!(installations_of_app.len(), 1);
}

pub async fn revoke_family_returns_true_once(store: Arc<dyn Store>) {
    let w = World::seed(store.as_ref()).await.unwrap();
    let (grant, code) = consent_at(&w, store.as_ref(), &["read:jira-work"], 1).await;
    let family = redeem_first(store.as_ref(), &code.code_hash, 2).await;
    assert!(revoke_family_at(store.as_ref(), &family.family_id, "code_replayed", 5).await);
    assert!(!revoke_family_at(store.as_ref(), &family.family_id, "refresh_reused", 6).await);
    let stored = store.family(&family.family_id).await.unwrap().unwrap();
    assert_eq!(stored.revoked_at, Some(at(5)));
    assert_eq!(stored.revoke_reason.as_deref(), Some("code_replayed"));
    assert!(!revoke_family_at(store.as_ref(), "no-such-family", "code_replayed", 6).await);
    // Revoking a family leaves the grant live.
    assert_eq!(
        stored_grant(store.as_ref(), &grant.grant_id)
            .await
            .revoked_at,
        None
    );
}

/// "Log in with" (no site) adds no site to the grant and installs nothing; an
/// authorization without consent (`GrantChange::Keep`) leaves the grant as it is, its code
/// carrying only what was asked, and is refused when the grant does not hold the scopes or
/// is gone.
pub async fn log_in_with_and_kept_grants_change_no_site_and_no_scope(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let w = World::seed(store).await.unwrap();
    let identity = fixtures::new_code(at(1));
    let mut login = w.consent(&["openid", "email"], at(1));
    login.cloud_id = None;
    let grant = store
        .accept_consent(&login, &fixtures::new_id(), &identity)
        .await
        .unwrap();
    assert!(grant.cloud_ids.is_empty());
    assert_eq!(grant.scopes, strings(&["openid", "email"]));
    let installations_of_app = store.installations_of_app(&w.app.app_id).await.unwrap();
    assert!(installations_of_app.is_empty());
    let code = store.code(&identity.code_hash).await.unwrap().unwrap();
    assert_eq!(code.cloud_id, None);
    assert_eq!(code.scopes, strings(&["openid", "email"]));

    let kept = fixtures::new_code(at(2));
    let mut again = w.consent(&["email"], at(2));
    again.cloud_id = None;
    again.change = GrantChange::Keep;
    let same = store
        .accept_consent(&again, &fixtures::new_id(), &kept)
        .await
        .unwrap();
    assert_eq!(same.grant_id, grant.grant_id);
    assert_eq!(same.scopes, grant.scopes, "a kept grant is not narrowed");
    assert_eq!(same.updated_at, grant.updated_at);
    let code = store.code(&kept.code_hash).await.unwrap().unwrap();
    assert_eq!(
        code.scopes,
        strings(&["email"]),
        "the code carries what was asked"
    );

    let mut beyond = w.consent(&["openid", "read:jira-work"], at(3));
    beyond.change = GrantChange::Keep;
    let refused = store
        .accept_consent(&beyond, &fixtures::new_id(), &fixtures::new_code(at(3)))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "{refused:?}"
    );
    store.revoke_grant(&grant.grant_id, at(4)).await.unwrap();
    let gone = store
        .accept_consent(&again, &fixtures::new_id(), &fixtures::new_code(at(5)))
        .await;
    assert!(matches!(gone, Err(StoreError::Conflict { .. })), "{gone:?}");
    // Nothing of the refused ones was written.
    let installations_of_app = store.installations_of_app(&w.app.app_id).await.unwrap();
    assert!(installations_of_app.is_empty());
}
