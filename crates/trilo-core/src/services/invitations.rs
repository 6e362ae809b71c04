//! Invitations: a site admin adds someone who has no account yet. The invitee gets an
//! `Invited` account (which cannot log in), the membership the admin chose, and a link by
//! mail, good for a week, where they choose their name and password; accepting makes the
//! account active. Links are stored as password reset links are (hashed, single use).

use serde_json::json;
use time::Duration;

use super::Core;
use super::accounts::NewAccount;
use super::site_admin::SiteAdmin;
use crate::crypto::{hash_password, random_token, sha256};
use crate::error::{CoreError, CoreResult};
use crate::model::{Account, AccountStatus, PasswordReset, Role};

/// How long an invitation link works.
pub const INVITATION_LIFETIME: Duration = Duration::days(7);

/// An invitation to mail. No `Debug`: the token is a credential.
pub struct Invitation {
    pub email: String,
    /// Who invited them, and to which site: what the mail says.
    pub inviter: String,
    pub site_name: String,
    pub token: String,
}

impl SiteAdmin<'_> {
    /// Invites `email`, which no account uses yet, to be `role` of `product_key` on the
    /// site. Inviting the same email again (the first mail was lost, say) keeps its
    /// invited account and sends a new link; an email with an account of its own is
    /// refused: that person is added with the members form instead.
    pub async fn invite_member(
        &self,
        email: &str,
        product_key: &str,
        role: Role,
        containers: &[String],
    ) -> CoreResult<Invitation> {
        let email = email.trim();
        super::accounts::validate_email(email)
            .map_err(|_| CoreError::invalid_field("email", "Enter an email address."))?;
        let core = self.core;
        let account = match core.store.account_by_email(email).await? {
            Some(a) if a.status == AccountStatus::Invited => a,
            Some(_) => {
                return Err(CoreError::invalid_field(
                    "email",
                    format!("{email} already has an account: add them with Save instead."),
                ));
            }
            None => core.create_invited_account(email).await?,
        };
        self.set_member(&account.email, product_key, role, containers)
            .await?;
        let token = random_token();
        let now = core.now();
        core.store
            .insert_password_reset(&PasswordReset {
                token_hash: sha256(&token),
                account_id: account.account_id.clone(),
                created_at: now,
                expires_at: now + INVITATION_LIFETIME,
            })
            .await?;
        let site = self.site().await?;
        core.audit(
            Some(&self.admin.account_id),
            "member.invited",
            &account.account_id,
            Some(&site.cloud_id),
            json!({ "product": product_key, "role": role.as_str() }),
        )
        .await?;
        Ok(Invitation {
            email: account.email,
            inviter: self.admin.name.clone(),
            site_name: site.name,
            token,
        })
    }
}

impl Core {
    /// An account for an invitation: invited, named after its email until its owner says
    /// otherwise, with a password nobody knows.
    async fn create_invited_account(&self, email: &str) -> CoreResult<Account> {
        let local = email.split('@').next().unwrap_or_default();
        let input = NewAccount {
            email: email.to_owned(),
            name: local.to_owned(),
            password: random_token(),
            ..NewAccount::default()
        };
        self.create_account_as(input, AccountStatus::Invited, "account.invited")
            .await
    }

    /// The invited account a live invitation link is for (to show its form), or `None`.
    pub async fn invitation(&self, token: &str) -> CoreResult<Option<Account>> {
        self.live_link_account(token, AccountStatus::Invited).await
    }

    /// Accepts an invitation: the account becomes active with this name and password,
    /// and the link stops working. A name or password the rules refuse leaves both as
    /// they were (`InvalidField` naming the field).
    pub async fn accept_invitation(
        &self,
        token: &str,
        name: &str,
        password: &str,
    ) -> CoreResult<Account> {
        let gone = || CoreError::Invalid(EXPIRED_INVITATION.to_owned());
        let account = self.invitation(token).await?.ok_or_else(gone)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(CoreError::invalid_field(
                "name",
                "Your name must be 1 to 200 characters.",
            ));
        }
        if let Some(problem) = crate::password_policy::problem(password, &account.email) {
            return Err(CoreError::invalid_field("new_password", problem));
        }
        let hash = hash_password(password.to_owned()).await?;
        let account = self
            .store
            .accept_invitation(&sha256(token), self.now(), name, &hash)
            .await?
            .ok_or_else(gone)?;
        self.audit(
            Some(&account.account_id),
            "account.invitation_accepted",
            &account.account_id,
            None,
            json!({}),
        )
        .await?;
        Ok(account)
    }
}

/// What a used, expired or unknown invitation link is told.
pub const EXPIRED_INVITATION: &str = "This invitation has expired or was already used. Ask the admin who invited you for a \
     new one, or log in if you have set your password.";
