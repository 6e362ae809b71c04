//! Containers, guests' containers and data security policies (DESIGN §2, §3 "Admin
//! controls"): what site admins use to limit who and what reaches which space or project.
//! Every change narrows or widens access, so each one tells the gateway's caches.

use serde_json::json;

use super::{Core, new_id};
use crate::error::{CoreError, CoreResult};
use crate::model::{Container, Policy};

/// Policy names are for people; a bound keeps lists readable.
const MAX_POLICY_NAME_CHARS: usize = 100;

impl Core {
    /// Records a space or project of a product on a site (reported by the product or
    /// entered by an admin); its key and id are how gateway paths name it.
    pub async fn put_container(&self, container: Container) -> CoreResult<Container> {
        if container.key.trim().is_empty() || container.container_id.trim().is_empty() {
            return Err(CoreError::Invalid(
                "a container needs a key and an id".into(),
            ));
        }
        self.store
            .put_container(&container)
            .await
            .map_err(|e| match CoreError::from(e) {
                CoreError::NotFound(_) => CoreError::NotFound("product on the site"),
                other => other,
            })?;
        self.access_changed().await;
        Ok(container)
    }

    /// The containers a guest may reach; `NotFound` without such a membership or container.
    pub async fn set_guest_containers(
        &self,
        account_id: &str,
        cloud_id: &str,
        product_key: &str,
        container_keys: &[String],
    ) -> CoreResult<()> {
        self.store
            .set_guest_containers(account_id, cloud_id, product_key, container_keys)
            .await
            .map_err(|e| match CoreError::from(e) {
                CoreError::NotFound(_) => CoreError::NotFound("membership or container"),
                other => other,
            })?;
        self.access_changed().await;
        self.audit(
            None,
            "membership.guest_containers_set",
            account_id,
            Some(cloud_id),
            json!({ "product": product_key, "containers": container_keys }),
        )
        .await
    }

    /// Creates a policy covering `containers` (product key, container key); it starts
    /// inactive.
    pub async fn create_policy(
        &self,
        cloud_id: &str,
        name: &str,
        containers: Vec<(String, String)>,
        blocks_apps: bool,
    ) -> CoreResult<Policy> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_POLICY_NAME_CHARS {
            return Err(CoreError::Invalid(format!(
                "a policy name must have 1 to {MAX_POLICY_NAME_CHARS} characters"
            )));
        }
        let now = self.now();
        let policy = Policy {
            policy_id: new_id(),
            cloud_id: cloud_id.to_owned(),
            name: name.to_owned(),
            blocks_apps,
            active: false,
            containers,
            created_at: now,
            updated_at: now,
        };
        self.save_policy(&policy, None, "policy.created").await?;
        Ok(policy)
    }

    /// Activates or deactivates a policy; it takes effect at the gateway at once.
    pub async fn set_policy_active(&self, policy_id: &str, active: bool) -> CoreResult<Policy> {
        let mut policy = self
            .store
            .policy(policy_id)
            .await?
            .ok_or(CoreError::NotFound("policy"))?;
        let before = policy.clone();
        policy.active = active;
        policy.updated_at = self.now();
        let action = if active {
            "policy.activated"
        } else {
            "policy.deactivated"
        };
        self.save_policy(&policy, Some(&before), action).await?;
        Ok(policy)
    }

    /// Renames a policy or changes what it covers; an active one applies at once.
    pub async fn update_policy(
        &self,
        policy_id: &str,
        name: &str,
        containers: Vec<(String, String)>,
    ) -> CoreResult<Policy> {
        let mut policy = self
            .store
            .policy(policy_id)
            .await?
            .ok_or(CoreError::NotFound("policy"))?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_POLICY_NAME_CHARS {
            return Err(CoreError::Invalid(format!(
                "a policy name must have 1 to {MAX_POLICY_NAME_CHARS} characters"
            )));
        }
        let before = policy.clone();
        policy.name = name.to_owned();
        policy.containers = containers;
        policy.updated_at = self.now();
        self.save_policy(&policy, Some(&before), "policy.changed")
            .await?;
        Ok(policy)
    }

    /// Stores the policy with the events its change emits (one transaction), then tells
    /// the caches and the senders.
    async fn save_policy(
        &self,
        policy: &Policy,
        before: Option<&Policy>,
        action: &str,
    ) -> CoreResult<()> {
        let outbox = self.policy_events(policy, before).await?;
        self.store
            .put_policy(policy, &outbox)
            .await
            .map_err(|e| match CoreError::from(e) {
                CoreError::NotFound(_) => CoreError::NotFound("site or container"),
                other => other,
            })?;
        self.access_changed().await;
        if outbox.iter().any(|o| !o.deliveries.is_empty()) {
            self.deliveries_ready.notify();
        }
        self.audit(
            None,
            action,
            &policy.policy_id,
            Some(&policy.cloud_id),
            json!({
                "name": policy.name,
                "active": policy.active,
                "blocks_apps": policy.blocks_apps,
                "containers": policy.containers.len(),
            }),
        )
        .await
    }
}
