//! The operator console (issue 17): the configured operators see every site, add sites,
//! host products on them and review other developers' apps; a refused form keeps what was
//! typed and shows the message beside its field; nobody else finds the console.

use trilo_core::model::{AuditQuery, ClientType, Distribution, ReviewState};
use trilo_core::services::admin::NewApp;

use crate::site_admin::{logged_in, page};
use crate::support::{Fetch, TestApp, hidden_field};

/// Posts a form from a signed-in page, with the session's CSRF token.
async fn send(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let (_, html) = page(client, &app.url("/account/password")).await;
    let csrf = hidden_field(&html, "csrf_token").expect("a csrf_token");
    let mut fields = vec![("csrf_token", csrf.as_str())];
    fields.extend_from_slice(form);
    let res = client.post(app.url(path)).form(&fields).fetch().await;
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The operator console's form that adds a site.
async fn add_site(app: &TestApp, client: &reqwest::Client, name: &str, url: &str) -> (u16, String) {
    send(
        app,
        client,
        "/operator/sites",
        &[("name", name), ("url", url)],
    )
    .await
}

/// The operator console's form that hosts `product` at `upstream` on the site `cloud_id`.
async fn host_product(
    app: &TestApp,
    client: &reqwest::Client,
    cloud_id: &str,
    product: &str,
    upstream: &str,
) -> (u16, String) {
    let form = [
        ("cloud_id", cloud_id),
        ("product", product),
        ("upstream", upstream),
    ];
    send(app, client, "/operator/sites/products", &form).await
}

/// The operator console's review form, setting the app `app_id` to `state`.
async fn review(
    app: &TestApp,
    client: &reqwest::Client,
    app_id: &str,
    state: &str,
) -> (u16, String) {
    let path = format!("/operator/apps/{app_id}/review");
    send(app, client, &path, &[("state", state)]).await
}

pub(crate) async fn bobs_shared_app(app: &TestApp) -> String {
    app.core
        .create_app(NewApp {
            owner_account_id: app.demo.users[1].account_id.clone(),
            name: "Bob's Board".into(),
            description: "Shows issues on a wall.".into(),
            avatar_url: None,
            callback_urls: vec![
                "https://board.example.net/cb".into(),
                "https://board.example.net/cb2".into(),
            ],
            scopes: vec!["read:jira-work".into()],
            distribution: Distribution::Sharing,
            client_type: ClientType::Confidential,
        })
        .await
        .unwrap()
        .app
        .app_id
}

#[tokio::test]
async fn the_operator_adds_a_site_and_hosts_a_product_with_errors_beside_their_fields() {
    let app = TestApp::sqlite().await;
    let alice = logged_in(&app, 0).await;
    let (status, html) = page(&alice, &app.url("/operator")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&app.demo.sites[0].name), "{html}");
    assert!(html.contains("id=\"nav-operator\""), "{html}");
    assert!(
        html.contains("<title>Sites · trilo operator console</title>"),
        "{html}"
    );

    // A bad address: refused beside its field, with the name kept and nothing created.
    let before = app.core.sites().await.unwrap().len();
    let (status, html) = add_site(&app, &alice, "Umbrella", "umbrella.example.com").await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("id=\"url-error\""), "{html}");
    assert!(
        html.contains("The site&#39;s address must be a full web address"),
        "{html}"
    );
    assert!(html.contains("aria-describedby=\"url-error\""), "{html}");
    assert!(html.contains("value=\"Umbrella\""), "{html}");
    assert!(!html.contains("id=\"name-error\""), "{html}");
    assert_eq!(app.core.sites().await.unwrap().len(), before);

    let (status, html) = add_site(&app, &alice, "Umbrella", "https://umbrella.example.com").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Site Umbrella added."), "{html}");
    let umbrella = app
        .core
        .sites()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == "Umbrella")
        .expect("the site");

    // Hosting a product: a bad upstream is refused beside its field and kept.
    let (status, html) = host_product(
        &app,
        &alice,
        &umbrella.cloud_id,
        "jira",
        "ftp://jira.umbrella.internal",
    )
    .await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("id=\"upstream-error\""), "{html}");
    assert!(
        html.contains("value=\"ftp://jira.umbrella.internal\""),
        "{html}"
    );
    let hosted = app.core.site_products(&umbrella.cloud_id).await.unwrap();
    assert!(hosted.is_empty(), "{hosted:?} {html}");
    let (status, html) = host_product(
        &app,
        &alice,
        &umbrella.cloud_id,
        "no-such-product",
        "https://jira.umbrella.internal",
    )
    .await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("there is no product"), "{html}");
    let (status, html) = host_product(
        &app,
        &alice,
        &umbrella.cloud_id,
        "jira",
        "https://jira.umbrella.internal",
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("<code>jira</code> → https://jira.umbrella.internal"),
        "{html}"
    );
    let hosted = app.core.site_products(&umbrella.cloud_id).await.unwrap();
    assert_eq!(hosted.len(), 1);
    assert_eq!(hosted[0].upstream_url, "https://jira.umbrella.internal");

    // Both changes are Alice's in the audit log.
    let events = app
        .core
        .store()
        .audit_events(&AuditQuery {
            cloud_id: Some(umbrella.cloud_id.clone()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let actions: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.actor_account_id.as_deref()))
        .collect();
    let alice_id = app.demo.users[0].account_id.as_str();
    assert_eq!(
        actions,
        vec![
            ("site.product_added", Some(alice_id)),
            ("site.created", Some(alice_id))
        ]
    );
}

#[tokio::test]
async fn the_operator_approves_others_apps_but_never_their_own() {
    let app = TestApp::sqlite().await;
    let bobs = bobs_shared_app(&app).await;
    let demo = app.core.find_app(&app.app().client_id).await.unwrap();
    let alice = logged_in(&app, 0).await;
    let (status, html) = page(&alice, &app.url("/operator/review")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Bob&#39;s Board"), "{html}");
    assert!(html.contains("board.example.net</td>"), "{html}");
    assert!(html.contains(&format!("id=\"approve-{bobs}\"")), "{html}");
    // Alice's own app is listed without a button.
    assert!(
        !html.contains(&format!("id=\"approve-{}\"", demo.app_id)),
        "{html}"
    );

    let (status, html) = review(&app, &alice, &bobs, "approved").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Bob&#39;s Board is approved."), "{html}");
    let reviewed = app.core.find_app(&bobs).await.unwrap();
    assert_eq!(reviewed.review_state, ReviewState::Approved);

    // Her own app, even by a hand-made form, is refused and unchanged.
    let (status, html) = review(&app, &alice, &demo.app_id, "approved").await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("Nobody reviews their own app"), "{html}");
    let unchanged = app.core.find_app(&demo.app_id).await.unwrap();
    assert_eq!(unchanged.review_state, demo.review_state);

    let (status, html) = review(&app, &alice, &bobs, "unreviewed").await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(
        app.core.find_app(&bobs).await.unwrap().review_state,
        ReviewState::Unreviewed
    );
}

/// Bob administers a site but runs nothing: the console is not there for him, its forms
/// change nothing, and his navigation has no link to it.
#[tokio::test]
async fn only_operators_find_the_console() {
    let app = TestApp::sqlite().await;
    let bobs = bobs_shared_app(&app).await;
    let acme = app.demo.sites[0].cloud_id.clone();
    app.core
        .set_membership(
            &app.demo.users[1].account_id,
            &acme,
            "jira",
            trilo_core::model::Role::Admin,
        )
        .await
        .unwrap();
    let bob = logged_in(&app, 1).await;
    for path in ["/operator", "/operator/review"] {
        let (status, html) = page(&bob, &app.url(path)).await;
        assert_eq!(status, 404, "{path}: {html}");
    }
    let sites = app.core.sites().await.unwrap().len();
    let (status, _) = add_site(&app, &bob, "Initech", "https://initech.example.com").await;
    assert_eq!(status, 404);
    assert_eq!(app.core.sites().await.unwrap().len(), sites);
    let (status, _) = review(&app, &bob, &bobs, "approved").await;
    assert_eq!(status, 404);
    let (_, html) = page(&bob, &app.url("/account")).await;
    assert!(html.contains("id=\"nav-admin\""), "{html}");
    assert!(!html.contains("id=\"nav-operator\""), "{html}");
}
