//! The store conformance suite (`trilo_core::testing::conformance`) on both backends: one
//! test per case and backend, `conformance::sqlite::<case>` and
//! `conformance::postgres::<case>`.
//!
//! SQLite gets a fresh database file per test. PostgreSQL gets a fresh database cloned from
//! the migrated template when `TRILO_TEST_POSTGRES_URL` is set; otherwise its tests pass
//! with a note on stderr, unless `TRILO_REQUIRE_POSTGRES=1` makes that a failure.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::task::JoinError;
use trilo_core::Store;
use trilo_core::testing::conformance;
use trilo_store_postgres::PgStore;
use trilo_store_postgres::testing::{fresh_database, test_url};
use trilo_store_sqlite::{SqlStore, SqliteStore};

/// Connections of each PostgreSQL test store (the concurrency cases need several).
const PG_CONNECTIONS: u32 = 8;

/// Runs one case on a fresh SQLite file, removes the file, then reports the case's panic.
async fn on_sqlite<F, Fut>(case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let path = std::env::temp_dir().join(format!(
        "trilo-conformance-{}.db",
        uuid::Uuid::new_v4().simple()
    ));
    let store = Arc::new(SqlStore(SqliteStore::open(&path).await.unwrap()));
    store.migrate().await.unwrap();
    store.self_check().await.unwrap();
    let outcome = tokio::spawn(case(store.clone())).await;
    store.close().await;
    remove_sqlite_files(&path);
    rethrow(outcome);
}

/// Runs one case on a fresh PostgreSQL database, drops it, then reports the case's panic.
async fn on_postgres<F, Fut>(case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(base_url) = test_url() else {
        eprintln!("skipped: TRILO_TEST_POSTGRES_URL is not set");
        return;
    };
    let db = fresh_database(&base_url).await.unwrap();
    let store = Arc::new(SqlStore(
        PgStore::connect(&db.url, PG_CONNECTIONS).await.unwrap(),
    ));
    store.migrate().await.unwrap();
    let outcome = tokio::spawn(case(store.clone())).await;
    store.close().await;
    if let Err(e) = db.drop_database().await {
        eprintln!("could not drop the test database: {e}");
    }
    rethrow(outcome);
}

fn remove_sqlite_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

fn rethrow(outcome: Result<(), JoinError>) {
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("the case did not finish: {e}"),
        }
    }
}

macro_rules! conformance_tests {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::on_sqlite(super::conformance::$case).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::on_postgres(super::conformance::$case).await;
                }
            )*
        }

    };
}

trilo_core::for_each_conformance_case!(conformance_tests);
