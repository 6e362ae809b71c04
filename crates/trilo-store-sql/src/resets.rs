//! Password reset links (`PasswordResetStore`): a token's hash, its account, usable once
//! until it expires.

use time::OffsetDateTime;
use trilo_core::model::{PasswordReset, TokenHash};

use crate::conn::{Conn, Fail, Stmt, Tx};
use crate::convert::ms;

pub mod sql {
    //! The same text on SQLite and PostgreSQL.

    pub const INSERT: &str = "INSERT INTO password_resets (token_hash, account_id, \
         created_at, expires_at) VALUES ($1, $2, $3, $4)";
    pub const ACCOUNT_OF_LIVE: &str = "SELECT account_id FROM password_resets \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2";
    /// Compare-and-set: only the first use of a live link changes a row.
    pub const USE: &str = "UPDATE password_resets SET used_at = $2 \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2";
}

#[derive(sqlx::FromRow)]
pub struct ResetAccountRow {
    account_id: String,
}

pub async fn insert_password_reset(mut tx: impl Tx, reset: &PasswordReset) -> Result<(), Fail> {
    tx.execute(
        Stmt::new(sql::INSERT)
            .bind(reset.token_hash.as_slice())
            .bind(&reset.account_id)
            .bind(ms(reset.created_at))
            .bind(ms(reset.expires_at)),
    )
    .await?;
    tx.commit().await
}

pub async fn password_reset_account(
    mut c: impl Conn,
    token_hash: &TokenHash,
    now: OffsetDateTime,
) -> Result<Option<String>, Fail> {
    let row: Option<ResetAccountRow> = c
        .fetch_optional(
            Stmt::new(sql::ACCOUNT_OF_LIVE)
                .bind(token_hash.as_slice())
                .bind(ms(now)),
        )
        .await?;
    Ok(row.map(|r| r.account_id))
}

pub async fn use_password_reset(
    mut tx: impl Tx,
    token_hash: &TokenHash,
    now: OffsetDateTime,
) -> Result<bool, Fail> {
    let changed = tx
        .execute(
            Stmt::new(sql::USE)
                .bind(token_hash.as_slice())
                .bind(ms(now)),
        )
        .await?;
    tx.commit().await?;
    Ok(changed == 1)
}
