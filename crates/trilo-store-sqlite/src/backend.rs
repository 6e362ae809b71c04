//! [`SqliteStore`] as a [`Backend`] of the shared SQL store: writes on the single writer,
//! snapshots and single queries on the readers, and the token endpoint's hot paths through
//! the group committer and the inline readers.

use std::future::Future;

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, Transaction};
use time::OffsetDateTime;
use trilo_core::code_plan::{CodeExchanged, CodePlan};
use trilo_core::model::{
    AccessTokenStanding, AuditEvent, AuthorizationCode, NewFamily, Redeemed, RefreshTokenKey,
    RefreshTokenState, Rotation, TokenHash,
};
use trilo_core::refresh_plan::RefreshPlan;
use trilo_core::store::{Durable, Refreshed, StoreError, StoreResult};
use trilo_store_sql::conn::Fail;
use trilo_store_sql::events::Dialect;
use trilo_store_sql::grants::{self, GrantLocks};
use trilo_store_sql::store::Backend;

use crate::SqliteStore;
use crate::conn::Db;
use crate::direct;
use crate::error::run;
use crate::group_commit::{Write, Written};

impl Backend for SqliteStore {
    const NAME: &'static str = "sqlite";
    const DIALECT: Dialect = Dialect::Sqlite;
    /// Writers never overlap (one connection, `BEGIN IMMEDIATE`), so grants need no row
    /// locks.
    const LOCKS: GrantLocks = GrantLocks::NONE;

    type Read = Db<PoolConnection<Sqlite>>;
    type Snapshot = Db<Transaction<'static, Sqlite>>;
    type Write = Db<Transaction<'static, Sqlite>>;

    fn read<T, F, Fut>(&self, op: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send,
        F: Fn(Self::Read) -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, Fail>> + Send,
    {
        SqliteStore::read(self, op)
    }

    fn snapshot<T, F, Fut>(&self, op: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send,
        F: Fn(Self::Snapshot) -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, Fail>> + Send,
    {
        SqliteStore::snapshot(self, op)
    }

    fn write<T, F, Fut>(&self, op: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send,
        F: Fn(Self::Write) -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, Fail>> + Send,
    {
        SqliteStore::write(self, op)
    }

    async fn ping(&self) -> StoreResult<()> {
        run(async {
            sqlx::query("SELECT 1").execute(&self.reader).await?;
            Ok(())
        })
        .await
    }

    fn commit_stats(&self) -> Option<std::sync::Arc<trilo_core::metrics::CommitStats>> {
        Some(self.commits.stats())
    }

    async fn code(&self, code_hash: &TokenHash) -> StoreResult<Option<AuthorizationCode>> {
        self.read_inline(
            |db| direct::code(db, code_hash),
            |c| grants::code(c, code_hash),
        )
        .await
    }

    async fn redeem_code(
        &self,
        code_hash: &TokenHash,
        family: &NewFamily,
        now: OffsetDateTime,
    ) -> StoreResult<Redeemed> {
        let write = Write::Redeem {
            code_hash: *code_hash,
            family: family.clone(),
            now,
        };
        match self.commit(write).await? {
            Written::Redeemed(redeemed) => Ok(*redeemed),
            _ => Err(unexpected_answer()),
        }
    }

    /// Read, check and redeem on the committer's own connection, in its next group: the
    /// code is read once, by the writer, whose cache is warm.
    async fn exchange_code(
        &self,
        plan: &CodePlan,
    ) -> StoreResult<(Option<CodeExchanged>, Durable)> {
        match self
            .commits
            .submit_answering_early(Write::Exchange(plan.clone()))
            .await?
        {
            (Written::Exchanged(exchanged), durable) => Ok((exchanged.map(|e| *e), durable)),
            _ => Err(unexpected_answer()),
        }
    }

    async fn access_token_standing(
        &self,
        family_id: &str,
    ) -> StoreResult<Option<AccessTokenStanding>> {
        self.read_inline(
            |db| direct::access_token_standing(db, family_id),
            |c| grants::access_token_standing(c, family_id),
        )
        .await
    }

    async fn refresh_token(&self, key: &RefreshTokenKey) -> StoreResult<Option<RefreshTokenState>> {
        self.read_inline(
            |db| direct::refresh_token_state(db, key),
            |c| grants::refresh_token(c, key),
        )
        .await
    }

    async fn rotate_refresh_token(&self, rotation: &Rotation) -> StoreResult<bool> {
        match self.commit(Write::Rotate(rotation.clone())).await? {
            Written::Rotated(rotated) => Ok(rotated),
            _ => Err(unexpected_answer()),
        }
    }

    /// Read, decide and rotate on the committer's own connection, in its next group.
    async fn refresh_and_rotate(&self, plan: &RefreshPlan) -> StoreResult<Option<Refreshed>> {
        let write = Write::Refresh(plan.clone());
        match self.commits.submit_answering_early(write).await? {
            (Written::Refreshed(refreshed), durable) => {
                Ok(refreshed.map(|r| Refreshed { durable, ..*r }))
            }
            _ => Err(unexpected_answer()),
        }
    }

    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        match self.commit(Write::Audit(event.clone())).await? {
            Written::Appended => Ok(()),
            _ => Err(unexpected_answer()),
        }
    }
}

/// A queued write answered for another kind of write: a bug in `group_commit`.
fn unexpected_answer() -> StoreError {
    StoreError::Unavailable("the SQLite committer answered another kind of write".to_owned())
}
