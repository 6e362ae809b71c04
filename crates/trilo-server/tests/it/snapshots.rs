//! Snapshots (insta) of JSON answers whose whole shape is the contract: the discovery
//! documents, the key set, a token error and accessible-resources. The server's address
//! and anything random (ids, keys) are replaced, so a snapshot changes only when the
//! answer does.

use serde_json::Value;

use crate::support::{TestApp, accessible_resources, get_json};
use crate::token::redeem;

/// `value` with the test server's random address written as `http://trilo.test`.
fn at_a_fixed_address(app: &TestApp, value: &Value) -> Value {
    let text = serde_json::to_string(value).unwrap();
    serde_json::from_str(&text.replace(&app.base, "http://trilo.test")).unwrap()
}

/// Each object of the array `items` with its `field` replaced by `placeholder`: the random
/// part of an answer whose shape is the contract.
fn redact_each(items: &mut Value, field: &str, placeholder: &str) {
    for item in items.as_array_mut().into_iter().flatten() {
        if let Some(value) = item.get_mut(field) {
            *value = Value::from(placeholder);
        }
    }
}

#[tokio::test]
async fn the_authorization_server_metadata() {
    let app = TestApp::sqlite().await;
    let metadata: Value = get_json(app.url("/.well-known/oauth-authorization-server")).await;
    insta::assert_json_snapshot!(at_a_fixed_address(&app, &metadata));
}

#[tokio::test]
async fn the_openid_discovery_document() {
    let app = TestApp::sqlite().await;
    let discovery: Value = get_json(app.url("/.well-known/openid-configuration")).await;
    insta::assert_json_snapshot!(at_a_fixed_address(&app, &discovery));
}

/// The key set's shape; the key material and ids are random.
#[tokio::test]
async fn the_jwks_with_its_key_material_redacted() {
    let app = TestApp::sqlite().await;
    let mut jwks: Value = get_json(app.url("/.well-known/jwks.json")).await;
    for field in ["kid", "x", "y"] {
        redact_each(&mut jwks["keys"], field, &format!("[{field}]"));
    }
    insta::assert_json_snapshot!(jwks);
}

#[tokio::test]
async fn a_token_error_for_an_unknown_code() {
    let app = TestApp::sqlite().await;
    let answer = redeem(&app, "no-such-code").await;
    assert_eq!(answer.status, 400);
    insta::assert_json_snapshot!(answer.body);
}

/// What an app learns about the sites Alice's consent reaches; the cloud ids are random.
#[tokio::test]
async fn the_accessible_resources_of_a_consent() {
    let app = TestApp::sqlite().await;
    let access = redeem(&app, &app.demo_code().await).await.assert_tokens();
    let sites = Value::Array(accessible_resources(&app, &access).await);
    let mut sites = at_a_fixed_address(&app, &sites);
    redact_each(&mut sites, "id", "[cloud id]");
    insta::assert_json_snapshot!(sites);
}
