//! Group commit of refresh-token rotations on the single writer.
//!
//! With `synchronous=FULL` every commit waits for an fsync of the WAL, which bounds a
//! one-rotation-per-transaction writer at a few thousand rotations a second. Rotations are
//! queued here instead; one task takes whatever has queued up while the previous commit
//! was syncing, runs each in a savepoint of one `BEGIN IMMEDIATE` transaction, commits once
//! (one fsync for the whole group) and only then answers each caller. Durability is
//! unchanged: no caller hears "rotated" before the commit that holds its rotation is on
//! disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Connection, SqlitePool};
use tokio::sync::{mpsc, oneshot};
use trilo_core::model::Rotation;
use trilo_core::store::{StoreError, StoreResult};
use trilo_store_sql::grants;

use crate::conn::Db;
use crate::error::{map_sqlx, run};

/// At most this many rotations share one commit.
const MAX_GROUP: usize = 256;
/// Rotations waiting for the writer; callers wait for room beyond this.
const QUEUE: usize = 4096;

struct Job {
    rotation: Rotation,
    reply: oneshot::Sender<StoreResult<bool>>,
}

/// The sending side, held by the store, and the number of groups committed so far.
#[derive(Clone)]
pub(crate) struct RotationQueue {
    jobs: mpsc::Sender<Job>,
    groups: Arc<AtomicU64>,
}

impl RotationQueue {
    /// Starts the committing task on the current runtime; it ends when every clone of the
    /// queue is dropped.
    pub(crate) fn start(writer: SqlitePool) -> RotationQueue {
        let (tx, rx) = mpsc::channel(QUEUE);
        let groups = Arc::new(AtomicU64::new(0));
        tokio::spawn(commit_groups(writer, rx, Arc::clone(&groups)));
        RotationQueue { jobs: tx, groups }
    }

    /// Groups committed so far (each one transaction and one fsync).
    pub(crate) fn groups_committed(&self) -> u64 {
        self.groups.load(Ordering::Relaxed)
    }

    /// Queues one rotation and waits until the group holding it has been committed.
    pub(crate) async fn rotate(&self, rotation: &Rotation) -> StoreResult<bool> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            rotation: rotation.clone(),
            reply,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".to_owned()))?;
        answer.await.map_err(|_| {
            StoreError::Unavailable("the SQLite writer stopped before committing".to_owned())
        })?
    }
}

async fn commit_groups(writer: SqlitePool, mut queue: mpsc::Receiver<Job>, groups: Arc<AtomicU64>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        let rotations: Vec<&Rotation> = group.iter().map(|job| &job.rotation).collect();
        let outcome = commit_group(&writer, &rotations).await;
        match outcome {
            Ok(results) => {
                groups.fetch_add(1, Ordering::Relaxed);
                for (job, result) in group.drain(..).zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, size = group.len(), "a rotation group failed to commit");
                for job in group.drain(..) {
                    let _ = job.reply.send(Err(same_error(&e)));
                }
            }
        }
    }
}

/// Runs each rotation in its own savepoint (a failing one rolls back alone), then commits
/// the group. The per-rotation results count only if the commit succeeds.
async fn commit_group(
    writer: &SqlitePool,
    rotations: &[&Rotation],
) -> StoreResult<Vec<StoreResult<bool>>> {
    let mut tx = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(map_sqlx)?;
    let mut results = Vec::with_capacity(rotations.len());
    for rotation in rotations {
        let savepoint = tx.begin().await.map_err(map_sqlx)?;
        results.push(run(grants::rotate_refresh_token(Db(savepoint), rotation)).await);
    }
    tx.commit().await.map_err(map_sqlx)?;
    Ok(results)
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
