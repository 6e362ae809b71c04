//! trilo-store-sql's port on PostgreSQL: shared statements run on a pooled connection or
//! a transaction.

use std::ops::DerefMut;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{FromRow, PgConnection, Postgres, Transaction};
use trilo_store_sql::conn::{Conn, Fail, Fetch, Stmt, Tx};

/// The statement's arguments for the driver; the column types never fail to encode.
fn arguments(stmt: &Stmt<'_>) -> Result<PgArguments, sqlx::Error> {
    stmt.arguments().map_err(sqlx::Error::Encode)
}

/// A pooled connection or a transaction (`C` dereferences to the connection).
pub struct Db<C>(pub(crate) C);

impl<C, R> Fetch<R> for Db<C>
where
    C: DerefMut<Target = PgConnection> + Send,
    R: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    async fn optional(&mut self, stmt: Stmt<'_>) -> Result<Option<R>, Fail> {
        Ok(sqlx::query_as_with(stmt.sql(), arguments(&stmt)?)
            .fetch_optional(&mut *self.0)
            .await?)
    }

    async fn all(&mut self, stmt: Stmt<'_>) -> Result<Vec<R>, Fail> {
        Ok(sqlx::query_as_with(stmt.sql(), arguments(&stmt)?)
            .fetch_all(&mut *self.0)
            .await?)
    }
}

impl<C> Conn for Db<C>
where
    C: DerefMut<Target = PgConnection> + Send,
{
    async fn execute(&mut self, stmt: Stmt<'_>) -> Result<u64, Fail> {
        let done = sqlx::query_with(stmt.sql(), arguments(&stmt)?)
            .execute(&mut *self.0)
            .await?;
        Ok(done.rows_affected())
    }
}

impl Tx for Db<Transaction<'_, Postgres>> {
    async fn commit(self) -> Result<(), Fail> {
        Ok(self.0.commit().await?)
    }
}
