//! The storage traits, implemented once for every SQL backend: [`SqlStore`] runs each
//! method's shared operation in the transaction it needs, on the connections a
//! [`Backend`] supplies. A backend adds only what really differs: how it opens reads,
//! snapshots and writes (pools, locks, retries), its dialect and row locks, and the hot
//! paths it does its own way (the hooks with default bodies below: SQLite's group commit
//! and inline reads, PostgreSQL's one-statement redemption and batched refresh).
//!
//! A new stored feature is written once: its SQL and operations in a module of this crate,
//! its trait methods here.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;
use trilo_core::code_plan::{CodeExchanged, CodePlan};
use trilo_core::model::{
    AccessTokenStanding, Account, ApiToken, App, AppSecret, AuditEvent, AuditQuery,
    AuthorizationCode, ConsentRecord, Container, ContainerObject, Delivery, DeliveryCounts,
    DueDelivery, FinishedAttempt, Grant, Installation, Membership, NewCode, NewFamily, Outbox,
    PasswordReset, Policy, Product, ProductOperation, Redeemed, RefreshToken, RefreshTokenKey,
    RefreshTokenState, Rotation, Session, SigningKeyRecord, Site, SiteProduct, Subscriber,
    TokenFamily, TokenHash, UserInstalls, WebhookSubscription,
};
use trilo_core::refresh_plan::RefreshPlan;
use trilo_core::store::{
    AccessListener, AccountStore, ApiTokenStore, AppStore, AuditLog, Durable, EventStore,
    FailureCounterStore, GrantStore, Housekeeping, KeyStore, PasswordResetStore, PolicyStore,
    Refreshed, SessionStore, SiteStore, Store, StoreResult, Sweep,
};

use crate::conn::{Conn, Fail, Tx};
use crate::convert::ms;
use crate::events::Dialect;
use crate::grants::GrantLocks;
use crate::{
    accounts, api_tokens, apps, audit, events, failures, grants, housekeeping, policies, resets,
    sites,
};

/// What a SQL backend supplies to [`SqlStore`].
///
/// `read`, `snapshot` and `write` run an operation on a pooled connection, in a read
/// transaction (one consistent snapshot) or in a write transaction, and map driver errors
/// to `StoreError`; a backend may run `op` again after a retryable failure, so it must be
/// `Fn`. The hooks default to the shared operations.
pub trait Backend: Send + Sync + 'static {
    /// Which backend this is (`sqlite`, `postgres`), for logs and the banner.
    const NAME: &'static str;
    /// Where this backend's webhook statements differ.
    const DIALECT: Dialect;
    /// The row locks that order concurrent grant writers (none with a single writer).
    const LOCKS: GrantLocks;

    type Read: Conn;
    type Snapshot: Tx;
    type Write: Tx;

    fn read<T, F, Fut>(&self, op: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send,
        F: Fn(Self::Read) -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, Fail>> + Send;

    fn snapshot<T, F, Fut>(&self, op: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send,
        F: Fn(Self::Snapshot) -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, Fail>> + Send;

    fn write<T, F, Fut>(&self, op: F) -> impl Future<Output = StoreResult<T>> + Send
    where
        T: Send,
        F: Fn(Self::Write) -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, Fail>> + Send;

    /// The liveness probe behind `/readyz`.
    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send;

    /// See [`Store::announce_access_change`].
    fn announce_access_change(&self) -> impl Future<Output = StoreResult<()>> + Send {
        async { Ok(()) }
    }

    /// See [`Store::listen_for_access_changes`].
    fn listen_for_access_changes(&self, listener: Arc<dyn AccessListener>) -> bool {
        let _ = listener;
        false
    }

    /// See [`Store::commit_stats`].
    fn commit_stats(&self) -> Option<Arc<trilo_core::metrics::CommitStats>> {
        None
    }

    /// [`GrantStore::code`], on the token endpoint's path.
    fn code<'a>(
        &'a self,
        code_hash: &'a TokenHash,
    ) -> impl Future<Output = StoreResult<Option<AuthorizationCode>>> + Send + 'a {
        self.read(move |c| grants::code(c, code_hash))
    }

    /// [`GrantStore::redeem_code`], on the token endpoint's path.
    fn redeem_code<'a>(
        &'a self,
        code_hash: &'a TokenHash,
        family: &'a NewFamily,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<Redeemed>> + Send + 'a {
        self.write(move |tx| grants::redeem_code(tx, Self::LOCKS, code_hash, family, now))
    }

    /// [`GrantStore::exchange_code`]: by default the read, then the redemption the plan
    /// asks for, committed. SQLite's committer and PostgreSQL's batched statement do both in
    /// one step.
    fn exchange_code<'a>(
        &'a self,
        plan: &'a CodePlan,
    ) -> impl Future<Output = StoreResult<(Option<CodeExchanged>, Durable)>> + Send + 'a
    where
        Self: Sized,
    {
        async move {
            let Some(code) = self.code(&plan.code_hash).await? else {
                return Ok((None, Durable::committed()));
            };
            let redeemed = match plan.redemption(&code) {
                Some(family) => Some(self.redeem_code(&plan.code_hash, &family, plan.now).await?),
                None => None,
            };
            Ok((Some(CodeExchanged { code, redeemed }), Durable::committed()))
        }
    }

    /// [`GrantStore::access_token_standing`], on the API host's path.
    fn access_token_standing<'a>(
        &'a self,
        family_id: &'a str,
    ) -> impl Future<Output = StoreResult<Option<AccessTokenStanding>>> + Send + 'a {
        self.read(move |c| grants::access_token_standing(c, family_id))
    }

    /// [`GrantStore::refresh_token`], on the refresh path.
    fn refresh_token<'a>(
        &'a self,
        key: &'a RefreshTokenKey,
    ) -> impl Future<Output = StoreResult<Option<RefreshTokenState>>> + Send + 'a {
        self.read(move |c| grants::refresh_token(c, key))
    }

    /// [`GrantStore::rotate_refresh_token`], on the refresh path.
    fn rotate_refresh_token<'a>(
        &'a self,
        rotation: &'a Rotation,
    ) -> impl Future<Output = StoreResult<bool>> + Send + 'a {
        self.write(move |tx| grants::rotate_refresh_token(tx, rotation))
    }

    /// [`GrantStore::refresh_and_rotate`]: by default the read, then the rotation.
    fn refresh_and_rotate<'a>(
        &'a self,
        plan: &'a RefreshPlan,
    ) -> impl Future<Output = StoreResult<Option<Refreshed>>> + Send + 'a
    where
        Self: Sized,
    {
        read_then_rotate(self, plan)
    }

    /// [`AuditLog::append_audit`], also written by the token endpoint.
    fn append_audit<'a>(
        &'a self,
        event: &'a AuditEvent,
    ) -> impl Future<Output = StoreResult<()>> + Send + 'a {
        self.write(move |tx| audit::append_audit(tx, event))
    }
}

/// [`GrantStore::refresh_and_rotate`] as two operations: the read, then the rotation the
/// plan asks for (its compare-and-set may lose to a racing refresh). The decision is
/// [`RefreshPlan::rotation`]'s; SQLite's committer and PostgreSQL's batch statement make
/// the same one in one step.
pub async fn read_then_rotate<B: Backend>(
    backend: &B,
    plan: &RefreshPlan,
) -> StoreResult<Option<Refreshed>> {
    let Some(state) = backend.refresh_token(&plan.parent).await? else {
        return Ok(None);
    };
    let rotated = match plan.rotation(&state) {
        Some(rotation) => backend.rotate_refresh_token(&rotation).await?,
        None => false,
    };
    Ok(Some(Refreshed {
        state,
        rotated,
        durable: Durable::committed(),
    }))
}

/// Every storage trait on a SQL backend.
#[derive(Clone, Debug)]
pub struct SqlStore<B>(pub B);

/// The backend's own operations (migrate, close, its statistics) stay at hand.
impl<B> std::ops::Deref for SqlStore<B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.0
    }
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn ping(&self) -> StoreResult<()> {
        self.0.ping().await
    }

    fn backend(&self) -> &'static str {
        B::NAME
    }

    async fn announce_access_change(&self) -> StoreResult<()> {
        self.0.announce_access_change().await
    }

    fn listen_for_access_changes(&self, listener: Arc<dyn AccessListener>) -> bool {
        self.0.listen_for_access_changes(listener)
    }

    fn commit_stats(&self) -> Option<Arc<trilo_core::metrics::CommitStats>> {
        self.0.commit_stats()
    }
}

#[async_trait]
impl<B: Backend> AccountStore for SqlStore<B> {
    async fn insert_account(&self, account: &Account) -> StoreResult<()> {
        self.0
            .write(|tx| accounts::insert_account(tx, account))
            .await
    }

    async fn account(&self, account_id: &str) -> StoreResult<Option<Account>> {
        self.0.read(|c| accounts::account(c, account_id)).await
    }

    async fn account_by_email(&self, email: &str) -> StoreResult<Option<Account>> {
        self.0.read(|c| accounts::account_by_email(c, email)).await
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        self.0.read(accounts::list_accounts).await
    }

    async fn change_password(
        &self,
        account_id: &str,
        password_hash: &str,
        keep_session: Option<&TokenHash>,
        now: OffsetDateTime,
    ) -> StoreResult<Account> {
        self.0
            .write(|tx| accounts::change_password(tx, account_id, password_hash, keep_session, now))
            .await
    }
}

#[async_trait]
impl<B: Backend> SessionStore for SqlStore<B> {
    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        self.0
            .write(|tx| accounts::insert_session(tx, session))
            .await
    }

    async fn session(
        &self,
        id_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        self.0.read(|c| accounts::session(c, id_hash, now)).await
    }

    async fn delete_session(&self, id_hash: &TokenHash) -> StoreResult<()> {
        self.0
            .write(|tx| accounts::delete_session(tx, id_hash))
            .await
    }

    async fn sessions_of_account(
        &self,
        account_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        self.0
            .read(|c| accounts::sessions_of_account(c, account_id, now))
            .await
    }

    async fn end_other_sessions(&self, account_id: &str, keep: &TokenHash) -> StoreResult<u64> {
        self.0
            .write(|tx| accounts::end_other_sessions(tx, account_id, keep))
            .await
    }
}

#[async_trait]
impl<B: Backend> ApiTokenStore for SqlStore<B> {
    async fn insert_api_token(&self, token: &ApiToken) -> StoreResult<()> {
        self.0
            .write(|tx| api_tokens::insert_api_token(tx, token))
            .await
    }

    async fn api_token_by_hash(&self, token_hash: &TokenHash) -> StoreResult<Option<ApiToken>> {
        self.0
            .read(|c| api_tokens::api_token_by_hash(c, token_hash))
            .await
    }

    async fn api_tokens_of_account(&self, account_id: &str) -> StoreResult<Vec<ApiToken>> {
        self.0
            .read(|c| api_tokens::api_tokens_of_account(c, account_id))
            .await
    }

    async fn revoke_api_token(
        &self,
        account_id: &str,
        token_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.0
            .write(|tx| api_tokens::revoke_api_token(tx, account_id, token_id, now))
            .await
    }

    async fn touch_api_token(&self, token_id: &str, at: OffsetDateTime) -> StoreResult<()> {
        self.0
            .write(|tx| api_tokens::touch_api_token(tx, token_id, at))
            .await
    }
}

#[async_trait]
impl<B: Backend> PolicyStore for SqlStore<B> {
    async fn put_container(&self, container: &Container) -> StoreResult<()> {
        self.0
            .write(|tx| policies::put_container(tx, container))
            .await
    }

    async fn containers(
        &self,
        cloud_id: &str,
        product_key: Option<&str>,
    ) -> StoreResult<Vec<Container>> {
        self.0
            .read(|c| policies::containers(c, cloud_id, product_key))
            .await
    }

    async fn set_guest_containers(
        &self,
        account_id: &str,
        cloud_id: &str,
        product_key: &str,
        container_keys: &[String],
    ) -> StoreResult<()> {
        self.0
            .write(|tx| {
                policies::set_guest_containers(
                    tx,
                    account_id,
                    cloud_id,
                    product_key,
                    container_keys,
                )
            })
            .await
    }

    async fn guest_containers(
        &self,
        account_id: &str,
        cloud_id: &str,
        product_key: &str,
    ) -> StoreResult<Vec<String>> {
        self.0
            .read(|c| policies::guest_containers(c, account_id, cloud_id, product_key))
            .await
    }

    async fn put_policy(&self, policy: &Policy, outbox: &[Outbox]) -> StoreResult<()> {
        self.0
            .write(|tx| policies::put_policy(tx, policy, outbox))
            .await
    }

    async fn policy(&self, policy_id: &str) -> StoreResult<Option<Policy>> {
        self.0.snapshot(|tx| policies::policy(tx, policy_id)).await
    }

    async fn policies(&self, cloud_id: &str) -> StoreResult<Vec<Policy>> {
        self.0.snapshot(|tx| policies::policies(tx, cloud_id)).await
    }
}

#[async_trait]
impl<B: Backend> SiteStore for SqlStore<B> {
    async fn insert_site(&self, site: &Site) -> StoreResult<()> {
        self.0.write(|tx| sites::insert_site(tx, site)).await
    }

    async fn site(&self, cloud_id: &str) -> StoreResult<Option<Site>> {
        self.0.read(|c| sites::site(c, cloud_id)).await
    }

    async fn list_sites(&self) -> StoreResult<Vec<Site>> {
        self.0.read(sites::list_sites).await
    }

    async fn set_user_installs(&self, cloud_id: &str, value: UserInstalls) -> StoreResult<()> {
        self.0
            .write(|tx| sites::set_user_installs(tx, cloud_id, value))
            .await
    }

    async fn upsert_product(&self, product: &Product) -> StoreResult<()> {
        self.0.write(|tx| sites::upsert_product(tx, product)).await
    }

    async fn product(&self, key: &str) -> StoreResult<Option<Product>> {
        self.0.snapshot(|tx| sites::product(tx, key)).await
    }

    async fn list_products(&self) -> StoreResult<Vec<Product>> {
        self.0.snapshot(sites::list_products).await
    }

    async fn put_product_operations(
        &self,
        product_key: &str,
        operations: &[ProductOperation],
    ) -> StoreResult<()> {
        self.0
            .write(|tx| sites::put_product_operations(tx, product_key, operations))
            .await
    }

    async fn product_operations(&self, product_key: &str) -> StoreResult<Vec<ProductOperation>> {
        self.0
            .read(|c| sites::product_operations(c, product_key))
            .await
    }

    async fn put_site_product(&self, site_product: &SiteProduct) -> StoreResult<()> {
        self.0
            .write(|tx| sites::put_site_product(tx, site_product))
            .await
    }

    async fn site_products(&self, cloud_id: &str) -> StoreResult<Vec<SiteProduct>> {
        self.0.read(|c| sites::site_products(c, cloud_id)).await
    }

    async fn put_membership(&self, membership: &Membership) -> StoreResult<()> {
        self.0
            .write(|tx| sites::put_membership(tx, membership))
            .await
    }

    async fn remove_membership(
        &self,
        account_id: &str,
        cloud_id: &str,
        product_key: &str,
    ) -> StoreResult<bool> {
        self.0
            .write(|tx| sites::remove_membership(tx, account_id, cloud_id, product_key))
            .await
    }

    async fn memberships_of_account(&self, account_id: &str) -> StoreResult<Vec<Membership>> {
        self.0
            .read(|c| sites::memberships_of_account(c, account_id))
            .await
    }

    async fn memberships_of_site(&self, cloud_id: &str) -> StoreResult<Vec<Membership>> {
        self.0
            .read(|c| sites::memberships_of_site(c, cloud_id))
            .await
    }
}

#[async_trait]
impl<B: Backend> AppStore for SqlStore<B> {
    async fn insert_app(&self, app: &App, secret: Option<&AppSecret>) -> StoreResult<()> {
        self.0.write(|tx| apps::insert_app(tx, app, secret)).await
    }

    async fn app(&self, app_id: &str) -> StoreResult<Option<App>> {
        self.0.snapshot(|tx| apps::app(tx, app_id)).await
    }

    async fn app_by_client_id(&self, client_id: &str) -> StoreResult<Option<App>> {
        self.0
            .snapshot(|tx| apps::app_by_client_id(tx, client_id))
            .await
    }

    async fn web_origin_registered(&self, origin: &str) -> StoreResult<bool> {
        self.0
            .read(|c| apps::web_origin_registered(c, origin))
            .await
    }

    async fn list_apps(&self, owner_account_id: Option<&str>) -> StoreResult<Vec<App>> {
        self.0
            .snapshot(|tx| apps::list_apps(tx, owner_account_id))
            .await
    }

    async fn update_app(&self, app: &App) -> StoreResult<()> {
        self.0.write(|tx| apps::update_app(tx, app)).await
    }

    async fn app_secrets(&self, app_id: &str, now: OffsetDateTime) -> StoreResult<Vec<AppSecret>> {
        self.0.read(|c| apps::app_secrets(c, app_id, now)).await
    }

    async fn rotate_app_secret(
        &self,
        secret: &AppSecret,
        previous_expires_at: OffsetDateTime,
    ) -> StoreResult<()> {
        self.0
            .write(|tx| apps::rotate_app_secret(tx, secret, previous_expires_at))
            .await
    }

    async fn delete_app(&self, app_id: &str) -> StoreResult<bool> {
        self.0.write(|tx| apps::delete_app(tx, app_id)).await
    }

    async fn install_app(&self, installation: &Installation) -> StoreResult<Installation> {
        self.0.write(|tx| apps::install_app(tx, installation)).await
    }

    async fn installations_of_app(&self, app_id: &str) -> StoreResult<Vec<Installation>> {
        self.0.read(|c| apps::installations_of_app(c, app_id)).await
    }

    async fn installations_of_site(&self, cloud_id: &str) -> StoreResult<Vec<Installation>> {
        self.0
            .read(|c| apps::installations_of_site(c, cloud_id))
            .await
    }

    async fn uninstall_app(&self, app_id: &str, cloud_id: &str) -> StoreResult<bool> {
        self.0
            .write(|tx| apps::uninstall_app(tx, app_id, cloud_id))
            .await
    }
}

#[async_trait]
impl<B: Backend> GrantStore for SqlStore<B> {
    async fn accept_consent(
        &self,
        consent: &ConsentRecord,
        new_grant_id: &str,
        code: &NewCode,
    ) -> StoreResult<Grant> {
        self.0
            .write(|tx| grants::accept_consent(tx, B::LOCKS, consent, new_grant_id, code))
            .await
    }

    async fn grant(&self, grant_id: &str) -> StoreResult<Option<Grant>> {
        self.0.snapshot(|tx| grants::grant(tx, grant_id)).await
    }

    async fn access_token_standing(
        &self,
        family_id: &str,
    ) -> StoreResult<Option<AccessTokenStanding>> {
        self.0.access_token_standing(family_id).await
    }

    async fn live_grant(&self, app_id: &str, account_id: &str) -> StoreResult<Option<Grant>> {
        self.0
            .snapshot(|tx| grants::live_grant(tx, app_id, account_id))
            .await
    }

    async fn grants_of_account(&self, account_id: &str) -> StoreResult<Vec<Grant>> {
        self.0
            .snapshot(|tx| grants::grants_of_account(tx, account_id))
            .await
    }

    async fn revoke_grant(&self, grant_id: &str, now: OffsetDateTime) -> StoreResult<bool> {
        self.0
            .write(|tx| grants::revoke_grant(tx, grant_id, now))
            .await
    }

    async fn code(&self, code_hash: &TokenHash) -> StoreResult<Option<AuthorizationCode>> {
        self.0.code(code_hash).await
    }

    async fn redeem_code(
        &self,
        code_hash: &TokenHash,
        family: &NewFamily,
        now: OffsetDateTime,
    ) -> StoreResult<Redeemed> {
        self.0.redeem_code(code_hash, family, now).await
    }

    async fn exchange_code(
        &self,
        plan: &CodePlan,
    ) -> StoreResult<(Option<CodeExchanged>, Durable)> {
        self.0.exchange_code(plan).await
    }

    async fn family(&self, family_id: &str) -> StoreResult<Option<TokenFamily>> {
        self.0.read(|c| grants::family(c, family_id)).await
    }

    async fn refresh_token(&self, key: &RefreshTokenKey) -> StoreResult<Option<RefreshTokenState>> {
        self.0.refresh_token(key).await
    }

    async fn legacy_refresh_token(
        &self,
        token_hash: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenKey>> {
        self.0
            .read(|c| grants::legacy_refresh_token(c, token_hash))
            .await
    }

    async fn refresh_token_of_generation(
        &self,
        family_id: &str,
        generation: i64,
    ) -> StoreResult<Option<RefreshToken>> {
        self.0
            .read(|c| grants::refresh_token_of_generation(c, family_id, generation))
            .await
    }

    async fn rotate_refresh_token(&self, rotation: &Rotation) -> StoreResult<bool> {
        self.0.rotate_refresh_token(rotation).await
    }

    async fn refresh_and_rotate(&self, plan: &RefreshPlan) -> StoreResult<Option<Refreshed>> {
        self.0.refresh_and_rotate(plan).await
    }

    async fn revoke_family(
        &self,
        family_id: &str,
        reason: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.0
            .write(|tx| grants::revoke_family(tx, family_id, reason, now))
            .await
    }
}

#[async_trait]
impl<B: Backend> KeyStore for SqlStore<B> {
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        self.0.read(audit::signing_keys).await
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        self.0.write(|tx| audit::insert_signing_key(tx, key)).await
    }

    async fn rotate_signing_keys(
        &self,
        current_kid: &str,
        next_kid: &str,
        new_next: &SigningKeyRecord,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        self.0
            .write(|tx| audit::rotate_signing_keys(tx, current_kid, next_kid, new_next, now))
            .await
    }
}

#[async_trait]
impl<B: Backend> FailureCounterStore for SqlStore<B> {
    async fn add_failure(
        &self,
        key: &TokenHash,
        window_start: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreResult<u32> {
        self.0
            .write(|tx| failures::add_failure(tx, key, window_start, expires_at))
            .await
    }

    async fn failures(&self, key: &TokenHash, window_start: OffsetDateTime) -> StoreResult<u32> {
        self.0
            .read(|c| failures::failures(c, key, window_start))
            .await
    }

    async fn clear_failures(&self, key: &TokenHash) -> StoreResult<()> {
        self.0.write(|tx| failures::clear_failures(tx, key)).await
    }
}

#[async_trait]
impl<B: Backend> PasswordResetStore for SqlStore<B> {
    async fn insert_password_reset(&self, reset: &PasswordReset) -> StoreResult<()> {
        self.0
            .write(|tx| resets::insert_password_reset(tx, reset))
            .await
    }

    async fn password_reset_account(
        &self,
        token_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<String>> {
        self.0
            .read(|c| resets::password_reset_account(c, token_hash, now))
            .await
    }

    async fn use_password_reset(
        &self,
        token_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.0
            .write(|tx| resets::use_password_reset(tx, token_hash, now))
            .await
    }

    async fn accept_invitation(
        &self,
        token_hash: &TokenHash,
        now: OffsetDateTime,
        name: &str,
        password_hash: &str,
    ) -> StoreResult<Option<Account>> {
        self.0
            .write(|tx| resets::accept_invitation(tx, token_hash, now, name, password_hash))
            .await
    }
}

#[async_trait]
impl<B: Backend> Housekeeping for SqlStore<B> {
    async fn sweep(&self, sweep: Sweep, limit: u32) -> StoreResult<u64> {
        self.0
            .write(|tx| housekeeping::sweep(tx, sweep, limit))
            .await
    }
}

#[async_trait]
impl<B: Backend> AuditLog for SqlStore<B> {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        self.0.append_audit(event).await
    }

    async fn audit_events(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        self.0.read(|c| audit::audit_events(c, query)).await
    }
}

#[async_trait]
impl<B: Backend> EventStore for SqlStore<B> {
    async fn insert_subscription(&self, subscription: &WebhookSubscription) -> StoreResult<()> {
        self.0
            .write(|tx| events::insert_subscription(tx, subscription))
            .await
    }

    async fn subscriptions_of_app(&self, app_id: &str) -> StoreResult<Vec<WebhookSubscription>> {
        self.0
            .snapshot(|tx| events::subscriptions_of_app(tx, app_id))
            .await
    }

    async fn delete_subscription(&self, app_id: &str, subscription_id: &str) -> StoreResult<bool> {
        self.0
            .write(|tx| events::delete_subscription(tx, app_id, subscription_id))
            .await
    }

    async fn subscribers(&self, event_name: &str, cloud_id: &str) -> StoreResult<Vec<Subscriber>> {
        self.0
            .snapshot(|tx| events::subscribers(tx, event_name, cloud_id))
            .await
    }

    async fn member_grant_scopes(
        &self,
        app_id: &str,
        cloud_id: &str,
        product_key: &str,
    ) -> StoreResult<Vec<Vec<String>>> {
        self.0
            .read(|c| events::member_grant_scopes(c, app_id, cloud_id, product_key))
            .await
    }

    async fn record_events(&self, outboxes: &[Outbox]) -> StoreResult<Vec<bool>> {
        self.0.write(|tx| events::record_events(tx, outboxes)).await
    }

    async fn put_container_objects(&self, objects: &[ContainerObject]) -> StoreResult<()> {
        self.0
            .write(|tx| events::put_container_objects(tx, B::DIALECT, objects))
            .await
    }

    async fn container_objects(
        &self,
        cloud_id: &str,
        containers: &[(String, String)],
        limit: u64,
    ) -> StoreResult<(Vec<ContainerObject>, u64)> {
        self.0
            .snapshot(|tx| events::container_objects(tx, cloud_id, containers, limit))
            .await
    }

    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>> {
        let claim_id = uuid::Uuid::new_v4().to_string();
        let (now, lease_until) = (ms(now), ms(lease_until));
        self.0
            .write(|tx| {
                events::claim_deliveries(tx, B::DIALECT, &claim_id, now, lease_until, limit)
            })
            .await
    }

    async fn finish_attempts(
        &self,
        attempts: &[FinishedAttempt],
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let now = ms(now);
        self.0
            .write(|tx| events::finish_attempts(tx, attempts, now))
            .await
    }

    async fn deliveries_of_app(&self, app_id: &str, limit: u32) -> StoreResult<Vec<Delivery>> {
        self.0
            .read(|c| events::deliveries_of_app(c, app_id, limit))
            .await
    }

    async fn redeliver(
        &self,
        app_id: &str,
        delivery_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let now = ms(now);
        self.0
            .write(|tx| events::redeliver(tx, app_id, delivery_id, now))
            .await
    }

    async fn delivery_counts(&self) -> StoreResult<DeliveryCounts> {
        self.0.read(events::delivery_counts).await
    }
}
