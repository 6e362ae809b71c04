//! `trilo admin api-token …`: create, list and revoke a user's API tokens.

use clap::Subcommand;
use serde_json::json;
use trilo_core::Core;
use trilo_core::model::ApiToken;

use super::admin::{Output, Printed};
use crate::config::parse_duration;

#[derive(Debug, Subcommand)]
pub enum ApiTokenCommand {
    /// Create a token; the token itself is printed once and never again.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "script")]
        label: String,
        /// How long it is valid, e.g. `30d` (default: until revoked).
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// List a user's tokens (never the tokens themselves).
    List {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        out: Output,
    },
    /// Revoke one of a user's tokens.
    Revoke {
        #[arg(long)]
        email: String,
        #[arg(long)]
        id: String,
        #[command(flatten)]
        out: Output,
    },
}

pub async fn run(core: &Core, command: ApiTokenCommand) -> anyhow::Result<Printed> {
    Ok(match command {
        ApiTokenCommand::Create {
            email,
            label,
            expires_in,
            out,
        } => {
            let account = core.account_by_email(&email).await?;
            let lifetime = expires_in
                .map(|text| parse_duration("--expires-in", &text))
                .transpose()?;
            let created = core
                .create_api_token(&account.account_id, &label, lifetime)
                .await?;
            let mut value = token_json(&created.token);
            value["email"] = json!(account.email);
            value["token"] = json!(created.secret);
            let text = format!(
                "API token {} for {}: {}\nUse it with HTTP Basic as {}:<token>; it is not shown again.",
                created.token.token_id, account.email, created.secret, account.email
            );
            (out, value, text)
        }
        ApiTokenCommand::List { email, out } => {
            let account = core.account_by_email(&email).await?;
            let tokens = core.api_tokens(&account.account_id).await?;
            let lines: Vec<String> = tokens
                .iter()
                .map(|t| {
                    let state = if t.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "live"
                    };
                    format!("{}  {}  {state}", t.token_id, t.label)
                })
                .collect();
            (
                out,
                json!(tokens.iter().map(token_json).collect::<Vec<_>>()),
                lines.join("\n"),
            )
        }
        ApiTokenCommand::Revoke { email, id, out } => {
            let account = core.account_by_email(&email).await?;
            core.revoke_api_token(&account.account_id, &id).await?;
            (
                out,
                json!({ "id": id, "revoked": true }),
                format!("revoked {id}"),
            )
        }
    })
}

fn token_json(t: &ApiToken) -> serde_json::Value {
    let rfc3339 = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    json!({
        "id": t.token_id,
        "account_id": t.account_id,
        "label": t.label,
        "created_at": rfc3339(t.created_at),
        "expires_at": t.expires_at.map(rfc3339),
        "last_used_at": t.last_used_at.map(rfc3339),
        "revoked": t.revoked_at.is_some(),
    })
}
