//! Failure counters shared by every instance (`FailureCounterStore`): one row per key and
//! fixed window, counted up in one statement.

use time::OffsetDateTime;
use trilo_core::model::TokenHash;

use crate::conn::{Conn, Fail, Stmt, Tx};
use crate::convert::ms;
use crate::events::CountRow;

pub mod sql {
    //! The same text on SQLite and PostgreSQL.

    pub const ADD: &str = "INSERT INTO failure_counters (key_hash, window_start, failures, \
         expires_at) VALUES ($1, $2, 1, $3) ON CONFLICT (key_hash, window_start) \
         DO UPDATE SET failures = failure_counters.failures + 1 RETURNING failures AS n";
    pub const COUNT: &str = "SELECT failures AS n FROM failure_counters \
         WHERE key_hash = $1 AND window_start = $2";
    pub const CLEAR: &str = "DELETE FROM failure_counters WHERE key_hash = $1";
}

pub async fn add_failure(
    mut tx: impl Tx,
    key: &TokenHash,
    window_start: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<u32, Fail> {
    let row: CountRow = tx
        .fetch_one(
            Stmt::new(sql::ADD)
                .bind(key.as_slice())
                .bind(ms(window_start))
                .bind(ms(expires_at)),
        )
        .await?;
    tx.commit().await?;
    Ok(u32::try_from(row.n()).unwrap_or(u32::MAX))
}

pub async fn failures(
    mut c: impl Conn,
    key: &TokenHash,
    window_start: OffsetDateTime,
) -> Result<u32, Fail> {
    let row: Option<CountRow> = c
        .fetch_optional(
            Stmt::new(sql::COUNT)
                .bind(key.as_slice())
                .bind(ms(window_start)),
        )
        .await?;
    Ok(row.map_or(0, |r| u32::try_from(r.n()).unwrap_or(u32::MAX)))
}

pub async fn clear_failures(mut tx: impl Tx, key: &TokenHash) -> Result<(), Fail> {
    tx.execute(Stmt::new(sql::CLEAR).bind(key.as_slice()))
        .await?;
    tx.commit().await
}
