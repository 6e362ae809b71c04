//! The connection a kind of batch (`batch_queue`: refreshes, code exchanges, standings)
//! is written on: one of its own, kept from one batch to the next, outside the pool.
//!
//! sqlx tests every pooled connection given back with a round trip of its own (a `Sync`
//! and its `ReadyForQuery`, from a task it spawns), and its pool hands the next statement
//! the connection that has been idle longest. Batches that each took a connection from
//! the pool paid that extra round trip every batch, one more wake-up of a PostgreSQL
//! backend and of the server, and ran on each of the pool's backends in turn. Each kind of
//! batch has one writer at a time (`MAX_WRITERS`), so its connection is never waited for,
//! and being outside the pool it never holds back the store's other operations.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use sqlx::PgConnection;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::{Mutex, OwnedMutexGuard};
use trilo_core::store::{StoreError, StoreResult};
use trilo_store_sql::conn::Fail;

use crate::error::retry;

type Slot = Option<PgConnection>;

/// How long opening a writer's connection may take (the pool's own acquire waits 30 s):
/// past it the batch's callers hear that the database is unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection opened with `options` on first use and kept until a statement fails on
/// it or the store closes. Clones share it.
#[derive(Clone)]
pub(crate) struct WriterConnection {
    options: Arc<PgConnectOptions>,
    /// Locked by one statement at a time: the writer's own, one after another.
    held: Arc<Mutex<Slot>>,
}

/// The kept connection, lent to one attempt of one statement.
pub(crate) struct Held(OwnedMutexGuard<Slot>);

impl Held {
    pub(crate) fn connection(&mut self) -> Result<&mut PgConnection, Fail> {
        // `WriterConnection::run` fills the slot before it lends it.
        self.0.as_mut().ok_or_else(|| {
            Fail::Store(StoreError::Unavailable(
                "the batch writer lost its connection".to_owned(),
            ))
        })
    }
}

impl WriterConnection {
    /// Opens nothing yet: the first [`WriterConnection::run`] does.
    pub(crate) fn new(options: PgConnectOptions) -> Self {
        WriterConnection {
            options: Arc::new(options),
            held: Arc::default(),
        }
    }

    /// Runs `op` on the kept connection, again from the start while it fails in a
    /// retryable way (`error::retry`). A connection an attempt failed on is closed (it may
    /// be broken, or inside a transaction the failure left open) and the next attempt
    /// opens another.
    pub(crate) async fn run<T, Fut>(&self, op: impl Fn(Held) -> Fut) -> StoreResult<T>
    where
        Fut: Future<Output = Result<T, Fail>>,
    {
        let op = &op;
        retry(move || async move {
            let mut slot = Arc::clone(&self.held).lock_owned().await;
            if slot.is_none() {
                *slot = Some(self.open().await?);
            }
            let outcome = op(Held(slot)).await;
            if outcome.is_err() {
                self.close().await;
            }
            outcome
        })
        .await
    }

    async fn open(&self) -> Result<PgConnection, Fail> {
        let opening = PgConnection::connect_with(&self.options);
        match tokio::time::timeout(CONNECT_TIMEOUT, opening).await {
            Ok(opened) => Ok(opened?),
            Err(_) => Err(Fail::Store(StoreError::Unavailable(
                "the database did not accept a connection in time".to_owned(),
            ))),
        }
    }

    /// Closes the kept connection, if there is one.
    pub(crate) async fn close(&self) {
        if let Some(connection) = self.held.lock().await.take() {
            // A broken connection cannot say goodbye; it is gone either way.
            let _ = connection.close().await;
        }
    }
}

#[cfg(all(test, feature = "test-support"))]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use sqlx::postgres::PgPoolOptions;

    use super::*;
    use crate::testing::{fresh_database, test_url};

    /// The one value `sql` selects, read on the writer's connection.
    pub(crate) async fn scalar_on<T>(writer: &WriterConnection, sql: &'static str) -> StoreResult<T>
    where
        T: Send + Unpin + for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        writer
            .run(|mut held| async move {
                Ok(sqlx::query_scalar(sql)
                    .fetch_one(held.connection()?)
                    .await?)
            })
            .await
    }

    async fn backend_pid(writer: &WriterConnection) -> StoreResult<i32> {
        scalar_on(writer, "SELECT pg_backend_pid()").await
    }

    #[tokio::test]
    async fn one_connection_serves_statement_after_statement_and_a_failed_one_is_replaced() {
        let Some(base) = test_url() else {
            eprintln!("skipped: TRILO_TEST_POSTGRES_URL is not set");
            return;
        };
        let db = fresh_database(&base).await.unwrap();
        let pool = PgPoolOptions::new().connect(&db.url).await.unwrap();
        let writer = WriterConnection::new((*pool.connect_options()).clone());

        let first = backend_pid(&writer).await.unwrap();
        for _ in 0..6 {
            assert_eq!(backend_pid(&writer).await.unwrap(), first);
        }

        // A statement that fails closes the connection: nothing is kept.
        let failed = writer
            .run(|mut held| async move {
                sqlx::query("SELECT 1 / 0")
                    .execute(held.connection()?)
                    .await?;
                Ok(())
            })
            .await;
        assert!(failed.is_err());
        assert!(writer.held.lock().await.is_none());

        // A kept connection the server ended (57P01) fails no statement: the one that
        // finds it gone runs again on another backend.
        let kept = backend_pid(&writer).await.unwrap();
        // With a timeout, the call returns once the backend has gone (PostgreSQL 14+).
        let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
            .bind(kept)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(ended);
        let replaced = backend_pid(&writer).await.unwrap();
        assert_ne!(replaced, kept);

        // Closing ends the backend; it leaves `pg_stat_activity` a moment after the
        // client's goodbye.
        writer.close().await;
        let mut attempts = 0;
        loop {
            let alive: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
                    .bind(replaced)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            if !alive {
                break;
            }
            attempts += 1;
            assert!(
                attempts < 100,
                "the writer's backend is still there after 5 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        pool.close().await;
        db.drop_database().await.unwrap();
    }
}
