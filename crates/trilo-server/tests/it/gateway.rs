//! The gateway (`/ex/{product}/{cloudid}/{api}`, DESIGN §3): one test per check and
//! failure status, in DESIGN's order, against the real sample upstreams; forwarding
//! against a test upstream that shows what it received.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::routing::any;
use base64::Engine;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use trilo_core::model::{ClientType, Distribution};
use trilo_core::services::admin::NewApp;
use trilo_protocol::authorize::append_query;

use crate::on_both_backends;
use crate::refresh::claims_of;
use crate::support::{Backend, Fetch, TestApp, location, query_param};
use crate::token::{Answer, post_form};

/// An OAuth client of the test server.
#[derive(Clone)]
pub struct Client {
    pub client_id: String,
    pub secret: String,
    pub callback: String,
}

pub fn demo_client(app: &TestApp) -> Client {
    let demo = app.app();
    Client {
        client_id: demo.client_id.clone(),
        secret: demo.client_secret.clone(),
        callback: demo.callback_url.clone(),
    }
}

/// A second app, owned by Alice, with `scopes` (e.g. granular or manage scopes).
pub async fn another_app(app: &TestApp, scopes: &[&str]) -> Client {
    let callback = "https://other.example.test/cb".to_owned();
    let created = app
        .core
        .create_app(NewApp {
            owner_account_id: app.demo.users[0].account_id.clone(),
            name: "Gateway Test App".into(),
            description: "An app with other scopes.".into(),
            avatar_url: None,
            callback_urls: vec![callback.clone()],
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            distribution: Distribution::Sharing,
            client_type: ClientType::Confidential,
        })
        .await
        .unwrap();
    Client {
        client_id: created.app.client_id,
        secret: created.client_secret.unwrap(),
        callback,
    }
}

/// Logs in demo user `user` (0 Alice, 1 Bob), consents for `client` with `scope` on
/// demo site `site`, redeems the code; returns the access token.
pub async fn access_token(
    app: &TestApp,
    user: usize,
    client: &Client,
    scope: &str,
    site: usize,
) -> String {
    token_answer(app, user, client, scope, site)
        .await
        .assert_tokens()
}

/// [`access_token`]'s token endpoint answer, whole.
pub async fn token_answer(
    app: &TestApp,
    user: usize,
    client: &Client,
    scope: &str,
    site: usize,
) -> Answer {
    let browser = app.browser();
    let demo_user = &app.demo.users[user];
    let res = app
        .login(&browser, &demo_user.email, &demo_user.password)
        .await;
    assert_eq!(res.status(), 303, "login");
    let url = append_query(
        &app.url("/authorize"),
        &[
            ("audience", &app.demo.audience),
            ("client_id", &client.client_id),
            ("scope", scope),
            ("redirect_uri", &client.callback),
            ("state", "s"),
            ("response_type", "code"),
        ],
    );
    let page = browser.get(&url).fetch_text().await;
    let res = app
        .submit_consent(
            &browser,
            &page,
            "accept",
            Some(&app.demo.sites[site].cloud_id),
        )
        .await;
    let code = query_param(&location(&res), "code").unwrap_or_else(|| panic!("a code: {page}"));
    post_form(
        app,
        &[
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), code),
            ("redirect_uri".into(), client.callback.clone()),
            ("client_id".into(), client.client_id.clone()),
            ("client_secret".into(), client.secret.clone()),
        ],
    )
    .await
}

/// `METHOD /ex/{product}/{site}{path}` with a bearer token.
pub async fn call(
    app: &TestApp,
    method: &str,
    token: &str,
    product: &str,
    site: &str,
    path: &str,
) -> Answer {
    let res = reqwest::Client::new()
        .request(
            method.parse().unwrap(),
            app.url(&format!("/ex/{product}/{site}{path}")),
        )
        .bearer_auth(token)
        .fetch()
        .await;
    Answer::of(res).await
}

/// `GET /ex/jira/{site}{path}`: most gateway checks are made with a Jira read.
pub async fn jira_get(app: &TestApp, token: &str, site: &str, path: &str) -> Answer {
    call(app, "GET", token, "jira", site, path).await
}

/// The status of `GET /rest/api/3/myself` on Jira: whether the gateway admits the caller.
pub async fn myself_status(app: &TestApp, token: &str, site: &str) -> u16 {
    jira_get(app, token, site, "/rest/api/3/myself")
        .await
        .status
}

/// Alice's token for the demo app with [`READ_SCOPES`] on Acme, and Acme's cloud id: the
/// caller most gateway tests start from.
pub async fn alice_read_token_on_acme(app: &TestApp) -> (String, String) {
    let token = access_token(app, 0, &demo_client(app), READ_SCOPES, 0).await;
    (token, app.demo.sites[0].cloud_id.clone())
}

/// A fresh SQLite server and [`alice_read_token_on_acme`]: where most gateway tests start.
async fn app_with_alice_read_token() -> (TestApp, String, String) {
    let app = TestApp::sqlite().await;
    let (token, acme) = alice_read_token_on_acme(&app).await;
    (app, token, acme)
}

/// [`alice_read_token_on_acme`] that may write Jira work too, for uploads.
async fn alice_write_token_on_acme(app: &TestApp) -> (String, String) {
    let scopes = format!("{READ_SCOPES} write:jira-work");
    let token = access_token(app, 0, &demo_client(app), &scopes, 0).await;
    (token, app.demo.sites[0].cloud_id.clone())
}

#[track_caller]
fn assert_refused(answer: &Answer, status: u16, message_part: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.body["code"], status, "{answer:?}");
    let message = answer.body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(message_part),
        "{message:?} lacks {message_part:?}"
    );
}

pub const READ_SCOPES: &str = "read:jira-user read:jira-work read:confluence-space.summary";

on_both_backends!(
    an_admitted_call_reaches_the_sample_product_as_the_user,
    super::an_admitted_call_reaches_the_sample_product_as_the_user_body
);
async fn an_admitted_call_reaches_the_sample_product_as_the_user_body(app: TestApp) {
    let (token, acme) = alice_read_token_on_acme(&app).await;
    let me = jira_get(&app, &token, &acme, "/rest/api/3/myself").await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["accountId"], app.demo.users[0].account_id.as_str());
    let projects = jira_get(&app, &token, &acme, "/rest/api/3/project/search").await;
    assert_eq!(projects.status, 200, "{projects:?}");
    assert!(
        projects.body["values"]
            .as_array()
            .is_some_and(|v| !v.is_empty())
    );
    let spaces = call(
        &app,
        "GET",
        &token,
        "confluence",
        &acme,
        "/wiki/rest/api/space",
    )
    .await;
    assert_eq!(spaces.status, 200, "{spaces:?}");
}

#[tokio::test]
async fn missing_garbage_and_revoked_credentials_are_401() {
    let app = TestApp::sqlite().await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let url = app.url(&format!("/ex/jira/{acme}/rest/api/3/myself"));
    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let garbage = jira_get(&app, "not.a.token", &acme, "/rest/api/3/myself").await;
    assert_refused(&garbage, 401, "invalid");
    assert!(
        garbage
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );

    let token = access_token(&app, 0, &demo_client(&app), READ_SCOPES, 0).await;
    let demo = app.app();
    let revoked = reqwest::Client::new()
        .post(app.url("/oauth/revoke"))
        .basic_auth(&demo.client_id, Some(&demo.client_secret))
        .form(&[("token", token.as_str())])
        .fetch()
        .await;
    assert_eq!(revoked.status(), 200);
    let answer = jira_get(&app, &token, &acme, "/rest/api/3/myself").await;
    assert_refused(&answer, 401, "revoked");
}

#[tokio::test]
async fn unknown_site_or_product_is_404() {
    let (app, token, acme) = app_with_alice_read_token().await;
    let globex = app.demo.sites[1].cloud_id.clone();
    let nowhere = uuid::Uuid::new_v4().to_string();
    assert_refused(
        &jira_get(&app, &token, &nowhere, "/rest/api/3/myself").await,
        404,
        "no jira",
    );
    assert_refused(
        &call(&app, "GET", &token, "bitbucket", &acme, "/x").await,
        404,
        "no bitbucket",
    );
    // Globex hosts Jira only.
    assert_refused(
        &call(
            &app,
            "GET",
            &token,
            "confluence",
            &globex,
            "/wiki/rest/api/space",
        )
        .await,
        404,
        "no confluence",
    );
}

#[tokio::test]
async fn a_token_for_one_site_never_reaches_another() {
    let app = TestApp::sqlite().await;
    // Consent on Acme only; Alice is a Jira member on Globex too, but the app is not
    // installed there.
    let (token, acme) = alice_read_token_on_acme(&app).await;
    let globex = app.demo.sites[1].cloud_id.clone();
    // Admitted on Acme first, so what the gateway cached for Acme is there to misuse.
    let on_acme = jira_get(&app, &token, &acme, "/rest/api/3/myself").await;
    assert_eq!(on_acme.status, 200);
    let answer = jira_get(&app, &token, &globex, "/rest/api/3/myself").await;
    assert_refused(&answer, 403, "no access to jira on this site");
    // Bob is no Confluence member on Acme.
    let bob = access_token(&app, 1, &demo_client(&app), READ_SCOPES, 0).await;
    let answer = call(
        &app,
        "GET",
        &bob,
        "confluence",
        &acme,
        "/wiki/rest/api/space",
    )
    .await;
    assert_refused(&answer, 403, "not a member");
}

#[tokio::test]
async fn blocking_user_installs_cuts_off_a_consented_app_at_once() {
    let (app, token, acme) = app_with_alice_read_token().await;
    assert_eq!(myself_status(&app, &token, &acme).await, 200);
    app.core
        .set_user_installs(&acme, trilo_core::model::UserInstalls::Blocked)
        .await
        .unwrap();
    let answer = jira_get(&app, &token, &acme, "/rest/api/3/myself").await;
    assert_refused(&answer, 403, "blocks it");
}

/// What the gateway read of a site for one token serves the account's other tokens only
/// until access changes: a block made after one token's call refuses a token minted
/// before it and never used.
#[tokio::test]
async fn a_token_never_used_sees_a_block_made_after_another_tokens_call() {
    let (app, used, acme) = app_with_alice_read_token().await;
    // A second consent (more scopes) for a second token of the same account and app.
    let (unused, _) = alice_write_token_on_acme(&app).await;
    assert_eq!(myself_status(&app, &used, &acme).await, 200);
    app.core
        .set_user_installs(&acme, trilo_core::model::UserInstalls::Blocked)
        .await
        .unwrap();
    let answer = jira_get(&app, &unused, &acme, "/rest/api/3/myself").await;
    assert_refused(&answer, 403, "blocks it");
}

#[tokio::test]
async fn unknown_operations_are_404_and_other_methods_405() {
    let (app, token, acme) = app_with_alice_read_token().await;
    let unknown = jira_get(&app, &token, &acme, "/rest/api/3/no-such-thing").await;
    assert_refused(
        &unknown,
        404,
        "No jira operation matches GET /rest/api/3/no-such-thing",
    );
    let put = call(&app, "PUT", &token, "jira", &acme, "/rest/api/3/myself").await;
    assert_refused(&put, 405, "does not allow PUT");
    assert_eq!(put.header("allow"), Some("GET"));
    // Dot segments and encoded slashes never reach another operation. Sent raw: HTTP
    // clients would normalise them away before sending.
    for path in [
        "/rest/api/3/x/%2e%2e/myself",
        "/rest/api/3/x/../myself",
        "/rest/api/3/issue/a%2Fb",
    ] {
        let (status, body) = raw_get(&app, &format!("/ex/jira/{acme}{path}"), &token).await;
        assert!(matches!(status, 400 | 404), "{path}: {status} {body}");
        assert!(!body.contains("accountId"), "{path} reached myself: {body}");
    }
}

/// A GET sent over a bare TCP connection, the path exactly as given.
async fn raw_get(app: &TestApp, path: &str, token: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

#[tokio::test]
async fn operations_closed_to_apps_are_403() {
    let (app, token, acme) = app_with_alice_read_token().await;
    // The document offers this operation to basic auth only.
    let answer = jira_get(&app, &token, &acme, "/rest/api/3/applicationrole").await;
    assert_refused(&answer, 403, "Apps can't access this REST resource");
}

#[tokio::test]
async fn a_missing_scope_is_403_naming_the_alternatives() {
    let app = TestApp::sqlite().await;
    let token = access_token(&app, 0, &demo_client(&app), "read:jira-work", 0).await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let answer = jira_get(&app, &token, &acme, "/rest/api/3/myself").await;
    assert_refused(
        &answer,
        403,
        "[read:jira-user] or [read:application-role:jira read:group:jira read:user:jira read:avatar:jira]",
    );
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
}

#[tokio::test]
async fn a_granular_alternative_is_accepted() {
    let app = TestApp::sqlite().await;
    let granular = "read:application-role:jira read:group:jira read:user:jira read:avatar:jira";
    let client = another_app(&app, &granular.split(' ').collect::<Vec<_>>()).await;
    let token = access_token(&app, 0, &client, granular, 0).await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let me = jira_get(&app, &token, &acme, "/rest/api/3/myself").await;
    assert_eq!(me.status, 200, "{me:?}");
}

#[tokio::test]
async fn a_manage_scope_needs_the_admin_role() {
    let app = TestApp::sqlite().await;
    let client = another_app(&app, &["manage:jira-configuration"]).await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let path = "/rest/api/3/application-properties";
    // Bob is a plain Jira member on Acme.
    let bob = access_token(&app, 1, &client, "manage:jira-configuration", 0).await;
    assert_refused(&jira_get(&app, &bob, &acme, path).await, 403, "admin role");
    // Alice administers Jira on Acme: the call passes the gateway and reaches the product
    // (the sample does not implement it, and says so in Jira's own error shape).
    let alice = access_token(&app, 0, &client, "manage:jira-configuration", 0).await;
    let answer = jira_get(&app, &alice, &acme, path).await;
    assert!(answer.body.get("errorMessages").is_some(), "{answer:?}");
}

#[tokio::test]
async fn api_tokens_act_with_the_users_own_rights() {
    let app = TestApp::sqlite().await;
    let alice = &app.demo.users[0];
    let created = app
        .core
        .create_api_token(&alice.account_id, "script", None)
        .await
        .unwrap();
    let acme = app.demo.sites[0].cloud_id.clone();
    let url = app.url(&format!("/ex/jira/{acme}/rest/api/3/myself"));
    let res = reqwest::Client::new()
        .get(&url)
        .basic_auth(&alice.email, Some(&created.secret))
        .fetch()
        .await;
    let me = Answer::of(res).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["accountId"], alice.account_id.as_str());
    // Another user's email with Alice's token, or a revoked token: 401 with a Basic challenge.
    for (email, secret) in [
        (app.demo.users[1].email.as_str(), created.secret.as_str()),
        (alice.email.as_str(), "wrong"),
    ] {
        let res = reqwest::Client::new()
            .get(&url)
            .basic_auth(email, Some(secret))
            .fetch()
            .await;
        let answer = Answer::of(res).await;
        assert_refused(&answer, 401, "API token");
        assert!(
            answer
                .header("www-authenticate")
                .unwrap()
                .starts_with("Basic")
        );
    }
    app.core
        .revoke_api_token(&alice.account_id, &created.token.token_id)
        .await
        .unwrap();
    let res = reqwest::Client::new()
        .get(&url)
        .basic_auth(&alice.email, Some(&created.secret))
        .fetch()
        .await;
    assert_eq!(res.status(), 401);
}

/// A test upstream: `/echo/…` answers with what it received; `/slow/…` answers after 3 s;
/// `/bytes/…` counts an uploaded body, or streams `?n=` bytes back.
async fn test_upstream() -> String {
    async fn echo(request: Request) -> axum::Json<Value> {
        let headers: serde_json::Map<String, Value> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or("?"))))
            .collect();
        axum::Json(json!({
            "method": request.method().as_str(),
            "uri": request.uri().to_string(),
            "headers": headers,
        }))
    }
    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_secs(3)).await;
        "late"
    }
    async fn bytes(request: Request) -> axum::response::Response {
        use axum::response::IntoResponse;
        use futures_util::StreamExt;
        let n: Option<usize> = request
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("n="))
            .and_then(|n| n.parse().ok());
        if let Some(n) = n {
            let chunk = axum::body::Bytes::from(vec![b'x'; 64 * 1024]);
            let chunks = n / chunk.len();
            let stream = futures_util::stream::iter(
                (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            return Body::from_stream(stream).into_response();
        }
        let mut body = request.into_body().into_data_stream();
        let mut received = 0usize;
        while let Some(chunk) = body.next().await {
            received += chunk.unwrap().len();
        }
        axum::Json(json!({ "received": received })).into_response()
    }
    /// What a compromised or careless product might answer.
    async fn hostile() -> axum::response::Response {
        axum::response::Response::builder()
            .status(302)
            .header("set-cookie", "trilo_session=attacker; Path=/")
            .header("access-control-allow-origin", "https://evil.example")
            .header("access-control-allow-credentials", "true")
            .header("location", "https://evil.example/phish")
            .header("x-content-type-options", "none")
            .header("x-product", "kept")
            .body(Body::from("<script>alert(1)</script>"))
            .unwrap()
    }
    /// A product that dies after the first bytes of its answer (a moment later, so the
    /// head and those bytes have gone out).
    async fn broken() -> axum::response::Response {
        use axum::response::IntoResponse;
        use futures_util::StreamExt;
        let first = futures_util::stream::once(async {
            Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{\"partial\":"))
        });
        let death = futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Err(std::io::Error::other("the product died"))
        });
        Body::from_stream(first.chain(death)).into_response()
    }
    let router = axum::Router::new()
        .route("/echo/{*rest}", any(echo))
        .route("/broken/{*rest}", any(broken))
        .route("/hostile/{*rest}", any(hostile))
        .route("/slow/{*rest}", any(slow))
        .route("/bytes/{*rest}", any(bytes));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

/// Points Jira on the demo's first site at `upstream`.
async fn use_upstream(app: &TestApp, upstream: &str) {
    let acme = &app.demo.sites[0].cloud_id;
    app.core
        .add_product_to_site(acme, "jira", upstream)
        .await
        .unwrap();
}

#[tokio::test]
async fn forwarding_strips_credentials_and_spoofed_identity_and_adds_the_assertion() {
    let app = TestApp::sqlite().await;
    let upstream = test_upstream().await;
    use_upstream(&app, &format!("{upstream}/echo")).await;
    let (token, acme) = alice_read_token_on_acme(&app).await;
    let res = reqwest::Client::new()
        .get(app.url(&format!(
            "/ex/jira/{acme}/rest/api/3/project/search?startAt=5&x=%2F"
        )))
        .bearer_auth(&token)
        .header("x-trilo-account-id", "someone-else")
        .header("X-Trilo-Assertion", "forged")
        .header("cookie", "trilo_session=stolen")
        .header("connection", "x-private")
        .header("x-private", "1")
        .header("x-request-id", "req-42")
        .header("accept", "application/json")
        // Address, host, path and method spoofing (issue 16).
        .header("x-forwarded-for", "10.0.0.1")
        .header("x-forwarded-host", "admin.internal")
        .header("forwarded", "for=10.0.0.1;host=admin.internal")
        .header("x-real-ip", "10.0.0.1")
        .header("x-original-url", "/admin")
        .header("x-rewrite-url", "/admin")
        .header("x-http-method-override", "DELETE")
        .fetch()
        .await;
    assert_eq!(res.headers()["x-request-id"], "req-42");
    let seen = Answer::of(res).await;
    assert_eq!(seen.status, 200, "{seen:?}");
    assert_eq!(
        seen.body["uri"],
        "/echo/rest/api/3/project/search?startAt=5&x=%2F"
    );
    let h = &seen.body["headers"];
    assert_eq!(
        h["x-trilo-account-id"],
        app.demo.users[0].account_id.as_str()
    );
    assert_eq!(h["x-trilo-client-id"], app.app().client_id.as_str());
    assert_eq!(h["x-trilo-cloud-id"], acme.as_str());
    assert_eq!(h["x-request-id"], "req-42");
    assert_eq!(h["accept"], "application/json");
    for gone in [
        "authorization",
        "cookie",
        "x-private",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-real-ip",
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
    ] {
        assert!(h.get(gone).is_none(), "{gone} reached the upstream: {h}");
    }
    // A call without a body goes out without one (not as an empty chunked body).
    for framing in ["transfer-encoding", "content-length"] {
        assert!(
            h.get(framing).is_none(),
            "{framing} on a bodiless call: {h}"
        );
    }
    // `Forwarded` is trilo's, from the connection.
    assert_eq!(h["forwarded"], "for=127.0.0.1");
    // The assertion is trilo's: an ES256 JWS of the assertion type, for Jira and Alice.
    let assertion = h["x-trilo-assertion"].as_str().unwrap();
    assert_ne!(assertion, "forged");
    let decode = |part: &str| -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    let mut parts = assertion.split('.');
    let header = decode(parts.next().unwrap());
    let claims = decode(parts.next().unwrap());
    assert_eq!(header["typ"], "trilo-assertion+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(claims["aud"], "jira");
    assert_eq!(claims["sub"], app.demo.users[0].account_id.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        60
    );
    // The assertion is no access token: the API host refuses it.
    let me = reqwest::Client::new()
        .get(app.url("/me"))
        .bearer_auth(assertion)
        .fetch()
        .await;
    assert_eq!(me.status(), 401, "the assertion is no access token");
}

/// A call with a body goes by hyper's client rather than the gateway's own exchange: the
/// same headers cross and the same are added.
#[tokio::test]
async fn a_call_with_a_body_crosses_with_the_same_headers() {
    let app = TestApp::sqlite().await;
    let upstream = test_upstream().await;
    use_upstream(&app, &format!("{upstream}/echo")).await;
    let (token, acme) = alice_write_token_on_acme(&app).await;
    let res = reqwest::Client::new()
        .post(app.url(&format!("/ex/jira/{acme}/rest/api/3/issue?notify=false")))
        .bearer_auth(&token)
        .header("x-trilo-account-id", "someone-else")
        .header("cookie", "trilo_session=stolen")
        .header("connection", "x-private")
        .header("x-private", "1")
        .header("x-forwarded-for", "10.0.0.1")
        .header("content-type", "application/json")
        .body("{}")
        .fetch()
        .await;
    let seen = Answer::of(res).await;
    assert_eq!(seen.status, 200, "{seen:?}");
    assert_eq!(seen.body["method"], "POST");
    assert_eq!(seen.body["uri"], "/echo/rest/api/3/issue?notify=false");
    let h = &seen.body["headers"];
    assert_eq!(
        h["x-trilo-account-id"],
        app.demo.users[0].account_id.as_str()
    );
    assert_eq!(h["x-trilo-cloud-id"], acme.as_str());
    assert_eq!(h["forwarded"], "for=127.0.0.1");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["content-length"], "2");
    assert!(h["x-trilo-assertion"].as_str().unwrap().starts_with("ey"));
    for gone in ["authorization", "cookie", "x-private", "x-forwarded-for"] {
        assert!(h.get(gone).is_none(), "{gone} reached the upstream: {h}");
    }
}

/// The assertion the gateway forwarded with `token`'s call, and its claims.
async fn forwarded_assertion(app: &TestApp, token: &str, site: &str) -> (String, Value) {
    let seen = jira_get(app, token, site, "/rest/api/3/myself").await;
    assert_eq!(seen.status, 200, "{seen:?}");
    let assertion = seen.body["headers"]["x-trilo-assertion"]
        .as_str()
        .unwrap()
        .to_owned();
    let claims = claims_of(&assertion);
    (assertion, claims)
}

/// A space-separated list's words, sorted.
fn words(list: &Value) -> Vec<&str> {
    let mut words: Vec<&str> = list.as_str().unwrap().split(' ').collect();
    words.sort_unstable();
    words
}

#[tokio::test]
async fn new_tokens_with_the_same_claims_share_a_fresh_assertion() {
    let app = TestApp::sqlite().await;
    let upstream = test_upstream().await;
    use_upstream(&app, &format!("{upstream}/echo")).await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let client = demo_client(&app);
    let scopes = format!("{READ_SCOPES} offline_access");
    let issued = token_answer(&app, 0, &client, &scopes, 0).await;
    let first = issued.assert_tokens();
    let refreshed = post_form(
        &app,
        &[
            ("grant_type".into(), "refresh_token".into()),
            (
                "refresh_token".into(),
                issued.body["refresh_token"].as_str().unwrap().to_owned(),
            ),
            ("client_id".into(), client.client_id.clone()),
            ("client_secret".into(), client.secret.clone()),
        ],
    )
    .await;
    let second = refreshed.assert_tokens();
    assert_ne!(first, second);
    let (assertion, claims) = forwarded_assertion(&app, &first, &acme).await;
    // Another token of the same account, app, site and scopes: the same claims, so the
    // assertion signed a moment ago for the first is forwarded again.
    let (again, _) = forwarded_assertion(&app, &second, &acme).await;
    assert_eq!(again, assertion);
    assert_eq!(words(&claims["scope"]), words(&json!(scopes)));
    // Other scopes say something else: an assertion of their own.
    let (writer, _) = alice_write_token_on_acme(&app).await;
    let (other, other_claims) = forwarded_assertion(&app, &writer, &acme).await;
    assert_ne!(other, assertion);
    assert_eq!(
        words(&other_claims["scope"]),
        words(&json!(format!("{READ_SCOPES} write:jira-work")))
    );
    assert_ne!(other_claims["jti"], claims["jti"]);
}

/// An upstream's answer cannot set cookies on the API host, open credentialed CORS or
/// redirect off site; every proxied answer is nosniff with a sandboxing CSP (issue 16).
#[tokio::test]
async fn upstream_answers_are_filtered() {
    let app = TestApp::sqlite().await;
    let upstream = test_upstream().await;
    use_upstream(&app, &format!("{upstream}/hostile")).await;
    let (token, acme) = alice_read_token_on_acme(&app).await;
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url(&format!("/ex/jira/{acme}/rest/api/3/myself")))
        .bearer_auth(&token)
        .header("origin", "https://evil.example")
        .fetch()
        .await;
    assert_eq!(res.status(), 302);
    let h = res.headers();
    assert!(h.get("set-cookie").is_none(), "{h:?}");
    assert!(h.get("access-control-allow-credentials").is_none(), "{h:?}");
    assert_eq!(
        h["access-control-allow-origin"], "*",
        "the API host's own CORS"
    );
    assert!(h.get("location").is_none(), "{h:?}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert_eq!(h["x-product"], "kept");
}

#[tokio::test]
async fn dead_upstreams_are_502_and_slow_ones_504() {
    let app = TestApp::spawn(Backend::Sqlite, |config| {
        config.gateway.upstream_timeout = "500ms".into();
    })
    .await
    .unwrap();
    let (token, acme) = alice_read_token_on_acme(&app).await;
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    use_upstream(&app, &dead).await;
    let answer = jira_get(&app, &token, &acme, "/rest/api/3/myself").await;
    assert_refused(&answer, 502, "could not be reached");
    let upstream = test_upstream().await;
    use_upstream(&app, &format!("{upstream}/slow")).await;
    let started = std::time::Instant::now();
    let answer = jira_get(&app, &token, &acme, "/rest/api/3/myself").await;
    assert_refused(&answer, 504, "did not answer in time");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the timeout cut it short"
    );
}

/// A product that answers with something other than HTTP/1.1 (here two different
/// lengths, which would let it smuggle a second answer) is 502, and nothing of its answer
/// reaches the caller.
#[tokio::test]
async fn an_answer_that_is_not_valid_http_is_502() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::sqlite().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 40\r\n\r\nok")
                .await;
        }
    });
    use_upstream(&app, &upstream).await;
    let (token, acme) = alice_read_token_on_acme(&app).await;
    let answer = jira_get(&app, &token, &acme, "/rest/api/3/myself").await;
    assert_refused(&answer, 502, "not valid HTTP");
}

/// An `https://` upstream is called over TLS: a plain listener in its place sees a TLS
/// handshake begin (and the call, whose handshake then fails, is 502).
#[tokio::test]
async fn https_upstreams_are_called_over_tls() {
    use tokio::io::AsyncReadExt;
    let app = TestApp::sqlite().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("https://{}", listener.local_addr().unwrap());
    let (first_bytes, seen) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut first = [0u8; 2];
        stream.read_exact(&mut first).await.unwrap();
        let _ = first_bytes.send(first);
    });
    use_upstream(&app, &upstream).await;
    let (token, acme) = alice_read_token_on_acme(&app).await;
    let answer = jira_get(&app, &token, &acme, "/rest/api/3/myself").await;
    assert_eq!(answer.status, 502, "{answer:?}");
    let first = tokio::time::timeout(Duration::from_secs(5), seen)
        .await
        .expect("the gateway never connected")
        .unwrap();
    // A TLS handshake record (content type 22), protocol version 3.x.
    assert_eq!(first, [0x16, 0x03]);
}

/// A product that dies mid-answer: the 200 has gone out, so the caller's connection is
/// cut, and the server's log says so under the request's id (the envelope sees the answer's
/// head only).
#[tokio::test]
async fn an_answer_that_breaks_off_mid_stream_is_logged_under_the_request_id() {
    let Some(app) = TestApp::postgres().await else {
        return;
    };
    let upstream = test_upstream().await;
    use_upstream(&app, &format!("{upstream}/broken")).await;
    let server =
        crate::process::ServerProcess::start_with_env(&app, &[("TRILO_LOG", "info")]).await;
    let (token, acme) = alice_read_token_on_acme(&app).await;
    let res = reqwest::Client::new()
        .get(format!("{}/ex/jira/{acme}/rest/api/3/myself", server.base))
        .bearer_auth(&token)
        .header("x-request-id", "broken-answer-1")
        .fetch()
        .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.bytes().await.is_err(),
        "the caller must see the answer cut short"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let log = server.log_text();
        if let Some(line) = log.lines().find(|line| line.contains("broke off")) {
            assert!(line.contains("broken-answer-1"), "{line}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log line tells of the break: {log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The process's resident memory in kB (`VmRSS`, or `VmHWM` for the peak).
fn memory_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_upload_and_download_stream_through_with_flat_memory() {
    use futures_util::StreamExt;
    const SIZE: usize = 200 * 1024 * 1024;
    let app = TestApp::sqlite().await;
    let upstream = test_upstream().await;
    use_upstream(&app, &format!("{upstream}/bytes")).await;
    let (token, acme) = alice_write_token_on_acme(&app).await;
    let before = memory_kb("VmRSS:");

    let chunk = axum::body::Bytes::from(vec![b'u'; 64 * 1024]);
    let upload = futures_util::stream::iter(
        (0..SIZE / chunk.len()).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    let res = reqwest::Client::new()
        .post(app.url(&format!("/ex/jira/{acme}/rest/api/3/issue")))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(upload))
        .fetch()
        .await;
    let answer = Answer::of(res).await;
    assert_eq!(answer.body["received"], SIZE, "{answer:?}");

    let res = reqwest::Client::new()
        .get(app.url(&format!(
            "/ex/jira/{acme}/rest/api/3/project/search?n={SIZE}"
        )))
        .bearer_auth(&token)
        .fetch()
        .await;
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    let mut received = 0usize;
    while let Some(chunk) = stream.next().await {
        received += chunk.unwrap().len();
    }
    assert_eq!(received, SIZE);
    let peak = memory_kb("VmHWM:");
    let grown_mb = peak.saturating_sub(before) / 1024;
    assert!(
        grown_mb < 64,
        "memory grew by {grown_mb} MB moving 2 x 200 MB"
    );
}

#[tokio::test]
async fn cors_preflight_and_responses_allow_browser_apps() {
    let app = TestApp::sqlite().await;
    let acme = app.demo.sites[0].cloud_id.clone();
    for path in [
        format!("/ex/jira/{acme}/rest/api/3/myself"),
        "/me".to_owned(),
        "/oauth/token/accessible-resources".to_owned(),
    ] {
        let res = reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, app.url(&path))
            .header("origin", "https://app.example.test")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .fetch()
            .await;
        assert!(res.status().is_success(), "{path}: {}", res.status());
        let h = res.headers();
        assert_eq!(h["access-control-allow-origin"], "*", "{path}");
        assert!(
            h["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .contains("authorization"),
            "{path}"
        );
    }
    let token = access_token(&app, 0, &demo_client(&app), READ_SCOPES, 0).await;
    let res = reqwest::Client::new()
        .get(app.url(&format!("/ex/jira/{acme}/rest/api/3/myself")))
        .header("origin", "https://app.example.test")
        .bearer_auth(&token)
        .fetch()
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    // The auth host's pages are not opened to other origins.
    let res = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, app.url("/oauth/token"))
        .header("origin", "https://app.example.test")
        .header("access-control-request-method", "POST")
        .fetch()
        .await;
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

/// Two `trilo serve` processes on one PostgreSQL database: a grant revoked through one is
/// refused by the other within one second (DESIGN §3). The caches live the longest they
/// may (1 s) and are warm, so only the announcement (`NOTIFY`) can make it this quick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_through_one_instance_is_refused_by_another_within_a_second() {
    let Some(app) = TestApp::postgres().await else {
        return;
    };
    let env = [("TRILO__GATEWAY__CACHE_TTL", "1s")];
    let first = crate::process::ServerProcess::start_with_env(&app, &env).await;
    let second = crate::process::ServerProcess::start_with_env(&app, &env).await;
    let (token, acme) = alice_read_token_on_acme(&app).await;
    let url = format!("{}/ex/jira/{acme}/rest/api/3/myself", second.base);
    let http = reqwest::Client::new();
    let status = |res: reqwest::Response| res.status().as_u16();
    assert_eq!(
        status(http.get(&url).bearer_auth(&token).fetch().await),
        200
    );

    let demo = app.app();
    let revoked = http
        .post(format!("{}/oauth/revoke", first.base))
        .basic_auth(&demo.client_id, Some(&demo.client_secret))
        .form(&[("token", token.as_str())])
        .fetch()
        .await;
    assert_eq!(revoked.status(), 200);
    let revoked_at = std::time::Instant::now();
    loop {
        let answer = status(http.get(&url).bearer_auth(&token).fetch().await);
        if answer == 401 {
            break;
        }
        assert_eq!(answer, 200);
        assert!(
            revoked_at.elapsed() < Duration::from_millis(500),
            "still admitted half a second after the revocation: the announcement was missed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// When the state behind a cached decision can no longer be checked, the gateway refuses
/// with 503 rather than admit on stale knowledge (DESIGN §3: fail closed).
#[tokio::test]
async fn the_gateway_fails_closed_when_the_store_is_gone() {
    let Some(mut app) = TestApp::postgres().await else {
        return;
    };
    let (token, acme) = alice_read_token_on_acme(&app).await;
    assert_eq!(myself_status(&app, &token, &acme).await, 200);
    app.lose_the_database().await;
    // Past the cache's lifetime the standing must be checked again, and cannot be.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let answer = jira_get(&app, &token, &acme, "/rest/api/3/myself").await;
    assert_refused(&answer, 503, "unavailable");
}

#[tokio::test]
async fn request_bodies_over_the_limit_are_413() {
    let app = TestApp::spawn(Backend::Sqlite, |config| {
        config.gateway.max_request_body_mib = 1;
    })
    .await
    .unwrap();
    let upstream = test_upstream().await;
    use_upstream(&app, &format!("{upstream}/bytes")).await;
    let (token, acme) = alice_write_token_on_acme(&app).await;
    let url = app.url(&format!("/ex/jira/{acme}/rest/api/3/issue"));
    let http = reqwest::Client::new();
    // Declared too large: refused before anything is sent upstream.
    let declared = http
        .post(&url)
        .bearer_auth(&token)
        .body(vec![b'x'; 1024 * 1024 + 1])
        .fetch()
        .await;
    assert_eq!(declared.status(), 413);
    // Streamed (chunked, no length): cut off when it passes the limit.
    let chunk = axum::body::Bytes::from(vec![b'y'; 64 * 1024]);
    let stream =
        futures_util::stream::iter((0..32).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let streamed = http
        .post(&url)
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(stream))
        .fetch()
        .await;
    assert_eq!(streamed.status(), 413);
    // At the limit it passes.
    let fits = http
        .post(&url)
        .bearer_auth(&token)
        .body(vec![b'z'; 1024 * 1024])
        .fetch()
        .await;
    let answer = Answer::of(fits).await;
    assert_eq!(answer.body["received"], 1024 * 1024, "{answer:?}");
}

/// An active data security policy keeps apps away from the project it covers, by project
/// key or id or by an issue key, naming the policy; the upstream hides it from lists; an
/// API token (the user acting) is not blocked; deactivating lifts it at once.
#[tokio::test]
async fn a_data_security_policy_keeps_apps_out_of_covered_containers() {
    let (app, token, acme) = app_with_alice_read_token().await;
    let issue = |key: &str| format!("/rest/api/3/issue/{key}");
    assert_eq!(
        jira_get(&app, &token, &acme, &issue("OPS-1")).await.status,
        200
    );
    let policy = app
        .core
        .create_policy(
            &acme,
            "Finance <data>",
            vec![("jira".into(), "OPS".into())],
            true,
        )
        .await
        .unwrap();
    // Created inactive: nothing changes yet.
    assert_eq!(
        jira_get(&app, &token, &acme, &issue("OPS-1")).await.status,
        200
    );
    app.core
        .set_policy_active(&policy.policy_id, true)
        .await
        .unwrap();

    let blocked = jira_get(&app, &token, &acme, &issue("OPS-1")).await;
    assert_refused(
        &blocked,
        403,
        "data security policy \u{201c}Finance <data>\u{201d}",
    );
    assert!(
        !blocked.body["message"].as_str().unwrap().contains("OPS"),
        "names the policy only"
    );
    for path in ["/rest/api/3/project/OPS", "/rest/api/3/project/10001"] {
        let answer = jira_get(&app, &token, &acme, path).await;
        assert_refused(&answer, 403, "data security policy");
    }
    assert_eq!(
        jira_get(&app, &token, &acme, &issue("DEMO-1")).await.status,
        200
    );
    let projects = jira_get(&app, &token, &acme, "/rest/api/3/project/search").await;
    let keys: Vec<&str> = projects.body["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["key"].as_str())
        .collect();
    assert_eq!(keys, vec!["DEMO"], "the upstream hides the blocked project");

    // The user's own API token is not an app: not blocked.
    let alice = &app.demo.users[0];
    let api_token = app
        .core
        .create_api_token(&alice.account_id, "ci", None)
        .await
        .unwrap();
    let res = reqwest::Client::new()
        .get(app.url(&format!("/ex/jira/{acme}{}", issue("OPS-1"))))
        .basic_auth(&alice.email, Some(&api_token.secret))
        .fetch()
        .await;
    assert_eq!(res.status(), 200);

    app.core
        .set_policy_active(&policy.policy_id, false)
        .await
        .unwrap();
    assert_eq!(
        jira_get(&app, &token, &acme, &issue("OPS-1")).await.status,
        200
    );
}

/// A guest reaches only the containers it was invited to, with an app or its own token.
#[tokio::test]
async fn a_guest_reaches_only_its_containers() {
    let app = TestApp::sqlite().await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let bob = app.demo.users[1].account_id.clone();
    app.core
        .set_membership(&bob, &acme, "jira", trilo_core::model::Role::Guest)
        .await
        .unwrap();
    app.core
        .set_guest_containers(&bob, &acme, "jira", &["DEMO".to_owned()])
        .await
        .unwrap();
    let token = access_token(&app, 1, &demo_client(&app), READ_SCOPES, 0).await;
    let ok = jira_get(&app, &token, &acme, "/rest/api/3/issue/DEMO-1").await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let outside = jira_get(&app, &token, &acme, "/rest/api/3/issue/OPS-1").await;
    assert_refused(&outside, 403, "Guests can reach only");
    let projects = jira_get(&app, &token, &acme, "/rest/api/3/project/search").await;
    assert_eq!(projects.body["total"], 1, "{projects:?}");

    let api_token = app.core.create_api_token(&bob, "ci", None).await.unwrap();
    let res = reqwest::Client::new()
        .get(app.url(&format!("/ex/jira/{acme}/rest/api/3/issue/OPS-1")))
        .basic_auth(&app.demo.users[1].email, Some(&api_token.secret))
        .fetch()
        .await;
    assert_eq!(res.status(), 403, "the guest's own token is limited too");
}
