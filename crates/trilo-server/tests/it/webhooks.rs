//! Webhooks end to end (DESIGN §3 "Webhooks", issue 13): a gateway write to the sample
//! Jira reaches a subscribed app's real HTTP receiver, signed and with `triggeredByUser`;
//! the delivery rule keeps it from apps without a covering grant, uninstalled apps and
//! blocked containers; policy events list at most the cap; receivers that fail, stall,
//! redirect or answer 10 MB are retried within bounds; products' bad posts get 4xx.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use trilo_core::crypto::hmac_sha256;
use trilo_core::model::DeliveryStatus;
use trilo_server::config::Config;

use crate::gateway::{READ_SCOPES, access_token, another_app, demo_client};
use crate::support::{Backend, Fetch, TestApp};
use crate::token::Answer;

/// What a receiver saw of one request.
#[derive(Clone, Debug)]
pub struct Received {
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Accept = 0,
    Fail = 1,
    Redirect = 2,
    Huge = 3,
    Stall = 4,
}

/// A webhook receiver on 127.0.0.1:0 that records what it gets.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    seen: Arc<Mutex<Vec<Received>>>,
    mode: Arc<AtomicU8>,
    redirect_hits: Arc<AtomicUsize>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

#[derive(Clone)]
struct ReceiverState {
    seen: Arc<Mutex<Vec<Received>>>,
    mode: Arc<AtomicU8>,
    redirect_hits: Arc<AtomicUsize>,
}

async fn receive(
    State(state): State<ReceiverState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.seen.lock().unwrap().push(Received {
        query,
        headers,
        body,
    });
    match state.mode.load(Ordering::SeqCst) {
        1 => (StatusCode::INTERNAL_SERVER_ERROR, "down for maintenance").into_response(),
        2 => (
            StatusCode::TEMPORARY_REDIRECT,
            [("location", "/elsewhere")],
            "",
        )
            .into_response(),
        3 => (StatusCode::OK, vec![b'x'; 10 * 1024 * 1024]).into_response(),
        4 => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            StatusCode::NO_CONTENT.into_response()
        }
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn elsewhere(State(state): State<ReceiverState>) -> StatusCode {
    state.redirect_hits.fetch_add(1, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}

impl Receiver {
    pub async fn start() -> Receiver {
        Self::on(TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    /// A receiver on a listener the caller bound (to come back on a known port).
    pub fn on(listener: TcpListener) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let state = ReceiverState {
            seen: Arc::default(),
            mode: Arc::default(),
            redirect_hits: Arc::default(),
        };
        let router = axum::Router::new()
            .route("/hook", post(receive))
            .route("/elsewhere", post(elsewhere))
            // Policy events list up to 200,000 objects: several MB.
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            seen: state.seen,
            mode: state.mode,
            redirect_hits: state.redirect_hits,
            task: Arc::new(task),
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived (at most `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} of {n} requests in {within:?}",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until requests carrying `n` distinct event ids arrived.
    pub async fn wait_for_events(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let seen = self.seen();
            let distinct: HashSet<&str> =
                seen.iter().map(|r| r.header("x-trilo-event-id")).collect();
            if distinct.len() >= n {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} of {n} events in {within:?}",
                distinct.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Test settings: loopback receivers allowed, quick polling, short retries.
pub fn quick_webhooks(config: &mut Config) {
    config.webhooks.allow_http_loopback = true;
    config.webhooks.poll_interval = "50ms".into();
    config.webhooks.retry_base = "1s".into();
    config.webhooks.retry_cap = "2s".into();
    config.webhooks.max_attempts = 3;
    config.webhooks.send_timeout = "1s".into();
    config.webhooks.lease = "5s".into();
}

/// The signature header checks out against the subscription's secret.
#[track_caller]
fn assert_signed(received: &Received, secret: &str) {
    let header = received.header("x-trilo-signature");
    let (t, v1) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .unwrap_or_else(|| panic!("a signature header: {header:?}"));
    let mut base = format!("{t}.").into_bytes();
    base.extend_from_slice(&received.body);
    let expected: String = hmac_sha256(secret, &base)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, expected, "signature");
    let wrong: String = hmac_sha256("not the secret", &base)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_ne!(v1, wrong);
}

async fn client_id_app(app: &TestApp, client_id: &str) -> String {
    app.core
        .store()
        .app_by_client_id(client_id)
        .await
        .unwrap()
        .unwrap()
        .app_id
}

/// The demo app's id, once Alice granted it `READ_SCOPES` on Acme (which installs it).
async fn demo_app_installed_on_acme(app: &TestApp) -> String {
    let demo = demo_client(app);
    access_token(app, 0, &demo, READ_SCOPES, 0).await;
    client_id_app(app, &demo.client_id).await
}

/// Creates an issue through the gateway with an app's token.
async fn create_issue(app: &TestApp, token: &str, cloud_id: &str, project: &str) -> Answer {
    let res = reqwest::Client::new()
        .post(app.url(&format!("/ex/jira/{cloud_id}/rest/api/3/issue")))
        .bearer_auth(token)
        .json(&json!({ "fields": {
            "project": { "key": project },
            "summary": "Printer on fire",
            "issuetype": { "name": "Task" },
        }}))
        .fetch()
        .await;
    Answer::of(res).await
}

/// The app's newest delivery once it has `status` (its outcome is recorded just after the
/// receiver answered).
async fn newest_delivery_when(
    app: &TestApp,
    app_id: &str,
    status: DeliveryStatus,
) -> trilo_core::model::Delivery {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = app
            .core
            .deliveries_of_app(app_id, 1)
            .await
            .unwrap()
            .remove(0);
        if d.status == status {
            return d;
        }
        assert!(Instant::now() < deadline, "the delivery stayed {d:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Posts to `/internal/events` with `secret` (or none).
pub async fn post_event(base: &str, secret: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/internal/events"))
        .json(body);
    if let Some(secret) = secret {
        req = req.bearer_auth(secret);
    }
    let res = req.fetch().await;
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn gateway_write_reaches_subscribed_app_only(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, quick_webhooks).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let acme = app.demo.sites[0].cloud_id.clone();

    // The subscribed app: Alice granted it read and write on Acme.
    let demo = demo_client(&app);
    let token = access_token(&app, 0, &demo, &format!("{READ_SCOPES} write:jira-work"), 0).await;
    let demo_app_id = client_id_app(&app, &demo.client_id).await;
    let created = app
        .core
        .create_webhook(
            &demo_app_id,
            &format!("{}?app=demo", receiver.url),
            &["jira:issue_created".to_owned()],
        )
        .await
        .unwrap();

    // Installed on Acme, but its grant reads users only: no covering grant.
    let users_only = another_app(&app, &["read:jira-user"]).await;
    access_token(&app, 0, &users_only, "read:jira-user", 0).await;
    let users_only_id = client_id_app(&app, &users_only.client_id).await;
    // Granted read:jira-work, but installed on the other site only.
    let elsewhere = another_app(&app, &["read:jira-work"]).await;
    access_token(&app, 0, &elsewhere, "read:jira-work", 1).await;
    let elsewhere_id = client_id_app(&app, &elsewhere.client_id).await;
    for (id, tag) in [(&users_only_id, "users-only"), (&elsewhere_id, "elsewhere")] {
        app.core
            .create_webhook(
                id,
                &format!("{}?app={tag}", receiver.url),
                &["jira:issue_created".to_owned()],
            )
            .await
            .unwrap();
    }

    let answer = create_issue(&app, &token, &acme, "DEMO").await;
    assert_eq!(answer.status, 201, "{answer:?}");
    let issue_id = answer.body["id"].as_str().unwrap().to_owned();

    let seen = receiver.wait_for(1, Duration::from_secs(15)).await;
    let got = &seen[0];
    let alice = &app.demo.users[0].account_id;
    let query: HashMap<String, String> =
        serde_urlencoded::from_str(got.query.as_deref().unwrap()).unwrap();
    assert_eq!(query.get("app").map(String::as_str), Some("demo"));
    assert_eq!(query.get("triggeredByUser"), Some(alice));
    assert_signed(got, &created.secret);
    assert_eq!(got.header("x-trilo-event"), "jira:issue_created");
    assert_eq!(got.header("content-type"), "application/json");
    let body = got.json();
    assert_eq!(body["webhookEvent"], "jira:issue_created");
    assert_eq!(body["issue"]["id"], issue_id.as_str());
    assert_eq!(body["user"]["accountId"], alice.as_str());

    // The event was recorded with every delivery at once: the others got none.
    for id in [&users_only_id, &elsewhere_id] {
        assert!(app.core.deliveries_of_app(id, 10).await.unwrap().is_empty());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.seen().len(), 1, "only the covered, installed app");
    let delivered = newest_delivery_when(&app, &demo_app_id, DeliveryStatus::Delivered).await;
    assert_eq!(delivered.last_status_code, Some(204));
    assert_eq!(
        app.core
            .deliveries_of_app(&demo_app_id, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // A data security policy over the project keeps its events from every app.
    app.active_jira_policy(&acme, "Ops only", &["OPS"]).await;
    let secret = app.core.product_events_secret("jira");
    let event = |container: &str, id: &str| {
        json!({
            "id": id,
            "event": "jira:issue_created",
            "cloudId": acme,
            "container": container,
            "accountId": alice,
            "payload": { "issue": { "key": format!("{container}-9") } },
        })
    };
    let (status, blocked) = post_event(&app.base, Some(&secret), &event("OPS", "blocked-1")).await;
    assert_eq!(status, 202, "{blocked}");
    assert_eq!(blocked["deliveries"], 0, "blocked by the policy");
    let (_, open) = post_event(&app.base, Some(&secret), &event("DEMO", "open-1")).await;
    assert_eq!(open["deliveries"], 1, "the uncovered project still flows");
    // A product's retry of the same event is recorded once.
    let (status, again) = post_event(&app.base, Some(&secret), &event("DEMO", "open-1")).await;
    assert_eq!(status, 202);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["eventId"], open["eventId"]);
    receiver.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.seen().len(), 2);
}

#[tokio::test]
async fn gateway_write_reaches_subscribed_app_only_sqlite() {
    gateway_write_reaches_subscribed_app_only(Backend::Sqlite).await;
}

#[tokio::test]
async fn gateway_write_reaches_subscribed_app_only_postgres() {
    gateway_write_reaches_subscribed_app_only(Backend::Postgres).await;
}

async fn policy_event_lists_at_most_the_cap(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, quick_webhooks).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let demo_app_id = demo_app_installed_on_acme(&app).await;
    app.core
        .create_webhook(
            &demo_app_id,
            &receiver.url,
            &[
                "avi:ecosystem.data-security-policy:activated".to_owned(),
                "avi:ecosystem.data-security-policy:deactivated".to_owned(),
            ],
        )
        .await
        .unwrap();

    // Two projects and 249,998 issues in them: 250,000 objects.
    let secret = app.core.product_events_secret("jira");
    let http = reqwest::Client::new();
    for (container, range) in [("DEMO", 0..150_000), ("OPS", 150_000..249_998)] {
        let ids: Vec<String> = range.map(|n: u32| n.to_string()).collect();
        let res = http
            .post(app.url("/internal/objects"))
            .bearer_auth(&secret)
            .json(&json!({ "cloudId": acme, "container": container, "type": "issue", "ids": ids }))
            .fetch()
            .await;
        assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    }
    let policy = app
        .active_jira_policy(&acme, "Everything", &["DEMO", "OPS"])
        .await;
    let seen = receiver.wait_for(1, Duration::from_secs(60)).await;
    let delivered = newest_delivery_when(&app, &demo_app_id, DeliveryStatus::Delivered).await;
    assert_eq!(delivered.last_status_code, Some(204), "{delivered:?}");
    let body = seen[0].json();
    assert_eq!(
        body["webhookEvent"],
        "avi:ecosystem.data-security-policy:activated"
    );
    assert_eq!(body["policy"]["id"], policy.policy_id.as_str());
    assert_eq!(body["affected"]["total"], 250_000);
    assert_eq!(body["affected"]["truncated"], true);
    let objects = body["affected"]["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 200_000);
    assert_eq!(objects[0]["type"], "container");
    assert!(
        seen[0].query.is_none(),
        "no triggeredByUser: nobody known triggered it"
    );

    // Deactivation tells the same app; a change of an inactive policy tells nobody.
    app.core
        .set_policy_active(&policy.policy_id, false)
        .await
        .unwrap();
    let seen = receiver.wait_for(2, Duration::from_secs(60)).await;
    assert_eq!(
        seen[1].json()["webhookEvent"],
        "avi:ecosystem.data-security-policy:deactivated"
    );
    app.core
        .update_policy(
            &policy.policy_id,
            "Renamed",
            vec![("jira".into(), "OPS".into())],
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.seen().len(), 2);
}

#[tokio::test]
async fn policy_event_lists_at_most_the_cap_sqlite() {
    policy_event_lists_at_most_the_cap(Backend::Sqlite).await;
}

#[tokio::test]
async fn policy_event_lists_at_most_the_cap_postgres() {
    policy_event_lists_at_most_the_cap(Backend::Postgres).await;
}

/// A failing receiver is retried after the backoff with the same event id, then the
/// delivery succeeds; one that keeps failing dies after the last attempt and comes back
/// on redelivery; redirects are not followed; a stalled one times out; a 10 MB answer is
/// read no further than needed. trilo answers every request meanwhile.
#[tokio::test]
async fn failing_receivers_are_retried_within_bounds() {
    let app = TestApp::spawn(Backend::Sqlite, quick_webhooks)
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let app_id = demo_app_installed_on_acme(&app).await;
    app.core
        .create_webhook(&app_id, &receiver.url, &["jira:issue_updated".to_owned()])
        .await
        .unwrap();
    let secret = app.core.product_events_secret("jira");
    let post = |id: &str| json!({ "id": id, "event": "jira:issue_updated", "cloudId": acme, "container": "DEMO" });
    let (core, app_id_ref) = (&app.core, app_id.as_str());
    let delivery = || async move {
        core.deliveries_of_app(app_id_ref, 1)
            .await
            .unwrap()
            .remove(0)
    };
    let wait_status = |want: DeliveryStatus| async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let d = core
                .deliveries_of_app(app_id_ref, 1)
                .await
                .unwrap()
                .remove(0);
            if d.status == want && (want != DeliveryStatus::Pending || d.last_error.is_some()) {
                return d;
            }
            assert!(Instant::now() < deadline, "delivery stayed {d:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };

    // 500, then accepted after the backoff (the test clock decides when it is due).
    receiver.set_mode(Mode::Fail);
    post_event(&app.base, Some(&secret), &post("e1")).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let failed = wait_status(DeliveryStatus::Pending).await;
    assert_eq!(failed.last_status_code, Some(500));
    assert_eq!(failed.attempts, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.seen().len(), 1, "not again before the backoff");
    receiver.set_mode(Mode::Accept);
    app.clock.advance(time::Duration::seconds(3));
    let seen = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        seen[0].header("x-trilo-event-id"),
        seen[1].header("x-trilo-event-id")
    );
    assert_eq!(seen[1].header("x-trilo-delivery-attempt"), "2");
    assert_eq!(wait_status(DeliveryStatus::Delivered).await.attempts, 2);

    // A redirect is a failed attempt, never followed; after the last attempt it is dead.
    receiver.set_mode(Mode::Redirect);
    post_event(&app.base, Some(&secret), &post("e2")).await;
    receiver.wait_for(3, Duration::from_secs(10)).await;
    for n in 4..=5 {
        // The last attempt's outcome (and so its retry time) is recorded before the clock
        // moves on; otherwise the retry is scheduled from the moved clock and never due.
        let recorded = n - 3;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let d = delivery().await;
            if d.status == DeliveryStatus::Pending && d.attempts as usize >= recorded {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "attempt {recorded} not recorded: {d:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        app.clock.advance(time::Duration::seconds(3));
        receiver.wait_for(n, Duration::from_secs(10)).await;
    }
    let dead = wait_status(DeliveryStatus::Dead).await;
    assert_eq!(dead.attempts, 3);
    assert_eq!(dead.last_status_code, Some(307));
    assert!(
        dead.last_error.as_deref().unwrap().contains("redirect"),
        "{dead:?}"
    );
    assert_eq!(receiver.redirect_hits.load(Ordering::SeqCst), 0);
    // The developer redelivers it.
    receiver.set_mode(Mode::Accept);
    app.core
        .redeliver(&app_id, &dead.delivery_id)
        .await
        .unwrap();
    receiver.wait_for(6, Duration::from_secs(10)).await;
    assert_eq!(
        wait_status(DeliveryStatus::Delivered).await.delivery_id,
        dead.delivery_id
    );

    // A 10 MB answer: accepted on its status, the rest unread.
    receiver.set_mode(Mode::Huge);
    post_event(&app.base, Some(&secret), &post("e3")).await;
    receiver.wait_for(7, Duration::from_secs(10)).await;
    assert_eq!(
        wait_status(DeliveryStatus::Delivered)
            .await
            .last_status_code,
        Some(200)
    );

    // A stalled receiver: the attempt times out (send timeout 1 s) and is retried.
    receiver.set_mode(Mode::Stall);
    post_event(&app.base, Some(&secret), &post("e4")).await;
    receiver.wait_for(8, Duration::from_secs(10)).await;
    let stalled = wait_status(DeliveryStatus::Pending).await;
    assert!(
        stalled.last_error.as_deref().unwrap().contains("no answer"),
        "{stalled:?}"
    );
    assert_eq!(stalled.last_status_code, None);
    assert_eq!(delivery().await.delivery_id, stalled.delivery_id);

    let health = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
}

/// Products' mistakes get 4xx with the API host's `{code, message}`, and record nothing.
#[tokio::test]
async fn bad_event_posts_are_refused_with_clear_errors() {
    let app = TestApp::spawn(Backend::Sqlite, quick_webhooks)
        .await
        .unwrap();
    let acme = app.demo.sites[0].cloud_id.clone();
    let secret = app.core.product_events_secret("jira");
    let good = json!({ "event": "jira:issue_created", "cloudId": acme });
    let cases: Vec<(Option<String>, Value, u16, &str)> = vec![
        (None, good.clone(), 401, "secret is required"),
        (Some("wrong".into()), good.clone(), 401, "not valid"),
        (
            Some(app.core.product_events_secret("confluence")),
            good.clone(),
            400,
            "not an event of product",
        ),
        (
            Some(secret.clone()),
            json!({ "event": "jira:issue_exploded", "cloudId": acme }),
            400,
            "unknown event",
        ),
        (
            Some(secret.clone()),
            json!({ "event": "avi:ecosystem.data-security-policy:activated", "cloudId": acme }),
            400,
            "unknown event",
        ),
        (
            Some(secret.clone()),
            json!({ "event": "jira:issue_created", "cloudId": "no-such-site" }),
            404,
            "product on the site",
        ),
        (
            Some(secret.clone()),
            json!({ "event": "jira:issue_created", "cloudId": acme, "surprise": 1 }),
            400,
            "not valid",
        ),
        (
            Some(secret.clone()),
            json!({ "events": [] }),
            400,
            "1 to 1000 events",
        ),
        (
            Some(secret.clone()),
            json!({ "event": "jira:issue_created", "cloudId": acme, "container": "" }),
            400,
            "1 to 200 characters",
        ),
    ];
    for (secret, body, status, message) in cases {
        let (got, answer) = post_event(&app.base, secret.as_deref(), &body).await;
        assert_eq!(got, status, "{body} → {answer}");
        assert_eq!(answer["code"], status);
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains(&message.to_lowercase()),
            "{answer}"
        );
    }
    // One bad event refuses the whole post, naming it; the good one is not recorded.
    let (status, answer) = post_event(
        &app.base,
        Some(&secret),
        &json!({ "events": [good, { "event": "nope", "cloudId": acme }] }),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("events[1]: "),
        "{answer}"
    );
    let http = reqwest::Client::new();
    let not_json = http
        .post(app.url("/internal/events"))
        .bearer_auth(&secret)
        .header("content-type", "text/plain")
        .body("{}")
        .fetch()
        .await;
    assert_eq!(not_json.status(), 415);
    let too_big = http
        .post(app.url("/internal/events"))
        .bearer_auth(&secret)
        .header("content-type", "application/json")
        .body(vec![b' '; 9 * 1024 * 1024])
        .fetch()
        .await;
    assert_eq!(too_big.status(), 413);
    let huge_event = json!({
        "event": "jira:issue_created",
        "cloudId": acme,
        "payload": { "blob": "x".repeat(2 * 1024 * 1024) },
    });
    let (status, answer) = post_event(&app.base, Some(&secret), &huge_event).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        app.core.delivery_counts().await.unwrap(),
        Default::default()
    );
}

/// Environment for `trilo serve` processes that deliver quickly in tests.
const PROCESS_WEBHOOKS: [(&str, &str); 7] = [
    ("TRILO__WEBHOOKS__ALLOW_HTTP_LOOPBACK", "true"),
    ("TRILO__WEBHOOKS__POLL_INTERVAL", "50ms"),
    ("TRILO__WEBHOOKS__RETRY_BASE", "200ms"),
    ("TRILO__WEBHOOKS__RETRY_CAP", "1s"),
    ("TRILO__WEBHOOKS__MAX_ATTEMPTS", "1000"),
    ("TRILO__WEBHOOKS__LEASE", "3s"),
    ("TRILO__WEBHOOKS__SEND_TIMEOUT", "1s"),
];

/// The test app's own server records and serves but leaves sending to the processes.
fn recording_only(config: &mut Config) {
    quick_webhooks(config);
    config.webhooks.deliver = false;
}

/// `n` distinct `jira:issue_updated` events on the demo site, posted in batches to `bases`
/// in turn; returns their event ids.
async fn post_burst(app: &TestApp, bases: &[&str], n: usize, batch: usize) -> HashSet<String> {
    let acme = &app.demo.sites[0].cloud_id;
    let secret = app.core.product_events_secret("jira");
    let mut ids = HashSet::new();
    for (round, start) in (0..n).step_by(batch).enumerate() {
        let events: Vec<Value> = (start..(start + batch).min(n))
            .map(|i| {
                json!({
                    "id": format!("burst-{i}"),
                    "event": "jira:issue_updated",
                    "cloudId": acme,
                    "container": "DEMO",
                    "payload": { "n": i },
                })
            })
            .collect();
        let (status, answer) = post_event(
            bases[round % bases.len()],
            Some(&secret),
            &json!({ "events": events }),
        )
        .await;
        assert_eq!(status, 202, "{answer}");
        for e in answer["events"].as_array().unwrap() {
            assert_eq!(e["deliveries"], 1);
            ids.insert(e["eventId"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(ids.len(), n);
    ids
}

/// Every received request is one of `ids`, all arrived, and copies of one event carry the
/// same body. Returns how many requests were duplicates.
fn duplicates_among(seen: &[Received], ids: &HashSet<String>) -> usize {
    let mut bodies: HashMap<&str, &Bytes> = HashMap::new();
    for r in seen {
        let id = r.header("x-trilo-event-id");
        assert!(ids.contains(id), "an unknown event id {id}");
        let first = bodies.entry(id).or_insert(&r.body);
        assert_eq!(*first, &r.body, "copies of {id} differ");
    }
    assert_eq!(bodies.len(), ids.len(), "every event arrived");
    seen.len() - bodies.len()
}

/// A receiver that is down in the worst way: it accepts connections and never answers,
/// so the sender's attempts hang until their timeout.
fn black_hole(listener: TcpListener) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    })
}

/// SIGKILL with deliveries pending, some of them mid-send, and the receiver down: after
/// the restart and the receiver's return every event arrives; copies carry the same id.
async fn nothing_is_lost_across_a_kill(backend: Backend) {
    const EVENTS: usize = 300;
    let Some(app) = TestApp::spawn(backend, recording_only).await else {
        return;
    };
    let hole = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = hole.local_addr().unwrap().port();
    let hole = black_hole(hole);
    let app_id = demo_app_installed_on_acme(&app).await;
    app.core
        .create_webhook(
            &app_id,
            &format!("http://127.0.0.1:{port}/hook"),
            &["jira:issue_updated".to_owned()],
        )
        .await
        .unwrap();
    let mut server = crate::process::ServerProcess::start_with_env(&app, &PROCESS_WEBHOOKS).await;
    let ids = post_burst(&app, &[&server.base], EVENTS, 100).await;
    // Killed while its attempts hang (send timeout 1 s): claimed, leased, unanswered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill().await;
    let counts = app.core.delivery_counts().await.unwrap();
    assert_eq!(counts.pending, EVENTS as i64, "{counts:?}");
    let in_flight = app
        .core
        .deliveries_of_app(&app_id, EVENTS as u32)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.attempts > 0 && d.last_error.is_none())
        .count();
    assert!(in_flight > 0, "the kill found attempts under way");
    hole.abort();
    let _ = hole.await;

    let receiver = Receiver::on(TcpListener::bind(("127.0.0.1", port)).await.unwrap());
    server.restart().await;
    let seen = receiver
        .wait_for_events(EVENTS, Duration::from_secs(60))
        .await;
    let duplicates = duplicates_among(&seen, &ids);
    eprintln!(
        "{backend:?}: {EVENTS} events, {} requests, {duplicates} duplicates",
        seen.len()
    );
    let counts = app.core.delivery_counts().await.unwrap();
    assert_eq!(counts.dead, 0, "{counts:?}");
    server.kill().await;
}

#[tokio::test]
async fn nothing_is_lost_across_a_kill_sqlite() {
    nothing_is_lost_across_a_kill(Backend::Sqlite).await;
}

#[tokio::test]
async fn nothing_is_lost_across_a_kill_postgres() {
    nothing_is_lost_across_a_kill(Backend::Postgres).await;
}

/// Two instances on one PostgreSQL database share a burst of 10,000 events: each is sent
/// by one of them, once in the common case (the duplicates are counted and reported).
#[tokio::test]
async fn two_postgres_instances_deliver_a_burst_once_each() {
    const EVENTS: usize = 10_000;
    let Some(app) = TestApp::spawn(Backend::Postgres, recording_only).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let app_id = demo_app_installed_on_acme(&app).await;
    app.core
        .create_webhook(&app_id, &receiver.url, &["jira:issue_updated".to_owned()])
        .await
        .unwrap();
    // No instance dies here, so the lease is long: a send that a loaded machine slows past
    // a short lease would be taken over and sent again, as it must be after a crash.
    let mut env = PROCESS_WEBHOOKS;
    for (name, value) in &mut env {
        if *name == "TRILO__WEBHOOKS__LEASE" {
            *value = "60s";
        }
    }
    let mut first = crate::process::ServerProcess::start_with_env(&app, &env).await;
    let mut second = crate::process::ServerProcess::start_with_env(&app, &env).await;
    let ids = post_burst(&app, &[&first.base, &second.base], EVENTS, 500).await;
    let seen = receiver
        .wait_for_events(EVENTS, Duration::from_secs(120))
        .await;
    // Late copies would arrive now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen_after = receiver.seen();
    let duplicates = duplicates_among(&seen_after, &ids);
    eprintln!(
        "two instances: {EVENTS} events, {} requests, {duplicates} duplicates",
        seen_after.len()
    );
    assert!(seen.len() >= EVENTS);
    assert_eq!(
        duplicates, 0,
        "no instance died, so no delivery was sent twice"
    );
    let counts = app.core.delivery_counts().await.unwrap();
    assert_eq!(counts.delivered, EVENTS as i64, "{counts:?}");
    first.kill().await;
    second.kill().await;
}

/// Without development's loopback allowance, receivers must be public: a private IP is
/// refused when subscribing, and a name that resolves to one fails every attempt without
/// a request (server-side request forgery).
#[tokio::test]
async fn receivers_in_private_networks_are_refused() {
    let app = TestApp::spawn(Backend::Sqlite, |config| {
        quick_webhooks(config);
        config.webhooks.allow_http_loopback = false;
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let app_id = demo_app_installed_on_acme(&app).await;
    for refused in [
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "http://localhost/hook",
    ] {
        let err = app
            .core
            .create_webhook(&app_id, refused, &["jira:issue_updated".to_owned()])
            .await
            .unwrap_err();
        assert!(
            matches!(err, trilo_core::CoreError::Invalid(_)),
            "{refused}: {err:?}"
        );
    }
    app.core
        .create_webhook(
            &app_id,
            &format!("https://localhost:{port}/hook"),
            &["jira:issue_updated".to_owned()],
        )
        .await
        .unwrap();
    let acme = app.demo.sites[0].cloud_id.clone();
    let secret = app.core.product_events_secret("jira");
    let (status, _) = post_event(
        &app.base,
        Some(&secret),
        &json!({ "event": "jira:issue_updated", "cloudId": acme, "container": "DEMO" }),
    )
    .await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(10);
    let failed = loop {
        let d = app
            .core
            .deliveries_of_app(&app_id, 1)
            .await
            .unwrap()
            .remove(0);
        if d.last_error.is_some() {
            break d;
        }
        assert!(Instant::now() < deadline, "no attempt: {d:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap()
            .contains("no public address"),
        "{failed:?}"
    );
    assert!(receiver.seen().is_empty());
}
