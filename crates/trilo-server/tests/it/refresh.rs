//! The refresh grant with rotating refresh tokens (DESIGN §3 "Rotating refresh tokens",
//! security checklist F1–F10): rotation, the reuse leeway, reuse detection, expiry, scope
//! narrowing, client binding, and the events that end a family.
//!
//! Also holds the refresh helpers the race and crash tests share.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use time::Duration;

use crate::on_both_backends;
use crate::revocation::{introspect, revoke};
use crate::support::{Fetch, TestApp};
use crate::token::{Answer, me_status, other_confidential_app, post_form, redeem};

/// The reference's answer to every failed refresh.
pub const INVALID_REFRESH: &str =
    r#"{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}"#;

/// Asserts the failed-refresh answer: 403 with exactly the reference's body.
#[track_caller]
pub fn assert_refresh_refused(answer: &Answer) {
    assert_eq!(answer.status, 403, "{answer:?}");
    assert_eq!(
        answer.body,
        serde_json::from_str::<Value>(INVALID_REFRESH).unwrap()
    );
    assert_eq!(answer.header("cache-control"), Some("no-store"));
}

/// Code flow for Alice with `offline_access`; returns the token response.
pub async fn first_tokens(app: &TestApp) -> Answer {
    let code = app.demo_code().await;
    let answer = redeem(app, &code).await;
    answer.assert_tokens();
    answer
}

pub fn refresh_token_of(answer: &Answer) -> String {
    answer.body["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("a refresh_token in {answer:?}"))
        .to_owned()
}

/// The demo app's refresh request, credentials in the body; `extra` adds parameters.
pub fn refresh_params(app: &TestApp, token: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let demo = app.app();
    let mut params: Vec<(String, String)> = [
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", demo.client_id.as_str()),
        ("client_secret", demo.client_secret.as_str()),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    params.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    params
}

pub async fn refresh(app: &TestApp, token: &str) -> Answer {
    post_form(app, &refresh_params(app, token, &[])).await
}

/// The `refresh_token.reused` audit events so far.
async fn reuse_events(app: &TestApp) -> Vec<trilo_core::model::AuditEvent> {
    app.core
        .store()
        .audit_events(&trilo_core::model::AuditQuery {
            action_prefix: Some("refresh_token.reused".into()),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// The claims of an access token (not verified: the flow tests verify signatures).
pub fn claims_of(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

on_both_backends!(
    rotation_returns_a_new_token_and_the_parent_is_refused_after_the_leeway,
    super::rotation_returns_a_new_token_and_the_parent_is_refused_after_the_leeway_body
);
async fn rotation_returns_a_new_token_and_the_parent_is_refused_after_the_leeway_body(
    app: TestApp,
) {
    let first = first_tokens(&app).await;
    let rt0 = refresh_token_of(&first);
    assert_eq!(claims_of(&first.assert_tokens())["generation"], 0);

    let second = refresh(&app, &rt0).await;
    let at1 = second.assert_tokens();
    let rt1 = refresh_token_of(&second);
    assert_ne!(rt1, rt0);
    assert_eq!(claims_of(&at1)["generation"], 1);
    assert_eq!(second.body["scope"], first.body["scope"]);

    // Inside the leeway the parent gets the same current token and a fresh access token.
    app.clock.advance(Duration::minutes(9));
    let retry = refresh(&app, &rt0).await;
    assert_eq!(refresh_token_of(&retry), rt1);
    let at1_again = retry.assert_tokens();
    assert_ne!(at1_again, at1);
    assert_eq!(claims_of(&at1_again)["generation"], 1);

    // Past the leeway the parent is reuse: refused, and the family ends with it.
    app.clock.advance(Duration::minutes(1));
    assert_refresh_refused(&refresh(&app, &rt0).await);
    assert_refresh_refused(&refresh(&app, &rt1).await);
    assert_eq!(
        me_status(&app, &at1_again).await,
        401,
        "access tokens end too"
    );
    let events = reuse_events(&app).await;
    assert_eq!(events.len(), 1, "reuse is audited once");
}

on_both_backends!(
    reuse_after_the_child_was_used_revokes_the_whole_family,
    super::reuse_after_the_child_was_used_revokes_the_whole_family_body
);
async fn reuse_after_the_child_was_used_revokes_the_whole_family_body(app: TestApp) {
    let rt0 = refresh_token_of(&first_tokens(&app).await);
    let rt1 = refresh_token_of(&refresh(&app, &rt0).await);
    let answer = refresh(&app, &rt1).await;
    let at2 = answer.assert_tokens();
    let rt2 = refresh_token_of(&answer);
    assert_eq!(me_status(&app, &at2).await, 200);

    // rt0 is two generations behind: reuse even inside the leeway.
    let reused = refresh(&app, &rt0).await;
    assert_refresh_refused(&reused);
    assert_eq!(reused.header("content-type"), Some("application/json"));
    assert_refresh_refused(&refresh(&app, &rt2).await);
    assert_refresh_refused(&refresh(&app, &rt1).await);
    assert_eq!(me_status(&app, &at2).await, 401);
}

on_both_backends!(
    an_edited_refresh_token_is_refused_and_its_family_lives_on,
    super::an_edited_refresh_token_is_refused_and_its_family_lives_on_body
);
/// A refresh token names its family and generation (`rt2_{family}_{generation}_{mac}`),
/// and its secret is the MAC of both: a token with its family, generation or secret
/// edited fails the MAC and is refused like any unknown token, before the store is asked,
/// and no family is touched, not even the one it now names (security checklist F11).
async fn an_edited_refresh_token_is_refused_and_its_family_lives_on_body(app: TestApp) {
    let rt0 = refresh_token_of(&first_tokens(&app).await);
    assert!(rt0.starts_with("rt2_"), "{rt0}");
    edited_tokens_are_refused_and_the_family_lives_on(&app, &rt0, "rt2_").await;
}

on_both_backends!(
    an_edited_stored_refresh_token_is_refused_and_its_family_lives_on,
    super::an_edited_stored_refresh_token_is_refused_and_its_family_lives_on_body
);
/// A token issued before migration 0020 (`rt1_{family}_{generation}_{secret}`, a random
/// secret) has its own row: the store finds it at its family and generation and checks the
/// hash of the whole token, so an edited one is unknown there, as F11 asks. Its
/// successors keep that shape.
async fn an_edited_stored_refresh_token_is_refused_and_its_family_lives_on_body(app: TestApp) {
    let first = first_tokens(&app).await;
    let family_id = family_of(&first);
    let rt0 = format!("rt1_{family_id}_0_{}", trilo_core::crypto::random_token());
    stored_as_before(&app, &family_id, &rt0, false).await;
    edited_tokens_are_refused_and_the_family_lives_on(&app, &rt0, "rt1_").await;
}

/// Rotates `rt0` once, then presents edits of both tokens: each is refused, none counts as
/// reuse, and the head rotates on into a token of the same shape (`prefix`).
async fn edited_tokens_are_refused_and_the_family_lives_on(app: &TestApp, rt0: &str, prefix: &str) {
    let second = refresh(app, rt0).await;
    let family_id = family_of(&second);
    let rt1 = refresh_token_of(&second);
    let named = format!("{prefix}{family_id}_1_");
    assert!(
        rt1.starts_with(&named),
        "{rt1} names {family_id}, generation 1"
    );
    let secret0 = rt0.rsplit('_').next().unwrap();
    let secret1 = &rt1[named.len()..];
    let other_prefix = if prefix == "rt1_" { "rt2_" } else { "rt1_" };

    let mut flipped_family = family_id.clone().into_bytes();
    flipped_family[3] = if flipped_family[3] == b'0' {
        b'1'
    } else {
        b'0'
    };
    let flipped_family = String::from_utf8(flipped_family).unwrap();
    for edited in [
        // Another family, the same generation and secret.
        format!("{prefix}{flipped_family}_1_{secret1}"),
        // The parent's place: found by place alone it would be reuse and end the family.
        format!("{prefix}{family_id}_0_{secret1}"),
        // The parent's secret at the head's place.
        format!("{prefix}{family_id}_1_{secret0}"),
        // A generation not issued yet.
        format!("{prefix}{family_id}_2_{secret1}"),
        // The head, said to be kept the other way.
        format!("{other_prefix}{family_id}_1_{secret1}"),
        format!("{prefix}{family_id}_1_"),
        format!("{prefix}garbage"),
    ] {
        assert_refresh_refused(&refresh(app, &edited).await);
        assert_eq!(introspect(app, &edited).await["active"], false, "{edited}");
    }
    let reused = reuse_events(app).await;
    assert!(reused.is_empty(), "no edit counts as reuse: {reused:?}");
    let third = refresh(app, &rt1).await;
    third.assert_tokens();
    assert!(refresh_token_of(&third).starts_with(&format!("{prefix}{family_id}_2_")));
}

pub fn family_of(answer: &Answer) -> String {
    claims_of(&answer.assert_tokens())["family_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

on_both_backends!(
    a_token_from_before_tokens_named_their_place_still_rotates,
    super::a_token_from_before_tokens_named_their_place_still_rotates_body
);
/// Refresh tokens issued before migration 0018 are bare secrets, found by their hash
/// through the index 0018 kept for them alone: such a token still rotates (into a stored
/// token named after its place), a retry inside the leeway gets the same successor, and
/// introspection and revocation find it too.
async fn a_token_from_before_tokens_named_their_place_still_rotates_body(app: TestApp) {
    let first = first_tokens(&app).await;
    let family_id = family_of(&first);
    let bare = trilo_core::crypto::random_token();
    stored_as_before(&app, &family_id, &bare, true).await;
    assert_refresh_refused(&refresh(&app, &refresh_token_of(&first)).await);
    assert_eq!(introspect(&app, &bare).await["active"], true);

    let rotated = refresh(&app, &bare).await;
    assert_eq!(claims_of(&rotated.assert_tokens())["generation"], 1);
    let rt1 = refresh_token_of(&rotated);
    assert!(rt1.starts_with(&format!("rt1_{family_id}_1_")), "{rt1}");
    let retried = refresh(&app, &bare).await;
    assert_eq!(refresh_token_of(&retried), rt1, "the same successor");
    // Revoking the old token ends its family.
    assert_eq!(revoke(&app, &bare, None).await.status, 200);
    assert_refresh_refused(&refresh(&app, &rt1).await);
}

/// Turns the new family `family_id`, whose tokens its row keeps, into one from before
/// migration 0020: the family forgets its head, and generation 0 gets a row of its own
/// with the hash of `token`; when `bare`, also in `legacy_hash`, as migration 0018 kept it
/// for every token then.
pub async fn stored_as_before(app: &TestApp, family_id: &str, token: &str, bare: bool) {
    const FORGET_HEAD: &str = "UPDATE token_families SET head_issued_at = NULL, \
         head_expires_at = NULL, previous_issued_at = NULL \
         WHERE family_id = $1 AND head_generation = 0 AND head_expires_at IS NOT NULL";
    const STORE_FIRST: &str = "INSERT INTO refresh_tokens (token_hash, family_id, \
         generation, issued_at, inactivity_expires_at, rotated_at, legacy_hash) \
         SELECT $1, family_id, 0, created_at, created_at + 7776000000, NULL, $2 \
         FROM token_families WHERE family_id = $3";
    let hash = trilo_core::crypto::sha256(token).to_vec();
    let legacy_hash = bare.then(|| hash.clone());
    let url = app.database_url.as_str();
    // The same rewrite through either database's pool.
    macro_rules! rewrite_with {
        ($pool:ty) => {{
            let pool = <$pool>::connect(url).await.unwrap();
            let forgot = sqlx::query(FORGET_HEAD).bind(family_id).execute(&pool);
            let forgot = forgot.await.unwrap().rows_affected();
            let stored = sqlx::query(STORE_FIRST)
                .bind(&hash)
                .bind(&legacy_hash)
                .bind(family_id)
                .execute(&pool);
            let stored = stored.await.unwrap().rows_affected();
            pool.close().await;
            (forgot, stored)
        }};
    }
    let changed = if url.starts_with("sqlite:") {
        rewrite_with!(sqlx::SqlitePool)
    } else {
        rewrite_with!(sqlx::PgPool)
    };
    assert_eq!(changed, (1, 1));
}

#[tokio::test]
async fn refresh_accepts_json_and_basic_and_ignores_a_jwt_looking_code() {
    let app = TestApp::sqlite().await;
    let rt0 = refresh_token_of(&first_tokens(&app).await);
    let demo = app.app().clone();
    // JSON body, credentials in the body, plus a JWT-shaped `code` the grant does not define.
    let res = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .json(&json!({
            "grant_type": "refresh_token",
            "client_id": demo.client_id,
            "client_secret": demo.client_secret,
            "refresh_token": rt0,
            "code": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
        }))
        .fetch()
        .await;
    let answer = Answer::of(res).await;
    answer.assert_tokens();
    let rt1 = refresh_token_of(&answer);
    // Form body with HTTP Basic.
    let res = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .basic_auth(&demo.client_id, Some(&demo.client_secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &rt1)])
        .fetch()
        .await;
    Answer::of(res).await.assert_tokens();
}

#[tokio::test]
async fn no_refresh_token_without_offline_access() {
    let app = TestApp::sqlite().await;
    let url = app.authorize_url(&[("scope", "read:me read:jira-work")]);
    let answer = redeem(&app, &app.obtain_code(&url).await).await;
    answer.assert_tokens();
    assert!(answer.body.get("refresh_token").is_none(), "{answer:?}");
}

#[tokio::test]
async fn another_client_is_refused_and_the_family_survives() {
    let app = TestApp::sqlite().await;
    let rt0 = refresh_token_of(&first_tokens(&app).await);
    let (other_id, other_secret) = other_confidential_app(&app).await;
    let stolen = post_form(
        &app,
        &[
            ("grant_type".into(), "refresh_token".into()),
            ("refresh_token".into(), rt0.clone()),
            ("client_id".into(), other_id),
            ("client_secret".into(), other_secret),
        ],
    )
    .await;
    assert_refresh_refused(&stolen);
    // No client authentication at all is a client error, not a token one.
    let anonymous = post_form(
        &app,
        &[
            ("grant_type".into(), "refresh_token".into()),
            ("refresh_token".into(), rt0.clone()),
        ],
    )
    .await;
    anonymous.assert_error(401, "invalid_client");
    let wrong_secret = post_form(
        &app,
        &crate::token::with(
            &refresh_params(&app, &rt0, &[]),
            &[("client_secret", "not-the-secret")],
        ),
    )
    .await;
    wrong_secret.assert_error(401, "invalid_client");
    refresh(&app, &rt0).await.assert_tokens();
}

#[tokio::test]
async fn scope_may_narrow_the_access_token_but_never_widen() {
    let app = TestApp::sqlite().await;
    let first = first_tokens(&app).await;
    let rt0 = refresh_token_of(&first);
    let widened = post_form(
        &app,
        &refresh_params(&app, &rt0, &[("scope", "read:me write:jira-work")]),
    )
    .await;
    widened.assert_error(400, "invalid_scope");

    // The refused request spent nothing: rt0 still rotates, narrowed.
    let narrowed = post_form(&app, &refresh_params(&app, &rt0, &[("scope", "read:me")])).await;
    let at = narrowed.assert_tokens();
    assert_eq!(narrowed.body["scope"], "read:me");
    assert_eq!(claims_of(&at)["scope"], "read:me");
    // The refresh token kept the whole grant.
    let full = refresh(&app, &refresh_token_of(&narrowed)).await;
    full.assert_tokens();
    assert_eq!(full.body["scope"], first.body["scope"]);
}

#[tokio::test]
async fn inactivity_expiry_ends_an_idle_token() {
    let app = TestApp::sqlite().await;
    let rt0 = refresh_token_of(&first_tokens(&app).await);
    app.clock.advance(Duration::days(90) - Duration::seconds(1));
    let rt1 = refresh_token_of(&refresh(&app, &rt0).await);
    // Each rotation gives the child 90 fresh days.
    app.clock.advance(Duration::days(90) - Duration::seconds(1));
    let rt2 = refresh_token_of(&refresh(&app, &rt1).await);
    app.clock.advance(Duration::days(90));
    assert_refresh_refused(&refresh(&app, &rt2).await);
}

#[tokio::test]
async fn absolute_expiry_ends_the_family_however_active() {
    let app = TestApp::sqlite().await;
    let mut token = refresh_token_of(&first_tokens(&app).await);
    // Refreshing every 60 days keeps the chain alive until day 360.
    for _ in 0..6 {
        app.clock.advance(Duration::days(60));
        token = refresh_token_of(&refresh(&app, &token).await);
    }
    app.clock.advance(Duration::days(5));
    assert_refresh_refused(&refresh(&app, &token).await);
}

#[tokio::test]
async fn access_tokens_of_an_older_generation_end_when_the_leeway_passes() {
    let app = TestApp::sqlite().await;
    let first = first_tokens(&app).await;
    let at0 = first.assert_tokens();
    let at1 = refresh(&app, &refresh_token_of(&first))
        .await
        .assert_tokens();
    app.clock
        .advance(Duration::minutes(10) - Duration::seconds(1));
    assert_eq!(me_status(&app, &at0).await, 200, "inside the leeway");
    app.clock.advance(Duration::seconds(1));
    assert_eq!(me_status(&app, &at0).await, 401, "past the leeway");
    assert_eq!(me_status(&app, &at1).await, 200, "the head's token works");
}

/// A family keeping its tokens dates the two rotations before its head: access tokens of
/// those generations live for the leeway after their rotation, and an older one has ended
/// (the family no longer knows when it was rotated).
#[tokio::test]
async fn access_tokens_two_generations_back_live_for_the_leeway_and_older_ones_end() {
    let app = TestApp::sqlite().await;
    let first = first_tokens(&app).await;
    let mut access = vec![first.assert_tokens()];
    let mut token = refresh_token_of(&first);
    // Rotations at 1, 2 and 3 minutes: the head is generation 3.
    for _ in 0..3 {
        app.clock.advance(Duration::minutes(1));
        let answer = refresh(&app, &token).await;
        access.push(answer.assert_tokens());
        token = refresh_token_of(&answer);
    }
    assert_eq!(me_status(&app, &access[3]).await, 200, "the head's");
    assert_eq!(me_status(&app, &access[2]).await, 200, "rotated at 3 min");
    assert_eq!(me_status(&app, &access[1]).await, 200, "rotated at 2 min");
    assert_eq!(me_status(&app, &access[0]).await, 401, "three back");
    // At 12 minutes generation 1's leeway is over, generation 2's is not.
    app.clock.advance(Duration::minutes(9));
    assert_eq!(me_status(&app, &access[1]).await, 401, "rotated at 2 min");
    assert_eq!(me_status(&app, &access[2]).await, 200, "rotated at 3 min");
    app.clock.advance(Duration::minutes(1));
    assert_eq!(me_status(&app, &access[2]).await, 401, "rotated at 3 min");
    assert_eq!(me_status(&app, &access[3]).await, 200, "the head's");
}

on_both_backends!(
    password_change_grant_revocation_and_app_deletion_end_refresh,
    super::password_change_grant_revocation_and_app_deletion_end_refresh_body
);
async fn password_change_grant_revocation_and_app_deletion_end_refresh_body(app: TestApp) {
    let alice = app.demo.users[0].account_id.clone();

    let rt = refresh_token_of(&first_tokens(&app).await);
    app.core
        .set_password(&alice, "a-brand-new-password", None)
        .await
        .unwrap();
    assert_refresh_refused(&refresh(&app, &rt).await);

    let app = relogin_as_new_password(app);
    let first = first_tokens(&app).await;
    let rt = refresh_token_of(&first);
    let grant_id = claims_of(&first.assert_tokens())["grant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.core
        .store()
        .revoke_grant(&grant_id, app.core.now())
        .await
        .unwrap();
    assert_refresh_refused(&refresh(&app, &rt).await);

    let rt = refresh_token_of(&first_tokens(&app).await);
    let demo_app = app.core.find_app(&app.app().client_id).await.unwrap();
    for site in app
        .core
        .store()
        .installations_of_app(&demo_app.app_id)
        .await
        .unwrap()
    {
        app.core
            .store()
            .uninstall_app(&demo_app.app_id, &site.cloud_id)
            .await
            .unwrap();
    }
    app.core.delete_app(&demo_app.app_id).await.unwrap();
    let answer = refresh(&app, &rt).await;
    // The client itself is gone, so client authentication fails first.
    answer.assert_error(401, "invalid_client");
    assert!(app.stored_refresh_token(&rt).await.is_none());
}

/// The harness logs in with the demo password it seeded; after a password change the
/// tests go on with the new one.
fn relogin_as_new_password(mut app: TestApp) -> TestApp {
    app.demo.users[0].password = "a-brand-new-password".to_owned();
    app
}

/// `trilo admin user set-password` on the database of a running server (both backends
/// through `--database-url`) ends the account's refresh tokens there.
async fn cli_password_change_ends_refresh_body(app: TestApp) {
    let rt = refresh_token_of(&first_tokens(&app).await);
    app.run_trilo(
        &[
            "admin",
            "user",
            "set-password",
            "--email",
            "alice@example.com",
            "--json",
        ],
        &[("TRILO_ADMIN_PASSWORD", "a-brand-new-password")],
    );
    assert_refresh_refused(&refresh(&app, &rt).await);
}

on_both_backends!(
    cli_password_change_ends_refresh,
    super::cli_password_change_ends_refresh_body
);

#[tokio::test]
async fn the_reuse_leeway_is_configurable() {
    let app = TestApp::spawn(crate::support::Backend::Sqlite, |config| {
        config.tokens.refresh_reuse_leeway = "2s".into();
    })
    .await
    .unwrap();
    let rt0 = refresh_token_of(&first_tokens(&app).await);
    let rt1 = refresh_token_of(&refresh(&app, &rt0).await);
    app.clock.advance(Duration::milliseconds(1900));
    assert_eq!(refresh_token_of(&refresh(&app, &rt0).await), rt1);
    app.clock.advance(Duration::milliseconds(100));
    assert_refresh_refused(&refresh(&app, &rt0).await);
}
