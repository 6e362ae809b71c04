//! The port between the shared operations and a backend: statements with their arguments,
//! and the connection and transaction traits each backend implements with its driver.

use std::borrow::Cow;
use std::future::Future;

use sqlx::error::{BoxDynError, DatabaseError};
use sqlx::{Arguments, Encode, Type};
use trilo_core::store::StoreError;

use crate::accounts::{AccountRow, SessionRow};
use crate::api_tokens::ApiTokenRow;
use crate::apps::{AppItemRow, AppRow, InstallationRow, SecretRow};
use crate::audit::{AuditRow, KeyRow};
use crate::events::{
    ContainerObjectRow, CountRow, DeliveryRow, DueDeliveryRow, ScopesRow, StatusCountRow,
    SubscriberRow, SubscriptionEventRow, SubscriptionRow,
};
use crate::grants::{
    AccessStandingRow, CodeRow, FamilyRow, GrantRow, GrantSiteRow, KeptStateRow, LegacyKeyRow,
    LiveGrantRow, RefreshRow, RefreshStateRow,
};
use crate::policies::{ContainerKeyRow, ContainerRow, PolicyContainerRow, PolicyRow};
use crate::resets::ResetAccountRow;
use crate::sites::{
    MembershipRow, ProductOperationRow, ProductRow, ProductScopeRow, SiteProductRow, SiteRow,
};

/// An error inside a store operation: a driver error not yet mapped (each backend reads
/// its own error codes), or a domain answer.
#[derive(Debug)]
pub enum Fail {
    Sql(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        Fail::Sql(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl Fail {
    /// The error the trait reports (see [`map_sqlx`]).
    pub fn into_store_error(self, database: fn(&dyn DatabaseError) -> StoreError) -> StoreError {
        match self {
            Fail::Sql(e) => map_sqlx(e, database),
            Fail::Store(e) => e,
        }
    }
}

/// The error a driver failure becomes. Database errors carry the backend's own codes, so
/// the backend maps them (`database`); the others mean the same on both backends. Messages
/// carry no bound values (hashes and secrets are parameters, never SQL text).
pub fn map_sqlx(e: sqlx::Error, database: fn(&dyn DatabaseError) -> StoreError) -> StoreError {
    match e {
        sqlx::Error::Database(db) => database(&*db),
        sqlx::Error::RowNotFound => StoreError::NotFound,
        e @ (sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. }) => StoreError::Corrupt(e.to_string()),
        e => StoreError::Unavailable(e.to_string()),
    }
}

/// One argument in the column forms both backends store (see `convert`).
#[derive(Debug)]
pub enum Arg<'a> {
    Text(Cow<'a, str>),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Bytes(&'a [u8]),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Cow::Borrowed(v))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Cow::Borrowed(v))
    }
}

impl From<String> for Arg<'_> {
    fn from(v: String) -> Self {
        Arg::Text(Cow::Owned(v))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::OptText(v)
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::OptText(v.as_deref())
    }
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::OptInt(v)
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Bytes(v)
    }
}

/// One SQL statement and its arguments. The text uses `$1`-style placeholders, which both
/// SQLite and PostgreSQL accept, and is `'static`: arguments are never spliced into it.
#[derive(Debug)]
pub struct Stmt<'a> {
    sql: &'static str,
    args: Vec<Arg<'a>>,
}

impl<'a> Stmt<'a> {
    pub fn new(sql: &'static str) -> Self {
        Stmt {
            sql,
            args: Vec::new(),
        }
    }

    /// Appends the argument for the next placeholder.
    pub fn bind(mut self, arg: impl Into<Arg<'a>>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn sql(&self) -> &'static str {
        self.sql
    }

    /// The arguments in the driver's own form (`SqliteArguments`, `PgArguments`).
    pub fn arguments<A>(&self) -> Result<A, BoxDynError>
    where
        A: Arguments,
        for<'q> &'q str: Encode<'q, A::Database> + Type<A::Database>,
        for<'q> Option<&'q str>: Encode<'q, A::Database> + Type<A::Database>,
        i64: for<'q> Encode<'q, A::Database> + Type<A::Database>,
        Option<i64>: for<'q> Encode<'q, A::Database> + Type<A::Database>,
        for<'q> &'q [u8]: Encode<'q, A::Database> + Type<A::Database>,
    {
        let mut out = A::default();
        for arg in &self.args {
            match arg {
                Arg::Text(v) => out.add(v.as_ref()),
                Arg::OptText(v) => out.add(*v),
                Arg::Int(v) => out.add(*v),
                Arg::OptInt(v) => out.add(*v),
                Arg::Bytes(v) => out.add(*v),
            }?;
        }
        Ok(out)
    }
}

/// Runs statements that return rows of `R`, one of this crate's row structs. A backend
/// implements it once for every `R` its driver decodes (`R: FromRow<'_, ItsRow>`);
/// operations call [`Conn::fetch_optional`] and friends, which pick `R` by inference.
pub trait Fetch<R: Send>: Send {
    fn optional(&mut self, stmt: Stmt<'_>) -> impl Future<Output = Result<Option<R>, Fail>> + Send;

    fn all(&mut self, stmt: Stmt<'_>) -> impl Future<Output = Result<Vec<R>, Fail>> + Send;
}

/// A connection (or a transaction) of one backend: what the shared operations run on.
/// The `Fetch` bounds name every row struct, so an operation can decode any of them.
pub trait Conn:
    Send
    + Fetch<AccountRow>
    + Fetch<SessionRow>
    + Fetch<ApiTokenRow>
    + Fetch<SiteRow>
    + Fetch<ProductRow>
    + Fetch<ProductScopeRow>
    + Fetch<ProductOperationRow>
    + Fetch<SiteProductRow>
    + Fetch<MembershipRow>
    + Fetch<ContainerRow>
    + Fetch<ContainerKeyRow>
    + Fetch<PolicyRow>
    + Fetch<PolicyContainerRow>
    + Fetch<AppRow>
    + Fetch<AppItemRow>
    + Fetch<SecretRow>
    + Fetch<InstallationRow>
    + Fetch<GrantRow>
    + Fetch<GrantSiteRow>
    + Fetch<LiveGrantRow>
    + Fetch<CodeRow>
    + Fetch<FamilyRow>
    + Fetch<RefreshRow>
    + Fetch<LegacyKeyRow>
    + Fetch<RefreshStateRow>
    + Fetch<KeptStateRow>
    + Fetch<AccessStandingRow>
    + Fetch<KeyRow>
    + Fetch<AuditRow>
    + Fetch<SubscriptionRow>
    + Fetch<SubscriberRow>
    + Fetch<SubscriptionEventRow>
    + Fetch<ScopesRow>
    + Fetch<ContainerObjectRow>
    + Fetch<CountRow>
    + Fetch<StatusCountRow>
    + Fetch<DeliveryRow>
    + Fetch<DueDeliveryRow>
    + Fetch<ResetAccountRow>
{
    /// Runs a statement; returns the number of rows it changed.
    fn execute(&mut self, stmt: Stmt<'_>) -> impl Future<Output = Result<u64, Fail>> + Send;

    /// The first row, if any.
    fn fetch_optional<R: Send>(
        &mut self,
        stmt: Stmt<'_>,
    ) -> impl Future<Output = Result<Option<R>, Fail>> + Send
    where
        Self: Fetch<R>,
    {
        Fetch::<R>::optional(self, stmt)
    }

    fn fetch_all<R: Send>(
        &mut self,
        stmt: Stmt<'_>,
    ) -> impl Future<Output = Result<Vec<R>, Fail>> + Send
    where
        Self: Fetch<R>,
    {
        Fetch::<R>::all(self, stmt)
    }

    /// The first row; sqlx's `RowNotFound` (which the backends map to `NotFound`) when
    /// there is none.
    fn fetch_one<R: Send>(&mut self, stmt: Stmt<'_>) -> impl Future<Output = Result<R, Fail>> + Send
    where
        Self: Fetch<R>,
    {
        let row = Fetch::<R>::optional(self, stmt);
        async move { row.await?.ok_or(Fail::Sql(sqlx::Error::RowNotFound)) }
    }
}

/// A transaction the backend has begun in the mode the operation needs (its write or its
/// read transaction). Dropping it without [`Tx::commit`] rolls it back.
pub trait Tx: Conn {
    fn commit(self) -> impl Future<Output = Result<(), Fail>> + Send;
}

/// Implements the ports ([`Fetch`], [`Conn`], [`Tx`]) for a backend's `Db<C>` with its sqlx
/// driver: `sqlx_port!(Sqlite, SqliteConnection, SqliteRow, SqliteArguments)`. The code is
/// the same for every driver; a generic impl would have to restate sqlx's executor bounds.
#[macro_export]
macro_rules! sqlx_port {
    ($database:ty, $connection:ty, $row:ty, $arguments:ty) => {
        /// A pooled connection or a transaction (`C` dereferences to the connection).
        pub struct Db<C>(pub(crate) C);

        /// The statement's arguments for the driver; the column types never fail to encode.
        fn arguments(stmt: &$crate::conn::Stmt<'_>) -> Result<$arguments, ::sqlx::Error> {
            stmt.arguments().map_err(::sqlx::Error::Encode)
        }

        impl<C, R> $crate::conn::Fetch<R> for Db<C>
        where
            C: ::std::ops::DerefMut<Target = $connection> + Send,
            R: for<'r> ::sqlx::FromRow<'r, $row> + Send + Unpin,
        {
            async fn optional(
                &mut self,
                stmt: $crate::conn::Stmt<'_>,
            ) -> Result<Option<R>, $crate::conn::Fail> {
                Ok(::sqlx::query_as_with(stmt.sql(), arguments(&stmt)?)
                    .fetch_optional(&mut *self.0)
                    .await?)
            }

            async fn all(
                &mut self,
                stmt: $crate::conn::Stmt<'_>,
            ) -> Result<Vec<R>, $crate::conn::Fail> {
                Ok(::sqlx::query_as_with(stmt.sql(), arguments(&stmt)?)
                    .fetch_all(&mut *self.0)
                    .await?)
            }
        }

        impl<C> $crate::conn::Conn for Db<C>
        where
            C: ::std::ops::DerefMut<Target = $connection> + Send,
        {
            async fn execute(
                &mut self,
                stmt: $crate::conn::Stmt<'_>,
            ) -> Result<u64, $crate::conn::Fail> {
                let done = ::sqlx::query_with(stmt.sql(), arguments(&stmt)?)
                    .execute(&mut *self.0)
                    .await?;
                Ok(done.rows_affected())
            }
        }

        impl $crate::conn::Tx for Db<::sqlx::Transaction<'_, $database>> {
            async fn commit(self) -> Result<(), $crate::conn::Fail> {
                Ok(self.0.commit().await?)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database_unused(_: &dyn DatabaseError) -> StoreError {
        StoreError::Unavailable("database".to_owned())
    }

    #[test]
    fn driver_errors_map_the_same_on_every_backend() {
        let map = |e| map_sqlx(e, database_unused);
        assert!(matches!(
            map(sqlx::Error::RowNotFound),
            StoreError::NotFound
        ));
        assert!(matches!(
            map(sqlx::Error::ColumnNotFound("scopes".to_owned())),
            StoreError::Corrupt(_)
        ));
        assert!(matches!(
            map(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        let domain = Fail::Store(StoreError::Conflict {
            constraint: "apps.client_id".to_owned(),
        });
        assert!(matches!(
            domain.into_store_error(database_unused),
            StoreError::Conflict { constraint } if constraint == "apps.client_id"
        ));
    }

    #[test]
    fn arguments_keep_their_order_and_column_form() {
        let hash = [7_u8; 32];
        let owner: Option<String> = None;
        let stmt = Stmt::new("SELECT $1, $2, $3, $4")
            .bind("a")
            .bind(&owner)
            .bind(Some(5_i64))
            .bind(hash.as_slice());
        assert_eq!(stmt.sql(), "SELECT $1, $2, $3, $4");
        assert!(matches!(
            stmt.args.as_slice(),
            [
                Arg::Text(a),
                Arg::OptText(None),
                Arg::OptInt(Some(5)),
                Arg::Bytes(b),
            ] if a == "a" && b.len() == 32
        ));
    }
}
