//! The key-encryption key that protects signing keys at rest: from the configuration, or
//! a random key file created in the data directory on first start (mode 0600).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use trilo_core::crypto::{SealingKey, random_bytes};

use crate::config::Validated;

pub fn sealing_key(validated: &Validated) -> anyhow::Result<SealingKey> {
    if let Some(key) = validated.key_encryption_key()? {
        return Ok(SealingKey::new(&key));
    }
    let path = validated.config.data_dir.join("master.key");
    Ok(SealingKey::new(&load_or_create(&path)?))
}

fn load_or_create(path: &Path) -> anyhow::Result<[u8; 32]> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let bytes = STANDARD
            .decode(text.trim())
            .context("master.key is not base64")?;
        return bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("master.key must hold 32 bytes"));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let key = random_bytes::<32>();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(STANDARD.encode(key).as_bytes())?;
            file.sync_all()?;
            Ok(key)
        }
        // Another process created it between our read and our create: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(path),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}
