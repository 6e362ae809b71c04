//! What the consent step does with the grant the user already gave (issue 14): "log in
//! with" needs no site, a covered request skips the page unless `prompt=consent`, the page
//! preselects the granted site, incremental consent shows only what is new, and a grant
//! reaches every site where the app is installed and the user is a member.

use serde_json::Value;

use crate::authorize::logged_in;
use crate::on_both_backends;
use crate::support::{Fetch, TestApp, accessible_resources, location, query_param};
use crate::token::{Answer, redeem};

const LOG_IN_WITH: &str = "openid profile email read:me";

/// Opens `url` for the logged-in `browser`: the consent page's HTML, or panics.
async fn consent_page_at(browser: &reqwest::Client, url: &str) -> String {
    let res = browser.get(url).fetch().await;
    assert_eq!(res.status(), 200, "a consent page: {}", location(&res));
    res.text().await.unwrap()
}

/// Accepts `page` (with `site` picked, if any) and redeems the code.
async fn accept(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &str,
    site: Option<&str>,
) -> Answer {
    let res = app.submit_consent(browser, page, "accept", site).await;
    assert_eq!(res.status(), 303, "{page}");
    let code = query_param(&location(&res), "code").expect("a code");
    let answer = redeem(app, &code).await;
    answer.assert_tokens();
    answer
}

fn scope_of(answer: &Answer) -> Vec<String> {
    let mut scopes: Vec<String> = answer.body["scope"]
        .as_str()
        .unwrap()
        .split(' ')
        .map(str::to_owned)
        .collect();
    scopes.sort();
    scopes
}

fn sorted(scope: &str) -> Vec<String> {
    let mut v: Vec<String> = scope.split(' ').map(str::to_owned).collect();
    v.sort();
    v
}

on_both_backends!(
    log_in_with_needs_no_site_and_installs_nothing,
    super::log_in_with_needs_no_site_and_installs_nothing_body
);
async fn log_in_with_needs_no_site_and_installs_nothing_body(app: TestApp) {
    let browser = logged_in(&app, 0).await;
    let page = consent_page_at(&browser, &app.authorize_url(&[("scope", LOG_IN_WITH)])).await;
    assert!(page.contains("id=\"log-in-with\""), "{page}");
    assert!(
        !page.contains("name=\"cloud_id\""),
        "no site picker: {page}"
    );
    // Accepting picks no site, even if the form is made to send one.
    let acme = app.demo.sites[0].cloud_id.clone();
    let tokens = accept(&app, &browser, &page, Some(&acme)).await;
    assert!(tokens.body["id_token"].is_string());
    assert_eq!(scope_of(&tokens), sorted(LOG_IN_WITH));
    let demo_app = app.demo_app_record().await;
    let installed = app
        .core
        .store()
        .installations_of_app(&demo_app.app_id)
        .await
        .unwrap();
    assert!(installed.is_empty(), "installed: {installed:?}");
    let grant = app.alices_live_grant(&demo_app.app_id).await;
    assert!(grant.cloud_ids.is_empty());
    assert!(
        accessible_resources(&app, &tokens.assert_tokens())
            .await
            .is_empty()
    );

    // Later the app asks for product scopes: now the user picks a site.
    let more = app.authorize_url(&[("scope", "read:me read:jira-work")]);
    let page = consent_page_at(&browser, &more).await;
    assert!(page.contains("name=\"cloud_id\""), "{page}");
    assert!(!page.contains("id=\"log-in-with\""));
    let res = app.submit_consent(&browser, &page, "accept", None).await;
    assert_eq!(res.status(), 400, "a product scope needs a site");
    let tokens = accept(&app, &browser, &page, Some(&acme)).await;
    let sites = accessible_resources(&app, &tokens.assert_tokens()).await;
    assert!(sites.iter().any(|s| s["id"] == acme.as_str()), "{sites:?}");
}

on_both_backends!(
    a_covered_request_skips_the_consent_page_unless_consent_is_prompted,
    super::a_covered_request_skips_the_consent_page_unless_consent_is_prompted_body
);
async fn a_covered_request_skips_the_consent_page_unless_consent_is_prompted_body(app: TestApp) {
    let browser = logged_in(&app, 0).await;
    let granted = "read:me read:jira-user read:jira-work offline_access";
    let globex = app.demo.sites[1].cloud_id.clone();
    let page = consent_page_at(&browser, &app.authorize_url(&[("scope", granted)])).await;
    accept(&app, &browser, &page, Some(&globex)).await;

    // Without prompt=consent a narrower request goes straight back with a code for what
    // it asked; the grant keeps the rest.
    let narrower = app.authorize_url(&[("scope", "read:jira-work"), ("prompt", "")]);
    let res = browser.get(&narrower).fetch().await;
    assert_eq!(res.status(), 302, "no page: {}", location(&res));
    let code = query_param(&location(&res), "code").expect("a code");
    assert_eq!(
        query_param(&location(&res), "state").as_deref(),
        Some("st-123")
    );
    let tokens = redeem(&app, &code).await;
    assert_eq!(scope_of(&tokens), vec!["read:jira-work".to_owned()]);
    let demo_app = app.demo_app_record().await;
    let grant = app.alices_live_grant(&demo_app.app_id).await;
    assert_eq!(sorted(&grant.scopes.join(" ")), sorted(granted));

    // prompt=none succeeds now, as OIDC Core §3.1.2.6 allows once consent was given.
    let silent = app.authorize_url(&[("scope", "read:me"), ("prompt", "none")]);
    let res = browser.get(&silent).fetch().await;
    assert!(
        query_param(&location(&res), "code").is_some(),
        "{}",
        location(&res)
    );

    // prompt=consent shows the page, with the granted site preselected.
    let page = consent_page_at(&browser, &app.authorize_url(&[("scope", granted)])).await;
    let checked = page
        .split("<input type=\"radio\"")
        .skip(1)
        .find(|input| input.split('>').next().unwrap().contains(" checked"))
        .expect("a preselected site");
    assert!(checked.contains(&globex), "{checked}");

    // A request for more than the grant holds asks again, and prompt=none cannot.
    let wider = app.authorize_url(&[("scope", "read:jira-work write:jira-work"), ("prompt", "")]);
    consent_page_at(&browser, &wider).await;
    let silent_wider = app.authorize_url(&[
        ("scope", "read:jira-work write:jira-work"),
        ("prompt", "none"),
    ]);
    let res = browser.get(&silent_wider).fetch().await;
    assert_eq!(
        query_param(&location(&res), "error").as_deref(),
        Some("consent_required")
    );
}

on_both_backends!(
    incremental_consent_shows_only_what_is_new,
    super::incremental_consent_shows_only_what_is_new_body
);
async fn incremental_consent_shows_only_what_is_new_body(app: TestApp) {
    let browser = logged_in(&app, 0).await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let page = consent_page_at(
        &browser,
        &app.authorize_url(&[("scope", "read:me read:jira-user")]),
    )
    .await;
    assert!(!page.contains("id=\"already-granted\""));
    accept(&app, &browser, &page, Some(&acme)).await;

    let more = app.authorize_url(&[
        ("scope", "read:me read:jira-work"),
        ("include_granted_scopes", "true"),
    ]);
    let page = consent_page_at(&browser, &more).await;
    let (kept, asked) = page
        .split_once("This app also asks to")
        .expect("the new scopes apart");
    let kept = kept
        .split("id=\"already-granted\"")
        .nth(1)
        .expect("what stays granted");
    assert!(
        kept.contains("read:jira-user") && kept.contains("read:me"),
        "{kept}"
    );
    assert!(!kept.contains("read:jira-work"));
    assert!(asked.contains("read:jira-work"), "{asked}");
    assert!(
        !asked.contains("read:jira-user") && !asked.contains("<code>read:me</code>"),
        "{asked}"
    );
    let tokens = accept(&app, &browser, &page, Some(&acme)).await;
    assert_eq!(
        scope_of(&tokens),
        sorted("read:jira-user read:jira-work read:me")
    );
}

/// Account-level grants (reference, Dec 2023 / Feb 2024): once Alice granted the app, a
/// site where the app gets installed later and she is a member is reachable with the same
/// token, without another consent; the consent page says so.
#[tokio::test]
async fn a_grant_reaches_sites_the_app_is_installed_on_later() {
    let app = TestApp::sqlite().await;
    let browser = logged_in(&app, 0).await;
    let (acme, globex) = (
        app.demo.sites[0].cloud_id.clone(),
        app.demo.sites[1].cloud_id.clone(),
    );
    let page = consent_page_at(
        &browser,
        &app.authorize_url(&[("scope", "read:jira-user read:jira-work")]),
    )
    .await;
    assert!(page.contains("id=\"account-level\""), "{page}");
    let token = accept(&app, &browser, &page, Some(&acme))
        .await
        .assert_tokens();
    let reached = |sites: Vec<Value>| -> Vec<String> {
        sites
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        reached(accessible_resources(&app, &token).await),
        vec![acme.clone()]
    );
    let myself = format!("/ex/jira/{globex}/rest/api/3/myself");
    let on_globex =
        crate::gateway::call(&app, "GET", &token, "jira", &globex, "/rest/api/3/myself").await;
    assert_eq!(on_globex.status, 403, "not installed there yet: {myself}");

    // Globex's admin (Alice is only a member there) installs the app: no new consent.
    let demo_app = app.demo_app_record().await;
    app.core
        .store()
        .install_app(&trilo_core::model::Installation {
            app_id: demo_app.app_id.clone(),
            cloud_id: globex.clone(),
            installed_by_account_id: app.demo.users[1].account_id.clone(),
            installed_by: trilo_core::model::InstalledBy::Admin,
            created_at: app.core.now(),
        })
        .await
        .unwrap();
    app.core.access_changed().await;
    let mut sites = reached(accessible_resources(&app, &token).await);
    sites.sort();
    let mut both = vec![acme, globex.clone()];
    both.sort();
    assert_eq!(sites, both);
    let on_globex =
        crate::gateway::call(&app, "GET", &token, "jira", &globex, "/rest/api/3/myself").await;
    assert_eq!(on_globex.status, 200, "{on_globex:?}");
}
