//! The signing key: created on first start, stored encrypted, the same after a restart,
//! and unusable with another key-encryption key.

use crate::support::{Fetch, get_json};
use std::sync::Arc;

use base64::Engine;
use trilo_server::app::build_with_clock;

use crate::on_both_backends;
use trilo_server::config::Config;

fn config_in(dir: &std::path::Path, kek: Option<[u8; 32]>) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        key_encryption_key: kek.map(|k| base64::engine::general_purpose::STANDARD.encode(k).into()),
        ..Config::default()
    }
}

#[tokio::test]
async fn signing_key_survives_a_restart_and_needs_its_encryption_key() {
    let dir = std::env::temp_dir().join(format!("trilo-keys-{}", uuid::Uuid::new_v4().simple()));
    let clock = Arc::new(trilo_core::SystemClock);
    let first = build_with_clock(
        &config_in(&dir, Some([1; 32])).validate().unwrap(),
        clock.clone(),
    )
    .await
    .unwrap();
    let kid = first.core.keys.current_kid().to_owned();
    let token_input = b"signed before the restart";
    let signature = first.core.keys.snapshot().sign(token_input).unwrap();
    drop(first);

    let second = build_with_clock(
        &config_in(&dir, Some([1; 32])).validate().unwrap(),
        clock.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        second.core.keys.current_kid(),
        kid,
        "the key is loaded, not regenerated"
    );
    assert!(second.core.keys.verify(&kid, token_input, &signature));
    let records = second.core.store().signing_keys().await.unwrap();
    assert_eq!(records.len(), 2, "the current key and the next");
    // Stored encrypted: the plaintext key (which the right key-encryption key recovers)
    // appears nowhere in the stored bytes.
    let stored = &records
        .iter()
        .find(|r| r.kid == kid)
        .unwrap()
        .private_key_encrypted;
    let plain = trilo_core::crypto::SealingKey::new(&[1; 32])
        .open(stored)
        .unwrap();
    assert!(
        plain.len() > 60 && plain[0] == 0x30,
        "a DER-encoded PKCS#8 key"
    );
    assert!(
        !stored
            .windows(16)
            .any(|w| plain.windows(16).any(|p| p == w))
    );
    drop(second);

    let wrong = build_with_clock(&config_in(&dir, Some([2; 32])).validate().unwrap(), clock).await;
    let message = format!(
        "{:#}",
        wrong.expect_err("a wrong key-encryption key is refused")
    );
    assert!(message.contains("cannot be decrypted"), "{message}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn without_a_configured_key_a_key_file_is_created_with_owner_only_access() {
    let dir = std::env::temp_dir().join(format!("trilo-keys-{}", uuid::Uuid::new_v4().simple()));
    let server = build_with_clock(
        &config_in(&dir, None).validate().unwrap(),
        Arc::new(trilo_core::SystemClock),
    )
    .await
    .unwrap();
    let key_file = dir.join("master.key");
    assert!(key_file.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One spelling per signature (issue 16): trilo signs low-S only, and the high-S spelling
/// of a valid token's signature, which ECDSA alone would accept, is refused.
#[tokio::test]
async fn signatures_are_low_s_and_the_high_s_spelling_is_refused() {
    let app = crate::support::TestApp::sqlite().await;
    let keys = app.core.keys.snapshot();
    let kid = keys.current_kid().to_owned();
    for i in 0..64 {
        let message = format!("message {i}");
        let signature = keys.sign(message.as_bytes()).unwrap();
        assert!(trilo_core::low_s::is_low_s(&signature), "signature {i}");
        assert!(keys.verify(&kid, message.as_bytes(), &signature));
        let mut other = signature.clone();
        trilo_core::low_s::negate_s(&mut other);
        assert!(!keys.verify(&kid, message.as_bytes(), &other), "high-S {i}");
    }
    // The same through the API host: a real token re-spelled is a 401.
    let code = app.demo_code().await;
    let token = crate::token::redeem(&app, &code).await.assert_tokens();
    assert_eq!(crate::token::me_status(&app, &token).await, 200);
    let (input, signature) = token.rsplit_once('.').unwrap();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut raw = engine.decode(signature).unwrap();
    trilo_core::low_s::negate_s(&mut raw);
    let respelled = format!("{input}.{}", engine.encode(raw));
    assert_eq!(crate::token::me_status(&app, &respelled).await, 401);
}

/// The kids `/.well-known/jwks.json` publishes, in order.
async fn published_kids(base: &str) -> Vec<String> {
    let jwks: serde_json::Value = get_json(format!("{base}/.well-known/jwks.json")).await;
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// The `kid` in a JWS header (not verified).
fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn fresh_access_token(app: &crate::support::TestApp) -> String {
    let code = app.demo_code().await;
    crate::token::redeem(app, &code).await.assert_tokens()
}

on_both_backends!(
    a_rotation_keeps_earlier_tokens_valid_and_publishes_next_current_and_retired,
    super::a_rotation_keeps_earlier_tokens_valid_body
);
async fn a_rotation_keeps_earlier_tokens_valid_body(app: crate::support::TestApp) {
    // From the first start: a current key, and the next one published before it signs.
    let before = published_kids(&app.base).await;
    assert_eq!(before.len(), 2, "{before:?}");
    let (current, next) = (before[0].clone(), before[1].clone());
    let earlier = fresh_access_token(&app).await;
    assert_eq!(kid_of(&earlier), current);

    let rotated = app.core.rotate_signing_keys(None).await.unwrap().unwrap();
    assert_eq!(
        (rotated.retired.as_str(), rotated.current.as_str()),
        (current.as_str(), next.as_str())
    );
    assert_eq!(
        published_kids(&app.base).await,
        vec![next.clone(), rotated.next.clone(), current.clone()],
        "current first, then next, then the retired key"
    );
    // Signed before the rotation: still good until it expires.
    assert_eq!(crate::token::me_status(&app, &earlier).await, 200);
    let later = fresh_access_token(&app).await;
    assert_eq!(kid_of(&later), next, "the key published as next now signs");
    assert_eq!(crate::token::me_status(&app, &later).await, 200);
    let audit = app
        .core
        .store()
        .audit_events(&trilo_core::model::AuditQuery {
            action_prefix: Some("signing_key.".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].target, next);

    // Once nothing it signed can be valid (keys.retired_kept, 1 day), the retired key is
    // neither published nor accepted, and the janitor removes it.
    app.clock
        .advance(time::Duration::days(1) + time::Duration::seconds(1));
    app.core.follow_signing_keys().await.unwrap();
    assert_eq!(
        published_kids(&app.base).await,
        vec![next.clone(), rotated.next.clone()]
    );
    let report = app.core.sweep_once().await.unwrap();
    assert_eq!(report.removed("retired_keys"), 1);
    let stored: Vec<String> = app
        .core
        .store()
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert!(!stored.contains(&current), "{stored:?}");
    assert_eq!(stored.len(), 2);
}

/// The schedule: a key current for `keys.rotate_every` is rotated by the key loop, once,
/// and a rotation that lost a race to another instance changes nothing more.
#[tokio::test]
async fn the_schedule_rotates_a_key_that_has_signed_long_enough() {
    let app = crate::support::TestApp::spawn(crate::support::Backend::Sqlite, |c| {
        c.keys.rotate_every = "30d".into();
    })
    .await
    .unwrap();
    let first = app.core.keys.current_kid();
    app.clock.advance(time::Duration::days(29));
    app.core.follow_signing_keys().await.unwrap();
    assert_eq!(app.core.keys.current_kid(), first, "not yet due");
    app.clock.advance(time::Duration::days(1));
    app.core.follow_signing_keys().await.unwrap();
    let second = app.core.keys.current_kid();
    assert_ne!(second, first, "due after 30 days");
    app.core.follow_signing_keys().await.unwrap();
    assert_eq!(
        app.core.keys.current_kid(),
        second,
        "one rotation per period"
    );
    let keys = app.core.store().signing_keys().await.unwrap();
    assert_eq!(keys.len(), 3, "retired, current, next: {keys:?}");
}

/// Several instances on one PostgreSQL database: `trilo admin keys rotate` run from the
/// command line; a token the rotated keys sign verifies at once at an instance that has
/// not yet re-read them (it published the new key as next), and every instance signs with
/// the new key within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_follow_a_rotation_by_the_cli_within_a_second() {
    let Some(app) = crate::support::TestApp::postgres().await else {
        return;
    };
    let other = crate::process::ServerProcess::start(&app).await;
    let before = published_kids(&other.base).await;
    assert_eq!(before, published_kids(&app.base).await);

    let out = app.run_trilo(&["admin", "keys", "rotate", "--json"], &[]);
    let rotated_at = std::time::Instant::now();
    let rotated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rotated["current"], before[1].as_str());
    assert_eq!(rotated["retired"], before[0].as_str());

    // This test's instance signs with the new key; the other accepts the token whether or
    // not it has re-read the keys yet.
    app.core.follow_signing_keys().await.unwrap();
    let token = fresh_access_token(&app).await;
    assert_eq!(kid_of(&token), before[1]);
    let at_other = reqwest::Client::new()
        .get(format!("{}/me", other.base))
        .bearer_auth(&token)
        .fetch()
        .await
        .status();
    assert_eq!(at_other, 200);

    // Both publish the new set, current first, within a second of the rotation.
    let expected = vec![
        before[1].clone(),
        rotated["next"].as_str().unwrap().to_owned(),
        before[0].clone(),
    ];
    loop {
        let (here, there) = (
            published_kids(&app.base).await,
            published_kids(&other.base).await,
        );
        if here == expected && there == expected {
            break;
        }
        assert!(
            rotated_at.elapsed() < std::time::Duration::from_secs(1),
            "a second after the rotation: here {here:?}, there {there:?}, expected {expected:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}
