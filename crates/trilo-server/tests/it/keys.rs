//! The signing key: created on first start, stored encrypted, the same after a restart,
//! and unusable with another key-encryption key.

use std::sync::Arc;

use base64::Engine;
use trilo_server::app::build_with_clock;
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
    let signature = first.core.keys.sign(token_input).unwrap();
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
    let records = second.core.store.signing_keys().await.unwrap();
    assert_eq!(records.len(), 1);
    // Stored encrypted: the plaintext key (which the right key-encryption key recovers)
    // appears nowhere in the stored bytes.
    let stored = &records[0].private_key_encrypted;
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
    let keys = &app.core.keys;
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
    let code = app.obtain_code(&app.authorize_url(&[])).await;
    let token = crate::token::redeem(&app, &code).await.assert_tokens();
    assert_eq!(crate::token::me_status(&app, &token).await, 200);
    let (input, signature) = token.rsplit_once('.').unwrap();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut raw = engine.decode(signature).unwrap();
    trilo_core::low_s::negate_s(&mut raw);
    let respelled = format!("{input}.{}", engine.encode(raw));
    assert_eq!(crate::token::me_status(&app, &respelled).await, 401);
}
