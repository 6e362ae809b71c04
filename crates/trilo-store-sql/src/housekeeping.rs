//! The janitor's deletes (`Housekeeping`): one bounded batch per statement, each found
//! through an index on its cutoff column (migration 0013), so a batch costs the same in a
//! table of a thousand rows or a billion.

use trilo_core::store::Sweep;

use crate::conn::{Fail, Stmt, Tx};
use crate::convert::ms;

pub mod sql {
    //! The same text on SQLite and PostgreSQL: `DELETE … LIMIT` is not portable, a key
    //! subquery with `LIMIT` is.

    pub const EXPIRED_CODES: &str = "DELETE FROM codes WHERE code_hash IN \
         (SELECT code_hash FROM codes WHERE expires_at < $1 LIMIT $2)";
    pub const EXPIRED_SESSIONS: &str = "DELETE FROM sessions WHERE id_hash IN \
         (SELECT id_hash FROM sessions WHERE expires_at < $1 LIMIT $2)";
    pub const DEAD_REFRESH_TOKENS: &str = "DELETE FROM refresh_tokens \
         WHERE (family_id, generation) IN (SELECT family_id, generation FROM refresh_tokens \
         WHERE inactivity_expires_at < $1 LIMIT $2)";
    /// Their refresh tokens go with them: by the key's cascade on SQLite, by the trigger of
    /// migration 0019 on PostgreSQL.
    pub const REVOKED_FAMILIES: &str = "DELETE FROM token_families WHERE family_id IN \
         (SELECT family_id FROM token_families WHERE revoked_at < $1 LIMIT $2)";
    pub const EXPIRED_FAMILIES: &str = "DELETE FROM token_families WHERE family_id IN \
         (SELECT family_id FROM token_families WHERE absolute_expires_at < $1 LIMIT $2)";
    pub const ENDED_FAILURE_WINDOWS: &str = "DELETE FROM failure_counters WHERE \
         (key_hash, window_start) IN (SELECT key_hash, window_start FROM failure_counters \
         WHERE expires_at < $1 LIMIT $2)";
    pub const EXPIRED_PASSWORD_RESETS: &str = "DELETE FROM password_resets WHERE token_hash IN \
         (SELECT token_hash FROM password_resets WHERE expires_at < $1 LIMIT $2)";
    pub const RETIRED_KEYS: &str = "DELETE FROM signing_keys WHERE kid IN \
         (SELECT kid FROM signing_keys WHERE state = 'retired' AND retired_at < $1 LIMIT $2)";
}

pub async fn sweep(mut tx: impl Tx, sweep: Sweep, limit: u32) -> Result<u64, Fail> {
    let (statement, cutoff) = match sweep {
        Sweep::ExpiredCodes(t) => (sql::EXPIRED_CODES, t),
        Sweep::ExpiredSessions(t) => (sql::EXPIRED_SESSIONS, t),
        Sweep::DeadRefreshTokens(t) => (sql::DEAD_REFRESH_TOKENS, t),
        Sweep::RevokedFamilies(t) => (sql::REVOKED_FAMILIES, t),
        Sweep::ExpiredFamilies(t) => (sql::EXPIRED_FAMILIES, t),
        Sweep::RetiredKeys(t) => (sql::RETIRED_KEYS, t),
        Sweep::EndedFailureWindows(t) => (sql::ENDED_FAILURE_WINDOWS, t),
        Sweep::ExpiredPasswordResets(t) => (sql::EXPIRED_PASSWORD_RESETS, t),
    };
    let removed = tx
        .execute(Stmt::new(statement).bind(ms(cutoff)).bind(i64::from(limit)))
        .await?;
    tx.commit().await?;
    Ok(removed)
}
