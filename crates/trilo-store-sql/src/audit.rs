//! Signing keys (`KeyStore`) and the audit log (`AuditLog`): rows, SQL and the operations.

use time::OffsetDateTime;
use trilo_core::model::{AuditEvent, AuditQuery, KeyState, SigningKeyRecord};
use trilo_core::store::StoreError;

use crate::conn::{Conn, Fail, Stmt, Tx};
use crate::convert::{ms, parse, time};

/// `limit: 0` in an audit query means this many.
const DEFAULT_AUDIT_LIMIT: u32 = 100;

pub mod sql {
    //! The SQL of signing keys and audit events, the same text on SQLite and PostgreSQL.

    pub const SIGNING_KEYS: &str = "SELECT kid, alg, state, private_key_encrypted, public_jwk, \
         created_at, activated_at, retired_at FROM signing_keys ORDER BY created_at, kid";
    pub const INSERT_SIGNING_KEY: &str = "INSERT INTO signing_keys (kid, alg, state, \
         private_key_encrypted, public_jwk, created_at, activated_at, retired_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    /// The two steps of a rotation, each a compare-and-set on the key's state.
    pub const RETIRE_CURRENT: &str = "UPDATE signing_keys SET state = 'retired', \
         retired_at = $2 WHERE kid = $1 AND state = 'current'";
    pub const PROMOTE_NEXT: &str = "UPDATE signing_keys SET state = 'current', \
         activated_at = $2 WHERE kid = $1 AND state = 'next'";

    pub const APPEND_AUDIT: &str = "INSERT INTO audit_events (event_id, at, actor_account_id, \
         action, target, cloud_id, details) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    /// The prefix is compared byte for byte (LIKE would be case-insensitive on SQLite and
    /// would treat `_` and `%` as wildcards).
    pub const AUDIT_EVENTS: &str = "SELECT event_id, at, actor_account_id, action, target, \
         cloud_id, details FROM audit_events \
         WHERE ($1 IS NULL OR cloud_id = $1) \
         AND ($2 IS NULL OR substr(action, 1, length($2)) = $2) \
         AND ($4 IS NULL OR at >= $4) AND ($5 IS NULL OR at < $5) \
         AND ($6 IS NULL OR at < $6 OR (at = $6 AND event_id < $7)) \
         ORDER BY at DESC, event_id DESC LIMIT $3";
}

#[derive(sqlx::FromRow)]
pub struct KeyRow {
    kid: String,
    alg: String,
    state: String,
    private_key_encrypted: Vec<u8>,
    public_jwk: String,
    created_at: i64,
    activated_at: Option<i64>,
    retired_at: Option<i64>,
}

impl TryFrom<KeyRow> for SigningKeyRecord {
    type Error = StoreError;

    fn try_from(r: KeyRow) -> Result<Self, StoreError> {
        Ok(SigningKeyRecord {
            kid: r.kid,
            alg: r.alg,
            state: parse(&r.state, KeyState::parse, "key state")?,
            private_key_encrypted: r.private_key_encrypted,
            public_jwk: r.public_jwk,
            created_at: time(r.created_at)?,
            activated_at: r.activated_at.map(time).transpose()?,
            retired_at: r.retired_at.map(time).transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct AuditRow {
    event_id: String,
    at: i64,
    actor_account_id: Option<String>,
    action: String,
    target: String,
    cloud_id: Option<String>,
    details: String,
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = StoreError;

    fn try_from(r: AuditRow) -> Result<Self, StoreError> {
        Ok(AuditEvent {
            details: serde_json::from_str(&r.details).map_err(|e| {
                StoreError::Corrupt(format!("audit event {} details: {e}", r.event_id))
            })?,
            event_id: r.event_id,
            at: time(r.at)?,
            actor_account_id: r.actor_account_id,
            action: r.action,
            target: r.target,
            cloud_id: r.cloud_id,
        })
    }
}

pub async fn signing_keys(mut c: impl Conn) -> Result<Vec<SigningKeyRecord>, Fail> {
    let rows: Vec<KeyRow> = c.fetch_all(Stmt::new(sql::SIGNING_KEYS)).await?;
    Ok(rows
        .into_iter()
        .map(SigningKeyRecord::try_from)
        .collect::<Result<_, _>>()?)
}

pub async fn insert_signing_key(mut tx: impl Tx, key: &SigningKeyRecord) -> Result<(), Fail> {
    insert_key(&mut tx, key).await?;
    tx.commit().await
}

async fn insert_key(c: &mut impl Conn, key: &SigningKeyRecord) -> Result<(), Fail> {
    let inserted = c
        .execute(
            Stmt::new(sql::INSERT_SIGNING_KEY)
                .bind(&key.kid)
                .bind(&key.alg)
                .bind(key.state.as_str())
                .bind(key.private_key_encrypted.as_slice())
                .bind(&key.public_jwk)
                .bind(ms(key.created_at))
                .bind(key.activated_at.map(ms))
                .bind(key.retired_at.map(ms)),
        )
        .await;
    inserted.map(drop)
}

/// See `KeyStore::rotate_signing_keys`.
pub async fn rotate_signing_keys(
    mut tx: impl Tx,
    current_kid: &str,
    next_kid: &str,
    new_next: &SigningKeyRecord,
    now: OffsetDateTime,
) -> Result<(), Fail> {
    let rotated_elsewhere = || {
        Fail::Store(StoreError::Conflict {
            constraint: "signing_keys.rotated".to_owned(),
        })
    };
    let retired = tx
        .execute(
            Stmt::new(sql::RETIRE_CURRENT)
                .bind(current_kid)
                .bind(ms(now)),
        )
        .await?;
    if retired != 1 {
        return Err(rotated_elsewhere());
    }
    let promoted = tx
        .execute(Stmt::new(sql::PROMOTE_NEXT).bind(next_kid).bind(ms(now)))
        .await?;
    if promoted != 1 {
        return Err(rotated_elsewhere());
    }
    insert_key(&mut tx, new_next).await?;
    tx.commit().await
}

pub async fn append_audit(mut tx: impl Tx, event: &AuditEvent) -> Result<(), Fail> {
    insert_event(&mut tx, event).await?;
    tx.commit().await
}

/// Inserts one event in the caller's transaction.
pub async fn insert_event(c: &mut impl Conn, event: &AuditEvent) -> Result<(), Fail> {
    c.execute(
        Stmt::new(sql::APPEND_AUDIT)
            .bind(&event.event_id)
            .bind(ms(event.at))
            .bind(&event.actor_account_id)
            .bind(&event.action)
            .bind(&event.target)
            .bind(&event.cloud_id)
            .bind(event.details.to_string()),
    )
    .await?;
    Ok(())
}

/// Newest first, at most `query.limit` (0 means 100).
pub async fn audit_events(mut c: impl Conn, query: &AuditQuery) -> Result<Vec<AuditEvent>, Fail> {
    let limit = match query.limit {
        0 => DEFAULT_AUDIT_LIMIT,
        n => n,
    };
    let rows: Vec<AuditRow> = c
        .fetch_all(
            Stmt::new(sql::AUDIT_EVENTS)
                .bind(&query.cloud_id)
                .bind(&query.action_prefix)
                .bind(i64::from(limit))
                .bind(query.from.map(ms))
                .bind(query.until.map(ms))
                .bind(query.after_event.as_ref().map(|(at, _)| ms(*at)))
                .bind(query.after_event.as_ref().map(|(_, id)| id.as_str())),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(AuditEvent::try_from)
        .collect::<Result<_, _>>()?)
}
