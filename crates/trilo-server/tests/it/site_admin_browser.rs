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
        driver
            .query(By::LinkText("Acme"))
            .first()
            .await?
            .click()
            .await?;
        driver.query(By::Id("members")).first().await?;
        save_screenshot(&driver, "admin-members.png").await?;

        // Bob becomes a guest of the DEMO project.
        driver
            .find(By::Id("email"))
            .await?
            .send_keys("bob@example.com")
            .await?;
        driver
            .find(By::Css("#role option[value='guest']"))
            .await?
            .click()
            .await?;
        driver
            .find(By::Id("containers"))
            .await?
            .send_keys("DEMO")
            .await?;
        driver.find(By::Id("save-member")).await?.click().await?;
        wait_for_text(&driver, "notice", "Member saved.").await?;
        let members = driver.find(By::Id("members")).await?.text().await?;
        assert!(
            members.contains("Guest") && members.contains("DEMO"),
            "{members}"
        );

        // Block user installs.
        driver
            .find(By::LinkText("App controls"))
            .await?
            .click()
            .await?;
        driver
            .query(By::Id("toggle-user-installs"))
            .first()
            .await?
            .click()
            .await?;
        let state = driver
            .query(By::Id("user-installs"))
            .first()
            .await?
            .text()
            .await?;
        assert_eq!(state, "Blocked");
        save_screenshot(&driver, "admin-apps.png").await?;

        // A policy over the OPS project, then activated.
        driver
            .find(By::LinkText("Data security"))
            .await?
            .click()
            .await?;
        driver
            .query(By::Id("name"))
            .first()
            .await?
            .send_keys("Operations only")
            .await?;
        driver
            .find(By::Css("input[name='container'][value='jira/OPS']"))
            .await?
            .click()
            .await?;
        driver.find(By::Id("create-policy")).await?.click().await?;
        wait_for_text(
            &driver,
            "notice",
            "Policy created. Activate it to apply it.",
        )
        .await?;
        driver
            .find(By::Css("#policies button"))
            .await?
            .click()
            .await?;
        wait_for_text(&driver, "notice", "Policy activated.").await?;
        save_screenshot(&driver, "admin-policies.png").await?;

        // Every change is in the audit log.
        driver
            .find(By::LinkText("Audit log"))
            .await?
            .click()
            .await?;
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
