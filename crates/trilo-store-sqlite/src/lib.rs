//! trilo-store-sqlite: the embedded default backend of trilo's storage traits.
//!
//! One writer connection (every write is a `BEGIN IMMEDIATE` transaction, so writers queue
//! in the pool instead of failing with `SQLITE_BUSY`) and a read-only reader pool, in WAL
//! mode with `synchronous=FULL` so a committed rotation survives a power loss (security
//! checklist §0.4, H-D3). Queries are checked at run time; the shared conformance suite in
//! `trilo_core::testing` is the safety net (STYLE §4).
//!
//! The operations, their SQL and their row structs are trilo-store-sql's, shared with the
//! PostgreSQL store; this crate owns the pools, the transaction each operation runs in,
//! the mapping of SQLite's errors; the migrations are trilo-store-sql's too.

mod backend;
mod conn;
mod direct;
mod error;
mod group_commit;
mod inline_reads;
pub mod preload;

pub use trilo_store_sql::store::SqlStore;

use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use trilo_core::store::{StoreError, StoreResult};
use trilo_store_sql::conn::Fail;
use trilo_store_sql::migrations::SQLITE as MIGRATOR;

use crate::conn::Db;
use crate::error::{map_sqlx, run};
use crate::group_commit::{GroupCommit, Write, WriteTurn, Written};
use crate::inline_reads::InlineReader;

/// How long a connection waits for a lock held by another process before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read-only connections; WAL lets them read while the writer commits.
const READERS: u32 = 4;
/// The WAL size (pages, 256 MiB) at which a writing connection checkpoints, rather than
/// SQLite's 1,000. A checkpoint copies every page changed since the last one into the
/// database file and syncs it, inside the writer's turn, while every queued write waits
/// (10–100 ms): the token writes touch pages all over their indexes, and the rarer the
/// checkpoints, the more often each such page is copied once for many writes. 16,384
/// pages gave refresh-rotation with 1M families +28 % over 1,000; 65,536 took its p99
/// from 8–10 ms to 6–7 ms and code-exchange's from 11–20 ms to 7 ms (README, "Where a
/// refresh waits"). The file stays at that size once grown, and a crash replays it on open.
const WAL_CHECKPOINT_PAGES: u32 = 65_536;

/// The SQLite implementation of [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    /// Exactly one connection: SQLite has one writer at a time.
    writer: SqlitePool,
    /// Read-only connections (the writer pool itself for in-memory databases).
    reader: SqlitePool,
    /// The token endpoint's writes, committed in groups.
    commits: GroupCommit,
    /// Hot reads run inline (`None` for an in-memory database, read through sqlx).
    inline: Option<Arc<InlineReader>>,
    /// Taken by each write so the writer and the rotation committer never overlap.
    turn: WriteTurn,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("writer", &self.writer.connect_options().get_filename())
            .finish_non_exhaustive()
    }
}

/// Creates a missing database file readable by its owner only, like `master.key` (it
/// holds token hashes and sealed keys). SQLite gives the `-wal` and `-shm` files the
/// database file's permissions. An existing file keeps its own.
fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Unavailable(format!(
            "creating {}: {e}",
            path.display()
        ))),
    }
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file at `path`.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        Self::open_with(SqliteConnectOptions::new().filename(path)).await
    }

    /// Opens `sqlite://PATH` (created if missing) or an in-memory database
    /// (`sqlite::memory:`, or a URL with `mode=memory`). An in-memory database lives on a
    /// single connection that serves reads and writes, so every caller sees one database.
    pub async fn open_url(url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid SQLite URL: {e}")))?;
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let in_memory = rest.starts_with(":memory:") || url.contains("mode=memory");
        if in_memory {
            let pool = SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(
                    options
                        .foreign_keys(true)
                        .busy_timeout(BUSY_TIMEOUT)
                        .synchronous(SqliteSynchronous::Full),
                )
                .await
                .map_err(map_sqlx)?;
            return Ok(SqliteStore {
                commits: GroupCommit::start_in_memory(pool.clone()),
                inline: None,
                writer: pool.clone(),
                reader: pool,
                turn: WriteTurn::default(),
            });
        }
        Self::open_with(options).await
    }

    async fn open_with(base: SqliteConnectOptions) -> Result<SqliteStore, StoreError> {
        create_private(base.get_filename())?;
        let base = base
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Full);
        // The writer keeps its one connection for the life of the store: it holds the WAL
        // and shared-memory files open for the readers.
        let writer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .pragma("wal_autocheckpoint", WAL_CHECKPOINT_PAGES.to_string())
                    .pragma("temp_store", "MEMORY"),
            )
            .await
            .map_err(map_sqlx)?;
        // Readers do not set journal_mode: a read-only connection cannot change it, and the
        // writer has made the file WAL (a persistent property of the file).
        let reader = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(READERS)
            .connect_with(base.read_only(true))
            .await
            .map_err(map_sqlx)?;
        let turn = WriteTurn::default();
        let path = writer.connect_options().get_filename().to_owned();
        Ok(SqliteStore {
            commits: GroupCommit::start_on_file(&path, BUSY_TIMEOUT, turn.clone())?,
            inline: Some(Arc::new(InlineReader::new(&path, BUSY_TIMEOUT))),
            writer,
            reader,
            turn,
        })
    }

    /// Applies the migrations (`trilo_store_sql::migrations`); applied ones are skipped.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.writer)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))
    }

    /// Asserts the durability settings on the writer connection (H-D3): `journal_mode=wal`,
    /// `synchronous=FULL` (NORMAL can lose the last commits on a power loss),
    /// `foreign_keys=ON` (deletes cascade) and a non-zero `busy_timeout`.
    pub async fn self_check(&self) -> Result<(), StoreError> {
        run(async {
            let mut conn = self.writer.acquire().await?;
            let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *conn)
                .await?;
            let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await?;
            let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
                .fetch_one(&mut *conn)
                .await?;
            let busy_timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
                .fetch_one(&mut *conn)
                .await?;
            let mut wrong = Vec::new();
            if !journal.eq_ignore_ascii_case("wal") {
                wrong.push(format!("journal_mode is {journal}, not wal"));
            }
            if synchronous != 2 {
                wrong.push(format!("synchronous is {synchronous}, not 2 (FULL)"));
            }
            if foreign_keys != 1 {
                wrong.push("foreign_keys is off".to_owned());
            }
            if busy_timeout <= 0 {
                wrong.push("busy_timeout is 0".to_owned());
            }
            if wrong.is_empty() {
                Ok(())
            } else {
                Err(Fail::Store(StoreError::Unavailable(format!(
                    "unsafe SQLite settings: {}",
                    wrong.join("; ")
                ))))
            }
        })
        .await
    }

    /// Closes every connection (checkpointing the WAL), e.g. before deleting the file.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// One queued write, committed with whatever others are queued (see `group_commit`).
    async fn commit(&self, write: Write) -> StoreResult<Written> {
        self.commits.submit(write).await
    }

    /// How many groups of queued writes have been committed: fewer than the writes when
    /// concurrent ones share commits.
    pub fn rotation_groups_committed(&self) -> u64 {
        self.commits.groups_committed()
    }

    /// Runs a hot read inline on a file database (see `inline_reads`), or `fallback`
    /// through sqlx on an in-memory one.
    async fn read_inline<T, Fut>(
        &self,
        inline: impl FnOnce(&rusqlite::Connection) -> StoreResult<T>,
        fallback: impl FnOnce(Db<PoolConnection<Sqlite>>) -> Fut,
    ) -> StoreResult<T>
    where
        Fut: Future<Output = Result<T, Fail>>,
    {
        match &self.inline {
            Some(reader) => reader.read(inline),
            None => self.read(fallback).await,
        }
    }

    /// Runs `op` in a write transaction on the writer. `BEGIN IMMEDIATE` takes the write
    /// lock up front, so the transaction never fails halfway with `SQLITE_BUSY` on a lock
    /// upgrade.
    async fn write<T, Fut>(
        &self,
        op: impl FnOnce(Db<Transaction<'static, Sqlite>>) -> Fut,
    ) -> StoreResult<T>
    where
        Fut: Future<Output = Result<T, Fail>>,
    {
        let _turn = self.turn.lock().await;
        run(async { op(Db(self.writer.begin_with("BEGIN IMMEDIATE").await?)).await }).await
    }

    /// Runs `op` in a read transaction on a reader: one consistent snapshot across
    /// several queries.
    async fn snapshot<T, Fut>(
        &self,
        op: impl FnOnce(Db<Transaction<'static, Sqlite>>) -> Fut,
    ) -> StoreResult<T>
    where
        Fut: Future<Output = Result<T, Fail>>,
    {
        run(async { op(Db(self.reader.begin().await?)).await }).await
    }

    /// Runs `op`, a single query, on a reader connection.
    async fn read<T, Fut>(
        &self,
        op: impl FnOnce(Db<PoolConnection<Sqlite>>) -> Fut,
    ) -> StoreResult<T>
    where
        Fut: Future<Output = Result<T, Fail>>,
    {
        run(async { op(Db(self.reader.acquire().await?)).await }).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use trilo_core::store::Store;

    /// A database file in the temp dir; dropping it removes the file with its WAL and
    /// shared-memory files.
    pub(crate) struct TempDatabase(pub(crate) std::path::PathBuf);

    impl TempDatabase {
        pub(crate) fn new() -> Self {
            let name = format!("trilo-sqlite-{}.db", uuid::Uuid::new_v4().simple());
            Self(std::env::temp_dir().join(name))
        }

        /// The store on this file, migrated.
        pub(crate) async fn migrated_store(&self) -> SqlStore<SqliteStore> {
            let store = SqlStore(SqliteStore::open(&self.0).await.unwrap());
            store.migrate().await.unwrap();
            store
        }
    }

    /// A code the world's user consented to (`offline_access`), not yet redeemed.
    pub(crate) async fn consented_code(
        store: &SqlStore<SqliteStore>,
        w: &trilo_core::testing::fixtures::World,
    ) -> trilo_core::model::TokenHash {
        use trilo_core::store::GrantStore;
        use trilo_core::testing::fixtures::{self, at};
        let code = fixtures::new_code(at(1));
        let consent = w.consent(&["offline_access"], at(1));
        store
            .accept_consent(&consent, &fixtures::new_id(), &code)
            .await
            .unwrap();
        code.code_hash
    }

    impl Drop for TempDatabase {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = self.0.as_os_str().to_owned();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
    }

    #[tokio::test]
    async fn self_check_passes_when_opened_from_a_file() {
        let db = TempDatabase::new();
        let store = db.migrated_store().await;
        store.self_check().await.unwrap();
        store.ping().await.unwrap();
        store.close().await;
    }

    #[tokio::test]
    async fn writing_connections_checkpoint_late_and_keep_savepoint_journals_in_memory() {
        let db = TempDatabase::new();
        let store = db.migrated_store().await;
        let writer = |pragma: &'static str| {
            let pool = store.writer.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("PRAGMA {pragma}")))
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        let committer = group_commit::open_committer(&db.0, BUSY_TIMEOUT).unwrap();
        let committer = |pragma: &str| -> i64 {
            committer
                .query_row(&format!("PRAGMA {pragma}"), [], |row| row.get(0))
                .unwrap()
        };
        let checkpoint = i64::from(WAL_CHECKPOINT_PAGES);
        assert_eq!(writer("wal_autocheckpoint").await, checkpoint);
        assert_eq!(committer("wal_autocheckpoint"), checkpoint);
        // 2 is MEMORY.
        assert_eq!(writer("temp_store").await, 2);
        assert_eq!(committer("temp_store"), 2);
        store.close().await;
    }

    /// `.cargo/config.toml` builds SQLite without the two global mutexes its defaults take
    /// on every allocation and page fetch (issue 19).
    #[test]
    fn sqlite_is_built_without_memory_statistics_or_a_shared_page_cache() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        let mut options = db.prepare("PRAGMA compile_options").unwrap();
        let options: Vec<String> = options
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }

    #[tokio::test]
    async fn self_check_fails_when_not_in_wal_mode() {
        // An in-memory database cannot use WAL: the check must notice.
        let store = SqlStore(SqliteStore::open_url("sqlite::memory:").await.unwrap());
        store.migrate().await.unwrap();
        let err = store.self_check().await.unwrap_err();
        assert!(err.to_string().contains("journal_mode"), "{err}");
    }

    /// The store on a new file with every migration but `version` applied. (The other
    /// migrations run first so that the store's own writes, which expect them, can seed
    /// data for the one left out; sqlx applies a missing migration whatever its number.)
    async fn store_migrated_but(db: &TempDatabase, version: i64) -> SqlStore<SqliteStore> {
        store_migrated_with(db, |v| v != version).await
    }

    /// A store with the migrations before `version` applied; `migrate` applies the rest.
    async fn store_migrated_before(db: &TempDatabase, version: i64) -> SqlStore<SqliteStore> {
        store_migrated_with(db, |v| v < version).await
    }

    /// The store on a new file with the migrations whose version `applied` picks.
    async fn store_migrated_with(
        db: &TempDatabase,
        applied: impl Fn(i64) -> bool,
    ) -> SqlStore<SqliteStore> {
        let some = sqlx::migrate::Migrator::with_migrations(
            MIGRATOR
                .iter()
                .filter(|m| applied(m.version))
                .cloned()
                .collect(),
        );
        let store = SqlStore(SqliteStore::open(&db.0).await.unwrap());
        some.run(&store.writer).await.unwrap();
        store
    }

    /// Migration 0018 keys `refresh_tokens` by family and generation, in key order without
    /// a rowid: every token from before stays, field for field, and is found by its hash
    /// too; the only indexes left are the janitor's and the partial one over tokens from
    /// before, and the keys hold.
    #[tokio::test]
    async fn keying_refresh_tokens_keeps_every_token_and_finds_old_ones_by_hash() {
        use trilo_core::testing::conformance::{tokens_after_keying, tokens_before_keying};
        let db = TempDatabase::new();
        // With 0020 too, whose columns today's writes fill (it leaves refresh tokens be).
        let store = store_migrated_with(&db, |v| v < 18 || v == 20).await;
        let (w, before) = tokens_before_keying(&store).await;
        store.migrate().await.unwrap();
        tokens_after_keying(&store, &w, &before).await;

        let indexes: Vec<(String, bool, bool, String)> = sqlx::query_as(
            "SELECT name, \"unique\", partial, origin FROM pragma_index_list('refresh_tokens') \
             ORDER BY name",
        )
        .fetch_all(&store.writer)
        .await
        .unwrap();
        let index = |name: &str, unique, partial, origin: &str| {
            (name.to_owned(), unique, partial, origin.to_owned())
        };
        assert_eq!(
            indexes,
            [
                index("refresh_tokens_inactivity_idx", false, false, "c"),
                index("refresh_tokens_legacy_idx", true, true, "c"),
                // The table itself, in (family_id, generation) order.
                index("sqlite_autoindex_refresh_tokens_1", true, false, "pk"),
            ]
        );
        let without_rowid: bool =
            sqlx::query_scalar("SELECT wr FROM pragma_table_list('refresh_tokens')")
                .fetch_one(&store.writer)
                .await
                .unwrap();
        assert!(without_rowid);
        keys_hold_and_the_app_takes_its_tokens(store, &w.app.app_id).await;
    }

    /// Migration 0010 rebuilds `codes` (SQLite cannot drop a NOT NULL): a database with every
    /// other migration and codes in it keeps every code, field for field, once 0010 runs,
    /// and then takes codes without a site.
    #[tokio::test]
    async fn rebuilding_the_code_table_keeps_every_code() {
        use trilo_core::store::GrantStore;
        use trilo_core::testing::fixtures::{self, World, at};
        let db = TempDatabase::new();
        let store = store_migrated_but(&db, 10).await;
        let w = World::seed(&store as &dyn Store).await.unwrap();
        let mut codes = Vec::new();
        for i in 0..3 {
            let code = fixtures::new_code(at(i));
            store
                .accept_consent(
                    &w.consent(&["read:jira-work"], at(i)),
                    &fixtures::new_id(),
                    &code,
                )
                .await
                .unwrap();
            codes.push(store.code(&code.code_hash).await.unwrap().unwrap());
        }

        store.migrate().await.unwrap();
        for code in &codes {
            assert_eq!(
                store.code(&code.code_hash).await.unwrap().as_ref(),
                Some(code)
            );
        }
        let mut log_in_with = w.consent(&["openid"], at(5));
        log_in_with.cloud_id = None;
        let code = fixtures::new_code(at(5));
        store
            .accept_consent(&log_in_with, &fixtures::new_id(), &code)
            .await
            .unwrap();
        assert_eq!(
            store.code(&code.code_hash).await.unwrap().unwrap().cloud_id,
            None
        );
        store.self_check().await.unwrap();
        store.close().await;
    }

    /// After a family-table migration: every key holds, the store passes its self-check,
    /// and deleting the app still ends its families and tokens. Closes the store.
    async fn keys_hold_and_the_app_takes_its_tokens(store: SqlStore<SqliteStore>, app_id: &str) {
        use trilo_core::store::AppStore;
        let broken: Vec<(String,)> =
            sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
                .fetch_all(&store.writer)
                .await
                .unwrap();
        assert!(broken.is_empty(), "{broken:?}");
        store.self_check().await.unwrap();
        assert!(store.delete_app(app_id).await.unwrap());
        assert_eq!(family_and_token_counts(&store).await, (0, 0));
        store.close().await;
    }

    /// How many token families and refresh tokens the database holds.
    async fn family_and_token_counts(store: &SqlStore<SqliteStore>) -> (i64, i64) {
        sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM token_families), (SELECT COUNT(*) FROM refresh_tokens)",
        )
        .fetch_one(&store.writer)
        .await
        .unwrap()
    }

    /// Migration 0017 rebuilds `token_families` and `refresh_tokens` (SQLite drops a key by
    /// rebuilding, and dropping the families would cascade to their tokens): a database
    /// with every other migration keeps every family and every token, field for field, the
    /// keys hold, and an app's deletion still ends its families and tokens through the grant.
    #[tokio::test]
    async fn rebuilding_the_family_tables_keeps_every_family_and_token() {
        use trilo_core::crypto::{random_token, sha256};
        use trilo_core::model::{NewRefreshToken, Redeemed, Rotation};
        use trilo_core::store::GrantStore;
        use trilo_core::testing::fixtures::{self, World, at};
        let db = TempDatabase::new();
        let store = store_migrated_before(&db, 17).await;
        // The columns 0020 adds, which today's writes fill, without recording 0020: the
        // rebuild drops them, and 0020 adds them back after it.
        let columns_0020 = MIGRATOR.iter().find(|m| m.version == 20).unwrap();
        sqlx::raw_sql(columns_0020.sql.clone())
            .execute(&store.writer)
            .await
            .unwrap();
        let w = World::seed(&store as &dyn Store).await.unwrap();
        let mut families = Vec::new();
        let mut tokens = Vec::new();
        for i in 0..3 {
            let code_hash = consented_code(&store, &w).await;
            let first = sha256(&random_token());
            let new_family = fixtures::new_family_with_refresh(at(2 + i), first);
            let Redeemed::First(family) = store
                .redeem_code(&code_hash, &new_family, at(2 + i))
                .await
                .unwrap()
            else {
                panic!("a fresh code is redeemed once");
            };
            let child = sha256(&random_token());
            let rotation = Rotation {
                family_id: family.family_id.clone(),
                parent_hash: first,
                parent_generation: 0,
                child: NewRefreshToken {
                    token_hash: child,
                    inactivity_expires_at: at(100),
                    kept: trilo_core::model::TokenKeeping::Row,
                },
                at: at(10 + i),
            };
            assert!(store.rotate_refresh_token(&rotation).await.unwrap());
            tokens.extend([
                fixtures::first_token_key(&family.family_id, first),
                fixtures::token_key(&family.family_id, 1, child),
            ]);
            families.push(family.family_id);
        }
        assert!(
            store
                .revoke_family(&families[1], "test", at(20))
                .await
                .unwrap()
        );
        let mut before = Vec::new();
        for family_id in &families {
            before.push(store.family(family_id).await.unwrap().unwrap());
        }
        let mut tokens_before = Vec::new();
        for key in &tokens {
            tokens_before.push(store.refresh_token(key).await.unwrap().unwrap());
        }

        store.migrate().await.unwrap();
        for (family_id, family) in families.iter().zip(&before) {
            assert_eq!(
                store.family(family_id).await.unwrap().as_ref(),
                Some(family)
            );
        }
        for (key, token) in tokens.iter().zip(&tokens_before) {
            assert_eq!(
                store.refresh_token(key).await.unwrap().as_ref(),
                Some(token)
            );
        }
        assert_eq!(family_and_token_counts(&store).await, (3, 6));
        let referred: Vec<(String, String)> = sqlx::query_as(
            "SELECT 'token_families', \"table\" FROM pragma_foreign_key_list('token_families') \
             UNION ALL \
             SELECT 'refresh_tokens', \"table\" FROM pragma_foreign_key_list('refresh_tokens')",
        )
        .fetch_all(&store.writer)
        .await
        .unwrap();
        assert_eq!(
            referred,
            [
                ("token_families".to_owned(), "grants".to_owned()),
                ("refresh_tokens".to_owned(), "token_families".to_owned()),
            ]
        );
        keys_hold_and_the_app_takes_its_tokens(store, &w.app.app_id).await;
    }

    /// The bench's bulk loader writes families as the store reads them, a family keeping
    /// its tokens with its head's times.
    #[cfg(feature = "test-support")]
    #[tokio::test]
    async fn the_bulk_loader_writes_families_as_the_store_reads_them() {
        use trilo_core::testing::conformance::{families_to_load, loaded_families_read_back};
        let db = TempDatabase::new();
        let store = db.migrated_store().await;
        let families = families_to_load(&store).await;
        let mut loader = crate::preload::BulkLoader::open(&db.0).await.unwrap();
        let batch = crate::preload::Batch {
            families: &families,
            ..Default::default()
        };
        loader.insert(&batch).await.unwrap();
        loaded_families_read_back(&store, &families).await;
        store.close().await;
    }

    /// The database and its WAL and shared-memory files are the owner's only (issue 16).
    #[cfg(unix)]
    #[tokio::test]
    async fn database_files_are_created_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let db = TempDatabase::new();
        let store = db.migrated_store().await;
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", db.0.display());
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{file}: {mode:o}");
        }
        store.close().await;
    }

    #[tokio::test]
    async fn migrate_twice_is_a_no_op() {
        let db = TempDatabase::new();
        let url = format!("sqlite://{}", db.0.display());
        let store = SqlStore(SqliteStore::open_url(&url).await.unwrap());
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        store.self_check().await.unwrap();
        store.close().await;
    }
}

#[cfg(test)]
mod group_commit_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use time::Duration;
    use trilo_core::crypto::{random_token, sha256};
    use trilo_core::model::{AuditEvent, AuditQuery, NewRefreshToken, Redeemed, Rotation};
    use trilo_core::store::{AuditLog, GrantStore, Store, StoreError};
    use trilo_core::testing::fixtures::{self, World, at};

    use super::tests::{TempDatabase, consented_code};
    use super::{SqlStore, SqliteStore};

    /// 64 rotations of 64 families queued at once share a few commits, and each still
    /// gets its own answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_rotations_share_commits() {
        const FAMILIES: usize = 64;
        let db = TempDatabase::new();
        let store = Arc::new(db.migrated_store().await);
        let rotations = first_rotations(&store, FAMILIES).await;
        let before = store.rotation_groups_committed();
        let tasks: Vec<_> = rotations
            .into_iter()
            .map(|rotation| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.rotate_refresh_token(&rotation).await })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().unwrap(), "every rotation commits");
        }
        let groups = store.rotation_groups_committed() - before;
        assert!(
            groups >= 1 && groups < FAMILIES as u64 / 2,
            "{groups} commits for {FAMILIES}"
        );
        assert_eq!(reruns(store.as_ref()), 0, "groups of good writes run once");
        store.close().await;
    }

    /// For each of `families` new families, the rotation of its first refresh token.
    async fn first_rotations(store: &SqlStore<SqliteStore>, families: usize) -> Vec<Rotation> {
        let w = World::seed(store as &dyn Store).await.unwrap();
        let mut rotations = Vec::new();
        for _ in 0..families {
            let code_hash = consented_code(store, &w).await;
            let parent = sha256(&random_token());
            let new_family = fixtures::new_family_with_refresh(at(2), parent);
            let Redeemed::First(family) = store
                .redeem_code(&code_hash, &new_family, at(2))
                .await
                .unwrap()
            else {
                panic!("first redemption");
            };
            rotations.push(Rotation {
                family_id: family.family_id,
                parent_hash: parent,
                parent_generation: 0,
                child: NewRefreshToken {
                    token_hash: sha256(&random_token()),
                    inactivity_expires_at: at(3) + Duration::days(90),
                    kept: trilo_core::model::TokenKeeping::Row,
                },
                at: at(3),
            });
        }
        rotations
    }

    /// Groups that ran a second time, each write in a savepoint of its own.
    fn reruns(store: &dyn Store) -> u64 {
        store
            .commit_stats()
            .expect("the committer's stats")
            .reruns
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A rotation that fails half-way (its family's head moves, then its parent token is
    /// not there) leaves nothing behind, although a group runs without savepoints until a
    /// write fails, and the rotations grouped with it still commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_failing_half_way_leaves_nothing_behind_in_its_group() {
        const FAMILIES: usize = 16;
        let db = TempDatabase::new();
        let store = Arc::new(db.migrated_store().await);
        let mut rotations = first_rotations(&store, FAMILIES + 1).await;
        let kept = rotations.pop().expect("one more family");
        // The family's head is at generation 0, but no token of it has this hash.
        let broken = Rotation {
            parent_hash: sha256(&random_token()),
            ..kept.clone()
        };
        let mut tasks: Vec<_> = rotations
            .into_iter()
            .map(|rotation| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.rotate_refresh_token(&rotation).await })
            })
            .collect();
        let broken = {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.rotate_refresh_token(&broken).await })
        };
        for task in tasks.drain(..) {
            assert!(task.await.unwrap().unwrap(), "every good rotation commits");
        }
        assert!(
            matches!(broken.await.unwrap(), Err(StoreError::Corrupt(_))),
            "the broken rotation fails"
        );
        // Had its head move been kept, this rotation from generation 0 would lose.
        assert!(
            store.rotate_refresh_token(&kept).await.unwrap(),
            "the family's head is still at generation 0"
        );
        assert!(reruns(store.as_ref()) >= 1, "its group ran again");
        store.close().await;
    }
    /// Redemptions, rotations and audit events queued together share commits, and a
    /// write that fails or loses its compare-and-set inside a group changes nothing while
    /// the others of the group commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_rolls_back_alone_in_its_group() {
        const CODES: usize = 32;
        let db = TempDatabase::new();
        let store = Arc::new(db.migrated_store().await);
        let w = World::seed(store.as_ref() as &dyn Store).await.unwrap();
        let mut codes = Vec::new();
        for _ in 0..CODES {
            codes.push(consented_code(&store, &w).await);
        }
        let before = store.rotation_groups_committed();
        let mut tasks = Vec::new();
        // Each code twice: exactly one redemption wins, the other finds it used.
        for code_hash in codes.iter().chain(&codes) {
            let code_hash = *code_hash;
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                let family = fixtures::new_family_with_refresh(at(2), sha256(&random_token()));
                match store.redeem_code(&code_hash, &family, at(2)).await.unwrap() {
                    Redeemed::First(_) => "first",
                    Redeemed::AlreadyUsed(_) => "used",
                    Redeemed::NotFound => "missing",
                }
            }));
        }
        // The same audit event id twice: one is appended, the other is a conflict.
        let event = AuditEvent {
            event_id: fixtures::new_id(),
            at: at(2),
            actor_account_id: None,
            action: "test.grouped".to_owned(),
            target: "group".to_owned(),
            cloud_id: None,
            details: serde_json::json!({}),
        };
        for _ in 0..2 {
            let (store, event) = (Arc::clone(&store), event.clone());
            tasks.push(tokio::spawn(async move {
                match store.append_audit(&event).await {
                    Ok(()) => "appended",
                    Err(StoreError::Conflict { .. }) => "conflict",
                    Err(_) => "failed",
                }
            }));
        }
        let mut outcomes = std::collections::BTreeMap::new();
        for task in tasks {
            *outcomes.entry(task.await.unwrap()).or_insert(0) += 1;
        }
        let expected = [
            ("appended", 1),
            ("conflict", 1),
            ("first", CODES),
            ("used", CODES),
        ];
        assert_eq!(outcomes, expected.into_iter().collect());
        let groups = store.rotation_groups_committed() - before;
        assert!(groups < (2 * CODES) as u64, "{groups} commits");
        let query = AuditQuery {
            action_prefix: Some("test.grouped".to_owned()),
            ..AuditQuery::default()
        };
        assert_eq!(store.audit_events(&query).await.unwrap().len(), 1);
        store.close().await;
    }
}

#[cfg(test)]
mod conformance {
    //! The shared suite on SQLite, all cases in one test (the per-case runner lives in the
    //! server's integration tests).
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use super::tests::TempDatabase;
    use super::{SqlStore, SqliteStore};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_case_passes_in_memory() {
        let mut failed = Vec::new();
        for (name, case) in trilo_core::testing::conformance::all() {
            let store = Arc::new(SqlStore(
                SqliteStore::open_url("sqlite::memory:").await.unwrap(),
            ));
            store.migrate().await.unwrap();
            if tokio::spawn(case(store.clone())).await.is_err() {
                failed.push(name);
            }
            store.close().await;
        }
        assert!(failed.is_empty(), "failed cases: {failed:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_case_passes() {
        let mut failed = Vec::new();
        for (name, case) in trilo_core::testing::conformance::all() {
            let db = TempDatabase::new();
            let store = Arc::new(db.migrated_store().await);
            let result = tokio::spawn(case(store.clone())).await;
            store.close().await;
            if result.is_err() {
                failed.push(name);
            }
        }
        assert!(failed.is_empty(), "failed cases: {failed:?}");
    }
}
