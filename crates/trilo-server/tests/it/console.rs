//! The developer console's pages over HTTP: login required, another developer's app is
//! "not found", forms need the session's CSRF token, bad input is refused and changes
//! nothing, user input renders as text, pages send the security headers.

use crate::support::{Fetch, TestApp, csp_of, hidden_field, location};

/// A logged-in browser for demo user `user` (0 Alice, 1 Bob) and its CSRF token.
pub(crate) async fn developer(app: &TestApp, user: usize) -> (reqwest::Client, String) {
    let client = app.browser();
    let u = &app.demo.users[user];
    assert_eq!(
        app.login(&client, &u.email, &u.password).await.status(),
        303
    );
    let page = client
        .get(app.url("/developer/apps/new"))
        .fetch_text()
        .await;
    let csrf = hidden_field(&page, "csrf_token").expect("the form has a csrf_token");
    (client, csrf)
}

async fn demo_app_id(app: &TestApp) -> String {
    app.core
        .find_app(&app.app().client_id)
        .await
        .unwrap()
        .app_id
}

#[tokio::test]
async fn console_pages_need_a_login() {
    let app = TestApp::sqlite().await;
    let id = demo_app_id(&app).await;
    for path in [
        "/developer".to_owned(),
        format!("/developer/apps/{id}/settings"),
    ] {
        let res = app.browser().get(app.url(&path)).fetch().await;
        assert_eq!(res.status(), 303, "{path}");
        assert!(
            location(&res).starts_with("/login?return_to=%2Fdeveloper"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn another_developers_app_is_not_found() {
    let app = TestApp::sqlite().await;
    let id = demo_app_id(&app).await; // Alice's
    let (bob, csrf) = developer(&app, 1).await;
    for tab in [
        "",
        "/authorization",
        "/permissions",
        "/distribution",
        "/webhooks",
        "/settings",
    ] {
        let res = bob
            .get(app.url(&format!("/developer/apps/{id}{tab}")))
            .fetch()
            .await;
        assert_eq!(res.status(), 404, "GET {tab}");
    }
    for action in [
        "/authorization",
        "/permissions",
        "/distribution",
        "/settings",
        "/webhooks",
        "/secret",
        "/delete",
    ] {
        let res = bob
            .post(app.url(&format!("/developer/apps/{id}{action}")))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("sharing", "on"),
                ("name", "Stolen"),
            ])
            .fetch()
            .await;
        assert_eq!(res.status(), 404, "POST {action}");
    }
    let unchanged = app.core.find_app(&id).await.unwrap();
    assert_eq!(unchanged.name, "Demo Integration");
}

#[tokio::test]
async fn console_forms_need_the_session_csrf_token() {
    let app = TestApp::sqlite().await;
    let (alice, _) = developer(&app, 0).await;
    let before = app.core.store().list_apps(None).await.unwrap().len();
    for form in [
        vec![("name", "No Token")],
        vec![("name", "Wrong"), ("csrf_token", "forged")],
    ] {
        let res = alice
            .post(app.url("/developer/apps"))
            .form(&form)
            .fetch()
            .await;
        assert_eq!(res.status(), 403);
    }
    assert_eq!(
        app.core.store().list_apps(None).await.unwrap().len(),
        before
    );
}

#[tokio::test]
async fn console_forms_must_be_urlencoded_and_readable() {
    let app = TestApp::sqlite().await;
    let (alice, csrf) = developer(&app, 0).await;
    let before = app.core.store().list_apps(None).await.unwrap().len();
    for (content_type, body, status) in [
        (
            "application/json",
            format!(r#"{{"csrf_token":"{csrf}","name":"Json"}}"#),
            415,
        ),
        (
            "application/x-www-form-urlencoded",
            format!("csrf_token={csrf}&name=%zz"),
            400,
        ),
    ] {
        let res = alice
            .post(app.url("/developer/apps"))
            .header("content-type", content_type)
            .body(body)
            .fetch()
            .await;
        assert_eq!(res.status(), status, "{content_type}");
    }
    assert_eq!(
        app.core.store().list_apps(None).await.unwrap().len(),
        before
    );
}

#[tokio::test]
async fn user_input_renders_as_text_and_pages_send_security_headers() {
    let app = TestApp::sqlite().await;
    let (alice, csrf) = developer(&app, 0).await;
    let res = alice
        .post(app.url("/developer/apps"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "<script>alert('name')</script>"),
            ("description", "\"><img src=x onerror=alert(1)>"),
        ])
        .fetch()
        .await;
    assert_eq!(res.status(), 201);
    let csp = csp_of(&res);
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let created = res.text().await.unwrap();
    let list = alice
        .get(app.url("/developer?q=<script>"))
        .fetch_text()
        .await;
    for page in [&created, &list] {
        assert!(!page.contains("<script>alert"), "unescaped name");
        assert!(!page.contains("<img src=x"), "unescaped description");
        assert!(page.contains("&lt;script&gt;") || page.contains("&#60;script&#62;"));
    }
}

#[tokio::test]
async fn bad_callback_urls_and_unknown_scopes_are_refused_and_change_nothing() {
    let app = TestApp::sqlite().await;
    let id = demo_app_id(&app).await;
    let before = app.core.find_app(&id).await.unwrap();
    let (alice, csrf) = developer(&app, 0).await;
    for bad in [
        "javascript:alert(1)",
        "https://app.example.test/*",
        "not a url",
    ] {
        let res = alice
            .post(app.url(&format!("/developer/apps/{id}/authorization")))
            .form(&[("csrf_token", csrf.as_str()), ("callback_urls", bad)])
            .fetch()
            .await;
        assert_eq!(res.status(), 400, "{bad}");
        assert!(res.text().await.unwrap().contains("form-error"), "{bad}");
    }
    let res = alice
        .post(app.url(&format!("/developer/apps/{id}/permissions")))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("scope", "read:me"),
            ("scope", "admin:everything"),
        ])
        .fetch()
        .await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("admin:everything"));
    let after = app.core.find_app(&id).await.unwrap();
    assert_eq!(after.callback_urls, before.callback_urls);
    assert_eq!(after.scopes, before.scopes);
}

#[tokio::test]
async fn a_rotated_secret_keeps_the_old_one_for_the_grace_only() {
    let app = TestApp::sqlite().await;
    let id = demo_app_id(&app).await;
    let old = app.app().client_secret.clone();
    let (alice, csrf) = developer(&app, 0).await;
    let page = alice
        .post(app.url(&format!("/developer/apps/{id}/secret")))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("grace", "1h"),
            ("confirmed", "yes"),
        ])
        .fetch_text()
        .await;
    let start = page.find("id=\"client-secret\">").unwrap() + "id=\"client-secret\">".len();
    let new = &page[start..start + 43];
    let client_id = app.app().client_id.clone();
    let authenticates = |secret: String| {
        let creds = trilo_protocol::token_request::ClientCredentials {
            client_id: client_id.clone(),
            secret: Some(secret),
            method: trilo_protocol::token_request::AuthMethod::Post,
        };
        let core = app.core.clone();
        async move { core.authenticate_client(&creds).await.is_ok() }
    };
    assert!(authenticates(new.to_owned()).await);
    assert!(
        authenticates(old.clone()).await,
        "the old secret works during the grace"
    );
    app.clock
        .advance(time::Duration::hours(1) + time::Duration::seconds(1));
    assert!(authenticates(new.to_owned()).await);
    assert!(
        !authenticates(old).await,
        "the old secret ends with the grace"
    );
}

/// Authenticated clients are cached, yet a secret rotated away without grace stops
/// working at once.
#[tokio::test]
async fn a_secret_rotated_without_grace_stops_at_once_though_cached() {
    let app = TestApp::sqlite().await;
    let id = demo_app_id(&app).await;
    let old = app.app().client_secret.clone();
    let creds = |secret: String| trilo_protocol::token_request::ClientCredentials {
        client_id: app.app().client_id.clone(),
        secret: Some(secret),
        method: trilo_protocol::token_request::AuthMethod::Post,
    };
    assert!(
        app.core
            .authenticate_client(&creds(old.clone()))
            .await
            .is_ok()
    );
    let new = app
        .core
        .rotate_app_secret(&id, time::Duration::ZERO)
        .await
        .unwrap();
    assert!(
        app.core.authenticate_client(&creds(old)).await.is_err(),
        "the old secret ends with the rotation"
    );
    assert!(app.core.authenticate_client(&creds(new)).await.is_ok());
}

/// A `state` carrying markup renders as text on the consent page and on the demo
/// callback page.
#[tokio::test]
async fn a_state_with_markup_renders_as_text() {
    let app = TestApp::sqlite_with_demo_callback().await;
    let state = "<script>alert('state')</script>";
    let browser = app.browser();
    let page = app
        .consent_page(&browser, &app.authorize_url(&[("state", state)]))
        .await;
    assert!(!page.contains("<script>alert"), "consent page");
    let res = app
        .submit_consent(&browser, &page, "accept", Some(&app.demo.sites[0].cloud_id))
        .await;
    let callback = location(&res);
    let landed = browser.get(&callback).fetch_text().await;
    assert!(!landed.contains("<script>alert"), "callback page");
    assert!(
        landed.contains("&lt;script&gt;") || landed.contains("&#60;script&#62;"),
        "{landed}"
    );
}
