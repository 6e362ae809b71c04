//! Pages people trust (issue 17) in Chromium: Enter on the consent page allows, the page
//! says who is signed in and where the answer goes; every destructive action asks first,
//! and the audit log names who confirmed it; the last admin cannot lock themselves out;
//! unknown URLs get a 404 page; every signed-in page has the global navigation and a
//! title of its own; an invitation is sent, accepted and used to log in; the operator's
//! refused form shows its error beside the field. Each page is saved at 1280×900 and
//! 390×844 (`target/screenshots`).

use thirtyfour::prelude::*;

use crate::browser::{
    click_on, log_in, open_as_alice, reach_consent, screenshots_at_both_sizes, site_radio,
    type_into, with_browser,
};
use crate::support::{TestApp, query_param};

#[tokio::test]
async fn enter_on_the_consent_page_allows_and_the_page_says_who_and_where() {
    let app = TestApp::sqlite_with_demo_callback().await;
    let authorize_url = app.authorize_url(&[("state", "enter-allows")]);
    let acme = app.demo.sites[0].cloud_id.clone();
    let app = &app;
    with_browser(|driver| async move {
        reach_consent(app, &driver, &authorize_url, false).await?;
        let signed_in = driver.find(By::Id("signed-in")).await?.text().await?;
        assert!(signed_in.contains(app.alice().0), "{signed_in}");
        let not_you = driver.find(By::Id("not-you")).await?.attr("href").await?;
        assert!(
            not_you
                .unwrap_or_default()
                .starts_with("/logout?return_to=")
        );
        let host = driver.find(By::Id("redirect-host")).await?.text().await?;
        let expected = app.base.trim_start_matches("http://");
        assert!(host.contains(expected), "{host}");
        // Reading, writing and deleting look different.
        assert!(!driver.find_all(By::Css("li.scope-read")).await?.is_empty());
        screenshots_at_both_sizes(&driver, "consent").await?;

        let radio = site_radio(&driver, &acme).await?;
        radio.click().await?;
        radio.send_keys(Key::Enter).await?;
        let code = driver
            .query(By::Id("callback-code"))
            .first()
            .await?
            .text()
            .await?;
        assert!(!code.trim().is_empty(), "Enter allowed: the app got a code");
        // The demo's own callback page, where the app's answer lands.
        screenshots_at_both_sizes(&driver, "demo-callback").await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn revoking_an_app_asks_first_and_cancel_changes_nothing() {
    let app = TestApp::sqlite().await;
    // Alice has allowed the demo app.
    let code = app.demo_code().await;
    crate::token::redeem(&app, &code).await.assert_tokens();
    let app = &app;
    with_browser(|driver| async move {
        open_as_alice(&driver, app, "/account/apps").await?;
        click_on(&driver, By::Css("form[action$='/revoke'] button")).await?;
        let title = driver
            .query(By::Id("confirm-title"))
            .first()
            .await?
            .text()
            .await?;
        assert!(title.contains("Revoke access"), "{title}");
        driver.find(By::Id("nav-user")).await?;
        screenshots_at_both_sizes(&driver, "confirm-revoke").await?;
        click_on(&driver, By::Id("confirm-cancel")).await?;
        driver
            .query(By::Css("form[action$='/revoke']"))
            .first()
            .await?;
        assert_eq!(driver.current_url().await?.path(), "/account/apps");

        click_on(&driver, By::Css("form[action$='/revoke'] button")).await?;
        click_on(&driver, By::Id("confirm-submit")).await?;
        driver.query(By::Id("notice")).first().await?;
        assert!(
            driver
                .find_all(By::Css("form[action$='/revoke']"))
                .await?
                .is_empty(),
            "revoked once confirmed"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn the_last_admin_is_told_why_they_cannot_leave() {
    let app = TestApp::sqlite().await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let me = app.demo.users[0].account_id.clone();
    let app = &app;
    with_browser(|driver| async move {
        open_as_alice(&driver, app, &format!("/admin/sites/{acme}")).await?;
        screenshots_at_both_sizes(&driver, "admin-members").await?;
        let remove = format!(
            "form[action$='/members/remove'] input[name='account_id'][value='{me}'] ~ button"
        );
        click_on(&driver, By::Css(remove)).await?;
        click_on(&driver, By::Id("confirm-submit")).await?;
        let error = driver
            .query(By::Id("form-error"))
            .first()
            .await?
            .text()
            .await?;
        assert!(error.contains("last admin"), "{error}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn every_signed_in_page_has_the_navigation_and_its_own_title() {
    let app = TestApp::sqlite().await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let demo_app = app
        .core
        .find_app(&app.app().client_id)
        .await
        .unwrap()
        .app_id;
    let reset = app
        .core
        .request_password_reset(&app.demo.users[1].email)
        .await
        .unwrap()
        .expect("a reset link for Bob");
    let reset_path = format!("/login/reset?token={}", reset.token);
    let app = &app;
    with_browser(|driver| async move {
        // The pages before signing in, and the authorization error page (an unknown app:
        // nothing to send the user back to).
        for (path, name) in [
            ("/login", "login"),
            ("/login/forgot", "forgot-password"),
            (reset_path.as_str(), "reset-password"),
            (
                "/authorize?client_id=no-such-app&response_type=code",
                "authorize-error",
            ),
        ] {
            driver.goto(app.url(path)).await?;
            driver.query(By::Css("h1")).first().await?;
            screenshots_at_both_sizes(&driver, name).await?;
        }
        driver.find(By::Css("h1")).await?;
        driver.goto(app.url("/no/such/page")).await?;
        let heading = driver.find(By::Css("h1")).await?.text().await?;
        assert_eq!(heading, "Page not found");
        driver.find(By::Id("request-id")).await?;
        screenshots_at_both_sizes(&driver, "not-found").await?;

        open_as_alice(&driver, app, "/account").await?;
        let (email, _) = app.alice();
        let pages = [
            ("/", "home"),
            ("/account", "account"),
            ("/account/apps", "account-apps"),
            ("/account/api-tokens", "account-api-tokens"),
            ("/account/password", "account-password"),
            ("/account/sessions", "account-sessions"),
            ("/developer", "developer"),
            ("/developer/apps/new", "developer-new-app"),
            ("/admin", "admin"),
            (&format!("/admin/sites/{acme}/apps"), "admin-apps"),
            (&format!("/admin/sites/{acme}/policies"), "admin-policies"),
            (&format!("/admin/sites/{acme}/audit"), "admin-audit"),
            ("/operator", "operator-sites"),
            ("/operator/review", "operator-review"),
            (&format!("/developer/apps/{demo_app}"), "developer-app"),
            (
                &format!("/developer/apps/{demo_app}/authorization"),
                "developer-app-authorization",
            ),
            (
                &format!("/developer/apps/{demo_app}/permissions"),
                "developer-app-permissions",
            ),
            (
                &format!("/developer/apps/{demo_app}/distribution"),
                "developer-app-distribution",
            ),
            (
                &format!("/developer/apps/{demo_app}/webhooks"),
                "developer-app-webhooks",
            ),
            (
                &format!("/developer/apps/{demo_app}/settings"),
                "developer-app-settings",
            ),
        ];
        let mut titles = std::collections::HashSet::new();
        for (path, name) in pages {
            driver.goto(app.url(path)).await?;
            for id in [
                "nav-account",
                "nav-developer",
                "nav-admin",
                "nav-operator",
                "nav-logout",
            ] {
                driver.find(By::Id(id)).await?;
            }
            let user = driver.find(By::Id("nav-user")).await?.text().await?;
            assert_eq!(user, email, "{path}");
            let title = driver.title().await?;
            assert!(
                titles.insert(title.clone()),
                "{path} repeats the title {title:?}"
            );
            screenshots_at_both_sizes(&driver, name).await?;
        }
        // Bob administers nothing: no Administration link.
        click_on(&driver, By::Id("nav-logout")).await?;
        driver.query(By::Id("logout-submit")).first().await?;
        screenshots_at_both_sizes(&driver, "logout").await?;
        click_on(&driver, By::Id("logout-submit")).await?;
        logged_out(&driver).await?;
        driver.goto(app.url("/account")).await?;
        let bob = &app.demo.users[1];
        log_in(&driver, &bob.email, &bob.password).await?;
        driver.query(By::Id("nav-account")).first().await?;
        assert!(driver.find_all(By::Id("nav-admin")).await?.is_empty());
        assert!(driver.find_all(By::Id("nav-operator")).await?.is_empty());
        Ok(())
    })
    .await;
}

/// Waits for the page a logout ends on, so that the next page is asked for signed out.
async fn logged_out(driver: &WebDriver) -> WebDriverResult<()> {
    driver
        .query(By::XPath("//h1[text()='Logged out']"))
        .first()
        .await
        .map(drop)
}

/// Opens `path`, presses the button `button`, checks the confirmation page (saved as
/// `confirm-NAME`), types `typed_name` if the page asks for one, and confirms.
async fn confirm_in_browser(
    driver: &WebDriver,
    app: &TestApp,
    path: &str,
    button: By,
    name: &str,
    typed_name: Option<&str>,
) -> WebDriverResult<()> {
    driver.goto(app.url(path)).await?;
    click_on(driver, button).await?;
    driver.query(By::Id("confirm-title")).first().await?;
    driver.find(By::Id("confirm-cancel")).await?;
    screenshots_at_both_sizes(driver, &format!("confirm-{name}")).await?;
    if let Some(typed) = typed_name {
        type_into(driver, By::Id("confirm-name"), typed).await?;
    }
    let submit = driver.find(By::Id("confirm-submit")).await?;
    submit.click().await?;
    // The confirmation page has a nav bar too: wait until the next page has replaced it.
    submit.wait_until().stale().await?;
    driver.query(By::Id("nav-user")).first().await?;
    assert!(
        driver.find_all(By::Id("confirm-title")).await?.is_empty(),
        "{name}: the action was confirmed"
    );
    Ok(())
}

/// Every destructive action of the consoles asks first and acts once confirmed; the
/// site's audit log then names the admin who confirmed, by email.
#[tokio::test]
async fn every_destructive_action_asks_first_and_is_audited_with_its_admin() {
    use trilo_core::model::{ClientType, Distribution, UserInstalls};
    use trilo_core::services::admin::NewApp;
    let app = TestApp::sqlite().await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let alice_id = app.demo.users[0].account_id.clone();
    let bob_id = app.demo.users[1].account_id.clone();
    // What there is to destroy: an API token, Bob's membership, the demo app installed by
    // Alice's consent, an active policy, a spare app.
    app.core
        .create_api_token(&alice_id, "CI script", None)
        .await
        .unwrap();
    let code = app.demo_code().await;
    crate::token::redeem(&app, &code).await.assert_tokens();
    let policy = app.active_jira_policy(&acme, "Ops only", &["OPS"]).await;
    let demo = app.core.find_app(&app.app().client_id).await.unwrap();
    let spare = app
        .core
        .create_app(NewApp {
            owner_account_id: alice_id.clone(),
            name: "Spare app".into(),
            description: String::new(),
            avatar_url: None,
            callback_urls: vec!["https://spare.example.test/cb".into()],
            scopes: vec!["read:jira-work".into()],
            distribution: Distribution::Private,
            client_type: ClientType::Confidential,
        })
        .await
        .unwrap()
        .app;
    let app = &app;
    let (acme, demo_id, spare_id) = (&acme, &demo.app_id, &spare.app_id);
    with_browser(|driver| async move {
        open_as_alice(&driver, app, "/account").await?;
        let (email, _) = app.alice();
        driver.query(By::Id("nav-user")).first().await?;

        let steps: Vec<(String, By, &str)> = vec![
            (
                "/account/api-tokens".into(),
                By::Css("form[action$='/revoke'] button"),
                "revoke-api-token",
            ),
            (
                format!("/admin/sites/{acme}"),
                By::Css(format!(
                    "form[action$='/members/remove'] input[name='account_id'][value='{bob_id}'] ~ button"
                )),
                "remove-member",
            ),
            (
                format!("/admin/sites/{acme}/apps"),
                By::Id("toggle-user-installs"),
                "block-user-installs",
            ),
            (
                format!("/admin/sites/{acme}/apps"),
                By::Css("form[action$='/apps/uninstall'] button"),
                "uninstall",
            ),
            (
                format!("/admin/sites/{acme}/policies"),
                By::Css("form[action$='/policies/state'] button"),
                "deactivate-policy",
            ),
            (
                format!("/developer/apps/{demo_id}/settings"),
                By::Css("form[action$='/secret'] button"),
                "rotate-secret",
            ),
            (
                format!("/developer/apps/{demo_id}/distribution"),
                By::Id("toggle-sharing"),
                "disable-sharing",
            ),
        ];
        for (path, button, name) in steps {
            confirm_in_browser(&driver, app, &path, button, name, None).await?;
        }
        confirm_in_browser(
            &driver,
            app,
            &format!("/developer/apps/{spare_id}/settings"),
            By::Css("form[action$='/delete'] button"),
            "delete-app",
            Some("Spare app"),
        )
        .await?;

        // Each took effect.
        let core = &app.core;
        assert!(core.api_tokens(&alice_id).await.unwrap().iter().all(|t| t.revoked_at.is_some()));
        assert!(core.memberships_of_account(&bob_id).await.unwrap().iter().all(|m| &m.cloud_id != acme));
        let site = core.sites().await.unwrap().into_iter().find(|s| &s.cloud_id == acme).unwrap();
        assert_eq!(site.user_installs, UserInstalls::Blocked);
        let policy_now = core.store().policy(&policy.policy_id).await.unwrap().unwrap();
        assert!(!policy_now.active, "the policy is inactive");
        let demo_now = core.find_app(demo_id).await.unwrap();
        assert_eq!(demo_now.distribution, Distribution::Private);
        assert!(core.find_app(spare_id).await.is_err(), "the spare app is deleted");

        // The audit log names Alice for what she confirmed on the site.
        driver.goto(app.url(&format!("/admin/sites/{acme}/audit"))).await?;
        let rows = driver.find_all(By::Css("#events tbody tr")).await?;
        let mut seen = Vec::new();
        for row in rows {
            let cells = row.find_all(By::Css("td")).await?;
            let action = cells[1].text().await?;
            let actor = cells[3].text().await?;
            seen.push((action, actor));
        }
        for action in ["site.user_installs_changed", "app.uninstalled", "membership.removed"] {
            assert!(
                seen.iter().any(|(a, who)| a == action && who == email),
                "{action} by {email}: {seen:?}"
            );
        }
        Ok(())
    })
    .await;
}

/// An admin invites someone without an account; they accept through the mailed link,
/// with a refusal shown beside its field first, and log in.
#[tokio::test]
async fn an_invitation_is_sent_accepted_and_used_to_log_in() {
    let app = TestApp::sqlite().await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let app = &app;
    with_browser(|driver| async move {
        open_as_alice(&driver, app, &format!("/admin/sites/{acme}")).await?;
        let field = driver.query(By::Id("email")).first().await?;
        field.send_keys("newcomer@example.org").await?;
        click_on(&driver, By::Id("save-member")).await?;
        let title = driver
            .query(By::Id("confirm-title"))
            .first()
            .await?
            .text()
            .await?;
        assert_eq!(title, "Invite newcomer@example.org?");
        screenshots_at_both_sizes(&driver, "confirm-invite").await?;
        click_on(&driver, By::Id("confirm-submit")).await?;
        let notice = driver.query(By::Id("notice")).first().await?.text().await?;
        assert!(notice.contains("Invitation sent"), "{notice}");
        click_on(&driver, By::Id("nav-logout")).await?;
        click_on(&driver, By::Id("logout-submit")).await?;
        logged_out(&driver).await?;

        let mail = std::fs::read_to_string(app.data_dir().join("mail.log")).unwrap();
        let link = mail
            .split_whitespace()
            .find(|w| w.contains("/login/invitation?token="))
            .expect("an invitation link")
            .to_owned();
        assert!(query_param(&link, "token").is_some());
        driver.goto(&link).await?;
        screenshots_at_both_sizes(&driver, "invitation").await?;
        type_into(&driver, By::Id("name"), "Nia Newcomer").await?;
        type_into(&driver, By::Id("new_password"), "a long passphrase 1").await?;
        type_into(&driver, By::Id("confirm_password"), "a different one 2").await?;
        click_on(&driver, By::Id("accept-invitation")).await?;
        let error = driver
            .query(By::Id("confirm_password-error"))
            .first()
            .await?
            .text()
            .await?;
        assert!(error.contains("do not match"), "{error}");
        let kept = driver.find(By::Id("name")).await?.prop("value").await?;
        assert_eq!(kept.as_deref(), Some("Nia Newcomer"));
        screenshots_at_both_sizes(&driver, "invitation-error").await?;
        type_into(&driver, By::Id("new_password"), "a long passphrase 1").await?;
        type_into(&driver, By::Id("confirm_password"), "a long passphrase 1").await?;
        click_on(&driver, By::Id("accept-invitation")).await?;
        let notice = driver.query(By::Id("notice")).first().await?.text().await?;
        assert!(notice.contains("Welcome"), "{notice}");
        log_in(&driver, "newcomer@example.org", "a long passphrase 1").await?;
        let user = driver
            .query(By::Id("nav-user"))
            .first()
            .await?
            .text()
            .await?;
        assert_eq!(user, "newcomer@example.org");
        Ok(())
    })
    .await;
}

/// The operator's refused form shows the reason beside the field and keeps the input.
#[tokio::test]
async fn the_operator_sees_a_refused_site_beside_its_field() {
    let app = TestApp::sqlite().await;
    let app = &app;
    with_browser(|driver| async move {
        open_as_alice(&driver, app, "/operator").await?;
        driver
            .query(By::Id("name"))
            .first()
            .await?
            .send_keys("Umbrella")
            .await?;
        // The browser's own check would stop a bad address first: take it away, as an old
        // browser or a script would, to see the server's answer.
        driver
            .execute("document.getElementById('url').type = 'text';", Vec::new())
            .await?;
        type_into(&driver, By::Id("url"), "umbrella.example.com").await?;
        click_on(&driver, By::Id("add-site")).await?;
        let error = driver
            .query(By::Id("url-error"))
            .first()
            .await?
            .text()
            .await?;
        assert!(error.contains("full web address"), "{error}");
        let kept = driver.find(By::Id("name")).await?.prop("value").await?;
        assert_eq!(kept.as_deref(), Some("Umbrella"));
        screenshots_at_both_sizes(&driver, "operator-sites-error").await?;
        Ok(())
    })
    .await;
}
