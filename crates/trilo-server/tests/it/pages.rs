//! The login, home and logout pages: sessions start and end, and the session cookie is
//! HttpOnly and SameSite=Lax.

use crate::support::{Fetch, TestApp, hidden_field, location, login_form};

#[tokio::test]
async fn login_starts_a_session_and_logout_ends_it() {
    let app = TestApp::sqlite().await;
    let client = app.browser();
    assert_eq!(location(&client.get(app.url("/")).fetch().await), "/login");

    let (email, password) = app.alice();
    let res = app.login(&client, email, password).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/");
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("trilo_session="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    let home = client.get(app.url("/")).fetch().await;
    assert_eq!(home.status(), 200);
    assert!(home.text().await.unwrap().contains(email));

    let logout_page = client.get(app.url("/logout")).fetch_text().await;
    // A logout POST without the session's CSRF token is refused and ends nothing.
    let forged = client
        .post(app.url("/logout"))
        .form(&[("csrf_token", "forged")])
        .fetch()
        .await;
    assert_eq!(forged.status(), 403);
    assert_eq!(client.get(app.url("/")).fetch().await.status(), 200);

    let csrf = hidden_field(&logout_page, "csrf_token").unwrap();
    let res = client
        .post(app.url("/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .fetch()
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(location(&client.get(app.url("/")).fetch().await), "/login");
}

#[tokio::test]
async fn login_return_to_never_leaves_the_server() {
    let app = TestApp::sqlite().await;
    let (email, password) = app.alice();
    for target in [
        "https://evil.test",
        "//evil.test",
        "/\\evil.test",
        "https:evil.test",
        "javascript:alert(1)",
    ] {
        let client = app.browser();
        let page = client
            .get(app.url("/login"))
            .query(&[("return_to", target)])
            .fetch_text()
            .await;
        let csrf = hidden_field(&page, "csrf_token").unwrap();
        assert_eq!(
            hidden_field(&page, "return_to").as_deref(),
            Some("/"),
            "{target}"
        );
        let res = client
            .post(app.url("/login"))
            .form(&login_form(email, password, &csrf, target))
            .fetch()
            .await;
        assert_eq!(res.status(), 303);
        assert_eq!(location(&res), "/", "{target}");
    }
}
