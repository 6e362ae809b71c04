//! Group commit of the token endpoint's writes: refresh-token rotations (with the read
//! and the decision before them, on this connection's warm page cache), code redemptions
//! and the audit events that go with them.
//!
//! With `synchronous=FULL` every commit waits for an fsync of the WAL, which bounds a
//! one-write-per-transaction writer at a few thousand writes a second. These writes are
//! queued here instead; one committer takes whatever has queued up while the previous
//! commit was syncing, runs each in a savepoint of one `BEGIN IMMEDIATE` transaction,
//! commits once (one fsync for the whole group) and only then answers each caller.
//! Durability is unchanged: no caller hears "done" before the commit that holds its write
//! is on disk.
//!
//! For a database file the committer is a thread with its own connection, running the
//! statements through rusqlite (`direct`): through sqlx each statement costs two thread
//! switches, which at thousands of writes a second cost more than the statements. That
//! connection and the sqlx writer take turns through the store's [`WriteTurn`], so they
//! never wait on SQLite's lock (whose busy handler sleeps). An in-memory database lives on
//! the sqlx writer's one connection, so there the committer is a task running the same
//! operations through sqlx.

use std::path::Path;
use std::sync::Arc;

use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use sqlx::{Connection as _, SqlitePool};
use time::OffsetDateTime;
use tokio::sync::{Mutex, mpsc, oneshot};
use trilo_core::metrics::CommitStats;
use trilo_core::model::{AuditEvent, NewFamily, Redeemed, Rotation, TokenHash};
use trilo_core::refresh_plan::RefreshPlan;
use trilo_core::store::{Refreshed, StoreError, StoreResult};
use trilo_store_sql::audit;
use trilo_store_sql::grants::{self, GrantLocks};

use crate::conn::Db;
use crate::direct::{self, map_rusqlite};
use crate::error::{map_sqlx, run};

/// At most this many writes share one commit.
const MAX_GROUP: usize = 256;
/// Writes waiting for the committer; callers wait for room beyond this.
const QUEUE: usize = 4096;

/// Held by whichever connection is writing: the sqlx writer for one operation, or the
/// committer for one group.
pub(crate) type WriteTurn = Arc<Mutex<()>>;

/// One queued write.
pub(crate) enum Write {
    Rotate(Rotation),
    /// The refresh grant's read and rotation, on the committer's warm connection.
    Refresh {
        token_hash: TokenHash,
        plan: RefreshPlan,
    },
    Redeem {
        code_hash: TokenHash,
        family: NewFamily,
        now: OffsetDateTime,
    },
    Audit(AuditEvent),
}

/// What a write answers.
pub(crate) enum Written {
    Rotated(bool),
    Refreshed(Option<Box<Refreshed>>),
    Redeemed(Box<Redeemed>),
    Appended,
}

struct Job {
    write: Write,
    reply: oneshot::Sender<StoreResult<Written>>,
}

/// The sending side, held by the store, and how the committed groups went.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
    stats: Arc<CommitStats>,
}

impl GroupCommit {
    /// Starts committing to the database file at `path` on a thread with its own
    /// connection; the thread ends when every clone of the queue is dropped.
    pub(crate) fn start_on_file(
        path: &Path,
        busy_timeout: Duration,
        turn: WriteTurn,
    ) -> StoreResult<GroupCommit> {
        let db = open_committer(path, busy_timeout).map_err(map_rusqlite)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(CommitStats::default());
        let committed = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("trilo-sqlite-commit".to_owned())
            .spawn(move || commit_groups(&db, &turn, rx, &committed))
            .map_err(|e| StoreError::Unavailable(format!("starting the SQLite writer: {e}")))?;
        Ok(GroupCommit { jobs: tx, stats })
    }

    /// Starts committing through sqlx on `writer`, an in-memory database's one
    /// connection, in a task on the current runtime.
    pub(crate) fn start_in_memory(writer: SqlitePool) -> GroupCommit {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(CommitStats::default());
        tokio::spawn(commit_groups_in_memory(writer, rx, Arc::clone(&stats)));
        GroupCommit { jobs: tx, stats }
    }

    /// Groups committed so far (each one transaction and one fsync).
    pub(crate) fn groups_committed(&self) -> u64 {
        self.stats.group_size.count()
    }

    /// Each committed group's time and size.
    pub(crate) fn stats(&self) -> Arc<CommitStats> {
        Arc::clone(&self.stats)
    }

    /// Queues one write and waits until the group holding it has been committed.
    pub(crate) async fn submit(&self, write: Write) -> StoreResult<Written> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { write, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".to_owned()))?;
        answer.await.map_err(|_| {
            StoreError::Unavailable("the SQLite writer stopped before committing".to_owned())
        })?
    }
}

/// The committer's connection, with the writer's durability settings (H-D3).
pub(crate) fn open_committer(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    db.busy_timeout(busy_timeout)?;
    db.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    db.pragma_update(None, "wal_autocheckpoint", crate::WAL_CHECKPOINT_PAGES)?;
    // Each write runs in a savepoint, whose journal of the pages it changed is otherwise
    // a temporary file: a write() per page, for a rollback that only this transaction needs.
    db.pragma_update(None, "temp_store", "MEMORY")?;
    let journal: String = db.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
    let synchronous: i64 = db.query_row("PRAGMA synchronous", [], |row| row.get(0))?;
    if !journal.eq_ignore_ascii_case("wal") || synchronous != 2 {
        return Err(rusqlite::Error::InvalidQuery);
    }
    Ok(db)
}

/// The committing thread: waits for a write, takes whatever else has queued, waits for
/// its turn to write, commits the group and answers each caller.
fn commit_groups(
    db: &Connection,
    turn: &Mutex<()>,
    mut queue: mpsc::Receiver<Job>,
    stats: &CommitStats,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = queue.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            let Ok(job) = queue.try_recv() else { break };
            group.push(job);
        }
        let outcome = {
            let _turn = turn.blocking_lock();
            let started = std::time::Instant::now();
            let outcome = commit_group(db, &group).map_err(map_rusqlite);
            (outcome, started.elapsed())
        };
        answer(&mut group, outcome, stats);
    }
}

/// Runs each write in its own savepoint (a failing one rolls back alone), then commits
/// the group. The per-write results count only if the commit succeeds; on a failure the
/// transaction is rolled back so the connection is clean for the next group.
fn commit_group(db: &Connection, group: &[Job]) -> rusqlite::Result<Vec<StoreResult<Written>>> {
    command(db, "BEGIN IMMEDIATE")?;
    let outcome = write_each(db, group).and_then(|results| {
        command(db, "COMMIT")?;
        Ok(results)
    });
    if outcome.is_err() && !db.is_autocommit() {
        let _ = command(db, "ROLLBACK");
    }
    outcome
}

/// Runs one cached statement that takes no parameters (a transaction command).
fn command(db: &Connection, sql: &str) -> rusqlite::Result<()> {
    db.prepare_cached(sql)?.execute([])?;
    Ok(())
}

fn write_each(db: &Connection, group: &[Job]) -> rusqlite::Result<Vec<StoreResult<Written>>> {
    let mut results = Vec::with_capacity(group.len());
    for job in group {
        command(db, "SAVEPOINT write")?;
        let result = match &job.write {
            Write::Rotate(rotation) => direct::rotate(db, rotation).map(Written::Rotated),
            Write::Refresh { token_hash, plan } => direct::refresh_and_rotate(db, token_hash, plan)
                .map(|r| Written::Refreshed(r.map(Box::new))),
            Write::Redeem {
                code_hash,
                family,
                now,
            } => direct::redeem_code(db, code_hash, family, *now)
                .map(|r| Written::Redeemed(Box::new(r))),
            Write::Audit(event) => direct::append_audit(db, event).map(|()| Written::Appended),
        };
        if !changed(&result) {
            command(db, "ROLLBACK TO write")?;
        }
        command(db, "RELEASE write")?;
        results.push(result);
    }
    Ok(results)
}

/// Whether a write's result keeps what it changed: a lost compare-and-set and a failure
/// keep nothing.
fn changed(result: &StoreResult<Written>) -> bool {
    match result {
        Ok(Written::Rotated(rotated)) => *rotated,
        Ok(Written::Refreshed(refreshed)) => refreshed.as_ref().is_some_and(|r| r.rotated),
        Ok(Written::Redeemed(redeemed)) => matches!(**redeemed, Redeemed::First(_)),
        Ok(Written::Appended) => true,
        Err(_) => false,
    }
}

async fn commit_groups_in_memory(
    writer: SqlitePool,
    mut queue: mpsc::Receiver<Job>,
    stats: Arc<CommitStats>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        let started = std::time::Instant::now();
        let outcome = commit_group_through_sqlx(&writer, &group).await;
        answer(&mut group, (outcome, started.elapsed()), &stats);
    }
}

/// [`commit_group`] through sqlx, with trilo-store-sql's operations.
async fn commit_group_through_sqlx(
    writer: &SqlitePool,
    group: &[Job],
) -> StoreResult<Vec<StoreResult<Written>>> {
    let mut tx = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(map_sqlx)?;
    let mut results = Vec::with_capacity(group.len());
    for job in group {
        let savepoint = Db(tx.begin().await.map_err(map_sqlx)?);
        let result = match &job.write {
            Write::Rotate(rotation) => run(grants::rotate_refresh_token(savepoint, rotation))
                .await
                .map(Written::Rotated),
            Write::Refresh { token_hash, plan } => {
                refresh_through_sqlx(savepoint, token_hash, plan)
                    .await
                    .map(|r| Written::Refreshed(r.map(Box::new)))
            }
            Write::Redeem {
                code_hash,
                family,
                now,
            } => run(grants::redeem_code(
                savepoint,
                GrantLocks::NONE,
                code_hash,
                family,
                *now,
            ))
            .await
            .map(|r| Written::Redeemed(Box::new(r))),
            Write::Audit(event) => run(audit::append_audit(savepoint, event))
                .await
                .map(|()| Written::Appended),
        };
        results.push(result);
    }
    tx.commit().await.map_err(map_sqlx)?;
    Ok(results)
}

/// [`direct::refresh_and_rotate`] through sqlx, inside `savepoint`.
async fn refresh_through_sqlx(
    mut savepoint: Db<sqlx::Transaction<'_, sqlx::Sqlite>>,
    token_hash: &TokenHash,
    plan: &RefreshPlan,
) -> StoreResult<Option<Refreshed>> {
    let Some(state) = run(grants::refresh_token(Db(&mut *savepoint.0), token_hash)).await? else {
        return Ok(None);
    };
    let rotated = match plan.rotation(&state) {
        Some(rotation) => run(grants::rotate_refresh_token(savepoint, &rotation)).await?,
        None => false,
    };
    Ok(Some(Refreshed { state, rotated }))
}

/// Tells each caller of the group its result, or the group's failure.
fn answer(
    group: &mut Vec<Job>,
    (outcome, took): (StoreResult<Vec<StoreResult<Written>>>, Duration),
    stats: &CommitStats,
) {
    match outcome {
        Ok(results) => {
            stats.record(took, group.len());
            for (job, result) in group.drain(..).zip(results) {
                let _ = job.reply.send(result);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, size = group.len(), "a write group failed to commit");
            for job in group.drain(..) {
                let _ = job.reply.send(Err(same_error(&e)));
            }
        }
    }
}

/// The group's failure, once for each of its callers.
fn same_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Conflict { constraint } => StoreError::Conflict {
            constraint: constraint.clone(),
        },
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
    }
}
