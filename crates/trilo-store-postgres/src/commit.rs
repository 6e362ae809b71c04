//! Commits whose answer may be lost. A write transaction's `COMMIT` can take effect on the
//! server while the connection breaks before its answer arrives (a network failure, a
//! failover at the worst moment). Running the whole operation again would then meet its
//! own rows: a sign-up would be told its e-mail address is taken, a consent that its code
//! exists. So the store's `write` commits itself, having asked the transaction's id first,
//! and when the answer is lost it asks the database what became of that transaction
//! (`pg_xact_status`): committed, the operation's result stands; aborted, it runs again.
//!
//! The shared operations call [`Tx::commit`] as on any backend; here that only hands the
//! transaction back to `PgStore::write`, which commits it once the operation is done.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use sqlx::postgres::PgPool;
use sqlx::{PgConnection, Postgres, Transaction};
use tokio::sync::oneshot;
use trilo_core::store::StoreError;
use trilo_store_sql::conn::{Fail, Tx};

use crate::PgStore;
use crate::conn::Db;

/// The transaction a write operation runs in (`Backend::Write`): its statements run on it,
/// and its [`Tx::commit`] hands it back to the store to be committed.
pub struct Committable {
    tx: Transaction<'static, Postgres>,
    hand_back: oneshot::Sender<Transaction<'static, Postgres>>,
}

/// Where `PgStore::write` receives the transaction the operation asked to commit; nothing
/// arrives when the operation ended without committing (its transaction rolled back).
pub(crate) type HandedBack = oneshot::Receiver<Transaction<'static, Postgres>>;

impl Committable {
    pub(crate) fn new(tx: Transaction<'static, Postgres>) -> (Db<Committable>, HandedBack) {
        let (hand_back, handed_back) = oneshot::channel();
        (Db(Committable { tx, hand_back }), handed_back)
    }
}

impl Deref for Committable {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for Committable {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

impl Tx for Db<Committable> {
    async fn commit(self) -> Result<(), Fail> {
        let Committable { tx, hand_back } = self.0;
        // The receiver waits in `PgStore::write` for as long as the operation runs.
        hand_back.send(tx).map_err(|_| {
            Fail::Store(StoreError::Unavailable(
                "a write transaction outlived its operation".to_owned(),
            ))
        })
    }
}

/// Whether the database can say what became of a transaction: `pg_xact_status` and
/// `pg_current_xact_id_if_assigned` (PostgreSQL 13 and later). Asked once, as the store
/// connects.
pub(crate) async fn database_tells_fates(pool: &PgPool) -> bool {
    let told = sqlx::query("SELECT pg_xact_status(pg_current_xact_id_if_assigned())")
        .execute(pool)
        .await
        .is_ok();
    if !told {
        tracing::warn!(
            "this database cannot say what became of a transaction (no pg_xact_status): a \
             write whose COMMIT loses its answer runs again and may then report a conflict \
             with its own rows"
        );
    }
    told
}

/// A transaction's id and its backend's process, asked for before its `COMMIT`.
struct Identity {
    xid: String,
    pid: i32,
}

/// What became of a transaction whose `COMMIT` got no answer.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    Committed,
    Aborted,
    InProgress,
}

impl Fate {
    fn of_status(status: Option<&str>) -> Result<Fate, Fail> {
        match status {
            Some("committed") => Ok(Fate::Committed),
            Some("aborted") => Ok(Fate::Aborted),
            Some("in progress") => Ok(Fate::InProgress),
            // NULL: the id is too old for the server to remember, which a moment after
            // the commit it never is.
            other => Err(unknown_outcome(&format!("its status read {other:?}"))),
        }
    }
}

/// Pauses between two questions about a transaction still in progress: its backend may
/// still be writing the commit, or not yet have noticed that its client is gone.
const PATIENCE_MS: [u64; 6] = [1, 2, 4, 8, 16, 32];

fn unknown_outcome(why: &str) -> Fail {
    Fail::Store(StoreError::Unavailable(format!(
        "the database's answer to a commit was lost and its outcome is unknown ({why}); \
         the change may have been saved"
    )))
}

impl PgStore {
    /// Commits `tx`. When the answer is lost, what the database says became of it decides:
    /// committed is `Ok`, aborted is the connection's error (the operation runs again).
    pub(crate) async fn commit_and_learn(
        &self,
        mut tx: Transaction<'static, Postgres>,
    ) -> Result<(), Fail> {
        if !self.tells_fates {
            return Ok(tx.commit().await?);
        }
        // A transaction that wrote nothing has no id, and nothing a lost answer could lose:
        // asking for one would make its commit write and sync a record of its own.
        let (xid, pid): (Option<String>, i32) =
            sqlx::query_as("SELECT pg_current_xact_id_if_assigned()::text, pg_backend_pid()")
                .fetch_one(&mut *tx)
                .await?;
        let Some(xid) = xid else {
            return Ok(tx.commit().await?);
        };
        match tx.commit().await {
            Err(sqlx::Error::Io(lost)) => {
                let identity = Identity { xid, pid };
                match self.fate_of(&identity).await? {
                    Fate::Committed => {
                        tracing::info!(
                            "a commit's answer was lost; the database committed it, so it stands"
                        );
                        Ok(())
                    }
                    _ => Err(Fail::Sql(sqlx::Error::Io(lost))),
                }
            }
            done => Ok(done?),
        }
    }

    /// The transaction's fate once it is settled. One still in progress after
    /// [`PATIENCE_MS`] has a backend waiting on a client that is gone (a connection broken
    /// without a word): that backend is ended, so what it has not committed it never will.
    async fn fate_of(&self, identity: &Identity) -> Result<Fate, Fail> {
        if let Some(settled) = self.settled_fate(identity).await? {
            return Ok(settled);
        }
        self.end_backend(identity).await?;
        self.settled_fate(identity)
            .await?
            .ok_or_else(|| unknown_outcome("it was still in progress after its backend was ended"))
    }

    /// The transaction's fate once it is settled, asked again after each of the
    /// [`PATIENCE_MS`]; `None` while it is still in progress after the last.
    async fn settled_fate(&self, identity: &Identity) -> Result<Option<Fate>, Fail> {
        for pause in PATIENCE_MS {
            match self.status_of(identity).await? {
                Fate::InProgress => tokio::time::sleep(Duration::from_millis(pause)).await,
                settled => return Ok(Some(settled)),
            }
        }
        Ok(None)
    }

    async fn status_of(&self, identity: &Identity) -> Result<Fate, Fail> {
        let status: Option<String> = self
            .retry(|| async {
                Ok(sqlx::query_scalar("SELECT pg_xact_status($1::text::xid8)")
                    .bind(&identity.xid)
                    .fetch_one(&self.pool)
                    .await?)
            })
            .await
            .map_err(Fail::Store)?;
        Fate::of_status(status.as_deref())
    }

    /// Ends the backend that runs the transaction, and only while it does: a process id
    /// can be reused, and `backend_xid` holds the id's low 32 bits.
    async fn end_backend(&self, identity: &Identity) -> Result<(), Fail> {
        self.retry(|| async {
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                  WHERE pid = $1 \
                    AND backend_xid::text::int8 = $2::text::int8 % 4294967296",
            )
            .bind(identity.pid)
            .bind(&identity.xid)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
        .map_err(Fail::Store)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn statuses_name_their_fates() {
        assert_eq!(Fate::of_status(Some("committed")).unwrap(), Fate::Committed);
        assert_eq!(Fate::of_status(Some("aborted")).unwrap(), Fate::Aborted);
        assert_eq!(
            Fate::of_status(Some("in progress")).unwrap(),
            Fate::InProgress
        );
        assert!(matches!(
            Fate::of_status(None),
            Err(Fail::Store(StoreError::Unavailable(why))) if why.contains("outcome is unknown")
        ));
    }
}
