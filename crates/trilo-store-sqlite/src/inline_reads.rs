//! Hot single-statement reads run inline on the calling task, on read-only rusqlite
//! connections to the database file: an indexed read takes microseconds, less than the
//! two thread switches a read through sqlx's worker thread costs.
//!
//! A WAL reader never waits for the writer, so running inline does not hold up the
//! runtime; connections are opened on demand and at most [`MAX_IDLE`] are kept.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use trilo_core::store::StoreResult;

use crate::direct::map_rusqlite;

/// Idle connections kept for the next reads (about one per runtime thread).
const MAX_IDLE: usize = 8;

pub(crate) struct InlineReader {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl InlineReader {
    pub(crate) fn new(path: &Path, busy_timeout: Duration) -> Self {
        Self {
            path: path.to_owned(),
            busy_timeout,
            idle: Mutex::default(),
        }
    }

    /// Runs `read` on an idle connection, or a new one.
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let db = match idle {
            Some(db) => db,
            None => self.open().map_err(map_rusqlite)?,
        };
        let result = read(&db);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(db);
        }
        result
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let db = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        db.busy_timeout(self.busy_timeout)?;
        Ok(db)
    }
}

impl std::fmt::Debug for InlineReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}
