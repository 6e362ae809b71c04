//! Copies committed pages from the WAL into the database file on a thread of its own.
//!
//! The writing connections checkpoint when the WAL reaches [`crate::WAL_CHECKPOINT_PAGES`]
//! pages, inside their turn to write: with the token endpoint's writes that is a few times
//! a second, and each such checkpoint copied thousands of pages and synced the database
//! file while every queued refresh waited, 10 to 80 ms (the refresh's p99 and p99.9).
//! This thread runs a PASSIVE checkpoint every [`INTERVAL`]: it takes no write lock, so
//! the committer goes on committing while it copies, and when the committer's own
//! checkpoint comes due, little is left for it to copy. That checkpoint still runs in the
//! committer's turn, because only a writer that finds the whole WAL copied may start it
//! again from its beginning, which keeps the WAL at its size.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use trilo_core::store::{StoreError, StoreResult};

use crate::direct::map_rusqlite;

/// How often the thread copies what has been committed since its last pass.
const INTERVAL: Duration = Duration::from_millis(100);

/// The running checkpointer; dropping it ends the thread at its next pass.
pub(crate) struct Checkpointer {
    _running: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing the WAL of the database file at `path`.
    pub(crate) fn start(path: &Path, busy_timeout: Duration) -> StoreResult<Checkpointer> {
        let db = open(path, busy_timeout).map_err(map_rusqlite)?;
        let (running, stopped) = mpsc::channel();
        std::thread::Builder::new()
            .name("trilo-sqlite-ckpt".to_owned())
            .spawn(move || checkpoint_until_stopped(&db, &stopped))
            .map_err(|e| {
                StoreError::Unavailable(format!("starting the SQLite checkpointer: {e}"))
            })?;
        Ok(Checkpointer { _running: running })
    }
}

/// Its own connection. A checkpoint syncs the WAL before it copies and the database file
/// before it records the pages as copied, unless `synchronous` is OFF: FULL, as the
/// writers have it (H-D3).
fn open(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    db.busy_timeout(busy_timeout)?;
    db.execute_batch("PRAGMA synchronous = FULL;")?;
    // This connection never writes, so it never checkpoints by itself.
    db.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(db)
}

fn checkpoint_until_stopped(db: &Connection, stopped: &mpsc::Receiver<()>) {
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
        // PASSIVE copies what no reader still needs and never waits for a lock; a pass
        // that finds another checkpoint running leaves the work to it.
        let passed = db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        if let Err(e) = passed {
            tracing::warn!(error = %e, "a background WAL checkpoint failed");
        }
    }
}
