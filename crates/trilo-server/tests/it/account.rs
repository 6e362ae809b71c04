//! The account pages over HTTP (DESIGN §1 "account pages", §3 "Accounts"): login and the
//! session's CSRF token required; revoking a connected app stops refresh, the gateway and
//! introspection at once; another account's grant is "not found"; API tokens shown once,
//! 1 to 365 days, refused at the gateway once revoked; the password change checks the
//! current password, ends other sessions and refresh tokens; user input renders as text.

use serde_json::Value;
use time::Duration;
use trilo_core::model::{AuditQuery, ClientType, Distribution};
use trilo_core::services::admin::NewApp;

use crate::gateway::{Client, access_token, call};
use crate::on_both_backends;
use crate::refresh::{assert_refresh_refused, refresh, refresh_token_of};
use crate::support::{Fetch, TestApp, csp_of, hidden_field, location, login_form, unescape_html};
use crate::token::{Answer, redeem};

/// Scopes that reach Jira's `myself` through the gateway, with a refresh token.
const SCOPES: &str = "read:me read:jira-work read:jira-user offline_access";
const MYSELF: &str = "/rest/api/3/myself";

/// A logged-in browser for demo user `user` (0 Alice, 1 Bob) and its session's CSRF token.
async fn signed_in(app: &TestApp, user: usize) -> (reqwest::Client, String) {
    let client = app.browser();
    let u = &app.demo.users[user];
    assert_eq!(
        app.login(&client, &u.email, &u.password).await.status(),
        303
    );
    let (status, page) = get(app, &client, "/account/password").await;
    assert_eq!(status, 200);
    let csrf = hidden_field(&page, "csrf_token").expect("the form has a csrf_token");
    (client, csrf)
}

async fn get(app: &TestApp, client: &reqwest::Client, path: &str) -> (u16, String) {
    let res = client.get(app.url(path)).fetch().await;
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn post(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client.post(app.url(path)).form(form).fetch().await
}

/// Alice's tokens for the demo app (consent on the first site): the token response.
async fn alice_tokens(app: &TestApp) -> Answer {
    let code = app
        .obtain_code(&app.authorize_url(&[("scope", SCOPES)]))
        .await;
    let answer = redeem(app, &code).await;
    answer.assert_tokens();
    answer
}

/// The grant ids the connected-apps page offers to revoke, in page order.
fn revocable_grants(page: &str) -> Vec<String> {
    page.split("action=\"/account/apps/")
        .skip(1)
        .filter_map(|rest| rest.split_once("/revoke\"").map(|(id, _)| id.to_owned()))
        .collect()
}

/// The text of the element with `id` (up to its first `<`), HTML-unescaped.
fn text_of(page: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\">");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('<')? + start;
    Some(unescape_html(&page[start..end]))
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    let demo = app.app();
    let res = reqwest::Client::new()
        .post(app.url("/oauth/introspect"))
        .form(&[
            ("client_id", demo.client_id.as_str()),
            ("client_secret", demo.client_secret.as_str()),
            ("token", token),
        ])
        .fetch()
        .await;
    let answer = Answer::of(res).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body
}

/// The gateway with HTTP Basic `email:secret` (an API token).
async fn basic_call(app: &TestApp, email: &str, secret: &str) -> u16 {
    let acme = &app.demo.sites[0].cloud_id;
    reqwest::Client::new()
        .get(app.url(&format!("/ex/jira/{acme}{MYSELF}")))
        .basic_auth(email, Some(secret))
        .fetch()
        .await
        .status()
        .as_u16()
}

async fn audit_count(app: &TestApp, action: &str) -> usize {
    app.core
        .store()
        .audit_events(&AuditQuery {
            action_prefix: Some(action.into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == action)
        .count()
}

async fn live_grants(app: &TestApp, user: usize) -> usize {
    app.core
        .store()
        .grants_of_account(&app.demo.users[user].account_id)
        .await
        .unwrap()
        .iter()
        .filter(|g| g.revoked_at.is_none())
        .count()
}

#[tokio::test]
async fn account_pages_need_a_login() {
    let app = TestApp::sqlite().await;
    let anonymous = app.browser();
    for path in [
        "/account",
        "/account/apps",
        "/account/api-tokens",
        "/account/password",
    ] {
        let res = anonymous.get(app.url(path)).fetch().await;
        assert_eq!(res.status(), 303, "GET {path}");
        assert_eq!(
            location(&res),
            format!("/login?return_to={}", path.replace('/', "%2F")),
            "GET {path}"
        );
    }
    for (path, back) in [
        ("/account/apps/some-grant/revoke", "%2Faccount%2Fapps"),
        ("/account/api-tokens", "%2Faccount%2Fapi-tokens"),
        (
            "/account/api-tokens/some-token/revoke",
            "%2Faccount%2Fapi-tokens",
        ),
        ("/account/password", "%2Faccount%2Fpassword"),
    ] {
        let res = post(&app, &anonymous, path, &[("label", "x")]).await;
        assert_eq!(res.status(), 303, "POST {path}");
        assert_eq!(
            location(&res),
            format!("/login?return_to={back}"),
            "POST {path}"
        );
    }
    let alice = &app.demo.users[0].account_id;
    assert!(app.core.api_tokens(alice).await.unwrap().is_empty());
}

on_both_backends!(
    account_forms_need_the_session_csrf_token,
    super::account_forms_need_the_session_csrf_token_body
);
async fn account_forms_need_the_session_csrf_token_body(app: TestApp) {
    let rt = refresh_token_of(&alice_tokens(&app).await);
    let alice_id = app.demo.users[0].account_id.clone();
    let token = app
        .core
        .create_api_token(&alice_id, "script", Some(Duration::days(5)))
        .await
        .unwrap();
    let (alice, _) = signed_in(&app, 0).await;
    let (_, page) = get(&app, &alice, "/account/apps").await;
    let grant = revocable_grants(&page).remove(0);
    let (_, password) = app.alice();
    let posts = [
        (format!("/account/apps/{grant}/revoke"), vec![]),
        (
            "/account/api-tokens".to_owned(),
            vec![("label", "new"), ("expires_in_days", "30")],
        ),
        (
            format!("/account/api-tokens/{}/revoke", token.token.token_id),
            vec![],
        ),
        (
            "/account/password".to_owned(),
            vec![
                ("current_password", password),
                ("new_password", "another-long-password"),
                ("confirm_password", "another-long-password"),
            ],
        ),
    ];
    for (path, fields) in &posts {
        for csrf in [None, Some("forged"), Some("")] {
            let mut form = fields.clone();
            if let Some(csrf) = csrf {
                form.push(("csrf_token", csrf));
            }
            let res = post(&app, &alice, path, &form).await;
            assert_eq!(res.status(), 403, "POST {path} with {csrf:?}");
        }
    }
    // Nothing happened: the grant, both tokens and the password are as they were.
    assert_eq!(live_grants(&app, 0).await, 1);
    refresh(&app, &rt).await.assert_tokens();
    let tokens = app.core.api_tokens(&alice_id).await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].revoked_at.is_none());
    assert_eq!(
        app.login(&app.browser(), app.alice().0, password)
            .await
            .status(),
        303
    );
}

on_both_backends!(
    revoking_a_connected_app_stops_refresh_gateway_and_introspection_at_once,
    super::revoking_a_connected_app_stops_refresh_gateway_and_introspection_at_once_body
);
async fn revoking_a_connected_app_stops_refresh_gateway_and_introspection_at_once_body(
    app: TestApp,
) {
    let tokens = alice_tokens(&app).await;
    let access = tokens.assert_tokens();
    let rt0 = refresh_token_of(&tokens);
    // The app works, and a rotation keeps a live family with an older token in it.
    let rotated = refresh(&app, &rt0).await;
    let rt1 = refresh_token_of(&rotated);
    let acme = app.demo.sites[0].cloud_id.clone();
    assert_eq!(
        call(&app, "GET", &access, "jira", &acme, MYSELF)
            .await
            .status,
        200
    );
    assert_eq!(introspect(&app, &access).await["active"], true);
    assert_eq!(introspect(&app, &rt1).await["active"], true);

    let (alice, csrf) = signed_in(&app, 0).await;
    let (status, page) = get(&app, &alice, "/account/apps").await;
    assert_eq!(status, 200);
    assert!(page.contains("Demo Integration"), "{page}");
    assert!(page.contains(&app.demo.sites[0].name), "the site is named");
    assert!(page.contains("read:jira-work"), "the scopes are listed");
    // The catalog's description of a product scope, and an identity scope's.
    let jira = app.core.store().product("jira").await.unwrap().unwrap();
    let described = jira
        .scopes
        .iter()
        .find(|s| s.scope == "read:jira-work")
        .unwrap();
    let text = unescape_html(&page);
    assert!(text.contains(&described.description), "{page}");
    assert!(
        text.contains(&jira.display_name),
        "scopes grouped by product"
    );
    assert!(
        text.contains("Keep access to the data you granted"),
        "{page}"
    );
    let grants = revocable_grants(&page);
    assert_eq!(grants.len(), 1);

    let res = post(
        &app,
        &alice,
        &format!("/account/apps/{}/revoke", grants[0]),
        &[("csrf_token", &csrf), ("confirmed", "yes")],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/account/apps?done=revoked");

    // At once, with no clock moved: refresh, gateway and introspection all refuse.
    assert_refresh_refused(&refresh(&app, &rt1).await);
    let refused = call(&app, "GET", &access, "jira", &acme, MYSELF).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(
        introspect(&app, &access).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(
        introspect(&app, &rt1).await,
        serde_json::json!({"active": false})
    );

    let (_, page) = get(&app, &alice, "/account/apps?done=revoked").await;
    assert!(page.contains("id=\"notice\""), "{page}");
    assert!(
        revocable_grants(&page).is_empty(),
        "the app is gone: {page}"
    );
    assert!(page.contains("id=\"no-apps\""));
    assert_eq!(audit_count(&app, "grant.revoked").await, 1);
    // A second revocation of the same grant finds nothing.
    let again = post(
        &app,
        &alice,
        &format!("/account/apps/{}/revoke", grants[0]),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(again.status(), 404);
    assert_eq!(audit_count(&app, "grant.revoked").await, 1);
}

on_both_backends!(
    another_accounts_grant_is_not_found_and_stays,
    super::another_accounts_grant_is_not_found_and_stays_body
);
async fn another_accounts_grant_is_not_found_and_stays_body(app: TestApp) {
    let tokens = alice_tokens(&app).await;
    let rt = refresh_token_of(&tokens);
    let alice_grant = app
        .core
        .store()
        .grants_of_account(&app.demo.users[0].account_id)
        .await
        .unwrap()
        .remove(0)
        .grant_id;
    let (bob, csrf) = signed_in(&app, 1).await;
    let (_, page) = get(&app, &bob, "/account/apps").await;
    assert!(
        !page.contains(&alice_grant),
        "Bob does not see Alice's grant"
    );
    for id in [alice_grant.as_str(), "no-such-grant"] {
        let res = post(
            &app,
            &bob,
            &format!("/account/apps/{id}/revoke"),
            &[("csrf_token", &csrf)],
        )
        .await;
        assert_eq!(res.status(), 404, "{id}");
    }
    assert_eq!(live_grants(&app, 0).await, 1);
    let access = refresh(&app, &rt).await.assert_tokens();
    assert_eq!(introspect(&app, &access).await["active"], true);
    assert_eq!(audit_count(&app, "grant.revoked").await, 0);
}

on_both_backends!(
    an_api_token_is_shown_once_listed_without_its_secret_and_refused_once_revoked,
    super::an_api_token_is_shown_once_listed_without_its_secret_and_refused_once_revoked_body
);
async fn an_api_token_is_shown_once_listed_without_its_secret_and_refused_once_revoked_body(
    app: TestApp,
) {
    let (alice, csrf) = signed_in(&app, 0).await;
    let (status, page) = get(&app, &alice, "/account/api-tokens").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"no-tokens\""));
    assert_eq!(
        hidden_field(&page, "csrf_token").as_deref(),
        Some(csrf.as_str())
    );
    assert!(page.contains("value=\"90\""), "90 days by default");

    let res = post(
        &app,
        &alice,
        "/account/api-tokens",
        &[
            ("csrf_token", &csrf),
            ("label", "deploy script"),
            ("expires_in_days", "30"),
        ],
    )
    .await;
    assert_eq!(res.status(), 201);
    let created = res.text().await.unwrap();
    let secret = text_of(&created, "new-token").expect("the secret is shown");
    assert_eq!(secret.len(), 43, "{secret}");
    let expected_expiry = (app.core.now() + Duration::days(30)).date().to_string();
    assert!(created.contains(&expected_expiry), "{created}");

    let email = app.demo.users[0].email.clone();
    assert_eq!(basic_call(&app, &email, &secret).await, 200);
    let (_, list) = get(&app, &alice, "/account/api-tokens").await;
    assert!(!list.contains(&secret), "the list never shows the secret");
    assert!(!list.contains("id=\"new-token\""));
    assert!(list.contains("deploy script"));
    let stored = app
        .core
        .api_tokens(&app.demo.users[0].account_id)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let token_id = stored[0].token_id.clone();
    assert!(list.contains(&format!("id=\"token-{token_id}\"")));
    assert!(list.contains(">Active<"), "{list}");
    assert_eq!(
        stored[0].expires_at.map(|at| at - stored[0].created_at),
        Some(Duration::days(30))
    );
    assert!(stored[0].last_used_at.is_some(), "the use was recorded");

    let res = post(
        &app,
        &alice,
        &format!("/account/api-tokens/{token_id}/revoke"),
        &[("csrf_token", &csrf), ("confirmed", "yes")],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/account/api-tokens?done=revoked");
    assert_eq!(basic_call(&app, &email, &secret).await, 401);
    let (_, list) = get(&app, &alice, "/account/api-tokens?done=revoked").await;
    assert!(list.contains(">Revoked<"), "{list}");
    assert!(
        !list.contains(&format!("/account/api-tokens/{token_id}/revoke")),
        "a revoked token offers no revoke button"
    );
    assert_eq!(audit_count(&app, "api_token.revoked").await, 1);

    // Bob cannot revoke Alice's token (a second one, still live).
    let other = app
        .core
        .create_api_token(
            &app.demo.users[0].account_id,
            "other",
            Some(Duration::days(1)),
        )
        .await
        .unwrap();
    let (bob, bob_csrf) = signed_in(&app, 1).await;
    let res = post(
        &app,
        &bob,
        &format!("/account/api-tokens/{}/revoke", other.token.token_id),
        &[("csrf_token", &bob_csrf)],
    )
    .await;
    assert_eq!(res.status(), 404);
    assert_eq!(basic_call(&app, &email, &other.secret).await, 200);
}

on_both_backends!(
    api_token_expiry_must_be_1_to_365_days,
    super::api_token_expiry_must_be_1_to_365_days_body
);
async fn api_token_expiry_must_be_1_to_365_days_body(app: TestApp) {
    let (alice, csrf) = signed_in(&app, 0).await;
    let alice_id = app.demo.users[0].account_id.clone();
    for bad in ["0", "366", "-1", "1.5", "ninety"] {
        let res = post(
            &app,
            &alice,
            "/account/api-tokens",
            &[
                ("csrf_token", &csrf),
                ("label", "bounds"),
                ("expires_in_days", bad),
            ],
        )
        .await;
        assert_eq!(res.status(), 400, "{bad:?}");
        let page = res.text().await.unwrap();
        assert!(page.contains("id=\"form-error\""), "{bad:?}");
        assert!(!page.contains("id=\"new-token\""), "{bad:?}");
        assert!(page.contains("value=\"bounds\""), "the label is kept");
    }
    // An empty label is refused too.
    let res = post(
        &app,
        &alice,
        "/account/api-tokens",
        &[
            ("csrf_token", &csrf),
            ("label", " "),
            ("expires_in_days", "5"),
        ],
    )
    .await;
    assert_eq!(res.status(), 400);
    assert!(app.core.api_tokens(&alice_id).await.unwrap().is_empty());

    // Left out (or empty, which forms treat alike): the default of 90 days.
    for (days, expected) in [
        (Some("1"), 1),
        (Some("365"), 365),
        (None, 90),
        (Some(""), 90),
    ] {
        let mut form = vec![("csrf_token", csrf.as_str()), ("label", "bounds")];
        if let Some(days) = days {
            form.push(("expires_in_days", days));
        }
        let res = post(&app, &alice, "/account/api-tokens", &form).await;
        assert_eq!(res.status(), 201, "{days:?}");
        let newest = app.core.api_tokens(&alice_id).await.unwrap().remove(0);
        assert_eq!(
            newest.expires_at.map(|at| at - newest.created_at),
            Some(Duration::days(expected))
        );
    }
}

on_both_backends!(
    a_wrong_current_password_is_refused_and_changes_nothing,
    super::a_wrong_current_password_is_refused_and_changes_nothing_body
);
async fn a_wrong_current_password_is_refused_and_changes_nothing_body(app: TestApp) {
    let rt = refresh_token_of(&alice_tokens(&app).await);
    let (alice, csrf) = signed_in(&app, 0).await;
    let (other_session, _) = signed_in(&app, 0).await;
    let (email, password) = app.alice();
    let before = app.core.account_by_email(email).await.unwrap();
    let local_part = email.split('@').next().unwrap();
    let cases: [(&str, &str, &str, u16); 7] = [
        (
            "not-the-password",
            "a-brand-new-password",
            "a-brand-new-password",
            403,
        ),
        (
            password,
            "a-brand-new-password",
            "a-different-password",
            400,
        ),
        (password, "short", "short", 400),
        // The password policy (issue 16): not the one in use, not the email, not common.
        (password, password, password, 400),
        (password, email, email, 400),
        (password, local_part, local_part, 400),
        (password, "Password123", "Password123", 400),
    ];
    for (current, new, confirm, status) in cases {
        let res = post(
            &app,
            &alice,
            "/account/password",
            &[
                ("csrf_token", &csrf),
                ("current_password", current),
                ("new_password", new),
                ("confirm_password", confirm),
            ],
        )
        .await;
        assert_eq!(res.status(), status, "{current} {new} {confirm}");
        let page = res.text().await.unwrap();
        assert!(page.contains("id=\"form-error\""), "{page}");
        assert!(!page.contains("id=\"notice\""));
    }
    let after = app.core.account_by_email(email).await.unwrap();
    assert_eq!(after.password_hash, before.password_hash);
    assert_eq!(after.credential_generation, before.credential_generation);
    assert_eq!(get(&app, &other_session, "/account").await.0, 200);
    refresh(&app, &rt).await.assert_tokens();
    assert_eq!(
        app.login(&app.browser(), email, password).await.status(),
        303
    );
    assert_eq!(audit_count(&app, "account.password_changed").await, 0);
}

on_both_backends!(
    a_password_change_ends_other_sessions_and_refresh_tokens,
    super::a_password_change_ends_other_sessions_and_refresh_tokens_body
);
async fn a_password_change_ends_other_sessions_and_refresh_tokens_body(app: TestApp) {
    let rt = refresh_token_of(&alice_tokens(&app).await);
    let (alice, csrf) = signed_in(&app, 0).await;
    let (elsewhere, _) = signed_in(&app, 0).await;
    let (email, password) = app.alice();
    let (email, password) = (email.to_owned(), password.to_owned());
    let new = "a-brand-new-password";
    let res = post(
        &app,
        &alice,
        "/account/password",
        &[
            ("csrf_token", &csrf),
            ("current_password", &password),
            ("new_password", new),
            ("confirm_password", new),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("id=\"notice\""), "{page}");

    // This session stays; the other one is sent to the login page.
    assert_eq!(get(&app, &alice, "/account").await.0, 200);
    let res = elsewhere.get(app.url("/account/apps")).fetch().await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/login"), "{}", location(&res));
    // Every refresh-token family ended.
    assert_refresh_refused(&refresh(&app, &rt).await);
    assert_eq!(audit_count(&app, "account.password_changed").await, 1);
    // The new password logs in, the old one no longer does.
    assert_eq!(app.login(&app.browser(), &email, new).await.status(), 303);
    assert_eq!(
        app.login(&app.browser(), &email, &password).await.status(),
        401
    );
}

#[tokio::test]
async fn wrong_current_passwords_are_rate_limited() {
    let app = TestApp::sqlite().await;
    let (alice, csrf) = signed_in(&app, 0).await;
    let (_, password) = app.alice();
    let attempt = |current: &str| {
        let form = [
            ("csrf_token", csrf.clone()),
            ("current_password", current.to_owned()),
            ("new_password", "a-brand-new-password".to_owned()),
            ("confirm_password", "a-brand-new-password".to_owned()),
        ];
        let request = alice.post(app.url("/account/password")).form(&form);
        async move { request.fetch().await }
    };
    for _ in 0..5 {
        assert_eq!(attempt("wrong-password").await.status(), 403);
    }
    // Now even the right password waits.
    let limited = attempt(password).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().get("retry-after").is_some());
    assert_eq!(audit_count(&app, "account.password_changed").await, 0);
    app.clock.advance(Duration::minutes(16));
    assert_eq!(attempt(password).await.status(), 200);
}

#[tokio::test]
async fn labels_and_app_names_render_as_text() {
    let app = TestApp::sqlite().await;
    let callback = "https://markup.example.test/cb".to_owned();
    let created = app
        .core
        .create_app(NewApp {
            owner_account_id: app.demo.users[0].account_id.clone(),
            name: "<script>alert('app')</script>".into(),
            description: "An app with markup in its name.".into(),
            avatar_url: None,
            callback_urls: vec![callback.clone()],
            scopes: vec!["read:jira-work".into()],
            distribution: Distribution::Sharing,
            client_type: ClientType::Confidential,
        })
        .await
        .unwrap();
    let client = Client {
        client_id: created.app.client_id,
        secret: created.client_secret.unwrap(),
        callback,
    };
    access_token(&app, 0, &client, "read:jira-work", 0).await;

    let (alice, csrf) = signed_in(&app, 0).await;
    let res = post(
        &app,
        &alice,
        "/account/api-tokens",
        &[
            ("csrf_token", &csrf),
            ("label", "<img src=x onerror=alert(1)>"),
            ("expires_in_days", "7"),
        ],
    )
    .await;
    assert_eq!(res.status(), 201);
    let csp = csp_of(&res);
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let token_page = res.text().await.unwrap();
    let (_, list) = get(&app, &alice, "/account/api-tokens").await;
    let (_, apps) = get(&app, &alice, "/account/apps").await;
    for page in [&token_page, &list] {
        assert!(!page.contains("<img src=x"), "unescaped label");
        assert!(page.contains("&lt;img src=x") || page.contains("&#60;img src=x"));
    }
    assert!(!apps.contains("<script>alert"), "unescaped app name");
    assert!(apps.contains("&lt;script&gt;") || apps.contains("&#60;script&#62;"));
}

#[tokio::test]
async fn the_account_home_links_the_three_pages() {
    let app = TestApp::sqlite().await;
    let (alice, _) = signed_in(&app, 0).await;
    let (status, page) = get(&app, &alice, "/account").await;
    assert_eq!(status, 200);
    for link in ["/account/apps", "/account/api-tokens", "/account/password"] {
        assert!(page.contains(&format!("href=\"{link}\"")), "{link}");
    }
    let (_, home) = get(&app, &alice, "/").await;
    assert!(home.contains("href=\"/account\""), "{home}");
    assert!(home.contains("href=\"/developer\""), "{home}");
}

/// Two `trilo serve` processes on one PostgreSQL database: a grant revoked on the account
/// page of one is refused by the gateway of the other within a second, with its cache warm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_on_one_instance_stops_the_app_on_another_within_a_second() {
    let Some(app) = TestApp::postgres().await else {
        return;
    };
    let env = [("TRILO__GATEWAY__CACHE_TTL", "1s")];
    let first = crate::process::ServerProcess::start_with_env(&app, &env).await;
    let second = crate::process::ServerProcess::start_with_env(&app, &env).await;
    let access = alice_tokens(&app).await.assert_tokens();
    let acme = app.demo.sites[0].cloud_id.clone();
    let gateway = format!("{}/ex/jira/{acme}{MYSELF}", second.base);
    let http = reqwest::Client::new();
    let status = |res: reqwest::Response| res.status().as_u16();
    assert_eq!(
        status(http.get(&gateway).bearer_auth(&access).fetch().await),
        200
    );

    // Alice logs in on the first instance and revokes the app there.
    let browser = app.browser();
    let login = browser.get(format!("{}/login", first.base)).fetch().await;
    let csrf = hidden_field(&login.text().await.unwrap(), "csrf_token").unwrap();
    let alice = &app.demo.users[0];
    let res = browser
        .post(format!("{}/login", first.base))
        .form(&login_form(&alice.email, &alice.password, &csrf, "/"))
        .fetch()
        .await;
    assert_eq!(res.status(), 303);
    let page = browser
        .get(format!("{}/account/apps", first.base))
        .fetch_text()
        .await;
    let grant = revocable_grants(&page).remove(0);
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    let res = browser
        .post(format!("{}/account/apps/{grant}/revoke", first.base))
        .form(&[("csrf_token", csrf.as_str()), ("confirmed", "yes")])
        .fetch()
        .await;
    assert_eq!(res.status(), 303);
    let revoked_at = std::time::Instant::now();
    loop {
        let answer = status(http.get(&gateway).bearer_auth(&access).fetch().await);
        if answer == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < std::time::Duration::from_secs(1),
            "still admitted a second after the revocation"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
