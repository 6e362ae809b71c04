//! Bulk loading for the benchmark (feature `test-support`): `trilo bench --preload` fills a
//! database with a million token families before measuring. Each table's rows go in as
//! one statement per batch, every column bound as one array and spread back into rows by
//! `UNNEST`, so a batch of any size costs one round trip per table and one commit.
#![cfg(feature = "test-support")]

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Postgres, Transaction};
use trilo_core::model::{Account, AuthorizationCode, Grant, Membership, RefreshToken, TokenFamily};
use trilo_core::store::StoreError;
use trilo_store_sql::convert::{email_key, join_scopes, ms, opt_ms};
pub use trilo_store_sql::preload::Batch;

use crate::error::map_sqlx;

/// A connection for bulk inserts into a migrated database.
#[derive(Debug)]
pub struct BulkLoader {
    conn: PgConnection,
}

const INSERT_ACCOUNTS: &str = "INSERT INTO accounts (account_id, email, email_lower, name, \
     nickname, picture, zoneinfo, locale, job_title, organization, department, location, \
     status, password_hash, credential_generation, created_at) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
     $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
     $13::text[], $14::text[], $15::bigint[], $16::bigint[])";
const INSERT_MEMBERSHIPS: &str = "INSERT INTO memberships (account_id, cloud_id, \
     product_key, role, created_at) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])";
const INSERT_GRANTS: &str = "INSERT INTO grants (grant_id, app_id, account_id, scopes, \
     created_at, updated_at, revoked_at) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], \
     $6::bigint[], $7::bigint[])";
const INSERT_GRANT_SITES: &str = "INSERT INTO grant_sites (grant_id, ordinal, cloud_id) \
     SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[])";
const INSERT_FAMILIES: &str = "INSERT INTO token_families (family_id, grant_id, app_id, \
     account_id, scopes, credential_generation, created_at, absolute_expires_at, \
     head_generation, revoked_at, revoke_reason, head_issued_at, head_expires_at, \
     previous_issued_at) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
     $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::text[], \
     $12::bigint[], $13::bigint[], $14::bigint[])";
const INSERT_REFRESH_TOKENS: &str = "INSERT INTO refresh_tokens (token_hash, family_id, \
     generation, issued_at, inactivity_expires_at, rotated_at) \
     SELECT * FROM UNNEST($1::bytea[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], \
     $6::bigint[])";
const INSERT_CODES: &str = "INSERT INTO codes (code_hash, app_id, account_id, grant_id, \
     cloud_id, scopes, redirect_uri, code_challenge, nonce, created_at, expires_at, used_at, \
     family_id) \
     SELECT * FROM UNNEST($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[], \
     $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::bigint[], \
     $12::bigint[], $13::text[])";

impl BulkLoader {
    /// Connects to the (migrated) database at `url`.
    pub async fn connect(url: &str) -> Result<BulkLoader, StoreError> {
        let mut conn = PgConnectOptions::from_str(url)
            .map_err(map_sqlx)?
            // A load's statements are slow by design: no warning for each.
            .disable_statement_logging()
            .connect()
            .await
            .map_err(map_sqlx)?;
        // Benchmark rows, not anyone's data: commits need not wait for the WAL flush.
        sqlx::query("SET synchronous_commit = off")
            .execute(&mut conn)
            .await
            .map_err(map_sqlx)?;
        // Foreign-key checks are a trigger per row and most of a load's time; the rows are
        // made consistent, so skip them where the role may (superusers). Elsewhere they run.
        let _ = sqlx::query("SET session_replication_role = replica")
            .execute(&mut conn)
            .await;
        Ok(BulkLoader { conn })
    }

    /// Inserts every row of `batch` in one transaction.
    pub async fn insert(&mut self, batch: &Batch<'_>) -> Result<(), StoreError> {
        let mut tx = self.conn.begin().await.map_err(map_sqlx)?;
        insert_accounts(&mut tx, batch.accounts).await?;
        insert_memberships(&mut tx, batch.memberships).await?;
        insert_grants(&mut tx, batch.grants).await?;
        insert_families(&mut tx, batch.families).await?;
        insert_refresh_tokens(&mut tx, batch.refresh_tokens).await?;
        insert_codes(&mut tx, batch.codes).await?;
        tx.commit().await.map_err(map_sqlx)
    }

    /// Vacuums and analyzes the database after a large load, so the run measures the
    /// queries rather than autovacuum catching up with a million new rows.
    pub async fn settle(&mut self) -> Result<(), StoreError> {
        sqlx::query("VACUUM (ANALYZE)")
            .execute(&mut self.conn)
            .await
            .map_err(map_sqlx)?;
        Ok(())
    }

    /// How many token families the database holds.
    pub async fn count_families(&mut self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM token_families")
            .fetch_one(&mut self.conn)
            .await
            .map_err(map_sqlx)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

type Tx<'c> = Transaction<'c, Postgres>;

/// One column of `rows`.
fn column<'r, T, V>(rows: &'r [T], value: impl Fn(&'r T) -> V) -> Vec<V> {
    rows.iter().map(value).collect()
}

async fn insert_accounts(tx: &mut Tx<'_>, rows: &[Account]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT_ACCOUNTS)
        .bind(column(rows, |a| a.account_id.as_str()))
        .bind(column(rows, |a| a.email.as_str()))
        .bind(column(rows, |a| email_key(&a.email)))
        .bind(column(rows, |a| a.name.as_str()))
        .bind(column(rows, |a| a.nickname.as_str()))
        .bind(column(rows, |a| a.picture.as_deref()))
        .bind(column(rows, |a| a.zoneinfo.as_str()))
        .bind(column(rows, |a| a.locale.as_str()))
        .bind(column(rows, |a| a.extended_profile.job_title.as_deref()))
        .bind(column(rows, |a| a.extended_profile.organization.as_deref()))
        .bind(column(rows, |a| a.extended_profile.department.as_deref()))
        .bind(column(rows, |a| a.extended_profile.location.as_deref()))
        .bind(column(rows, |a| a.status.as_str()))
        .bind(column(rows, |a| a.password_hash.as_str()))
        .bind(column(rows, |a| a.credential_generation))
        .bind(column(rows, |a| ms(a.created_at)))
        .execute(&mut **tx)
        .await
        .map_err(map_sqlx)?;
    Ok(())
}

async fn insert_memberships(tx: &mut Tx<'_>, rows: &[Membership]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT_MEMBERSHIPS)
        .bind(column(rows, |m| m.account_id.as_str()))
        .bind(column(rows, |m| m.cloud_id.as_str()))
        .bind(column(rows, |m| m.product_key.as_str()))
        .bind(column(rows, |m| m.role.as_str()))
        .bind(column(rows, |m| ms(m.created_at)))
        .execute(&mut **tx)
        .await
        .map_err(map_sqlx)?;
    Ok(())
}

/// The grants, then their sites in the order each grant lists them.
async fn insert_grants(tx: &mut Tx<'_>, rows: &[Grant]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let scopes = rows
        .iter()
        .map(|g| join_scopes(&g.scopes))
        .collect::<Result<Vec<_>, _>>()?;
    sqlx::query(INSERT_GRANTS)
        .bind(column(rows, |g| g.grant_id.as_str()))
        .bind(column(rows, |g| g.app_id.as_str()))
        .bind(column(rows, |g| g.account_id.as_str()))
        .bind(scopes)
        .bind(column(rows, |g| ms(g.created_at)))
        .bind(column(rows, |g| ms(g.updated_at)))
        .bind(column(rows, |g| opt_ms(g.revoked_at)))
        .execute(&mut **tx)
        .await
        .map_err(map_sqlx)?;
    let sites: Vec<(&str, i64, &str)> = rows
        .iter()
        .flat_map(|g| {
            (0_i64..)
                .zip(&g.cloud_ids)
                .map(|(ordinal, cloud_id)| (g.grant_id.as_str(), ordinal, cloud_id.as_str()))
        })
        .collect();
    if sites.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT_GRANT_SITES)
        .bind(column(&sites, |s| s.0))
        .bind(column(&sites, |s| s.1))
        .bind(column(&sites, |s| s.2))
        .execute(&mut **tx)
        .await
        .map_err(map_sqlx)?;
    Ok(())
}

async fn insert_families(tx: &mut Tx<'_>, rows: &[TokenFamily]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let scopes = rows
        .iter()
        .map(|f| join_scopes(&f.scopes))
        .collect::<Result<Vec<_>, _>>()?;
    sqlx::query(INSERT_FAMILIES)
        .bind(column(rows, |f| f.family_id.as_str()))
        .bind(column(rows, |f| f.grant_id.as_str()))
        .bind(column(rows, |f| f.app_id.as_str()))
        .bind(column(rows, |f| f.account_id.as_str()))
        .bind(scopes)
        .bind(column(rows, |f| f.credential_generation))
        .bind(column(rows, |f| ms(f.created_at)))
        .bind(column(rows, |f| ms(f.absolute_expires_at)))
        .bind(column(rows, |f| f.head_generation))
        .bind(column(rows, |f| opt_ms(f.revoked_at)))
        .bind(column(rows, |f| f.revoke_reason.as_deref()))
        .bind(column(rows, |f| f.kept_head.map(|h| ms(h.issued_at))))
        .bind(column(rows, |f| {
            f.kept_head.map(|h| ms(h.inactivity_expires_at))
        }))
        .bind(column(rows, |f| {
            f.kept_head.and_then(|h| opt_ms(h.previous_issued_at))
        }))
        .execute(&mut **tx)
        .await
        .map_err(map_sqlx)?;
    Ok(())
}

async fn insert_refresh_tokens(tx: &mut Tx<'_>, rows: &[RefreshToken]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT_REFRESH_TOKENS)
        .bind(column(rows, |t| t.token_hash.as_slice()))
        .bind(column(rows, |t| t.family_id.as_str()))
        .bind(column(rows, |t| t.generation))
        .bind(column(rows, |t| ms(t.issued_at)))
        .bind(column(rows, |t| ms(t.inactivity_expires_at)))
        .bind(column(rows, |t| opt_ms(t.rotated_at)))
        .execute(&mut **tx)
        .await
        .map_err(map_sqlx)?;
    Ok(())
}

async fn insert_codes(tx: &mut Tx<'_>, rows: &[AuthorizationCode]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let scopes = rows
        .iter()
        .map(|c| join_scopes(&c.scopes))
        .collect::<Result<Vec<_>, _>>()?;
    sqlx::query(INSERT_CODES)
        .bind(column(rows, |c| c.code_hash.as_slice()))
        .bind(column(rows, |c| c.app_id.as_str()))
        .bind(column(rows, |c| c.account_id.as_str()))
        .bind(column(rows, |c| c.grant_id.as_str()))
        .bind(column(rows, |c| c.cloud_id.as_deref()))
        .bind(scopes)
        .bind(column(rows, |c| c.redirect_uri.as_deref()))
        .bind(column(rows, |c| c.code_challenge.as_deref()))
        .bind(column(rows, |c| c.nonce.as_deref()))
        .bind(column(rows, |c| ms(c.created_at)))
        .bind(column(rows, |c| ms(c.expires_at)))
        .bind(column(rows, |c| opt_ms(c.used_at)))
        .bind(column(rows, |c| c.family_id.as_deref()))
        .execute(&mut **tx)
        .await
        .map_err(map_sqlx)?;
    Ok(())
}
