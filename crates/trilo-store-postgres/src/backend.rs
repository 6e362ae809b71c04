//! [`PgStore`] as a [`Backend`] of the shared SQL store: READ COMMITTED writes with the
//! grant row locks, REPEATABLE READ snapshots, each retried as a whole on a transaction
//! conflict; code exchanges and refreshes in batches of one statement, and access changes
//! told to every instance with `NOTIFY`.

use std::future::Future;
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Postgres, Transaction};
use trilo_core::code_plan::{CodeExchanged, CodePlan};
use trilo_core::model::{AccessTokenStanding, Rotation};
use trilo_core::refresh_plan::RefreshPlan;
use trilo_core::store::{AccessListener, Durable, Refreshed, StoreResult};
use trilo_store_sql::conn::Fail;
use trilo_store_sql::events::Dialect;
use trilo_store_sql::grants::GrantLocks;
use trilo_store_sql::store::Backend;

use crate::PgStore;
use crate::commit::Committable;
use crate::conn::Db;
use crate::notify;

impl Backend for PgStore {
    const NAME: &'static str = "postgres";
    const DIALECT: Dialect = Dialect::Postgres;
    /// Row locks that order concurrent writers at READ COMMITTED (SQLite's single writer
    /// needs none). SQLite has no `FOR UPDATE`/`FOR SHARE`, so these statements stay here.
    const LOCKS: GrantLocks = GrantLocks {
        // Locking the live grant queues concurrent consents of the same account to the same
        // app; when there is none, two inserts race on `grants_live_key` and the loser runs
        // again (see `error::retry`), then updating the winner's grant.
        live_grant: "SELECT grant_id, scopes FROM grants WHERE app_id = $1 AND account_id = $2 \
                     AND revoked_at IS NULL FOR UPDATE",
        // Wait for a revocation of the grant in flight (its row lock), so the family issued
        // next is born revoked rather than live under a grant revoked a moment ago (security
        // checklist H-C3). For the transactional `grants::redeem_code`; `PgStore::exchange`
        // takes the same lock inside its one statement (`exchange.rs`).
        before_family: Some(
            "SELECT g.grant_id FROM grants g JOIN codes c ON c.grant_id = g.grant_id \
             WHERE c.code_hash = $1 FOR SHARE OF g",
        ),
    };

    type Read = Db<PoolConnection<Postgres>>;
    type Snapshot = Db<Transaction<'static, Postgres>>;
    type Write = Db<Committable>;

    fn read<T, F, Fut>(&self, op: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send,
        F: Fn(Self::Read) -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, Fail>> + Send,
    {
        PgStore::read(self, op)
    }

    fn snapshot<T, F, Fut>(&self, op: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send,
        F: Fn(Self::Snapshot) -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, Fail>> + Send,
    {
        PgStore::snapshot(self, op)
    }

    fn write<T, F, Fut>(&self, op: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send,
        F: Fn(Self::Write) -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, Fail>> + Send,
    {
        PgStore::write(self, op)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.retry(move || async move {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    async fn announce_access_change(&self) -> StoreResult<()> {
        notify::announce(&self.pool).await
    }

    fn listen_for_access_changes(&self, listener: Arc<dyn AccessListener>) -> bool {
        notify::listen(self.pool.clone(), listener);
        true
    }

    fn commit_stats(&self) -> Option<Arc<trilo_core::metrics::CommitStats>> {
        Some(Arc::clone(&self.batches))
    }

    async fn exchange_code(
        &self,
        plan: &CodePlan,
    ) -> StoreResult<(Option<CodeExchanged>, Durable)> {
        Ok((self.exchange(plan).await?, Durable::committed()))
    }

    async fn access_token_standing(
        &self,
        family_id: &str,
    ) -> StoreResult<Option<AccessTokenStanding>> {
        self.standing(family_id).await
    }

    async fn rotate_refresh_token(&self, rotation: &Rotation) -> StoreResult<bool> {
        self.rotate(rotation).await
    }

    async fn refresh_and_rotate(&self, plan: &RefreshPlan) -> StoreResult<Option<Refreshed>> {
        self.refresh(plan).await
    }
}
