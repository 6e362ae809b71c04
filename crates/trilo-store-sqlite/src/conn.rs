//! trilo-store-sql's port on SQLite: shared statements run on a connection or transaction
//! of this store's pools.

use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Sqlite, SqliteConnection};

trilo_store_sql::sqlx_port!(Sqlite, SqliteConnection, SqliteRow, SqliteArguments);
