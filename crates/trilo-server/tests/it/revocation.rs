//! `POST /oauth/revoke` (RFC 7009) and `POST /oauth/introspect` (RFC 7662): what each
//! token type ends or reports, hints, unknown and foreign tokens, client authentication.

use serde_json::Value;
use time::Duration;

use crate::on_both_backends;
use crate::refresh::{assert_refresh_refused, first_tokens, refresh, refresh_token_of};
use crate::support::{Fetch, TestApp};
use crate::token::{Answer, me_status, other_confidential_app};

/// Posts `params` (plus the demo app's credentials in the body) to `path`.
async fn post_as_demo(app: &TestApp, path: &str, params: &[(&str, &str)]) -> Answer {
    let demo = app.app();
    let mut form: Vec<(&str, &str)> = vec![
        ("client_id", &demo.client_id),
        ("client_secret", &demo.client_secret),
    ];
    form.extend_from_slice(params);
    let res = reqwest::Client::new()
        .post(app.url(path))
        .form(&form)
        .fetch()
        .await;
    Answer::of(res).await
}

pub async fn revoke(app: &TestApp, token: &str, hint: Option<&str>) -> Answer {
    let mut params = vec![("token", token)];
    if let Some(hint) = hint {
        params.push(("token_type_hint", hint));
    }
    post_as_demo(app, "/oauth/revoke", &params).await
}

pub async fn introspect(app: &TestApp, token: &str) -> Value {
    let answer = post_as_demo(app, "/oauth/introspect", &[("token", token)]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    answer.body
}

#[track_caller]
fn assert_revoked_ok(answer: &Answer) {
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("cache-control"), Some("no-store"));
}

on_both_backends!(
    revoking_a_refresh_token_ends_its_family_and_access_tokens,
    super::revoking_a_refresh_token_ends_its_family_and_access_tokens_body
);
async fn revoking_a_refresh_token_ends_its_family_and_access_tokens_body(app: TestApp) {
    let first = first_tokens(&app).await;
    let access = first.assert_tokens();
    let rt0 = refresh_token_of(&first);
    // A wrong hint does not make the token be missed.
    assert_revoked_ok(&revoke(&app, &rt0, Some("access_token")).await);
    assert_refresh_refused(&refresh(&app, &rt0).await);
    assert_eq!(me_status(&app, &access).await, 401);
    assert_eq!(
        introspect(&app, &rt0).await,
        serde_json::json!({ "active": false })
    );
    // Revoking again is still a success.
    assert_revoked_ok(&revoke(&app, &rt0, Some("refresh_token")).await);
}

#[tokio::test]
async fn revoking_an_access_token_ends_its_family() {
    let app = TestApp::sqlite().await;
    let first = first_tokens(&app).await;
    let access = first.assert_tokens();
    assert_revoked_ok(&revoke(&app, &access, None).await);
    assert_eq!(me_status(&app, &access).await, 401);
    assert_refresh_refused(&refresh(&app, &refresh_token_of(&first)).await);
}

// The accessible-resources answer is cached per token, yet a revocation through this
// instance ends it at once, on both backends.
on_both_backends!(
    a_cached_accessible_resources_answer_ends_with_its_revocation,
    super::a_cached_accessible_resources_answer_ends_with_its_revocation_body
);
async fn a_cached_accessible_resources_answer_ends_with_its_revocation_body(app: TestApp) {
    let first = first_tokens(&app).await;
    let access = first.assert_tokens();
    let resources = |token: String| {
        let url = app.url("/oauth/token/accessible-resources");
        async move {
            let res = reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .fetch()
                .await;
            Answer::of(res).await
        }
    };
    let before = resources(access.clone()).await;
    assert_eq!(before.status, 200, "{before:?}");
    assert_eq!(before.header("content-type"), Some("application/json"));
    assert!(!before.body.as_array().unwrap().is_empty(), "{before:?}");
    // Asked again within the cache's lifetime: the same answer.
    assert_eq!(resources(access.clone()).await.body, before.body);
    assert_revoked_ok(&revoke(&app, &access, None).await);
    let after = resources(access).await;
    assert_eq!(after.status, 401, "{after:?}");
}

#[tokio::test]
async fn unknown_and_foreign_tokens_are_answered_200_and_nothing_is_revoked() {
    let app = TestApp::sqlite().await;
    let first = first_tokens(&app).await;
    let access = first.assert_tokens();
    let rt0 = refresh_token_of(&first);
    for garbage in ["not-a-token", "a.b.c", &"x".repeat(5000)] {
        assert_revoked_ok(&revoke(&app, garbage, None).await);
    }
    // Another client presenting the demo app's tokens revokes nothing.
    let (other_id, other_secret) = other_confidential_app(&app).await;
    for token in [&rt0, &access] {
        let res = reqwest::Client::new()
            .post(app.url("/oauth/revoke"))
            .basic_auth(&other_id, Some(&other_secret))
            .form(&[("token", token.as_str())])
            .fetch()
            .await;
        assert_revoked_ok(&Answer::of(res).await);
        let res = reqwest::Client::new()
            .post(app.url("/oauth/introspect"))
            .basic_auth(&other_id, Some(&other_secret))
            .form(&[("token", token.as_str())])
            .fetch()
            .await;
        assert_eq!(
            Answer::of(res).await.body,
            serde_json::json!({ "active": false })
        );
    }
    assert_eq!(me_status(&app, &access).await, 200);
    refresh(&app, &rt0).await.assert_tokens();
}

#[tokio::test]
async fn revoke_and_introspect_need_client_authentication_and_a_token() {
    let app = TestApp::sqlite().await;
    let rt0 = refresh_token_of(&first_tokens(&app).await);
    for path in ["/oauth/revoke", "/oauth/introspect"] {
        let res = reqwest::Client::new()
            .post(app.url(path))
            .form(&[("token", rt0.as_str())])
            .fetch()
            .await;
        Answer::of(res).await.assert_error(401, "invalid_client");
        let secret_twice =
            post_as_demo(&app, path, &[("token", &rt0), ("client_secret", "x")]).await;
        secret_twice.assert_error(400, "invalid_request");
        let missing = post_as_demo(&app, path, &[]).await;
        missing.assert_error(400, "invalid_request");
        let twice = post_as_demo(&app, path, &[("token", &rt0), ("token", "other")]).await;
        twice.assert_error(400, "invalid_request");
    }
    refresh(&app, &rt0).await.assert_tokens();
}

on_both_backends!(
    introspection_reports_live_tokens_and_nothing_else,
    super::introspection_reports_live_tokens_and_nothing_else_body
);
async fn introspection_reports_live_tokens_and_nothing_else_body(app: TestApp) {
    let first = first_tokens(&app).await;
    let access = first.assert_tokens();
    let rt0 = refresh_token_of(&first);
    let alice = app.demo.users[0].account_id.clone();

    let info = introspect(&app, &rt0).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["token_type"], "refresh_token");
    assert_eq!(info["client_id"], app.app().client_id);
    assert_eq!(info["sub"], alice);
    assert_eq!(info["scope"], first.body["scope"]);
    assert!(info["exp"].as_i64().unwrap() > info["iat"].as_i64().unwrap());

    let info = introspect(&app, &access).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["token_type"], "access_token");
    assert_eq!(info["sub"], alice);
    assert_eq!(info["aud"], app.demo.audience);

    // After a rotation the parent stays usable for the leeway, then is inactive.
    let rt1 = refresh_token_of(&refresh(&app, &rt0).await);
    assert_eq!(introspect(&app, &rt0).await["active"], true);
    app.clock.advance(Duration::minutes(10));
    assert_eq!(
        introspect(&app, &rt0).await,
        serde_json::json!({ "active": false })
    );
    assert_eq!(
        introspect(&app, &access).await,
        serde_json::json!({ "active": false })
    );
    assert_eq!(introspect(&app, &rt1).await["active"], true);
    // Expired: idle past the inactivity limit.
    app.clock.advance(Duration::days(90));
    assert_eq!(
        introspect(&app, &rt1).await,
        serde_json::json!({ "active": false })
    );
    assert_eq!(
        introspect(&app, "garbage").await,
        serde_json::json!({ "active": false })
    );
}
