//! The site-admin console in a real browser: each page's main action, with a screenshot
//! of every page at 1280×800.

use thirtyfour::prelude::*;

use crate::browser::{click_on, log_in, save_screenshot, type_into, wait_for_text, with_browser};
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
        click_on(&driver, By::Id("confirm-submit")).await?;
        wait_for_text(&driver, "user-installs", "Blocked").await?;
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
