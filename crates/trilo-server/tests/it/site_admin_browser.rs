//! The site-admin console in a real browser: each page's main action, with a screenshot
//! of every page at 1280×800.

use thirtyfour::prelude::*;

use crate::browser::{log_in, save_screenshot, with_browser};
use crate::support::TestApp;

#[tokio::test]
async fn browser_site_admin_manages_members_apps_policies_and_reads_the_audit_log() {
    let app = TestApp::sqlite().await;
    let app = &app;
    with_browser(|driver| async move {
        driver.goto(app.url("/admin")).await?;
        driver.query(By::Id("login-submit")).first().await?;
        let (email, password) = app.alice();
        log_in(&driver, email, password).await?;
        click_on(&driver, By::LinkText("Acme")).await?;
        driver.query(By::Id("members")).first().await?;
        save_screenshot(&driver, "admin-members.png").await?;

        // Bob becomes a guest of the DEMO project.
        type_into(&driver, By::Id("email"), "bob@example.com").await?;
        click_on(&driver, By::Css("#role option[value='guest']")).await?;
        type_into(&driver, By::Id("containers"), "DEMO").await?;
        click_on(&driver, By::Id("save-member")).await?;
        wait_for_text(&driver, "notice", "Member saved.").await?;
        let members = driver.find(By::Id("members")).await?.text().await?;
        assert!(
            members.contains("Guest") && members.contains("DEMO"),
            "{members}"
        );

        // Block user installs.
        click_on(&driver, By::LinkText("App controls")).await?;
        click_on(&driver, By::Id("toggle-user-installs")).await?;
        let state = driver
            .query(By::Id("user-installs"))
            .first()
            .await?
            .text()
            .await?;
        assert_eq!(state, "Blocked");
        save_screenshot(&driver, "admin-apps.png").await?;

        // A policy over the OPS project, then activated.
        click_on(&driver, By::LinkText("Data security")).await?;
        type_into(&driver, By::Id("name"), "Operations only").await?;
        click_on(
            &driver,
            By::Css("input[name='container'][value='jira/OPS']"),
        )
        .await?;
        click_on(&driver, By::Id("create-policy")).await?;
        wait_for_text(
            &driver,
            "notice",
            "Policy created. Activate it to apply it.",
        )
        .await?;
        click_on(&driver, By::Css("#policies button")).await?;
        wait_for_text(&driver, "notice", "Policy activated.").await?;
        save_screenshot(&driver, "admin-policies.png").await?;

        // Every change is in the audit log.
        click_on(&driver, By::LinkText("Audit log")).await?;
        let events = driver.query(By::Id("events")).first().await?.text().await?;
        for action in [
            "policy.activated",
            "policy.created",
            "site.user_installs_changed",
        ] {
            assert!(events.contains(action), "{action} in {events}");
        }
        save_screenshot(&driver, "admin-audit.png").await?;
        Ok(())
    })
    .await;
}

/// Waits (at most 5 s) until the element with `id` reads `expected`: after a form POST the
/// old page stays in place until the new one has loaded.
async fn wait_for_text(driver: &WebDriver, id: &str, expected: &str) -> WebDriverResult<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if let Ok(element) = driver.find(By::Id(id)).await
            && element.text().await.is_ok_and(|t| t == expected)
        {
            return Ok(());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "#{id} never read {expected:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Clicks the element `by` finds, again while it is missing or goes stale (a page still
/// being replaced after the previous action), for at most 5 s.
async fn click_on(driver: &WebDriver, by: By) -> WebDriverResult<()> {
    retry(|| async { driver.find(by.clone()).await?.click().await }).await
}

/// Types into the element `by` finds, with the same patience as [`click_on`].
async fn type_into(driver: &WebDriver, by: By, text: &str) -> WebDriverResult<()> {
    retry(|| async { driver.find(by.clone()).await?.send_keys(text).await }).await
}

async fn retry<F, Fut>(mut action: F) -> WebDriverResult<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = WebDriverResult<()>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match action().await {
            Ok(()) => return Ok(()),
            Err(e) if std::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}
