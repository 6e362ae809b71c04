//! Password reset links (`PasswordResetStore`): a token's hash, its account, usable once
//! until it expires.

use time::OffsetDateTime;
use trilo_core::model::{Account, PasswordReset, TokenHash};

use crate::accounts::{AccountRow, sql as accounts_sql};
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
    /// Only an account still `invited` is activated (a second acceptance changes none).
    pub const ACTIVATE_INVITED: &str = "UPDATE accounts SET name = $1, password_hash = $2, \
         status = 'active' WHERE account_id = $3 AND status = 'invited'";
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

/// See `PasswordResetStore::accept_invitation`: both changes or neither (an early return
/// drops the transaction, which rolls it back).
pub async fn accept_invitation(
    mut tx: impl Tx,
    token_hash: &TokenHash,
    now: OffsetDateTime,
    name: &str,
    password_hash: &str,
) -> Result<Option<Account>, Fail> {
    let Some(row) = tx
        .fetch_optional::<ResetAccountRow>(
            Stmt::new(sql::ACCOUNT_OF_LIVE)
                .bind(token_hash.as_slice())
                .bind(ms(now)),
        )
        .await?
    else {
        return Ok(None);
    };
    let used = tx
        .execute(
            Stmt::new(sql::USE)
                .bind(token_hash.as_slice())
                .bind(ms(now)),
        )
        .await?;
    let activated = tx
        .execute(
            Stmt::new(sql::ACTIVATE_INVITED)
                .bind(name)
                .bind(password_hash)
                .bind(&row.account_id),
        )
        .await?;
    if used != 1 || activated != 1 {
        return Ok(None);
    }
    let account: AccountRow = tx
        .fetch_one(Stmt::new(accounts_sql::ACCOUNT).bind(&row.account_id))
        .await?;
    tx.commit().await?;
    Ok(Some(Account::try_from(account)?))
}
