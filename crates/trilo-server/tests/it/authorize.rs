//! `GET /authorize`, the consent POST and the login page (DESIGN §3 "Authorize", security
//! checklist §1.1, §1.3, §1.4): untrusted requests stop on an error page, trusted ones
//! redirect errors with `state` and `iss`, CSRF and escaping on the pages, single-use codes.
//!
//! Also holds the browser-side helpers the other modules share.

use std::time::Duration;

use oauth2::PkceCodeChallenge;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trilo_core::model::{AuditQuery, ClientType, Distribution};
use trilo_core::services::accounts::NewAccount;
use trilo_core::services::admin::NewApp;

use crate::support::{
    Fetch, TestApp, hidden_field, location, login_form, query_param, unescape_html,
};
use crate::token::{me_status, redeem};

/// No grant, no installation and no `grant.*` audit event exist: no consent went through.
pub async fn assert_nothing_consented(app: &TestApp) {
    let store = &app.core.store();
    for user in &app.demo.users {
        let grants = store.grants_of_account(&user.account_id).await.unwrap();
        assert!(grants.is_empty(), "no grant expected: {grants:?}");
    }
    for created in store.list_apps(None).await.unwrap() {
        let installs = store.installations_of_app(&created.app_id).await.unwrap();
        assert!(
            installs.is_empty(),
            "no installation expected: {installs:?}"
        );
    }
    let events = store
        .audit_events(&AuditQuery {
            action_prefix: Some("grant.".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(events.is_empty(), "no grant event expected: {events:?}");
}

/// Asserts an authorization error page: 400, HTML, and no `Location` (checklist R3).
pub async fn assert_error_page(res: reqwest::Response, context: &str) -> String {
    assert_eq!(res.status(), 400, "{context}");
    assert!(
        res.headers().get("location").is_none(),
        "no redirect: {context}"
    );
    let content_type = res.headers().get("content-type").unwrap().to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{context}");
    res.text().await.unwrap()
}

/// Asserts an error redirect to `callback` with `error`, the given `state`, `iss` equal to
/// the issuer (RFC 9207) and no code.
#[track_caller]
pub fn assert_redirect_error(
    app: &TestApp,
    res: &reqwest::Response,
    status: u16,
    callback: &str,
    error: &str,
    state: Option<&str>,
) {
    let loc = location(res);
    assert_eq!(res.status(), status, "{loc}");
    assert!(loc.starts_with(&format!("{callback}?")), "{loc}");
    assert_eq!(query_param(&loc, "error").as_deref(), Some(error), "{loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), state, "{loc}");
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some(app.base.as_str()),
        "{loc}"
    );
    assert_eq!(query_param(&loc, "code"), None, "{loc}");
}

/// The query string of an authorization URL (what the consent form's `request` carries).
pub fn query_of(url: &str) -> String {
    url.split_once('?').unwrap().1.to_owned()
}

/// A logged-in browser for a demo user (0 = Alice, 1 = Bob).
pub async fn logged_in(app: &TestApp, user: usize) -> reqwest::Client {
    let client = app.browser();
    let u = &app.demo.users[user];
    assert_eq!(
        app.login(&client, &u.email, &u.password).await.status(),
        303
    );
    client
}

/// The value `name` is set to by a `Set-Cookie` header of `res`.
pub fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next()?.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A client without a cookie jar that does not follow redirects.
pub fn no_jar_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs Alice in without a cookie jar; returns the `Cookie` header value of her session.
pub async fn alice_session_cookie(app: &TestApp) -> String {
    let http = no_jar_client();
    let res = http.get(app.url("/login")).fetch().await;
    let login_csrf = set_cookie(&res, "trilo_login_csrf").expect("login csrf cookie");
    let page = res.text().await.unwrap();
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    let (email, password) = app.alice();
    let res = http
        .post(app.url("/login"))
        .header("cookie", format!("trilo_login_csrf={login_csrf}"))
        .form(&login_form(email, password, &csrf, "/"))
        .fetch()
        .await;
    assert_eq!(res.status(), 303);
    format!(
        "trilo_session={}",
        set_cookie(&res, "trilo_session").expect("a session cookie")
    )
}

/// A response read off a raw HTTP/1.1 connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// `GET target` written byte for byte (no client re-encodes it), with an optional cookie.
pub async fn raw_get(app: &TestApp, target: &[u8], cookie: Option<&str>) -> RawResponse {
    let host = app.base.strip_prefix("http://").unwrap();
    let mut request = b"GET ".to_vec();
    request.extend_from_slice(target);
    request.extend_from_slice(
        format!(" HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n").as_bytes(),
    );
    if let Some(cookie) = cookie {
        request.extend_from_slice(format!("Cookie: {cookie}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream.write_all(&request).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
        .await
        .expect("the server closes the connection")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    RawResponse {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// Creates an app; returns its client id.
async fn create_app(
    app: &TestApp,
    owner: &str,
    name: &str,
    callback: &str,
    distribution: Distribution,
    client_type: ClientType,
) -> String {
    app.core
        .create_app(NewApp {
            owner_account_id: owner.to_owned(),
            name: name.into(),
            description: "A test app.".into(),
            avatar_url: None,
            callback_urls: vec![callback.to_owned()],
            scopes: vec!["read:jira-work".into()],
            distribution,
            client_type,
        })
        .await
        .unwrap()
        .app
        .client_id
}

/// Security checklist R3.
#[tokio::test]
async fn authorize_shows_an_error_page_when_the_client_is_unknown_or_missing() {
    let app = TestApp::sqlite().await;
    let browser = logged_in(&app, 0).await;
    for client_id in ["no-such-client", ""] {
        let res = browser
            .get(app.authorize_url(&[("client_id", client_id)]))
            .fetch()
            .await;
        assert_error_page(res, client_id).await;
    }
    assert_nothing_consented(&app).await;
}

/// Security checklist R1, R3: exact string comparison; a variant never redirects, neither
/// at `/authorize` nor when smuggled into the consent form's `request`.
#[tokio::test]
async fn authorize_shows_an_error_page_when_redirect_uri_is_not_an_exact_match() {
    let app = TestApp::sqlite().await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let (browser, page) = app.alice_at_consent().await;
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    for variant in [
        "https://app.example.test/callback/",
        "https://APP.example.test/callback",
        "HTTPS://app.example.test/callback",
        "https://app.example.test/callback?x=1",
        "https://app.example.test/callback#f",
        "https://app.example.test/callback/../callback",
        "https://app.example.test/CALLBACK",
        "https://app.example.test%2Fcallback",
        "https://app.example.test/callback@evil.test",
        "https://app.example.test.evil.test/callback",
        "http://app.example.test/callback",
        "https://app.example.test:443/callback",
        "https://app.example.test./callback",
    ] {
        let url = app.authorize_url(&[("redirect_uri", variant)]);
        let res = browser.get(&url).fetch().await;
        assert_error_page(res, variant).await;

        let res = browser
            .post(app.url("/authorize/consent"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("request", &query_of(&url)),
                ("decision", "accept"),
                ("cloud_id", &acme),
            ])
            .fetch()
            .await;
        assert_error_page(res, variant).await;
    }
    assert_nothing_consented(&app).await;
}

/// Parameters that replace or extend the demo authorization URL.
type Extra<'a> = &'a [(&'a str, &'a str)];

/// DESIGN §3: after the client and callback are trusted, errors go back to the app with
/// `error`, `state` (when sent) and `iss` (security checklist A6, A9).
#[tokio::test]
async fn authorize_redirects_the_error_when_a_trusted_client_sends_a_bad_request() {
    let app = TestApp::sqlite().await;
    let browser = logged_in(&app, 0).await;
    let callback = app.app().callback_url.clone();
    let cases: [(Extra, &str, Option<&str>); 7] = [
        (&[("state", "")], "invalid_request", None),
        (
            &[("response_type", "token")],
            "unsupported_response_type",
            Some("st-123"),
        ),
        (&[("response_type", "")], "invalid_request", Some("st-123")),
        (
            &[("scope", "read:me manage:jira-configuration")],
            "invalid_scope",
            Some("st-123"),
        ),
        (
            &[("scope", "read:jira-work READ:JIRA-WORK")],
            "invalid_scope",
            Some("st-123"),
        ),
        (
            &[("audience", "api.evil.test")],
            "invalid_request",
            Some("st-123"),
        ),
        (&[("audience", "")], "invalid_request", Some("st-123")),
    ];
    for (extra, error, state) in cases {
        let res = browser.get(app.authorize_url(extra)).fetch().await;
        assert_eq!(res.status(), 302, "{extra:?}");
        assert_redirect_error(&app, &res, 302, &callback, error, state);
    }
    // Logged out, the same request fails the same way before any login page.
    let res = app
        .browser()
        .get(app.authorize_url(&[("response_type", "token")]))
        .fetch()
        .await;
    assert_redirect_error(
        &app,
        &res,
        302,
        &callback,
        "unsupported_response_type",
        Some("st-123"),
    );
    assert_nothing_consented(&app).await;
}

/// Security checklist A1.
#[tokio::test]
async fn consent_post_is_forbidden_and_creates_nothing_when_the_csrf_token_is_not_this_sessions() {
    let app = TestApp::sqlite().await;
    let url = app.authorize_url(&[]);
    let alice = app.browser();
    let page = app.consent_page(&alice, &url).await;
    let bob = logged_in(&app, 1).await;
    let bob_page = bob.get(&url).fetch_text().await;
    let bob_csrf = hidden_field(&bob_page, "csrf_token").unwrap();
    let own_csrf = hidden_field(&page, "csrf_token").unwrap();
    assert_ne!(bob_csrf, own_csrf);
    let request = hidden_field(&page, "request").unwrap();
    let acme = app.demo.sites[0].cloud_id.clone();

    let forged_tokens: [Vec<&str>; 4] = [
        vec![],
        vec!["forged-csrf-token-forged-csrf-token-forged00"],
        vec![bob_csrf.as_str()],
        vec![bob_csrf.as_str(), own_csrf.as_str()],
    ];
    for tokens in &forged_tokens {
        let mut form = vec![
            ("request", request.as_str()),
            ("decision", "accept"),
            ("cloud_id", acme.as_str()),
        ];
        form.extend(tokens.iter().map(|t| ("csrf_token", *t)));
        let res = alice
            .post(app.url("/authorize/consent"))
            .form(&form)
            .fetch()
            .await;
        assert_eq!(res.status(), 403, "{tokens:?}");
        assert!(res.headers().get("location").is_none(), "{tokens:?}");
    }
    assert_nothing_consented(&app).await;

    // The same form with this session's token goes through.
    let res = app
        .submit_consent(&alice, &page, "accept", Some(&acme))
        .await;
    assert_eq!(res.status(), 303);
    assert!(query_param(&location(&res), "code").is_some());
}

/// Security checklist R8.
#[tokio::test]
async fn deny_redirects_with_access_denied_state_and_iss() {
    let app = TestApp::sqlite().await;
    let (browser, page) = app.alice_at_consent().await;
    let res = app.submit_consent(&browser, &page, "deny", None).await;
    assert_redirect_error(
        &app,
        &res,
        303,
        &app.app().callback_url,
        "access_denied",
        Some("st-123"),
    );
    assert_nothing_consented(&app).await;
}

/// Security checklist C1, C2: a second redemption fails and revokes the first tokens.
async fn replayed_code(app: TestApp) {
    let code = app.demo_code().await;
    let access = redeem(&app, &code).await.assert_tokens();
    assert_eq!(me_status(&app, &access).await, 200);

    redeem(&app, &code).await.assert_error(400, "invalid_grant");
    assert_eq!(me_status(&app, &access).await, 401, "first tokens revoked");
    let events = app
        .core
        .store()
        .audit_events(&AuditQuery {
            action_prefix: Some("code.replayed".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    // Still refused afterwards.
    redeem(&app, &code).await.assert_error(400, "invalid_grant");
}

crate::on_both_backends!(
    replayed_code_fails_and_revokes_the_first_tokens,
    super::replayed_code
);

/// DESIGN §3: a private app can be authorized only by its owner.
#[tokio::test]
async fn private_app_redirects_unauthorized_client_when_someone_else_authorizes_it() {
    let app = TestApp::sqlite().await;
    let callback = "https://private.example.test/cb";
    let bob_id = app.demo.users[1].account_id.clone();
    let client_id = create_app(
        &app,
        &bob_id,
        "Bob's Private Tool",
        callback,
        Distribution::Private,
        ClientType::Confidential,
    )
    .await;
    let url = app.authorize_url(&[
        ("client_id", &client_id),
        ("redirect_uri", callback),
        ("scope", "read:jira-work"),
    ]);

    let res = logged_in(&app, 0).await.get(&url).fetch().await;
    assert_redirect_error(
        &app,
        &res,
        302,
        callback,
        "unauthorized_client",
        Some("st-123"),
    );
    assert_nothing_consented(&app).await;

    let bob = logged_in(&app, 1).await;
    assert_eq!(bob.get(&url).fetch().await.status(), 200, "the owner may");
}

/// Security checklist P2, P3.
#[tokio::test]
async fn public_client_redirects_invalid_request_when_pkce_s256_is_missing() {
    let app = TestApp::sqlite().await;
    let callback = "https://public.example.test/cb";
    let alice_id = app.demo.users[0].account_id.clone();
    let client_id = create_app(
        &app,
        &alice_id,
        "Public CLI",
        callback,
        Distribution::Sharing,
        ClientType::Public,
    )
    .await;
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let base: Vec<(&str, &str)> = vec![
        ("client_id", &client_id),
        ("redirect_uri", callback),
        ("scope", "read:jira-work"),
    ];
    let browser = logged_in(&app, 0).await;
    let plain: [(&str, &str); 2] = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "plain"),
    ];
    for extra in [&[][..], &plain[..]] {
        let params: Vec<(&str, &str)> = base.iter().chain(extra).copied().collect();
        let res = browser.get(app.authorize_url(&params)).fetch().await;
        assert_redirect_error(&app, &res, 302, callback, "invalid_request", Some("st-123"));
    }
    assert_nothing_consented(&app).await;

    let s256: Vec<(&str, &str)> = base
        .iter()
        .copied()
        .chain([
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .collect();
    let res = browser.get(app.authorize_url(&s256)).fetch().await;
    assert_eq!(res.status(), 200, "with S256 the consent page shows");
}

/// DESIGN §3: not logged in → login page, then back to the same request.
#[tokio::test]
async fn authorize_sends_a_logged_out_user_to_login_and_back_to_consent() {
    let app = TestApp::sqlite().await;
    let url = app.authorize_url(&[]);
    let query = query_of(&url);
    let browser = app.browser();
    let res = browser.get(&url).fetch().await;
    assert_eq!(res.status(), 303);
    let to_login = location(&res);
    assert!(to_login.starts_with("/login?return_to="), "{to_login}");
    let return_to = format!("/authorize?{query}");
    assert_eq!(
        query_param(&to_login, "return_to").as_deref(),
        Some(return_to.as_str())
    );

    let page = browser.get(app.url(&to_login)).fetch_text().await;
    assert_eq!(
        hidden_field(&page, "return_to").as_deref(),
        Some(return_to.as_str())
    );
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    let (email, password) = app.alice();
    let res = browser
        .post(app.url("/login"))
        .form(&login_form(email, password, &csrf, &return_to))
        .fetch()
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), return_to);

    let res = browser.get(app.url(&return_to)).fetch().await;
    assert_eq!(res.status(), 200);
    let consent = res.text().await.unwrap();
    assert!(consent.contains("Demo Integration"));
    assert_eq!(
        hidden_field(&consent, "request").as_deref(),
        Some(query.as_str())
    );
}

/// Security checklist A4: credential POSTs answer 303, never 307/308.
#[tokio::test]
async fn login_and_consent_posts_answer_303() {
    let app = TestApp::sqlite().await;
    let browser = app.browser();
    let (email, password) = app.alice();
    assert_eq!(app.login(&browser, email, password).await.status(), 303);
    let acme = app.demo.sites[0].cloud_id.clone();

    for decision in ["accept", "deny"] {
        let page = browser.get(app.authorize_url(&[])).fetch_text().await;
        let res = app
            .submit_consent(&browser, &page, decision, Some(&acme))
            .await;
        assert_eq!(res.status(), 303, "{decision}");
    }

    // An error found when the consent POST re-validates the request also answers 303.
    let page = browser.get(app.authorize_url(&[])).fetch_text().await;
    let bad_request = query_of(&app.authorize_url(&[("response_type", "token")]));
    let res = browser
        .post(app.url("/authorize/consent"))
        .form(&[
            (
                "csrf_token",
                hidden_field(&page, "csrf_token").unwrap().as_str(),
            ),
            ("request", &bad_request),
            ("decision", "accept"),
            ("cloud_id", &acme),
        ])
        .fetch()
        .await;
    assert_redirect_error(
        &app,
        &res,
        303,
        &app.app().callback_url,
        "unsupported_response_type",
        Some("st-123"),
    );
}

/// Security checklist A2, A3.
#[tokio::test]
async fn html_pages_forbid_framing_and_referrers() {
    let app = TestApp::sqlite().await;
    let browser = app.browser();
    let check = |what: &str, res: &reqwest::Response| {
        let h = res.headers();
        let csp = h
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp:?}");
        assert_eq!(h.get("x-frame-options").unwrap(), "DENY", "{what}");
        assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer", "{what}");
        assert!(
            h.get("content-type")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{what}"
        );
    };

    let res = browser.get(app.url("/login")).fetch().await;
    check("login page", &res);
    let res = browser
        .post(app.url("/login"))
        .form(&[("email", "x@example.com"), ("csrf_token", "forged")])
        .fetch()
        .await;
    assert_eq!(res.status(), 403);
    check("login refused", &res);

    let page_res = {
        let (email, password) = app.alice();
        assert_eq!(app.login(&browser, email, password).await.status(), 303);
        browser.get(app.authorize_url(&[])).fetch().await
    };
    assert_eq!(page_res.status(), 200);
    check("consent page", &page_res);
    let page = page_res.text().await.unwrap();
    let res = browser
        .get(app.authorize_url(&[("client_id", "no-such-client")]))
        .fetch()
        .await;
    assert_eq!(res.status(), 400);
    check("authorize error page", &res);
    let res = browser
        .post(app.url("/authorize/consent"))
        .form(&[
            ("csrf_token", "forged"),
            ("request", hidden_field(&page, "request").unwrap().as_str()),
            ("decision", "accept"),
        ])
        .fetch()
        .await;
    assert_eq!(res.status(), 403);
    check("consent refused", &res);
    // Redirects that carry a code must not leak it through Referer either.
    let res = app
        .submit_consent(&browser, &page, "accept", Some(&app.demo.sites[0].cloud_id))
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers().get("referrer-policy").unwrap(), "no-referrer");
}

/// Security checklist A11 and XSS: `state` with markup is echoed exactly, never rendered.
#[tokio::test]
async fn state_with_markup_is_escaped_on_the_consent_page_and_echoed_exactly() {
    let app = TestApp::sqlite().await;
    let cookie = alice_session_cookie(&app).await;
    let hostile = "\"><script>alert(1)</script>";
    // Sent unencoded on the wire: the HTTP parser may refuse the request target (400);
    // if it gets through, the markup must not reach the page unescaped.
    let raw_query = format!(
        "{}&state={hostile}",
        query_of(&app.authorize_url(&[("state", "")]))
    );
    let res = raw_get(
        &app,
        format!("/authorize?{raw_query}").as_bytes(),
        Some(&cookie),
    )
    .await;
    assert!(res.status == 400 || res.status == 200, "{res:?}");
    assert!(res.header("location").is_none(), "{res:?}");
    assert!(!res.body.contains("<script"), "markup rendered raw");
    if res.status == 200 {
        assert_eq!(
            hidden_field(&res.body, "request").as_deref(),
            Some(raw_query.as_str())
        );
    }

    // Percent-encoded, plus an ignored parameter spelled with character references: the
    // hidden `request` field must hold the query exactly, so every `&` is escaped too
    // (unescaped, `&quot;&gt;&lt;script&gt;` would turn into markup in the browser).
    let url = format!(
        "{}&x=&quot;&gt;&lt;script&gt;alert(3)&lt;/script&gt;",
        app.authorize_url(&[("state", hostile)])
    );
    let res = no_jar_client()
        .get(&url)
        .header("cookie", &cookie)
        .fetch()
        .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(!page.contains("<script"), "markup rendered raw");
    let query = query_of(&url);
    assert_eq!(
        hidden_field(&page, "request").as_deref(),
        Some(query.as_str())
    );

    // The consent POST echoes the state byte for byte.
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    let res = no_jar_client()
        .post(app.url("/authorize/consent"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("request", &query),
            ("decision", "accept"),
            ("cloud_id", &app.demo.sites[0].cloud_id),
        ])
        .fetch()
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        query_param(&location(&res), "state").as_deref(),
        Some(hostile)
    );

    // A 1,000-character state with `%`, `+`, `&`, `#` and Unicode round-trips (A11).
    let long: String = "a%+&#é✓ <>\"'".chars().cycle().take(1000).collect();
    let browser = app.browser();
    let page = app
        .consent_page(&browser, &app.authorize_url(&[("state", &long)]))
        .await;
    let res = app
        .submit_consent(&browser, &page, "accept", Some(&app.demo.sites[0].cloud_id))
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        query_param(&location(&res), "state").as_deref(),
        Some(long.as_str())
    );
}

/// An app name and developer name with markup render as text.
#[tokio::test]
async fn app_and_developer_names_with_markup_render_as_text() {
    let app = TestApp::sqlite().await;
    let developer = app
        .core
        .create_account(NewAccount {
            email: "mallory@example.com".into(),
            name: "Mallory <img src=x onerror=alert(2)>".into(),
            password: "mallory-password-123".into(),
            ..NewAccount::default()
        })
        .await
        .unwrap();
    let callback = "https://markup.example.test/cb";
    let name = "<script>alert(1)</script> & Co";
    let client_id = create_app(
        &app,
        &developer.account_id,
        name,
        callback,
        Distribution::Sharing,
        ClientType::Confidential,
    )
    .await;
    let url = app.authorize_url(&[
        ("client_id", &client_id),
        ("redirect_uri", callback),
        ("scope", "read:jira-work"),
    ]);
    let page = app.consent_page(&app.browser(), &url).await;
    assert!(!page.contains("<script"), "app name rendered raw");
    assert!(!page.contains("<img src=x"), "developer name rendered raw");
    assert!(
        unescape_html(&page).contains(&format!("{name} is requesting access")),
        "the name shows as text"
    );
    assert!(unescape_html(&page).contains("Mallory <img src=x onerror=alert(2)>"));
}

/// A failed login (a status and a page for wrong password and one for unknown email).
async fn failed_login(app: &TestApp, email: &str, password: &str) -> (u16, String) {
    let browser = app.browser();
    let page = browser.get(app.url("/login")).fetch_text().await;
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    let res = browser
        .post(app.url("/login"))
        .form(&login_form(email, password, &csrf, "/"))
        .fetch()
        .await;
    let status = res.status().as_u16();
    assert!(set_cookie(&res, "trilo_session").is_none(), "no session");
    let body = res.text().await.unwrap();
    // The fresh form token and the echoed address are the only parts allowed to differ.
    let fresh = hidden_field(&body, "csrf_token").unwrap_or_default();
    (status, body.replace(&fresh, "CSRF").replace(email, "EMAIL"))
}

/// No account enumeration through the login form.
#[tokio::test]
async fn login_fails_identically_when_the_email_is_unknown_or_the_password_wrong() {
    let app = TestApp::sqlite().await;
    let (alice, _) = app.alice();
    let wrong_password = failed_login(&app, alice, "not-alices-password").await;
    let unknown_email = failed_login(&app, "nobody@example.com", "not-alices-password").await;
    assert_eq!(wrong_password.0, 401);
    assert_eq!(wrong_password, unknown_email);
}

/// Security checklist A1: the login form's double-submit token.
#[tokio::test]
async fn login_post_is_forbidden_when_the_csrf_cookie_or_field_is_missing_or_differs() {
    let app = TestApp::sqlite().await;
    let (email, password) = app.alice();

    // Field, but no cookie (a cross-site form has no way to set it).
    let no_jar = no_jar_client();
    let page = no_jar.get(app.url("/login")).fetch_text().await;
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    let res = no_jar
        .post(app.url("/login"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", &csrf),
        ])
        .fetch()
        .await;
    assert_eq!(res.status(), 403);
    assert!(set_cookie(&res, "trilo_session").is_none());

    // Cookie, but no field; then the field of another browser's form.
    let browser = app.browser();
    browser.get(app.url("/login")).fetch().await;
    for form in [
        vec![("email", email), ("password", password)],
        vec![
            ("email", email),
            ("password", password),
            ("csrf_token", &csrf),
        ],
    ] {
        let res = browser.post(app.url("/login")).form(&form).fetch().await;
        assert_eq!(res.status(), 403);
        assert!(set_cookie(&res, "trilo_session").is_none());
    }
    let home = browser.get(app.url("/")).fetch().await;
    assert_eq!(location(&home), "/login", "still logged out");
}

/// The server refuses a site the consent page would not offer: blocked by its admin, or
/// one where the user is not a member. The page comes back (400) with an error; nothing is
/// granted or installed and nothing redirects.
#[tokio::test]
async fn consent_to_a_blocked_or_foreign_site_is_refused_and_creates_nothing() {
    let app = TestApp::sqlite().await;
    let globex = app.demo.sites[1].cloud_id.clone();
    app.core
        .set_user_installs(&globex, trilo_core::model::UserInstalls::Blocked)
        .await
        .unwrap();
    let (alice, page) = app.alice_at_consent().await;
    let stranger_site = uuid::Uuid::new_v4().to_string();
    for cloud_id in [Some(globex.as_str()), Some(stranger_site.as_str()), None] {
        let res = app.submit_consent(&alice, &page, "accept", cloud_id).await;
        let status = res.status();
        assert!(res.headers().get("location").is_none(), "{cloud_id:?}");
        let body = res.text().await.unwrap();
        assert_eq!(status, 400, "{cloud_id:?}: {body}");
        assert!(
            body.contains("Choose one of the sites listed"),
            "{cloud_id:?}: {body}"
        );
    }
    assert_nothing_consented(&app).await;
}

/// Malformed consent and login forms: another content type is 415, repeated fields and
/// undecodable bodies are 400; none of them changes anything.
#[tokio::test]
async fn malformed_consent_and_login_forms_are_refused_and_change_nothing() {
    let app = TestApp::sqlite().await;
    let (alice, page) = app.alice_at_consent().await;
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    let request = hidden_field(&page, "request").unwrap();
    let acme = app.demo.sites[0].cloud_id.clone();
    let json = alice
        .post(app.url("/authorize/consent"))
        .json(&serde_json::json!({"csrf_token": csrf, "request": request, "decision": "accept"}))
        .fetch()
        .await;
    assert_eq!(json.status(), 415);
    for repeated in ["decision", "cloud_id", "request"] {
        let mut form = vec![
            ("csrf_token", csrf.as_str()),
            ("request", request.as_str()),
            ("decision", "accept"),
            ("cloud_id", acme.as_str()),
        ];
        let value = form.iter().find(|(k, _)| *k == repeated).unwrap().1;
        form.push((repeated, value));
        let res = alice
            .post(app.url("/authorize/consent"))
            .form(&form)
            .fetch()
            .await;
        assert_eq!(res.status(), 400, "repeated {repeated}");
        assert!(res.headers().get("location").is_none());
    }
    let undecodable = alice
        .post(app.url("/authorize/consent"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={csrf}&decision=%FF%FE"))
        .fetch()
        .await;
    assert_eq!(undecodable.status(), 400);
    assert_nothing_consented(&app).await;

    // Login: the same rules, and no session is started.
    let fresh = app.browser();
    let login = fresh.get(app.url("/login")).fetch_text().await;
    let login_csrf = hidden_field(&login, "csrf_token").unwrap();
    let (email, password) = app.alice();
    let json = fresh
        .post(app.url("/login"))
        .json(&serde_json::json!({"email": email, "password": password, "csrf_token": login_csrf}))
        .fetch()
        .await;
    assert_eq!(json.status(), 415);
    let twice = fresh
        .post(app.url("/login"))
        .form(&[
            ("email", email),
            ("email", "bob@example.com"),
            ("password", password),
            ("csrf_token", login_csrf.as_str()),
        ])
        .fetch()
        .await;
    assert!(twice.status().is_client_error(), "{}", twice.status());
    let still_anonymous = fresh.get(app.authorize_url(&[])).fetch().await;
    assert!(
        location(&still_anonymous).starts_with("/login"),
        "no session: sent to the login page"
    );
}

/// The consent page shows an app's avatar only from a host the operator allows
/// (`avatar_hosts`); any other is replaced by the app's initial, so a developer cannot
/// make users' browsers fetch from a host of their choosing (issue 16).
#[tokio::test]
async fn the_consent_page_shows_avatars_only_from_allowed_hosts() {
    for (allowed, shown) in [(vec![], false), (vec!["cdn.example.test".to_owned()], true)] {
        let app = TestApp::spawn(crate::support::Backend::Sqlite, |config| {
            config.avatar_hosts = allowed.clone();
        })
        .await
        .unwrap();
        let alice = app.demo.users[0].account_id.clone();
        let created = app
            .core
            .create_app(NewApp {
                owner_account_id: alice,
                name: "Avatar App".into(),
                description: "Has an avatar.".into(),
                avatar_url: Some("https://cdn.example.test/tracker.png".into()),
                callback_urls: vec!["https://avatar.example.test/cb".into()],
                scopes: vec!["read:jira-work".into()],
                distribution: Distribution::Sharing,
                client_type: ClientType::Confidential,
            })
            .await
            .unwrap();
        let url = app.authorize_url(&[
            ("client_id", &created.app.client_id),
            ("redirect_uri", "https://avatar.example.test/cb"),
            ("scope", "read:jira-work"),
        ]);
        let page = app.consent_page(&app.browser(), &url).await;
        assert_eq!(
            page.contains("cdn.example.test/tracker.png"),
            shown,
            "{allowed:?}"
        );
        assert_eq!(page.contains("avatar placeholder"), !shown, "{allowed:?}");
    }
}
