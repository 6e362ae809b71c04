//! Access changes between instances over `LISTEN/NOTIFY` (DESIGN §4): an instance that
//! revokes or narrows access announces it; every instance listening drops its cached
//! gateway decisions at once. Notifications are a fast path only: caches also expire on
//! their own, so a lost notification (or an engine without `NOTIFY`) delays nothing past
//! the cache's lifetime.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use trilo_core::store::{AccessListener, StoreResult};

use crate::error::map_sqlx;

const CHANNEL: &str = "trilo_access_changed";
/// Wait before listening again after the connection failed.
const RETRY: Duration = Duration::from_secs(1);

pub(crate) async fn announce(pool: &PgPool) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify('trilo_access_changed', '')")
        .execute(pool)
        .await
        .map_err(map_sqlx)?;
    Ok(())
}

/// Listens on its own connection until the pool is closed, calling `listener` on every
/// announcement, and also after each reconnection (announcements may have been missed).
pub(crate) fn listen(pool: PgPool, listener: Arc<dyn AccessListener>) {
    tokio::spawn(async move {
        while !pool.is_closed() {
            if let Err(e) = listen_once(&pool, listener.as_ref()).await {
                if pool.is_closed() {
                    break;
                }
                tracing::warn!(error = %e, "listening for access changes failed; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    });
}

async fn listen_once(pool: &PgPool, listener: &dyn AccessListener) -> Result<(), sqlx::Error> {
    let mut channel = PgListener::connect_with(pool).await?;
    channel.listen(CHANNEL).await?;
    listener.access_changed();
    loop {
        match channel.try_recv().await? {
            Some(_) => listener.access_changed(),
            // The connection dropped and is being re-established: assume the worst.
            None => listener.access_changed(),
        }
    }
}
