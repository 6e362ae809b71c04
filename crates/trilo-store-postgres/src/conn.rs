//! trilo-store-sql's port on PostgreSQL: shared statements run on a pooled connection or
//! a transaction.

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{PgConnection, Postgres};

trilo_store_sql::sqlx_port!(Postgres, PgConnection, PgRow, PgArguments);
