//! Failure limits on password logins and client authentication (security checklist
//! H-T2, H-T3): 429 with `Retry-After` after too many failures, per account and address.

use crate::support::{Fetch, TestApp, hidden_field, login_form};

async fn try_login(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    try_login_at(&app.base, client, email, password).await
}

/// A password login at the instance serving `base`.
async fn try_login_at(
    base: &str,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let page = client.get(format!("{base}/login")).fetch_text().await;
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    client
        .post(format!("{base}/login"))
        .form(&login_form(email, password, &csrf, "/"))
        .fetch()
        .await
}

#[tokio::test]
async fn login_is_limited_after_five_failures_for_one_account() {
    let app = TestApp::sqlite().await;
    let client = app.browser();
    let (alice, password) = app.alice();
    for _ in 0..5 {
        assert_eq!(
            try_login(&app, &client, alice, "wrong-password")
                .await
                .status(),
            401
        );
    }
    let limited = try_login(&app, &client, alice, password).await;
    assert_eq!(
        limited.status(),
        429,
        "even the right password waits once limited"
    );
    assert!(limited.headers().get("retry-after").is_some());
    // Another account from the same address is not locked by Alice's failures.
    let bob = &app.demo.users[1];
    assert_eq!(
        try_login(&app, &client, &bob.email, &bob.password)
            .await
            .status(),
        303
    );
    // The window passes: Alice can log in again.
    app.clock.advance(time::Duration::minutes(16));
    assert_eq!(
        try_login(&app, &client, alice, password).await.status(),
        303
    );
}

#[tokio::test]
async fn token_endpoint_limits_failed_client_authentication() {
    let app = TestApp::sqlite().await;
    let client_id = app.app().client_id.clone();
    let http = reqwest::Client::new();
    let attempt = |secret: &'static str| {
        let http = http.clone();
        let url = app.url("/oauth/token");
        let client_id = client_id.clone();
        async move {
            http.post(url)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", "x"),
                    ("client_id", &client_id),
                    ("client_secret", secret),
                ])
                .fetch()
                .await
        }
    };
    for _ in 0..20 {
        assert_eq!(attempt("wrong").await.status(), 401);
    }
    let limited = attempt("wrong").await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().get("retry-after").is_some());
    assert_eq!(limited.headers().get("cache-control").unwrap(), "no-store");
}

/// One address trying many accounts is slowed too (issue 16), after the configured number
/// of failures whatever the emails; the limits are configuration.
#[tokio::test]
async fn one_address_spraying_many_accounts_is_limited() {
    let app = TestApp::spawn(crate::support::Backend::Sqlite, |config| {
        config.limits.login_failures_per_address = 3;
    })
    .await
    .unwrap();
    let client = app.browser();
    for i in 0..3 {
        let res = try_login(
            &app,
            &client,
            &format!("nobody{i}@example.com"),
            "wrong-password",
        )
        .await;
        assert_eq!(res.status(), 401, "attempt {i}");
    }
    let res = try_login(&app, &client, "somebody-else@example.com", "wrong-password").await;
    assert_eq!(res.status(), 429);
    let retry_after: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 15 * 60, "{retry_after}");
    // Even the right password waits: the address is limited, not the account.
    let (email, password) = app.alice();
    assert_eq!(
        try_login(&app, &client, email, password).await.status(),
        429
    );
}

/// Several instances on one PostgreSQL database share the login counters: failures spread
/// over two instances add up, so a load balancer does not multiply the allowance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failures_add_up_across_instances() {
    // Windows are aligned to multiples of their length: a day-long one makes it unlikely
    // that this test straddles two (the other instance's clock is the real one).
    let day = |c: &mut trilo_server::config::Config| c.limits.login_window = "1d".into();
    let Some(app) = TestApp::spawn(crate::support::Backend::Postgres, day).await else {
        return;
    };
    let env = [("TRILO__LIMITS__LOGIN_WINDOW", "1d")];
    let other = crate::process::ServerProcess::start_with_env(&app, &env).await;
    let (alice, password) = app.alice();
    let client = app.browser();
    for base in [&app.base, &other.base, &app.base, &other.base, &app.base] {
        let status = try_login_at(base, &client, alice, "wrong-password")
            .await
            .status();
        assert_eq!(status, 401, "at {base}");
    }
    // Three failures here and two there: five for the account, at either instance.
    for base in [&app.base, &other.base] {
        let limited = try_login_at(base, &client, alice, password).await;
        assert_eq!(limited.status(), 429, "at {base}");
        let retry_after: i64 = limited.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    }
}
