//! Opening the store the database URL selects.

use std::sync::Arc;

use anyhow::Context;
use trilo_core::Store;
use trilo_store_postgres::PgStore;
use trilo_store_sqlite::{SqlStore, SqliteStore};

use crate::config::DatabaseUrl;

/// Opens (and, if asked, migrates) the store. SQLite databases are created when missing
/// and checked for durable settings (WAL, `synchronous=FULL`, foreign keys).
pub async fn open_store(database: &DatabaseUrl, migrate: bool) -> anyhow::Result<Arc<dyn Store>> {
    match database {
        DatabaseUrl::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the data directory {}", dir.display()))?;
            }
            let store = SqliteStore::open(path)
                .await
                .with_context(|| format!("opening the SQLite database {}", path.display()))?;
            if migrate {
                store
                    .migrate()
                    .await
                    .context("migrating the SQLite database")?;
            }
            store
                .self_check()
                .await
                .context("checking SQLite durability settings")?;
            Ok(Arc::new(SqlStore(store)))
        }
        DatabaseUrl::Postgres(url) => {
            let store = PgStore::connect(url, 16)
                .await
                .context("connecting to PostgreSQL")?;
            if migrate {
                store
                    .migrate()
                    .await
                    .context("migrating the PostgreSQL database")?;
            }
            Ok(Arc::new(SqlStore(store)))
        }
    }
}
