//! The services: one `Core` value holds the store, the clock, the keys and the settings,
//! and each submodule adds the operations of one area.

pub mod access;
pub mod account;
pub mod accounts;
pub mod admin;
pub mod answers;
pub mod api_tokens;
pub mod authorize;
pub mod clients;
pub mod console;
pub mod directory;
pub mod events;
pub mod failures;
pub mod gateway;
pub mod janitor;
pub mod keys;
pub mod oidc;
pub mod password_reset;
pub mod policies;
pub mod refresh;
pub mod revocation;
pub mod site_admin;
pub mod token;
mod ttl_cache;

use std::sync::Arc;

use time::OffsetDateTime;

use crate::clock::Clock;
use crate::crypto::{ChildTokens, SealingKey, WebhookSecrets};
use crate::error::CoreResult;
use crate::keys::{KeyError, KeyRing};
use crate::model::AuditEvent;
use crate::settings::Settings;
use crate::store::{AccessListener, Store};

#[derive(Clone)]
pub struct Core {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<KeyRing>,
    pub settings: Arc<Settings>,
    /// Names the successor of each refresh token (see [`ChildTokens`]).
    pub child_tokens: ChildTokens,
    /// The gateway's compiled operation catalogs.
    pub catalogs: Arc<gateway::CatalogCache>,
    /// Every product's scope catalog (see [`gateway::ProductScopesCache`]).
    pub product_scopes: Arc<gateway::ProductScopesCache>,
    /// Derives webhook signing secrets and products' event-ingest secrets.
    pub webhook_secrets: WebhookSecrets,
    /// Wakes this instance's webhook senders when deliveries were recorded here.
    pub deliveries_ready: Arc<events::DeliveriesReady>,
    /// Counters for `/metrics`.
    pub metrics: Arc<crate::metrics::CoreMetrics>,
    /// What access decisions cached: cleared together by every access change.
    caches: Arc<AccessCaches>,
}

/// The caches an access change clears, told together by the store's one listener.
struct AccessCaches {
    /// The gateway's recently checked standings (see [`gateway::GatewayCache`]).
    gateway: gateway::GatewayCache,
    /// Recently authenticated clients (see [`clients::ClientCache`]).
    clients: clients::ClientCache,
    /// Recent accessible-resources answers (see [`answers::AnswerCache`]).
    answers: answers::AnswerCache,
    /// What the webhook delivery rule read (see [`events::EventCaches`]).
    events: events::EventCaches,
}

impl AccessListener for AccessCaches {
    fn access_changed(&self) {
        self.gateway.clear();
        self.clients.clear();
        self.answers.clear();
        self.events.clear();
    }
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl Core {
    /// Loads (or on first start creates) the signing keys and assembles the services.
    pub async fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        sealing: &SealingKey,
        settings: Settings,
    ) -> Result<Core, KeyError> {
        let keys = Arc::new(
            KeyRing::load_or_create(
                store.as_ref(),
                sealing,
                settings.keys.retired_kept,
                clock.now(),
            )
            .await?,
        );
        let ttl = settings.gateway_cache_ttl;
        let caches = Arc::new(AccessCaches {
            gateway: gateway::GatewayCache::new(ttl),
            clients: clients::ClientCache::new(ttl),
            answers: answers::AnswerCache::new(ttl),
            events: events::EventCaches::new(ttl),
        });
        store.listen_for_access_changes(caches.clone());
        Ok(Core {
            store,
            clock,
            keys,
            settings: Arc::new(settings),
            child_tokens: ChildTokens::new(sealing),
            webhook_secrets: WebhookSecrets::new(sealing),
            deliveries_ready: Arc::default(),
            metrics: Arc::default(),
            catalogs: Arc::default(),
            product_scopes: Arc::default(),
            caches,
        })
    }

    /// Forgets what this instance's gateway cached, after a change to what it decides on
    /// (a revocation, a password change, a block, a membership, an upstream): the change
    /// then takes effect here at once, and on other instances within the cache's lifetime.
    pub async fn access_changed(&self) {
        self.caches.access_changed();
        // Other instances hear of it at once where the store can tell them; if it cannot,
        // their caches still expire within the TTL.
        if let Err(e) = self.store.announce_access_change().await {
            tracing::warn!(error = %e, "could not announce an access change to other instances");
        }
    }

    /// The services' counters and the store's commit statistics, for `/metrics`.
    pub fn render_metrics(&self, out: &mut String) {
        self.metrics.render(out);
        if let Some(stats) = self.store.commit_stats() {
            stats.render(out);
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Runs `work` on behalf of `account_id`: every audit event it appends without an actor
    /// of its own names that account (the web pages run each request this way for the
    /// signed-in user, so a change made there is never recorded as the system's).
    pub async fn acting_as<F: std::future::Future>(account_id: String, work: F) -> F::Output {
        ACTING_ACCOUNT.scope(account_id, work).await
    }

    /// Appends an audit event. `details` must never hold secrets.
    pub async fn audit(
        &self,
        actor: Option<&str>,
        action: &str,
        target: &str,
        cloud_id: Option<&str>,
        details: serde_json::Value,
    ) -> CoreResult<()> {
        let actor = actor
            .map(str::to_owned)
            .or_else(|| ACTING_ACCOUNT.try_with(Clone::clone).ok());
        let event = AuditEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            at: self.now(),
            actor_account_id: actor,
            action: action.to_owned(),
            target: target.to_owned(),
            cloud_id: cloud_id.map(str::to_owned),
            details,
        };
        self.store.append_audit(&event).await?;
        Ok(())
    }
}

tokio::task_local! {
    /// The account a request acts for (see [`Core::acting_as`]).
    static ACTING_ACCOUNT: String;
}

/// A new row id: UUIDv7, so ids sort by creation time (DESIGN §4).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
