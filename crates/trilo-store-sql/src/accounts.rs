//! Accounts and browser sessions (`AccountStore`, `SessionStore`): rows, SQL and the
//! operations.

use time::OffsetDateTime;
use trilo_core::model::{Account, AccountStatus, ExtendedProfile, Session, TokenHash};
use trilo_core::store::StoreError;

use crate::conn::{Conn, Fail, Stmt, Tx};
use crate::convert::{email_key, hash, ms, parse, time};

pub mod sql {
    //! The SQL of accounts and sessions, the same text on SQLite and PostgreSQL.

    macro_rules! account_columns {
        () => {
            "account_id, email, name, nickname, picture, zoneinfo, locale, job_title, \
             organization, department, location, status, password_hash, credential_generation, \
             created_at"
        };
    }

    pub const INSERT_ACCOUNT: &str = "INSERT INTO accounts (account_id, email, email_lower, name, \
         nickname, picture, zoneinfo, locale, job_title, organization, department, location, \
         status, password_hash, credential_generation, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";
    pub const ACCOUNT: &str = concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE account_id = $1"
    );
    pub const ACCOUNT_BY_EMAIL: &str = concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE email_lower = $1"
    );
    pub const LIST_ACCOUNTS: &str = concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts ORDER BY created_at, account_id"
    );
    pub const SET_PASSWORD: &str = "UPDATE accounts SET password_hash = $1, \
         credential_generation = credential_generation + 1 WHERE account_id = $2";
    pub const DELETE_OTHER_SESSIONS: &str =
        "DELETE FROM sessions WHERE account_id = $1 AND id_hash <> $2";
    pub const DELETE_SESSIONS: &str = "DELETE FROM sessions WHERE account_id = $1";
    pub const REVOKE_FAMILIES_OF_ACCOUNT: &str = "UPDATE token_families SET revoked_at = $1, \
         revoke_reason = 'password_changed' WHERE account_id = $2 AND revoked_at IS NULL";

    pub const INSERT_SESSION: &str = "INSERT INTO sessions (id_hash, account_id, csrf_token, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
    pub const SESSION: &str = "SELECT id_hash, account_id, csrf_token, created_at, expires_at \
         FROM sessions WHERE id_hash = $1 AND expires_at > $2";
    pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id_hash = $1";
    pub const SESSIONS_OF_ACCOUNT: &str = "SELECT id_hash, account_id, csrf_token, created_at, \
         expires_at FROM sessions WHERE account_id = $1 AND expires_at > $2 \
         ORDER BY created_at DESC";
}

#[derive(sqlx::FromRow)]
pub struct AccountRow {
    account_id: String,
    email: String,
    name: String,
    nickname: String,
    picture: Option<String>,
    zoneinfo: String,
    locale: String,
    job_title: Option<String>,
    organization: Option<String>,
    department: Option<String>,
    location: Option<String>,
    status: String,
    password_hash: String,
    credential_generation: i64,
    created_at: i64,
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;

    fn try_from(r: AccountRow) -> Result<Self, StoreError> {
        Ok(Account {
            account_id: r.account_id,
            email: r.email,
            name: r.name,
            nickname: r.nickname,
            picture: r.picture,
            zoneinfo: r.zoneinfo,
            locale: r.locale,
            extended_profile: ExtendedProfile {
                job_title: r.job_title,
                organization: r.organization,
                department: r.department,
                location: r.location,
            },
            status: parse(&r.status, AccountStatus::parse, "account status")?,
            password_hash: r.password_hash,
            credential_generation: r.credential_generation,
            created_at: time(r.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct SessionRow {
    id_hash: Vec<u8>,
    account_id: String,
    csrf_token: String,
    created_at: i64,
    expires_at: i64,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(Session {
            id_hash: hash(r.id_hash)?,
            account_id: r.account_id,
            csrf_token: r.csrf_token,
            created_at: time(r.created_at)?,
            expires_at: time(r.expires_at)?,
        })
    }
}

pub async fn insert_account(mut tx: impl Tx, a: &Account) -> Result<(), Fail> {
    tx.execute(
        Stmt::new(sql::INSERT_ACCOUNT)
            .bind(&a.account_id)
            .bind(&a.email)
            .bind(email_key(&a.email))
            .bind(&a.name)
            .bind(&a.nickname)
            .bind(&a.picture)
            .bind(&a.zoneinfo)
            .bind(&a.locale)
            .bind(&a.extended_profile.job_title)
            .bind(&a.extended_profile.organization)
            .bind(&a.extended_profile.department)
            .bind(&a.extended_profile.location)
            .bind(a.status.as_str())
            .bind(&a.password_hash)
            .bind(a.credential_generation)
            .bind(ms(a.created_at)),
    )
    .await?;
    tx.commit().await
}

pub async fn account(mut c: impl Conn, account_id: &str) -> Result<Option<Account>, Fail> {
    let row: Option<AccountRow> = c
        .fetch_optional(Stmt::new(sql::ACCOUNT).bind(account_id))
        .await?;
    Ok(row.map(Account::try_from).transpose()?)
}

pub async fn account_by_email(mut c: impl Conn, email: &str) -> Result<Option<Account>, Fail> {
    let row: Option<AccountRow> = c
        .fetch_optional(Stmt::new(sql::ACCOUNT_BY_EMAIL).bind(email_key(email)))
        .await?;
    Ok(row.map(Account::try_from).transpose()?)
}

pub async fn list_accounts(mut c: impl Conn) -> Result<Vec<Account>, Fail> {
    let rows: Vec<AccountRow> = c.fetch_all(Stmt::new(sql::LIST_ACCOUNTS)).await?;
    Ok(rows
        .into_iter()
        .map(Account::try_from)
        .collect::<Result<_, _>>()?)
}

pub async fn change_password(
    mut tx: impl Tx,
    account_id: &str,
    password_hash: &str,
    keep_session: Option<&TokenHash>,
    now: OffsetDateTime,
) -> Result<Account, Fail> {
    let updated = tx
        .execute(
            Stmt::new(sql::SET_PASSWORD)
                .bind(password_hash)
                .bind(account_id),
        )
        .await?;
    if updated == 0 {
        return Err(StoreError::NotFound.into());
    }
    let sessions = match keep_session {
        Some(keep) => Stmt::new(sql::DELETE_OTHER_SESSIONS)
            .bind(account_id)
            .bind(keep.as_slice()),
        None => Stmt::new(sql::DELETE_SESSIONS).bind(account_id),
    };
    tx.execute(sessions).await?;
    tx.execute(
        Stmt::new(sql::REVOKE_FAMILIES_OF_ACCOUNT)
            .bind(ms(now))
            .bind(account_id),
    )
    .await?;
    let row: AccountRow = tx
        .fetch_one(Stmt::new(sql::ACCOUNT).bind(account_id))
        .await?;
    tx.commit().await?;
    Ok(Account::try_from(row)?)
}

pub async fn insert_session(mut tx: impl Tx, s: &Session) -> Result<(), Fail> {
    tx.execute(
        Stmt::new(sql::INSERT_SESSION)
            .bind(s.id_hash.as_slice())
            .bind(&s.account_id)
            .bind(&s.csrf_token)
            .bind(ms(s.created_at))
            .bind(ms(s.expires_at)),
    )
    .await?;
    tx.commit().await
}

/// The session, if it exists and has not expired at `now`.
pub async fn session(
    mut c: impl Conn,
    id_hash: &TokenHash,
    now: OffsetDateTime,
) -> Result<Option<Session>, Fail> {
    let row: Option<SessionRow> = c
        .fetch_optional(
            Stmt::new(sql::SESSION)
                .bind(id_hash.as_slice())
                .bind(ms(now)),
        )
        .await?;
    Ok(row.map(Session::try_from).transpose()?)
}

/// The account's live sessions, newest first.
pub async fn sessions_of_account(
    mut c: impl Conn,
    account_id: &str,
    now: OffsetDateTime,
) -> Result<Vec<Session>, Fail> {
    let rows: Vec<SessionRow> = c
        .fetch_all(
            Stmt::new(sql::SESSIONS_OF_ACCOUNT)
                .bind(account_id)
                .bind(ms(now)),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(Session::try_from)
        .collect::<Result<_, _>>()?)
}

/// Ends every session of the account but `keep`; returns how many ended.
pub async fn end_other_sessions(
    mut tx: impl Tx,
    account_id: &str,
    keep: &TokenHash,
) -> Result<u64, Fail> {
    let ended = tx
        .execute(
            Stmt::new(sql::DELETE_OTHER_SESSIONS)
                .bind(account_id)
                .bind(keep.as_slice()),
        )
        .await?;
    tx.commit().await?;
    Ok(ended)
}

pub async fn delete_session(mut tx: impl Tx, id_hash: &TokenHash) -> Result<(), Fail> {
    tx.execute(Stmt::new(sql::DELETE_SESSION).bind(id_hash.as_slice()))
        .await?;
    tx.commit().await
}
