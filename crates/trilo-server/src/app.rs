//! Assembling a running server from a validated configuration.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use trilo_core::{Clock, Core, SystemClock};

use crate::config::Validated;
use crate::db::open_store;
use crate::housekeeping;
use crate::http;
use crate::keyfile::sealing_key;
use crate::state::AppState;
use crate::webhooks;

pub use crate::listener::{ListenerSettings, serve_with};

/// The services and the router for one configuration.
#[derive(Clone, Debug)]
pub struct Server {
    pub core: Core,
    pub router: axum::Router,
    /// The webhook sender, stopped when the last clone of the server is dropped.
    pub sender: Option<Arc<webhooks::SenderHandle>>,
    /// The key follower and the janitor, likewise.
    pub housekeeping: Option<Arc<housekeeping::HousekeepingHandle>>,
}

/// Opens the store (migrating if configured), loads the signing keys, builds the router.
pub async fn build(validated: &Validated) -> anyhow::Result<Server> {
    build_with_clock(validated, Arc::new(SystemClock)).await
}

pub async fn build_with_clock(
    validated: &Validated,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Server> {
    let store = open_store(&validated.database, validated.config.migrate_on_start).await?;
    let sealing = sealing_key(validated)?;
    let core = Core::new(store, clock, &sealing, validated.settings.clone())
        .await
        .context("loading the signing keys")?;
    let state = AppState::new(
        core.clone(),
        validated.secure_cookies(),
        validated.upstreams,
        crate::state::Limits::new(validated.limits),
        validated.metrics_allow.clone(),
        validated.mailer.clone(),
    )?;
    let sender = match validated.sender {
        Some(settings) => Some(Arc::new(webhooks::spawn(core.clone(), settings)?)),
        None => None,
    };
    let housekeeping = validated
        .housekeeping
        .then(|| Arc::new(housekeeping::spawn(core.clone())));
    Ok(Server {
        core,
        router: http::router(state),
        sender,
        housekeeping,
    })
}

/// Serves until ctrl-c / SIGTERM, then lets the requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    settings: ListenerSettings,
) -> anyhow::Result<()> {
    serve_with(listener, router, settings, shutdown_signal()).await
}

/// Serves with the default listener settings and without waiting for a signal (tests
/// abort the task instead).
pub async fn serve_forever(listener: TcpListener, router: axum::Router) -> anyhow::Result<()> {
    serve_with(
        listener,
        router,
        ListenerSettings::default(),
        std::future::pending(),
    )
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
