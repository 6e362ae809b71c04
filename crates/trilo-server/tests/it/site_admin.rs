//! The site-admin console over HTTP: who gets in, members and guests, app controls that
//! take effect at the consent page and the gateway at once, data security policies, and
//! the audit log listing every change.

use trilo_core::model::UserInstalls;

use crate::console::developer;
use crate::gateway::{
    READ_SCOPES, access_token, alice_read_token_on_acme, demo_client, jira_get, myself_status,
};
use crate::support::{Fetch, TestApp, hidden_field, location};

/// Demo user 0 is Alice, admin on Acme; 1 is Bob, a member.
pub(crate) use crate::authorize::logged_in;

pub(crate) async fn page(client: &reqwest::Client, url: &str) -> (u16, String) {
    let res = client.get(url).fetch().await;
    (res.status().as_u16(), res.text().await.unwrap())
}

pub(crate) async fn post(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let acme = &app.demo.sites[0].cloud_id;
    let (_, html) = page(client, &app.url(&format!("/admin/sites/{acme}"))).await;
    let csrf = hidden_field(&html, "csrf_token").expect("a csrf_token");
    let mut fields = vec![("csrf_token", csrf.as_str())];
    fields.extend_from_slice(form);
    let res = client
        .post(app.url(&format!("/admin/sites/{acme}{path}")))
        .form(&fields)
        .fetch()
        .await;
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Posts the confirmed form that blocks user installs on Acme, as `client`.
pub(crate) async fn block_user_installs(app: &TestApp, client: &reqwest::Client) -> (u16, String) {
    let confirmed = [("value", "blocked"), ("confirmed", "yes")];
    post(app, client, "/apps/user-installs", &confirmed).await
}

/// Posts the members form: `email` gets `role` on `product` on Acme, as `client`.
pub(crate) async fn set_member(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    product: &str,
    role: &str,
) -> (u16, String) {
    let form = [("email", email), ("product", product), ("role", role)];
    post(app, client, "/members", &form).await
}

#[tokio::test]
async fn only_admins_of_the_site_get_in() {
    let app = TestApp::sqlite().await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let bob = logged_in(&app, 1).await;
    assert_eq!(
        page(&bob, &app.url(&format!("/admin/sites/{acme}")))
            .await
            .0,
        404
    );
    let (status, html) = page(&bob, &app.url("/admin")).await;
    assert_eq!(status, 200);
    assert!(html.contains("no-sites"));
    let alice = logged_in(&app, 0).await;
    let (status, html) = page(&alice, &app.url("/admin")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Acme"));
    let res = app.browser().get(app.url("/admin")).fetch().await;
    assert_eq!(res.status(), 303, "login first");
    // Forms need this session's CSRF token.
    let res = alice
        .post(app.url(&format!("/admin/sites/{acme}/apps/user-installs")))
        .form(&[("value", "blocked")])
        .fetch()
        .await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn site_pages_send_the_signed_out_to_the_login_and_back() {
    let app = TestApp::sqlite().await;
    let acme = &app.demo.sites[0].cloud_id;
    let res = app
        .browser()
        .get(app.url(&format!("/admin/sites/{acme}/audit?action=app.")))
        .fetch()
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        location(&res),
        format!("/login?return_to=%2Fadmin%2Fsites%2F{acme}%2Faudit%3Faction%3Dapp.")
    );
}

#[tokio::test]
async fn site_forms_of_a_non_admin_are_not_found_and_change_nothing() {
    let app = TestApp::sqlite().await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let (bob, csrf) = developer(&app, 1).await;
    for form in [
        vec![("csrf_token", csrf.as_str()), ("value", "blocked")],
        vec![("value", "blocked")],
    ] {
        let res = bob
            .post(app.url(&format!("/admin/sites/{acme}/apps/user-installs")))
            .form(&form)
            .fetch()
            .await;
        assert_eq!(res.status(), 404, "{form:?}");
    }
    let site = app.core.store().site(&acme).await.unwrap().unwrap();
    assert_eq!(site.user_installs, UserInstalls::Allowed);
}

#[tokio::test]
async fn members_and_guests_are_managed_and_enforced() {
    let app = TestApp::sqlite().await;
    let alice = logged_in(&app, 0).await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let (status, html) = post(
        &app,
        &alice,
        "/members",
        &[
            ("email", "bob@example.com"),
            ("product", "jira"),
            ("role", "guest"),
            ("containers", "DEMO"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Guest") && html.contains("DEMO"), "{html}");
    let token = access_token(&app, 1, &demo_client(&app), READ_SCOPES, 0).await;
    let ok = jira_get(&app, &token, &acme, "/rest/api/3/issue/DEMO-1").await;
    assert_eq!(ok.status, 200);
    let outside = jira_get(&app, &token, &acme, "/rest/api/3/issue/OPS-1").await;
    assert_eq!(outside.status, 403);
    // An unknown email is offered an invitation (see `invitations.rs`); nothing changes yet.
    let (status, html) = set_member(&app, &alice, "nobody@example.com", "jira", "member").await;
    assert_eq!(status, 200, "unknown account");
    assert!(html.contains("Invite nobody@example.com?"), "{html}");
    assert!(
        app.core
            .account_by_email("nobody@example.com")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn app_controls_apply_to_consent_and_gateway_at_once() {
    let app = TestApp::sqlite().await;
    let alice = logged_in(&app, 0).await;
    let (token, acme) = alice_read_token_on_acme(&app).await;
    assert_eq!(myself_status(&app, &token, &acme).await, 200);

    let (status, html) = block_user_installs(&app, &alice).await;
    assert_eq!(status, 200);
    assert!(html.contains("User installs blocked."));
    assert_eq!(myself_status(&app, &token, &acme).await, 403);
    let consent = app
        .consent_page(&app.browser(), &app.authorize_url(&[]))
        .await;
    assert!(consent.contains(&format!(
        "An admin has not allowed Demo Integration to access data from {}. Select another site \
         to authorize access to or contact your admin for more information.",
        app.demo.sites[0].name
    )));

    // Installed by an admin, the app works again despite the block.
    let (status, html) = post(
        &app,
        &alice,
        "/apps/install",
        &[("client_id", &app.app().client_id)],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("An admin"));
    assert_eq!(myself_status(&app, &token, &acme).await, 200);
}

#[tokio::test]
async fn policies_are_created_activated_and_every_change_is_audited() {
    let app = TestApp::sqlite().await;
    let alice = logged_in(&app, 0).await;
    let (token, acme) = alice_read_token_on_acme(&app).await;
    let (status, html) = post(
        &app,
        &alice,
        "/policies",
        &[("name", "Operations only"), ("container", "jira/OPS")],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let policy = app.core.store().policies(&acme).await.unwrap().remove(0);
    assert!(!policy.active);
    let (status, _) = post(
        &app,
        &alice,
        "/policies/state",
        &[("policy_id", &policy.policy_id), ("active", "on")],
    )
    .await;
    assert_eq!(status, 200);
    let blocked = jira_get(&app, &token, &acme, "/rest/api/3/issue/OPS-1").await;
    assert_eq!(blocked.status, 403);
    assert!(
        blocked.body["message"]
            .as_str()
            .unwrap()
            .contains("Operations only")
    );
    let (status, _) = post(&app, &alice, "/policies", &[("name", "Empty")]).await;
    assert_eq!(status, 400, "a policy covers something");

    // Edited to cover DEMO instead: applies at once.
    let (_, form) = page(
        &alice,
        &app.url(&format!(
            "/admin/sites/{acme}/policies?edit={}",
            policy.policy_id
        )),
    )
    .await;
    assert!(
        form.contains("value=\"jira/OPS\" checked"),
        "the edit form shows what it covers"
    );
    let (status, html) = post(
        &app,
        &alice,
        "/policies/edit",
        &[
            ("policy_id", &policy.policy_id),
            ("name", "Demo only"),
            ("container", "jira/DEMO"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(
        jira_get(&app, &token, &acme, "/rest/api/3/issue/OPS-1")
            .await
            .status,
        200
    );
    let now_blocked = jira_get(&app, &token, &acme, "/rest/api/3/issue/DEMO-1").await;
    assert!(
        now_blocked.body["message"]
            .as_str()
            .unwrap()
            .contains("Demo only")
    );

    block_user_installs(&app, &alice).await;
    set_member(&app, &alice, "bob@example.com", "jira", "admin").await;
    let (_, log) = page(&alice, &app.url(&format!("/admin/sites/{acme}/audit"))).await;
    for action in [
        "policy.created",
        "policy.activated",
        "policy.changed",
        "site.user_installs_changed",
        "membership.set",
        "grant.consented",
    ] {
        assert!(log.contains(action), "{action} is in the audit log");
    }
    let (_, filtered) = page(
        &alice,
        &app.url(&format!("/admin/sites/{acme}/audit?action=policy.")),
    )
    .await;
    assert!(filtered.contains("policy.activated") && !filtered.contains("membership.set"));
}

#[tokio::test]
async fn admins_add_spaces_and_projects_that_policies_then_cover() {
    let app = TestApp::sqlite().await;
    let alice = logged_in(&app, 0).await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let (status, html) = post(
        &app,
        &alice,
        "/containers",
        &[
            ("product", "jira"),
            ("key", "FIN"),
            ("id", "10777"),
            ("name", "Finance"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("value=\"jira/FIN\""),
        "the new project can be covered"
    );
    let (status, _) = post(
        &app,
        &alice,
        "/containers",
        &[("product", "jira"), ("key", "FIN2"), ("id", "10777")],
    )
    .await;
    assert_eq!(status, 400, "an id names one project");
    let (status, _) = post(
        &app,
        &alice,
        "/containers",
        &[("product", "bitbucket"), ("key", "X"), ("id", "1")],
    )
    .await;
    assert_eq!(status, 400, "a product the site does not host");
    let containers = app
        .core
        .store()
        .containers(&acme, Some("jira"))
        .await
        .unwrap();
    assert!(
        containers
            .iter()
            .any(|c| c.key == "FIN" && c.container_id == "10777")
    );
}
