//! `/api/v1`'s webhook operations: an app's webhooks (create with the signing secret,
//! list, read, delete), its recent deliveries and redelivery; bad input is a 400 with the
//! API's error body; another developer's app is "not found".

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use trilo_core::services::events::ProductEvent;
use trilo_protocol::webhooks::POLICY_ACTIVATED;

use crate::api_v1::{Api, assert_error, demo_app_id, new_app};
use crate::support::{Backend, TestApp};
use crate::token::{Answer, obtain_codes};

const HOOK: &str = "https://receiver.example/hook";

/// A server that records deliveries but never sends them, so their state stays as made.
pub(crate) async fn quiet_app() -> TestApp {
    TestApp::spawn(Backend::Sqlite, |c| c.webhooks.deliver = false)
        .await
        .expect("sqlite")
}

/// Alice installs the demo app on Acme (her grant covers `read:jira-work`), then Jira
/// records `n` issue events there: each a delivery to every webhook of the app subscribed
/// to `jira:issue_created`.
pub(crate) async fn issue_events(app: &TestApp, n: usize) {
    obtain_codes(app, &app.authorize_url(&[]), 1).await;
    for i in 0..n {
        let mut payload = Map::new();
        payload.insert("issue".into(), json!({ "key": format!("ACME-{i}") }));
        let ingested = app
            .core
            .ingest_event(
                "jira",
                ProductEvent {
                    name: "jira:issue_created".into(),
                    cloud_id: app.demo.sites[0].cloud_id.clone(),
                    account_id: Some(app.demo.users[0].account_id.clone()),
                    payload,
                    ..ProductEvent::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            ingested.deliveries, 1,
            "one delivery per event: {ingested:?}"
        );
        // Distinct creation times, so "newest first" is observable.
        app.clock.advance(time::Duration::seconds(1));
    }
}

/// Asks `/api/v1` to send the delivery `delivery_id` of the app `app_id` again.
async fn redeliver(api: &Api<'_>, app_id: &str, delivery_id: &str) -> Answer {
    let path = format!("/api/v1/apps/{app_id}/deliveries/{delivery_id}/redeliver");
    api.post(&path, json!({})).await
}

/// Adds a webhook at [`HOOK`] for `jira:issue_created` to the app `app_id`.
async fn subscribe_to_issues(api: &Api<'_>, app_id: &str) -> Answer {
    let body = json!({ "url": HOOK, "events": ["jira:issue_created"] });
    api.post(&format!("/api/v1/apps/{app_id}/webhooks"), body)
        .await
}

/// The 404 of a redelivery of a delivery the app does not have.
#[track_caller]
fn assert_no_such_delivery(a: &Answer) {
    assert_error(a, 404, "Not found");
    assert_eq!(a.body["message"], "Not found: no such delivery");
}

fn rfc3339(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().unwrap_or_default(), &Rfc3339)
        .unwrap_or_else(|e| panic!("{value} is not RFC 3339: {e}"))
}

#[tokio::test]
async fn webhooks_are_created_with_a_secret_listed_read_and_deleted() {
    let app = TestApp::sqlite().await;
    let alice = Api::token(&app, 0).await;
    let created = alice.create(new_app("Hooked")).await;
    let id = created["id"].as_str().unwrap();
    let base = format!("/api/v1/apps/{id}/webhooks");
    assert_eq!(alice.get(&base).await.body, json!({ "webhooks": [] }));

    let res = alice
        .post(
            &base,
            json!({ "url": HOOK, "events": ["jira:issue_created", POLICY_ACTIVATED] }),
        )
        .await;
    assert_eq!(res.status, 201, "{res:?}");
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let hook = res.body;
    let hook_id = hook["id"].as_str().unwrap();
    assert_eq!(
        res.headers["location"],
        format!("{base}/{hook_id}").as_str()
    );
    assert_eq!(hook["url"], HOOK);
    assert_eq!(
        hook["events"],
        json!(["jira:issue_created", POLICY_ACTIVATED])
    );
    rfc3339(&hook["created_at"]);
    let secret = hook["secret"].as_str().unwrap();
    assert!(secret.len() >= 32, "{secret}");
    assert_eq!(
        secret,
        app.core.webhook_secret(hook_id),
        "the signing secret"
    );

    // The client id names the app too.
    let client_id = created["client_id"].as_str().unwrap();
    for key in [id, client_id] {
        let list = alice.get(&format!("/api/v1/apps/{key}/webhooks")).await;
        assert_eq!(list.status, 200, "{list:?}");
        let items = list.body["webhooks"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "{list:?}");
        assert_eq!(items[0]["id"], hook_id);
        assert_eq!(items[0]["url"], HOOK);
        assert_eq!(items[0]["events"], hook["events"]);
        assert_eq!(items[0]["created_at"], hook["created_at"]);
        assert!(items[0].get("secret").is_none(), "listed without secrets");
    }

    let one = alice.get(&format!("{base}/{hook_id}")).await;
    assert_eq!(one.status, 200, "{one:?}");
    assert_eq!(one.body, hook, "read again, the secret included");

    assert_eq!(alice.delete(&format!("{base}/{hook_id}")).await.status, 204);
    let gone = alice.get(&format!("{base}/{hook_id}")).await;
    assert_error(&gone, 404, "Not found");
    assert_eq!(gone.body["message"], "Not found: no such webhook");
    assert_error(
        &alice.delete(&format!("{base}/{hook_id}")).await,
        404,
        "Not found",
    );
    assert_eq!(alice.get(&base).await.body, json!({ "webhooks": [] }));
    assert!(app.core.webhooks_of_app(id).await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_webhook_urls_events_and_bodies_are_refused_with_400() {
    let app = TestApp::sqlite().await;
    let alice = Api::token(&app, 0).await;
    let id = demo_app_id(&app).await;
    let base = format!("/api/v1/apps/{id}/webhooks");
    let cases = [
        (
            json!({ "url": "http://receiver.example/hook", "events": ["jira:issue_created"] }),
            "https",
        ),
        (
            // Loopback http is for servers configured for development only.
            json!({ "url": "http://127.0.0.1:9000/hook", "events": ["jira:issue_created"] }),
            "https",
        ),
        (
            json!({ "url": "not a url", "events": ["jira:issue_created"] }),
            "not a valid absolute URL",
        ),
        (
            json!({ "url": HOOK, "events": ["jira:issue_exploded"] }),
            "jira:issue_exploded",
        ),
        (json!({ "url": HOOK, "events": [] }), "at least one event"),
        (json!({ "url": HOOK }), "events"),
        (
            json!({ "url": HOOK, "events": ["jira:issue_created"], "secret": "mine" }),
            "secret",
        ),
    ];
    for (body, names) in cases {
        let a = alice.post(&base, body.clone()).await;
        assert_error(&a, 400, "Invalid request");
        let message = a.body["message"].as_str().unwrap();
        assert!(message.contains(names), "{body}: {message}");
    }
    let broken = alice
        .request(reqwest::Method::POST, &base)
        .header("content-type", "application/json")
        .body("{\"url\": ");
    assert_error(&Api::send(broken).await, 400, "Malformed JSON");
    assert!(app.core.webhooks_of_app(&id).await.unwrap().is_empty());
}

#[tokio::test]
async fn another_developers_webhooks_and_deliveries_are_not_found() {
    let app = TestApp::sqlite().await;
    let alice = Api::token(&app, 0).await;
    let bob = Api::token(&app, 1).await;
    let id = demo_app_id(&app).await; // Alice's
    let hook = subscribe_to_issues(&alice, &id).await;
    assert_eq!(hook.status, 201, "{hook:?}");
    let hook_id = hook.body["id"].as_str().unwrap();
    let client_id = app.app().client_id.clone();
    for key in [id.as_str(), client_id.as_str(), "no-such-app"] {
        let answers = [
            bob.get(&format!("/api/v1/apps/{key}/webhooks")).await,
            bob.post(
                &format!("/api/v1/apps/{key}/webhooks"),
                json!({ "url": "https://bob.example/steal", "events": ["jira:issue_created"] }),
            )
            .await,
            bob.get(&format!("/api/v1/apps/{key}/webhooks/{hook_id}"))
                .await,
            bob.delete(&format!("/api/v1/apps/{key}/webhooks/{hook_id}"))
                .await,
            bob.get(&format!("/api/v1/apps/{key}/deliveries")).await,
            redeliver(&bob, key, "any").await,
        ];
        for a in answers {
            assert_error(&a, 404, "Not found");
            assert_eq!(a.body["message"], "Not found: no such app", "{a:?}");
            assert!(a.body.get("secret").is_none());
        }
    }
    let left = app.core.webhooks_of_app(&id).await.unwrap();
    assert_eq!(left.len(), 1, "Bob added and deleted nothing");
    assert_eq!(left[0].url, HOOK);

    // Bob's own app does not reach Alice's webhook either.
    let bobs = bob.create(new_app("Bob's")).await;
    let bobs = bobs["id"].as_str().unwrap();
    let a = bob
        .get(&format!("/api/v1/apps/{bobs}/webhooks/{hook_id}"))
        .await;
    assert_error(&a, 404, "Not found");
    assert_eq!(a.body["message"], "Not found: no such webhook");
    assert_error(
        &bob.delete(&format!("/api/v1/apps/{bobs}/webhooks/{hook_id}"))
            .await,
        404,
        "Not found",
    );
    assert_eq!(app.core.webhooks_of_app(&id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_new_app_has_no_deliveries_and_an_unknown_delivery_is_not_redelivered() {
    let app = TestApp::sqlite().await;
    let alice = Api::token(&app, 0).await;
    let id = alice.create(new_app("Quiet")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = alice.get(&format!("/api/v1/apps/{id}/deliveries")).await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.body, json!({ "deliveries": [] }));
    let ok = alice
        .get(&format!("/api/v1/apps/{id}/deliveries?limit=200"))
        .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    for bad in [
        "limit=0",
        "limit=201",
        "limit=ten",
        "limit=-1",
        "limit=1&limit=2",
    ] {
        let a = alice
            .get(&format!("/api/v1/apps/{id}/deliveries?{bad}"))
            .await;
        assert_error(&a, 400, "Invalid request");
    }
    let a = redeliver(&alice, &id, "no-such-delivery").await;
    assert_no_such_delivery(&a);
}

#[tokio::test]
async fn deliveries_are_listed_newest_first_and_redelivered() {
    let app = quiet_app().await;
    let alice = Api::token(&app, 0).await;
    let id = demo_app_id(&app).await;
    let hook = subscribe_to_issues(&alice, &id).await;
    assert_eq!(hook.status, 201, "{hook:?}");
    issue_events(&app, 3).await;

    let list = alice.get(&format!("/api/v1/apps/{id}/deliveries")).await;
    assert_eq!(list.status, 200, "{list:?}");
    let items = list.body["deliveries"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3, "{list:?}");
    let created: Vec<OffsetDateTime> = items.iter().map(|d| rfc3339(&d["created_at"])).collect();
    assert!(
        created.windows(2).all(|w| w[0] > w[1]),
        "newest first: {created:?}"
    );
    let d = &items[0];
    assert!(d["id"].is_string() && d["event_id"].is_string(), "{d}");
    assert_eq!(d["event"], "jira:issue_created");
    assert_eq!(d["webhook_id"], hook.body["id"]);
    let url = d["url"].as_str().unwrap();
    assert!(url.starts_with(HOOK), "{url}");
    assert!(url.contains("triggeredByUser="), "{url}");
    assert_eq!(d["status"], "pending");
    assert_eq!(d["attempts"], 0);
    rfc3339(&d["next_attempt_at"]);
    assert_eq!(d["last_status_code"], Value::Null);
    assert_eq!(d["last_error"], Value::Null);
    assert_eq!(d["finished_at"], Value::Null);

    let one = alice
        .get(&format!("/api/v1/apps/{id}/deliveries?limit=1"))
        .await;
    assert_eq!(one.body["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(one.body["deliveries"][0]["id"], d["id"]);

    let delivery_id = d["id"].as_str().unwrap();
    let a = redeliver(&alice, &id, delivery_id).await;
    assert_eq!(a.status, 202, "{a:?}");
    // Bob's app cannot redeliver Alice's delivery.
    let bob = Api::token(&app, 1).await;
    let bobs = bob.create(new_app("Bob's")).await;
    let a = redeliver(&bob, bobs["id"].as_str().unwrap(), delivery_id).await;
    assert_no_such_delivery(&a);
}

#[tokio::test]
async fn the_openapi_document_describes_the_webhook_operations() {
    let app = TestApp::sqlite().await;
    let doc = Api::anonymous(&app).get("/api/v1/openapi.json").await.body;
    for (path, method, operation_id) in [
        ("/api/v1/apps/{id}/webhooks", "get", "listWebhooks"),
        ("/api/v1/apps/{id}/webhooks", "post", "createWebhook"),
        (
            "/api/v1/apps/{id}/webhooks/{webhookId}",
            "get",
            "getWebhook",
        ),
        (
            "/api/v1/apps/{id}/webhooks/{webhookId}",
            "delete",
            "deleteWebhook",
        ),
        ("/api/v1/apps/{id}/deliveries", "get", "listDeliveries"),
        (
            "/api/v1/apps/{id}/deliveries/{deliveryId}/redeliver",
            "post",
            "redeliver",
        ),
    ] {
        let op = &doc["paths"][path][method];
        assert_eq!(op["operationId"], operation_id, "{method} {path}");
        assert_eq!(op["tags"], json!(["webhooks"]), "{method} {path}");
    }
    let schemas = &doc["components"]["schemas"];
    let events: Vec<&str> = schemas["EventName"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    let known: Vec<&str> = trilo_protocol::webhooks::EVENT_TYPES
        .iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(events, known);
    let secret = schemas["WebhookWithSecret"]["allOf"][1]["properties"]["secret"]["description"]
        .as_str()
        .unwrap();
    assert!(
        secret.contains("x-trilo-signature: t=<unix seconds>,v1=<hex>"),
        "{secret}"
    );
    for name in [
        "Webhook",
        "CreateWebhook",
        "WebhookList",
        "Delivery",
        "DeliveryList",
    ] {
        assert!(schemas[name].is_object(), "{name}");
    }
}
