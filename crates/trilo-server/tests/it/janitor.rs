//! The janitor (issue 16): each kind of row goes once nothing can use it (and not before),
//! in batches, and what is live stays.

use time::Duration;

use crate::refresh::{family_of, first_tokens, refresh, refresh_token_of, stored_as_before};
use crate::support::{Backend, Fetch, TestApp};

async fn revoke_refresh_token(app: &TestApp, token: &str) {
    let demo = app.app();
    let status = reqwest::Client::new()
        .post(app.url("/oauth/revoke"))
        .form(&[
            ("token", token),
            ("client_id", &demo.client_id),
            ("client_secret", &demo.client_secret),
        ])
        .fetch()
        .await
        .status();
    assert_eq!(status, 200);
}

async fn stored(app: &TestApp, refresh_token: &str) -> bool {
    app.stored_refresh_token(refresh_token).await.is_some()
}

/// The sweep's counts by kind, all of them, so an unexpected removal fails too.
async fn sweep(app: &TestApp) -> [u64; 8] {
    app.core.sweep_once().await.unwrap().0
}

async fn the_janitor_removes_only_what_nothing_can_use(backend: Backend) {
    // One row per batch: every kind goes through the batch loop.
    let Some(app) = TestApp::spawn(backend, |c| c.janitor.batch = 1).await else {
        return;
    };
    // Family a's tokens have rows of their own, as before migration 0020 (the janitor's
    // dead tokens); family b keeps its tokens in its row.
    let a = first_tokens(&app).await;
    let family_a = family_of(&a);
    let a0 = format!("rt1_{family_a}_0_{}", trilo_core::crypto::random_token());
    stored_as_before(&app, &family_a, &a0, false).await;
    let a1 = refresh_token_of(&refresh(&app, &a0).await);
    let b0 = refresh_token_of(&first_tokens(&app).await);
    revoke_refresh_token(&app, &b0).await;
    let _unused_code = app.demo_code().await;
    assert_eq!(sweep(&app).await, [0; 8], "nothing is removable yet");

    // Codes: kept one lifetime past their expiry (10 + 10 minutes), so a late replay still
    // revokes; then all three go (two redeemed, one never).
    app.clock.advance(Duration::minutes(19));
    assert_eq!(sweep(&app).await, [0; 8]);
    app.clock.advance(Duration::minutes(2));
    assert_eq!(sweep(&app).await, [3, 0, 0, 0, 0, 0, 0, 0]);

    // Sessions, after their 12 hours: one per login above.
    app.clock.advance(Duration::hours(12));
    assert_eq!(sweep(&app).await, [0, 3, 0, 0, 0, 0, 0, 0]);
    // The live family still refreshes.
    let a2 = refresh_token_of(&refresh(&app, &a1).await);

    // The revoked family, after the 30-day retention, with its token.
    app.clock.advance(Duration::days(30));
    assert!(stored(&app, &b0).await);
    assert_eq!(sweep(&app).await, [0, 0, 0, 1, 0, 0, 0, 0]);
    assert!(!stored(&app, &b0).await);

    // Used refresh tokens stay while they could have been live (a replay is then still
    // reuse): a0 and a1 go after their 90 days of inactivity, a2 (issued later) stays.
    // (The clock is 30 days, 12 hours and 21 minutes on; the sweep allows the 60 s JWT
    // leeway.)
    app.clock
        .advance(Duration::days(60) - Duration::hours(12) - Duration::minutes(21));
    assert_eq!(sweep(&app).await, [0; 8]);
    app.clock.advance(Duration::minutes(2));
    assert_eq!(sweep(&app).await, [0, 0, 2, 0, 0, 0, 0, 0]);
    assert!(!stored(&app, &a0).await && !stored(&app, &a1).await);
    assert!(stored(&app, &a2).await);

    // The family itself, 30 days after its absolute lifetime (365 days).
    app.clock.advance(Duration::days(365 + 30 - 90));
    let swept = sweep(&app).await;
    assert_eq!(
        swept,
        [0, 0, 1, 0, 1, 0, 0, 0],
        "a2, dead by now, then its family"
    );

    let mut metrics = String::new();
    app.core.metrics.render(&mut metrics);
    for line in [
        "trilo_janitor_removed_total{kind=\"expired_codes\"} 3",
        "trilo_janitor_removed_total{kind=\"expired_sessions\"} 3",
        "trilo_janitor_removed_total{kind=\"dead_refresh_tokens\"} 3",
        "trilo_janitor_removed_total{kind=\"revoked_families\"} 1",
        "trilo_janitor_removed_total{kind=\"expired_families\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[tokio::test]
async fn the_janitor_removes_only_what_nothing_can_use_sqlite() {
    the_janitor_removes_only_what_nothing_can_use(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_janitor_removes_only_what_nothing_can_use_postgres() {
    the_janitor_removes_only_what_nothing_can_use(Backend::Postgres).await;
}
