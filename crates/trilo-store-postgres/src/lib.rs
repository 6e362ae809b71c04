//! trilo-store-postgres: trilo's storage traits on PostgreSQL, for several stateless
//! instances sharing one database.
//!
//! Portable SQL only (DESIGN §4): explicit `BIGINT`/`TEXT`/`BYTEA`, no extensions, no
//! advisory locks or LISTEN/NOTIFY in request paths. Transactions run at READ COMMITTED;
//! atomic operations are conditional `UPDATE … WHERE …` statements and row locks, and a
//! whole operation is retried on a serialization failure or deadlock (SQLSTATE 40001,
//! 40P01), which SERIALIZABLE Postgres-wire engines report under contention.
//!
//! The operations, their SQL and their row structs are trilo-store-sql's, shared with the
//! SQLite store; this crate owns the pool, the transaction each operation runs in (with its
//! retries and row locks) and the mapping of SQLSTATE codes; the migrations are shared too.

mod backend;
mod commit;
mod conn;
mod error;
mod notify;
pub mod preload;

pub use trilo_store_sql::store::SqlStore;
mod batch_queue;
mod exchange;
mod rotation;
mod standing;
#[cfg(feature = "test-support")]
pub mod testing;
mod writer_conn;

use std::future::Future;
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use trilo_core::store::{StoreError, StoreResult};
use trilo_store_sql::conn::Fail;
use trilo_store_sql::migrations::POSTGRES as MIGRATOR;

use crate::batch_queue::{ExchangeQueue, RefreshQueue, StandingQueue};
use crate::commit::Committable;
use crate::conn::Db;
use crate::error::{map_sqlx, retry_healing};
use crate::writer_conn::WriterConnection;

/// How long a backend may wait inside one of trilo's transactions for its next statement
/// before the server ends it (`idle_in_transaction_session_timeout`, set on every
/// connection). trilo never pauses inside a transaction, so a backend idle that long has
/// lost its client to a connection broken without a word; ending it releases the rows it
/// locked, which the operation, run again on a fresh connection, may be waiting for.
/// (A `COMMIT` whose answer was lost is settled sooner: see `commit`.)
const STRANDED_AFTER: &str = "10s";

/// The PostgreSQL implementation of [`Store`].
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Refreshes waiting to be written together (group commit).
    refreshes: Arc<RefreshQueue>,
    /// Code exchanges waiting to be written together.
    exchanges: Arc<ExchangeQueue>,
    /// The gateway's reads of new tokens' standings, waiting to be read together.
    standings: Arc<StandingQueue>,
    /// The connection each kind of batch is written on (`writer_conn`), outside the pool.
    refresh_writer: WriterConnection,
    exchange_writer: WriterConnection,
    /// The gateway's standing batch (`standing::STANDING_BATCH`) runs where PostgreSQL
    /// plans a statement once: left to choose, it planned that statement again on every
    /// execution (a batch's array length makes its own plan look cheaper than the generic
    /// one): about 70 µs of PostgreSQL's CPU per read, against 25 µs here.
    standing_writer: WriterConnection,
    /// Each batch's time and size.
    batches: Arc<trilo_core::metrics::CommitStats>,
    /// Whether the database can say what became of a transaction whose `COMMIT` lost its
    /// answer (`commit`).
    tells_fates: bool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connect options hold the password: show only where the store points.
        let options = self.pool.connect_options();
        f.debug_struct("PgStore")
            .field("host", &options.get_host())
            .field("database", &options.get_database())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects a pool of at most `max_connections` to `url` (`postgres://…`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<PgStore, StoreError> {
        // No ping before each acquire (sqlx's default): it is a round trip per operation.
        // A connection that died is found by the operation itself, which is then retried
        // on a fresh one (see `error::retry`).
        let options = url
            .parse::<PgConnectOptions>()
            .map_err(map_sqlx)?
            .options([("idle_in_transaction_session_timeout", STRANDED_AFTER)]);
        let pool = PgPoolOptions::new()
            .test_before_acquire(false)
            .max_connections(max_connections.max(1))
            .connect_with(options.clone())
            .await
            .map_err(map_sqlx)?;
        let tells_fates = commit::database_tells_fates(&pool).await;
        Ok(PgStore {
            refresh_writer: WriterConnection::new(options.clone()),
            exchange_writer: WriterConnection::new(options.clone()),
            standing_writer: WriterConnection::new(
                options.options([("plan_cache_mode", "force_generic_plan")]),
            ),
            pool,
            refreshes: Arc::default(),
            exchanges: Arc::default(),
            standings: Arc::default(),
            batches: Arc::default(),
            tells_fates,
        })
    }

    /// Applies the migrations (`trilo_store_sql::migrations`); applied ones are skipped.
    /// sqlx serializes concurrent migrators with an advisory lock; that happens here only,
    /// never on a request path.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))
    }

    /// Closes every connection: the pool's and the batch writers'.
    pub async fn close(&self) {
        for writer in [
            &self.refresh_writer,
            &self.exchange_writer,
            &self.standing_writer,
        ] {
            writer.close().await;
        }
        self.pool.close().await;
    }

    /// Runs `op` in a write transaction (READ COMMITTED), again from the start while it
    /// fails in a retryable way. The commit `op` asks for is made here, where a lost
    /// answer to it is told from a failed commit (`commit`).
    async fn write<T, Fut>(&self, op: impl Fn(Db<Committable>) -> Fut) -> StoreResult<T>
    where
        Fut: Future<Output = Result<T, Fail>>,
    {
        let op = &op;
        self.retry(move || async move {
            let (tx, mut handed_back) = Committable::new(self.pool.begin().await?);
            let outcome = op(tx).await;
            // What `op` committed stands even when it then failed (reading back what it
            // wrote, say), as on a backend where `op` commits itself. Nothing handed back:
            // `op` ended without committing, and its transaction rolled back as it was
            // dropped.
            if let Ok(tx) = handed_back.try_recv() {
                self.commit_and_learn(tx).await?;
            }
            outcome
        })
        .await
    }

    /// Runs `op` in a read transaction: one consistent snapshot across several queries.
    async fn snapshot<T, Fut>(
        &self,
        op: impl Fn(Db<Transaction<'static, Postgres>>) -> Fut,
    ) -> StoreResult<T>
    where
        Fut: Future<Output = Result<T, Fail>>,
    {
        let op = &op;
        self.retry(move || async move {
            let tx = self
                .pool
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await?;
            op(Db(tx)).await
        })
        .await
    }

    /// Runs `op`, a single query, on a pooled connection.
    async fn read<T, Fut>(&self, op: impl Fn(Db<PoolConnection<Postgres>>) -> Fut) -> StoreResult<T>
    where
        Fut: Future<Output = Result<T, Fail>>,
    {
        let op = &op;
        self.retry(move || async move { op(Db(self.pool.acquire().await?)).await })
            .await
    }

    /// `error::retry` on the pool: after a lost connection, the dead idle ones go before
    /// the next attempt.
    async fn retry<T, F, Fut>(&self, op: F) -> StoreResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Fail>>,
    {
        retry_healing(op, || self.drop_dead_idle()).await
    }

    /// Closes the pool's idle connections that no longer answer a ping. Connections are
    /// not pinged as they are lent (`connect`), so after a restart, which ends them all, an
    /// operation would otherwise meet the dead ones one attempt at a time and could run out
    /// of attempts. This runs only after a lost connection: one round trip per idle
    /// connection, once.
    async fn drop_dead_idle(&self) {
        let mut alive = Vec::new();
        // Those found alive are held until the end, so each idle connection is met once.
        while let Some(mut connection) = self.pool.try_acquire() {
            if sqlx::Connection::ping(&mut *connection).await.is_ok() {
                alive.push(connection);
            } else {
                let _ = connection.close().await;
            }
        }
        tracing::debug!(alive = alive.len(), "checked the idle database connections");
    }
}

#[cfg(all(test, feature = "test-support"))]
mod plans {
    #![allow(clippy::unwrap_used)]

    use super::PgStore;
    use crate::testing::scratch_store;
    use crate::writer_conn::tests::scalar_on;

    /// What `show` (a `SHOW` statement) reads on the refresh, exchange and standing
    /// writers' connections, and on a pooled one.
    async fn on_every_connection(store: &PgStore, show: &'static str) -> ([String; 3], String) {
        let mut writers = [String::new(), String::new(), String::new()];
        for (read, writer) in writers.iter_mut().zip([
            &store.refresh_writer,
            &store.exchange_writer,
            &store.standing_writer,
        ]) {
            *read = scalar_on(writer, show).await.unwrap();
        }
        let pooled = sqlx::query_scalar(show)
            .fetch_one(&store.pool)
            .await
            .unwrap();
        (writers, pooled)
    }

    /// The standing batch's connection plans once; every other statement keeps
    /// PostgreSQL's choice, which may plan for the values at hand.
    #[tokio::test]
    async fn only_the_standing_batch_runs_on_generic_plans() {
        let Some((db, store)) = scratch_store().await else {
            eprintln!("skipped: TRILO_TEST_POSTGRES_URL is not set");
            return;
        };
        let (writers, pooled) = on_every_connection(&store, "SHOW plan_cache_mode").await;
        assert_eq!(writers, ["auto", "auto", "force_generic_plan"]);
        assert_eq!(pooled, "auto");
        store.close().await;
        db.drop_database().await.unwrap();
    }

    /// Every connection, pooled or a batch writer's, has the server end a transaction
    /// left idle by a client that is gone (`STRANDED_AFTER`).
    #[tokio::test]
    async fn every_connection_ends_transactions_its_client_left() {
        let Some((db, store)) = scratch_store().await else {
            eprintln!("skipped: TRILO_TEST_POSTGRES_URL is not set");
            return;
        };
        let (writers, pooled) =
            on_every_connection(&store, "SHOW idle_in_transaction_session_timeout").await;
        assert_eq!(writers, [super::STRANDED_AFTER; 3]);
        assert_eq!(pooled, super::STRANDED_AFTER);
        store.close().await;
        db.drop_database().await.unwrap();
    }
}

#[cfg(all(test, feature = "test-support"))]
mod keying {
    #![allow(clippy::unwrap_used)]

    use trilo_core::testing::conformance::{tokens_after_keying, tokens_before_keying};

    use super::{MIGRATOR, PgStore, SqlStore};
    use crate::testing::{empty_database, test_url};

    /// Migration 0018 keys `refresh_tokens` by family and generation: every token from
    /// before stays, field for field, and is found by its hash too; the hash is indexed for
    /// those tokens only.
    #[tokio::test]
    async fn keying_refresh_tokens_keeps_every_token_and_finds_old_ones_by_hash() {
        let Some(base) = test_url() else {
            eprintln!("skipped: TRILO_TEST_POSTGRES_URL is not set");
            return;
        };
        let db = empty_database(&base).await.unwrap();
        let store = SqlStore(PgStore::connect(&db.url, 4).await.unwrap());
        let earlier = sqlx::migrate::Migrator::with_migrations(
            MIGRATOR
                .iter()
                // With 0020 too, whose columns today's writes fill (it leaves refresh
                // tokens be).
                .filter(|m| m.version < 18 || m.version == 20)
                .cloned()
                .collect(),
        );
        earlier.run(&store.0.pool).await.unwrap();
        let (w, before) = tokens_before_keying(&store).await;
        store.migrate().await.unwrap();
        tokens_after_keying(&store, &w, &before).await;

        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT indexname::text, indexdef FROM pg_indexes \
             WHERE tablename = 'refresh_tokens' ORDER BY indexname",
        )
        .fetch_all(&store.0.pool)
        .await
        .unwrap();
        let names: Vec<&str> = indexes.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "refresh_tokens_inactivity_idx",
                "refresh_tokens_legacy_idx",
                "refresh_tokens_pkey"
            ]
        );
        assert!(
            indexes[1].1.ends_with("WHERE (legacy_hash IS NOT NULL)"),
            "{indexes:?}"
        );
        assert!(
            indexes[2].1.ends_with("(family_id, generation)"),
            "{indexes:?}"
        );
        store.0.close().await;
        db.drop_database().await.unwrap();
    }
}

#[cfg(all(test, feature = "test-support"))]
mod conformance {
    //! The shared suite on PostgreSQL, all cases in one test (the per-case runner lives in
    //! the server's integration tests). Skipped without `TRILO_TEST_POSTGRES_URL`.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use super::{PgStore, SqlStore};
    use crate::testing::{fresh_database, test_url};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_case_passes() {
        let Some(base) = test_url() else {
            eprintln!("skipped: TRILO_TEST_POSTGRES_URL is not set");
            return;
        };
        let mut failed = Vec::new();
        for (name, case) in trilo_core::testing::conformance::all() {
            let db = fresh_database(&base).await.unwrap();
            let store = Arc::new(SqlStore(PgStore::connect(&db.url, 8).await.unwrap()));
            store.migrate().await.unwrap();
            let result = tokio::spawn(case(store.clone())).await;
            store.close().await;
            db.drop_database().await.unwrap();
            if result.is_err() {
                failed.push(name);
            }
        }
        assert!(failed.is_empty(), "failed cases: {failed:?}");
    }
}

#[cfg(all(test, feature = "test-support"))]
mod tokens_follow_their_family {
    #![allow(clippy::unwrap_used)]

    use trilo_core::testing::conformance::tokens_before_keying;

    use crate::testing::fresh_store;

    async fn tokens_of(pool: &sqlx::PgPool, family_id: Option<&str>) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM refresh_tokens WHERE $1::text IS NULL OR family_id = $1",
        )
        .bind(family_id)
        .fetch_one(pool)
        .await
        .unwrap()
    }

    /// Migration 0019 ends a family's refresh tokens with a trigger instead of a key: a
    /// family deleted as the janitor deletes them takes its tokens along and leaves the
    /// others, and so does every family of an app deleted through the keys of its grants.
    #[tokio::test]
    async fn a_familys_tokens_end_with_it_however_it_ends() {
        let Some((db, store)) = fresh_store(2).await.unwrap() else {
            return;
        };
        let (w, tokens) = tokens_before_keying(&store).await;
        let pool = &store.0.pool;
        assert_eq!(tokens_of(pool, None).await, 6);
        let ended = tokens[0].0.family_id.clone();
        let kept = tokens[2].0.family_id.clone();
        assert_eq!(tokens_of(pool, Some(&ended)).await, 2);

        sqlx::query(
            "DELETE FROM token_families WHERE family_id IN \
             (SELECT family_id FROM token_families WHERE family_id = $1 LIMIT 100)",
        )
        .bind(&ended)
        .execute(pool)
        .await
        .unwrap();
        assert_eq!(tokens_of(pool, Some(&ended)).await, 0);
        assert_eq!(tokens_of(pool, Some(&kept)).await, 2);
        assert_eq!(tokens_of(pool, None).await, 4);

        sqlx::query("DELETE FROM apps WHERE app_id = $1")
            .bind(&w.app.app_id)
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(
            tokens_of(pool, None).await,
            0,
            "ended with their app's grant"
        );
        store.0.close().await;
        db.drop_database().await.unwrap();
    }
}

#[cfg(all(test, feature = "test-support"))]
mod lost_connections {
    #![allow(clippy::unwrap_used)]

    use sqlx::Connection;
    use trilo_core::store::SiteStore;

    use crate::testing::fresh_store;

    /// Ends every backend of the database but the caller's, as a restart or an operator's
    /// `pg_terminate_backend` would, and returns how many there were.
    async fn end_other_backends(url: &str) -> i64 {
        let mut admin = sqlx::PgConnection::connect(url).await.unwrap();
        let ended: i64 = sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) \
             FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap();
        admin.close().await.unwrap();
        ended
    }

    /// Opens `count` pooled connections at once and gives them back: the pool then holds
    /// them all idle, as a busy server's does.
    async fn fill_the_pool(store: &crate::PgStore, count: usize) {
        let mut held = Vec::new();
        for _ in 0..count {
            held.push(store.pool.acquire().await.unwrap());
        }
    }

    /// Pooled connections the server ended (57P01, "terminating connection due to
    /// administrator command") fail no operation: each is run again on a fresh connection,
    /// reads and writes alike.
    #[tokio::test]
    async fn operations_on_connections_the_server_ended_run_again_on_fresh_ones() {
        const POOLED: usize = 12;
        let Some((db, store)) = fresh_store(POOLED as u32).await.unwrap() else {
            return;
        };
        // Every pooled connection open, more than one operation's attempts (a restart
        // leaves the whole pool dead).
        fill_the_pool(&store.0, POOLED).await;
        let sites = store.list_sites().await.unwrap().len();

        assert!(end_other_backends(&db.url).await >= POOLED as i64);
        assert_eq!(store.list_sites().await.unwrap().len(), sites);

        end_other_backends(&db.url).await;
        let site = trilo_core::testing::fixtures::site();
        store.insert_site(&site).await.unwrap();
        assert_eq!(store.list_sites().await.unwrap().len(), sites + 1);
        store.0.close().await;
        db.drop_database().await.unwrap();
    }

    /// So are the statements that go straight to the pool, the health check and a
    /// single rotation, with more dead connections pooled than an operation has attempts.
    #[tokio::test]
    async fn a_health_check_and_a_rotation_after_a_restart_find_a_live_connection() {
        const POOLED: usize = 12;
        let Some((db, store)) = fresh_store(POOLED as u32).await.unwrap() else {
            return;
        };
        fill_the_pool(&store.0, POOLED).await;
        assert!(end_other_backends(&db.url).await >= POOLED as i64);
        trilo_store_sql::store::Backend::ping(&store.0)
            .await
            .unwrap();

        fill_the_pool(&store.0, POOLED).await;
        assert!(end_other_backends(&db.url).await >= POOLED as i64);
        // A family that does not exist: the compare-and-set finds nothing to advance.
        let now = time::OffsetDateTime::now_utc();
        let rotation = trilo_core::model::Rotation {
            family_id: "no-such-family".to_owned(),
            parent_hash: [1; 32],
            parent_generation: 0,
            child: trilo_core::model::NewRefreshToken {
                token_hash: [2; 32],
                inactivity_expires_at: now + time::Duration::days(1),
                kept: trilo_core::model::TokenKeeping::Family,
            },
            at: now,
        };
        assert!(!store.0.rotate(&rotation).await.unwrap());
        store.0.close().await;
        db.drop_database().await.unwrap();
    }
}

#[cfg(all(test, feature = "test-support"))]
mod commits {
    #![allow(clippy::unwrap_used)]

    use trilo_core::store::StoreError;
    use trilo_core::testing::fixtures::{self, at};
    use trilo_store_sql::conn::Fail;

    use crate::testing::scratch_store;

    /// An operation that committed and then failed (a row it read back would not decode,
    /// say) keeps what it committed, as where the operation commits itself (SQLite): the
    /// store commits what it was handed before it reports the failure.
    #[tokio::test]
    async fn what_an_operation_committed_stands_when_it_then_fails() {
        let Some((db, store)) = scratch_store().await else {
            eprintln!("skipped: TRILO_TEST_POSTGRES_URL is not set");
            return;
        };
        let event = fixtures::audit_event("app.created", None, at(1));
        let failed = store
            .write(|tx| async {
                trilo_store_sql::audit::append_audit(tx, &event).await?;
                Err::<(), _>(Fail::Store(StoreError::Corrupt(
                    "after the commit".to_owned(),
                )))
            })
            .await;
        assert!(matches!(failed, Err(StoreError::Corrupt(_))));
        let stored: i64 =
            sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE event_id = $1")
                .bind(&event.event_id)
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(stored, 1);
        store.close().await;
        db.drop_database().await.unwrap();
    }
}

#[cfg(all(test, feature = "test-support"))]
mod lost_answers {
    //! A batch's statement whose commit landed but whose answer a broken connection lost is
    //! run again (`writer_conn`, `error::retry`); what it then finds must give each caller
    //! what the lost answer would have: nothing is lost and nothing is refused.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use time::Duration;
    use trilo_core::model::{Redeemed, RefreshTokenState, TokenFamily, TokenKeeping};
    use trilo_core::refresh_plan::{RefreshPlan, RotationRule};
    use trilo_core::store::{AccountStore, GrantStore, Refreshed};
    use trilo_core::testing::fixtures::{self, World, at};
    use trilo_protocol::rotation::RotationDecision;

    use super::{PgStore, SqlStore};
    use crate::testing::lossy_proxy::LossyProxy;
    use crate::testing::{TestDatabase, fresh_database, test_url};

    struct Behind {
        db: TestDatabase,
        proxy: LossyProxy,
        store: SqlStore<PgStore>,
        world: World,
    }

    impl Behind {
        async fn finish(self) {
            self.store.0.close().await;
            self.db.drop_database().await.unwrap();
        }
    }

    /// A seeded store whose every connection goes through a [`LossyProxy`].
    async fn behind_a_lossy_proxy() -> Option<Behind> {
        let base = test_url()?;
        let db = fresh_database(&base).await.unwrap();
        let proxy = LossyProxy::start(&db.url).await.unwrap();
        let store = SqlStore(PgStore::connect(&proxy.url, 4).await.unwrap());
        let world = World::seed(&store).await.unwrap();
        Some(Behind {
            db,
            proxy,
            store,
            world,
        })
    }

    /// A code exchanged through the batch, its answer lost: the family it started, which
    /// keeps its tokens and holds `offline_access`.
    async fn exchanged_with_its_answer_lost(b: &Behind) -> TokenFamily {
        let (_, code) = b
            .world
            .consented(&b.store, &["read:jira-work", "offline_access"], at(1))
            .await
            .unwrap();
        let mut plan = fixtures::code_plan(&b.world.app.app_id, &code, at(3));
        plan.first_refresh_token.kept = TokenKeeping::Family;
        b.proxy.lose_the_next_answer();
        let (exchanged, durable) = b.store.exchange_code(&plan).await.unwrap();
        durable.wait().await.unwrap();
        assert_eq!(b.proxy.answers_lost(), 1, "the exchange's answer was lost");
        match exchanged.unwrap().redeemed {
            Some(Redeemed::First(family)) => {
                assert_eq!(family.family_id, plan.family_id);
                assert_eq!(family.revoked_at, None);
                family
            }
            other => panic!("the exchange was refused after its answer was lost: {other:?}"),
        }
    }

    async fn issued_events(b: &Behind, family: &TokenFamily) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM audit_events WHERE action = 'token.issued' AND target = $1",
        )
        .bind(&family.family_id)
        .fetch_one(&b.store.0.pool)
        .await
        .unwrap()
    }

    /// The refresh of `family`'s token `generation` at `at(at_s)`, under the shortest reuse
    /// leeway the configuration accepts: an attempt run again carries the same instant as
    /// the rotation it finds, so even that leeway holds it.
    fn refresh_of(b: &Behind, family: &TokenFamily, generation: i64, at_s: i64) -> RefreshPlan {
        RefreshPlan {
            rule: RotationRule {
                app_id: b.world.app.app_id.clone(),
                now: at(at_s),
                reuse_leeway: Duration::milliseconds(1),
            },
            parent: fixtures::kept_token_key(&family.family_id, generation),
            child: fixtures::new_kept_token(at(at_s)),
            scope: None,
        }
    }

    /// The refresh's state as the store read it, and whether it rotated, once committed.
    async fn refreshed(b: &Behind, plan: &RefreshPlan) -> (RefreshTokenState, bool) {
        let Refreshed {
            state,
            rotated,
            durable,
        } = b.store.refresh_and_rotate(plan).await.unwrap().unwrap();
        durable.wait().await.expect("the refresh's commit");
        (state, rotated)
    }

    /// `account` is stored, under its own id: its address was not refused as taken.
    async fn assert_signed_up(b: &Behind, account: &trilo_core::model::Account) {
        let stored = b.store.account_by_email(&account.email).await.unwrap();
        assert_eq!(
            stored.map(|a| a.account_id),
            Some(account.account_id.clone())
        );
    }

    /// A sign-up whose `COMMIT` took effect but whose answer was lost: the database says it
    /// committed, so the sign-up stands, instead of running again into its own row.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_whose_commit_answer_was_lost_stands_once() {
        let Some(b) = behind_a_lossy_proxy().await else {
            eprintln!("skipped: TRILO_TEST_POSTGRES_URL is not set");
            return;
        };
        let account = fixtures::any_account();
        b.proxy.lose_the_next_commit_answer();
        b.store.insert_account(&account).await.unwrap();
        assert_eq!(b.proxy.answers_lost(), 1, "the commit's answer was lost");
        assert_signed_up(&b, &account).await;

        // A consent, whose second run would have met its own code and grant.
        b.proxy.lose_the_next_commit_answer();
        let (grant, _) = b
            .world
            .consented(&b.store, &["read:jira-work"], at(1))
            .await
            .unwrap();
        assert_eq!(b.proxy.answers_lost(), 2, "the consent's answer was lost");
        let grants = b
            .store
            .grants_of_account(&b.world.user.account_id)
            .await
            .unwrap();
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].grant_id, grant.grant_id);
        b.finish().await;
    }

    /// A `COMMIT` that never reached the server, on a connection broken without a word: the
    /// backend waits in its transaction, holding the rows it wrote, for a client that is
    /// gone. The store ends that backend, learns its transaction aborted, and runs the
    /// sign-up again, which would otherwise wait on those rows for good.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_whose_commit_never_arrived_runs_again() {
        let Some(b) = behind_a_lossy_proxy().await else {
            eprintln!("skipped: TRILO_TEST_POSTGRES_URL is not set");
            return;
        };
        let account = fixtures::any_account();
        b.proxy.lose_the_next_commit();
        tokio::time::timeout(
            // Well under `STRANDED_AFTER`, after which the server would end the backend itself.
            std::time::Duration::from_secs(5),
            b.store.insert_account(&account),
        )
        .await
        .expect("the sign-up waited on its own stranded transaction")
        .unwrap();
        assert_eq!(
            b.proxy.answers_lost(),
            1,
            "the commit was kept from the server"
        );
        assert_signed_up(&b, &account).await;
        b.finish().await;
    }

    /// The exchange found its code spent by its own family: that family is its answer, with
    /// one `token.issued` event, not a replay's refusal (which would end the family).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_exchange_whose_answer_was_lost_gets_the_family_it_started() {
        let Some(b) = behind_a_lossy_proxy().await else {
            eprintln!("skipped: TRILO_TEST_POSTGRES_URL is not set");
            return;
        };
        let family = exchanged_with_its_answer_lost(&b).await;
        assert_eq!(issued_events(&b, &family).await, 1);
        let stored = b.store.family(&family.family_id).await.unwrap().unwrap();
        assert_eq!(stored.revoked_at, None);
        b.finish().await;
    }

    /// The refresh found its token already rotated, one generation behind the head and,
    /// at the rotation's own instant, inside the reuse leeway: the rule returns that head
    /// (the same successor, derived from family and generation) and the family lives on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refresh_whose_answer_was_lost_returns_the_successor_it_stored() {
        let Some(b) = behind_a_lossy_proxy().await else {
            eprintln!("skipped: TRILO_TEST_POSTGRES_URL is not set");
            return;
        };
        let family = exchanged_with_its_answer_lost(&b).await;

        let plan = refresh_of(&b, &family, 0, 4);
        b.proxy.lose_the_next_answer();
        let (state, rotated) = refreshed(&b, &plan).await;
        assert_eq!(b.proxy.answers_lost(), 2, "the refresh's answer was lost");
        assert!(!rotated, "the attempt that ran again rotated nothing more");
        assert_eq!(
            state.family.head_generation, 1,
            "the lost attempt's rotation stands"
        );
        assert_eq!(plan.rule.decide(&state), RotationDecision::ReturnCurrent);

        let head = b.store.family(&family.family_id).await.unwrap().unwrap();
        assert_eq!((head.head_generation, head.revoked_at), (1, None));
        // The successor the caller then holds rotates as usual.
        let next = refresh_of(&b, &family, 1, 5);
        assert!(refreshed(&b, &next).await.1);
        b.finish().await;
    }
}

#[cfg(all(test, feature = "test-support"))]
mod bulk_loader {
    #![allow(clippy::unwrap_used)]

    use trilo_core::testing::conformance::{families_to_load, loaded_families_read_back};

    use crate::preload::{Batch, BulkLoader};
    use crate::testing::fresh_store;

    /// The bench's bulk loader writes families as the store reads them, a family keeping
    /// its tokens with its head's times.
    #[tokio::test]
    async fn the_bulk_loader_writes_families_as_the_store_reads_them() {
        let Some((db, store)) = fresh_store(2).await.unwrap() else {
            return;
        };
        let families = families_to_load(&store).await;
        let mut loader = BulkLoader::connect(&db.url).await.unwrap();
        let batch = Batch {
            families: &families,
            ..Default::default()
        };
        loader.insert(&batch).await.unwrap();
        loaded_families_read_back(&store, &families).await;
    }
}
