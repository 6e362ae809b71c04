//! Pages people trust (issue 17) in Chromium: Enter on the consent page allows, the page
//! says who is signed in and where the answer goes; destructive actions ask first; the
//! last admin cannot lock themselves out; unknown URLs get a 404 page; every signed-in
//! page has the global navigation and a title of its own. Each page is saved at 1280×900
//! and 390×844 (`target/screenshots`).

use thirtyfour::prelude::*;

use crate::browser::{
    click_on, log_in, reach_consent, screenshots_at_both_sizes, site_radio, with_browser,
};
use crate::support::TestApp;

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
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn revoking_an_app_asks_first_and_cancel_changes_nothing() {
    let app = TestApp::sqlite().await;
    // Alice has allowed the demo app.
    let code = app.obtain_code(&app.authorize_url(&[])).await;
    crate::token::redeem(&app, &code).await.assert_tokens();
    let app = &app;
    with_browser(|driver| async move {
        driver.goto(app.url("/account/apps")).await?;
        let (email, password) = app.alice();
        log_in(&driver, email, password).await?;
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
        driver
            .goto(app.url(&format!("/admin/sites/{acme}")))
            .await?;
        let (email, password) = app.alice();
        log_in(&driver, email, password).await?;
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
    let app = &app;
    with_browser(|driver| async move {
        // The pages before signing in.
        for (path, name) in [("/login", "login"), ("/login/forgot", "forgot-password")] {
            driver.goto(app.url(path)).await?;
            screenshots_at_both_sizes(&driver, name).await?;
        }
        driver.goto(app.url("/no/such/page")).await?;
        let heading = driver.find(By::Css("h1")).await?.text().await?;
        assert_eq!(heading, "Page not found");
        driver.find(By::Id("request-id")).await?;
        screenshots_at_both_sizes(&driver, "not-found").await?;

        driver.goto(app.url("/account")).await?;
        let (email, password) = app.alice();
        log_in(&driver, email, password).await?;
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
            for id in ["nav-account", "nav-developer", "nav-admin", "nav-logout"] {
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
        driver.goto(app.url("/account")).await?;
        let bob = &app.demo.users[1];
        log_in(&driver, &bob.email, &bob.password).await?;
        driver.query(By::Id("nav-account")).first().await?;
        assert!(driver.find_all(By::Id("nav-admin")).await?.is_empty());
        Ok(())
    })
    .await;
}
