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
pub mod invitations;
pub mod janitor;
pub mod keys;
pub mod oidc;
pub mod operator;
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
use crate::crypto::{ChildTokens, KeptTokens, SealingKey, WebhookSecrets};
use crate::error::CoreResult;
use crate::keys::{KeyError, KeyRing};
use crate::model::AuditEvent;
use crate::settings::Settings;
use crate::store::{AccessListener, Store};

#[derive(Clone)]
pub struct Core {
    /// Private: handlers and commands go through the services (see [`Core::store`]).
    pub(crate) store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<KeyRing>,
    pub settings: Arc<Settings>,
    /// Names the successor of each refresh token that has its own row (see
    /// [`ChildTokens`]).
    pub child_tokens: ChildTokens,
    /// Names and checks the refresh tokens kept in their family's row (see [`KeptTokens`]).
    pub kept_tokens: KeptTokens,
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
    /// What those standings read of sites (see [`gateway::SiteFactsCache`]).
    sites: gateway::SiteFactsCache,
    /// The assertions those standings were signed (see [`gateway::AssertionCache`]).
    assertions: gateway::AssertionCache,
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
        self.sites.clear();
        self.assertions.clear();
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
            sites: gateway::SiteFactsCache::new(ttl),
            assertions: gateway::AssertionCache::new(ttl),
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
            kept_tokens: KeptTokens::new(sealing),
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

    /// The store itself, for tests and the benchmark's bulk setup only (feature
    /// `test-support`); everything else goes through the services.
    #[cfg(feature = "test-support")]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Runs `work` on behalf of `actor`: every audit event it appends without an actor of
    /// its own names it. `actor` is an account id, or [`cli_actor`]'s name for a command.
    pub async fn acting_as<F: std::future::Future>(actor: String, work: F) -> F::Output {
        ACTING.scope(ActingSlot::holding(actor), work).await
    }

    /// Runs `work` for whoever it turns out to act for: the first step that authenticates
    /// the caller names them with [`Core::act_for`] (a page's session, an API token), so a
    /// change made by a person is never recorded as the system's, and nothing is looked up
    /// twice to find out who they are.
    pub async fn acting_for_the_caller<F: std::future::Future>(work: F) -> F::Output {
        ACTING.scope(ActingSlot::default(), work).await
    }

    /// Names the account the current [`Core::acting_for_the_caller`] work acts for; does
    /// nothing outside one.
    pub fn act_for(account_id: &str) {
        let _ = ACTING.try_with(|slot| slot.set(account_id));
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
            .or_else(|| ACTING.try_with(ActingSlot::get).ok().flatten());
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
    /// Who the current request or command acts for (see [`Core::acting_as`]).
    static ACTING: ActingSlot;
}

/// The actor of a piece of work, filled in once the caller is known. Shared by the clones
/// a task-local hands out, so a name set deep inside the work is seen by all of it.
#[derive(Clone, Default)]
struct ActingSlot(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl ActingSlot {
    fn holding(actor: String) -> Self {
        Self(std::sync::Arc::new(std::sync::Mutex::new(Some(actor))))
    }

    fn set(&self, actor: &str) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(actor.to_owned());
        }
    }

    fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|slot| slot.clone())
    }
}

/// The audit actor of a `trilo admin …` command run by the operating-system user `user`.
/// No account id has this shape (they are UUIDs), so the two cannot be confused.
pub fn cli_actor(user: &str) -> String {
    format!("cli:{user}")
}

/// The operating-system user of a [`cli_actor`], when `actor` is one.
pub fn cli_user(actor: &str) -> Option<&str> {
    actor.strip_prefix("cli:")
}

/// A new row id: UUIDv7, so ids sort by creation time (DESIGN §4).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
