//! Group commit of the token endpoint's writes: refresh-token rotations (with the read
//! and the decision before them, on this connection's warm page cache), code redemptions
//! and the audit events that go with them.
//!
//! With `synchronous=FULL` every commit waits for an fsync of the WAL, which bounds a
//! one-write-per-transaction writer at a few thousand writes a second. These writes are
//! queued here instead; one committer takes whatever has queued up while the previous
//! commit was syncing, runs them in one `BEGIN IMMEDIATE` transaction (each a whole or
//! nothing, see [`write_group`]), commits once (one fsync for the whole group) and only
//! then answers each caller.
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
use trilo_core::code_plan::{CodeExchanged, CodePlan};
use trilo_core::metrics::CommitStats;
use trilo_core::model::{AuditEvent, NewFamily, Redeemed, Rotation, TokenHash};
use trilo_core::refresh_plan::RefreshPlan;
use trilo_core::store::{Durable, Refreshed, StoreError, StoreResult};
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
    Refresh(RefreshPlan),
    Redeem {
        code_hash: TokenHash,
        family: NewFamily,
        now: OffsetDateTime,
    },
    /// The code grant's read, check and redemption, on the committer's warm connection.
    Exchange(CodePlan),
    Audit(AuditEvent),
}

/// What a write answers.
pub(crate) enum Written {
    Rotated(bool),
    Refreshed(Option<Box<Refreshed>>),
    Redeemed(Box<Redeemed>),
    Exchanged(Option<Box<CodeExchanged>>),
    Appended,
}

/// A write's result and when it is on disk.
type Answer = (StoreResult<Written>, Durable);

struct Job {
    write: Write,
    /// The caller may hear its result before the commit ([`answer_early`]).
    early: bool,
    reply: oneshot::Sender<Answer>,
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
        let (written, durable) = self.queue(write, false).await?;
        durable.wait().await?;
        Ok(written)
    }

    /// Queues one write and waits for its result, which may come before the commit: the
    /// caller waits on the [`Durable`] before it answers anyone.
    pub(crate) async fn submit_answering_early(
        &self,
        write: Write,
    ) -> StoreResult<(Written, Durable)> {
        self.queue(write, true).await
    }

    async fn queue(&self, write: Write, early: bool) -> StoreResult<(Written, Durable)> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                write,
                early,
                reply,
            })
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".to_owned()))?;
        let (written, durable) = answer.await.map_err(|_| {
            StoreError::Unavailable("the SQLite writer stopped before committing".to_owned())
        })?;
        Ok((written?, durable))
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
        let size = group.len();
        let outcome = {
            let _turn = turn.blocking_lock();
            let started = std::time::Instant::now();
            let outcome = commit_group(db, &mut group, stats).map_err(map_rusqlite);
            (outcome, started.elapsed())
        };
        answer(&mut group, outcome, size, stats);
    }
}

/// Runs the group's writes ([`write_group`]), then commits the group. The per-write
/// results count only if the commit succeeds; on a failure the transaction is rolled back
/// so the connection is clean for the next group. The jobs that may hear early get their
/// result before the commit and its outcome after it ([`answer_early`]).
fn commit_group(
    db: &Connection,
    group: &mut Vec<Job>,
    stats: &CommitStats,
) -> rusqlite::Result<Vec<StoreResult<Written>>> {
    command(db, "BEGIN IMMEDIATE")?;
    let outcome = write_group(db, group, stats).and_then(|mut results| {
        let early = answer_early(group, &mut results);
        let committed = command(db, "COMMIT");
        for durable in early {
            let _ = durable.send(match &committed {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Unavailable(format!("the commit failed: {e}"))),
            });
        }
        committed.map(|()| results)
    });
    if outcome.is_err() && !db.is_autocommit() {
        let _ = command(db, "ROLLBACK");
    }
    outcome
}

/// Answers the group's jobs that may hear early ([`Job::early`]) now, before the commit,
/// each with a [`Durable`] that resolves when the commit does: the token endpoint signs
/// while the WAL syncs and answers its client only once the commit is on disk. Takes
/// those jobs and results out of the group and returns the senders of their commit outcome.
fn answer_early(
    group: &mut Vec<Job>,
    results: &mut Vec<StoreResult<Written>>,
) -> Vec<oneshot::Sender<StoreResult<()>>> {
    let mut durables = Vec::new();
    let mut kept = Vec::with_capacity(group.len());
    for (job, result) in group.drain(..).zip(results.drain(..)) {
        if job.early && result.is_ok() {
            let (durable, outcome) = oneshot::channel();
            let _ = job.reply.send((result, Durable::pending(outcome)));
            durables.push(durable);
        } else {
            kept.push((job, result));
        }
    }
    for (job, result) in kept {
        group.push(job);
        results.push(result);
    }
    durables
}

/// Runs one cached statement that takes no parameters (a transaction command).
fn command(db: &Connection, sql: &str) -> rusqlite::Result<()> {
    db.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Runs the group's writes inside the open transaction, each a whole or nothing.
///
/// A savepoint around each write would give that by itself, but it copies every page the
/// write touches into the savepoint's journal: about a tenth of the committer's time.
/// Nearly every write needs none, because it either does all it set out to or changes
/// nothing (an unknown token, a lost compare-and-set), so the writes first run one after
/// another without savepoints ([`write_together`]). Only when one of them fails, or says
/// it changed nothing but changed rows, can what it left behind not be told from its
/// neighbours' writes: then the group is rolled back and run again, each write in a
/// savepoint of its own ([`write_each_alone`]), and the stats count the rerun.
fn write_group(
    db: &Connection,
    group: &[Job],
    stats: &CommitStats,
) -> rusqlite::Result<Vec<StoreResult<Written>>> {
    if let Some(results) = write_together(db, group)? {
        return Ok(results);
    }
    stats.record_rerun();
    // A failed statement may already have ended the transaction (SQLite rolls back by
    // itself on some errors, such as a full disk).
    if !db.is_autocommit() {
        command(db, "ROLLBACK")?;
    }
    command(db, "BEGIN IMMEDIATE")?;
    write_each_alone(db, group)
}

/// The group's writes without savepoints, or `None` as soon as one of them may have left
/// part of itself behind: it failed, or it kept nothing by its result but changed rows.
fn write_together(
    db: &Connection,
    group: &[Job],
) -> rusqlite::Result<Option<Vec<StoreResult<Written>>>> {
    let mut results = Vec::with_capacity(group.len());
    for job in group {
        let rows_before = db.total_changes();
        let result = write(db, &job.write);
        let whole = match &result {
            Err(_) => false,
            Ok(_) => changed(&result) || db.total_changes() == rows_before,
        };
        if !whole {
            return Ok(None);
        }
        results.push(result);
    }
    Ok(Some(results))
}

/// The group's writes, each in a savepoint of its own: one that fails or keeps nothing
/// rolls back alone.
fn write_each_alone(db: &Connection, group: &[Job]) -> rusqlite::Result<Vec<StoreResult<Written>>> {
    let mut results = Vec::with_capacity(group.len());
    for job in group {
        command(db, "SAVEPOINT write")?;
        let result = write(db, &job.write);
        if !changed(&result) {
            command(db, "ROLLBACK TO write")?;
        }
        command(db, "RELEASE write")?;
        results.push(result);
    }
    Ok(results)
}

/// One write's statements, on the committer's connection.
fn write(db: &Connection, write: &Write) -> StoreResult<Written> {
    match write {
        Write::Rotate(rotation) => direct::rotate(db, rotation).map(Written::Rotated),
        Write::Refresh(plan) => {
            direct::refresh_and_rotate(db, plan).map(|r| Written::Refreshed(r.map(Box::new)))
        }
        Write::Redeem {
            code_hash,
            family,
            now,
        } => {
            direct::redeem_code(db, code_hash, family, *now).map(|r| Written::Redeemed(Box::new(r)))
        }
        Write::Exchange(plan) => {
            direct::exchange_code(db, plan).map(|e| Written::Exchanged(e.map(Box::new)))
        }
        Write::Audit(event) => direct::append_audit(db, event).map(|()| Written::Appended),
    }
}

/// Whether a write's result keeps what it changed: a lost compare-and-set and a failure
/// keep nothing.
fn changed(result: &StoreResult<Written>) -> bool {
    match result {
        Ok(Written::Rotated(rotated)) => *rotated,
        Ok(Written::Refreshed(refreshed)) => refreshed.as_ref().is_some_and(|r| r.rotated),
        Ok(Written::Redeemed(redeemed)) => matches!(**redeemed, Redeemed::First(_)),
        Ok(Written::Exchanged(exchanged)) => exchanged
            .as_ref()
            .is_some_and(|e| matches!(e.redeemed, Some(Redeemed::First(_)))),
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
        let size = group.len();
        answer(&mut group, (outcome, started.elapsed()), size, &stats);
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
            Write::Refresh(plan) => refresh_through_sqlx(savepoint, plan)
                .await
                .map(|r| Written::Refreshed(r.map(Box::new))),
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
            Write::Exchange(plan) => exchange_through_sqlx(savepoint, plan)
                .await
                .map(|e| Written::Exchanged(e.map(Box::new))),
            Write::Audit(event) => run(audit::append_audit(savepoint, event))
                .await
                .map(|()| Written::Appended),
        };
        results.push(result);
    }
    tx.commit().await.map_err(map_sqlx)?;
    Ok(results)
}

/// [`direct::exchange_code`] through sqlx, inside `savepoint`.
async fn exchange_through_sqlx(
    mut savepoint: Db<sqlx::Transaction<'_, sqlx::Sqlite>>,
    plan: &CodePlan,
) -> StoreResult<Option<CodeExchanged>> {
    let Some(code) = run(grants::code(Db(&mut *savepoint.0), &plan.code_hash)).await? else {
        return Ok(None);
    };
    let redeemed = match plan.redemption(&code) {
        Some(family) => Some(
            run(grants::redeem_code(
                savepoint,
                GrantLocks::NONE,
                &plan.code_hash,
                &family,
                plan.now,
            ))
            .await?,
        ),
        None => None,
    };
    Ok(Some(CodeExchanged { code, redeemed }))
}

/// [`direct::refresh_and_rotate`] through sqlx, inside `savepoint`.
async fn refresh_through_sqlx(
    mut savepoint: Db<sqlx::Transaction<'_, sqlx::Sqlite>>,
    plan: &RefreshPlan,
) -> StoreResult<Option<Refreshed>> {
    let Some(state) = run(grants::refresh_token(Db(&mut *savepoint.0), &plan.parent)).await? else {
        return Ok(None);
    };
    let rotated = match plan.rotation(&state) {
        Some(rotation) => run(grants::rotate_refresh_token(savepoint, &rotation)).await?,
        None => false,
    };
    Ok(Some(Refreshed {
        state,
        rotated,
        durable: Durable::committed(),
    }))
}

/// Tells each caller still waiting its result, or the group's failure; a committed group
/// of `size` writes counts in the stats.
fn answer(
    group: &mut Vec<Job>,
    (outcome, took): (StoreResult<Vec<StoreResult<Written>>>, Duration),
    size: usize,
    stats: &CommitStats,
) {
    match outcome {
        Ok(results) => {
            stats.record(took, size);
            for (job, result) in group.drain(..).zip(results) {
                let _ = job.reply.send((result, Durable::committed()));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, size = group.len(), "a write group failed to commit");
            for job in group.drain(..) {
                let _ = job.reply.send((Err(same_error(&e)), Durable::committed()));
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Mutex as StdMutex;

    use time::Duration;
    use trilo_core::crypto::{random_token, sha256};
    use trilo_core::model::{NewRefreshToken, Redeemed, RefreshTokenKey};
    use trilo_core::refresh_plan::RotationRule;
    use trilo_core::store::{GrantStore, Store};
    use trilo_core::testing::fixtures::{self, World, at};

    use super::*;
    use crate::tests::{TempDatabase, consented_code};

    /// A family whose head is a fresh refresh token, and a plan that rotates it.
    async fn plan_for_a_fresh_family(db: &TempDatabase) -> RefreshPlan {
        let store = db.migrated_store().await;
        let w = World::seed(&store as &dyn Store).await.unwrap();
        let code_hash = consented_code(&store, &w).await;
        let parent = sha256(&random_token());
        let family = fixtures::new_family_with_refresh(at(2), parent);
        let redeemed = store.redeem_code(&code_hash, &family, at(2)).await;
        let Redeemed::First(family) = redeemed.unwrap() else {
            panic!("a first redemption");
        };
        store.close().await;
        RefreshPlan {
            rule: RotationRule {
                app_id: w.app.app_id.clone(),
                now: at(3),
                reuse_leeway: Duration::minutes(10),
            },
            parent: fixtures::first_token_key(&family.family_id, parent),
            child: NewRefreshToken {
                token_hash: sha256(&random_token()),
                inactivity_expires_at: at(3) + Duration::days(90),
                kept: trilo_core::model::TokenKeeping::Row,
            },
            scope: None,
        }
    }

    /// Commits a group of one refresh of `plan` on a fresh committer connection whose
    /// commit hook says whether to fail the COMMIT. Returns the group's outcome, the
    /// caller's answer as it stood when the COMMIT began, and the connection.
    fn commit_one_refresh(
        db: &TempDatabase,
        plan: &RefreshPlan,
        fail_the_commit: bool,
    ) -> (rusqlite::Result<Vec<StoreResult<Written>>>, Option<Answer>) {
        let committer = open_committer(&db.0, Duration::seconds(5).unsigned_abs()).unwrap();
        let (reply, answer) = oneshot::channel();
        let answer = Arc::new(StdMutex::new(answer));
        let at_commit = Arc::new(StdMutex::new(None));
        let (hook_answer, hook_at_commit) = (Arc::clone(&answer), Arc::clone(&at_commit));
        committer
            .commit_hook(Some(move || {
                *hook_at_commit.lock().unwrap() = hook_answer.lock().unwrap().try_recv().ok();
                fail_the_commit
            }))
            .unwrap();
        let write = Write::Refresh(plan.clone());
        let mut group = vec![Job {
            write,
            early: true,
            reply,
        }];
        let outcome = commit_group(&committer, &mut group, &CommitStats::default());
        let heard = at_commit.lock().unwrap().take();
        (outcome, heard)
    }

    /// Where `plan`'s successor is stored once it rotated.
    fn child_key(plan: &RefreshPlan) -> RefreshTokenKey {
        fixtures::token_key(
            &plan.parent.family_id,
            plan.parent.generation + 1,
            plan.child.token_hash,
        )
    }

    /// What the refresh's caller had heard when the COMMIT began, with its durability.
    fn refreshed(answer: Option<Answer>) -> (Refreshed, Durable) {
        match answer {
            Some((Ok(Written::Refreshed(Some(refreshed))), durable)) => (*refreshed, durable),
            _ => panic!("no refresh answer when the COMMIT began"),
        }
    }

    #[tokio::test]
    async fn a_refresh_hears_its_result_before_the_commit_and_its_durability_after() {
        let db = TempDatabase::new();
        let plan = plan_for_a_fresh_family(&db).await;
        let (outcome, heard) = commit_one_refresh(&db, &plan, false);
        assert!(outcome.is_ok());
        let (refreshed, durable) = refreshed(heard);
        assert!(refreshed.rotated);
        durable.wait().await.unwrap();
        let store = db.migrated_store().await;
        let child = store.refresh_token(&child_key(&plan)).await.unwrap();
        assert!(child.is_some(), "the rotation is on disk");
        store.close().await;
    }

    #[tokio::test]
    async fn a_failed_commit_reaches_the_refresh_that_heard_early() {
        let db = TempDatabase::new();
        let plan = plan_for_a_fresh_family(&db).await;
        let (outcome, heard) = commit_one_refresh(&db, &plan, true);
        assert!(outcome.is_err());
        let (refreshed, durable) = refreshed(heard);
        assert!(refreshed.rotated, "it rotated inside the transaction");
        let durable = durable.wait().await;
        assert!(
            matches!(durable, Err(StoreError::Unavailable(_))),
            "{durable:?}"
        );
        let store = db.migrated_store().await;
        let child = store.refresh_token(&child_key(&plan)).await.unwrap();
        assert!(child.is_none(), "nothing was kept");
        let parent = store.refresh_token(&plan.parent).await.unwrap().unwrap();
        assert_eq!(parent.token.rotated_at, None);
        store.close().await;
    }
}
