//! OpenID Connect (OIDC Core 1.0, Discovery 1.0) driven by an independent client, the
//! `openidconnect` crate: discovery, the code flow with PKCE and a nonce, the ID Token
//! verified against the published JWKS (issuer, audience, nonce, `at_hash`), the UserInfo
//! Endpoint, the refresh's ID Token, and the authorization request's `prompt`, `max_age`
//! and `login_hint`.

use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenVerifier,
    CoreProviderMetadata, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, LoginHint, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;
use time::Duration;

use crate::authorize::{assert_redirect_error, logged_in};
use crate::flow::{granted_scopes, send};
use crate::support::{Fetch, TestApp, get_json, hidden_field, location, login_form, query_param};
use crate::token::{Answer, redeem};

type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The demo app as a stock OIDC client that knows only trilo's issuer URL.
async fn discovered_client(app: &TestApp) -> OidcClient {
    let issuer = IssuerUrl::new(app.base.clone()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &send)
        .await
        .expect("discovery and the JWKS load");
    let demo = app.app();
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(demo.client_id.clone()),
        Some(ClientSecret::new(demo.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(demo.callback_url.clone()).unwrap())
}

/// An authentication request of the code flow with `scopes` besides `openid`, PKCE and a
/// nonce; `extra` adds parameters. Returns the URL, the nonce and the PKCE verifier.
fn authentication_request(
    app: &TestApp,
    client: &OidcClient,
    scopes: &[&str],
    extra: &[(&str, &str)],
) -> (String, Nonce, openidconnect::PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_extra_param("audience", app.demo.audience.clone())
        .set_pkce_challenge(challenge);
    for scope in scopes {
        request = request.add_scope(Scope::new((*scope).to_owned()));
    }
    for (name, value) in extra {
        request = request.add_extra_param(*name, *value);
    }
    let (url, _state, nonce) = request.url();
    (url.to_string(), nonce, verifier)
}

/// Accepts the consent page at `authorize_url` for the logged-in `browser` (first site);
/// returns the code.
async fn consent(app: &TestApp, browser: &reqwest::Client, authorize_url: &str) -> String {
    let res = browser.get(authorize_url).fetch().await;
    assert_eq!(
        res.status(),
        200,
        "consent page expected: {}",
        location(&res)
    );
    let page = res.text().await.unwrap();
    let res = app
        .submit_consent(browser, &page, "accept", Some(&app.demo.sites[0].cloud_id))
        .await;
    assert_eq!(res.status(), 303);
    query_param(&location(&res), "code").expect("the callback has a code")
}

async fn exchange(
    client: &OidcClient,
    code: String,
    verifier: openidconnect::PkceCodeVerifier,
) -> CoreTokenResponse {
    client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&send)
        .await
        .expect("code exchange succeeds")
}

/// Verifies the ID Token as a relying party must (OIDC Core §3.1.3.7: signature with a key
/// of the JWKS, `iss`, `aud`, `exp`, `nonce`) and its `at_hash` (§3.1.3.8) against the
/// access token; returns the claims as sent.
/// The verified claims of the ID Token in `token`, issued for `nonce`.
fn claims_of_response(client: &OidcClient, token: &CoreTokenResponse, nonce: &Nonce) -> Value {
    verify_id_token(
        client,
        token.id_token().unwrap(),
        token.access_token(),
        Some(nonce),
    )
}

fn verify_id_token(
    client: &OidcClient,
    id_token: &CoreIdToken,
    access_token: &AccessToken,
    nonce: Option<&Nonce>,
) -> Value {
    let verifier: CoreIdTokenVerifier<'_> = client.id_token_verifier();
    let claims = match nonce {
        Some(nonce) => id_token.claims(&verifier, nonce),
        None => id_token.claims(&verifier, |n: Option<&Nonce>| match n {
            None => Ok(()),
            Some(_) => Err("a refreshed ID Token carries no nonce".to_owned()),
        }),
    }
    .expect("the ID Token verifies");
    let expected = AccessTokenHash::from_token(
        access_token,
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected), "at_hash");
    jws_part(&id_token.to_string(), 1)
}

/// Part `index` of a compact JWS, decoded as JSON (0: the JOSE header, 1: the claims).
fn jws_part(token: &str, index: usize) -> Value {
    use base64::Engine;
    let b64 = token.split('.').nth(index).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn code_flow(app: TestApp) {
    let client = discovered_client(&app).await;
    let alice = app.demo.users[0].clone();
    let browser = logged_in(&app, 0).await;
    let login_time = app.core.now().unix_timestamp();
    // The consent comes later than the login: auth_time is the login's time.
    app.clock.advance(Duration::minutes(3));
    let (url, nonce, verifier) = authentication_request(&app, &client, &["profile", "email"], &[]);
    let code = consent(&app, &browser, &url).await;
    let token = exchange(&client, code, verifier).await;

    let scopes = granted_scopes(&token);
    assert_eq!(scopes, ["openid", "profile", "email"]);
    let id_token = token.id_token().expect("openid gives an ID Token");
    let claims = verify_id_token(&client, id_token, token.access_token(), Some(&nonce));
    assert_eq!(claims["iss"], app.base.as_str());
    assert_eq!(claims["sub"], alice.account_id.as_str());
    assert_eq!(claims["aud"], app.app().client_id.as_str());
    assert_eq!(claims["nonce"], nonce.secret().as_str());
    assert_eq!(claims["auth_time"], login_time);
    // `profile` and `email` release their claims in the ID Token too (§5.4).
    assert_eq!(claims["email"], alice.email.as_str());
    assert_eq!(claims["email_verified"], false);
    assert!(
        claims["name"].as_str().is_some_and(|n| !n.is_empty()),
        "{claims}"
    );
    let now = app.core.now().unix_timestamp();
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 3600);
    let header = jws_part(&id_token.to_string(), 0);
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["alg"], "ES256");
    let jwks: Value = get_json(app.url("/.well-known/jwks.json")).await;
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == header["kid"]),
        "the ID Token's kid is published: {header} {jwks}"
    );

    // The UserInfo Endpoint, as the client calls it, checking the subject.
    let subject = openidconnect::SubjectIdentifier::new(alice.account_id.clone());
    let info: CoreUserInfoClaims = client
        .user_info(token.access_token().clone(), Some(subject))
        .unwrap()
        .request_async(&send)
        .await
        .expect("userinfo answers");
    assert_eq!(info.email().map(|e| e.as_str()), Some(alice.email.as_str()));
    assert_eq!(info.email_verified(), Some(false));
    assert_eq!(
        info.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
        Some("Alice Admin")
    );
    assert_eq!(
        info.nickname()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str()),
        Some("alice")
    );
    assert_eq!(info.zoneinfo().map(|z| z.as_str()), Some("UTC"));
    assert_eq!(info.locale().map(|l| l.as_str()), Some("en-US"));

    // An ID Token is no access token (RFC 9068 §4, security checklist J3).
    let res = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(id_token.to_string())
        .fetch()
        .await;
    assert_eq!(res.status(), 401);
}

crate::on_both_backends!(
    code_flow_with_openidconnect_client_pkce_and_nonce,
    super::code_flow
);

/// OIDC Core §12.2: a refresh of a family with `openid` returns an ID Token with the same
/// iss, sub and aud, and no nonce.
async fn refresh_flow(app: TestApp) {
    let client = discovered_client(&app).await;
    let browser = logged_in(&app, 0).await;
    let (url, nonce, verifier) =
        authentication_request(&app, &client, &["email", "offline_access"], &[]);
    let code = consent(&app, &browser, &url).await;
    let first = exchange(&client, code, verifier).await;
    let first_claims = verify_id_token(
        &client,
        first.id_token().unwrap(),
        first.access_token(),
        Some(&nonce),
    );
    app.clock.advance(Duration::minutes(5));
    let refreshed = client
        .exchange_refresh_token(first.refresh_token().expect("offline_access"))
        .unwrap()
        .request_async(&send)
        .await
        .expect("refresh succeeds");
    let id_token = refreshed
        .id_token()
        .expect("openid: the refresh has an ID Token");
    let claims = verify_id_token(&client, id_token, refreshed.access_token(), None);
    for claim in ["iss", "sub", "aud"] {
        assert_eq!(claims[claim], first_claims[claim], "{claim}");
    }
    assert_eq!(claims["iat"], app.core.now().unix_timestamp());
    assert!(claims.get("nonce").is_none(), "{claims}");
}

crate::on_both_backends!(refresh_with_openid_returns_an_id_token, super::refresh_flow);

/// No ID Token without `openid`, in the code exchange and in a refresh.
#[tokio::test]
async fn id_token_only_when_openid_was_granted() {
    let app = TestApp::sqlite().await;
    let plain = app
        .obtain_code(&app.authorize_url(&[("scope", "read:me offline_access")]))
        .await;
    let answer = redeem(&app, &plain).await;
    answer.assert_tokens();
    assert!(answer.body.get("id_token").is_none(), "{:?}", answer.body);
    let refresh_token = answer.body["refresh_token"].as_str().unwrap().to_owned();
    let refreshed = crate::token::post_form(
        &app,
        &[
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), refresh_token),
            ("client_id".to_owned(), app.app().client_id.clone()),
            ("client_secret".to_owned(), app.app().client_secret.clone()),
        ],
    )
    .await;
    refreshed.assert_tokens();
    assert!(
        refreshed.body.get("id_token").is_none(),
        "{:?}",
        refreshed.body
    );

    let openid = app
        .obtain_code(&app.authorize_url(&[("scope", "openid read:me")]))
        .await;
    let answer = redeem(&app, &openid).await;
    answer.assert_tokens();
    let id_token = answer.body["id_token"].as_str().expect("an id_token");
    let claims = jws_part(id_token, 1);
    assert!(claims.get("nonce").is_none(), "no nonce was sent: {claims}");
    assert!(claims["auth_time"].is_i64(), "{claims}");
}

/// The discovery document lists what is served, and what it lists answers.
#[tokio::test]
async fn discovery_lists_only_what_is_served() {
    let app = TestApp::sqlite().await;
    let m: Value = get_json(app.url("/.well-known/openid-configuration")).await;
    assert_eq!(m["issuer"], app.base.as_str());
    assert_eq!(m["userinfo_endpoint"], app.url("/userinfo"));
    assert_eq!(m["jwks_uri"], app.url("/.well-known/jwks.json"));
    assert_eq!(
        m["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256"])
    );
    assert_eq!(m["subject_types_supported"], serde_json::json!(["public"]));
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(m["response_modes_supported"], serde_json::json!(["query"]));
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    // Discovery §3 defaults request_uri_parameter_supported to true: it must say false.
    assert_eq!(m["request_uri_parameter_supported"], false);
    for absent in [
        "request_parameter_supported",
        "claims_parameter_supported",
        "registration_endpoint",
        "end_session_endpoint",
        "check_session_iframe",
    ] {
        assert!(m.get(absent).is_none_or(|v| v == false), "{absent}: {m}");
    }
    let scopes = m["scopes_supported"].as_array().unwrap();
    for scope in ["openid", "profile", "email", "offline_access"] {
        assert!(scopes.iter().any(|s| s == scope), "{scope}: {m}");
    }
    let claims = m["claims_supported"].as_array().unwrap();
    let expected = "sub iss aud exp iat auth_time nonce at_hash \
                    name nickname picture zoneinfo locale email email_verified";
    for claim in expected.split_whitespace() {
        assert!(claims.iter().any(|c| c == claim), "{claim}: {m}");
    }
    // Every endpoint it names is there (a bearer endpoint asks for a token, it is no 404).
    let http = reqwest::Client::new();
    let userinfo = http
        .get(m["userinfo_endpoint"].as_str().unwrap())
        .fetch()
        .await;
    assert_eq!(userinfo.status(), 401);
    for endpoint in [
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        let res = http
            .post(m[endpoint].as_str().unwrap())
            .form(&[("x", "y")])
            .fetch()
            .await;
        // A client error about the request (no client was named), never 404 or 405.
        assert!([400, 401].contains(&res.status().as_u16()), "{endpoint}");
    }
    let jwks = http.get(m["jwks_uri"].as_str().unwrap()).fetch().await;
    assert_eq!(jwks.status(), 200);
    // The same document at the RFC 8414 address.
    let oauth: Value = get_json(app.url("/.well-known/oauth-authorization-server")).await;
    assert_eq!(oauth, m);
}

/// The access token of a code flow for Alice with `scope`.
async fn access_token_for(app: &TestApp, scope: &str) -> String {
    let code = app
        .obtain_code(&app.authorize_url(&[("scope", scope)]))
        .await;
    redeem(app, &code).await.assert_tokens()
}

/// OIDC Core §5.3: GET and POST with a bearer token carrying `openid`; 401 `invalid_token`
/// for a bad token, 403 `insufficient_scope` without `openid` (§5.3.3, RFC 6750 §3.1).
#[tokio::test]
async fn userinfo_answers_get_and_post_and_refuses_bad_tokens_and_missing_openid() {
    let app = TestApp::sqlite().await;
    let http = reqwest::Client::new();
    let url = app.url("/userinfo");
    let alice = &app.demo.users[0];

    let openid = access_token_for(&app, "openid email").await;
    for res in [
        http.get(&url).bearer_auth(&openid).fetch().await,
        http.post(&url).bearer_auth(&openid).fetch().await,
    ] {
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers()["content-type"].to_str().unwrap(),
            "application/json"
        );
        assert_eq!(res.headers()["cache-control"].to_str().unwrap(), "no-store");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "sub": alice.account_id,
                "email": alice.email,
                "email_verified": false,
            }),
            "only what openid and email release"
        );
    }

    let challenge = |res: &reqwest::Response| {
        res.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    for bad in ["not-a-token", "a.b.c", &format!("{openid}x")] {
        let res = http.get(&url).bearer_auth(bad).fetch().await;
        assert_eq!(res.status(), 401, "{bad}");
        let c = challenge(&res);
        assert!(
            c.starts_with("Bearer ") && c.contains("error=\"invalid_token\""),
            "{c}"
        );
    }
    let res = http.post(&url).fetch().await;
    assert_eq!(res.status(), 401);
    let c = challenge(&res);
    assert!(c.starts_with("Bearer") && !c.contains("error="), "{c}");

    let no_openid = access_token_for(&app, "read:me profile").await;
    let res = http.get(&url).bearer_auth(&no_openid).fetch().await;
    assert_eq!(res.status(), 403);
    let c = challenge(&res);
    assert!(
        c.contains("error=\"insufficient_scope\"") && c.contains("scope=\"openid\""),
        "{c}"
    );

    // A revoked grant's token is refused like any invalid token.
    let grants = app
        .core
        .store()
        .grants_of_account(&alice.account_id)
        .await
        .unwrap();
    let grant = grants.iter().find(|g| g.revoked_at.is_none()).unwrap();
    app.core
        .store()
        .revoke_grant(&grant.grant_id, app.core.now())
        .await
        .unwrap();
    app.core.access_changed().await;
    let res = http.get(&url).bearer_auth(&openid).fetch().await;
    assert_eq!(res.status(), 401);
    assert!(challenge(&res).contains("invalid_token"));
}

/// OIDC Core §3.1.2.6: `prompt=none` never shows a page; without a session it answers
/// `login_required`, with one but no grant yet `consent_required`, and a
/// session older than `max_age` is `login_required` too; each with `state` and `iss`.
#[tokio::test]
async fn prompt_none_redirects_login_required_or_consent_required() {
    let app = TestApp::sqlite().await;
    let callback = app.app().callback_url.clone();
    let url = app.authorize_url(&[("scope", "openid profile"), ("prompt", "none")]);
    let res = app.browser().get(&url).fetch().await;
    assert_redirect_error(&app, &res, 302, &callback, "login_required", Some("st-123"));

    let browser = logged_in(&app, 0).await;
    let res = browser.get(&url).fetch().await;
    assert_redirect_error(
        &app,
        &res,
        302,
        &callback,
        "consent_required",
        Some("st-123"),
    );

    app.clock.advance(Duration::minutes(10));
    let old = app.authorize_url(&[
        ("scope", "openid profile"),
        ("prompt", "none"),
        ("max_age", "300"),
    ]);
    let res = browser.get(&old).fetch().await;
    assert_redirect_error(&app, &res, 302, &callback, "login_required", Some("st-123"));

    let both = app.authorize_url(&[("scope", "openid"), ("prompt", "none login")]);
    let res = browser.get(&both).fetch().await;
    assert_redirect_error(
        &app,
        &res,
        302,
        &callback,
        "invalid_request",
        Some("st-123"),
    );
}

/// Follows a redirect to the login page and logs Alice in there; returns where the login
/// sends the browser back to.
async fn log_in_at(app: &TestApp, browser: &reqwest::Client, login_location: &str) -> String {
    assert!(login_location.starts_with("/login?"), "{login_location}");
    let page = browser.get(app.url(login_location)).fetch_text().await;
    let (email, password) = app.alice();
    let res = browser
        .post(app.url("/login"))
        .form(&login_form(
            email,
            password,
            &hidden_field(&page, "csrf_token").unwrap(),
            &hidden_field(&page, "return_to").unwrap(),
        ))
        .fetch()
        .await;
    assert_eq!(res.status(), 303);
    location(&res)
}

/// `prompt=login`: a logged-in user logs in again; the request comes back without
/// `prompt=login` (no loop), and the ID Token's `auth_time` is the new login's.
#[tokio::test]
async fn prompt_login_forces_a_fresh_login_even_with_a_session() {
    let app = TestApp::sqlite().await;
    let client = discovered_client(&app).await;
    let browser = logged_in(&app, 0).await;
    app.clock.advance(Duration::minutes(5));
    let relogin_time = app.core.now().unix_timestamp();
    let (url, nonce, verifier) =
        authentication_request(&app, &client, &["profile"], &[("prompt", "login consent")]);
    let res = browser.get(&url).fetch().await;
    assert_eq!(res.status(), 303, "to the login page although logged in");
    let back = log_in_at(&app, &browser, &location(&res)).await;
    assert!(back.starts_with("/authorize?"), "{back}");
    assert_eq!(query_param(&back, "prompt").as_deref(), Some("consent"));
    assert_eq!(
        query_param(&back, "nonce").as_deref(),
        Some(nonce.secret().as_str())
    );
    let code = consent(&app, &browser, &app.url(&back)).await;
    let token = exchange(&client, code, verifier).await;
    let claims = claims_of_response(&client, &token, &nonce);
    assert_eq!(claims["auth_time"], relogin_time);
}

/// `max_age`: a login older than it is repeated, a recent enough one is not; `auth_time`
/// is always the session's login time.
#[tokio::test]
async fn max_age_forces_a_login_only_when_the_session_is_older() {
    let app = TestApp::sqlite().await;
    let client = discovered_client(&app).await;
    let browser = logged_in(&app, 0).await;
    let first_login = app.core.now().unix_timestamp();
    app.clock.advance(Duration::minutes(10));

    // Recent enough: consent at once, auth_time is the first login.
    let (url, nonce, verifier) =
        authentication_request(&app, &client, &["email"], &[("max_age", "3600")]);
    let code = consent(&app, &browser, &url).await;
    let token = exchange(&client, code, verifier).await;
    let claims = claims_of_response(&client, &token, &nonce);
    assert_eq!(claims["auth_time"], first_login);

    // Too old: the login page, then back without max_age, and a new auth_time.
    let (url, nonce, verifier) =
        authentication_request(&app, &client, &["email"], &[("max_age", "300")]);
    let res = browser.get(&url).fetch().await;
    assert_eq!(res.status(), 303);
    let back = log_in_at(&app, &browser, &location(&res)).await;
    assert_eq!(query_param(&back, "max_age"), None, "{back}");
    // The grant holds `openid email` already and no consent is prompted: no page.
    let res = browser.get(app.url(&back)).fetch().await;
    assert_eq!(res.status(), 302, "{}", location(&res));
    let code = query_param(&location(&res), "code").expect("a code at once");
    let token = exchange(&client, code, verifier).await;
    let claims = claims_of_response(&client, &token, &nonce);
    assert_eq!(claims["auth_time"], app.core.now().unix_timestamp());
    assert!(claims["auth_time"].as_i64().unwrap() >= first_login + 600);
}

/// `login_hint` fills the login page's email field.
#[tokio::test]
async fn login_hint_prefills_the_login_page() {
    let app = TestApp::sqlite().await;
    let client = discovered_client(&app).await;
    let (url, _nonce, _verifier) = authentication_request(&app, &client, &[], &[]);
    let hinted = url::Url::parse(&url)
        .map(|mut u| {
            u.query_pairs_mut()
                .append_pair("login_hint", "alice@example.com");
            u.to_string()
        })
        .unwrap();
    let browser = app.browser();
    let res = browser.get(&hinted).fetch().await;
    assert_eq!(res.status(), 303);
    let to_login = location(&res);
    assert_eq!(
        query_param(&to_login, "login_hint").as_deref(),
        Some("alice@example.com")
    );
    let page = browser.get(app.url(&to_login)).fetch_text().await;
    assert!(
        page.contains(r#"value="alice@example.com""#),
        "the email field is filled"
    );
    // The crate's own setter sends the same parameter.
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (via_crate, _, _) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_extra_param("audience", app.demo.audience.clone())
        .set_pkce_challenge(challenge)
        .set_login_hint(LoginHint::new("bob@example.com".into()))
        .add_prompt(CoreAuthPrompt::Login)
        .url();
    let res = browser.get(via_crate.as_str()).fetch().await;
    let to_login = location(&res);
    assert_eq!(
        query_param(&to_login, "login_hint").as_deref(),
        Some("bob@example.com"),
        "{to_login}"
    );
}

/// The token answer is the RFC 6749 §5.1 shape plus `id_token` (no other change).
#[tokio::test]
async fn token_answer_adds_only_id_token_for_openid() {
    let app = TestApp::sqlite().await;
    let code = app
        .obtain_code(&app.authorize_url(&[("scope", "openid email"), ("nonce", "n-0S6_WzA2Mj")]))
        .await;
    let answer: Answer = redeem(&app, &code).await;
    answer.assert_tokens();
    let mut names: Vec<&str> = answer
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "access_token",
            "expires_in",
            "id_token",
            "scope",
            "token_type"
        ]
    );
    assert_eq!(answer.body["scope"], "openid email");
}
