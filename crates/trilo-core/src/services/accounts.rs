//! Accounts, passwords and browser sessions.
//!
//! Login never tells whether an email exists: unknown accounts run a dummy argon2 check
//! and get the same answer as a wrong password.

use serde_json::json;

use super::{Core, new_id};
use crate::crypto::{hash_password, random_token, sha256, verify_password};
use crate::error::{CoreError, CoreResult};
use crate::model::{Account, AccountStatus, ExtendedProfile, Session};

/// What an administrator supplies to create an account.
#[derive(Clone, Debug, Default)]
pub struct NewAccount {
    pub email: String,
    pub name: String,
    pub password: String,
    pub nickname: Option<String>,
    pub zoneinfo: Option<String>,
    pub locale: Option<String>,
    pub extended_profile: ExtendedProfile,
}

/// A session just created: the cookie value is shown to the browser once, the store keeps
/// its hash.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub cookie_value: String,
    pub session: Session,
}

pub use crate::password_policy::MIN_PASSWORD_LEN;

impl Core {
    pub async fn create_account(&self, input: NewAccount) -> CoreResult<Account> {
        self.create_account_as(input, AccountStatus::Active, "account.created")
            .await
    }

    /// A new account in `status`, audited as `action` (an invitation's account is
    /// `Invited`, see `invitations`).
    pub(super) async fn create_account_as(
        &self,
        input: NewAccount,
        status: AccountStatus,
        action: &str,
    ) -> CoreResult<Account> {
        let email = input.email.trim().to_owned();
        validate_email(&email)?;
        validate_password(&input.password, &email)?;
        let name = input.name.trim().to_owned();
        if name.is_empty() || name.len() > 200 {
            return Err(CoreError::Invalid(
                "name must be 1 to 200 characters".into(),
            ));
        }
        let password_hash = hash_password(input.password).await?;
        let nickname = input
            .nickname
            .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
        let account = Account {
            account_id: new_id(),
            email,
            name,
            nickname,
            picture: None,
            zoneinfo: input.zoneinfo.unwrap_or_else(|| "UTC".into()),
            locale: input.locale.unwrap_or_else(|| "en-US".into()),
            extended_profile: input.extended_profile,
            status,
            password_hash,
            credential_generation: 0,
            created_at: self.now(),
        };
        self.store
            .insert_account(&account)
            .await
            .map_err(|e| match CoreError::from(e) {
                CoreError::Conflict(_) => {
                    CoreError::Conflict("an account with this email exists".into())
                }
                other => other,
            })?;
        self.audit(None, action, &account.account_id, None, json!({}))
            .await?;
        Ok(account)
    }

    /// Checks an email and password. `None` for an unknown email, a wrong password or an
    /// inactive account, all in the same time.
    pub async fn authenticate(&self, email: &str, password: &str) -> CoreResult<Option<Account>> {
        let account = self.store.account_by_email(email.trim()).await?;
        let phc = account.as_ref().map(|a| a.password_hash.clone());
        let ok = verify_password(password.to_owned(), phc).await?;
        Ok(account.filter(|a| ok && a.status == AccountStatus::Active))
    }

    /// Starts a browser session for an authenticated account.
    pub async fn start_session(&self, account: &Account) -> CoreResult<NewSession> {
        let cookie_value = random_token();
        let now = self.now();
        let session = Session {
            id_hash: sha256(&cookie_value),
            account_id: account.account_id.clone(),
            csrf_token: random_token(),
            created_at: now,
            expires_at: now + self.settings.session_ttl,
        };
        self.store.insert_session(&session).await?;
        Ok(NewSession {
            cookie_value,
            session,
        })
    }

    /// The live session for a cookie value, with its account if that is still active.
    pub async fn session(&self, cookie_value: &str) -> CoreResult<Option<(Session, Account)>> {
        let Some(session) = self
            .store
            .session(&sha256(cookie_value), self.now())
            .await?
        else {
            return Ok(None);
        };
        let account = self.store.account(&session.account_id).await?;
        Ok(account
            .filter(|a| a.status == AccountStatus::Active)
            .map(|a| (session, a)))
    }

    pub async fn end_session(&self, cookie_value: &str) -> CoreResult<()> {
        self.store.delete_session(&sha256(cookie_value)).await?;
        Ok(())
    }

    /// The account's live browser sessions, newest first; `true` marks the one with
    /// `cookie_value` (the browser asking).
    pub async fn sessions_of(
        &self,
        account_id: &str,
        cookie_value: &str,
    ) -> CoreResult<Vec<(Session, bool)>> {
        let mine = sha256(cookie_value);
        Ok(self
            .store
            .sessions_of_account(account_id, self.now())
            .await?
            .into_iter()
            .map(|s| {
                let current = s.id_hash == mine;
                (s, current)
            })
            .collect())
    }

    /// "Sign out everywhere else": ends every session of the account but the one with
    /// `cookie_value`; returns how many ended.
    pub async fn end_other_sessions(
        &self,
        account_id: &str,
        cookie_value: &str,
    ) -> CoreResult<u64> {
        let ended = self
            .store
            .end_other_sessions(account_id, &sha256(cookie_value))
            .await?;
        self.audit(
            Some(account_id),
            "account.sessions_ended",
            account_id,
            None,
            serde_json::json!({ "sessions": ended }),
        )
        .await?;
        Ok(ended)
    }

    /// Sets a new password: other sessions end and every refresh-token family of the
    /// account is revoked (DESIGN §3 Accounts). `keep_session_cookie` keeps the caller's own
    /// browser session.
    pub async fn set_password(
        &self,
        account_id: &str,
        password: &str,
        keep_session_cookie: Option<&str>,
    ) -> CoreResult<Account> {
        let email = self
            .store
            .account(account_id)
            .await?
            .map(|a| a.email)
            .ok_or(CoreError::NotFound("account"))?;
        validate_password(password, &email)?;
        let hash = hash_password(password.to_owned()).await?;
        let keep = keep_session_cookie.map(sha256);
        let account = self
            .store
            .change_password(account_id, &hash, keep.as_ref(), self.now())
            .await
            .map_err(|e| match CoreError::from(e) {
                CoreError::NotFound(_) => CoreError::NotFound("account"),
                other => other,
            })?;
        self.access_changed().await;
        self.audit(
            Some(account_id),
            "account.password_changed",
            account_id,
            None,
            json!({}),
        )
        .await?;
        Ok(account)
    }

    pub async fn account_by_email(&self, email: &str) -> CoreResult<Account> {
        self.store
            .account_by_email(email)
            .await?
            .ok_or(CoreError::NotFound("account"))
    }
}

pub(super) fn validate_email(email: &str) -> CoreResult<()> {
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(())
    } else {
        Err(CoreError::Invalid("email is not a valid address".into()))
    }
}

pub(super) fn validate_password(password: &str, email: &str) -> CoreResult<()> {
    match crate::password_policy::problem(password, email) {
        Some(problem) => Err(CoreError::Invalid(problem)),
        None => Ok(()),
    }
}
