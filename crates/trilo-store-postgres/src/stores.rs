//! trilo's storage traits on [`PgStore`]: each method runs the shared operation of
//! trilo-store-sql in the transaction it needs (a READ COMMITTED write, a REPEATABLE READ
//! snapshot or a single query), retried as a whole on a transaction conflict.

use async_trait::async_trait;
use time::OffsetDateTime;
use trilo_core::model::{
    Account, ApiToken, App, AppSecret, AuditEvent, AuditQuery, AuthorizationCode, ConsentRecord,
    Container, ContainerObject, Delivery, DeliveryCounts, DueDelivery, FinishedAttempt, Grant,
    Installation, Membership, NewCode, NewFamily, Outbox, Policy, Product, ProductOperation,
    Redeemed, RefreshToken, RefreshTokenState, Rotation, Session, SigningKeyRecord, Site,
    SiteProduct, Subscriber, TokenFamily, TokenHash, UserInstalls, WebhookSubscription,
};
use trilo_core::refresh_plan::RefreshPlan;
use trilo_core::store::{
    AccountStore, ApiTokenStore, AppStore, AuditLog, EventStore, GrantStore, KeyStore, PolicyStore,
    Refreshed, SessionStore, SiteStore, StoreResult,
};
use trilo_store_sql::convert::ms;
use trilo_store_sql::events::Dialect;
use trilo_store_sql::grants::GrantLocks;
use trilo_store_sql::{accounts, api_tokens, apps, audit, events, grants, policies, sites};

use crate::PgStore;

#[async_trait]
impl AccountStore for PgStore {
    async fn insert_account(&self, account: &Account) -> StoreResult<()> {
        self.write(|tx| accounts::insert_account(tx, account)).await
    }

    async fn account(&self, account_id: &str) -> StoreResult<Option<Account>> {
        self.read(|c| accounts::account(c, account_id)).await
    }

    async fn account_by_email(&self, email: &str) -> StoreResult<Option<Account>> {
        self.read(|c| accounts::account_by_email(c, email)).await
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        self.read(accounts::list_accounts).await
    }

    async fn change_password(
        &self,
        account_id: &str,
        password_hash: &str,
        keep_session: Option<&TokenHash>,
        now: OffsetDateTime,
    ) -> StoreResult<Account> {
        self.write(|tx| accounts::change_password(tx, account_id, password_hash, keep_session, now))
            .await
    }
}

#[async_trait]
impl SessionStore for PgStore {
    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        self.write(|tx| accounts::insert_session(tx, session)).await
    }

    async fn session(
        &self,
        id_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        self.read(|c| accounts::session(c, id_hash, now)).await
    }

    async fn delete_session(&self, id_hash: &TokenHash) -> StoreResult<()> {
        self.write(|tx| accounts::delete_session(tx, id_hash)).await
    }
}

#[async_trait]
impl ApiTokenStore for PgStore {
    async fn insert_api_token(&self, token: &ApiToken) -> StoreResult<()> {
        self.write(|tx| api_tokens::insert_api_token(tx, token))
            .await
    }

    async fn api_token_by_hash(&self, token_hash: &TokenHash) -> StoreResult<Option<ApiToken>> {
        self.read(|c| api_tokens::api_token_by_hash(c, token_hash))
            .await
    }

    async fn api_tokens_of_account(&self, account_id: &str) -> StoreResult<Vec<ApiToken>> {
        self.read(|c| api_tokens::api_tokens_of_account(c, account_id))
            .await
    }

    async fn revoke_api_token(
        &self,
        account_id: &str,
        token_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.write(|tx| api_tokens::revoke_api_token(tx, account_id, token_id, now))
            .await
    }

    async fn touch_api_token(&self, token_id: &str, at: OffsetDateTime) -> StoreResult<()> {
        self.write(|tx| api_tokens::touch_api_token(tx, token_id, at))
            .await
    }
}

#[async_trait]
impl PolicyStore for PgStore {
    async fn put_container(&self, container: &Container) -> StoreResult<()> {
        self.write(|tx| policies::put_container(tx, container))
            .await
    }

    async fn containers(
        &self,
        cloud_id: &str,
        product_key: Option<&str>,
    ) -> StoreResult<Vec<Container>> {
        self.read(|c| policies::containers(c, cloud_id, product_key))
            .await
    }

    async fn set_guest_containers(
        &self,
        account_id: &str,
        cloud_id: &str,
        product_key: &str,
        container_keys: &[String],
    ) -> StoreResult<()> {
        self.write(|tx| {
            policies::set_guest_containers(tx, account_id, cloud_id, product_key, container_keys)
        })
        .await
    }

    async fn guest_containers(
        &self,
        account_id: &str,
        cloud_id: &str,
        product_key: &str,
    ) -> StoreResult<Vec<String>> {
        self.read(|c| policies::guest_containers(c, account_id, cloud_id, product_key))
            .await
    }

    async fn put_policy(&self, policy: &Policy, outbox: &[Outbox]) -> StoreResult<()> {
        self.write(|tx| policies::put_policy(tx, policy, outbox))
            .await
    }

    async fn policy(&self, policy_id: &str) -> StoreResult<Option<Policy>> {
        self.snapshot(|tx| policies::policy(tx, policy_id)).await
    }

    async fn policies(&self, cloud_id: &str) -> StoreResult<Vec<Policy>> {
        self.snapshot(|tx| policies::policies(tx, cloud_id)).await
    }
}

#[async_trait]
impl SiteStore for PgStore {
    async fn insert_site(&self, site: &Site) -> StoreResult<()> {
        self.write(|tx| sites::insert_site(tx, site)).await
    }

    async fn site(&self, cloud_id: &str) -> StoreResult<Option<Site>> {
        self.read(|c| sites::site(c, cloud_id)).await
    }

    async fn list_sites(&self) -> StoreResult<Vec<Site>> {
        self.read(sites::list_sites).await
    }

    async fn set_user_installs(&self, cloud_id: &str, value: UserInstalls) -> StoreResult<()> {
        self.write(|tx| sites::set_user_installs(tx, cloud_id, value))
            .await
    }

    async fn upsert_product(&self, product: &Product) -> StoreResult<()> {
        self.write(|tx| sites::upsert_product(tx, product)).await
    }

    async fn product(&self, key: &str) -> StoreResult<Option<Product>> {
        self.snapshot(|tx| sites::product(tx, key)).await
    }

    async fn list_products(&self) -> StoreResult<Vec<Product>> {
        self.snapshot(sites::list_products).await
    }

    async fn put_product_operations(
        &self,
        product_key: &str,
        operations: &[ProductOperation],
    ) -> StoreResult<()> {
        self.write(|tx| sites::put_product_operations(tx, product_key, operations))
            .await
    }

    async fn product_operations(&self, product_key: &str) -> StoreResult<Vec<ProductOperation>> {
        self.read(|c| sites::product_operations(c, product_key))
            .await
    }

    async fn put_site_product(&self, site_product: &SiteProduct) -> StoreResult<()> {
        self.write(|tx| sites::put_site_product(tx, site_product))
            .await
    }

    async fn site_products(&self, cloud_id: &str) -> StoreResult<Vec<SiteProduct>> {
        self.read(|c| sites::site_products(c, cloud_id)).await
    }

    async fn put_membership(&self, membership: &Membership) -> StoreResult<()> {
        self.write(|tx| sites::put_membership(tx, membership)).await
    }

    async fn remove_membership(
        &self,
        account_id: &str,
        cloud_id: &str,
        product_key: &str,
    ) -> StoreResult<bool> {
        self.write(|tx| sites::remove_membership(tx, account_id, cloud_id, product_key))
            .await
    }

    async fn memberships_of_account(&self, account_id: &str) -> StoreResult<Vec<Membership>> {
        self.read(|c| sites::memberships_of_account(c, account_id))
            .await
    }

    async fn memberships_of_site(&self, cloud_id: &str) -> StoreResult<Vec<Membership>> {
        self.read(|c| sites::memberships_of_site(c, cloud_id)).await
    }
}

#[async_trait]
impl AppStore for PgStore {
    async fn insert_app(&self, app: &App, secret: Option<&AppSecret>) -> StoreResult<()> {
        self.write(|tx| apps::insert_app(tx, app, secret)).await
    }

    async fn app(&self, app_id: &str) -> StoreResult<Option<App>> {
        self.snapshot(|tx| apps::app(tx, app_id)).await
    }

    async fn app_by_client_id(&self, client_id: &str) -> StoreResult<Option<App>> {
        self.snapshot(|tx| apps::app_by_client_id(tx, client_id))
            .await
    }

    async fn list_apps(&self, owner_account_id: Option<&str>) -> StoreResult<Vec<App>> {
        self.snapshot(|tx| apps::list_apps(tx, owner_account_id))
            .await
    }

    async fn update_app(&self, app: &App) -> StoreResult<()> {
        self.write(|tx| apps::update_app(tx, app)).await
    }

    async fn app_secrets(&self, app_id: &str, now: OffsetDateTime) -> StoreResult<Vec<AppSecret>> {
        self.read(|c| apps::app_secrets(c, app_id, now)).await
    }

    async fn rotate_app_secret(
        &self,
        secret: &AppSecret,
        previous_expires_at: OffsetDateTime,
    ) -> StoreResult<()> {
        self.write(|tx| apps::rotate_app_secret(tx, secret, previous_expires_at))
            .await
    }

    async fn delete_app(&self, app_id: &str) -> StoreResult<bool> {
        self.write(|tx| apps::delete_app(tx, app_id)).await
    }

    async fn install_app(&self, installation: &Installation) -> StoreResult<Installation> {
        self.write(|tx| apps::install_app(tx, installation)).await
    }

    async fn installations_of_app(&self, app_id: &str) -> StoreResult<Vec<Installation>> {
        self.read(|c| apps::installations_of_app(c, app_id)).await
    }

    async fn installations_of_site(&self, cloud_id: &str) -> StoreResult<Vec<Installation>> {
        self.read(|c| apps::installations_of_site(c, cloud_id))
            .await
    }

    async fn uninstall_app(&self, app_id: &str, cloud_id: &str) -> StoreResult<bool> {
        self.write(|tx| apps::uninstall_app(tx, app_id, cloud_id))
            .await
    }
}

/// Row locks that order concurrent writers at READ COMMITTED (SQLite's single writer needs
/// none). SQLite has no `FOR UPDATE`/`FOR SHARE`, so these statements stay here.
const LOCKS: GrantLocks = GrantLocks {
    // Locking the live grant queues concurrent consents of the same account to the same
    // app; when there is none, two inserts race on `grants_live_key` and the loser runs
    // again (see `error::retry`), then updating the winner's grant.
    live_grant: "SELECT grant_id, scopes FROM grants WHERE app_id = $1 AND account_id = $2 \
                 AND revoked_at IS NULL FOR UPDATE",
    // Wait for a revocation of the grant in flight (its row lock), so the family issued
    // next is born revoked rather than live under a grant revoked a moment ago (security
    // checklist H-C3). For the transactional `grants::redeem_code`; `PgStore::redeem`
    // takes the same lock inside its one statement (`redemption.rs`).
    before_family: Some(
        "SELECT g.grant_id FROM grants g JOIN codes c ON c.grant_id = g.grant_id \
         WHERE c.code_hash = $1 FOR SHARE OF g",
    ),
};

#[async_trait]
impl GrantStore for PgStore {
    async fn accept_consent(
        &self,
        consent: &ConsentRecord,
        new_grant_id: &str,
        code: &NewCode,
    ) -> StoreResult<Grant> {
        self.write(|tx| grants::accept_consent(tx, LOCKS, consent, new_grant_id, code))
            .await
    }

    async fn grant(&self, grant_id: &str) -> StoreResult<Option<Grant>> {
        self.snapshot(|tx| grants::grant(tx, grant_id)).await
    }

    async fn live_grant(&self, app_id: &str, account_id: &str) -> StoreResult<Option<Grant>> {
        self.snapshot(|tx| grants::live_grant(tx, app_id, account_id))
            .await
    }

    async fn grants_of_account(&self, account_id: &str) -> StoreResult<Vec<Grant>> {
        self.snapshot(|tx| grants::grants_of_account(tx, account_id))
            .await
    }

    async fn revoke_grant(&self, grant_id: &str, now: OffsetDateTime) -> StoreResult<bool> {
        self.write(|tx| grants::revoke_grant(tx, grant_id, now))
            .await
    }

    async fn code(&self, code_hash: &TokenHash) -> StoreResult<Option<AuthorizationCode>> {
        self.read(|c| grants::code(c, code_hash)).await
    }

    async fn redeem_code(
        &self,
        code_hash: &TokenHash,
        family: &NewFamily,
        now: OffsetDateTime,
    ) -> StoreResult<Redeemed> {
        self.redeem(code_hash, family, now).await
    }

    async fn family(&self, family_id: &str) -> StoreResult<Option<TokenFamily>> {
        self.read(|c| grants::family(c, family_id)).await
    }

    async fn refresh_token(
        &self,
        token_hash: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenState>> {
        self.read(|c| grants::refresh_token(c, token_hash)).await
    }

    async fn refresh_token_of_generation(
        &self,
        family_id: &str,
        generation: i64,
    ) -> StoreResult<Option<RefreshToken>> {
        self.read(|c| grants::refresh_token_of_generation(c, family_id, generation))
            .await
    }

    async fn rotate_refresh_token(&self, rotation: &Rotation) -> StoreResult<bool> {
        self.rotate(rotation).await
    }

    async fn refresh_and_rotate(
        &self,
        token_hash: &TokenHash,
        plan: &RefreshPlan,
    ) -> StoreResult<Option<Refreshed>> {
        self.refresh(token_hash, plan).await
    }

    async fn revoke_family(
        &self,
        family_id: &str,
        reason: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.write(|tx| grants::revoke_family(tx, family_id, reason, now))
            .await
    }
}

#[async_trait]
impl KeyStore for PgStore {
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        self.read(audit::signing_keys).await
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        self.write(|tx| audit::insert_signing_key(tx, key)).await
    }
}

#[async_trait]
impl AuditLog for PgStore {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        self.write(|tx| audit::append_audit(tx, event)).await
    }

    async fn audit_events(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        self.read(|c| audit::audit_events(c, query)).await
    }
}

/// The SQL dialect of this backend's webhook statements.
const DIALECT: Dialect = Dialect::Postgres;

#[async_trait]
impl EventStore for PgStore {
    async fn insert_subscription(&self, subscription: &WebhookSubscription) -> StoreResult<()> {
        self.write(|tx| events::insert_subscription(tx, subscription))
            .await
    }

    async fn subscriptions_of_app(&self, app_id: &str) -> StoreResult<Vec<WebhookSubscription>> {
        self.snapshot(|tx| events::subscriptions_of_app(tx, app_id))
            .await
    }

    async fn delete_subscription(&self, app_id: &str, subscription_id: &str) -> StoreResult<bool> {
        self.write(|tx| events::delete_subscription(tx, app_id, subscription_id))
            .await
    }

    async fn subscribers(&self, event_name: &str, cloud_id: &str) -> StoreResult<Vec<Subscriber>> {
        self.snapshot(|tx| events::subscribers(tx, event_name, cloud_id))
            .await
    }

    async fn member_grant_scopes(
        &self,
        app_id: &str,
        cloud_id: &str,
        product_key: &str,
    ) -> StoreResult<Vec<Vec<String>>> {
        self.read(|c| events::member_grant_scopes(c, app_id, cloud_id, product_key))
            .await
    }

    async fn record_events(&self, outboxes: &[Outbox]) -> StoreResult<Vec<bool>> {
        self.write(|tx| events::record_events(tx, outboxes)).await
    }

    async fn put_container_objects(&self, objects: &[ContainerObject]) -> StoreResult<()> {
        self.write(|tx| events::put_container_objects(tx, DIALECT, objects))
            .await
    }

    async fn container_objects(
        &self,
        cloud_id: &str,
        containers: &[(String, String)],
        limit: u64,
    ) -> StoreResult<(Vec<ContainerObject>, u64)> {
        self.snapshot(|tx| events::container_objects(tx, cloud_id, containers, limit))
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
        self.write(|tx| events::claim_deliveries(tx, DIALECT, &claim_id, now, lease_until, limit))
            .await
    }

    async fn finish_attempts(
        &self,
        attempts: &[FinishedAttempt],
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let now = ms(now);
        self.write(|tx| events::finish_attempts(tx, attempts, now))
            .await
    }

    async fn deliveries_of_app(&self, app_id: &str, limit: u32) -> StoreResult<Vec<Delivery>> {
        self.read(|c| events::deliveries_of_app(c, app_id, limit))
            .await
    }

    async fn redeliver(
        &self,
        app_id: &str,
        delivery_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let now = ms(now);
        self.write(|tx| events::redeliver(tx, app_id, delivery_id, now))
            .await
    }

    async fn delivery_counts(&self) -> StoreResult<DeliveryCounts> {
        self.read(events::delivery_counts).await
    }
}
