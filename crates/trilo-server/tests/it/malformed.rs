//! Hostile and malformed input at `/authorize`, the consent and login forms and the token
//! endpoint (security checklist H-P1–H-P4): oversized bodies, repeated parameters, bad
//! encodings and wrong content types are refused cleanly, and nothing changes.

use crate::authorize::{
    alice_session_cookie, assert_error_page, assert_nothing_consented, assert_redirect_error,
    logged_in, query_of, raw_get, set_cookie,
};
use crate::support::{Fetch, TestApp, hidden_field, location, query_param};
use crate::token::{code_params, form_body, post_raw, redeem, with};

const FORM: &str = "application/x-www-form-urlencoded";

/// Percent-encoding and UTF-8 errors (security checklist H-P3).
const BAD_ENCODINGS: [&str; 6] = ["%zz", "%", "%4", "%C0%AF", "%FF", "%E2%82"];

/// A form body with `pad` appended so that it is `size` bytes long.
fn padded(body: &str, size: usize) -> Vec<u8> {
    let mut out = format!("{body}&pad=").into_bytes();
    out.resize(size, b'a');
    out
}

/// Security checklist H-P2: bodies over 64 KiB get 413 before anything is read.
#[tokio::test]
async fn oversized_bodies_get_413_and_change_nothing() {
    let app = TestApp::sqlite().await;
    let (browser, page) = app.alice_at_consent().await;
    let acme = app.demo.sites[0].cloud_id.clone();
    let consent = form_body(&[
        (
            "csrf_token".into(),
            hidden_field(&page, "csrf_token").unwrap(),
        ),
        ("request".into(), hidden_field(&page, "request").unwrap()),
        ("decision".into(), "accept".into()),
        ("cloud_id".into(), acme.clone()),
    ]);
    for size in [64 * 1024 + 1, 1024 * 1024] {
        let res = browser
            .post(app.url("/authorize/consent"))
            .header("content-type", FORM)
            .body(padded(&consent, size))
            .fetch()
            .await;
        assert_eq!(res.status(), 413, "consent body of {size} bytes");
        assert!(res.headers().get("location").is_none());
    }
    assert_nothing_consented(&app).await;

    let login_client = app.browser();
    let login_page = login_client.get(app.url("/login")).fetch_text().await;
    let (email, password) = app.alice();
    let login = form_body(&[
        ("email".into(), email.into()),
        ("password".into(), password.into()),
        (
            "csrf_token".into(),
            hidden_field(&login_page, "csrf_token").unwrap(),
        ),
    ]);
    let res = login_client
        .post(app.url("/login"))
        .header("content-type", FORM)
        .body(padded(&login, 1024 * 1024))
        .fetch()
        .await;
    assert_eq!(res.status(), 413);
    assert!(set_cookie(&res, "trilo_session").is_none());

    let res = app
        .submit_consent(&browser, &page, "accept", Some(&acme))
        .await;
    let code = query_param(&location(&res), "code").unwrap();
    let token = form_body(&code_params(&app, &code));
    for size in [64 * 1024 + 1, 1024 * 1024] {
        let answer = post_raw(&app, Some(FORM), padded(&token, size)).await;
        assert_eq!(answer.status, 413, "token body of {size} bytes");
    }
    redeem(&app, &code).await.assert_tokens();
}

/// Security checklist H-P1: a repeated parameter is `invalid_request`, never "first wins".
#[tokio::test]
async fn repeated_parameters_at_the_token_endpoint_fail_with_invalid_request() {
    let app = TestApp::sqlite().await;
    let code = app.demo_code().await;
    let params = code_params(&app, &code);
    for (name, value) in &params {
        let mut repeated = params.clone();
        repeated.push((name.clone(), value.clone()));
        post_raw(&app, Some(FORM), form_body(&repeated).into_bytes())
            .await
            .assert_error(400, "invalid_request");
        // A different second value as well (`code=a&code=b`).
        let mut differing = params.clone();
        differing.push((name.clone(), format!("{value}x")));
        post_raw(&app, Some(FORM), form_body(&differing).into_bytes())
            .await
            .assert_error(400, "invalid_request");
    }
    // The same in a JSON object with a member named twice.
    let demo = app.app();
    let json = format!(
        r#"{{"grant_type":"authorization_code","code":"{code}","code":"{code}","redirect_uri":"{}","client_id":"{}","client_secret":"{}"}}"#,
        demo.callback_url, demo.client_id, demo.client_secret
    );
    post_raw(&app, Some("application/json"), json.into_bytes())
        .await
        .assert_error(400, "invalid_request");
    redeem(&app, &code).await.assert_tokens();
}

/// Security checklist H-P1: `client_id` or `redirect_uri` twice cannot be trusted.
#[tokio::test]
async fn repeated_client_id_or_redirect_uri_at_authorize_shows_an_error_page() {
    let app = TestApp::sqlite().await;
    let browser = logged_in(&app, 0).await;
    let url = app.authorize_url(&[]);
    let demo = app.app();
    let other = "https://app.example.test/other";
    let client_id = query_param(&url, "client_id").unwrap();
    for extra in [
        format!("client_id={client_id}"),
        "client_id=another-client".to_owned(),
        format!(
            "redirect_uri={}",
            trilo_protocol::params::encode(&demo.callback_url)
        ),
        format!("redirect_uri={}", trilo_protocol::params::encode(other)),
    ] {
        let res = browser.get(format!("{url}&{extra}")).fetch().await;
        assert_error_page(res, &extra).await;
    }
    assert_nothing_consented(&app).await;
}

/// Security checklist H-P1, A10: other repeated parameters redirect `invalid_request`.
#[tokio::test]
async fn repeated_scope_state_or_response_type_at_authorize_redirects_invalid_request() {
    let app = TestApp::sqlite().await;
    let browser = logged_in(&app, 0).await;
    let url = app.authorize_url(&[]);
    let callback = app.app().callback_url.clone();
    for (extra, state) in [
        ("scope=read%3Ame", Some("st-123")),
        ("scope=write%3Ajira-work", Some("st-123")),
        ("response_type=code", Some("st-123")),
        ("audience=api.trilo.test", Some("st-123")),
        // Which of two states would be echoed is ambiguous: none is.
        ("state=st-456", None),
    ] {
        let res = browser.get(format!("{url}&{extra}")).fetch().await;
        assert_redirect_error(&app, &res, 302, &callback, "invalid_request", state);
    }
    assert_nothing_consented(&app).await;
}

/// Security checklist H-P3: undecodable input is never trusted enough to redirect.
#[tokio::test]
async fn undecodable_query_at_authorize_shows_an_error_page() {
    let app = TestApp::sqlite().await;
    let browser = logged_in(&app, 0).await;
    let url = app.authorize_url(&[("state", "")]);
    for bad in BAD_ENCODINGS {
        for extra in [format!("state={bad}"), format!("x{bad}=1")] {
            let res = browser.get(format!("{url}&{extra}")).fetch().await;
            assert_error_page(res, &extra).await;
        }
    }
    // Raw bytes that are not UTF-8 at all, written straight onto the connection.
    let cookie = alice_session_cookie(&app).await;
    let mut target = format!("/authorize?{}&state=", query_of(&url)).into_bytes();
    target.extend_from_slice(b"\xff\xfe");
    let res = raw_get(&app, &target, Some(&cookie)).await;
    assert_eq!(res.status, 400, "{res:?}");
    assert_eq!(res.header("location"), None);
    assert_nothing_consented(&app).await;
}

/// Security checklist H-P3: the consent form's body and its `request` field are parsed
/// as strictly as `/authorize`.
#[tokio::test]
async fn undecodable_consent_form_is_refused_and_creates_nothing() {
    let app = TestApp::sqlite().await;
    let (browser, page) = app.alice_at_consent().await;
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    let request = hidden_field(&page, "request").unwrap();
    let acme = app.demo.sites[0].cloud_id.clone();
    let form = form_body(&[
        ("csrf_token".into(), csrf.clone()),
        ("request".into(), request.clone()),
        ("decision".into(), "accept".into()),
        ("cloud_id".into(), acme.clone()),
    ]);
    for bad in BAD_ENCODINGS {
        let res = browser
            .post(app.url("/authorize/consent"))
            .header("content-type", FORM)
            .body(format!("{form}&x={bad}"))
            .fetch()
            .await;
        assert_eq!(res.status(), 400, "form with {bad}");
        assert!(res.headers().get("location").is_none());

        let res = browser
            .post(app.url("/authorize/consent"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("request", &format!("{request}&x={bad}")),
                ("decision", "accept"),
                ("cloud_id", &acme),
            ])
            .fetch()
            .await;
        assert_error_page(res, bad).await;
    }
    assert_nothing_consented(&app).await;
}

/// Security checklist H-P3 at the token endpoint.
#[tokio::test]
async fn undecodable_token_body_fails_with_invalid_request() {
    let app = TestApp::sqlite().await;
    let code = app.demo_code().await;
    let body = form_body(&code_params(&app, &code));
    let mut bodies: Vec<Vec<u8>> = BAD_ENCODINGS
        .iter()
        .flat_map(|bad| [format!("{body}&x={bad}"), format!("{body}&x{bad}=1")])
        .map(String::into_bytes)
        .collect();
    let mut raw = format!("{body}&x=").into_bytes();
    raw.extend_from_slice(b"\xff\xfe");
    bodies.push(raw);
    for bad in bodies {
        post_raw(&app, Some(FORM), bad.clone())
            .await
            .assert_error(400, "invalid_request");
    }
    redeem(&app, &code).await.assert_tokens();
}

/// Security checklist H-P4: only urlencoded forms and JSON objects are read.
#[tokio::test]
async fn token_endpoint_refuses_other_content_types_with_invalid_request() {
    let app = TestApp::sqlite().await;
    let code = app.demo_code().await;
    let params = code_params(&app, &code);
    let body = form_body(&params);
    for content_type in [Some("text/plain"), Some("application/xml"), None] {
        post_raw(&app, content_type, body.clone().into_bytes())
            .await
            .assert_error(400, "invalid_request");
    }
    let boundary = "trilo-test-boundary";
    let mut multipart = String::new();
    for (name, value) in &params {
        multipart.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    multipart.push_str(&format!("--{boundary}--\r\n"));
    post_raw(
        &app,
        Some(&format!("multipart/form-data; boundary={boundary}")),
        multipart.into_bytes(),
    )
    .await
    .assert_error(400, "invalid_request");
    redeem(&app, &code).await.assert_tokens();
}

/// A JSON body must be one object.
#[tokio::test]
async fn token_endpoint_refuses_a_json_body_that_is_not_an_object() {
    let app = TestApp::sqlite().await;
    let code = app.demo_code().await;
    let object: serde_json::Map<String, serde_json::Value> = code_params(&app, &code)
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    let object = serde_json::Value::Object(object);
    for body in [
        serde_json::json!([object]).to_string(),
        serde_json::json!(form_body(&code_params(&app, &code))).to_string(),
        format!("{object}{object}"),
        object.to_string()[1..].to_owned(),
    ] {
        post_raw(&app, Some("application/json"), body.into_bytes())
            .await
            .assert_error(400, "invalid_request");
    }
    // The object itself is accepted.
    post_raw(
        &app,
        Some("application/json"),
        object.to_string().into_bytes(),
    )
    .await
    .assert_tokens();
}

/// Security checklist H-P4: a form declared in another charset is refused rather than
/// read as UTF-8; `charset=UTF-8` (what many clients send) is fine.
#[tokio::test]
async fn token_endpoint_refuses_a_form_whose_charset_is_not_utf8() {
    let app = TestApp::sqlite().await;
    let code = app.demo_code().await;
    let body = form_body(&code_params(&app, &code));
    post_raw(
        &app,
        Some("application/x-www-form-urlencoded; charset=ISO-8859-1"),
        body.clone().into_bytes(),
    )
    .await
    .assert_error(400, "invalid_request");
    post_raw(
        &app,
        Some("application/x-www-form-urlencoded; charset=UTF-8"),
        body.into_bytes(),
    )
    .await
    .assert_tokens();
}

/// Unknown parameters are ignored (security checklist A10); with `with` it is checked
/// that the helper-built bodies above are otherwise valid.
#[tokio::test]
async fn token_endpoint_ignores_unknown_parameters() {
    let app = TestApp::sqlite().await;
    let code = app.demo_code().await;
    let params = with(&code_params(&app, &code), &[("extra", "foobar")]);
    post_raw(&app, Some(FORM), form_body(&params).into_bytes())
        .await
        .assert_tokens();
}
