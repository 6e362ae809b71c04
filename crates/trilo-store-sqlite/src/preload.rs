//! Bulk loading for the benchmark (feature `test-support`): `trilo bench --preload` fills a
//! database with a million token families before measuring. One store call per row would
//! take hours, so rows go in many to a statement and many statements to a transaction, on
//! a connection of the loader's own.
#![cfg(feature = "test-support")]

use std::path::Path;
use std::time::Duration;

use sqlx::query_builder::Separated;
use sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Sqlite, SqliteConnection};
use trilo_core::store::StoreError;
use trilo_store_sql::convert::{email_key, join_scopes, ms, opt_ms};
pub use trilo_store_sql::preload::Batch;

use crate::error::map_sqlx;

/// SQLite's bound on `?` parameters in one statement (`SQLITE_MAX_VARIABLE_NUMBER`).
const MAX_PARAMS: usize = 32_766;

/// A connection for bulk inserts into a migrated database file.
#[derive(Debug)]
pub struct BulkLoader {
    conn: SqliteConnection,
}

impl BulkLoader {
    /// Opens the database at `path` (already created and migrated by the store).
    pub async fn open(path: &Path) -> Result<BulkLoader, StoreError> {
        let conn = SqliteConnectOptions::new()
            .filename(path)
            .foreign_keys(true)
            // The store's own connections may hold the write lock for a moment.
            .busy_timeout(Duration::from_secs(30))
            // Benchmark rows, not anyone's data: a power loss means loading again, so the
            // loader skips the per-commit fsync the store insists on.
            .synchronous(SqliteSynchronous::Normal)
            // Room for the indexes' hot pages (KiB when negative).
            .pragma("cache_size", "-262144")
            // A load's statements are slow by design: no warning for each.
            .disable_statement_logging()
            .connect()
            .await
            .map_err(map_sqlx)?;
        Ok(BulkLoader { conn })
    }

    /// Inserts every row of `batch` in one transaction.
    pub async fn insert(&mut self, batch: &Batch<'_>) -> Result<(), StoreError> {
        check_scopes(batch)?;
        let mut tx = self
            .conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_sqlx)?;
        insert_rows(&mut tx, ACCOUNTS, batch.accounts, |row, a| {
            row.push_bind(a.account_id.as_str())
                .push_bind(a.email.as_str())
                .push_bind(email_key(&a.email))
                .push_bind(a.name.as_str())
                .push_bind(a.nickname.as_str())
                .push_bind(a.picture.as_deref())
                .push_bind(a.zoneinfo.as_str())
                .push_bind(a.locale.as_str())
                .push_bind(a.extended_profile.job_title.as_deref())
                .push_bind(a.extended_profile.organization.as_deref())
                .push_bind(a.extended_profile.department.as_deref())
                .push_bind(a.extended_profile.location.as_deref())
                .push_bind(a.status.as_str())
                .push_bind(a.password_hash.as_str())
                .push_bind(a.credential_generation)
                .push_bind(ms(a.created_at));
        })
        .await?;
        insert_rows(&mut tx, MEMBERSHIPS, batch.memberships, |row, m| {
            row.push_bind(m.account_id.as_str())
                .push_bind(m.cloud_id.as_str())
                .push_bind(m.product_key.as_str())
                .push_bind(m.role.as_str())
                .push_bind(ms(m.created_at));
        })
        .await?;
        insert_rows(&mut tx, GRANTS, batch.grants, |row, g| {
            row.push_bind(g.grant_id.as_str())
                .push_bind(g.app_id.as_str())
                .push_bind(g.account_id.as_str())
                .push_bind(g.scopes.join(" "))
                .push_bind(ms(g.created_at))
                .push_bind(ms(g.updated_at))
                .push_bind(opt_ms(g.revoked_at));
        })
        .await?;
        let sites: Vec<(&str, i64, &str)> = batch
            .grants
            .iter()
            .flat_map(|g| {
                (0_i64..)
                    .zip(&g.cloud_ids)
                    .map(|(ordinal, cloud_id)| (g.grant_id.as_str(), ordinal, cloud_id.as_str()))
            })
            .collect();
        insert_rows(
            &mut tx,
            GRANT_SITES,
            &sites,
            |row, (grant_id, ordinal, cloud_id)| {
                row.push_bind(*grant_id)
                    .push_bind(*ordinal)
                    .push_bind(*cloud_id);
            },
        )
        .await?;
        insert_rows(&mut tx, FAMILIES, batch.families, |row, f| {
            row.push_bind(f.family_id.as_str())
                .push_bind(f.grant_id.as_str())
                .push_bind(f.app_id.as_str())
                .push_bind(f.account_id.as_str())
                .push_bind(f.scopes.join(" "))
                .push_bind(f.credential_generation)
                .push_bind(ms(f.created_at))
                .push_bind(ms(f.absolute_expires_at))
                .push_bind(f.head_generation)
                .push_bind(opt_ms(f.revoked_at))
                .push_bind(f.revoke_reason.as_deref())
                .push_bind(f.kept_head.map(|h| ms(h.issued_at)))
                .push_bind(f.kept_head.map(|h| ms(h.inactivity_expires_at)))
                .push_bind(f.kept_head.and_then(|h| opt_ms(h.previous_issued_at)));
        })
        .await?;
        insert_rows(&mut tx, REFRESH_TOKENS, batch.refresh_tokens, |row, t| {
            row.push_bind(t.token_hash.to_vec())
                .push_bind(t.family_id.as_str())
                .push_bind(t.generation)
                .push_bind(ms(t.issued_at))
                .push_bind(ms(t.inactivity_expires_at))
                .push_bind(opt_ms(t.rotated_at));
        })
        .await?;
        insert_rows(&mut tx, CODES, batch.codes, |row, c| {
            row.push_bind(c.code_hash.to_vec())
                .push_bind(c.app_id.as_str())
                .push_bind(c.account_id.as_str())
                .push_bind(c.grant_id.as_str())
                .push_bind(c.cloud_id.as_deref())
                .push_bind(c.scopes.join(" "))
                .push_bind(c.redirect_uri.as_deref())
                .push_bind(c.code_challenge.as_deref())
                .push_bind(c.nonce.as_deref())
                .push_bind(ms(c.created_at))
                .push_bind(ms(c.expires_at))
                .push_bind(opt_ms(c.used_at))
                .push_bind(c.family_id.as_deref());
        })
        .await?;
        tx.commit().await.map_err(map_sqlx)
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

/// A table and its columns, in the order the binders push them.
struct Table {
    insert: &'static str,
    columns: usize,
}

const ACCOUNTS: Table = Table {
    insert: "INSERT INTO accounts (account_id, email, email_lower, name, nickname, picture, \
             zoneinfo, locale, job_title, organization, department, location, status, \
             password_hash, credential_generation, created_at) ",
    columns: 16,
};
const MEMBERSHIPS: Table = Table {
    insert: "INSERT INTO memberships (account_id, cloud_id, product_key, role, created_at) ",
    columns: 5,
};
const GRANTS: Table = Table {
    insert: "INSERT INTO grants (grant_id, app_id, account_id, scopes, created_at, \
             updated_at, revoked_at) ",
    columns: 7,
};
const GRANT_SITES: Table = Table {
    insert: "INSERT INTO grant_sites (grant_id, ordinal, cloud_id) ",
    columns: 3,
};
const FAMILIES: Table = Table {
    insert: "INSERT INTO token_families (family_id, grant_id, app_id, account_id, scopes, \
             credential_generation, created_at, absolute_expires_at, head_generation, \
             revoked_at, revoke_reason, head_issued_at, head_expires_at, previous_issued_at) ",
    columns: 14,
};
const REFRESH_TOKENS: Table = Table {
    insert: "INSERT INTO refresh_tokens (token_hash, family_id, generation, issued_at, \
             inactivity_expires_at, rotated_at) ",
    columns: 6,
};
const CODES: Table = Table {
    insert: "INSERT INTO codes (code_hash, app_id, account_id, grant_id, cloud_id, scopes, \
             redirect_uri, code_challenge, nonce, created_at, expires_at, used_at, family_id) ",
    columns: 13,
};

/// Inserts `rows` with as many rows per statement as the parameter bound allows.
async fn insert_rows<T>(
    conn: &mut SqliteConnection,
    table: Table,
    rows: &[T],
    bind: impl Fn(&mut Separated<'_, Sqlite, &'static str>, &T),
) -> Result<(), StoreError> {
    for chunk in rows.chunks(MAX_PARAMS / table.columns) {
        let mut query = QueryBuilder::<Sqlite>::new(table.insert);
        query.push_values(chunk, |mut row, item| bind(&mut row, item));
        query.build().execute(&mut *conn).await.map_err(map_sqlx)?;
    }
    Ok(())
}

/// Refuses scope lists that would not survive being stored space-separated, before
/// anything is written (the binders join them).
fn check_scopes(batch: &Batch<'_>) -> Result<(), StoreError> {
    let lists = batch
        .grants
        .iter()
        .map(|g| &g.scopes)
        .chain(batch.families.iter().map(|f| &f.scopes))
        .chain(batch.codes.iter().map(|c| &c.scopes));
    for scopes in lists {
        join_scopes(scopes)?;
    }
    Ok(())
}
