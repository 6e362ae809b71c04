//! The whole 3LO flow driven by an independent client library (the `oauth2` crate, PKCE
//! on): login and consent forms over HTTP with a cookie jar, code → token →
//! accessible-resources → /me, and the access token verified against the published JWKS.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse, TokenUrl,
};

use crate::support::{Fetch, TestApp, get_json, location, query_param};

/// The scopes a token response says were granted (for both the oauth2 and the OIDC client).
pub fn granted_scopes(token: &impl TokenResponse) -> Vec<String> {
    token
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// oauth2's HTTP client, backed by reqwest (the crate's own reqwest feature is off to keep
/// a second reqwest out of the build).
pub async fn send(request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (parts, body) = request.into_parts();
    let mut req = client
        .request(parts.method, parts.uri.to_string())
        .body(body);
    for (name, value) in &parts.headers {
        req = req.header(name, value);
    }
    let res = req.send().await?;
    let mut builder = http::Response::builder().status(res.status());
    for (name, value) in res.headers() {
        builder = builder.header(name, value);
    }
    let bytes = res.bytes().await?;
    Ok(builder.body(bytes.to_vec()).unwrap_or_default())
}

/// The demo app as an oauth2-crate client of the test server.
fn oauth_client(
    app: &TestApp,
) -> BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet> {
    let demo_app = app.app();
    BasicClient::new(ClientId::new(demo_app.client_id.clone()))
        .set_client_secret(ClientSecret::new(demo_app.client_secret.clone()))
        .set_auth_uri(AuthUrl::new(app.url("/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(demo_app.callback_url.clone()).unwrap())
}

async fn full_flow(app: TestApp) {
    let demo_app = app.app().clone();
    let client = oauth_client(&app);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, csrf_state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read:me".into()))
        .add_scope(Scope::new("read:jira-work".into()))
        .add_scope(Scope::new("read:confluence-content.all".into()))
        .add_extra_param("audience", app.demo.audience.clone())
        .add_extra_param("prompt", "consent")
        .set_pkce_challenge(challenge)
        .url();

    // The browser: log in, then consent on the first site (Acme: Jira and Confluence).
    let browser = app.browser();
    let page = app.consent_page(&browser, authorize_url.as_str()).await;
    assert!(
        page.contains("Demo Integration"),
        "consent page names the app"
    );
    let acme = app.demo.sites[0].clone();
    let res = app
        .submit_consent(&browser, &page, "accept", Some(&acme.cloud_id))
        .await;
    let status = res.status();
    let callback = location(&res);
    assert_eq!(
        status,
        303,
        "consent accepted: {}",
        res.text().await.unwrap()
    );
    assert!(callback.starts_with(&demo_app.callback_url), "{callback}");
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        Some(csrf_state.secret().as_str())
    );
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(app.base.as_str())
    );
    let code = query_param(&callback, "code").unwrap();

    // The app: exchange the code with the PKCE verifier.
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&send)
        .await
        .expect("code exchange succeeds");
    let access = token.access_token().secret().clone();
    let scopes = granted_scopes(&token);
    assert_eq!(
        scopes,
        vec!["read:me", "read:jira-work", "read:confluence-content.all"]
    );
    assert!(token.expires_in().is_some_and(|d| d.as_secs() == 3600));
    assert!(
        token.refresh_token().is_none(),
        "no offline_access, no refresh token"
    );

    let http = reqwest::Client::new();
    let resources: serde_json::Value = http
        .get(app.url("/oauth/token/accessible-resources"))
        .bearer_auth(&access)
        .fetch_json()
        .await;
    let entries = resources.as_array().unwrap();
    assert_eq!(
        entries.len(),
        2,
        "one entry per product of the chosen site: {resources}"
    );
    for entry in entries {
        assert_eq!(entry["id"], acme.cloud_id.as_str());
        assert_eq!(entry["name"], "Acme");
        assert_eq!(entry["url"], "https://acme.example.com");
        assert_eq!(entry["avatarUrl"], app.url("/assets/site-avatar.svg"));
    }
    let scope_lists: Vec<&serde_json::Value> = entries.iter().map(|e| &e["scopes"]).collect();
    assert!(
        scope_lists.contains(&&serde_json::json!(["read:jira-work"])),
        "{resources}"
    );
    assert!(
        scope_lists.contains(&&serde_json::json!(["read:confluence-content.all"])),
        "{resources}"
    );

    let me: serde_json::Value = http
        .get(app.url("/me"))
        .bearer_auth(&access)
        .fetch_json()
        .await;
    let alice = &app.demo.users[0];
    assert_eq!(me["account_id"], alice.account_id.as_str());
    assert_eq!(me["email"], alice.email.as_str());
    assert_eq!(me["name"], "Alice Admin");
    assert_eq!(me["account_status"], "active");
    assert_eq!(me["account_type"], "atlassian");
    for field in ["nickname", "zoneinfo", "locale"] {
        assert!(me[field].is_string(), "{field} in {me}");
    }
    assert!(me["extended_profile"].is_object(), "{me}");

    verify_against_jwks(&app, &access, &demo_app.client_id).await;
}

/// Verifies the token with an independent JWT library and the published key set.
async fn verify_against_jwks(app: &TestApp, token: &str, client_id: &str) {
    let jwks: jsonwebtoken::jwk::JwkSet = get_json(app.url("/.well-known/jwks.json")).await;
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.unwrap();
    let jwk = jwks.find(&kid).expect("the token's kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[app.demo.audience.as_str()]);
    validation.set_issuer(&[app.base.as_str()]);
    let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .expect("token verifies");
    let claims = data.claims;
    assert_eq!(claims["sub"], app.demo.users[0].account_id.as_str());
    assert_eq!(claims["client_id"], client_id);
    for claim in ["iat", "exp", "jti", "grant_id", "family_id", "generation"] {
        assert!(
            claims.get(claim).is_some(),
            "claim {claim} present: {claims}"
        );
    }
}

crate::on_both_backends!(code_flow_with_oauth2_client_and_pkce, super::full_flow);

/// `offline_access` through the oauth2 crate: the code exchange returns a refresh token,
/// and the crate's own refresh request rotates it.
async fn refresh_flow(app: TestApp) {
    let demo_app = app.app().clone();
    let client = oauth_client(&app);
    let (authorize_url, _state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("offline_access".into()))
        .add_scope(Scope::new("read:me".into()))
        .add_extra_param("audience", app.demo.audience.clone())
        .url();
    let code = app.obtain_code(authorize_url.as_str()).await;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .request_async(&send)
        .await
        .expect("code exchange succeeds");
    let first = token
        .refresh_token()
        .expect("offline_access gives a refresh token");
    let rotated = client
        .exchange_refresh_token(first)
        .request_async(&send)
        .await
        .expect("refresh succeeds");
    let second = rotated.refresh_token().expect("a rotated refresh token");
    assert_ne!(second.secret(), first.secret());
    verify_against_jwks(&app, rotated.access_token().secret(), &demo_app.client_id).await;
    // The crate surfaces the reference's refusal of a reused token.
    let reused = client
        .exchange_refresh_token(first)
        .request_async(&send)
        .await;
    assert!(
        reused.is_ok(),
        "inside the leeway the previous token still answers"
    );
    app.clock.advance(time::Duration::minutes(11));
    let err = client
        .exchange_refresh_token(first)
        .request_async(&send)
        .await
        .expect_err("reuse after the leeway is refused");
    assert!(
        err.to_string().contains("invalid_grant") || format!("{err:?}").contains("InvalidGrant"),
        "{err:?}"
    );
}

crate::on_both_backends!(refresh_flow_with_oauth2_client, super::refresh_flow);

/// The issuer's metadata advertises what the flow used (RFC 8414).
#[tokio::test]
async fn metadata_describes_the_server() {
    let app = TestApp::sqlite().await;
    let m: serde_json::Value = get_json(app.url("/.well-known/oauth-authorization-server")).await;
    assert_eq!(m["issuer"], app.base.as_str());
    assert_eq!(m["authorization_endpoint"], app.url("/authorize"));
    assert_eq!(m["token_endpoint"], app.url("/oauth/token"));
    assert_eq!(m["jwks_uri"], app.url("/.well-known/jwks.json"));
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    let grants = m["grant_types_supported"].as_array().unwrap();
    assert!(!grants.iter().any(|g| g == "implicit" || g == "password"));
}
