//! The parent's own services on the benchmark database, for seeding and preparing. The
//! store is kept at hand so it can be closed before the scratch database goes: an open
//! PostgreSQL pool would keep listening for access changes and warn once it is dropped.

use std::sync::Arc;

use anyhow::Context;
use trilo_core::{Core, Store, SystemClock};
use trilo_store_postgres::PgStore;
use trilo_store_sqlite::{SqlStore, SqliteStore};

use crate::config::{DatabaseUrl, Validated};
use crate::keyfile::sealing_key;

/// Connections the parent needs: it prepares one request at a time.
const PG_CONNECTIONS: u32 = 4;

pub enum OwnStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl OwnStore {
    pub async fn close(&self) {
        match self {
            OwnStore::Sqlite(store) => store.close().await,
            OwnStore::Postgres(store) => store.close().await,
        }
    }
}

/// Opens and migrates the database, creates the signing keys (the server process loads
/// the same ones through the shared key file) and assembles the services.
pub async fn open(validated: &Validated) -> anyhow::Result<(Core, OwnStore)> {
    let (store, own): (Arc<dyn Store>, OwnStore) = match &validated.database {
        DatabaseUrl::Sqlite(path) => {
            let store = SqliteStore::open(path)
                .await
                .with_context(|| format!("opening {}", path.display()))?;
            store.migrate().await?;
            (Arc::new(SqlStore(store.clone())), OwnStore::Sqlite(store))
        }
        DatabaseUrl::Postgres(url) => {
            let store = PgStore::connect(url, PG_CONNECTIONS).await?;
            store.migrate().await?;
            (Arc::new(SqlStore(store.clone())), OwnStore::Postgres(store))
        }
    };
    let core = Core::new(
        store,
        Arc::new(SystemClock),
        &sealing_key(validated)?,
        validated.settings.clone(),
    )
    .await
    .context("loading the signing keys")?;
    Ok((core, own))
}
