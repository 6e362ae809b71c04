//! trilo-store-sql: what the SQLite and PostgreSQL stores share, so each backend crate
//! keeps only what really differs (connections, transactions, retries, row locks, error
//! codes and its own migrations).
//!
//! One module per aggregate holds its row structs (`#[derive(FromRow)]`, generic over the
//! driver's row type) with their `TryFrom` into `trilo_core::model`, its SQL (`$1`
//! placeholders work on both backends) and its operations: one function per storage-trait
//! method, run on the connection or transaction the backend passes in ([`conn`]). No
//! driver is compiled here, and sqlx errors still never leave the store crates: the
//! backends map them to `StoreError`.

pub mod accounts;
pub mod api_tokens;
pub mod apps;
pub mod audit;
pub mod conn;
pub mod convert;
pub mod events;
pub mod failures;
pub mod grants;
pub mod housekeeping;
pub mod migrations;
pub mod policies;
pub mod preload;
pub mod resets;
pub mod sites;
pub mod store;
