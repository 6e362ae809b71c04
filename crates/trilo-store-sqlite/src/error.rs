//! Mapping sqlx errors to `StoreError`: sqlx types never leave this crate (STYLE §3).

use std::future::Future;

use sqlx::error::{DatabaseError, ErrorKind};
use trilo_core::store::{StoreError, StoreResult};
use trilo_store_sql::conn::Fail;

/// Runs the body of a store operation and maps its failure.
pub(crate) async fn run<T>(body: impl Future<Output = Result<T, Fail>>) -> StoreResult<T> {
    body.await
        .map_err(|fail| fail.into_store_error(map_database))
}

/// The error a driver failure becomes.
pub(crate) fn map_sqlx(e: sqlx::Error) -> StoreError {
    trilo_store_sql::conn::map_sqlx(e, map_database)
}

/// SQLite's database errors by their kind (it has no SQLSTATE codes).
fn map_database(db: &dyn DatabaseError) -> StoreError {
    match db.kind() {
        ErrorKind::UniqueViolation | ErrorKind::CheckViolation => StoreError::Conflict {
            constraint: constraint_name(db.message()),
        },
        ErrorKind::ForeignKeyViolation => StoreError::NotFound,
        _ => StoreError::Unavailable(format!("database error: {}", db.message())),
    }
}

/// SQLite reports `UNIQUE constraint failed: table.col[, table.col]`; the trait documents
/// domain names for some of them, the rest are `table.column`.
fn constraint_name(message: &str) -> String {
    let columns = ["UNIQUE constraint failed: ", "CHECK constraint failed: "]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .unwrap_or(message)
        .trim();
    match columns {
        "accounts.email_lower" => "accounts.email",
        "signing_keys.state" => "signing_keys.current",
        "grants.app_id, grants.account_id" => "grants.live",
        other => other,
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::constraint_name;

    #[test]
    fn constraint_names_are_the_documented_ones() {
        for (message, name) in [
            (
                "UNIQUE constraint failed: accounts.email_lower",
                "accounts.email",
            ),
            (
                "UNIQUE constraint failed: signing_keys.state",
                "signing_keys.current",
            ),
            ("UNIQUE constraint failed: sites.cloud_id", "sites.cloud_id"),
            ("UNIQUE constraint failed: apps.client_id", "apps.client_id"),
            (
                "UNIQUE constraint failed: grants.app_id, grants.account_id",
                "grants.live",
            ),
        ] {
            assert_eq!(constraint_name(message), name);
        }
    }
}
