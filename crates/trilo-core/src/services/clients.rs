//! Recently read clients (an app with its secrets) for client authentication at the
//! token endpoint, so a refresh or a code exchange does not read the app, its lists and
//! its secrets on every request.
//!
//! The cache lives as long as the gateway's (`gateway.cache_ttl`, at most 1 s) and is
//! cleared with it: a change to an app or its secrets made through this instance takes
//! effect here at once, one made elsewhere when announced and within the TTL in any case.
//! Unknown clients are never cached. Secret expiry is checked against the clock on every
//! use, so a rotated-away secret stops working at the end of its grace even while cached.

use std::sync::Arc;

use time::OffsetDateTime;

use super::Core;
use super::ttl_cache::TtlCache;
use crate::error::CoreResult;
use crate::model::{App, AppSecret};

/// An app as client authentication needs it.
#[derive(Debug)]
pub struct Client {
    pub app: App,
    /// The secrets valid when read; check [`Client::valid_secrets`] before use.
    secrets: Vec<AppSecret>,
}

impl Client {
    /// The secrets that are still valid at `now` (current, or inside their grace).
    pub fn valid_secrets(&self, now: OffsetDateTime) -> impl Iterator<Item = &AppSecret> {
        self.secrets
            .iter()
            .filter(move |s| s.expires_at.is_none_or(|end| end > now))
    }
}

/// Clients by client id.
pub struct ClientCache(TtlCache<String, Arc<Client>>);

impl std::fmt::Debug for ClientCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientCache")
    }
}

impl ClientCache {
    pub fn new(ttl: time::Duration) -> Self {
        Self(TtlCache::new(ttl))
    }

    /// Forgets every client: called when this instance changes an app or access.
    pub fn clear(&self) {
        self.0.clear();
    }
}

impl Core {
    /// The app with client id `client_id` and its secrets, from the cache when fresh.
    pub(super) async fn client(&self, client_id: &str) -> CoreResult<Option<Arc<Client>>> {
        if let Some(client) = self.caches.clients.0.get(client_id) {
            return Ok(Some(client));
        }
        let Some(app) = self.store.app_by_client_id(client_id).await? else {
            return Ok(None);
        };
        let secrets = self.store.app_secrets(&app.app_id, self.now()).await?;
        let client = Arc::new(Client { app, secrets });
        self.caches
            .clients
            .0
            .put(client_id.to_owned(), Arc::clone(&client));
        Ok(Some(client))
    }

    /// Whether a browser page at `origin` may call the token and revocation endpoints for
    /// `client_id` (CORS, issue 15): the app lists the origin among its web origins. The
    /// auth host's own origin is no cross-origin call and always may.
    pub async fn web_origin_allowed(&self, client_id: &str, origin: &str) -> CoreResult<bool> {
        if self.is_own_origin(origin) {
            return Ok(true);
        }
        Ok(self
            .client(client_id)
            .await?
            .is_some_and(|c| c.app.web_origins.iter().any(|o| o == origin)))
    }

    /// Whether any app registered `origin`: a CORS preflight names no client, so it is
    /// answered for every registered origin and the request itself is checked per app.
    pub async fn web_origin_registered(&self, origin: &str) -> CoreResult<bool> {
        Ok(self.is_own_origin(origin) || self.store.web_origin_registered(origin).await?)
    }

    fn is_own_origin(&self, origin: &str) -> bool {
        trilo_protocol::web_origin::origin_of(&self.settings.auth_url).as_deref() == Some(origin)
    }
}
