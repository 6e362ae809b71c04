//! `/api/v1`, the developer console's JSON API (issue 5): every operation and error,
//! session and API-token authentication, the CSRF defence on cookie writes, review
//! permissions, and the OpenAPI document against the routes the server really serves.

use std::collections::HashSet;

use serde_json::{Value, json};
use time::Duration;
use trilo_core::model::Role;
use trilo_server::http::api_v1::ROUTES;

use crate::support::{Fetch, TestApp};
use crate::token::{Answer, code_params, obtain_codes, post_form, with};

/// How a test client authenticates.
#[derive(Clone)]
pub(crate) enum Auth {
    None,
    /// HTTP Basic `email:api-token`.
    Token(String, String),
    /// A logged-in browser (cookie jar); `csrf` adds `X-Requested-With`.
    Session {
        client: reqwest::Client,
        csrf: bool,
    },
}

pub(crate) struct Api<'a> {
    app: &'a TestApp,
    auth: Auth,
}

impl<'a> Api<'a> {
    pub(crate) fn anonymous(app: &'a TestApp) -> Self {
        Api {
            app,
            auth: Auth::None,
        }
    }

    /// User `index` of the demo (0 Alice, 1 Bob) with a fresh API token.
    pub(crate) async fn token(app: &'a TestApp, index: usize) -> Self {
        let user = &app.demo.users[index];
        let created = app
            .core
            .create_api_token(&user.account_id, "api-v1 tests", None)
            .await
            .unwrap();
        Api {
            app,
            auth: Auth::Token(user.email.clone(), created.secret),
        }
    }

    /// User `index` logged in through the login page.
    pub(crate) async fn session(app: &'a TestApp, index: usize, csrf: bool) -> Self {
        let user = &app.demo.users[index];
        let client = app.browser();
        assert_eq!(
            app.login(&client, &user.email, &user.password)
                .await
                .status(),
            303
        );
        Api {
            app,
            auth: Auth::Session { client, csrf },
        }
    }

    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = self.app.url(path);
        match &self.auth {
            Auth::None => reqwest::Client::new().request(method, url),
            Auth::Token(email, secret) => reqwest::Client::new()
                .request(method, url)
                .basic_auth(email, Some(secret)),
            Auth::Session { client, csrf } => {
                let req = client.request(method, url);
                if *csrf {
                    req.header("x-requested-with", "XMLHttpRequest")
                } else {
                    req
                }
            }
        }
    }

    pub(crate) async fn send(req: reqwest::RequestBuilder) -> Answer {
        Answer::of(req.fetch().await).await
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        Self::send(self.request(reqwest::Method::GET, path)).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Answer {
        Self::send(self.request(reqwest::Method::POST, path).json(&body)).await
    }

    pub(crate) async fn patch(&self, path: &str, body: Value) -> Answer {
        Self::send(self.request(reqwest::Method::PATCH, path).json(&body)).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Answer {
        Self::send(self.request(reqwest::Method::DELETE, path)).await
    }

    /// Creates an app from `body` and returns the answer's body (201 asserted).
    pub(crate) async fn create(&self, body: Value) -> Value {
        let a = self.post("/api/v1/apps", body).await;
        assert_eq!(a.status, 201, "{a:?}");
        a.body
    }
}

/// Asserts an `/api/v1` error: status, `{code, message}` with the message's prefix.
#[track_caller]
pub(crate) fn assert_error(a: &Answer, status: u16, prefix: &str) {
    assert_eq!(a.status, status, "{a:?}");
    assert_eq!(a.body["code"], status, "{a:?}");
    let message = a.body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!("{prefix}: ")),
        "message {message:?} should start with {prefix:?}"
    );
    assert_eq!(a.header("content-type"), Some("application/json"), "{a:?}");
}

pub(crate) fn new_app(name: &str) -> Value {
    json!({
        "name": name,
        "description": "Made by the API tests.",
        "callback_urls": ["https://dev.example.test/cb"],
        "scopes": ["read:jira-work", "read:me"],
    })
}

/// The demo app's id (Alice owns it).
pub(crate) async fn demo_app_id(app: &TestApp) -> String {
    app.core
        .find_app(&app.app().client_id)
        .await
        .unwrap()
        .app_id
}

/// Resolves a local `$ref` (`#/a/b`) in `doc`.
fn resolve<'v>(doc: &'v Value, reference: &str) -> Option<&'v Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push(v.as_str().unwrap_or_default().to_owned());
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

const METHODS: [&str; 5] = ["get", "post", "patch", "delete", "put"];

#[tokio::test]
async fn openapi_document_is_valid_and_matches_the_served_routes() {
    let app = TestApp::sqlite().await;
    let doc = Api::anonymous(&app).get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, 200, "the document is public: {doc:?}");
    let doc = doc.body;

    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["apiToken"]["scheme"], "basic");
    assert_eq!(schemes["session"]["in"], "cookie");

    let paths = doc["paths"].as_object().unwrap();
    // Every served route is in the document …
    for route in &ROUTES {
        let op = &paths[route.path][route.verb.as_str().to_ascii_lowercase()];
        assert!(
            op.is_object(),
            "{} {} is not documented",
            route.verb.as_str(),
            route.path
        );
    }
    // … and the document holds nothing else.
    let mut operation_ids = HashSet::new();
    let mut documented = 0;
    for (path, item) in paths {
        assert!(path.starts_with("/api/v1/"), "{path}");
        for (method, op) in item.as_object().unwrap() {
            assert!(METHODS.contains(&method.as_str()), "{method} {path}");
            documented += 1;
            assert!(
                ROUTES
                    .iter()
                    .any(|r| r.path == path && r.verb.as_str().eq_ignore_ascii_case(method)),
                "{method} {path} is documented but not served"
            );
            assert!(
                operation_ids.insert(op["operationId"].as_str().unwrap().to_owned()),
                "operationId repeated: {op}"
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path} has no responses");
            for status in responses.keys() {
                assert!(
                    status.len() == 3 && status.parse::<u16>().is_ok(),
                    "{status}"
                );
            }
            // Every `{param}` of the path is declared as a required path parameter.
            for param in path.split('/').filter_map(|s| s.strip_prefix('{')) {
                let name = param.trim_end_matches('}');
                let declared = op["parameters"].as_array().into_iter().flatten().any(|p| {
                    let p = match p.get("$ref") {
                        Some(r) => resolve(&doc, r.as_str().unwrap()).unwrap(),
                        None => p,
                    };
                    p["in"] == "path" && p["name"] == name && p["required"] == true
                });
                assert!(declared, "{method} {path}: {{{name}}} is not declared");
            }
        }
    }
    assert_eq!(documented, ROUTES.len());

    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        assert!(r.starts_with("#/components/"), "{r}");
        assert!(resolve(&doc, &r).is_some(), "dangling $ref {r}");
    }

    // The server answers exactly the documented methods on each documented path.
    let api = Api::token(&app, 1).await;
    for (path, item) in paths {
        let concrete = path
            .replace("{id}", "no-such-app")
            .replace("{webhookId}", "no-such-webhook")
            .replace("{deliveryId}", "no-such-delivery");
        assert!(
            !concrete.contains('{'),
            "{path}: a path parameter is not filled in"
        );
        for method in METHODS {
            let m = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let a = Api::send(api.request(m, &concrete)).await;
            if item.get(method).is_some() {
                assert_ne!(a.status, 405, "{method} {path}: {a:?}");
                let message = a.body["message"].as_str().unwrap_or_default();
                assert!(!message.contains("no such route"), "{method} {path}: {a:?}");
            } else {
                assert_error(&a, 405, "Method not allowed");
                assert!(a.header("allow").is_some(), "{method} {path}: {a:?}");
            }
        }
    }
    for unknown in [
        "/api/v1",
        "/api/v1/",
        "/api/v1/nothing",
        "/api/v1/apps/x/y/z",
    ] {
        assert_error(&api.get(unknown).await, 404, "Not found");
    }
}

#[tokio::test]
async fn list_pages_through_the_developers_apps_and_searches_by_name() {
    let app = TestApp::sqlite().await;
    let alice = Api::token(&app, 0).await;
    let bob = Api::token(&app, 1).await;
    for name in ["Alpha One", "alpha two", "Beta", "ALPHA three", "Gamma"] {
        alice.create(new_app(name)).await;
    }
    bob.create(new_app("Alpha of Bob")).await;

    // Alice: the demo app plus five, in the order they were created, two per page.
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/apps?limit=2&cursor={c}"),
            None => "/api/v1/apps?limit=2".to_owned(),
        };
        let page = alice.get(&path).await;
        assert_eq!(page.status, 200, "{page:?}");
        assert_eq!(page.body["total"], 6);
        pages += 1;
        for a in page.body["apps"].as_array().unwrap() {
            names.push(a["name"].as_str().unwrap().to_owned());
            for field in [
                "id",
                "client_id",
                "distribution",
                "review_state",
                "updated_at",
            ] {
                assert!(a[field].is_string(), "{field} in {a}");
            }
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        [
            "Demo Integration",
            "Alpha One",
            "alpha two",
            "Beta",
            "ALPHA three",
            "Gamma"
        ]
    );

    let all = alice.get("/api/v1/apps").await.body;
    assert_eq!(all["apps"][0]["distribution_status"], "Sharing");
    assert_eq!(all["apps"][1]["distribution_status"], "Not sharing");
    assert_eq!(all["apps"][1]["review_state"], "unreviewed");
    assert_eq!(all["next_cursor"], Value::Null);

    let found = alice.get("/api/v1/apps?search=alpha").await.body;
    let found: Vec<&str> = found["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["Alpha One", "alpha two", "ALPHA three"]);
    let page = alice.get("/api/v1/apps?search=ALPHA&limit=1").await.body;
    assert_eq!(page["total"], 3);
    assert_eq!(page["apps"].as_array().unwrap().len(), 1);
    let none = alice.get("/api/v1/apps?search=zzz").await.body;
    assert_eq!(none["apps"], json!([]));
    assert_eq!(none["total"], 0);

    let bobs = bob.get("/api/v1/apps").await.body;
    assert_eq!(bobs["total"], 1, "only Bob's own apps: {bobs}");
    assert_eq!(bobs["apps"][0]["name"], "Alpha of Bob");

    for bad in [
        "limit=0",
        "limit=101",
        "limit=two",
        "cursor=garbage!",
        "limit=1&limit=2",
    ] {
        let a = alice.get(&format!("/api/v1/apps?{bad}")).await;
        assert_error(&a, 400, "Invalid request");
    }
}

#[tokio::test]
async fn create_returns_the_secret_once_and_the_overview_describes_the_app() {
    let app = TestApp::sqlite().await;
    let alice = Api::token(&app, 0).await;
    let res = alice
        .post(
            "/api/v1/apps",
            json!({
                "name": "  Reporter  ",
                "description": "Weekly reports.",
                "avatar_url": "https://cdn.example.test/r.png",
                "callback_urls": ["https://r.example.test/cb", "http://127.0.0.1/cb"],
                "scopes": ["read:jira-work", "read:confluence-content.all", "offline_access"],
            }),
        )
        .await;
    assert_eq!(res.status, 201, "{res:?}");
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let created = res.body;
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        res.headers["location"],
        format!("/api/v1/apps/{id}").as_str()
    );
    let secret = created["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 32);
    assert_eq!(created["name"], "Reporter");
    assert_eq!(created["distribution"], "private", "private by default");
    assert_eq!(created["client_type"], "confidential");

    for key in [id, created["client_id"].as_str().unwrap()] {
        let overview = alice.get(&format!("/api/v1/apps/{key}")).await;
        assert_eq!(overview.status, 200, "{overview:?}");
        let o = overview.body;
        assert!(o.get("client_secret").is_none(), "shown only once: {o}");
        assert_eq!(o["id"], id);
        assert_eq!(o["description"], "Weekly reports.");
        assert_eq!(o["avatar_url"], "https://cdn.example.test/r.png");
        assert_eq!(o["distribution_status"], "Not sharing");
        assert_eq!(o["review_state"], "unreviewed");
        assert_eq!(o["authorization_type"], "OAuth 2.0 (3LO)");
        assert_eq!(
            o["callback_urls"],
            json!(["https://r.example.test/cb", "http://127.0.0.1/cb"])
        );
        assert_eq!(
            o["scopes"],
            json!([
                "read:jira-work",
                "read:confluence-content.all",
                "offline_access"
            ])
        );
        let apis: Vec<&str> = o["apis"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["product"].as_str().unwrap())
            .collect();
        assert_eq!(apis.len(), 2, "{o}");
        assert!(
            apis.contains(&"jira") && apis.contains(&"confluence"),
            "{o}"
        );
        assert!(o["apis"][0]["scopes"][0]["description"].is_string());
        assert!(o["created_at"].is_string() && o["updated_at"].is_string());
    }

    let public = alice
        .create(json!({ "name": "CLI", "client_type": "public", "distribution": "sharing" }))
        .await;
    assert_eq!(public["client_secret"], Value::Null);
    assert_eq!(public["client_type"], "public");
    assert_eq!(public["distribution_status"], "Sharing");

    for (body, prefix) in [
        (json!({ "description": "no name" }), "Invalid request"),
        (json!({ "name": "   " }), "Invalid request"),
        (
            json!({ "name": "x", "avatar_url": "http://cdn.test/a.png" }),
            "Invalid request",
        ),
        (
            json!({ "name": "x", "distribution": "public" }),
            "Invalid request",
        ),
        (
            json!({ "name": "x", "callbackUrls": [] }),
            "Invalid request",
        ),
    ] {
        let a = alice.post("/api/v1/apps", body.clone()).await;
        assert_error(&a, 400, prefix);
    }

    let catalog = alice.get("/api/v1/products").await;
    assert_eq!(catalog.status, 200, "{catalog:?}");
    assert!(
        catalog.body["identity_scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("read:me"))
    );
    let jira = catalog.body["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["product"] == "jira")
        .unwrap();
    assert!(
        jira["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["scope"] == "read:jira-work" && s["description"].is_string())
    );
}

/// Security checklist R5, through the developer-console API.
#[tokio::test]
async fn invalid_callback_urls_are_refused_at_create_and_update() {
    let app = TestApp::sqlite().await;
    let alice = Api::token(&app, 0).await;
    let id = demo_app_id(&app).await;
    let before = alice.get(&format!("/api/v1/apps/{id}")).await.body;
    for bad in [
        "/relative/cb",
        "https://app.example.test/cb#fragment",
        "https://user:pw@app.example.test/cb",
        "https://app.example.test/cb@evil.test",
        "http://app.example.test/cb",
        "javascript:alert(1)",
        "data:text/html,hi",
        "https://*.example.test/cb",
        "*",
        "https://app.example.test/c b",
    ] {
        let mut body = new_app("Bad callback");
        body["callback_urls"] = json!(["https://ok.example.test/cb", bad]);
        let a = alice.post("/api/v1/apps", body).await;
        assert_error(&a, 400, "Invalid callback URL");
        let a = alice
            .patch(
                &format!("/api/v1/apps/{id}"),
                json!({ "callback_urls": [bad] }),
            )
            .await;
        assert_error(&a, 400, "Invalid callback URL");
    }
    let many: Vec<String> = (0..21)
        .map(|i| format!("https://app.example.test/cb{i}"))
        .collect();
    let a = alice
        .patch(
            &format!("/api/v1/apps/{id}"),
            json!({ "callback_urls": many }),
        )
        .await;
    assert_error(&a, 400, "Invalid request");
    assert_eq!(alice.get(&format!("/api/v1/apps/{id}")).await.body, before);
    assert_eq!(alice.get("/api/v1/apps").await.body["total"], 1);
}

#[tokio::test]
async fn unknown_scopes_are_refused_naming_the_scope() {
    let app = TestApp::sqlite().await;
    let alice = Api::token(&app, 0).await;
    let id = demo_app_id(&app).await;
    let mut body = new_app("Scopes");
    body["scopes"] = json!(["read:jira-work", "read:nonexistent-thing"]);
    let a = alice.post("/api/v1/apps", body).await;
    assert_error(&a, 400, "Unknown scope");
    assert!(
        a.body["message"]
            .as_str()
            .unwrap()
            .contains("read:nonexistent-thing")
    );

    let a = alice
        .patch(
            &format!("/api/v1/apps/{id}"),
            json!({ "scopes": ["read:me", "manage:everything"] }),
        )
        .await;
    assert_error(&a, 400, "Unknown scope");
    assert!(
        a.body["message"]
            .as_str()
            .unwrap()
            .contains("manage:everything")
    );

    for malformed in ["read:me read:jira-work", "", "bad\"scope"] {
        let a = alice
            .patch(
                &format!("/api/v1/apps/{id}"),
                json!({ "scopes": [malformed] }),
            )
            .await;
        assert_error(&a, 400, "Invalid request");
    }
    // Identity scopes need no API.
    let a = alice
        .patch(
            &format!("/api/v1/apps/{id}"),
            json!({ "scopes": ["openid", "email", "read:jira-work"] }),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
}

#[tokio::test]
async fn update_saves_settings_permissions_and_distribution() {
    let app = TestApp::sqlite().await;
    let alice = Api::token(&app, 0).await;
    let created = alice
        .create(json!({
            "name": "Before",
            "avatar_url": "https://cdn.example.test/a.png",
            "scopes": ["read:jira-work"],
        }))
        .await;
    let path = format!("/api/v1/apps/{}", created["id"].as_str().unwrap());
    app.clock.advance(Duration::minutes(5));

    let a = alice
        .patch(
            &path,
            json!({
                "name": "After",
                "description": "New words.",
                "callback_urls": ["https://after.example.test/cb"],
                "scopes": ["read:jira-work", "write:jira-work", "read:me"],
                "distribution": "sharing",
            }),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let o = &a.body;
    assert_eq!(o["name"], "After");
    assert_eq!(o["description"], "New words.");
    assert_eq!(o["callback_urls"], json!(["https://after.example.test/cb"]));
    assert_eq!(o["distribution"], "sharing");
    assert_eq!(o["distribution_status"], "Sharing");
    assert_eq!(o["new_scopes"], json!(["write:jira-work", "read:me"]));
    assert_eq!(o["avatar_url"], "https://cdn.example.test/a.png", "kept");
    assert_ne!(o["updated_at"], created["updated_at"]);

    let a = alice.patch(&path, json!({ "avatar_url": null })).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["avatar_url"], Value::Null);
    assert_eq!(a.body["new_scopes"], json!([]));
    assert_eq!(a.body["name"], "After", "untouched fields stay");

    let a = alice
        .patch(&path, json!({ "distribution": "private" }))
        .await;
    assert_eq!(a.body["distribution_status"], "Not sharing");

    for (body, prefix) in [
        (json!({}), "Invalid request"),
        (json!({ "name": "" }), "Invalid request"),
        (
            json!({ "avatar_url": "javascript:alert(1)" }),
            "Invalid request",
        ),
        (json!({ "owner": "someone" }), "Invalid request"),
        (json!({ "review_state": "approved" }), "Invalid request"),
        (json!({ "scopes": "read:me" }), "Invalid request"),
    ] {
        assert_error(&alice.patch(&path, body).await, 400, prefix);
    }
}

/// Another developer's app answers exactly like an app that does not exist, for every
/// verb and by app id or client id: 404, never 403.
#[tokio::test]
async fn another_developers_app_is_not_found_for_every_verb() {
    let app = TestApp::sqlite().await;
    let bob = Api::token(&app, 1).await;
    let alice = Api::token(&app, 0).await;
    let id = demo_app_id(&app).await;
    let client_id = app.app().client_id.clone();
    for key in [id.as_str(), client_id.as_str(), "no-such-app"] {
        let answers = [
            bob.get(&format!("/api/v1/apps/{key}")).await,
            bob.patch(
                &format!("/api/v1/apps/{key}"),
                json!({ "name": "Mine now" }),
            )
            .await,
            bob.get(&format!("/api/v1/apps/{key}/authorization-url"))
                .await,
            bob.post(
                &format!("/api/v1/apps/{key}/secret"),
                json!({ "grace": "0s" }),
            )
            .await,
            bob.delete(&format!("/api/v1/apps/{key}")).await,
        ];
        for a in answers {
            assert_error(&a, 404, "Not found");
            assert_eq!(a.body["message"], "Not found: no such app", "{a:?}");
        }
    }
    let o = alice.get(&format!("/api/v1/apps/{id}")).await;
    assert_eq!(o.status, 200);
    assert_eq!(o.body["name"], "Demo Integration", "Bob changed nothing");
    // The demo app's secret still works: Bob's rotation never happened.
    let code = app.demo_code().await;
    post_form(&app, &code_params(&app, &code))
        .await
        .assert_tokens();
}

#[tokio::test]
async fn deleting_an_installed_app_is_refused_listing_its_sites() {
    let app = TestApp::sqlite().await;
    let alice = Api::token(&app, 0).await;
    let id = demo_app_id(&app).await;
    // A consent on Acme installs the demo app there.
    let code = app.demo_code().await;
    let acme = &app.demo.sites[0];

    let a = alice.delete(&format!("/api/v1/apps/{id}")).await;
    assert_error(&a, 409, "App installed");
    assert_eq!(
        a.body["sites"],
        json!([{ "cloud_id": acme.cloud_id, "name": "Acme", "url": "https://acme.example.com" }])
    );
    assert!(a.body["message"].as_str().unwrap().contains("Acme"));
    assert_eq!(alice.get(&format!("/api/v1/apps/{id}")).await.status, 200);

    // Uninstalled, it goes, and everything it held with it.
    let access_token = post_form(&app, &code_params(&app, &code))
        .await
        .assert_tokens();
    assert!(
        app.core
            .store()
            .uninstall_app(&id, &acme.cloud_id)
            .await
            .unwrap()
    );
    let a = alice.delete(&format!("/api/v1/apps/{id}")).await;
    assert_eq!(a.status, 204, "{a:?}");
    assert_error(
        &alice.get(&format!("/api/v1/apps/{id}")).await,
        404,
        "Not found",
    );
    assert_error(
        &alice.delete(&format!("/api/v1/apps/{id}")).await,
        404,
        "Not found",
    );
    assert_eq!(crate::token::me_status(&app, &access_token).await, 401);

    let fresh = alice.create(new_app("Never installed")).await;
    let a = alice
        .delete(&format!("/api/v1/apps/{}", fresh["id"].as_str().unwrap()))
        .await;
    assert_eq!(a.status, 204, "{a:?}");
}

#[tokio::test]
async fn authorization_url_is_ready_made_and_completes_a_consent() {
    let app = TestApp::sqlite().await;
    let alice = Api::token(&app, 0).await;
    let id = demo_app_id(&app).await;
    let demo = app.app();

    let a = alice
        .get(&format!(
            "/api/v1/apps/{id}/authorization-url?scope=read%3Ame%20read%3Ajira-work%20offline_access"
        ))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let url = a.body["authorization_url"].as_str().unwrap();
    assert!(url.starts_with(&app.url("/authorize?")), "{url}");
    let param = |name: &str| crate::support::query_param(url, name);
    assert_eq!(param("audience").as_deref(), Some("api.trilo.test"));
    assert_eq!(param("client_id").as_deref(), Some(demo.client_id.as_str()));
    assert_eq!(
        param("scope").as_deref(),
        Some("read:me read:jira-work offline_access")
    );
    assert_eq!(
        param("redirect_uri").as_deref(),
        Some(demo.callback_url.as_str())
    );
    assert_eq!(param("state").as_deref(), Some("YOUR_USER_BOUND_VALUE"));
    assert_eq!(param("response_type").as_deref(), Some("code"));
    assert_eq!(param("prompt").as_deref(), Some("consent"));
    assert_eq!(a.body["state_placeholder"], "YOUR_USER_BOUND_VALUE");

    // With a real state, the URL runs the whole flow.
    let url = url.replace("YOUR_USER_BOUND_VALUE", "s-42");
    let code = app.obtain_code(&url).await;
    let tokens = post_form(&app, &code_params(&app, &code)).await;
    tokens.assert_tokens();
    assert!(tokens.body["refresh_token"].is_string());

    // Without a scope: every scope the app added.
    let all = alice
        .get(&format!("/api/v1/apps/{id}/authorization-url"))
        .await;
    assert_eq!(all.body["scope"], demo.scopes.join(" "));

    let a = alice
        .get(&format!(
            "/api/v1/apps/{id}/authorization-url?scope=read%3Ajira-work%20write%3Aconfluence-content"
        ))
        .await;
    assert_error(&a, 400, "Scope not added");
    assert!(
        a.body["message"]
            .as_str()
            .unwrap()
            .contains("write:confluence-content")
    );
    let a = alice
        .get(&format!(
            "/api/v1/apps/{id}/authorization-url?redirect_uri=https%3A%2F%2Fevil.test%2Fcb"
        ))
        .await;
    assert_error(&a, 400, "Invalid request");

    // A public client's URL carries the PKCE placeholders.
    let public = alice
        .create(json!({
            "name": "Public", "client_type": "public",
            "callback_urls": ["http://127.0.0.1/cb"], "scopes": ["read:jira-work"],
        }))
        .await;
    let a = alice
        .get(&format!(
            "/api/v1/apps/{}/authorization-url",
            public["id"].as_str().unwrap()
        ))
        .await;
    let url = a.body["authorization_url"].as_str().unwrap();
    assert_eq!(
        crate::support::query_param(url, "code_challenge_method").as_deref(),
        Some("S256")
    );
}

#[tokio::test]
async fn a_rotated_secret_keeps_the_old_one_valid_for_the_grace_only() {
    let app = TestApp::sqlite().await;
    let alice = Api::token(&app, 0).await;
    let id = demo_app_id(&app).await;
    let old = app.app().client_secret.clone();

    let a = alice
        .post(
            &format!("/api/v1/apps/{id}/secret"),
            json!({ "grace": "1h" }),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert_eq!(a.body["grace_seconds"], 3600);
    assert!(a.body["previous_secret_valid_until"].is_string());
    let new = a.body["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);

    // Inside the grace, both secrets work.
    let codes = obtain_codes(&app, &app.authorize_url(&[]), 2).await;
    let params = code_params(&app, &codes[0]);
    post_form(&app, &with(&params, &[("client_secret", &old)]))
        .await
        .assert_tokens();
    let params = code_params(&app, &codes[1]);
    post_form(&app, &with(&params, &[("client_secret", &new)]))
        .await
        .assert_tokens();

    // Once it has passed, the old one is refused and the new one still works.
    app.clock.advance(Duration::hours(1) + Duration::seconds(1));
    let codes = obtain_codes(&app, &app.authorize_url(&[]), 2).await;
    let params = code_params(&app, &codes[0]);
    post_form(&app, &with(&params, &[("client_secret", &old)]))
        .await
        .assert_error(401, "invalid_client");
    let params = code_params(&app, &codes[1]);
    post_form(&app, &with(&params, &[("client_secret", &new)]))
        .await
        .assert_tokens();

    for grace in ["8d", "soon", "-1h", "1.5h"] {
        let a = alice
            .post(
                &format!("/api/v1/apps/{id}/secret"),
                json!({ "grace": grace }),
            )
            .await;
        assert_error(&a, 400, "Invalid request");
    }
    let a = alice
        .post(&format!("/api/v1/apps/{id}/secret"), json!({}))
        .await;
    assert_error(&a, 400, "Invalid request");
    let public = alice
        .create(json!({ "name": "Public", "client_type": "public" }))
        .await;
    let a = alice
        .post(
            &format!("/api/v1/apps/{}/secret", public["id"].as_str().unwrap()),
            json!({ "grace": "1h" }),
        )
        .await;
    assert_error(&a, 400, "Invalid request");
}

#[tokio::test]
async fn requests_without_valid_credentials_get_401_with_a_basic_challenge() {
    let app = TestApp::sqlite().await;
    let alice = &app.demo.users[0];
    let token = app
        .core
        .create_api_token(&alice.account_id, "soon revoked", None)
        .await
        .unwrap();
    let code = app.demo_code().await;
    let access_token = post_form(&app, &code_params(&app, &code))
        .await
        .assert_tokens();
    let url = app.url("/api/v1/apps");
    let client = reqwest::Client::new();
    let requests = [
        client.get(&url),
        client.post(&url).json(&new_app("x")),
        client
            .get(&url)
            .basic_auth(&alice.email, Some("wrong-token")),
        client
            .get(&url)
            .basic_auth("bob@example.com", Some(&token.secret)),
        client.get(&url).bearer_auth(&access_token),
        client.get(&url).header("authorization", "Basic !!!"),
        client.get(&url).header("cookie", "trilo_session=forged"),
    ];
    for req in requests {
        let a = Answer::of(req.fetch().await).await;
        assert_error(&a, 401, "Authentication required");
        assert!(
            a.header("www-authenticate")
                .is_some_and(|c| c.starts_with("Basic realm=")),
            "{a:?}"
        );
    }

    let ok = client
        .get(&url)
        .basic_auth(&alice.email, Some(&token.secret))
        .fetch()
        .await;
    assert_eq!(ok.status(), 200);
    app.core
        .revoke_api_token(&alice.account_id, &token.token.token_id)
        .await
        .unwrap();
    let a = Answer::of(
        client
            .get(&url)
            .basic_auth(&alice.email, Some(&token.secret))
            .fetch()
            .await,
    )
    .await;
    assert_error(&a, 401, "Authentication required");
}

/// Cookie-authenticated writes need `X-Requested-With`; any write from a foreign origin is
/// refused; API-token scripts need nothing extra.
#[tokio::test]
async fn session_cookie_authenticates_and_writes_need_the_csrf_defence() {
    let app = TestApp::sqlite().await;
    let plain = Api::session(&app, 0, false).await;
    let guarded = Api::session(&app, 0, true).await;

    // Reads need only the cookie.
    let list = plain.get("/api/v1/apps").await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.body["total"], 1);

    // Writes without the header are refused, whatever the verb.
    let created = guarded.create(new_app("Made in the browser")).await;
    let path = format!("/api/v1/apps/{}", created["id"].as_str().unwrap());
    for a in [
        plain.post("/api/v1/apps", new_app("forged")).await,
        plain.patch(&path, json!({ "name": "forged" })).await,
        plain
            .post(&format!("{path}/secret"), json!({ "grace": "0s" }))
            .await,
        plain.delete(&path).await,
    ] {
        assert_error(&a, 403, "Cross-site request refused");
    }
    // An HTML form cannot help: wrong content type, no custom header.
    let form = Api::send(
        plain
            .request(reqwest::Method::POST, "/api/v1/apps")
            .form(&[("name", "forged")]),
    )
    .await;
    assert_error(&form, 403, "Cross-site request refused");
    let form = Api::send(
        guarded
            .request(reqwest::Method::POST, "/api/v1/apps")
            .form(&[("name", "forged")]),
    )
    .await;
    assert_error(&form, 415, "Unsupported media type");

    // Browsers' own word about the origin is heeded, for cookies and tokens alike.
    let token = Api::token(&app, 0).await;
    for api in [&guarded, &token] {
        for (name, value) in [
            ("origin", "https://evil.test"),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
        ] {
            let a = Api::send(
                api.request(reqwest::Method::PATCH, &path)
                    .header(name, value)
                    .json(&json!({ "name": "forged" })),
            )
            .await;
            assert_error(&a, 403, "Cross-site request refused");
        }
    }
    let same_origin = Api::send(
        guarded
            .request(reqwest::Method::PATCH, &path)
            .header("origin", app.base.as_str())
            .header("sec-fetch-site", "same-origin")
            .json(&json!({ "name": "Renamed in the browser" })),
    )
    .await;
    assert_eq!(same_origin.status, 200, "{same_origin:?}");
    assert_eq!(
        token.get(&path).await.body["name"],
        "Renamed in the browser"
    );
    let a = token
        .patch(&path, json!({ "name": "Renamed by a script" }))
        .await;
    assert_eq!(a.status, 200, "scripts send no extra header: {a:?}");

    // Logging out ends API access through the cookie.
    let Auth::Session { client, .. } = &guarded.auth else {
        unreachable!()
    };
    let logout = client.get(app.url("/logout")).fetch().await;
    let page = logout.text().await.unwrap();
    let csrf = crate::support::hidden_field(&page, "csrf_token").unwrap();
    client
        .post(app.url("/logout"))
        .form(&[("csrf_token", csrf)])
        .fetch()
        .await;
    assert_error(
        &guarded.get("/api/v1/apps").await,
        401,
        "Authentication required",
    );
}

#[tokio::test]
async fn bodies_must_be_json_objects_of_the_documented_shape() {
    let app = TestApp::sqlite().await;
    let alice = Api::token(&app, 0).await;
    let raw = |content_type: Option<&str>, body: Vec<u8>| {
        let mut req = alice
            .request(reqwest::Method::POST, "/api/v1/apps")
            .body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        Api::send(req)
    };
    let good = serde_json::to_vec(&new_app("ok")).unwrap();
    assert_error(
        &raw(None, good.clone()).await,
        415,
        "Unsupported media type",
    );
    assert_error(
        &raw(Some("text/plain"), good.clone()).await,
        415,
        "Unsupported media type",
    );
    assert_error(
        &raw(Some("application/json; charset=iso-8859-1"), good.clone()).await,
        415,
        "Unsupported media type",
    );
    assert_eq!(
        raw(Some("application/json; charset=utf-8"), good)
            .await
            .status,
        201
    );
    for broken in [&b"{"[..], b"{\"name\": }", b"", b"not json"] {
        let a = raw(Some("application/json"), broken.to_vec()).await;
        assert_error(&a, 400, "Malformed JSON");
    }
    for wrong in [&b"[]"[..], b"\"name\"", b"{\"name\": 5}", b"null"] {
        let a = raw(Some("application/json"), wrong.to_vec()).await;
        assert_error(&a, 400, "Invalid request");
    }
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(100 * 1024));
    let a = raw(Some("application/json"), big.into_bytes()).await;
    assert_error(&a, 413, "Payload too large");
}

/// Operators (named in the configuration) review other developers' apps; nobody else,
/// and nobody their own.
#[tokio::test]
async fn only_operators_review_apps_and_never_their_own() {
    let app = TestApp::sqlite().await;
    let alice = Api::token(&app, 0).await; // the test trilo's operator
    let bob = Api::token(&app, 1).await; // a member only
    let demo = demo_app_id(&app).await;
    let approve = json!({ "review_state": "approved" });

    // Bob is no operator: refused before any lookup, so ids tell him nothing.
    for key in [demo.as_str(), "no-such-app"] {
        let a = bob
            .post(&format!("/api/v1/apps/{key}/review"), approve.clone())
            .await;
        assert_error(&a, 403, "Operators only");
    }

    let bobs = bob.create(new_app("Bob's tool")).await;
    let bobs_id = bobs["id"].as_str().unwrap();
    let a = alice
        .post(&format!("/api/v1/apps/{bobs_id}/review"), approve.clone())
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["review_state"], "approved");
    assert_eq!(
        bob.get(&format!("/api/v1/apps/{bobs_id}")).await.body["review_state"],
        "approved"
    );
    // Alice reviewed it but still cannot manage it.
    assert_error(
        &alice.get(&format!("/api/v1/apps/{bobs_id}")).await,
        404,
        "Not found",
    );

    let a = alice
        .post(&format!("/api/v1/apps/{demo}/review"), approve.clone())
        .await;
    assert_error(&a, 403, "Own app");
    let a = alice
        .post("/api/v1/apps/no-such-app/review", approve.clone())
        .await;
    assert_error(&a, 404, "Not found");
    let a = alice
        .post(
            &format!("/api/v1/apps/{bobs_id}/review"),
            json!({ "review_state": "great" }),
        )
        .await;
    assert_error(&a, 400, "Invalid request");
    let a = alice
        .post(
            &format!("/api/v1/apps/{bobs_id}/review"),
            json!({ "review_state": "unreviewed" }),
        )
        .await;
    assert_eq!(a.body["review_state"], "unreviewed");

    // An admin of a site is still no operator: operators are named in the configuration.
    let acme = &app.demo.sites[0].cloud_id;
    app.core
        .set_membership(&app.demo.users[1].account_id, acme, "jira", Role::Admin)
        .await
        .unwrap();
    let a = bob
        .post(&format!("/api/v1/apps/{demo}/review"), approve)
        .await;
    assert_error(&a, 403, "Operators only");
}

/// The whole life of an app through the API, on both backends.
async fn app_lifecycle(app: TestApp) {
    let alice = Api::token(&app, 0).await;
    let bob = Api::token(&app, 1).await;
    let created = alice.create(new_app("Lifecycle")).await;
    let path = format!("/api/v1/apps/{}", created["id"].as_str().unwrap());
    assert_eq!(alice.get("/api/v1/apps?search=life").await.body["total"], 1);
    let a = alice
        .patch(
            &path,
            json!({ "distribution": "sharing", "scopes": ["read:jira-work", "write:jira-work"] }),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["new_scopes"], json!(["write:jira-work"]));
    let url = alice.get(&format!("{path}/authorization-url")).await;
    assert_eq!(url.body["scope"], "read:jira-work write:jira-work");
    let rotated = alice
        .post(&format!("{path}/secret"), json!({ "grace": "24h" }))
        .await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    assert_error(&bob.get(&path).await, 404, "Not found");
    assert_error(&bob.delete(&path).await, 404, "Not found");
    assert_eq!(alice.delete(&path).await.status, 204);
    assert_error(&alice.get(&path).await, 404, "Not found");
}

crate::on_both_backends!(app_lifecycle_runs_on_both_backends, super::app_lifecycle);
