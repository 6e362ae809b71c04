//! API tokens for scripts (DESIGN §2, reference "basic auth with API tokens"): created by
//! a user, shown once, kept as a hash, used with HTTP Basic `email:token` at the gateway.

use serde_json::json;
use time::Duration;

use super::{Core, new_id};
use crate::crypto::{random_token, sha256};
use crate::error::{CoreError, CoreResult};
use crate::model::{Account, AccountStatus, ApiToken};

/// Uses are recorded at most this often per token, so checking a token rarely writes.
const TOUCH_INTERVAL: Duration = Duration::minutes(5);
/// Labels are for people; a bound keeps lists readable and rows small.
const MAX_LABEL_CHARS: usize = 100;

/// A new token: the record, and the secret itself, which is never shown again.
#[derive(Clone)]
pub struct CreatedApiToken {
    pub token: ApiToken,
    pub secret: String,
}

impl std::fmt::Debug for CreatedApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiToken")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl Core {
    /// Creates a token for the account, valid for `lifetime` (or until revoked).
    pub async fn create_api_token(
        &self,
        account_id: &str,
        label: &str,
        lifetime: Option<Duration>,
    ) -> CoreResult<CreatedApiToken> {
        let label = label.trim();
        if label.is_empty() || label.chars().count() > MAX_LABEL_CHARS {
            return Err(CoreError::Invalid(format!(
                "the label must have 1 to {MAX_LABEL_CHARS} characters"
            )));
        }
        if lifetime.is_some_and(|l| !l.is_positive()) {
            return Err(CoreError::Invalid("the lifetime must be positive".into()));
        }
        let now = self.now();
        let secret = random_token();
        let token = ApiToken {
            token_id: new_id(),
            account_id: account_id.to_owned(),
            label: label.to_owned(),
            token_hash: sha256(&secret),
            created_at: now,
            expires_at: lifetime.map(|l| now + l),
            last_used_at: None,
            revoked_at: None,
        };
        self.store
            .insert_api_token(&token)
            .await
            .map_err(|e| match CoreError::from(e) {
                CoreError::NotFound(_) => CoreError::NotFound("account"),
                other => other,
            })?;
        self.audit(
            Some(account_id),
            "api_token.created",
            &token.token_id,
            None,
            json!({ "label": token.label }),
        )
        .await?;
        Ok(CreatedApiToken { token, secret })
    }

    pub async fn api_tokens(&self, account_id: &str) -> CoreResult<Vec<ApiToken>> {
        Ok(self.store.api_tokens_of_account(account_id).await?)
    }

    /// Revokes one of the account's tokens; `NotFound` if it has no such live token.
    pub async fn revoke_api_token(&self, account_id: &str, token_id: &str) -> CoreResult<()> {
        if !self
            .store
            .revoke_api_token(account_id, token_id, self.now())
            .await?
        {
            return Err(CoreError::NotFound("API token"));
        }
        self.access_changed().await;
        self.audit(
            Some(account_id),
            "api_token.revoked",
            token_id,
            None,
            json!({}),
        )
        .await
    }

    /// The account an `email:token` pair from HTTP Basic authenticates: the token is live
    /// and belongs to the active account with that email. Unknown, revoked, expired and
    /// mismatched pairs are all `None`.
    pub async fn check_api_token(&self, email: &str, secret: &str) -> CoreResult<Option<Account>> {
        let Some(token) = self.store.api_token_by_hash(&sha256(secret)).await? else {
            return Ok(None);
        };
        let now = self.now();
        if token.revoked_at.is_some() || token.expires_at.is_some_and(|at| now >= at) {
            return Ok(None);
        }
        let account =
            self.store.account(&token.account_id).await?.filter(|a| {
                a.status == AccountStatus::Active && a.email.eq_ignore_ascii_case(email)
            });
        if account.is_some()
            && token
                .last_used_at
                .is_none_or(|at| now - at >= TOUCH_INTERVAL)
        {
            self.store.touch_api_token(&token.token_id, now).await?;
        }
        Ok(account)
    }
}
