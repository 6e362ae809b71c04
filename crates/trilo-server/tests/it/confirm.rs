//! Pages people trust (issue 17) over HTTP: destructive forms ask first and act only when
//! confirmed, a deletion wants the name typed, the last admin of a product cannot remove
//! or demote themselves, changes made in the web console name their actor in the audit
//! log, and unknown URLs get a 404 page with a way back and the request id.

use trilo_core::model::{AuditQuery, Role};

use crate::console::developer;
use crate::site_admin::{block_user_installs, logged_in, page, post, set_member};
use crate::support::{Fetch, TestApp, hidden_field};

async fn demo_app_id(app: &TestApp) -> String {
    demo_app(app).await.app_id
}

async fn demo_app(app: &TestApp) -> trilo_core::model::App {
    app.core.find_app(&app.app().client_id).await.unwrap()
}

async fn installed_on_acme(app: &TestApp, app_id: &str) -> bool {
    let acme = &app.demo.sites[0].cloud_id;
    app.core
        .store()
        .installations_of_app(app_id)
        .await
        .unwrap()
        .iter()
        .any(|i| &i.cloud_id == acme)
}

#[tokio::test]
async fn an_uninstall_asks_first_and_acts_only_when_confirmed() {
    let app = TestApp::sqlite().await;
    let alice = logged_in(&app, 0).await;
    let app_id = demo_app_id(&app).await;
    let client_id = app.app().client_id.clone();
    let (status, _) = post(&app, &alice, "/apps/install", &[("client_id", &client_id)]).await;
    assert_eq!(status, 200);
    assert!(installed_on_acme(&app, &app_id).await);

    let (status, html) = post(&app, &alice, "/apps/uninstall", &[("app_id", &app_id)]).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"confirm-title\""), "{html}");
    let name = demo_app(&app).await.name;
    assert!(html.contains(&name), "names the app: {html}");
    // The confirmation repeats the form, with `confirmed=yes`, and cancels back to the list.
    assert_eq!(
        hidden_field(&html, "app_id").as_deref(),
        Some(app_id.as_str())
    );
    assert_eq!(hidden_field(&html, "confirmed").as_deref(), Some("yes"));
    assert!(html.contains("/apps\" id=\"confirm-cancel\""), "{html}");
    assert!(
        installed_on_acme(&app, &app_id).await,
        "nothing happened yet"
    );

    let (status, html) = post(
        &app,
        &alice,
        "/apps/uninstall",
        &[("app_id", &app_id), ("confirmed", "yes")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("App uninstalled."), "{html}");
    assert!(!installed_on_acme(&app, &app_id).await);
}

#[tokio::test]
async fn deleting_an_app_needs_its_name_typed() {
    let app = TestApp::sqlite().await;
    let (client, csrf) = developer(&app, 0).await;
    let app_id = demo_app_id(&app).await;
    let name = demo_app(&app).await.name;
    let delete = |fields: Vec<(&'static str, String)>| {
        let client = client.clone();
        let url = app.url(&format!("/developer/apps/{app_id}/delete"));
        let mut form = vec![("csrf_token", csrf.clone())];
        form.extend(fields);
        async move {
            let res = client.post(url).form(&form).fetch().await;
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let (status, html) = delete(vec![]).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("id=\"confirm-name\""),
        "asks for the name: {html}"
    );
    let (status, html) = delete(vec![
        ("confirmed", "yes".into()),
        ("confirm_name", "not the name".into()),
    ])
    .await;
    assert_eq!(status, 400);
    assert!(html.contains("id=\"confirm-error\""), "{html}");
    assert!(app.core.find_app(&app.app().client_id).await.is_ok());

    let (status, _) = delete(vec![("confirmed", "yes".into()), ("confirm_name", name)]).await;
    assert_eq!(status, 303);
    assert!(
        app.core.find_app(&app.app().client_id).await.is_err(),
        "deleted"
    );
}

async fn role_on_acme(app: &TestApp, user: usize, product: &str) -> Option<Role> {
    let acme = &app.demo.sites[0].cloud_id;
    app.core
        .store()
        .memberships_of_site(acme)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.account_id == app.demo.users[user].account_id && m.product_key == product)
        .map(|m| m.role)
}

#[tokio::test]
async fn the_last_admin_of_a_product_cannot_remove_or_demote_themselves() {
    let app = TestApp::sqlite().await;
    let alice = logged_in(&app, 0).await;
    let me = app.demo.users[0].account_id.clone();
    let email = app.demo.users[0].email.clone();
    assert_eq!(role_on_acme(&app, 0, "jira").await, Some(Role::Admin));

    let (status, html) = post(
        &app,
        &alice,
        "/members/remove",
        &[
            ("account_id", &me),
            ("product", "jira"),
            ("confirmed", "yes"),
        ],
    )
    .await;
    assert_eq!(status, 400, "refused: {html}");
    assert!(html.contains("last admin of jira"), "{html}");
    let (_, html) = set_member(&app, &alice, &email, "jira", "member").await;
    assert!(html.contains("last admin of jira"), "{html}");
    assert_eq!(role_on_acme(&app, 0, "jira").await, Some(Role::Admin));

    // With a second admin, Alice may step down: the site keeps an administrator.
    let bob = app.demo.users[1].email.clone();
    let (_, html) = set_member(&app, &alice, &bob, "jira", "admin").await;
    assert!(html.contains("Member saved."), "{html}");
    let (_, html) = set_member(&app, &alice, &email, "jira", "member").await;
    assert!(html.contains("Member saved."), "{html}");
    assert_eq!(role_on_acme(&app, 0, "jira").await, Some(Role::Member));

    // The web console's changes are recorded as Alice's, not the system's.
    let events = app
        .core
        .store()
        .audit_events(&AuditQuery {
            action_prefix: Some("membership.".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(events.len() >= 2, "{events:?}");
    for e in &events[..2] {
        assert_eq!(e.actor_account_id.as_deref(), Some(me.as_str()), "{e:?}");
    }
}

#[tokio::test]
async fn unknown_urls_get_a_404_page_with_a_way_back_and_the_request_id() {
    let app = TestApp::sqlite().await;
    let res = reqwest::get(app.url("/no/such/page")).await.unwrap();
    assert_eq!(res.status(), 404);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert!(html.contains("Page not found"), "{html}");
    assert!(html.contains("id=\"way-back\""), "{html}");
    assert!(
        html.contains(&format!("<code id=\"request-id\">{id}</code>")),
        "{id} in {html}"
    );
    // A request id the client chose is shown only when it is plain text.
    let res = reqwest::Client::new()
        .get(app.url("/no/such/page"))
        .header("x-request-id", "<b>x</b>")
        .fetch()
        .await;
    let html = res.text().await.unwrap();
    assert!(
        !html.contains("<b>x</b>") && !html.contains("&lt;b&gt;"),
        "{html}"
    );

    // Programs get JSON.
    let res = reqwest::get(app.url("/oauth/no-such-endpoint"))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], 404);

    // Other error pages have the way back too.
    let alice = logged_in(&app, 0).await;
    let (status, html) = page(&alice, &app.url("/admin/sites/no-such-site")).await;
    assert_eq!(status, 404);
    assert!(html.contains("id=\"way-back\"") && html.contains("id=\"request-id\""));
}

#[tokio::test]
async fn a_refused_callback_url_stays_in_the_form_with_the_reason() {
    let app = TestApp::sqlite().await;
    let (client, csrf) = developer(&app, 0).await;
    let app_id = demo_app_id(&app).await;
    let typed = "https://ok.example.test/callback\nhttp://not-https.example.test/cb";
    let res = client
        .post(app.url(&format!("/developer/apps/{app_id}/authorization")))
        .form(&[("csrf_token", csrf.as_str()), ("callback_urls", typed)])
        .fetch()
        .await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"form-error\""), "{html}");
    assert!(
        html.contains("http://not-https.example.test/cb</textarea>"),
        "what was typed is kept: {html}"
    );
    // The reason is beside the field too.
    assert!(
        html.contains("aria-describedby=\"callback_urls-error\""),
        "{html}"
    );
    assert!(html.contains("id=\"callback_urls-error\""), "{html}");
    // Nothing was saved.
    let saved = app.core.find_app(&app.app().client_id).await.unwrap();
    assert!(
        !saved
            .callback_urls
            .iter()
            .any(|u| u.contains("ok.example.test"))
    );
}

#[tokio::test]
async fn the_permissions_tab_searches_and_keeps_what_the_search_hides() {
    let app = TestApp::sqlite().await;
    let (client, csrf) = developer(&app, 0).await;
    let app_id = demo_app_id(&app).await;
    let before = app
        .core
        .find_app(&app.app().client_id)
        .await
        .unwrap()
        .scopes;
    assert!(!before.is_empty());
    let url = app.url(&format!("/developer/apps/{app_id}/permissions?q=webhook"));
    let html = client.get(url).fetch_text().await;
    assert!(html.contains("Granular scopes"), "{html}");
    assert!(
        !html.contains("value=\"read:jira-work\" checked"),
        "filtered out: {html}"
    );
    // What the app has and the search hides is posted again as it is.
    for scope in &before {
        if !html.contains(&format!("value=\"{scope}\" checked")) {
            assert!(
                html.contains(&format!(
                    "<input type=\"hidden\" name=\"scope\" value=\"{scope}\">"
                )),
                "{scope} kept: {html}"
            );
        }
    }
    let none = client
        .get(app.url(&format!(
            "/developer/apps/{app_id}/permissions?q=zzzz-nothing"
        )))
        .fetch_text()
        .await;
    assert!(none.contains("id=\"no-scope-found\""), "{none}");
    let _ = csrf;
}

#[tokio::test]
async fn the_sessions_page_lists_browsers_and_signs_out_the_others() {
    let app = TestApp::sqlite().await;
    let here = logged_in(&app, 0).await;
    let elsewhere = logged_in(&app, 0).await;
    let (status, html) = page(&here, &app.url("/account/sessions")).await;
    assert_eq!(status, 200);
    assert_eq!(html.matches("<tr><td>").count(), 2, "{html}");
    assert_eq!(html.matches("id=\"this-browser\"").count(), 1, "{html}");
    let csrf = hidden_field(&html, "csrf_token").unwrap();
    let res = here
        .post(app.url("/account/sessions/end-others"))
        .form(&[("csrf_token", csrf.as_str())])
        .fetch()
        .await;
    assert_eq!(res.status(), 303);
    let (status, html) = page(&here, &app.url("/account/sessions")).await;
    assert_eq!(status, 200);
    assert_eq!(html.matches("<tr><td>").count(), 1, "{html}");
    // The other browser is signed out: the page sends it to the login.
    let res = elsewhere.get(app.url("/account/sessions")).fetch().await;
    assert_eq!(res.status(), 303);
}

/// Every change made through the pages names the signed-in admin, also where the service
/// behind it records no actor itself; the same change from the command line has none.
#[tokio::test]
async fn changes_made_in_the_pages_name_the_admin_who_made_them() {
    let app = TestApp::sqlite().await;
    let alice = logged_in(&app, 0).await;
    let (status, html) = block_user_installs(&app, &alice).await;
    assert_eq!(status, 200);
    assert!(html.contains("User installs blocked."), "{html}");
    let acme = app.demo.sites[0].cloud_id.clone();
    app.core
        .set_user_installs(&acme, trilo_core::model::UserInstalls::Allowed)
        .await
        .unwrap();
    let events = app
        .core
        .store()
        .audit_events(&AuditQuery {
            action_prefix: Some("site.user_installs".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let actors: Vec<Option<&str>> = events
        .iter()
        .map(|e| e.actor_account_id.as_deref())
        .collect();
    assert_eq!(
        actors,
        vec![None, Some(app.demo.users[0].account_id.as_str())],
        "newest first: the direct call, then the page's"
    );
    // The audit page shows who, by email.
    let (_, html) = page(&alice, &app.url(&format!("/admin/sites/{acme}/audit"))).await;
    let by_alice = format!("<td>{}</td></tr>", app.demo.users[0].email);
    assert!(html.contains(&by_alice), "{html}");
}

#[tokio::test]
async fn the_audit_log_pages_filters_by_date_and_exports() {
    let app = TestApp::sqlite().await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let alice_id = app.demo.users[0].account_id.clone();
    for i in 0..60 {
        let target = if i == 0 {
            "=HYPERLINK(\"x\")".to_owned()
        } else {
            alice_id.clone()
        };
        app.core
            .audit(
                None,
                "test.paged",
                &target,
                Some(&acme),
                serde_json::json!({ "i": i }),
            )
            .await
            .unwrap();
    }
    let alice = logged_in(&app, 0).await;
    let base = format!("/admin/sites/{acme}/audit?action=test.");
    let (status, html) = page(&alice, &app.url(&base)).await;
    assert_eq!(status, 200);
    assert_eq!(html.matches("<code>test.paged</code>").count(), 50);
    // Targets are shown by name, with the id in the title.
    assert!(html.contains(&format!(
        "title=\"{alice_id}\">{}</td>",
        app.demo.users[0].email
    )));
    let next = html
        .split("href=\"")
        .find_map(|rest| {
            let href = rest.split('"').next()?;
            href.contains("after=")
                .then(|| crate::support::unescape_html(href))
        })
        .expect("an Older events link");
    let (_, older) = page(&alice, &app.url(&next)).await;
    assert_eq!(older.matches("<code>test.paged</code>").count(), 10);
    assert!(!older.contains("id=\"older-events\""));

    // A date range that holds nothing.
    let (_, none) = page(
        &alice,
        &app.url(&format!("{base}&from=2001-01-01&to=2001-01-31")),
    )
    .await;
    assert!(none.contains("id=\"no-events\""), "{none}");
    let (status, _) = page(&alice, &app.url(&format!("{base}&from=January"))).await;
    assert_eq!(status, 400);

    // The exports hold the whole selection; a formula is defused in the CSV.
    let res = alice
        .get(app.url(&format!("{base}&format=csv")))
        .fetch()
        .await;
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("audit.csv")
    );
    let csv = res.text().await.unwrap();
    assert_eq!(csv.lines().count(), 61, "{csv}");
    assert!(csv.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{csv}");
    let json: serde_json::Value = alice
        .get(app.url(&format!("{base}&format=json")))
        .fetch_json()
        .await;
    assert_eq!(json.as_array().unwrap().len(), 60);
}

/// The API and the command line name who made a change too: the API token's account, and
/// the operating-system user of a `trilo admin` command, which the audit page spells out.
#[tokio::test]
async fn changes_made_through_the_api_and_the_command_line_name_who_made_them() {
    let app = TestApp::sqlite().await;
    let alice_id = app.demo.users[0].account_id.clone();
    let demo = demo_app_id(&app).await;
    let api = crate::api_v1::Api::token(&app, 0).await;
    let answer = api
        .post(
            &format!("/api/v1/apps/{demo}/secret"),
            serde_json::json!({ "grace": "1h" }),
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let rotated = app
        .core
        .store()
        .audit_events(&AuditQuery {
            action_prefix: Some("app.secret_rotated".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rotated.len(), 1);
    assert_eq!(
        rotated[0].actor_account_id.as_deref(),
        Some(alice_id.as_str())
    );

    let acme = app.demo.sites[0].cloud_id.clone();
    app.run_trilo(
        &[
            "admin",
            "site",
            "set-user-installs",
            "--cloud-id",
            &acme,
            "blocked",
        ],
        &[("USER", "ops-oncall")],
    );
    let alice = logged_in(&app, 0).await;
    let (_, html) = page(&alice, &app.url(&format!("/admin/sites/{acme}/audit"))).await;
    assert!(
        html.contains("<td>the command line (user ops-oncall)</td></tr>"),
        "{html}"
    );
}

/// A refused console or account form keeps what was typed and shows the reason beside
/// the field it is about, in plain words (the API keeps its field names).
#[tokio::test]
async fn refused_forms_keep_input_and_name_the_field_in_plain_words() {
    let app = TestApp::sqlite().await;
    let (client, csrf) = developer(&app, 0).await;
    let send = |path: String, fields: Vec<(&'static str, String)>| {
        let client = client.clone();
        let csrf = csrf.clone();
        let url = app.url(&path);
        async move {
            let mut form = vec![("csrf_token", csrf)];
            form.extend(fields);
            let res = client.post(url).form(&form).fetch().await;
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };

    let long_name = "n".repeat(201);
    let (status, html) = send(
        "/developer/apps".into(),
        vec![
            ("name", long_name.clone()),
            ("description", "Kept text".into()),
        ],
    )
    .await;
    assert_eq!(status, 400, "{html}");
    assert!(
        html.contains(
            "<p class=\"field-error\" id=\"name-error\">Name must be 1 to 200 characters"
        ),
        "{html}"
    );
    assert!(html.contains("aria-describedby=\"name-error\""), "{html}");
    assert!(html.contains(">Kept text</textarea>"), "{html}");

    let app_id = demo_app_id(&app).await;
    let before = demo_app(&app).await;
    let (status, html) = send(
        format!("/developer/apps/{app_id}/settings"),
        vec![
            ("name", "Renamed but not saved".into()),
            ("description", before.description.clone()),
            ("avatar_url", "http://avatars.example.test/a.png".into()),
        ],
    )
    .await;
    assert_eq!(status, 400, "{html}");
    assert!(
        html.contains("id=\"avatar_url-error\">Avatar URL must be an absolute https URL.</p>"),
        "{html}"
    );
    assert!(
        !html.contains("avatar_url must"),
        "no field internals on a page: {html}"
    );
    assert!(html.contains("value=\"Renamed but not saved\""), "{html}");
    assert!(
        html.contains("value=\"http://avatars.example.test/a.png\""),
        "{html}"
    );
    assert_eq!(demo_app(&app).await.name, before.name, "nothing saved");

    // The API still names the field as the API spells it.
    let api = crate::api_v1::Api::token(&app, 0).await;
    let answer = api
        .patch(
            &format!("/api/v1/apps/{app_id}"),
            serde_json::json!({ "avatar_url": "http://avatars.example.test/a.png" }),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.body["message"],
        "Invalid request: avatar_url must be an absolute https URL"
    );

    // The password form: each refusal beside the field it is about.
    let password = |current: &str, new: &str, again: &str| {
        vec![
            ("current_password", current.to_owned()),
            ("new_password", new.to_owned()),
            ("confirm_password", again.to_owned()),
        ]
    };
    let alice_password = app.demo.users[0].password.clone();
    for (fields, field) in [
        (
            password(
                "wrong password",
                "a long passphrase 9",
                "a long passphrase 9",
            ),
            "current_password",
        ),
        (
            password(&alice_password, "a long passphrase 9", "another passphrase"),
            "confirm_password",
        ),
        (password(&alice_password, "short", "short"), "new_password"),
    ] {
        let (status, html) = send("/account/password".into(), fields).await;
        assert!(status == 400 || status == 403, "{field}: {status}");
        assert!(
            html.contains(&format!("id=\"{field}-error\"")),
            "{field}: {html}"
        );
        assert_eq!(
            html.matches("class=\"field-error\"").count(),
            1,
            "{field}: {html}"
        );
    }
}
