//! The hot operations as direct SQLite calls through rusqlite, for the rotation
//! committer's connection and the inline readers (see `group_commit` and `inline_reads`):
//! a statement through sqlx costs two thread switches, which at thousands of requests a
//! second cost more than the statements themselves.
//!
//! The SQL and the row conversions are trilo-store-sql's, the same the sqlx path runs;
//! only the binding and the column reading are here. Writes run inside the caller's
//! transaction and leave committing to it.

use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};
use trilo_core::code_plan::{CodeExchanged, CodePlan};
use trilo_core::model::{
    AccessTokenStanding, AuditEvent, AuthorizationCode, NewFamily, NewRefreshToken, Redeemed,
    RefreshTokenState, Rotation, TokenFamily, TokenHash,
};
use trilo_core::refresh_plan::RefreshPlan;
use trilo_core::store::{Durable, Refreshed, StoreError, StoreResult};
use trilo_store_sql::audit::sql as audit_sql;
use trilo_store_sql::convert::ms;
use trilo_store_sql::grants::{AccessStandingRow, CodeRow, FamilyRow, RefreshStateRow, sql};

/// One rotation, as `trilo_store_sql::grants::rotate_refresh_token` does it: the
/// compare-and-set on the family head, the parent marked rotated and the child inserted.
/// `Ok(false)` when the compare-and-set lost, with nothing changed.
pub(crate) fn rotate(db: &Connection, rotation: &Rotation) -> StoreResult<bool> {
    let child_generation = rotation.parent_generation + 1;
    let advanced = execute(
        db,
        sql::ADVANCE_HEAD,
        params![
            child_generation,
            rotation.family_id,
            rotation.parent_generation
        ],
    )?;
    if advanced == 0 {
        return Ok(false);
    }
    let marked = execute(
        db,
        sql::MARK_ROTATED,
        params![
            ms(rotation.at),
            rotation.parent_hash.as_slice(),
            rotation.family_id,
            rotation.parent_generation
        ],
    )?;
    if marked != 1 {
        // The head generation moved without its token: refuse rather than fork the chain.
        return Err(StoreError::Corrupt(
            "the family head has no unrotated token of its generation".to_owned(),
        ));
    }
    insert_refresh_token(
        db,
        &rotation.child,
        &rotation.family_id,
        child_generation,
        rotation.at,
    )?;
    Ok(true)
}

/// The refresh grant's step: the presented token's state and, when `plan` asks for it,
/// its rotation, inside the caller's transaction.
pub(crate) fn refresh_and_rotate(
    db: &Connection,
    token_hash: &TokenHash,
    plan: &RefreshPlan,
) -> StoreResult<Option<Refreshed>> {
    let Some(state) = refresh_token_state(db, token_hash)? else {
        return Ok(None);
    };
    let rotated = match plan.rotation(&state) {
        Some(rotation) => rotate(db, &rotation)?,
        None => false,
    };
    Ok(Some(Refreshed {
        state,
        rotated,
        durable: Durable::committed(),
    }))
}

/// A code's single redemption, as `trilo_store_sql::grants::redeem_code` does it on
/// SQLite (one writer, so no row locks): the compare-and-set on the code, then the family
/// (born revoked under a revoked grant), its first refresh token and its audit event.
pub(crate) fn redeem_code(
    db: &Connection,
    code_hash: &TokenHash,
    family: &NewFamily,
    now: time::OffsetDateTime,
) -> StoreResult<Redeemed> {
    let marked = execute(
        db,
        sql::MARK_CODE_USED,
        params![ms(now), family.family_id, code_hash.as_slice()],
    )?;
    if marked == 0 {
        return Ok(match code(db, code_hash)? {
            Some(code) => Redeemed::AlreadyUsed(code),
            None => Redeemed::NotFound,
        });
    }
    let row = db
        .prepare_cached(sql::INSERT_FAMILY_OF_CODE)
        .and_then(|mut s| {
            s.query_row(
                params![
                    family.family_id,
                    ms(now),
                    ms(family.absolute_expires_at),
                    code_hash.as_slice()
                ],
                family_row,
            )
        })
        .map_err(map_rusqlite)?;
    if let Some(first) = &family.refresh_token {
        insert_refresh_token(db, first, &family.family_id, 0, now)?;
    }
    if let Some(event) = &family.issued
        && row.revoked_at.is_none()
    {
        append_audit(db, event)?;
    }
    Ok(Redeemed::First(TokenFamily::try_from(row)?))
}

/// The code grant's step: the code and, when `plan` redeems it, its redemption, inside the
/// caller's transaction.
pub(crate) fn exchange_code(
    db: &Connection,
    plan: &CodePlan,
) -> StoreResult<Option<CodeExchanged>> {
    let Some(code) = code(db, &plan.code_hash)? else {
        return Ok(None);
    };
    let redeemed = match plan.redemption(&code) {
        Some(family) => Some(redeem_code(db, &plan.code_hash, &family, plan.now)?),
        None => None,
    };
    Ok(Some(CodeExchanged { code, redeemed }))
}

/// Appends one audit event.
pub(crate) fn append_audit(db: &Connection, event: &AuditEvent) -> StoreResult<()> {
    execute(
        db,
        audit_sql::APPEND_AUDIT,
        params![
            event.event_id,
            ms(event.at),
            event.actor_account_id,
            event.action,
            event.target,
            event.cloud_id,
            event.details.to_string()
        ],
    )?;
    Ok(())
}

/// The refresh token with its family, grant liveness and account generation.
pub(crate) fn refresh_token_state(
    db: &Connection,
    token_hash: &TokenHash,
) -> StoreResult<Option<RefreshTokenState>> {
    let row = db
        .prepare_cached(sql::REFRESH_TOKEN_STATE)
        .and_then(|mut s| {
            s.query_row(params![token_hash.as_slice()], refresh_state_row)
                .optional()
        })
        .map_err(map_rusqlite)?;
    row.map(RefreshTokenState::try_from).transpose()
}

/// The family with its grant's live scopes and its account's generation.
pub(crate) fn access_token_standing(
    db: &Connection,
    family_id: &str,
) -> StoreResult<Option<AccessTokenStanding>> {
    let row = db
        .prepare_cached(sql::ACCESS_TOKEN_STANDING)
        .and_then(|mut s| {
            s.query_row(params![family_id], access_standing_row)
                .optional()
        })
        .map_err(map_rusqlite)?;
    row.map(AccessTokenStanding::try_from).transpose()
}

/// One authorization code by its hash.
pub(crate) fn code(
    db: &Connection,
    code_hash: &TokenHash,
) -> StoreResult<Option<AuthorizationCode>> {
    let row = db
        .prepare_cached(sql::CODE)
        .and_then(|mut s| {
            s.query_row(params![code_hash.as_slice()], code_row)
                .optional()
        })
        .map_err(map_rusqlite)?;
    row.map(AuthorizationCode::try_from).transpose()
}

fn insert_refresh_token(
    db: &Connection,
    token: &NewRefreshToken,
    family_id: &str,
    generation: i64,
    issued_at: time::OffsetDateTime,
) -> StoreResult<()> {
    execute(
        db,
        sql::INSERT_REFRESH_TOKEN,
        params![
            token.token_hash.as_slice(),
            family_id,
            generation,
            ms(issued_at),
            ms(token.inactivity_expires_at)
        ],
    )?;
    Ok(())
}

/// Runs one cached statement; the number of rows it changed.
fn execute(db: &Connection, sql: &str, params: impl rusqlite::Params) -> StoreResult<usize> {
    db.prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(map_rusqlite)
}

fn family_row(row: &Row<'_>) -> rusqlite::Result<FamilyRow> {
    Ok(FamilyRow {
        family_id: row.get("family_id")?,
        grant_id: row.get("grant_id")?,
        app_id: row.get("app_id")?,
        account_id: row.get("account_id")?,
        scopes: row.get("scopes")?,
        credential_generation: row.get("credential_generation")?,
        created_at: row.get("created_at")?,
        absolute_expires_at: row.get("absolute_expires_at")?,
        head_generation: row.get("head_generation")?,
        revoked_at: row.get("revoked_at")?,
        revoke_reason: row.get("revoke_reason")?,
        audience: row.get("audience")?,
    })
}

fn refresh_state_row(row: &Row<'_>) -> rusqlite::Result<RefreshStateRow> {
    Ok(RefreshStateRow {
        token_hash: row.get("token_hash")?,
        generation: row.get("generation")?,
        issued_at: row.get("issued_at")?,
        inactivity_expires_at: row.get("inactivity_expires_at")?,
        rotated_at: row.get("rotated_at")?,
        family: family_row(row)?,
        grant_live: row.get("grant_live")?,
        grant_scopes: row.get("grant_scopes")?,
        account_generation: row.get("account_generation")?,
    })
}

fn access_standing_row(row: &Row<'_>) -> rusqlite::Result<AccessStandingRow> {
    Ok(AccessStandingRow {
        family: family_row(row)?,
        grant_scopes: row.get("grant_scopes")?,
        account_generation: row.get("account_generation")?,
    })
}

fn code_row(row: &Row<'_>) -> rusqlite::Result<CodeRow> {
    Ok(CodeRow {
        code_hash: row.get("code_hash")?,
        app_id: row.get("app_id")?,
        account_id: row.get("account_id")?,
        grant_id: row.get("grant_id")?,
        cloud_id: row.get("cloud_id")?,
        scopes: row.get("scopes")?,
        redirect_uri: row.get("redirect_uri")?,
        code_challenge: row.get("code_challenge")?,
        nonce: row.get("nonce")?,
        auth_time: row.get("auth_time")?,
        created_at: row.get("created_at")?,
        expires_at: row.get("expires_at")?,
        used_at: row.get("used_at")?,
        family_id: row.get("family_id")?,
        audience: row.get("audience")?,
    })
}

/// rusqlite's errors as the trait reports them, the kinds the sqlx path maps the same way.
pub(crate) fn map_rusqlite(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(failure, message)
            if failure.code == ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict {
                constraint: message.clone().unwrap_or_else(|| e.to_string()),
            }
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::InvalidColumnName(_) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(format!("database error: {e}")),
    }
}
