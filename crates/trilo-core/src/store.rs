//! Storage traits, one per aggregate, combined into [`Store`] (STYLE §3).
//!
//! Every method is one domain operation and is atomic inside the implementation: no
//! transaction handle crosses these traits. Token values arrive here only as hashes.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::code_plan::{CodeExchanged, CodePlan};
use crate::model::{
    AccessTokenStanding, Account, ApiToken, App, AppSecret, AuditEvent, AuditQuery,
    AuthorizationCode, ConsentRecord, Container, ContainerObject, Delivery, DeliveryCounts,
    DueDelivery, FinishedAttempt, Grant, Installation, Membership, NewCode, NewFamily, Outbox,
    PasswordReset, Policy, Product, ProductOperation, Redeemed, RefreshToken, RefreshTokenKey,
    RefreshTokenState, Rotation, Session, SigningKeyRecord, Site, SiteProduct, Subscriber,
    TokenFamily, TokenHash, UserInstalls, WebhookSubscription,
};
use crate::refresh_plan::RefreshPlan;

/// What [`GrantStore::refresh_and_rotate`] read and whether it rotated.
#[derive(Debug)]
pub struct Refreshed {
    /// The state as read, before the rotation.
    pub state: RefreshTokenState,
    /// Whether the plan's rotation was applied; `false` also when its compare-and-set lost.
    pub rotated: bool,
    /// When the rotation is on disk. The caller waits for it before it answers anyone.
    pub durable: Durable,
}

/// The commit that holds a write, as its caller sees it. A store may hand back what a
/// write read and decided while the commit is still syncing (SQLite's committer does), so
/// that the caller can sign the access token meanwhile; nothing may leave the server until
/// [`Durable::wait`] says the commit succeeded.
#[derive(Debug)]
pub struct Durable(Option<tokio::sync::oneshot::Receiver<StoreResult<()>>>);

impl Durable {
    /// The write was committed before the store answered.
    pub fn committed() -> Self {
        Durable(None)
    }

    /// The commit's outcome will arrive on `outcome`.
    pub fn pending(outcome: tokio::sync::oneshot::Receiver<StoreResult<()>>) -> Self {
        Durable(Some(outcome))
    }

    /// Waits for the commit: `Ok` once the write is on disk, the commit's error otherwise.
    pub async fn wait(self) -> StoreResult<()> {
        match self.0 {
            None => Ok(()),
            Some(outcome) => outcome.await.unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "the committer stopped before the commit finished".to_owned(),
                ))
            }),
        }
    }
}

/// Why a store operation failed. Driver errors never leave a store crate.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness, reference or check rule was broken; `constraint` names which.
    #[error("conflict: {constraint}")]
    Conflict { constraint: String },
    /// The database could not be reached or refused to work (retryable).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Data in the store could not be read back into the domain model.
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Fails with `Conflict { constraint: "accounts.email" }` when the email (case-insensitive)
    /// is taken.
    async fn insert_account(&self, account: &Account) -> StoreResult<()>;
    async fn account(&self, account_id: &str) -> StoreResult<Option<Account>>;
    /// Case-insensitive lookup.
    async fn account_by_email(&self, email: &str) -> StoreResult<Option<Account>>;
    async fn list_accounts(&self) -> StoreResult<Vec<Account>>;
    /// Stores the new hash, bumps `credential_generation`, ends every session of the account
    /// except `keep_session`, and revokes every token family of the account (reason
    /// `password_changed`). Returns the updated account; `NotFound` if there is none.
    async fn change_password(
        &self,
        account_id: &str,
        password_hash: &str,
        keep_session: Option<&TokenHash>,
        now: OffsetDateTime,
    ) -> StoreResult<Account>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &Session) -> StoreResult<()>;
    /// The session, if it exists and has not expired at `now`.
    async fn session(
        &self,
        id_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>>;
    async fn delete_session(&self, id_hash: &TokenHash) -> StoreResult<()>;
    /// The account's sessions live at `now`, newest first.
    async fn sessions_of_account(
        &self,
        account_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>>;
    /// Ends every session of the account except `keep`; returns how many ended.
    async fn end_other_sessions(&self, account_id: &str, keep: &TokenHash) -> StoreResult<u64>;
}

#[async_trait]
pub trait ApiTokenStore: Send + Sync {
    /// `NotFound` when the account does not exist.
    async fn insert_api_token(&self, token: &ApiToken) -> StoreResult<()>;
    async fn api_token_by_hash(&self, token_hash: &TokenHash) -> StoreResult<Option<ApiToken>>;
    /// Live and revoked tokens of the account, newest first.
    async fn api_tokens_of_account(&self, account_id: &str) -> StoreResult<Vec<ApiToken>>;
    /// Revokes the account's token; returns whether a live one was revoked.
    async fn revoke_api_token(
        &self,
        account_id: &str,
        token_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Records a use (the caller limits how often, to keep writes off the hot path).
    async fn touch_api_token(&self, token_id: &str, at: OffsetDateTime) -> StoreResult<()>;
}

#[async_trait]
pub trait SiteStore: Send + Sync {
    /// `Conflict { constraint: "sites.cloud_id" }` when the cloud id exists.
    async fn insert_site(&self, site: &Site) -> StoreResult<()>;
    async fn site(&self, cloud_id: &str) -> StoreResult<Option<Site>>;
    async fn list_sites(&self) -> StoreResult<Vec<Site>>;
    /// `NotFound` when the site does not exist.
    async fn set_user_installs(&self, cloud_id: &str, value: UserInstalls) -> StoreResult<()>;

    /// Inserts the product or replaces its display name and scope list.
    async fn upsert_product(&self, product: &Product) -> StoreResult<()>;
    async fn product(&self, key: &str) -> StoreResult<Option<Product>>;
    async fn list_products(&self) -> StoreResult<Vec<Product>>;
    /// Replaces the product's operation catalog; `NotFound` when the product is unknown.
    async fn put_product_operations(
        &self,
        product_key: &str,
        operations: &[ProductOperation],
    ) -> StoreResult<()>;
    /// The product's operations in their stored order (empty for an unknown product).
    async fn product_operations(&self, product_key: &str) -> StoreResult<Vec<ProductOperation>>;
    /// Inserts or updates the upstream; `NotFound` when the site or product is unknown.
    async fn put_site_product(&self, site_product: &SiteProduct) -> StoreResult<()>;
    async fn site_products(&self, cloud_id: &str) -> StoreResult<Vec<SiteProduct>>;

    /// Inserts or changes the role; `NotFound` when account, site or site product is unknown.
    async fn put_membership(&self, membership: &Membership) -> StoreResult<()>;
    /// Returns whether a membership was removed.
    async fn remove_membership(
        &self,
        account_id: &str,
        cloud_id: &str,
        product_key: &str,
    ) -> StoreResult<bool>;
    async fn memberships_of_account(&self, account_id: &str) -> StoreResult<Vec<Membership>>;
    async fn memberships_of_site(&self, cloud_id: &str) -> StoreResult<Vec<Membership>>;
}

#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Inserts the container or changes its id and name; `NotFound` when the site does not
    /// host the product; `Conflict` when another container of it has that id.
    async fn put_container(&self, container: &Container) -> StoreResult<()>;
    /// The site's containers (of one product, or all), by product and key.
    async fn containers(
        &self,
        cloud_id: &str,
        product_key: Option<&str>,
    ) -> StoreResult<Vec<Container>>;
    /// Replaces the containers a guest membership reaches; `NotFound` when the membership
    /// or a container does not exist.
    async fn set_guest_containers(
        &self,
        account_id: &str,
        cloud_id: &str,
        product_key: &str,
        container_keys: &[String],
    ) -> StoreResult<()>;
    async fn guest_containers(
        &self,
        account_id: &str,
        cloud_id: &str,
        product_key: &str,
    ) -> StoreResult<Vec<String>>;
    /// Inserts the policy or replaces its name, rule, state and containers, and records
    /// the policy events of `outbox` in the same transaction; `NotFound` when the site or a
    /// container does not exist.
    async fn put_policy(&self, policy: &Policy, outbox: &[Outbox]) -> StoreResult<()>;
    async fn policy(&self, policy_id: &str) -> StoreResult<Option<Policy>>;
    /// The site's policies, oldest first.
    async fn policies(&self, cloud_id: &str) -> StoreResult<Vec<Policy>>;
}

#[async_trait]
pub trait AppStore: Send + Sync {
    /// Inserts the app with its first secret (none for public clients).
    /// `Conflict { constraint: "apps.client_id" }` when the client id exists.
    async fn insert_app(&self, app: &App, secret: Option<&AppSecret>) -> StoreResult<()>;
    async fn app(&self, app_id: &str) -> StoreResult<Option<App>>;
    async fn app_by_client_id(&self, client_id: &str) -> StoreResult<Option<App>>;
    /// Whether any app lists `origin` among its web origins.
    async fn web_origin_registered(&self, origin: &str) -> StoreResult<bool>;
    /// All apps, or those of one owner, oldest first.
    async fn list_apps(&self, owner_account_id: Option<&str>) -> StoreResult<Vec<App>>;
    /// Replaces the mutable fields (name, description, avatar, callback URLs, scopes, web
    /// origins, distribution, review state, updated_at). `NotFound` when the app does not exist.
    async fn update_app(&self, app: &App) -> StoreResult<()>;
    /// Secrets that are valid at `now` (current, or rotated away but inside their grace).
    async fn app_secrets(&self, app_id: &str, now: OffsetDateTime) -> StoreResult<Vec<AppSecret>>;
    /// Adds a new current secret; every other secret of the app that has no expiry gets
    /// `previous_expires_at` (the end of the rotation's grace period).
    async fn rotate_app_secret(
        &self,
        secret: &AppSecret,
        previous_expires_at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Deletes the app and everything it holds (secrets, installations, grants, codes,
    /// families). Returns whether it existed.
    async fn delete_app(&self, app_id: &str) -> StoreResult<bool>;

    /// Installs the app on the site unless it is installed already (the first
    /// installation's record wins). Returns the installation in force.
    async fn install_app(&self, installation: &Installation) -> StoreResult<Installation>;
    async fn installations_of_app(&self, app_id: &str) -> StoreResult<Vec<Installation>>;
    async fn installations_of_site(&self, cloud_id: &str) -> StoreResult<Vec<Installation>>;
    async fn uninstall_app(&self, app_id: &str, cloud_id: &str) -> StoreResult<bool>;
}

#[async_trait]
pub trait GrantStore: Send + Sync {
    /// One accepted consent, atomically: create the account's live grant for the app (id
    /// `new_grant_id`) or update it (scopes replaced, or added to with
    /// `include_granted_scopes`; the site added to its sites), install the app on the site
    /// if it is not installed yet, and insert the authorization code linked to the grant.
    async fn accept_consent(
        &self,
        consent: &ConsentRecord,
        new_grant_id: &str,
        code: &NewCode,
    ) -> StoreResult<Grant>;
    async fn grant(&self, grant_id: &str) -> StoreResult<Option<Grant>>;
    /// The family with its grant's live scopes and its account's generation; `None` for
    /// an unknown family. The access-token check's one read.
    async fn access_token_standing(
        &self,
        family_id: &str,
    ) -> StoreResult<Option<AccessTokenStanding>>;
    async fn live_grant(&self, app_id: &str, account_id: &str) -> StoreResult<Option<Grant>>;
    /// Live and revoked grants of the account, newest first.
    async fn grants_of_account(&self, account_id: &str) -> StoreResult<Vec<Grant>>;
    /// Revokes the grant and every token family issued under it. Returns whether a live
    /// grant was revoked.
    async fn revoke_grant(&self, grant_id: &str, now: OffsetDateTime) -> StoreResult<bool>;

    async fn code(&self, code_hash: &TokenHash) -> StoreResult<Option<AuthorizationCode>>;
    /// Marks the code used and creates its token family in one transaction: exactly one
    /// concurrent caller gets `First`. The family copies the code's grant, app, account and
    /// scopes and the account's current credential generation; its first refresh token
    /// (generation 0), if `family.refresh_token` is set, is kept in the same transaction
    /// (the family's head, or a row of its own, as the token's `kept` says), and so is
    /// `family.issued`, the audit event, when the family is born live.
    async fn redeem_code(
        &self,
        code_hash: &TokenHash,
        family: &NewFamily,
        now: OffsetDateTime,
    ) -> StoreResult<Redeemed>;
    /// The authorization-code grant's store step: the code (`None` when unknown) and, when
    /// [`CodePlan::redeems`] it, its redemption with [`CodePlan::family`] as
    /// [`GrantStore::redeem_code`] does it. The token endpoint signs before it answers, so
    /// the store may answer before its commit is on disk; the caller waits on the
    /// [`Durable`] before it answers anyone.
    async fn exchange_code(&self, plan: &CodePlan)
    -> StoreResult<(Option<CodeExchanged>, Durable)>;
    async fn family(&self, family_id: &str) -> StoreResult<Option<TokenFamily>>;
    /// The refresh token at this key and its family, in one snapshot: a token with a row
    /// when its hash matches, one its family keeps when the family issued that generation.
    async fn refresh_token(&self, key: &RefreshTokenKey) -> StoreResult<Option<RefreshTokenState>>;
    /// The key of a refresh token issued before tokens carried their key (a bare secret,
    /// stored before migration 0018), by its hash; `None` for any other hash.
    async fn legacy_refresh_token(
        &self,
        token_hash: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenKey>>;
    /// The family's refresh token of one generation with a row of its own (to date an older
    /// access token of a family that keeps no tokens itself).
    async fn refresh_token_of_generation(
        &self,
        family_id: &str,
        generation: i64,
    ) -> StoreResult<Option<RefreshToken>>;
    /// Applies one rotation atomically and durably: moves the family head from
    /// `parent_generation` to the next generation only if the head is still there and the
    /// family is live (and keeps its tokens as the child is kept), and moves the head's
    /// times, or marks the parent rotated and inserts the child. Returns `false` (and
    /// changes nothing) when the compare-and-set lost: the caller reads again and decides.
    async fn rotate_refresh_token(&self, rotation: &Rotation) -> StoreResult<bool>;
    /// The refresh grant's store step: reads the presented token's state and applies the
    /// rotation `plan` asks for ([`RefreshPlan::rotation`]), as
    /// [`GrantStore::rotate_refresh_token`] would. `None` when no token is at
    /// [`RefreshPlan::parent`] (as [`GrantStore::refresh_token`] finds it). A
    /// store does both in one step where it can (one warm connection, one statement, one
    /// batch); otherwise it reads, then rotates (`trilo_store_sql::store::read_then_rotate`).
    /// It may answer before its commit is on disk: the rotation is durable, and visible to
    /// other reads, once the answer's [`Refreshed::durable`] resolves.
    async fn refresh_and_rotate(&self, plan: &RefreshPlan) -> StoreResult<Option<Refreshed>>;
    /// Returns whether a live family was revoked.
    async fn revoke_family(
        &self,
        family_id: &str,
        reason: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// `Conflict` when inserting a `current` or `next` key while another key has that state
    /// (two instances starting at once: the loser reloads). The constraint is
    /// `signing_keys.current` for a second current key.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
    /// In one transaction: `current_kid` becomes `retired`, `next_kid` becomes `current`,
    /// and `new_next` is added as `next`. A compare-and-set: when `current_kid` is no longer
    /// current or `next_kid` no longer next (another instance rotated first), nothing
    /// changes and the answer is `Conflict { constraint: "signing_keys.rotated" }`.
    async fn rotate_signing_keys(
        &self,
        current_kid: &str,
        next_kid: &str,
        new_next: &SigningKeyRecord,
        now: OffsetDateTime,
    ) -> StoreResult<()>;
}

/// One kind of row the janitor removes (see `services::janitor`), with its cutoff: rows
/// whose time is before it go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sweep {
    /// Authorization codes that expired.
    ExpiredCodes(OffsetDateTime),
    /// Login sessions that expired.
    ExpiredSessions(OffsetDateTime),
    /// Refresh tokens, used or not, whose own inactivity lifetime ended: none of them can
    /// be redeemed any more, and a used one is kept until then so that a replay is still
    /// recognised as reuse.
    DeadRefreshTokens(OffsetDateTime),
    /// Token families revoked before the cutoff, with their refresh tokens.
    RevokedFamilies(OffsetDateTime),
    /// Token families whose absolute lifetime ended before the cutoff.
    ExpiredFamilies(OffsetDateTime),
    /// Retired signing keys retired before the cutoff.
    RetiredKeys(OffsetDateTime),
    /// Failure-counter windows that ended before the cutoff.
    EndedFailureWindows(OffsetDateTime),
    /// Password reset links that expired before the cutoff.
    ExpiredPasswordResets(OffsetDateTime),
}

/// "Forgot password" links (see `services::password_reset`).
#[async_trait]
pub trait PasswordResetStore: Send + Sync {
    async fn insert_password_reset(&self, reset: &PasswordReset) -> StoreResult<()>;
    /// The account of a link that is unused and unexpired at `now`.
    async fn password_reset_account(
        &self,
        token_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<String>>;
    /// Uses the link: `true` for the one caller that used it while it was live.
    async fn use_password_reset(
        &self,
        token_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Accepts an invitation in one transaction: uses the live link and makes its
    /// `Invited` account active with this name and password hash. `None`, changing
    /// nothing, when the link is not live or its account is not (or no longer) invited.
    async fn accept_invitation(
        &self,
        token_hash: &TokenHash,
        now: OffsetDateTime,
        name: &str,
        password_hash: &str,
    ) -> StoreResult<Option<Account>>;
}

/// Failure counters every instance shares (failed logins, see `services::failures`): one
/// count per key and fixed window. Keys are hashes, never the email or address counted.
#[async_trait]
pub trait FailureCounterStore: Send + Sync {
    /// Counts one more failure in the window; returns the window's count with it.
    async fn add_failure(
        &self,
        key: &TokenHash,
        window_start: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreResult<u32>;
    /// The window's count (0 when nothing failed in it).
    async fn failures(&self, key: &TokenHash, window_start: OffsetDateTime) -> StoreResult<u32>;
    /// Forgets every window of the key (a successful login).
    async fn clear_failures(&self, key: &TokenHash) -> StoreResult<()>;
}

#[async_trait]
pub trait Housekeeping: Send + Sync {
    /// Removes at most `limit` rows of one kind, in one short transaction; returns how many
    /// went (fewer than `limit`: nothing more to remove for now).
    async fn sweep(&self, sweep: Sweep, limit: u32) -> StoreResult<u64>;
}

#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Newest first, at most `query.limit` (0 means 100).
    async fn audit_events(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>>;
}

/// Webhooks: subscriptions, the durable outbox of events and deliveries, and the objects
/// products report inside containers (DESIGN §3 "Webhooks").
#[async_trait]
pub trait EventStore: Send + Sync {
    /// `NotFound` when the app does not exist.
    async fn insert_subscription(&self, subscription: &WebhookSubscription) -> StoreResult<()>;
    /// The app's subscriptions, oldest first.
    async fn subscriptions_of_app(&self, app_id: &str) -> StoreResult<Vec<WebhookSubscription>>;
    /// Deletes the app's subscription and its deliveries; returns whether it existed.
    async fn delete_subscription(&self, app_id: &str, subscription_id: &str) -> StoreResult<bool>;
    /// The subscriptions to `event_name`, each with whether its app is installed on
    /// `cloud_id`, oldest first.
    async fn subscribers(&self, event_name: &str, cloud_id: &str) -> StoreResult<Vec<Subscriber>>;
    /// The scopes of each live grant of the app whose account is a member of the product on
    /// the site, one list per grant.
    async fn member_grant_scopes(
        &self,
        app_id: &str,
        cloud_id: &str,
        product_key: &str,
    ) -> StoreResult<Vec<Vec<String>>>;
    /// Records the events, their deliveries and their object changes in one transaction.
    /// For each, `false` when an event with its id existed (a product's retry): that one
    /// changes nothing. A delivery to a subscription deleted meanwhile is left out.
    async fn record_events(&self, outboxes: &[Outbox]) -> StoreResult<Vec<bool>>;
    /// [`EventStore::record_events`] for one event.
    async fn record_event(&self, outbox: &Outbox) -> StoreResult<bool> {
        Ok(self
            .record_events(std::slice::from_ref(outbox))
            .await?
            .first()
            .copied()
            .unwrap_or(false))
    }
    /// Adds objects to a container (a product's report); existing ones are kept.
    async fn put_container_objects(&self, objects: &[ContainerObject]) -> StoreResult<()>;
    /// The objects of the containers (product key, container key) of a site in order, at
    /// most `limit`, and how many there are in all.
    async fn container_objects(
        &self,
        cloud_id: &str,
        containers: &[(String, String)],
        limit: u64,
    ) -> StoreResult<(Vec<ContainerObject>, u64)>;
    /// Claims up to `limit` pending deliveries due at `now` for sending: each one's attempt
    /// count goes up and it is not due again before `lease_until`, so a sender that dies
    /// mid-send leaves it to be claimed again, and no other instance claims it meanwhile.
    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>>;
    /// Records how attempts ended, in one transaction. An outcome whose `attempt` is not the
    /// delivery's current count (an older claim's) changes nothing.
    async fn finish_attempts(
        &self,
        attempts: &[FinishedAttempt],
        now: OffsetDateTime,
    ) -> StoreResult<()>;
    /// The app's most recent deliveries, newest first.
    async fn deliveries_of_app(&self, app_id: &str, limit: u32) -> StoreResult<Vec<Delivery>>;
    /// Makes the app's delivery due again at `now` with a fresh count of attempts; returns
    /// whether the app has such a delivery.
    async fn redeliver(
        &self,
        app_id: &str,
        delivery_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    async fn delivery_counts(&self) -> StoreResult<DeliveryCounts>;
}

/// Told when some instance changed what access decisions depend on (a revocation, a
/// block, a membership…), so it can drop what it cached.
pub trait AccessListener: Send + Sync {
    fn access_changed(&self);
}

#[async_trait]
pub trait Store:
    AccountStore
    + SessionStore
    + ApiTokenStore
    + SiteStore
    + PolicyStore
    + AppStore
    + GrantStore
    + KeyStore
    + AuditLog
    + EventStore
    + Housekeeping
    + FailureCounterStore
    + PasswordResetStore
{
    /// Cheap liveness probe for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
    /// How this store's grouped commits went, where it groups them (for `/metrics`).
    fn commit_stats(&self) -> Option<std::sync::Arc<crate::metrics::CommitStats>> {
        None
    }
    /// Which backend this is (`sqlite`, `postgres`), for logs and the startup banner.
    fn backend(&self) -> &'static str;
    /// Tells every instance listening (see [`Store::listen_for_access_changes`]) that
    /// access changed. A backend that cannot do this does nothing.
    async fn announce_access_change(&self) -> StoreResult<()> {
        Ok(())
    }
    /// Calls `listener` whenever any instance announces an access change, for as long as
    /// the store lives (PostgreSQL: `LISTEN`). Returns whether this backend can.
    fn listen_for_access_changes(&self, listener: std::sync::Arc<dyn AccessListener>) -> bool {
        let _ = listener;
        false
    }
}
