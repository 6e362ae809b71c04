//! `POST /oauth/token` for the authorization-code grant (DESIGN §3 "Token endpoint",
//! security checklist §1.2–§1.3, §1.5): body formats, client authentication, PKCE, code
//! binding, expiry and single use under concurrency, and the RFC 6749 §5.2 error shape.
//!
//! Also holds the token-request helpers the other modules share.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use oauth2::{PkceCodeChallenge, PkceCodeVerifier};
use serde_json::{Value, json};
use trilo_core::model::{ClientType, Distribution};
use trilo_core::services::admin::NewApp;
use trilo_protocol::params::encode;

use crate::support::{Fetch, TestApp, location, query_param};

/// A token-endpoint answer: status, headers and body (JSON, or the raw text as a JSON
/// string when it is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub async fn of(res: reqwest::Response) -> Answer {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Asserts an RFC 6749 §5.2 error: status, `error`, JSON, `Cache-Control: no-store`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, error: &str) {
        assert_eq!(self.status, status, "status of {:?}", self.body);
        assert_eq!(self.body["error"], error, "error code in {:?}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        assert_eq!(self.header("cache-control"), Some("no-store"), "{self:?}");
        if error == "invalid_client" {
            assert!(
                self.header("www-authenticate")
                    .is_some_and(|v| v.starts_with("Basic")),
                "invalid_client carries WWW-Authenticate: Basic: {self:?}"
            );
        }
    }

    /// Asserts a successful token response (RFC 6749 §5.1) and returns the access token.
    #[track_caller]
    pub fn assert_tokens(&self) -> String {
        assert_eq!(self.status, 200, "expected tokens: {:?}", self.body);
        assert_eq!(self.header("cache-control"), Some("no-store"), "{self:?}");
        assert_eq!(self.body["token_type"], "Bearer", "{:?}", self.body);
        assert_eq!(self.body["expires_in"], 3600, "{:?}", self.body);
        self.body["access_token"]
            .as_str()
            .expect("an access_token")
            .to_owned()
    }
}

/// The demo app's code exchange with credentials in the body (`client_secret_post`).
pub fn code_params(app: &TestApp, code: &str) -> Vec<(String, String)> {
    let demo = app.app();
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", demo.callback_url.as_str()),
        ("client_id", demo.client_id.as_str()),
        ("client_secret", demo.client_secret.as_str()),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// `params` with `extra` replacing or adding parameters; an empty value removes one.
pub fn with(params: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out = params.to_vec();
    for (k, v) in extra {
        out.retain(|(name, _)| name != k);
        if !v.is_empty() {
            out.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    out
}

/// `params` as an `application/x-www-form-urlencoded` body.
pub fn form_body(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub async fn post_form(app: &TestApp, params: &[(String, String)]) -> Answer {
    let res = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .form(params)
        .fetch()
        .await;
    Answer::of(res).await
}

/// A token request with a raw body and content type (`None`: no Content-Type header).
pub async fn post_raw(app: &TestApp, content_type: Option<&str>, body: Vec<u8>) -> Answer {
    let mut req = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    Answer::of(req.fetch().await).await
}

/// Redeems `code` for the demo app the ordinary way.
pub async fn redeem(app: &TestApp, code: &str) -> Answer {
    post_form(app, &code_params(app, code)).await
}

/// Redeems `code` for the demo app with `extra` replacing, adding or (empty) removing
/// parameters: the shape of every test of a refused exchange.
pub async fn redeem_with(app: &TestApp, code: &str, extra: &[(&str, &str)]) -> Answer {
    post_form(app, &with(&code_params(app, code), extra)).await
}

/// A demo code bound to a fresh S256 challenge, with its verifier and the verifier of
/// another challenge: the start of every test of a wrong verifier.
async fn code_with_challenge(app: &TestApp) -> (String, PkceCodeVerifier, PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (_, other_verifier) = PkceCodeChallenge::new_random_sha256();
    let code = app
        .obtain_code(&app.authorize_url(&[
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]))
        .await;
    (code, verifier, other_verifier)
}

/// `Authorization: Basic` for `client_secret_basic` (RFC 6749 §2.3.1: form-encoded first).
pub fn basic(client_id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", encode(client_id), encode(secret));
    format!("Basic {}", STANDARD.encode(pair))
}

/// The status of `GET /me` with `access_token`.
pub async fn me_status(app: &TestApp, access_token: &str) -> u16 {
    reqwest::Client::new()
        .get(app.url("/me"))
        .bearer_auth(access_token)
        .fetch()
        .await
        .status()
        .as_u16()
}

/// `n` codes for Alice from one login (each login costs an argon2 hash).
pub async fn obtain_codes(app: &TestApp, authorize_url: &str, n: usize) -> Vec<String> {
    let client = app.browser();
    let (email, password) = app.alice();
    assert_eq!(app.login(&client, email, password).await.status(), 303);
    let mut codes = Vec::new();
    for _ in 0..n {
        let res = client.get(authorize_url).fetch().await;
        assert_eq!(res.status(), 200, "consent page expected");
        let page = res.text().await.unwrap();
        let res = app
            .submit_consent(&client, &page, "accept", Some(&app.demo.sites[0].cloud_id))
            .await;
        assert_eq!(res.status(), 303);
        codes.push(query_param(&location(&res), "code").expect("a code"));
    }
    codes
}

/// Another confidential app (owned by Bob) with the demo app's callback URL, so only the
/// client differs; returns its client id and secret.
pub async fn other_confidential_app(app: &TestApp) -> (String, String) {
    let created = app
        .core
        .create_app(NewApp {
            owner_account_id: app.demo.users[1].account_id.clone(),
            name: "Other App".into(),
            description: "Another confidential client.".into(),
            avatar_url: None,
            callback_urls: vec![app.app().callback_url.clone()],
            scopes: vec!["read:jira-work".into()],
            distribution: Distribution::Sharing,
            client_type: ClientType::Confidential,
        })
        .await
        .unwrap();
    (created.app.client_id, created.client_secret.unwrap())
}

fn scopes_of(answer: &Answer) -> Vec<String> {
    let mut scopes: Vec<String> = answer.body["scope"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .map(str::to_owned)
        .collect();
    scopes.sort();
    scopes
}

#[tokio::test]
async fn code_exchange_succeeds_when_the_body_is_json_or_a_form_and_the_client_uses_basic_or_the_body()
 {
    let app = TestApp::sqlite().await;
    let demo = app.app().clone();
    let codes = obtain_codes(&app, &app.authorize_url(&[]), 4).await;
    let http = reqwest::Client::new();
    let url = app.url("/oauth/token");

    // JSON, credentials in the body (the reference's examples).
    let res = http
        .post(&url)
        .json(&json!({
            "grant_type": "authorization_code",
            "client_id": demo.client_id,
            "client_secret": demo.client_secret,
            "code": codes[0],
            "redirect_uri": demo.callback_url,
        }))
        .fetch()
        .await;
    let json_body = Answer::of(res).await;
    let access = json_body.assert_tokens();
    assert_eq!(
        scopes_of(&json_body),
        vec!["offline_access", "read:jira-work", "read:me"]
    );
    assert_eq!(me_status(&app, &access).await, 200);

    // JSON, HTTP Basic.
    let res = http
        .post(&url)
        .header("authorization", basic(&demo.client_id, &demo.client_secret))
        .json(&json!({
            "grant_type": "authorization_code",
            "code": codes[1],
            "redirect_uri": demo.callback_url,
        }))
        .fetch()
        .await;
    Answer::of(res).await.assert_tokens();

    // Form, credentials in the body.
    redeem(&app, &codes[2]).await.assert_tokens();

    // Form, HTTP Basic.
    let params = with(
        &code_params(&app, &codes[3]),
        &[("client_id", ""), ("client_secret", "")],
    );
    let res = http
        .post(&url)
        .header("authorization", basic(&demo.client_id, &demo.client_secret))
        .body(form_body(&params))
        .header("content-type", "application/x-www-form-urlencoded")
        .fetch()
        .await;
    let access = Answer::of(res).await.assert_tokens();
    assert_eq!(me_status(&app, &access).await, 200);
}

#[tokio::test]
async fn code_exchange_fails_with_invalid_request_when_basic_and_body_credentials_are_both_sent() {
    let app = TestApp::sqlite().await;
    let demo = app.app().clone();
    let code = app.demo_code().await;
    let res = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .header("authorization", basic(&demo.client_id, &demo.client_secret))
        .form(&code_params(&app, &code))
        .fetch()
        .await;
    Answer::of(res).await.assert_error(400, "invalid_request");
    // The refused request spent nothing.
    redeem(&app, &code).await.assert_tokens();
}

#[tokio::test]
async fn client_authentication_fails_with_401_invalid_client_when_the_secret_is_wrong() {
    let app = TestApp::sqlite().await;
    let demo = app.app().clone();
    let code = app.demo_code().await;

    let in_body = redeem_with(&app, &code, &[("client_secret", "wrong-secret")]).await;
    in_body.assert_error(401, "invalid_client");

    let params = with(
        &code_params(&app, &code),
        &[("client_id", ""), ("client_secret", "")],
    );
    let res = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .header("authorization", basic(&demo.client_id, "wrong-secret"))
        .form(&params)
        .fetch()
        .await;
    Answer::of(res).await.assert_error(401, "invalid_client");

    // A confidential client that sends no secret at all is not authenticated either.
    let no_secret = redeem_with(&app, &code, &[("client_secret", "")]).await;
    no_secret.assert_error(401, "invalid_client");

    redeem(&app, &code).await.assert_tokens();
}

#[tokio::test]
async fn unknown_client_gets_the_same_answer_as_a_wrong_secret() {
    let app = TestApp::sqlite().await;
    let code = app.demo_code().await;
    let wrong_secret = redeem_with(&app, &code, &[("client_secret", "wrong-secret")]).await;
    let unknown = redeem_with(
        &app,
        &code,
        &[
            ("client_id", "no-such-client-0123456789abcdef"),
            ("client_secret", "wrong-secret"),
        ],
    )
    .await;
    unknown.assert_error(401, "invalid_client");
    wrong_secret.assert_error(401, "invalid_client");
    assert_eq!(unknown.body, wrong_secret.body);
    assert_eq!(
        unknown.header("www-authenticate"),
        wrong_secret.header("www-authenticate")
    );
}

/// Security checklist P4 and C3: a bad verifier is refused without spending the code.
#[tokio::test]
async fn pkce_code_fails_with_invalid_grant_when_the_verifier_is_wrong_or_missing_and_stays_redeemable()
 {
    let app = TestApp::sqlite().await;
    let (code, verifier, other_verifier) = code_with_challenge(&app).await;

    redeem_with(&app, &code, &[("code_verifier", other_verifier.secret())])
        .await
        .assert_error(400, "invalid_grant");
    redeem(&app, &code).await.assert_error(400, "invalid_grant");

    let access = redeem_with(&app, &code, &[("code_verifier", verifier.secret())])
        .await
        .assert_tokens();
    assert_eq!(me_status(&app, &access).await, 200);
}

/// Security checklist P5: a verifier for a code issued without a challenge is a downgrade.
#[tokio::test]
async fn code_without_challenge_fails_with_invalid_grant_when_a_verifier_is_sent() {
    let app = TestApp::sqlite().await;
    let (_, verifier) = PkceCodeChallenge::new_random_sha256();
    let code = app.demo_code().await;
    redeem_with(&app, &code, &[("code_verifier", verifier.secret())])
        .await
        .assert_error(400, "invalid_grant");
    redeem(&app, &code).await.assert_tokens();
}

/// Security checklist C3: a replay with a wrong verifier must not revoke the honest
/// client's tokens (that would be a denial of service); a valid replay does (C2).
#[tokio::test]
async fn code_replay_with_a_wrong_verifier_fails_without_revoking_the_first_tokens() {
    let app = TestApp::sqlite().await;
    let (code, verifier, other_verifier) = code_with_challenge(&app).await;
    let access = redeem_with(&app, &code, &[("code_verifier", verifier.secret())])
        .await
        .assert_tokens();

    redeem_with(&app, &code, &[("code_verifier", other_verifier.secret())])
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(
        me_status(&app, &access).await,
        200,
        "an invalid replay revokes nothing"
    );

    redeem_with(&app, &code, &[("code_verifier", verifier.secret())])
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(
        me_status(&app, &access).await,
        401,
        "a valid replay revokes"
    );
}

/// Security checklist R7.
#[tokio::test]
async fn code_exchange_fails_with_invalid_grant_when_redirect_uri_differs_or_is_missing() {
    let app = TestApp::sqlite().await;
    let code = app.demo_code().await;
    for other in [
        "https://app.example.test/callback/",
        "https://app.example.test/other",
        "",
    ] {
        redeem_with(&app, &code, &[("redirect_uri", other)])
            .await
            .assert_error(400, "invalid_grant");
    }
    redeem(&app, &code).await.assert_tokens();
}

/// Security checklist C4: a code lives 10 minutes.
#[tokio::test]
async fn code_exchange_fails_with_invalid_grant_when_the_code_expired() {
    let app = TestApp::sqlite().await;
    let codes = obtain_codes(&app, &app.authorize_url(&[]), 2).await;
    app.clock
        .advance(time::Duration::minutes(10) - time::Duration::seconds(1));
    redeem(&app, &codes[0]).await.assert_tokens();
    app.clock.advance(time::Duration::seconds(2));
    redeem(&app, &codes[1])
        .await
        .assert_error(400, "invalid_grant");
}

/// Security checklist C5: a code is bound to the client it was issued to.
#[tokio::test]
async fn code_exchange_fails_with_invalid_grant_when_another_client_redeems_it() {
    let app = TestApp::sqlite().await;
    let (other_id, other_secret) = other_confidential_app(&app).await;
    let code = app.demo_code().await;
    redeem_with(
        &app,
        &code,
        &[
            ("client_id", other_id.as_str()),
            ("client_secret", other_secret.as_str()),
        ],
    )
    .await
    .assert_error(400, "invalid_grant");
    redeem(&app, &code).await.assert_tokens();
}

/// Security checklist A9: no resource-owner password grant.
#[tokio::test]
async fn password_grant_fails_with_unsupported_grant_type() {
    let app = TestApp::sqlite().await;
    let demo = app.app().clone();
    let (email, password) = app.alice();
    let params: Vec<(String, String)> = [
        ("grant_type", "password"),
        ("username", email),
        ("password", password),
        ("scope", "read:me"),
        ("client_id", demo.client_id.as_str()),
        ("client_secret", demo.client_secret.as_str()),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    post_form(&app, &params)
        .await
        .assert_error(400, "unsupported_grant_type");
}

/// Security checklist T1.
#[tokio::test]
async fn token_endpoint_answers_405_when_the_method_is_get() {
    let app = TestApp::sqlite().await;
    let code = app.demo_code().await;
    let res = reqwest::Client::new()
        .get(app.url("/oauth/token"))
        .query(&code_params(&app, &code))
        .fetch()
        .await;
    assert_eq!(res.status(), 405);
    redeem(&app, &code).await.assert_tokens();
}

/// Security checklist C6: exactly one of many simultaneous redemptions wins.
async fn parallel_redemptions(app: TestApp) {
    let code = app.demo_code().await;
    let params = code_params(&app, &code);
    let http = reqwest::Client::new();
    let url = app.url("/oauth/token");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (http, url, params) = (http.clone(), url.clone(), params.clone());
        tasks.spawn(async move {
            let res = http.post(url).form(&params).fetch().await;
            Answer::of(res).await
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.unwrap());
    }
    let (won, lost): (Vec<&Answer>, Vec<&Answer>) = answers.iter().partition(|a| a.status == 200);
    assert_eq!(won.len(), 1, "exactly one success: {answers:?}");
    won[0].assert_tokens();
    for answer in lost {
        answer.assert_error(400, "invalid_grant");
    }
}

crate::on_both_backends!(
    parallel_redemptions_of_one_code_succeed_exactly_once,
    super::parallel_redemptions
);
