//! The developer console's Webhooks page: it lists the app's webhooks with their secrets
//! and its recent deliveries; plain forms (CSRF token, no JavaScript) add a webhook,
//! delete one and redeliver; a refused URL re-renders the form with the error.

use trilo_protocol::webhooks::{EVENT_TYPES, POLICY_ACTIVATED};

use crate::api_v1_webhooks::{issue_events, quiet_app};
use crate::console::developer;
use crate::support::{Fetch, TestApp, location, unescape_html};

const HOOK: &str = "https://receiver.example/hook";

async fn app_id(app: &TestApp) -> String {
    app.core
        .find_app(&app.app().client_id)
        .await
        .unwrap()
        .app_id
}

async fn get(client: &reqwest::Client, url: String) -> (u16, String) {
    let res = client.get(url).fetch().await;
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn post(client: &reqwest::Client, url: String, form: &[(&str, &str)]) -> (u16, String) {
    let res = client.post(url).form(form).fetch().await;
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn the_page_lists_webhooks_with_secrets_and_recent_deliveries() {
    let app = quiet_app().await;
    let id = app_id(&app).await;
    let hook = app
        .core
        .create_webhook(&id, HOOK, &["jira:issue_created".to_owned()])
        .await
        .unwrap();
    let (alice, csrf) = developer(&app, 0).await;
    let page_url = app.url(&format!("/developer/apps/{id}/webhooks"));

    let (status, page) = get(&alice, page_url.clone()).await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!(
        "href=\"/developer/apps/{id}/webhooks\" aria-current=\"page\""
    )));
    assert!(page.contains(HOOK), "the webhook's URL");
    assert!(
        page.contains(&format!(
            "<code class=\"webhook-secret\" id=\"secret-{}\">{}</code>",
            hook.subscription.subscription_id, hook.secret
        )),
        "the secret in a <code> element"
    );
    assert!(page.contains(&format!(
        "/developer/apps/{id}/webhooks/{}/delete",
        hook.subscription.subscription_id
    )));
    assert!(
        page.contains("x-trilo-signature: t=&lt;unix seconds&gt;,v1=&lt;hex&gt;")
            || page.contains("x-trilo-signature: t=&#60;unix seconds&#62;,v1=&#60;hex&#62;"),
        "how to verify: {page}"
    );
    for e in EVENT_TYPES {
        assert!(
            page.contains(&format!("name=\"event\" value=\"{}\"", e.name)),
            "a checkbox for {}",
            e.name
        );
    }
    assert!(page.contains("id=\"no-deliveries\""));

    issue_events(&app, 2).await;
    let deliveries = app.core.deliveries_of_app(&id, 10).await.unwrap();
    assert_eq!(deliveries.len(), 2);
    let (_, page) = get(&alice, page_url).await;
    assert!(!page.contains("id=\"no-deliveries\""));
    let table = &page[page
        .find("id=\"deliveries\"")
        .expect("the deliveries table")..];
    for d in &deliveries {
        let row = &table[table
            .find(&format!("id=\"delivery-{}\"", d.delivery_id))
            .unwrap()..];
        let row = &row[..row.find("</tr>").unwrap()];
        assert!(row.contains("jira:issue_created"), "{row}");
        assert!(row.contains("Pending"), "{row}");
        assert!(
            row.contains(&format!(
                "action=\"/developer/apps/{id}/deliveries/{}/redeliver\"",
                d.delivery_id
            )),
            "{row}"
        );
        assert!(row.contains("Redeliver"), "{row}");
    }
    // Newest first.
    let first = table.find(&deliveries[0].delivery_id).unwrap();
    let second = table.find(&deliveries[1].delivery_id).unwrap();
    assert!(first < second);

    // Redeliver from the row's form.
    let (status, page) = post(
        &alice,
        app.url(&format!(
            "/developer/apps/{id}/deliveries/{}/redeliver",
            deliveries[1].delivery_id
        )),
        &[("csrf_token", csrf.as_str())],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"notice\""), "{page}");
    let (status, page) = post(
        &alice,
        app.url(&format!(
            "/developer/apps/{id}/deliveries/no-such-delivery/redeliver"
        )),
        &[("csrf_token", csrf.as_str())],
    )
    .await;
    assert_eq!(status, 404);
    assert!(page.contains("id=\"form-error\""), "{page}");
}

#[tokio::test]
async fn the_add_form_creates_a_webhook() {
    let app = TestApp::sqlite().await;
    let id = app_id(&app).await;
    let (alice, csrf) = developer(&app, 0).await;
    let (status, page) = post(
        &alice,
        app.url(&format!("/developer/apps/{id}/webhooks")),
        &[
            ("csrf_token", csrf.as_str()),
            ("url", HOOK),
            ("event", "jira:issue_created"),
            ("event", POLICY_ACTIVATED),
        ],
    )
    .await;
    assert_eq!(status, 201, "{page}");
    assert!(page.contains("id=\"notice\""), "{page}");
    let hooks = app.core.webhooks_of_app(&id).await.unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].url, HOOK);
    assert_eq!(hooks[0].events, ["jira:issue_created", POLICY_ACTIVATED]);
    assert!(page.contains(&format!("id=\"webhook-{}\"", hooks[0].subscription_id)));
    assert!(page.contains(&app.core.webhook_secret(&hooks[0].subscription_id)));
}

#[tokio::test]
async fn a_refused_webhook_rerenders_the_form_with_the_error_and_creates_nothing() {
    let app = TestApp::sqlite().await;
    let id = app_id(&app).await;
    let (alice, csrf) = developer(&app, 0).await;
    let add = app.url(&format!("/developer/apps/{id}/webhooks"));
    let http = "http://receiver.example/hook";
    let (status, page) = post(
        &alice,
        add.clone(),
        &[
            ("csrf_token", csrf.as_str()),
            ("url", http),
            ("event", "jira:issue_created"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    let error = &page[page.find("id=\"form-error\"").expect("the error")..];
    let error = unescape_html(&error[..error.find("</p>").unwrap()]);
    assert!(error.contains("https"), "{error}");
    assert!(
        page.contains(&format!("name=\"url\" value=\"{http}\"")),
        "the URL stays"
    );
    assert!(
        page.contains("name=\"event\" value=\"jira:issue_created\" checked"),
        "the chosen event stays"
    );

    for form in [
        vec![("csrf_token", csrf.as_str()), ("url", HOOK)],
        vec![
            ("csrf_token", csrf.as_str()),
            ("url", HOOK),
            ("event", "jira:issue_exploded"),
        ],
    ] {
        let (status, page) = post(&alice, add.clone(), &form).await;
        assert_eq!(status, 400, "{form:?}");
        assert!(page.contains("id=\"form-error\""), "{form:?}");
    }
    assert!(app.core.webhooks_of_app(&id).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_delete_button_removes_the_webhook() {
    let app = TestApp::sqlite().await;
    let id = app_id(&app).await;
    let keep = app
        .core
        .create_webhook(
            &id,
            "https://keep.example/hook",
            &["page_created".to_owned()],
        )
        .await
        .unwrap();
    let gone = app
        .core
        .create_webhook(&id, HOOK, &["jira:issue_created".to_owned()])
        .await
        .unwrap();
    let (alice, csrf) = developer(&app, 0).await;
    let delete = app.url(&format!(
        "/developer/apps/{id}/webhooks/{}/delete",
        gone.subscription.subscription_id
    ));
    let (status, page) = post(&alice, delete.clone(), &[("csrf_token", csrf.as_str())]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"notice\""));
    assert!(!page.contains(HOOK), "no longer listed");
    assert!(page.contains("https://keep.example/hook"));
    let left = app.core.webhooks_of_app(&id).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].subscription_id, keep.subscription.subscription_id);

    let (status, page) = post(&alice, delete, &[("csrf_token", csrf.as_str())]).await;
    assert_eq!(status, 404, "deleted already");
    assert!(page.contains("id=\"form-error\""));
}

#[tokio::test]
async fn webhook_forms_need_a_login_the_csrf_token_and_the_apps_developer() {
    let app = TestApp::sqlite().await;
    let id = app_id(&app).await; // Alice's
    let hook = app
        .core
        .create_webhook(&id, HOOK, &["jira:issue_created".to_owned()])
        .await
        .unwrap();
    let hook_id = hook.subscription.subscription_id;

    let res = app
        .browser()
        .get(app.url(&format!("/developer/apps/{id}/webhooks")))
        .fetch()
        .await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/login?return_to=%2Fdeveloper%2Fapps%2F"));

    let (alice, _) = developer(&app, 0).await;
    for form in [
        vec![
            ("url", "https://forged.example/hook"),
            ("event", "jira:issue_created"),
        ],
        vec![
            ("csrf_token", "forged"),
            ("url", "https://forged.example/hook"),
            ("event", "jira:issue_created"),
        ],
    ] {
        let (status, _) = post(
            &alice,
            app.url(&format!("/developer/apps/{id}/webhooks")),
            &form,
        )
        .await;
        assert_eq!(status, 403);
        let (status, _) = post(
            &alice,
            app.url(&format!("/developer/apps/{id}/webhooks/{hook_id}/delete")),
            &form,
        )
        .await;
        assert_eq!(status, 403);
    }

    let (bob, bob_csrf) = developer(&app, 1).await;
    let (status, page) = get(&bob, app.url(&format!("/developer/apps/{id}/webhooks"))).await;
    assert_eq!(status, 404);
    assert!(!page.contains(&hook.secret), "Bob never sees the secret");
    for action in [
        "/webhooks".to_owned(),
        format!("/webhooks/{hook_id}/delete"),
        "/deliveries/any/redeliver".to_owned(),
    ] {
        let (status, _) = post(
            &bob,
            app.url(&format!("/developer/apps/{id}{action}")),
            &[
                ("csrf_token", bob_csrf.as_str()),
                ("url", "https://bob.example/hook"),
                ("event", "jira:issue_created"),
            ],
        )
        .await;
        assert_eq!(status, 404, "POST {action}");
    }
    let left = app.core.webhooks_of_app(&id).await.unwrap();
    assert_eq!(left.len(), 1, "nothing added or deleted");
    assert_eq!(left[0].subscription_id, hook_id);
}
