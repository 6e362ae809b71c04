//! `GET /metrics` (issue 16): the Prometheus text format with requests by route template,
//! token and gateway counters and the outbox depth; nothing that names a token, account
//! or site; refused to addresses not allowed.

use crate::gateway::{alice_read_token_on_acme, jira_get};
use crate::support::{Backend, TestApp};

async fn scrape(app: &TestApp) -> (u16, String) {
    let res = reqwest::get(app.url("/metrics")).await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

/// The value of the sample whose line starts with `prefix`.
fn sample(text: &str, prefix: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix}: {text}"))
}

#[tokio::test]
async fn metrics_count_requests_tokens_and_gateway_decisions() {
    let app = TestApp::sqlite().await;
    let (token, acme) = alice_read_token_on_acme(&app).await;
    for _ in 0..3 {
        let ok = jira_get(&app, &token, &acme, "/rest/api/3/myself").await;
        assert_eq!(ok.status, 200);
    }
    let refused = jira_get(&app, &token, &acme, "/rest/api/3/no-such-thing").await;
    assert_eq!(refused.status, 404);

    let (status, text) = scrape(&app).await;
    assert_eq!(status, 200);
    assert_eq!(sample(&text, "trilo_code_exchanges_total "), 1);
    assert_eq!(
        sample(&text, "trilo_gateway_decisions_total{decision=\"admitted\""),
        3
    );
    assert_eq!(
        sample(
            &text,
            "trilo_gateway_decisions_total{decision=\"refused\",reason=\"unknown_operation\"}"
        ),
        1
    );
    assert!(sample(&text, "trilo_gateway_cache_total{result=\"hit\"}") >= 2);
    assert_eq!(
        sample(
            &text,
            "trilo_http_requests_total{route=\"/oauth/token\",method=\"POST\",status=\"200\"}"
        ),
        1
    );
    assert!(
        sample(
            &text,
            "trilo_http_request_duration_seconds_count{route=\"/ex/{*rest}\"}"
        ) >= 4
    );
    assert_eq!(
        sample(&text, "trilo_webhook_deliveries{status=\"dead\"}"),
        0
    );
    // Templates, not paths: no site, account, client or token appears.
    for secret in [
        acme.as_str(),
        token.as_str(),
        &app.demo.users[0].account_id,
        &app.app().client_id,
    ] {
        assert!(!text.contains(secret), "{secret} appears in the metrics");
    }
}

#[tokio::test]
async fn metrics_are_refused_to_addresses_not_allowed() {
    let app = TestApp::spawn(Backend::Sqlite, |config| {
        config.http.metrics_allow = vec!["192.0.2.1".into()];
    })
    .await
    .unwrap();
    let (status, text) = scrape(&app).await;
    assert_eq!(status, 404);
    assert!(!text.contains("trilo_"), "{text}");
}

/// The store's grouped commits: SQLite's group commit carries the code redemption and the
/// refreshes; PostgreSQL's refresh batches carry the refreshes.
async fn store_commits_are_timed_and_sized(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, |_| {}).await else {
        return;
    };
    let first = crate::refresh::first_tokens(&app).await;
    let mut token = crate::refresh::refresh_token_of(&first);
    for _ in 0..3 {
        token = crate::refresh::refresh_token_of(&crate::refresh::refresh(&app, &token).await);
    }
    let (_, text) = scrape(&app).await;
    let groups = sample(&text, "trilo_store_commit_group_size_count ");
    assert!(groups >= 3, "{text}");
    assert_eq!(
        sample(&text, "trilo_store_commit_duration_seconds_count "),
        groups
    );
    assert_eq!(
        sample(
            &text,
            "trilo_store_commit_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        groups
    );
    // Each of these groups carried one write: the requests came one after the other.
    assert_eq!(
        sample(&text, "trilo_store_commit_group_size_bucket{le=\"1\"}"),
        groups
    );
}

#[tokio::test]
async fn store_commits_are_timed_and_sized_sqlite() {
    store_commits_are_timed_and_sized(Backend::Sqlite).await;
}

#[tokio::test]
async fn store_commits_are_timed_and_sized_postgres() {
    store_commits_are_timed_and_sized(Backend::Postgres).await;
}
