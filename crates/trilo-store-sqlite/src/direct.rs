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
    RefreshTokenKey, RefreshTokenState, Rotation, TokenFamily, TokenHash, TokenKeeping,
};
use trilo_core::refresh_plan::RefreshPlan;
use trilo_core::store::{Durable, Refreshed, StoreError, StoreResult};
use trilo_store_sql::audit::sql as audit_sql;
use trilo_store_sql::convert::ms;
use trilo_store_sql::grants::{
    AccessStandingRow, CodeRow, FamilyRow, KeptStateRow, RefreshStateRow, sql,
};

/// One rotation, as `trilo_store_sql::grants::rotate_refresh_token` does it: the
/// compare-and-set on the family head, with the head's times for a kept token, or the
/// parent marked rotated and the child inserted for one with rows. `Ok(false)` when the
/// compare-and-set lost, with nothing changed.
pub(crate) fn rotate(db: &Connection, rotation: &Rotation) -> StoreResult<bool> {
    let child_generation = rotation.parent_generation + 1;
    if rotation.child.kept == TokenKeeping::Family {
        let advanced = execute(
            db,
            sql::ADVANCE_KEPT_HEAD,
            params![
                child_generation,
                ms(rotation.at),
                ms(rotation.child.inactivity_expires_at),
                rotation.family_id,
                rotation.parent_generation
            ],
        )?;
        return Ok(advanced == 1);
    }
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
    plan: &RefreshPlan,
) -> StoreResult<Option<Refreshed>> {
    let Some(state) = refresh_token_state(db, &plan.parent)? else {
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
                    family.kept_head_expiry().map(ms),
                    code_hash.as_slice()
                ],
                family_row,
            )
        })
        .map_err(map_rusqlite)?;
    if let Some(first) = family.stored_first_token() {
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

/// The refresh token at `key` (when its hash matches, for a stored one) with its family,
/// grant liveness and account generation, as `trilo_store_sql::grants::refresh_token`
/// reads it.
pub(crate) fn refresh_token_state(
    db: &Connection,
    key: &RefreshTokenKey,
) -> StoreResult<Option<RefreshTokenState>> {
    if key.kept == TokenKeeping::Family {
        let row = db
            .prepare_cached(sql::KEPT_TOKEN_STATE)
            .and_then(|mut s| {
                s.query_row(params![key.family_id], kept_state_row)
                    .optional()
            })
            .map_err(map_rusqlite)?;
        return Ok(row.map(|row| row.state(key)).transpose()?.flatten());
    }
    let row = db
        .prepare_cached(sql::REFRESH_TOKEN_STATE)
        .and_then(|mut s| {
            s.query_row(
                params![key.family_id, key.generation, key.token_hash.as_slice()],
                refresh_state_row,
            )
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

/// A row's columns read in the order its statement selects them, by position: a read by
/// name scans every column's name (with 21 columns, about 4 % of the committer's time).
/// Each read names its column, and debug builds (every test) check the name, which pins
/// these readers to trilo-store-sql's column lists.
struct Columns<'a, 'r> {
    row: &'a Row<'r>,
    next: usize,
}

impl<'a, 'r> Columns<'a, 'r> {
    fn of(row: &'a Row<'r>) -> Self {
        Columns { row, next: 0 }
    }

    fn next<T: rusqlite::types::FromSql>(&mut self, name: &str) -> rusqlite::Result<T> {
        let index = self.next;
        self.next += 1;
        debug_assert_eq!(
            self.row.as_ref().column_name(index).ok(),
            Some(name),
            "column {index} of the statement"
        );
        self.row.get(index)
    }
}

fn family_row(row: &Row<'_>) -> rusqlite::Result<FamilyRow> {
    family_columns(&mut Columns::of(row))
}

fn family_columns(c: &mut Columns<'_, '_>) -> rusqlite::Result<FamilyRow> {
    Ok(FamilyRow {
        family_id: c.next("family_id")?,
        grant_id: c.next("grant_id")?,
        app_id: c.next("app_id")?,
        account_id: c.next("account_id")?,
        scopes: c.next("scopes")?,
        credential_generation: c.next("credential_generation")?,
        created_at: c.next("created_at")?,
        absolute_expires_at: c.next("absolute_expires_at")?,
        head_generation: c.next("head_generation")?,
        revoked_at: c.next("revoked_at")?,
        revoke_reason: c.next("revoke_reason")?,
        audience: c.next("audience")?,
        head_issued_at: c.next("head_issued_at")?,
        head_expires_at: c.next("head_expires_at")?,
        previous_issued_at: c.next("previous_issued_at")?,
    })
}

fn kept_state_row(row: &Row<'_>) -> rusqlite::Result<KeptStateRow> {
    kept_state_columns(&mut Columns::of(row))
}

fn kept_state_columns(c: &mut Columns<'_, '_>) -> rusqlite::Result<KeptStateRow> {
    Ok(KeptStateRow {
        family: family_columns(c)?,
        grant_live: c.next("grant_live")?,
        grant_scopes: c.next("grant_scopes")?,
        account_generation: c.next("account_generation")?,
    })
}

fn refresh_state_row(row: &Row<'_>) -> rusqlite::Result<RefreshStateRow> {
    let mut c = Columns::of(row);
    Ok(RefreshStateRow {
        token_hash: c.next("token_hash")?,
        generation: c.next("generation")?,
        issued_at: c.next("issued_at")?,
        inactivity_expires_at: c.next("inactivity_expires_at")?,
        rotated_at: c.next("rotated_at")?,
        family_state: kept_state_columns(&mut c)?,
    })
}

fn access_standing_row(row: &Row<'_>) -> rusqlite::Result<AccessStandingRow> {
    let mut c = Columns::of(row);
    Ok(AccessStandingRow {
        family: family_columns(&mut c)?,
        grant_scopes: c.next("grant_scopes")?,
        account_generation: c.next("account_generation")?,
    })
}

fn code_row(row: &Row<'_>) -> rusqlite::Result<CodeRow> {
    let mut c = Columns::of(row);
    Ok(CodeRow {
        code_hash: c.next("code_hash")?,
        app_id: c.next("app_id")?,
        account_id: c.next("account_id")?,
        grant_id: c.next("grant_id")?,
        cloud_id: c.next("cloud_id")?,
        scopes: c.next("scopes")?,
        redirect_uri: c.next("redirect_uri")?,
        code_challenge: c.next("code_challenge")?,
        nonce: c.next("nonce")?,
        auth_time: c.next("auth_time")?,
        created_at: c.next("created_at")?,
        expires_at: c.next("expires_at")?,
        used_at: c.next("used_at")?,
        family_id: c.next("family_id")?,
        audience: c.next("audience")?,
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
