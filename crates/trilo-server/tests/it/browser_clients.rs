//! Public clients and browser apps (issue 15, the reference's known issue "no SPA/mobile"):
//! a public client (PKCE, no secret) exchanges its code, refreshes and revokes from a page
//! on an origin it registered, and the auth host answers CORS for that origin only.

use oauth2::PkceCodeChallenge;
use serde_json::Value;
use trilo_core::model::{ClientType, Distribution};
use trilo_core::services::admin::NewApp;
use trilo_core::services::console::AppChanges;

use crate::authorize::logged_in;
use crate::on_both_backends;
use crate::support::{Fetch, TestApp, location, query_param};
use crate::token::Answer;

const SPA: &str = "https://spa.example.test";
const CALLBACK: &str = "https://spa.example.test/callback";

/// A public app whose pages live on [`SPA`], registered as a web origin in the console.
async fn spa(app: &TestApp) -> String {
    let alice = app.demo.users[0].account_id.clone();
    let created = app
        .core
        .create_app(NewApp {
            owner_account_id: alice.clone(),
            name: "Browser App".into(),
            description: "A single-page app.".into(),
            avatar_url: None,
            callback_urls: vec![CALLBACK.to_owned()],
            scopes: vec!["read:jira-work".into()],
            distribution: Distribution::Sharing,
            client_type: ClientType::Public,
        })
        .await
        .unwrap();
    let owner = app.core.store().account(&alice).await.unwrap().unwrap();
    let saved = app
        .core
        .console(&owner)
        .update_app(
            &created.app.app_id,
            AppChanges {
                // Kept as browsers send it: no trailing slash, lowercase.
                web_origins: Some(vec!["https://SPA.example.test/".to_owned()]),
                ..AppChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(saved.app.web_origins, vec![SPA.to_owned()]);
    created.app.client_id
}

/// Consent with PKCE for the public client; returns the code and the verifier.
async fn code_with_pkce(app: &TestApp, client_id: &str) -> (String, String) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let browser = logged_in(app, 0).await;
    let url = app.authorize_url(&[
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("scope", "read:jira-work offline_access"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let page = app.consent_page(&browser, &url).await;
    let res = app
        .submit_consent(&browser, &page, "accept", Some(&app.demo.sites[0].cloud_id))
        .await;
    let code = query_param(&location(&res), "code").expect("a code");
    (code, verifier.secret().clone())
}

async fn post_from(
    app: &TestApp,
    origin: Option<&str>,
    path: &str,
    form: &[(&str, &str)],
) -> Answer {
    let mut request = reqwest::Client::new().post(app.url(path)).form(form);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    Answer::of(request.fetch().await).await
}

fn allowed_origin(answer: &Answer) -> Option<&str> {
    answer.header("access-control-allow-origin")
}

on_both_backends!(
    a_public_client_exchanges_refreshes_and_revokes_from_its_origin,
    super::a_public_client_exchanges_refreshes_and_revokes_from_its_origin_body
);
async fn a_public_client_exchanges_refreshes_and_revokes_from_its_origin_body(app: TestApp) {
    let client_id = spa(&app).await;
    let (code, verifier) = code_with_pkce(&app, &client_id).await;

    // Another origin is refused before the code is spent, and cannot read the answer.
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("client_id", client_id.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let foreign = post_from(
        &app,
        Some("https://evil.example.test"),
        "/oauth/token",
        &exchange,
    )
    .await;
    foreign.assert_error(400, "unauthorized_client");
    assert_eq!(allowed_origin(&foreign), None);

    let tokens = post_from(&app, Some(SPA), "/oauth/token", &exchange).await;
    tokens.assert_tokens();
    assert_eq!(allowed_origin(&tokens), Some(SPA));
    assert!(
        tokens
            .header("vary")
            .is_some_and(|v| v.to_ascii_lowercase().contains("origin")),
        "{tokens:?}"
    );
    let refresh_token = tokens.body["refresh_token"].as_str().unwrap().to_owned();

    let refreshed = post_from(
        &app,
        Some(SPA),
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
            ("client_id", client_id.as_str()),
        ],
    )
    .await;
    refreshed.assert_tokens();
    assert_eq!(allowed_origin(&refreshed), Some(SPA));
    let next = refreshed.body["refresh_token"].as_str().unwrap().to_owned();

    // Errors are readable by the page too.
    let reused = post_from(
        &app,
        Some(SPA),
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "nope"),
            ("client_id", client_id.as_str()),
        ],
    )
    .await;
    assert_eq!(reused.status, 403, "{reused:?}");
    assert_eq!(allowed_origin(&reused), Some(SPA));

    let revoked = post_from(
        &app,
        Some(SPA),
        "/oauth/revoke",
        &[("token", next.as_str()), ("client_id", client_id.as_str())],
    )
    .await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    assert_eq!(allowed_origin(&revoked), Some(SPA));
    let after = post_from(
        &app,
        None,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", next.as_str()),
            ("client_id", client_id.as_str()),
        ],
    )
    .await;
    assert_eq!(after.status, 403, "revoked: {after:?}");
}

/// The preflight is answered for registered origins only; another app's origin does not
/// open this app's requests.
#[tokio::test]
async fn preflights_and_requests_are_answered_for_registered_origins_only() {
    let app = TestApp::sqlite().await;
    spa(&app).await;
    let preflight = |origin: &'static str, path: &'static str| {
        let url = app.url(path);
        async move {
            reqwest::Client::new()
                .request(reqwest::Method::OPTIONS, url)
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type")
                .fetch()
                .await
        }
    };
    for path in ["/oauth/token", "/oauth/revoke"] {
        let ok = preflight(SPA, path).await;
        assert_eq!(ok.status(), 204, "{path}");
        assert_eq!(ok.headers()["access-control-allow-origin"], SPA);
        assert_eq!(ok.headers()["access-control-allow-methods"], "POST");
        let other = preflight("https://evil.example.test", path).await;
        assert!(
            other.headers().get("access-control-allow-origin").is_none(),
            "{path}"
        );
    }
    // The demo app has not registered the SPA's origin: its calls from there are refused.
    let demo = app.app();
    let answer = post_from(
        &app,
        Some(SPA),
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "whatever"),
            ("client_id", demo.client_id.as_str()),
            ("client_secret", demo.client_secret.as_str()),
        ],
    )
    .await;
    answer.assert_error(400, "unauthorized_client");
    assert_eq!(allowed_origin(&answer), None);
    // Servers send no Origin and are not affected.
    let server = post_from(
        &app,
        None,
        "/oauth/revoke",
        &[
            ("token", "x"),
            ("client_id", demo.client_id.as_str()),
            ("client_secret", demo.client_secret.as_str()),
        ],
    )
    .await;
    assert_eq!(server.status, 200);
    assert_eq!(allowed_origin(&server), None);
}

/// A web origin must be an https origin (http on loopback), nothing more.
#[tokio::test]
async fn bad_web_origins_are_refused_in_the_console() {
    let app = TestApp::sqlite().await;
    let client_id = spa(&app).await;
    let alice = app
        .core
        .store()
        .account(&app.demo.users[0].account_id)
        .await
        .unwrap()
        .unwrap();
    let console = app.core.console(&alice);
    for bad in [
        "http://spa.example.test",
        "https://spa.example.test/app",
        "*.example.test",
    ] {
        let refused = console
            .update_app(
                &client_id,
                AppChanges {
                    web_origins: Some(vec![bad.to_owned()]),
                    ..AppChanges::default()
                },
            )
            .await;
        let error = refused.expect_err(bad).to_string();
        assert!(error.contains("web origin"), "{bad}: {error}");
    }
    let unchanged: Value =
        serde_json::to_value(&console.app(&client_id).await.unwrap().web_origins).unwrap();
    assert_eq!(unchanged, serde_json::json!([SPA]));
}
