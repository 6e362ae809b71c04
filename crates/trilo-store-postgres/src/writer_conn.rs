//! The connection a kind of batch (`batch_queue`: refreshes, code exchanges, standings)
//! is written on, kept from one batch to the next.
//!
//! sqlx tests every pooled connection given back with a round trip of its own (a `Sync`
//! and its `ReadyForQuery`, from a task it spawns), and its pool hands the next statement
//! the connection that has been idle longest. Batches that each took a connection from
//! the pool paid that extra round trip every batch, one more wake-up of a PostgreSQL
//! backend and of the server, and ran on each of the pool's backends in turn. Each kind of
//! batch now keeps one connection: it has one writer at a time (`MAX_WRITERS`), so the
//! connection is never waited for.

use std::sync::Arc;

use sqlx::PgConnection;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, Postgres};
use tokio::sync::{Mutex, OwnedMutexGuard};
use trilo_core::store::{StoreError, StoreResult};
use trilo_store_sql::conn::Fail;

use crate::error::retry;

type Slot = Option<PoolConnection<Postgres>>;

/// A connection taken from `pool` on first use and kept until a statement fails on it or
/// the store closes. Clones share it.
#[derive(Clone)]
pub(crate) struct WriterConnection {
    pool: PgPool,
    held: Arc<Mutex<Slot>>,
}

/// The kept connection, lent to one attempt of one statement.
pub(crate) struct Held(OwnedMutexGuard<Slot>);

impl Held {
    pub(crate) fn connection(&mut self) -> Result<&mut PgConnection, Fail> {
        // `WriterConnection::run` fills the slot before it lends it.
        self.0.as_deref_mut().ok_or_else(|| {
            Fail::Store(StoreError::Unavailable(
                "the batch writer lost its connection".to_owned(),
            ))
        })
    }
}

impl WriterConnection {
    /// Takes no connection yet: the first [`WriterConnection::run`] does.
    pub(crate) fn new(pool: PgPool) -> Self {
        WriterConnection {
            pool,
            held: Arc::default(),
        }
    }

    /// Runs `op` on the kept connection, again from the start while it fails in a
    /// retryable way (`error::retry`). A connection an attempt failed on is given back to
    /// the pool, whose test closes it if it is broken, and the next attempt takes another.
    pub(crate) async fn run<T, Fut>(&self, op: impl Fn(Held) -> Fut) -> StoreResult<T>
    where
        Fut: Future<Output = Result<T, Fail>>,
    {
        let op = &op;
        retry(move || async move {
            let mut slot = Arc::clone(&self.held).lock_owned().await;
            if slot.is_none() {
                *slot = Some(self.pool.acquire().await?);
            }
            let outcome = op(Held(slot)).await;
            if outcome.is_err() {
                self.give_back().await;
            }
            outcome
        })
        .await
    }

    /// Gives the kept connection back to its pool (before the pool closes, which waits
    /// for every connection to come back).
    pub(crate) async fn give_back(&self) {
        *self.held.lock().await = None;
    }
}

#[cfg(all(test, feature = "test-support"))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use sqlx::postgres::PgPoolOptions;

    use super::*;
    use crate::testing::{fresh_database, test_url};

    async fn backend_pid(writer: &WriterConnection) -> StoreResult<i32> {
        writer
            .run(|mut held| async move {
                Ok(sqlx::query_scalar("SELECT pg_backend_pid()")
                    .fetch_one(held.connection()?)
                    .await?)
            })
            .await
    }

    /// A pool with `n` connections open and idle, which it hands out in turn.
    async fn pool_of(url: &str, n: u32) -> PgPool {
        let pool = PgPoolOptions::new()
            .max_connections(n)
            .connect(url)
            .await
            .unwrap();
        let mut open = Vec::new();
        for _ in 0..n {
            open.push(pool.acquire().await.unwrap());
        }
        drop(open);
        pool
    }

    #[tokio::test]
    async fn one_connection_serves_statement_after_statement_and_a_failed_one_is_replaced() {
        let Some(base) = test_url() else {
            eprintln!("skipped: TRILO_TEST_POSTGRES_URL is not set");
            return;
        };
        let db = fresh_database(&base).await.unwrap();
        let pool = pool_of(&db.url, 4).await;
        let writer = WriterConnection::new(pool.clone());

        // The pool would give each statement the connection idle longest; the writer
        // keeps its own.
        let first = backend_pid(&writer).await.unwrap();
        for _ in 0..6 {
            assert_eq!(backend_pid(&writer).await.unwrap(), first);
        }

        // A statement that fails gives the connection back: nothing is kept.
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

        // A kept connection the server ended fails at most one statement; the next one
        // runs on another backend.
        let kept = backend_pid(&writer).await.unwrap();
        let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(kept)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(ended);
        let _ = backend_pid(&writer).await;
        let replaced = backend_pid(&writer).await.unwrap();
        assert_ne!(replaced, kept);

        writer.give_back().await;
        pool.close().await;
        db.drop_database().await.unwrap();
    }
}
