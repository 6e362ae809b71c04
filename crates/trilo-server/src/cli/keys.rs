//! `trilo admin keys …`: list the signing keys and rotate them.

use clap::Subcommand;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use trilo_core::Core;
use trilo_core::model::SigningKeyRecord;

use super::admin::{Output, Printed};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Every stored key with its state: `next` (published, not yet signing), `current`,
    /// `retired` (published until `keys.retired_kept` has passed).
    List {
        #[command(flatten)]
        out: Output,
    },
    /// Retire the current key, make the next one current and create a new next key. Tokens
    /// signed before keep verifying until they expire; running instances follow within
    /// `keys.reload_every`.
    Rotate {
        #[command(flatten)]
        out: Output,
    },
}

pub async fn run(core: &Core, command: KeysCommand) -> anyhow::Result<Printed> {
    Ok(match command {
        KeysCommand::List { out } => {
            let keys = core.signing_keys().await?;
            let text = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}  {:<8} created {}{}{}",
                        k.kid,
                        k.state.as_str(),
                        rfc3339(k.created_at),
                        k.activated_at
                            .map(|t| format!(", current since {}", rfc3339(t)))
                            .unwrap_or_default(),
                        k.retired_at
                            .map(|t| format!(", retired {}", rfc3339(t)))
                            .unwrap_or_default(),
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            (out, Value::Array(keys.iter().map(key_json).collect()), text)
        }
        KeysCommand::Rotate { out } => match core.rotate_signing_keys(None).await? {
            Some(r) => (
                out,
                json!({ "retired": r.retired, "current": r.current, "next": r.next }),
                format!(
                    "rotated: {} retired, {} current, {} next",
                    r.retired, r.current, r.next
                ),
            ),
            None => anyhow::bail!(
                "another instance rotated the keys at the same moment; see `trilo admin keys list`"
            ),
        },
    })
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The public facts of a key: never its private part, even encrypted.
fn key_json(k: &SigningKeyRecord) -> Value {
    json!({
        "kid": k.kid,
        "alg": k.alg,
        "state": k.state.as_str(),
        "created_at": rfc3339(k.created_at),
        "activated_at": k.activated_at.map(rfc3339),
        "retired_at": k.retired_at.map(rfc3339),
    })
}
