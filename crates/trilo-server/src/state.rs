//! What every handler can reach.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use time::Duration;
use trilo_core::Core;
use trilo_core::error::CoreResult;
use trilo_core::ratelimit::FailureLimiter;
use trilo_core::services::failures::FailureLimit;

use crate::http::gateway::forward::{UpstreamSettings, Upstreams};

/// What every handler shares. One `Arc`: axum clones the state for each middleware and
/// extractor of every request, and one reference count is cheaper to bump (and to drop)
/// than the two dozen of the fields (measured: 4–5 % of the server's CPU per code exchange
/// went to cloning and dropping the fields one by one).
#[derive(Clone, Debug)]
pub struct AppState(Arc<SharedState>);

#[derive(Debug)]
pub struct SharedState {
    pub core: Core,
    /// Cookies carry `Secure` when the auth host is served over https.
    pub secure_cookies: bool,
    pub limits: Limits,
    /// Requests by route and status, for `/metrics`.
    pub http_metrics: crate::http::metrics::HttpMetrics,
    /// Who may read `/metrics`.
    pub metrics_allow: Vec<IpAddr>,
    /// The gateway's pooled upstream client.
    pub upstreams: Upstreams,
    /// Where mail goes (password reset links, invitations).
    pub mailer: crate::mail::Mailer,
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

impl AsRef<crate::http::metrics::HttpMetrics> for AppState {
    fn as_ref(&self) -> &crate::http::metrics::HttpMetrics {
        &self.http_metrics
    }
}

impl AppState {
    pub fn new(
        core: Core,
        secure_cookies: bool,
        upstreams: UpstreamSettings,
        limits: Limits,
        metrics_allow: Vec<IpAddr>,
        mailer: crate::mail::Mailer,
    ) -> anyhow::Result<Self> {
        Ok(Self(Arc::new(SharedState {
            core,
            secure_cookies,
            limits,
            http_metrics: crate::http::metrics::HttpMetrics::default(),
            metrics_allow,
            upstreams: Upstreams::new(upstreams)?,
            mailer,
        })))
    }
}

/// Failure limits per instance (security checklist H-T2, H-T3).
#[derive(Debug)]
pub struct Limits {
    /// Wrong passwords per (email, address): 5 per 15 minutes.
    pub login_account: FailureLimiter,
    /// Wrong passwords per address, whatever the email: 50 per 15 minutes.
    pub login_address: FailureLimiter,
    /// Failed client authentications per (client_id, address): 20 per minute. Per
    /// instance only: client secrets are too long to guess, so this limit is about load,
    /// and a store round trip on every token request would cost the hot path.
    pub client_auth: FailureLimiter,
    settings: LimitSettings,
}

/// The limits' numbers (`[limits]` in the configuration).
#[derive(Clone, Copy, Debug)]
pub struct LimitSettings {
    pub login_per_account: u32,
    pub login_per_address: u32,
    pub login_window: Duration,
    pub client_auth: u32,
    pub client_auth_window: Duration,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            login_per_account: 5,
            login_per_address: 50,
            login_window: Duration::minutes(15),
            client_auth: 20,
            client_auth_window: Duration::minutes(1),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(LimitSettings::default())
    }
}

impl Limits {
    pub fn new(s: LimitSettings) -> Self {
        Self {
            login_account: FailureLimiter::new(s.login_per_account, s.login_window),
            login_address: FailureLimiter::new(s.login_per_address, s.login_window),
            client_auth: FailureLimiter::new(s.client_auth, s.client_auth_window),
            settings: s,
        }
    }

    /// The shared (store) counters behind the login limits: (key, limit) for the account
    /// key and for the address.
    fn shared_login(&self, account_key: &str, address: &str) -> [(String, FailureLimit); 2] {
        let s = &self.settings;
        [
            (
                format!("login-account|{account_key}"),
                FailureLimit {
                    max: s.login_per_account,
                    window: s.login_window,
                },
            ),
            (
                format!("login-address|{address}"),
                FailureLimit {
                    max: s.login_per_address,
                    window: s.login_window,
                },
            ),
        ]
    }

    /// Whether a password login for `account_key` (email and address) from `address` may
    /// be tried now; `Err(retry_after)` when either limit is used up. This instance's
    /// counters answer first (no store round trip under a spray); then the counters every
    /// instance shares, so several instances do not multiply the allowance.
    pub async fn login_allowed(
        &self,
        core: &Core,
        account_key: &str,
        address: &str,
    ) -> CoreResult<Result<(), Duration>> {
        let now = core.now();
        let local = self
            .login_account
            .check(account_key, now)
            .and(self.login_address.check(address, now));
        if local.is_err() {
            return Ok(local);
        }
        for (key, limit) in self.shared_login(account_key, address) {
            if let Err(retry_after) = core.check_shared_failures(&key, limit).await? {
                return Ok(Err(retry_after));
            }
        }
        Ok(Ok(()))
    }

    pub async fn login_failed(
        &self,
        core: &Core,
        account_key: &str,
        address: &str,
    ) -> CoreResult<()> {
        let now = core.now();
        self.login_account.record_failure(account_key, now);
        self.login_address.record_failure(address, now);
        for (key, limit) in self.shared_login(account_key, address) {
            core.record_shared_failure(&key, limit).await?;
        }
        Ok(())
    }

    /// A successful login forgets the account key's failures (not the address's).
    pub async fn login_succeeded(
        &self,
        core: &Core,
        account_key: &str,
        address: &str,
    ) -> CoreResult<()> {
        self.login_account.clear(account_key);
        let [(key, _), _] = self.shared_login(account_key, address);
        core.clear_shared_failures(&key).await
    }
}

/// The peer address of the connection, when the server was started with connect info.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub Option<IpAddr>);

impl PeerAddr {
    pub fn key(&self) -> String {
        self.0
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".to_owned())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}
