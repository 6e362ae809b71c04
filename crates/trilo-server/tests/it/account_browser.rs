//! The account pages in a real Chromium (the harness of `browser.rs`): after a consent the
//! app is listed under connected apps and can be revoked; an API token is shown once; the
//! password changes. Screenshots of each page at 1280×800 go to `target/screenshots/`.

use std::time::{Duration, Instant};

use thirtyfour::prelude::*;

use crate::browser::{click_on, reach_consent, save_screenshot, site_radio, with_browser};
use crate::gateway::{access_token, another_app};
use crate::support::TestApp;

/// The connected app whose name is `name`, as its list entry.
async fn connected_app(driver: &WebDriver, name: &str) -> WebDriverResult<Option<WebElement>> {
    for entry in driver.find_all(By::Css("li.connected-app")).await? {
        if entry.find(By::Css(".app-name")).await?.text().await? == name {
            return Ok(Some(entry));
        }
    }
    Ok(None)
}

/// Waits (at most 5 s) until the page at `path` has loaded with element `id`.
async fn wait_for(driver: &WebDriver, path: &str, id: &str) -> WebDriverResult<WebElement> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while driver.current_url().await?.path() != path {
        assert!(Instant::now() < deadline, "{path} did not load");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver.query(By::Id(id)).first().await
}

#[tokio::test]
async fn browser_account_pages_revoke_an_app_create_a_token_and_change_the_password() {
    let app = TestApp::sqlite_with_demo_callback().await;
    // A second connected app, so the page lists two and one is revoked.
    let other = another_app(&app, &["read:jira-work"]).await;
    access_token(&app, 0, &other, "read:jira-work", 0).await;
    let authorize_url = app.authorize_url(&[("state", "account-1")]);
    let acme = app.demo.sites[0].cloud_id.clone();
    let alice = app.demo.users[0].account_id.clone();
    let app = &app;
    with_browser(|driver| async move {
        // Consent to the demo app.
        reach_consent(app, &driver, &authorize_url, false).await?;
        site_radio(&driver, &acme).await?.click().await?;
        driver.find(By::Id("accept")).await?.click().await?;
        driver.query(By::Id("callback-code")).first().await?;

        // Connected apps: both are listed with their sites and scopes.
        driver.goto(app.url("/")).await?;
        driver
            .query(By::Id("account-link"))
            .first()
            .await?
            .click()
            .await?;
        wait_for(&driver, "/account", "link-apps")
            .await?
            .click()
            .await?;
        wait_for(&driver, "/account/apps", "connected-apps").await?;
        let demo = connected_app(&driver, "Demo Integration")
            .await?
            .expect("the demo app is listed");
        let text = demo.text().await?;
        assert!(text.contains(&app.demo.sites[0].name), "{text}");
        assert!(text.contains("read:jira-work"), "{text}");
        assert!(connected_app(&driver, "Gateway Test App").await?.is_some());
        save_screenshot(&driver, "account-apps.png").await?;

        demo.find(By::Css("button.revoke")).await?.click().await?;
        click_on(&driver, By::Id("confirm-submit")).await?;
        let notice = driver.query(By::Id("notice")).first().await?.text().await?;
        assert!(notice.contains("revoked"), "{notice}");
        assert!(connected_app(&driver, "Demo Integration").await?.is_none());
        assert!(connected_app(&driver, "Gateway Test App").await?.is_some());
        let live: Vec<_> = app
            .core
            .store()
            .grants_of_account(&alice)
            .await
            .unwrap()
            .into_iter()
            .filter(|g| g.revoked_at.is_none())
            .collect();
        assert_eq!(live.len(), 1, "only the other app keeps its grant");

        // API tokens: created with a label and an expiry, the secret shown once.
        driver
            .find(By::LinkText("API tokens"))
            .await?
            .click()
            .await?;
        wait_for(&driver, "/account/api-tokens", "label")
            .await?
            .send_keys("Release <script>")
            .await?;
        let days = driver.find(By::Id("expires_in_days")).await?;
        days.clear().await?;
        days.send_keys("30").await?;
        driver.find(By::Id("create-token")).await?.click().await?;
        let secret = driver
            .query(By::Id("new-token"))
            .first()
            .await?
            .text()
            .await?;
        assert_eq!(secret.len(), 43, "the token is shown: {secret}");
        let label = driver
            .find(By::Css("#tokens .token-label"))
            .await?
            .text()
            .await?;
        assert_eq!(label, "Release <script>", "labels render as text");
        save_screenshot(&driver, "account-api-tokens.png").await?;
        driver.goto(app.url("/account/api-tokens")).await?;
        driver.query(By::Id("tokens")).first().await?;
        assert!(driver.find_all(By::Id("new-token")).await?.is_empty());
        assert!(!driver.source().await?.contains(&secret), "shown once");

        // Password: the change keeps this session.
        driver.find(By::LinkText("Password")).await?.click().await?;
        let (_, old) = app.alice();
        wait_for(&driver, "/account/password", "current_password")
            .await?
            .send_keys(old)
            .await?;
        for id in ["new_password", "confirm_password"] {
            driver
                .find(By::Id(id))
                .await?
                .send_keys("a-brand-new-password")
                .await?;
        }
        driver
            .find(By::Id("change-password"))
            .await?
            .click()
            .await?;
        let notice = driver.query(By::Id("notice")).first().await?.text().await?;
        assert!(notice.contains("Password changed"), "{notice}");
        save_screenshot(&driver, "account-password.png").await?;
        driver.goto(app.url("/account")).await?;
        wait_for(&driver, "/account", "account-links").await?;
        Ok(())
    })
    .await;
}
