//! "Forgot your password?" (issue 17): a link by mail sets a new password once, within an
//! hour, ending every session and refresh token; asking says the same for unknown emails
//! and is limited; mail goes to a file or through a real SMTP conversation on loopback.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::refresh::{first_tokens, refresh, refresh_token_of};
use crate::support::{Backend, Fetch, TestApp, hidden_field, location};

/// Asks for a link at the forgot page; returns the status and the page.
async fn ask(app: &TestApp, email: &str) -> (u16, String) {
    let res = reqwest::Client::new()
        .post(app.url("/login/forgot"))
        .form(&[("email", email)])
        .fetch()
        .await;
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The reset links in the mail file, oldest first.
fn mailed_links(app: &TestApp) -> Vec<String> {
    let text = std::fs::read_to_string(app.data_dir().join("mail.log")).unwrap_or_default();
    text.split_whitespace()
        .filter(|w| w.contains("/login/reset?token="))
        .map(str::to_owned)
        .collect()
}

async fn set_password(app: &TestApp, link: &str, new: &str, again: &str) -> reqwest::Response {
    let token = crate::support::query_param(link, "token").unwrap();
    app.browser()
        .post(app.url("/login/reset"))
        .form(&[
            ("token", token.as_str()),
            ("new_password", new),
            ("confirm_password", again),
        ])
        .fetch()
        .await
}

#[tokio::test]
async fn a_mailed_link_sets_a_new_password_once_and_ends_every_session() {
    let app = TestApp::sqlite().await;
    let (email, old_password) = app.alice();
    let session = app.browser();
    assert_eq!(app.login(&session, email, old_password).await.status(), 303);
    let rt = refresh_token_of(&first_tokens(&app).await);

    let (status, page) = ask(&app, email).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"notice\""), "{page}");
    let links = mailed_links(&app);
    assert_eq!(links.len(), 1);
    let mail = std::fs::read_to_string(app.data_dir().join("mail.log")).unwrap();
    assert!(mail.contains(&format!("To: <{email}>")), "{mail}");
    // An unknown email is told the same, and nothing is sent.
    let (status, unknown) = ask(&app, "nobody@example.test").await;
    assert_eq!((status, unknown.contains(SENT_MARK)), (200, true));
    assert_eq!(mailed_links(&app).len(), 1);

    let form = reqwest::get(&links[0]).await.unwrap().text().await.unwrap();
    assert!(form.contains(email), "the form names the account: {form}");
    assert!(hidden_field(&form, "token").is_some());
    // Refusals leave the link usable.
    assert_eq!(
        set_password(&app, &links[0], "a-new-long-pass", "another")
            .await
            .status(),
        400
    );
    let weak = set_password(&app, &links[0], "password", "password").await;
    assert_eq!(weak.status(), 400);

    let done = set_password(&app, &links[0], "a-new-long-pass", "a-new-long-pass").await;
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), "/login?reset=done");
    let login = reqwest::get(app.url("/login?reset=done"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("id=\"notice\""), "{login}");
    // Once only.
    assert_eq!(
        set_password(&app, &links[0], "third-long-pass", "third-long-pass")
            .await
            .status(),
        400
    );
    assert_eq!(reqwest::get(&links[0]).await.unwrap().status(), 404);

    // The new password works, the old one does not; the old session and the app's
    // refresh token are over.
    assert_eq!(
        app.login(&app.browser(), email, "a-new-long-pass")
            .await
            .status(),
        303
    );
    assert_eq!(
        app.login(&app.browser(), email, old_password)
            .await
            .status(),
        401
    );
    let res = session.get(app.url("/account")).fetch().await;
    assert_eq!(location(&res), "/login?return_to=%2Faccount");
    assert_eq!(refresh(&app, &rt).await.status, 403);
}

/// What the page says after any request for a link.
const SENT_MARK: &str = "If an account uses that email, we sent it a link";

#[tokio::test]
async fn links_expire_after_an_hour_and_asking_is_limited() {
    let app = TestApp::sqlite().await;
    let (email, _) = app.alice();
    ask(&app, email).await;
    let link = mailed_links(&app).remove(0);
    app.clock.advance(time::Duration::minutes(61));
    assert_eq!(reqwest::get(&link).await.unwrap().status(), 404);
    assert_eq!(
        set_password(&app, &link, "a-new-long-pass", "a-new-long-pass")
            .await
            .status(),
        400
    );
    // Three links an hour per email (the clock is in the next hour's window now).
    for _ in 0..3 {
        assert_eq!(ask(&app, email).await.0, 200);
    }
    let (status, page) = ask(&app, email).await;
    assert_eq!(status, 429, "{page}");
    assert_eq!(mailed_links(&app).len(), 4, "no mail once limited");
}

/// A loopback SMTP relay that accepts one message and keeps its DATA.
async fn smtp_relay() -> (String, Arc<Mutex<String>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let received = Arc::new(Mutex::new(String::new()));
    let keep = received.clone();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 relay.test ESMTP\r\n").await.unwrap();
        let mut in_data = false;
        while let Ok(Some(line)) = lines.next_line().await {
            if in_data {
                if line == "." {
                    in_data = false;
                    write.write_all(b"250 queued\r\n").await.unwrap();
                } else {
                    keep.lock().unwrap().push_str(&format!("{line}\n"));
                }
                continue;
            }
            let reply: &[u8] = match line.split(' ').next().unwrap_or_default() {
                "EHLO" => b"250-relay.test\r\n250 8BITMIME\r\n",
                "MAIL" | "RCPT" => b"250 ok\r\n",
                "DATA" => {
                    in_data = true;
                    b"354 go ahead\r\n"
                }
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await.unwrap();
                    break;
                }
                _ => b"500 what\r\n",
            };
            write.write_all(reply).await.unwrap();
        }
    });
    (addr, received)
}

#[tokio::test]
async fn the_link_can_go_through_an_smtp_relay() {
    let (relay, received) = smtp_relay().await;
    let app = TestApp::spawn(Backend::Sqlite, |c| {
        c.mail.file = None;
        c.mail.smtp_relay = relay;
    })
    .await
    .unwrap();
    let (email, _) = app.alice();
    assert_eq!(ask(&app, email).await.0, 200);
    let message = received.lock().unwrap().clone();
    assert!(message.contains(&format!("To: <{email}>")), "{message}");
    assert!(message.contains("/login/reset?token="), "{message}");
}
