//! Test support (feature `test-support`): a fresh, migrated database per test, cloned from a
//! template database that is migrated once per schema version (crates.io's approach).
//!
//! The template is named after a hash of the embedded migrations, so a changed schema gets
//! a new template and old test processes keep theirs. It is built under a unique name and
//! renamed into place, so concurrent test processes never see a half-migrated template: the
//! loser of the rename drops its copy.

pub mod lossy_proxy;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use tokio::sync::Mutex;
use trilo_core::store::StoreError;

use crate::error::map_sqlx;
use crate::{MIGRATOR, PgStore, SqlStore};

/// Serializes template creation inside one process.
static TEMPLATE_LOCK: Mutex<()> = Mutex::const_new(());

/// A database created for one test. Dropping the value keeps the database (a server may
/// still be connected to it); call [`TestDatabase::drop_database`] to remove it.
#[derive(Debug)]
pub struct TestDatabase {
    /// Connection URL of the new database.
    pub url: String,
    /// Its name (`trilo_test_<uuid>`).
    pub name: String,
    admin_url: String,
}

impl TestDatabase {
    /// Drops the database, disconnecting anyone still connected (best effort for tests).
    pub async fn drop_database(self) -> Result<(), StoreError> {
        let mut admin = connect(&self.admin_url).await?;
        let result = sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await
        .map(|_| ())
        .map_err(map_sqlx);
        let _ = admin.close().await;
        result
    }
}

/// A store (a pool of two) on a fresh database, and that database; `None` when
/// [`test_url`] is. Panics when either cannot be made.
#[allow(clippy::unwrap_used)]
pub async fn scratch_store() -> Option<(TestDatabase, crate::PgStore)> {
    let db = fresh_database(&test_url()?).await.unwrap();
    let store = crate::PgStore::connect(&db.url, 2).await.unwrap();
    Some((db, store))
}

/// `TRILO_TEST_POSTGRES_URL`, or `None` when it is unset or empty.
///
/// # Panics
/// When `TRILO_REQUIRE_POSTGRES=1` and the URL is missing: in CI a missing database is a
/// failure, not a skip.
pub fn test_url() -> Option<String> {
    match std::env::var("TRILO_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("TRILO_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!(
                    "TRILO_REQUIRE_POSTGRES=1 but TRILO_TEST_POSTGRES_URL is not set: point it \
                     at a PostgreSQL server (e.g. postgres://postgres@127.0.0.1:5432/postgres)"
                );
            }
            None
        }
    }
}

/// Creates an empty, migrated database `trilo_test_<uuid>` on the server of `base_url`
/// (whose own database is only used to issue `CREATE DATABASE`).
pub async fn fresh_database(base_url: &str) -> Result<TestDatabase, StoreError> {
    let template = ensure_template(base_url).await?;
    database_from(base_url, &template).await
}

/// A store with `connections` connections on a fresh, migrated database, for a test;
/// `None` (the test skips, and says so) when no server is configured ([`test_url`]).
pub async fn fresh_store(
    connections: u32,
) -> Result<Option<(TestDatabase, SqlStore<PgStore>)>, StoreError> {
    let Some(base) = test_url() else {
        eprintln!("skipped: TRILO_TEST_POSTGRES_URL is not set");
        return Ok(None);
    };
    let db = fresh_database(&base).await?;
    let store = PgStore::connect(&db.url, connections).await?;
    Ok(Some((db, SqlStore(store))))
}

/// Creates a database `trilo_test_<uuid>` with no migration applied, for a test that
/// applies some itself (a migration's own test).
pub async fn empty_database(base_url: &str) -> Result<TestDatabase, StoreError> {
    database_from(base_url, "template0").await
}

async fn database_from(base_url: &str, template: &str) -> Result<TestDatabase, StoreError> {
    let name = format!("trilo_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = connect(base_url).await?;
    let created = execute_when_free(
        &mut admin,
        format!("CREATE DATABASE {name} TEMPLATE {template}"),
    )
    .await;
    let _ = admin.close().await;
    created?;
    Ok(TestDatabase {
        url: database_url(base_url, &name)?,
        name,
        admin_url: base_url.to_owned(),
    })
}

/// The template's name: a stable hash (FNV-1a) of every migration's version and checksum.
fn template_name() -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for migration in MIGRATOR.iter() {
        for byte in migration
            .version
            .to_le_bytes()
            .iter()
            .chain(migration.checksum.iter())
        {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("trilo_template_{hash:016x}")
}

/// Makes sure the migrated template exists on the server; returns its name.
async fn ensure_template(base_url: &str) -> Result<String, StoreError> {
    let _guard = TEMPLATE_LOCK.lock().await;
    let template = template_name();
    let mut admin = connect(base_url).await?;
    let result = create_template(&mut admin, base_url, &template).await;
    let _ = admin.close().await;
    result.map(|()| template)
}

async fn create_template(
    admin: &mut PgConnection,
    base_url: &str,
    template: &str,
) -> Result<(), StoreError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(template)
            .fetch_one(&mut *admin)
            .await
            .map_err(map_sqlx)?;
    if exists {
        return Ok(());
    }
    let building = format!("trilo_template_build_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {building}")))
        .execute(&mut *admin)
        .await
        .map_err(map_sqlx)?;
    let migrated = async {
        let mut conn = connect(&database_url(base_url, &building)?).await?;
        let run = MIGRATOR
            .run(&mut conn)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrating the template: {e}")));
        let _ = conn.close().await;
        run
    }
    .await;
    let renamed = match migrated {
        Ok(()) => {
            execute_when_free(
                admin,
                format!("ALTER DATABASE {building} RENAME TO {template}"),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match renamed {
        Ok(()) => Ok(()),
        // Another test process renamed its template into place first: use theirs.
        Err(StoreError::Unavailable(message)) if message.contains("already exists") => {
            drop_quietly(admin, &building).await;
            Ok(())
        }
        Err(e) => {
            drop_quietly(admin, &building).await;
            Err(e)
        }
    }
}

async fn drop_quietly(admin: &mut PgConnection, name: &str) {
    let _ = sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut *admin)
    .await;
}

/// Runs a statement, again while the server says a database involved is still in use
/// (SQLSTATE 55006: a just-closed connection's backend has not exited yet).
async fn execute_when_free(admin: &mut PgConnection, sql: String) -> Result<(), StoreError> {
    let mut attempt = 0;
    loop {
        match sqlx::query(AssertSqlSafe(sql.as_str()))
            .execute(&mut *admin)
            .await
        {
            Ok(_) => return Ok(()),
            Err(sqlx::Error::Database(db))
                if db.code().as_deref() == Some("55006") && attempt < 50 =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P04") => {
                return Err(StoreError::Unavailable(format!(
                    "database already exists: {}",
                    db.message()
                )));
            }
            Err(e) => return Err(map_sqlx(e)),
        }
    }
}

async fn connect(url: &str) -> Result<PgConnection, StoreError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Unavailable(format!("invalid PostgreSQL URL: {e}")))?;
    options.connect().await.map_err(map_sqlx)
}

/// `base_url` with its database replaced by `name`.
fn database_url(base_url: &str, name: &str) -> Result<String, StoreError> {
    let mut url = url::Url::parse(base_url)
        .map_err(|e| StoreError::Unavailable(format!("invalid PostgreSQL URL: {e}")))?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn database_url_replaces_only_the_database() {
        assert_eq!(
            database_url(
                "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
                "x"
            )
            .unwrap(),
            "postgres://postgres@127.0.0.1:5432/x?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://u:p@db", "trilo_test_1").unwrap(),
            "postgres://u:p@db/trilo_test_1"
        );
    }

    #[test]
    fn template_name_is_stable() {
        assert_eq!(template_name(), template_name());
        assert!(template_name().starts_with("trilo_template_"));
    }
}
