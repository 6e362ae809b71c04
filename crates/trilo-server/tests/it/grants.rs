//! Grants govern live tokens (issue 14, DESIGN §2 "Grant"): a re-consent replaces the
//! grant's scopes, and every live access and refresh token reaches only what the grant
//! holds now, narrowed by what the token was issued with: at the gateway,
//! accessible-resources, introspection and the refresh grant, at once on this instance and
//! within a second on another.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::gateway::call;
use crate::on_both_backends;
use crate::refresh::{assert_refresh_refused, claims_of, refresh, refresh_token_of};
use crate::support::{Fetch, TestApp, accessible_resources};
use crate::token::{Answer, redeem};

const WIDE: &str = "read:me read:jira-user read:jira-work offline_access";
const NARROW: &str = "read:me read:jira-user offline_access";
const PROJECTS: &str = "/rest/api/3/project/search";
const MYSELF: &str = "/rest/api/3/myself";

/// Alice consents to `scope` on the first site (a consent page, `prompt=consent`) and the
/// code is redeemed.
async fn consent_to(app: &TestApp, scope: &str) -> Answer {
    let code = app
        .obtain_code(&app.authorize_url(&[("scope", scope)]))
        .await;
    let answer = redeem(app, &code).await;
    answer.assert_tokens();
    answer
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    let demo = app.app();
    let res = reqwest::Client::new()
        .post(app.url("/oauth/introspect"))
        .basic_auth(&demo.client_id, Some(&demo.client_secret))
        .form(&[("token", token)])
        .fetch()
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The scopes accessible-resources lists for the first site.
async fn resource_scopes(app: &TestApp, token: &str) -> Vec<String> {
    let sites = accessible_resources(app, token).await;
    let acme = &app.demo.sites[0].cloud_id;
    let mut scopes: Vec<String> = sites
        .iter()
        .filter(|entry| entry["id"] == acme.as_str())
        .flat_map(|entry| entry["scopes"].as_array().unwrap().clone())
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    scopes.sort();
    scopes.dedup();
    scopes
}

fn sorted(scope: &str) -> Vec<String> {
    let mut v: Vec<String> = scope.split(' ').map(str::to_owned).collect();
    v.sort();
    v
}

on_both_backends!(
    a_narrower_re_consent_narrows_every_live_token_at_once,
    super::a_narrower_re_consent_narrows_every_live_token_at_once_body
);
async fn a_narrower_re_consent_narrows_every_live_token_at_once_body(app: TestApp) {
    let first = consent_to(&app, WIDE).await;
    let access = first.assert_tokens();
    let refresh_token = refresh_token_of(&first);
    let acme = app.demo.sites[0].cloud_id.clone();
    // Warm every cache the answers could come from.
    assert_eq!(
        call(&app, "GET", &access, "jira", &acme, PROJECTS)
            .await
            .status,
        200
    );
    assert!(
        resource_scopes(&app, &access)
            .await
            .contains(&"read:jira-work".to_owned())
    );
    assert_eq!(
        sorted(introspect(&app, &access).await["scope"].as_str().unwrap()),
        sorted(WIDE)
    );

    // The user consents again, to less: the grant's scopes are replaced.
    let narrow = consent_to(&app, NARROW).await;
    assert_eq!(
        sorted(narrow.body["scope"].as_str().unwrap()),
        sorted(NARROW)
    );

    // The first access token lost read:jira-work everywhere, and kept the rest.
    let refused = call(&app, "GET", &access, "jira", &acme, PROJECTS).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(
        call(&app, "GET", &access, "jira", &acme, MYSELF)
            .await
            .status,
        200
    );
    assert!(
        !resource_scopes(&app, &access)
            .await
            .contains(&"read:jira-work".to_owned())
    );
    let described = introspect(&app, &access).await;
    assert_eq!(described["active"], true);
    assert_eq!(sorted(described["scope"].as_str().unwrap()), sorted(NARROW));
    // So did the first family's refresh token, and what it issues.
    let described = introspect(&app, &refresh_token).await;
    assert_eq!(sorted(described["scope"].as_str().unwrap()), sorted(NARROW));
    let refreshed = refresh(&app, &refresh_token).await;
    let renewed = refreshed.assert_tokens();
    assert_eq!(
        sorted(refreshed.body["scope"].as_str().unwrap()),
        sorted(NARROW)
    );
    assert_eq!(
        sorted(claims_of(&renewed)["scope"].as_str().unwrap()),
        sorted(NARROW)
    );
    // Asking a refresh for a scope the grant no longer holds is refused as beyond it.
    let beyond = crate::token::post_form(
        &app,
        &crate::refresh::refresh_params(
            &app,
            &refresh_token_of(&refreshed),
            &[("scope", "read:jira-work")],
        ),
    )
    .await;
    beyond.assert_error(400, "invalid_scope");

    // A wider consent again: the old token gets back what it was issued with, no more.
    consent_to(&app, &format!("{WIDE} write:jira-work")).await;
    assert_eq!(
        call(&app, "GET", &access, "jira", &acme, PROJECTS)
            .await
            .status,
        200
    );
    assert_eq!(
        sorted(introspect(&app, &access).await["scope"].as_str().unwrap()),
        sorted(WIDE)
    );

    // A grant without offline_access refreshes nothing, though the family is not revoked.
    consent_to(&app, "read:me read:jira-user").await;
    assert_refresh_refused(&refresh(&app, &refresh_token_of(&refreshed)).await);
    assert_eq!(
        introspect(&app, &refresh_token_of(&refreshed)).await["active"],
        false
    );
    assert_eq!(
        call(&app, "GET", &access, "jira", &acme, MYSELF)
            .await
            .status,
        200
    );
}

/// Two `trilo serve` processes and this test's own instance on one PostgreSQL database:
/// a narrower consent given through one instance narrows a token at another within a
/// second, with the gateway's caches warm and living the longest they may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrower_re_consent_reaches_another_instance_within_a_second() {
    let Some(app) = TestApp::postgres().await else {
        return;
    };
    let env = [("TRILO__GATEWAY__CACHE_TTL", "1s")];
    let other = crate::process::ServerProcess::start_with_env(&app, &env).await;
    let access = consent_to(&app, WIDE).await.assert_tokens();
    let acme = app.demo.sites[0].cloud_id.clone();
    let url = format!("{}/ex/jira/{acme}{PROJECTS}", other.base);
    let http = reqwest::Client::new();
    let status = async || {
        http.get(&url)
            .bearer_auth(&access)
            .fetch()
            .await
            .status()
            .as_u16()
    };
    assert_eq!(status().await, 200);

    consent_to(&app, NARROW).await;
    let narrowed_at = Instant::now();
    loop {
        let answer = status().await;
        if answer == 403 {
            break;
        }
        assert_eq!(answer, 200);
        assert!(
            narrowed_at.elapsed() < Duration::from_millis(500),
            "still admitted half a second after the narrower consent: the announcement was missed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
