//! Mapping sqlx errors to `StoreError` (sqlx types never leave this crate, STYLE §3), and
//! the retry loop for serialization failures and deadlocks.

use std::future::Future;
use std::time::Duration;

use sqlx::error::DatabaseError;
use trilo_core::store::{StoreError, StoreResult};
use trilo_store_sql::conn::Fail;

/// Attempts of one operation before a retryable failure is reported as `Unavailable`.
const MAX_ATTEMPTS: u32 = 8;

/// Whether running the whole operation again can succeed: a connection lost, a
/// serialization failure (40001, the normal outcome of a conflict on SERIALIZABLE engines
/// such as CockroachDB), a deadlock (40P01), or losing the race to create an account's
/// live grant for an app (the winner's grant is then updated instead).
fn is_retryable(fail: &Fail) -> bool {
    // A pooled connection the server closed (a restart, an idle timeout): the next
    // attempt takes another or opens a new one.
    if lost_connection(fail) {
        return true;
    }
    let Fail::Sql(sqlx::Error::Database(db)) = fail else {
        return false;
    };
    matches!(db.code().as_deref(), Some("40001" | "40P01"))
        || (db.code().as_deref() == Some("23505") && db.constraint() == Some("grants_live_key"))
}

/// SQLSTATEs by which the server says the connection, not the transaction, failed: it
/// ended the connection (57P01 an administrator or a shutdown, 57P02 a crash of another
/// backend), it is still starting up (57P03), or a connection exception (class 08). The
/// server sends such an error instead of a commit's success, so the transaction did not
/// commit and running it again on another connection is safe: the same reasoning as for a
/// connection that vanished without a word (`sqlx::Error::Io`), with more certainty.
fn connection_ended(code: &str) -> bool {
    matches!(code, "57P01" | "57P02" | "57P03") || code.starts_with("08")
}

/// Whether the failure was the connection's: it vanished, or the server ended it.
fn lost_connection(fail: &Fail) -> bool {
    match fail {
        Fail::Sql(sqlx::Error::Io(_)) => true,
        Fail::Sql(sqlx::Error::Database(db)) => {
            connection_ended(db.code().as_deref().unwrap_or_default())
        }
        _ => false,
    }
}

/// Runs one store operation, again from the start while it fails in a retryable way.
/// `op` builds a fresh transaction each time.
pub(crate) async fn retry<T, F, Fut>(op: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Fail>>,
{
    retry_healing(op, || async {}).await
}

/// [`retry`], awaiting `heal` before the next attempt whenever the connection was lost
/// (see `PgStore::drop_dead_idle`).
pub(crate) async fn retry_healing<T, F, Fut, H, Healed>(mut op: F, heal: H) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Fail>>,
    H: Fn() -> Healed,
    Healed: Future<Output = ()>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(fail) if is_retryable(&fail) && attempt < MAX_ATTEMPTS => {
                if lost_connection(&fail) {
                    heal().await;
                }
                tracing::debug!(
                    attempt,
                    "retrying a store operation after a conflict or a lost connection"
                );
                // 2, 4, 8 … ms plus up to 1 ms of jitter, so rivals fall out of step.
                let jitter =
                    Duration::from_micros(u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * 4);
                tokio::time::sleep(Duration::from_millis(1 << attempt) + jitter).await;
                attempt += 1;
            }
            Err(fail) => return Err(fail.into_store_error(map_database)),
        }
    }
}

/// The error a driver failure becomes.
pub(crate) fn map_sqlx(e: sqlx::Error) -> StoreError {
    trilo_store_sql::conn::map_sqlx(e, map_database)
}

/// PostgreSQL's database errors by SQLSTATE; the `detail` field that would echo key values
/// is not used.
fn map_database(db: &dyn DatabaseError) -> StoreError {
    match db.code().as_deref() {
        // A unique key, or a check rule such as a refresh token's lifetime.
        Some("23505" | "23514") => StoreError::Conflict {
            constraint: constraint_name(db.constraint().unwrap_or("unknown")),
        },
        Some("23503") => StoreError::NotFound,
        Some("40001" | "40P01") => {
            StoreError::Unavailable("transaction conflict persisted; retry".to_owned())
        }
        Some(code) if connection_ended(code) => StoreError::Unavailable(format!(
            "the database ended the connection ({code}) attempt after attempt: {}",
            db.message()
        )),
        _ => StoreError::Unavailable(format!("database error: {}", db.message())),
    }
}

/// Constraint names of the migrations (`trilo_store_sql::migrations`) as the trait documents them (the SQLite store reports
/// the same names).
fn constraint_name(raw: &str) -> String {
    match raw {
        "accounts_pkey" => "accounts.account_id",
        "accounts_email_lower_key" => "accounts.email",
        "sessions_pkey" => "sessions.id_hash",
        "sites_pkey" => "sites.cloud_id",
        "products_pkey" => "products.product_key",
        "apps_pkey" => "apps.app_id",
        "apps_client_id_key" => "apps.client_id",
        "app_secrets_pkey" => "app_secrets.secret_id",
        "grants_pkey" => "grants.grant_id",
        "grants_live_key" => "grants.live",
        "codes_pkey" => "codes.code_hash",
        "token_families_pkey" => "token_families.family_id",
        "signing_keys_pkey" => "signing_keys.kid",
        "signing_keys_one_current" => "signing_keys.current",
        "audit_events_pkey" => "audit_events.event_id",
        other => other,
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::{connection_ended, constraint_name};

    #[test]
    fn connection_failures_are_told_from_statement_failures() {
        for ended in ["57P01", "57P02", "57P03", "08000", "08003", "08006"] {
            assert!(connection_ended(ended), "{ended}");
        }
        // A query cancelled by its timeout, a syntax error, a unique key, a lock timeout.
        for not in ["57014", "42601", "23505", "55P03", ""] {
            assert!(!connection_ended(not), "{not}");
        }
    }

    #[test]
    fn constraint_names_are_the_documented_ones() {
        for (raw, name) in [
            ("accounts_email_lower_key", "accounts.email"),
            ("signing_keys_one_current", "signing_keys.current"),
            ("sites_pkey", "sites.cloud_id"),
            ("apps_client_id_key", "apps.client_id"),
            ("grants_live_key", "grants.live"),
            ("something_else", "something_else"),
        ] {
            assert_eq!(constraint_name(raw), name);
        }
    }
}
