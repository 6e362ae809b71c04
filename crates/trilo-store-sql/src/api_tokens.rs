//! API tokens (`ApiTokenStore`): rows, SQL and the operations.

use time::OffsetDateTime;
use trilo_core::model::{ApiToken, TokenHash};
use trilo_core::store::StoreError;

use crate::conn::{Conn, Fail, Stmt, Tx};
use crate::convert::{hash, ms, opt_ms, opt_time, time};

pub mod sql {
    //! The SQL of API tokens, the same text on SQLite and PostgreSQL.

    macro_rules! columns {
        () => {
            "token_id, account_id, label, token_hash, created_at, expires_at, last_used_at, \
             revoked_at"
        };
    }

    pub const INSERT: &str = concat!(
        "INSERT INTO api_tokens (",
        columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    );
    pub const BY_HASH: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM api_tokens WHERE token_hash = $1"
    );
    pub const OF_ACCOUNT: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM api_tokens WHERE account_id = $1 ORDER BY created_at DESC, token_id DESC"
    );
    pub const REVOKE: &str = "UPDATE api_tokens SET revoked_at = $1 \
         WHERE account_id = $2 AND token_id = $3 AND revoked_at IS NULL";
    pub const TOUCH: &str = "UPDATE api_tokens SET last_used_at = $1 WHERE token_id = $2";
}

#[derive(sqlx::FromRow)]
pub struct ApiTokenRow {
    token_id: String,
    account_id: String,
    label: String,
    token_hash: Vec<u8>,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TryFrom<ApiTokenRow> for ApiToken {
    type Error = StoreError;

    fn try_from(r: ApiTokenRow) -> Result<Self, StoreError> {
        Ok(ApiToken {
            token_id: r.token_id,
            account_id: r.account_id,
            label: r.label,
            token_hash: hash(r.token_hash)?,
            created_at: time(r.created_at)?,
            expires_at: opt_time(r.expires_at)?,
            last_used_at: opt_time(r.last_used_at)?,
            revoked_at: opt_time(r.revoked_at)?,
        })
    }
}

pub async fn insert_api_token(mut tx: impl Tx, token: &ApiToken) -> Result<(), Fail> {
    tx.execute(
        Stmt::new(sql::INSERT)
            .bind(&token.token_id)
            .bind(&token.account_id)
            .bind(&token.label)
            .bind(token.token_hash.as_slice())
            .bind(ms(token.created_at))
            .bind(opt_ms(token.expires_at))
            .bind(opt_ms(token.last_used_at))
            .bind(opt_ms(token.revoked_at)),
    )
    .await?;
    tx.commit().await
}

pub async fn api_token_by_hash(
    mut c: impl Conn,
    token_hash: &TokenHash,
) -> Result<Option<ApiToken>, Fail> {
    let row: Option<ApiTokenRow> = c
        .fetch_optional(Stmt::new(sql::BY_HASH).bind(token_hash.as_slice()))
        .await?;
    Ok(row.map(ApiToken::try_from).transpose()?)
}

pub async fn api_tokens_of_account(
    mut c: impl Conn,
    account_id: &str,
) -> Result<Vec<ApiToken>, Fail> {
    let rows: Vec<ApiTokenRow> = c
        .fetch_all(Stmt::new(sql::OF_ACCOUNT).bind(account_id))
        .await?;
    Ok(rows
        .into_iter()
        .map(ApiToken::try_from)
        .collect::<Result<_, _>>()?)
}

pub async fn revoke_api_token(
    mut tx: impl Tx,
    account_id: &str,
    token_id: &str,
    now: OffsetDateTime,
) -> Result<bool, Fail> {
    let revoked = tx
        .execute(
            Stmt::new(sql::REVOKE)
                .bind(ms(now))
                .bind(account_id)
                .bind(token_id),
        )
        .await?;
    tx.commit().await?;
    Ok(revoked > 0)
}

pub async fn touch_api_token(
    mut tx: impl Tx,
    token_id: &str,
    at: OffsetDateTime,
) -> Result<(), Fail> {
    tx.execute(Stmt::new(sql::TOUCH).bind(ms(at)).bind(token_id))
        .await?;
    tx.commit().await
}
