//! "Forgot password": a link by mail that sets a new password once, within an hour.
//! Asking never tells whether an account exists (the page answers the same either way,
//! and only an existing, active account is sent a link). Using the link ends every session
//! and revokes every refresh token of the account, as any password change does.

use serde_json::json;
use time::Duration;

use super::Core;
use crate::crypto::{random_token, sha256};
use crate::error::{CoreError, CoreResult};
use crate::model::{Account, AccountStatus, PasswordReset};

/// How long a reset link works.
pub const RESET_LINK_LIFETIME: Duration = Duration::hours(1);

/// A link to send: to whom, and the token the link carries (never stored as is).
#[derive(Debug)]
pub struct ResetLink {
    pub email: String,
    pub name: String,
    pub token: String,
}

impl Core {
    /// Makes a reset link for the active account with `email`; `None` when there is none
    /// (the caller answers the same, so nobody learns which emails have accounts).
    pub async fn request_password_reset(&self, email: &str) -> CoreResult<Option<ResetLink>> {
        let Some(account) = self.store.account_by_email(email.trim()).await? else {
            return Ok(None);
        };
        if account.status != AccountStatus::Active {
            return Ok(None);
        }
        let token = random_token();
        let now = self.now();
        self.store
            .insert_password_reset(&PasswordReset {
                token_hash: sha256(&token),
                account_id: account.account_id.clone(),
                created_at: now,
                expires_at: now + RESET_LINK_LIFETIME,
            })
            .await?;
        self.audit(
            Some(&account.account_id),
            "account.password_reset_requested",
            &account.account_id,
            None,
            json!({}),
        )
        .await?;
        Ok(Some(ResetLink {
            email: account.email,
            name: account.name,
            token,
        }))
    }

    /// The account a live link is for (to show the reset form), or `None`.
    pub async fn password_reset_account(&self, token: &str) -> CoreResult<Option<Account>> {
        // An invitation's link is no reset link (see `invitations`).
        self.live_link_account(token, AccountStatus::Active).await
    }

    /// The account of a live link (a reset or an invitation: both are stored alike), when
    /// it has `status`.
    pub(super) async fn live_link_account(
        &self,
        token: &str,
        status: AccountStatus,
    ) -> CoreResult<Option<Account>> {
        let Some(account_id) = self
            .store
            .password_reset_account(&sha256(token), self.now())
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .store
            .account(&account_id)
            .await?
            .filter(|a| a.status == status))
    }

    /// Sets `new_password` through the link, which then stops working. A password the
    /// policy refuses leaves the link usable (`Invalid` with the reason).
    pub async fn reset_password(&self, token: &str, new_password: &str) -> CoreResult<Account> {
        let gone = || CoreError::Invalid(EXPIRED.to_owned());
        let account = self.password_reset_account(token).await?.ok_or_else(gone)?;
        super::accounts::validate_password(new_password, &account.email)?;
        if !self
            .store
            .use_password_reset(&sha256(token), self.now())
            .await?
        {
            return Err(gone());
        }
        self.set_password(&account.account_id, new_password, None)
            .await
    }
}

/// What a used, expired or unknown link is told.
pub const EXPIRED: &str = "This link has expired or was already used. Ask for a new one below.";
