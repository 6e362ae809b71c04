//! The site-admin console's services (DESIGN §1 "site admin console", §3 "Admin
//! controls"): only an admin of a product on the site may use them, and every change is
//! audited and reaches the gateway at once.

use serde_json::json;

use super::Core;
use crate::error::{CoreError, CoreResult};
use crate::model::{
    Account, AuditEvent, AuditQuery, Container, Installation, InstalledBy, Membership, Policy,
    Role, Site, UserInstalls,
};

/// One site, seen by one of its admins.
#[derive(Clone, Copy, Debug)]
pub struct SiteAdmin<'a> {
    pub(super) core: &'a Core,
    pub(super) admin: &'a Account,
    cloud_id: &'a str,
}

/// A member as the members page lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberView {
    pub membership: Membership,
    pub email: String,
    pub name: String,
    /// Invited and not yet joined.
    pub invited: bool,
    /// For guests, the containers they reach.
    pub containers: Vec<String>,
}

/// An installed app as the app controls list it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledApp {
    pub installation: Installation,
    pub app_name: String,
    pub client_id: String,
}

impl Core {
    /// The sites where `account` administers at least one product.
    pub async fn administered_sites(&self, account: &Account) -> CoreResult<Vec<Site>> {
        let mut sites = Vec::new();
        for m in self
            .store
            .memberships_of_account(&account.account_id)
            .await?
        {
            if m.role == Role::Admin
                && !sites.iter().any(|s: &Site| s.cloud_id == m.cloud_id)
                && let Some(site) = self.store.site(&m.cloud_id).await?
            {
                sites.push(site);
            }
        }
        Ok(sites)
    }

    /// Whether the account administers a product on any site.
    pub async fn is_site_admin(&self, account_id: &str) -> CoreResult<bool> {
        Ok(self
            .store
            .memberships_of_account(account_id)
            .await?
            .iter()
            .any(|m| m.role == Role::Admin))
    }

    /// The site's admin services; someone who administers nothing there gets `NotFound`
    /// (the site's existence is not revealed).
    pub async fn site_admin<'a>(
        &'a self,
        admin: &'a Account,
        cloud_id: &'a str,
    ) -> CoreResult<SiteAdmin<'a>> {
        let is_admin = self
            .store
            .memberships_of_account(&admin.account_id)
            .await?
            .iter()
            .any(|m| m.cloud_id == cloud_id && m.role == Role::Admin);
        if !is_admin {
            return Err(CoreError::NotFound("site"));
        }
        Ok(SiteAdmin {
            core: self,
            admin,
            cloud_id,
        })
    }
}

impl SiteAdmin<'_> {
    pub async fn site(&self) -> CoreResult<Site> {
        self.core
            .store
            .site(self.cloud_id)
            .await?
            .ok_or(CoreError::NotFound("site"))
    }

    pub async fn members(&self) -> CoreResult<Vec<MemberView>> {
        let mut members = Vec::new();
        for m in self.core.store.memberships_of_site(self.cloud_id).await? {
            let Some(account) = self.core.store.account(&m.account_id).await? else {
                continue;
            };
            let containers = if m.role == Role::Guest {
                self.core
                    .store
                    .guest_containers(&m.account_id, self.cloud_id, &m.product_key)
                    .await?
            } else {
                Vec::new()
            };
            members.push(MemberView {
                membership: m,
                invited: account.status == crate::model::AccountStatus::Invited,
                email: account.email,
                name: account.name,
                containers,
            });
        }
        Ok(members)
    }

    /// Gives the account with `email` a role for a product of the site; a guest reaches
    /// `containers` only.
    pub async fn set_member(
        &self,
        email: &str,
        product_key: &str,
        role: Role,
        containers: &[String],
    ) -> CoreResult<()> {
        let account = self
            .core
            .store
            .account_by_email(email)
            .await?
            .ok_or(CoreError::NotFound("account"))?;
        if role != Role::Admin {
            self.keep_an_admin(&account.account_id, product_key).await?;
        }
        self.core
            .set_membership_by(
                Some(&self.admin.account_id),
                &account.account_id,
                self.cloud_id,
                product_key,
                role,
            )
            .await?;
        let keys: &[String] = if role == Role::Guest { containers } else { &[] };
        self.core
            .set_guest_containers(&account.account_id, self.cloud_id, product_key, keys)
            .await
    }

    pub async fn remove_member(&self, account_id: &str, product_key: &str) -> CoreResult<()> {
        self.keep_an_admin(account_id, product_key).await?;
        self.core
            .remove_membership_by(
                Some(&self.admin.account_id),
                account_id,
                self.cloud_id,
                product_key,
            )
            .await
    }

    /// Refuses to take the admin role of `product_key` from `account_id` when no other
    /// admin of that product on the site would be left: the site would lose its last
    /// administrator (often the one acting, locking themselves out at once).
    async fn keep_an_admin(&self, account_id: &str, product_key: &str) -> CoreResult<()> {
        let admins: Vec<String> = self
            .core
            .store
            .memberships_of_site(self.cloud_id)
            .await?
            .into_iter()
            .filter(|m| m.product_key == product_key && m.role == Role::Admin)
            .map(|m| m.account_id)
            .collect();
        if admins.len() == 1 && admins[0] == account_id {
            return Err(CoreError::Invalid(format!(
                "This is the last admin of {product_key} on this site. Make someone else an \
                 admin of {product_key} first, so that the site keeps an administrator."
            )));
        }
        Ok(())
    }

    /// Allows or blocks installs of apps by users' consent; it applies at once.
    pub async fn set_user_installs(&self, value: UserInstalls) -> CoreResult<()> {
        self.core.set_user_installs(self.cloud_id, value).await
    }

    pub async fn installed_apps(&self) -> CoreResult<Vec<InstalledApp>> {
        let mut apps = Vec::new();
        for installation in self.core.store.installations_of_site(self.cloud_id).await? {
            if let Some(app) = self.core.store.app(&installation.app_id).await? {
                apps.push(InstalledApp {
                    installation,
                    app_name: app.name,
                    client_id: app.client_id,
                });
            }
        }
        Ok(apps)
    }

    /// Installs an app (by client id) as an admin: it keeps working while user installs
    /// are blocked.
    pub async fn install_app(&self, client_id: &str) -> CoreResult<()> {
        let app = self
            .core
            .store
            .app_by_client_id(client_id.trim())
            .await?
            .ok_or(CoreError::NotFound("app"))?;
        let installation = Installation {
            app_id: app.app_id.clone(),
            cloud_id: self.cloud_id.to_owned(),
            installed_by_account_id: self.admin.account_id.clone(),
            installed_by: InstalledBy::Admin,
            created_at: self.core.now(),
        };
        // An installation made by a user consent is replaced by the admin's.
        self.core
            .store
            .uninstall_app(&app.app_id, self.cloud_id)
            .await?;
        self.core.store.install_app(&installation).await?;
        self.core.access_changed().await;
        self.audit(
            "app.installed_by_admin",
            &app.app_id,
            json!({ "name": app.name }),
        )
        .await
    }

    pub async fn uninstall_app(&self, app_id: &str) -> CoreResult<()> {
        if !self.core.store.uninstall_app(app_id, self.cloud_id).await? {
            return Err(CoreError::NotFound("installation"));
        }
        self.core.access_changed().await;
        self.audit("app.uninstalled", app_id, json!({})).await
    }

    /// Records a space or project of a product the site hosts.
    pub async fn add_container(
        &self,
        product_key: &str,
        key: &str,
        container_id: &str,
        name: &str,
    ) -> CoreResult<()> {
        let container = self
            .core
            .put_container(Container {
                cloud_id: self.cloud_id.to_owned(),
                product_key: product_key.to_owned(),
                key: key.trim().to_owned(),
                container_id: container_id.trim().to_owned(),
                name: name.trim().to_owned(),
            })
            .await?;
        self.audit(
            "container.added",
            &container.key,
            json!({ "product": product_key, "id": container.container_id }),
        )
        .await
    }

    pub async fn containers(&self) -> CoreResult<Vec<Container>> {
        Ok(self.core.store.containers(self.cloud_id, None).await?)
    }

    pub async fn policies(&self) -> CoreResult<Vec<Policy>> {
        Ok(self.core.store.policies(self.cloud_id).await?)
    }

    /// Creates an inactive policy with the app access rule over `containers`
    /// (product key, container key).
    pub async fn create_policy(
        &self,
        name: &str,
        containers: Vec<(String, String)>,
    ) -> CoreResult<Policy> {
        if containers.is_empty() {
            return Err(CoreError::Invalid(
                "choose at least one space or project".into(),
            ));
        }
        self.core
            .create_policy(self.cloud_id, name, containers, true)
            .await
    }

    /// Renames one of the site's policies or changes what it covers.
    pub async fn update_policy(
        &self,
        policy_id: &str,
        name: &str,
        containers: Vec<(String, String)>,
    ) -> CoreResult<()> {
        self.own_policy(policy_id).await?;
        if containers.is_empty() {
            return Err(CoreError::Invalid(
                "choose at least one space or project".into(),
            ));
        }
        self.core.update_policy(policy_id, name, containers).await?;
        Ok(())
    }

    /// `NotFound` unless the policy is this site's.
    async fn own_policy(&self, policy_id: &str) -> CoreResult<()> {
        let belongs = self
            .core
            .store
            .policy(policy_id)
            .await?
            .is_some_and(|p| p.cloud_id == self.cloud_id);
        if belongs {
            Ok(())
        } else {
            Err(CoreError::NotFound("policy"))
        }
    }

    /// Activates or deactivates one of the site's policies.
    pub async fn set_policy_active(&self, policy_id: &str, active: bool) -> CoreResult<()> {
        self.own_policy(policy_id).await?;
        self.core.set_policy_active(policy_id, active).await?;
        Ok(())
    }

    /// The site's audit events, newest first, as `query` narrows them (its site is this
    /// one whatever it says).
    pub async fn audit_events(&self, query: AuditQuery) -> CoreResult<Vec<AuditEvent>> {
        let query = AuditQuery {
            cloud_id: Some(self.cloud_id.to_owned()),
            action_prefix: query.action_prefix.filter(|p| !p.is_empty()),
            ..query
        };
        Ok(self.core.store.audit_events(&query).await?)
    }

    /// What an audit event's actor or target is, in words: an account's email, an app's,
    /// a policy's or a site's name, the command line and its user; the id itself when it
    /// names none of these (or something deleted since).
    pub async fn describe(&self, id: &str) -> CoreResult<String> {
        if let Some(user) = super::cli_user(id) {
            return Ok(format!("the command line (user {user})"));
        }
        let store = &self.core.store;
        if let Some(account) = store.account(id).await? {
            return Ok(account.email);
        }
        if let Some(app) = store.app(id).await? {
            return Ok(format!("app {}", app.name));
        }
        if let Some(policy) = store.policy(id).await? {
            return Ok(format!("policy {}", policy.name));
        }
        if let Some(site) = store.site(id).await? {
            return Ok(format!("site {}", site.name));
        }
        Ok(id.to_owned())
    }

    async fn audit(
        &self,
        action: &str,
        target: &str,
        details: serde_json::Value,
    ) -> CoreResult<()> {
        self.core
            .audit(
                Some(&self.admin.account_id),
                action,
                target,
                Some(self.cloud_id),
                details,
            )
            .await
    }
}
