//! Inviting someone without an account (issue 17): the members form offers an invitation,
//! which makes an invited account (that cannot log in) with the chosen role and mails a
//! link; through it the invitee chooses a name and password, once, and then logs in.

use trilo_core::model::{AccountStatus, Role};

use crate::site_admin::{logged_in, page, post};
use crate::support::{Fetch, TestApp, hidden_field, location, query_param};

const NEWCOMER: &str = "newcomer@example.org";

/// The invitation links in the mail file, oldest first.
fn mailed_invitations(app: &TestApp) -> Vec<String> {
    let text = std::fs::read_to_string(app.data_dir().join("mail.log")).unwrap_or_default();
    text.split_whitespace()
        .filter(|w| w.contains("/login/invitation?token="))
        .map(str::to_owned)
        .collect()
}

async fn invite(app: &TestApp, alice: &reqwest::Client, email: &str) -> (u16, String) {
    post(
        app,
        alice,
        "/members/invite",
        &[
            ("email", email),
            ("product", "jira"),
            ("role", "member"),
            ("containers", ""),
            ("confirmed", "yes"),
        ],
    )
    .await
}

async fn accept(
    app: &TestApp,
    token: &str,
    name: &str,
    password: &str,
    again: &str,
) -> reqwest::Response {
    app.browser()
        .post(app.url("/login/invitation"))
        .form(&[
            ("token", token),
            ("name", name),
            ("new_password", password),
            ("confirm_password", again),
        ])
        .fetch()
        .await
}

#[tokio::test]
async fn an_unknown_email_is_invited_and_joins_through_the_mailed_link() {
    let app = TestApp::sqlite().await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let alice = logged_in(&app, 0).await;

    // Saving an unknown email asks first, and changes nothing yet.
    let (status, html) = post(
        &app,
        &alice,
        "/members",
        &[
            ("email", NEWCOMER),
            ("product", "jira"),
            ("role", "member"),
            ("containers", ""),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&format!("Invite {NEWCOMER}?")), "{html}");
    assert!(html.contains("Send invitation"), "{html}");
    assert!(
        html.contains(&format!("action=\"/admin/sites/{acme}/members/invite\"")),
        "{html}"
    );
    assert_eq!(hidden_field(&html, "email").as_deref(), Some(NEWCOMER));
    assert!(app.core.account_by_email(NEWCOMER).await.is_err());

    let (status, html) = invite(&app, &alice, NEWCOMER).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(&format!("Invitation sent to {NEWCOMER}.")),
        "{html}"
    );
    assert!(html.contains("Invited</span>"), "{html}");
    let account = app.core.account_by_email(NEWCOMER).await.unwrap();
    assert_eq!(account.status, AccountStatus::Invited);
    let memberships = app
        .core
        .memberships_of_account(&account.account_id)
        .await
        .unwrap();
    assert_eq!(memberships.len(), 1);
    assert_eq!(memberships[0].role, Role::Member);
    assert_eq!(memberships[0].cloud_id, acme);

    // Invited: no password works, and no reset link is sent for it.
    let res = app.login(&app.browser(), NEWCOMER, "").await;
    assert_ne!(location(&res), "/");
    assert!(
        app.core
            .request_password_reset(NEWCOMER)
            .await
            .unwrap()
            .is_none()
    );

    let links = mailed_invitations(&app);
    assert_eq!(links.len(), 1, "one invitation mailed");
    let token = query_param(&links[0], "token").unwrap();
    let mail = std::fs::read_to_string(app.data_dir().join("mail.log")).unwrap();
    assert!(
        mail.contains(&format!(
            "Alice Admin invited you to {}",
            app.demo.sites[0].name
        )),
        "{mail}"
    );

    let (status, html) = page(&app.browser(), &links[0]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(NEWCOMER), "{html}");

    // Refusals keep the name and show the message beside the field; the link stays usable.
    let res = accept(
        &app,
        &token,
        "Nia Newcomer",
        "a long passphrase 1",
        "another one",
    )
    .await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"confirm_password-error\""), "{html}");
    assert!(html.contains("value=\"Nia Newcomer\""), "{html}");
    let res = accept(&app, &token, "Nia Newcomer", "short", "short").await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"new_password-error\""), "{html}");
    let res = accept(
        &app,
        &token,
        "   ",
        "a long passphrase 1",
        "a long passphrase 1",
    )
    .await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("id=\"name-error\""));
    assert_eq!(
        app.core.account_by_email(NEWCOMER).await.unwrap().status,
        AccountStatus::Invited
    );

    let res = accept(
        &app,
        &token,
        "Nia Newcomer",
        "a long passphrase 1",
        "a long passphrase 1",
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login?invitation=accepted");
    let joined = app.core.account_by_email(NEWCOMER).await.unwrap();
    assert_eq!(joined.status, AccountStatus::Active);
    assert_eq!(joined.name, "Nia Newcomer");
    let browser = app.browser();
    let res = app.login(&browser, NEWCOMER, "a long passphrase 1").await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/");

    // Once only; and the members page no longer says invited.
    let res = accept(
        &app,
        &token,
        "Someone Else",
        "a long passphrase 2",
        "a long passphrase 2",
    )
    .await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        app.core.account_by_email(NEWCOMER).await.unwrap().name,
        "Nia Newcomer"
    );
    let (_, html) = page(&alice, &app.url(&format!("/admin/sites/{acme}"))).await;
    assert!(html.contains("Nia Newcomer"), "{html}");
    assert!(!html.contains("Invited</span>"), "{html}");

    // Changes name their admin: the invitation is Alice's.
    let events = app
        .core
        .store()
        .audit_events(&trilo_core::model::AuditQuery {
            action_prefix: Some("member.invited".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].actor_account_id.as_deref(),
        Some(app.demo.users[0].account_id.as_str())
    );
}

#[tokio::test]
async fn inviting_again_sends_a_new_link_and_an_existing_account_is_not_invited() {
    let app = TestApp::sqlite().await;
    let alice = logged_in(&app, 0).await;
    assert_eq!(invite(&app, &alice, NEWCOMER).await.0, 200);
    assert_eq!(invite(&app, &alice, NEWCOMER).await.0, 200);
    let links = mailed_invitations(&app);
    assert_eq!(links.len(), 2);
    let accounts = app.core.accounts().await.unwrap();
    assert_eq!(
        accounts.iter().filter(|a| a.email == NEWCOMER).count(),
        1,
        "one invited account"
    );

    // Bob has an account: the form says so beside the email, and keeps what was typed.
    let bob = app.demo.users[1].email.clone();
    let (status, html) = invite(&app, &alice, &bob).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("id=\"email-error\""), "{html}");
    assert!(html.contains("already has an account"), "{html}");
    assert!(html.contains(&format!("value=\"{bob}\"")), "{html}");
    assert_eq!(mailed_invitations(&app).len(), 2);

    // An invitation link is no reset link, and a reset link no invitation.
    let token = query_param(&links[1], "token").unwrap();
    let (status, _) = page(
        &app.browser(),
        &app.url(&format!("/login/reset?token={token}")),
    )
    .await;
    assert_eq!(status, 404);
    let reset = app
        .core
        .request_password_reset(&bob)
        .await
        .unwrap()
        .expect("a reset link");
    let res = accept(
        &app,
        &reset.token,
        "Bob",
        "a long passphrase 3",
        "a long passphrase 3",
    )
    .await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        app.core.account_by_email(&bob).await.unwrap().name,
        "Bob Builder"
    );
}

/// Without mail, the admin is shown the link to pass on.
#[tokio::test]
async fn without_mail_the_admin_is_shown_the_link() {
    let app = TestApp::spawn(crate::support::Backend::Sqlite, |c| c.mail.file = None)
        .await
        .unwrap();
    let alice = logged_in(&app, 0).await;
    let (status, html) = invite(&app, &alice, NEWCOMER).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Mail is not set up on this trilo"), "{html}");
    assert!(html.contains("/login/invitation?token="), "{html}");
}
