//! Domain records as the stores keep them (DESIGN §2).
//!
//! These are plain data: ids are strings (UUIDv7 unless said otherwise), scopes are
//! space-free tokens, times are UTC. Secrets never appear here, only their SHA-256 hashes.

use time::OffsetDateTime;
use trilo_protocol::ScopeSet;
pub use trilo_protocol::alias::PathAlias;
/// A membership's role is the protocol's value (the gateway decides with it): one enum.
pub use trilo_protocol::gateway::Role;

/// SHA-256 of a token, code, secret or session id: the only form in which they are stored.
pub type TokenHash = [u8; 32];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub account_id: String,
    pub email: String,
    pub name: String,
    pub nickname: String,
    pub picture: Option<String>,
    pub zoneinfo: String,
    pub locale: String,
    pub extended_profile: ExtendedProfile,
    pub status: AccountStatus,
    /// PHC string (argon2id).
    pub password_hash: String,
    /// Bumped by every password change; refresh-token families remember the value they began with.
    pub credential_generation: i64,
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtendedProfile {
    pub job_title: Option<String>,
    pub organization: Option<String>,
    pub department: Option<String>,
    pub location: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountStatus {
    Active,
    Inactive,
    /// Made by an admin's invitation and not yet accepted: it cannot log in until its
    /// owner chooses a password through the link mailed to them.
    Invited,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Invited => "invited",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "inactive" => Some(Self::Inactive),
            "invited" => Some(Self::Invited),
            _ => None,
        }
    }
}

/// A browser session. The cookie carries a random value; the store keeps its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id_hash: TokenHash,
    pub account_id: String,
    /// Per-session token that every form POST must echo (consent, logout).
    pub csrf_token: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A "forgot password" link: the hash of its token, usable once until it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordReset {
    pub token_hash: TokenHash,
    pub account_id: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A token a user made for scripts: HTTP Basic `email:token` at the gateway, acting with
/// the user's own permissions (DESIGN §2). Only its hash is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    pub token_id: String,
    pub account_id: String,
    pub label: String,
    pub token_hash: TokenHash,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserInstalls {
    Allowed,
    Blocked,
}

impl UserInstalls {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Blocked => "blocked",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allowed" => Some(Self::Allowed),
            "blocked" => Some(Self::Blocked),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// UUID, the `cloudid` of gateway URLs and the `id` of accessible-resources.
    pub cloud_id: String,
    pub name: String,
    pub url: String,
    pub avatar_url: Option<String>,
    pub user_installs: UserInstalls,
    pub created_at: OffsetDateTime,
}

/// A product (any HTTP API) known to the platform, with the scopes of its catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    /// `jira`, `confluence`, …: the `{product}` segment of gateway URLs.
    pub key: String,
    pub display_name: String,
    pub scopes: Vec<ProductScope>,
    /// Other spellings of the product's paths, rewritten by the gateway (Confluence
    /// without `/wiki`).
    pub path_aliases: Vec<PathAlias>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductScope {
    pub scope: String,
    pub description: String,
}

/// One operation of a product's catalog, as stored: what the gateway matches a call
/// against and the scopes it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductOperation {
    /// Upper case: `GET`, `POST`, …
    pub method: String,
    /// The path template after the cloud id, e.g. `/rest/api/3/issue/{issueIdOrKey}`.
    pub template: String,
    /// Any one alternative suffices; every scope of it is needed. Empty: closed to apps.
    pub alternatives: Vec<Vec<String>>,
}

/// A space or project of a product on a site: what guests are limited to and what data
/// security policies cover (DESIGN §2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    pub cloud_id: String,
    pub product_key: String,
    /// The project or space key (`DEMO`), as paths and issue keys name it.
    pub key: String,
    /// The product's numeric or opaque id, as other paths name it.
    pub container_id: String,
    pub name: String,
}

/// A data security policy of a site (DESIGN §2): while active, its app access rule keeps
/// apps away from the containers it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub policy_id: String,
    pub cloud_id: String,
    pub name: String,
    /// The app access rule: apps cannot reach the covered containers.
    pub blocks_apps: bool,
    pub active: bool,
    /// Covered containers as (product key, container key), in the order given.
    pub containers: Vec<(String, String)>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A product hosted on a site, with the upstream its gateway calls go to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteProduct {
    pub cloud_id: String,
    pub product_key: String,
    pub upstream_url: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub account_id: String,
    pub cloud_id: String,
    pub product_key: String,
    pub role: Role,
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    Private,
    Sharing,
}

impl Distribution {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Sharing => "sharing",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "private" => Some(Self::Private),
            "sharing" => Some(Self::Sharing),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewState {
    Unreviewed,
    Approved,
}

impl ReviewState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unreviewed => "unreviewed",
            Self::Approved => "approved",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unreviewed" => Some(Self::Unreviewed),
            "approved" => Some(Self::Approved),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientType {
    Confidential,
    Public,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "confidential" => Some(Self::Confidential),
            "public" => Some(Self::Public),
            _ => None,
        }
    }
}

/// An OAuth client registered in the developer console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    pub app_id: String,
    pub client_id: String,
    pub owner_account_id: String,
    pub name: String,
    pub description: String,
    pub avatar_url: Option<String>,
    /// Registered callback URLs, compared as exact strings.
    pub callback_urls: Vec<String>,
    /// Scopes the app may request (product scopes; the identity scopes are always allowed).
    pub scopes: Vec<String>,
    /// Origins (`https://app.example.com`) of the browser apps that call the token and
    /// revocation endpoints: CORS is answered for these only.
    pub web_origins: Vec<String>,
    pub distribution: Distribution,
    pub review_state: ReviewState,
    pub client_type: ClientType,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// One valid client secret. Two may be valid while a rotation's grace period runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSecret {
    pub secret_id: String,
    pub app_id: String,
    pub secret_hash: TokenHash,
    pub created_at: OffsetDateTime,
    /// `None` while current; set to the end of the grace period when rotated away.
    pub expires_at: Option<OffsetDateTime>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstalledBy {
    UserConsent,
    Admin,
}

impl InstalledBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserConsent => "user_consent",
            Self::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user_consent" => Some(Self::UserConsent),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installation {
    pub app_id: String,
    pub cloud_id: String,
    pub installed_by_account_id: String,
    pub installed_by: InstalledBy,
    pub created_at: OffsetDateTime,
}

/// The one live consent of an account to an app. Revoked grants stay as history; a later
/// consent creates a new grant, so tokens of the revoked one never come back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub grant_id: String,
    pub app_id: String,
    pub account_id: String,
    pub scopes: Vec<String>,
    /// Sites the user picked on consent screens (site-scoped grants accumulate).
    pub cloud_ids: Vec<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// What one authorization does to the account's grant for the app, and the code it
/// issues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRecord {
    pub app_id: String,
    pub account_id: String,
    /// The site the user picked; `None` for "log in with" (identity scopes only), which
    /// adds no site and installs nothing.
    pub cloud_id: Option<String>,
    pub scopes: Vec<String>,
    pub change: GrantChange,
    pub at: OffsetDateTime,
}

/// How an authorization changes the grant's scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantChange {
    /// A consent: the scopes replace the granted ones (the reference's "override"). The
    /// code carries them.
    Replace,
    /// Incremental consent (`include_granted_scopes=true`): the scopes are added to the
    /// granted ones. The code carries everything granted.
    Add,
    /// No consent was asked, as the live grant already holds the scopes: the grant is left
    /// as it is and the code carries the scopes asked for. Without a live grant holding
    /// them the store refuses with `Conflict`.
    Keep,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub code_hash: TokenHash,
    pub app_id: String,
    pub account_id: String,
    pub grant_id: String,
    /// The site picked on the consent page; `None` for "log in with".
    pub cloud_id: Option<String>,
    pub scopes: Vec<String>,
    /// The `redirect_uri` sent to /authorize, if one was sent (RFC 6749 §4.1.3).
    pub redirect_uri: Option<String>,
    /// The S256 challenge, if the request carried one.
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    /// When the user logged in, for an OpenID request's ID Token (`auth_time`).
    pub auth_time: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    /// The token family the first redemption produced.
    pub family_id: Option<String>,
    /// The audience the authorization asked for (`None`: trilo's own).
    pub audience: Option<String>,
}

/// One chain of tokens issued from one code exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenFamily {
    pub family_id: String,
    pub grant_id: String,
    pub app_id: String,
    pub account_id: String,
    pub scopes: Vec<String>,
    /// The account's credential generation when the family began.
    pub credential_generation: i64,
    pub created_at: OffsetDateTime,
    pub absolute_expires_at: OffsetDateTime,
    /// The generation of the newest refresh token (0 for the first, and for families that
    /// hold none): the only one that may rotate.
    pub head_generation: i64,
    pub revoked_at: Option<OffsetDateTime>,
    pub revoke_reason: Option<String>,
    /// The audience the authorization asked for, the `aud` of the family's access tokens;
    /// `None` (families from before audiences were kept) means trilo's own.
    pub audience: Option<String>,
    /// Its head token, for a family whose refresh tokens are kept in its row
    /// ([`TokenKeeping::Family`]); `None` for a family without refresh tokens or whose
    /// tokens have rows of their own.
    pub kept_head: Option<KeptHead>,
}

/// What a family that keeps its own refresh tokens ([`TokenKeeping::Family`]) knows of
/// them: the head's times, and when the generation before it was issued. Each rotation
/// time is the next generation's issue time, so the family dates the rotations of the two
/// generations before its head: enough for the reuse leeway and for an access token of
/// either (DESIGN §3); an older generation's rotation time is not known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeptHead {
    /// When the head was issued: when the generation before it was rotated.
    pub issued_at: OffsetDateTime,
    /// The head's end for inactivity.
    pub inactivity_expires_at: OffsetDateTime,
    /// When the generation before the head was issued; `None` before the first rotation.
    pub previous_issued_at: Option<OffsetDateTime>,
}

impl TokenFamily {
    /// When the kept token of `generation` was rotated, where the family knows it: the
    /// generation before the head at the head's issue, the one before that at the
    /// previous issue. `None` for the head, a later generation, an older one, or a family
    /// that keeps no tokens.
    pub fn kept_rotation_time(&self, generation: i64) -> Option<OffsetDateTime> {
        let head = self.kept_head.as_ref()?;
        match self.head_generation - generation {
            1 => Some(head.issued_at),
            2 => head.previous_issued_at,
            _ => None,
        }
    }

    /// The kept token of `generation` as the rotation decision reads a stored one
    /// (`token_hash` is the presented token's). `None` when the family keeps no tokens or
    /// never issued that generation. A rotated token is spent: its inactivity end reads
    /// as its rotation time where known, else as the head's issue; the issue of one older
    /// than the generation before the head, which the family does not know, reads as the
    /// family's start.
    pub fn kept_token(&self, generation: i64, token_hash: TokenHash) -> Option<RefreshToken> {
        let head = self.kept_head.as_ref()?;
        if generation < 0 || generation > self.head_generation {
            return None;
        }
        if generation == self.head_generation {
            return Some(RefreshToken {
                token_hash,
                family_id: self.family_id.clone(),
                generation,
                issued_at: head.issued_at,
                inactivity_expires_at: head.inactivity_expires_at,
                rotated_at: None,
            });
        }
        let rotated_at = self.kept_rotation_time(generation);
        let spent_by = rotated_at.unwrap_or(head.issued_at);
        Some(RefreshToken {
            token_hash,
            family_id: self.family_id.clone(),
            generation,
            issued_at: if generation + 1 == self.head_generation {
                head.previous_issued_at.unwrap_or(self.created_at)
            } else {
                self.created_at
            },
            inactivity_expires_at: spent_by,
            // Any time marks an older generation rotated: the decision calls it reuse.
            rotated_at: Some(spent_by),
        })
    }
}

/// One refresh token of a family, as stored (by hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken {
    pub token_hash: TokenHash,
    pub family_id: String,
    pub generation: i64,
    pub issued_at: OffsetDateTime,
    /// Issued + the inactivity lifetime: each rotation gives the child a fresh one.
    pub inactivity_expires_at: OffsetDateTime,
    /// When its child was issued; `None` while it is the family's head.
    pub rotated_at: Option<OffsetDateTime>,
}

/// A presented refresh token with its family and what the rotation decision needs of the
/// grant and the account, read in one statement (the refresh path's only read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshTokenState {
    pub token: RefreshToken,
    pub family: TokenFamily,
    /// The family's grant has not been revoked.
    pub grant_live: bool,
    /// The scopes the family's grant holds now; they govern the family's tokens
    /// ([`RefreshTokenState::live_scopes`]).
    pub grant_scopes: Vec<String>,
    /// The account's credential generation now; `None` when the account is not active.
    pub account_credential_generation: Option<i64>,
}

impl RefreshTokenState {
    /// The state of the kept token at `key` ([`TokenKeeping::Family`]), from its family and
    /// the grant and account facts; `None` when the family keeps no tokens or never issued
    /// that generation ([`TokenFamily::kept_token`]).
    pub fn of_kept_token(
        key: &RefreshTokenKey,
        family: TokenFamily,
        grant_live: bool,
        grant_scopes: Vec<String>,
        account_credential_generation: Option<i64>,
    ) -> Option<Self> {
        let token = family.kept_token(key.generation, key.token_hash)?;
        Some(RefreshTokenState {
            token,
            family,
            grant_live,
            grant_scopes,
            account_credential_generation,
        })
    }

    /// What the family's tokens reach now: its scopes as far as the grant still holds them
    /// (`trilo_protocol::scope::live_scopes`).
    pub fn live_scopes(&self) -> Vec<String> {
        trilo_protocol::scope::live_scopes(
            &ScopeSet::from_tokens(&self.family.scopes),
            &ScopeSet::from_tokens(&self.grant_scopes),
        )
        .to_vec()
    }

    /// The grant is live and still allows refreshing (it holds `offline_access`).
    pub fn grant_refreshable(&self) -> bool {
        self.grant_live
            && trilo_protocol::scope::grant_allows_refresh(&ScopeSet::from_tokens(
                &self.grant_scopes,
            ))
    }
}

/// What the access-token check reads of a token's family, in one statement: the family,
/// its grant's scopes while the grant is live and its account's credential generation
/// while the account is active (the liveness facts of [`RefreshTokenState`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessTokenStanding {
    pub family: TokenFamily,
    /// The scopes the family's grant holds now; `None` when the grant is revoked.
    pub grant_scopes: Option<Vec<String>>,
    /// The account's credential generation now; `None` when the account is not active.
    pub account_credential_generation: Option<i64>,
}

/// Where a presented refresh token is kept: its family and generation (carried in the
/// token, see `crate::refresh_token`), how it is kept, and the SHA-256 of the whole token,
/// which a token's own row must match (a token its family keeps was proven by its MAC).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RefreshTokenKey {
    pub family_id: String,
    pub generation: i64,
    pub token_hash: TokenHash,
    pub kept: TokenKeeping,
}

/// Where a family's refresh tokens are kept (`crate::refresh_token`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKeeping {
    /// Each in its own row of `refresh_tokens`, matched by its hash: tokens issued before
    /// migration 0020 (`rt1_` and bare secrets), and their successors.
    Row,
    /// In the family's row ([`KeptHead`]): the token's MAC proves trilo issued it
    /// (`rt2_`), and nothing of it is stored.
    Family,
}

/// A refresh token about to be issued; its generation and family come from the context.
/// A successor is kept the way its parent was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRefreshToken {
    pub token_hash: TokenHash,
    pub inactivity_expires_at: OffsetDateTime,
    pub kept: TokenKeeping,
}

/// One rotation: a compare-and-set of the family head from `parent_generation` to the
/// next, in one transaction. For tokens kept by the family (`child.kept`) the head's times
/// move with it; for tokens with rows the parent is marked rotated and the child inserted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub family_id: String,
    pub parent_hash: TokenHash,
    pub parent_generation: i64,
    pub child: NewRefreshToken,
    pub at: OffsetDateTime,
}

/// Result of redeeming a code: the first redemption gets the new family; later ones get
/// the record so the caller can revoke what the first produced (RFC 6749 §4.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redeemed {
    First(TokenFamily),
    AlreadyUsed(AuthorizationCode),
    NotFound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    Next,
    Current,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Current => "current",
            Self::Retired => "retired",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "next" => Some(Self::Next),
            "current" => Some(Self::Current),
            "retired" => Some(Self::Retired),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// JOSE algorithm name, `ES256`.
    pub alg: String,
    pub state: KeyState,
    /// PKCS#8 private key, encrypted (AES-256-GCM, nonce prepended).
    pub private_key_encrypted: Vec<u8>,
    /// The public JWK as JSON text.
    pub public_jwk: String,
    pub created_at: OffsetDateTime,
    /// When it became `current` (None while `next`).
    pub activated_at: Option<OffsetDateTime>,
    /// When it stopped being `current` (None until `retired`).
    pub retired_at: Option<OffsetDateTime>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub event_id: String,
    pub at: OffsetDateTime,
    /// Account that acted, if any (None for the system and the CLI).
    pub actor_account_id: Option<String>,
    /// Dotted name, e.g. `grant.created`, `code.replayed`, `app.created`.
    pub action: String,
    /// What the action was on: an app id, a grant id, a cloud id…
    pub target: String,
    pub cloud_id: Option<String>,
    /// Extra facts as a JSON object (never secrets).
    pub details: serde_json::Value,
}

/// Filter for listing audit events, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub cloud_id: Option<String>,
    pub action_prefix: Option<String>,
    pub limit: u32,
    /// Events at or after this moment only.
    pub from: Option<OffsetDateTime>,
    /// Events before this moment only.
    pub until: Option<OffsetDateTime>,
    /// The page after this event (its `at` and `event_id`): events older than it.
    pub after_event: Option<(OffsetDateTime, String)>,
}

/// A code about to be issued by an accepted consent; the store links it to the grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCode {
    pub code_hash: TokenHash,
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    /// When the user logged in, for an OpenID request's ID Token (`auth_time`).
    pub auth_time: Option<OffsetDateTime>,
    pub expires_at: OffsetDateTime,
    /// The audience asked for (`None`: trilo's own).
    pub audience: Option<String>,
}

/// The family a first redemption creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFamily {
    pub family_id: String,
    pub absolute_expires_at: OffsetDateTime,
    /// Generation 0 of the family's refresh tokens, when `offline_access` was granted.
    pub refresh_token: Option<NewRefreshToken>,
    /// Appended to the audit log in the same transaction when this redemption is the
    /// first and the family is born live, so the issue and its record are one commit.
    pub issued: Option<AuditEvent>,
}

impl NewFamily {
    /// The first token's inactivity end, when the family keeps it in its row.
    pub fn kept_head_expiry(&self) -> Option<OffsetDateTime> {
        self.refresh_token
            .as_ref()
            .filter(|t| t.kept == TokenKeeping::Family)
            .map(|t| t.inactivity_expires_at)
    }

    /// The first token, when it has a row of its own.
    pub fn stored_first_token(&self) -> Option<&NewRefreshToken> {
        self.refresh_token
            .as_ref()
            .filter(|t| t.kept == TokenKeeping::Row)
    }
}

/// An app's webhook (DESIGN §2): where to send which events. Its signing secret is derived
/// from the instance's key and the subscription id, so the store holds no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSubscription {
    pub subscription_id: String,
    pub app_id: String,
    pub url: String,
    /// Event names, each known to `trilo_protocol::webhooks`.
    pub events: Vec<String>,
    pub created_at: OffsetDateTime,
}

/// Something that happened, as it is delivered: a product's event or a policy event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub event_id: String,
    pub name: String,
    pub cloud_id: Option<String>,
    pub product_key: Option<String>,
    /// The container (space, project) the event is about, for the policy rule.
    pub container_key: Option<String>,
    /// Who triggered it, when the product knows.
    pub account_id: Option<String>,
    /// The JSON body every delivery sends.
    pub body: String,
    pub created_at: OffsetDateTime,
}

/// A delivery to create with its event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    pub delivery_id: String,
    pub subscription_id: String,
    pub app_id: String,
    /// The subscription's URL with `triggeredByUser` where the rule adds it.
    pub url: String,
}

/// What a product reports about an object inside a container, with the event about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectChange {
    Put(ContainerObject),
    Remove(ContainerObject),
}

/// An object inside a container (an issue of a project, a page of a space), as products
/// report them: what a data security policy event lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerObject {
    pub cloud_id: String,
    pub product_key: String,
    pub container_key: String,
    /// `issue`, `page`, … as the product names it.
    pub kind: String,
    pub object_id: String,
}

/// An event and its deliveries: written in the same transaction as the change that caused
/// them (the durable outbox).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbox {
    pub event: Event,
    pub deliveries: Vec<NewDelivery>,
    pub object: Option<ObjectChange>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not yet delivered: due at `next_attempt_at` (or being sent, until its lease ends).
    Pending,
    Delivered,
    /// Every attempt failed; a developer may redeliver it.
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "dead" => Some(Self::Dead),
            _ => None,
        }
    }
}

/// One event's delivery to one subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub delivery_id: String,
    pub event_id: String,
    pub event_name: String,
    pub subscription_id: String,
    pub app_id: String,
    pub url: String,
    pub status: DeliveryStatus,
    /// Attempts started so far.
    pub attempts: i64,
    pub next_attempt_at: OffsetDateTime,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

/// A delivery claimed for sending, with the body to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueDelivery {
    pub delivery: Delivery,
    pub body: String,
}

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered {
        status_code: i64,
    },
    Failed {
        status_code: Option<i64>,
        error: String,
        /// When to try again; `None` makes the delivery dead.
        retry_at: Option<OffsetDateTime>,
    },
}

/// The outcome of one claimed attempt (`attempt` is the delivery's attempt count as
/// claimed: an outcome of an older claim changes nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedAttempt {
    pub delivery_id: String,
    pub attempt: i64,
    pub outcome: AttemptOutcome,
}

/// A subscription to an event, with whether its app is installed on the event's site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscriber {
    pub subscription: WebhookSubscription,
    pub installed: bool,
}

/// How many deliveries are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub pending: i64,
    pub delivered: i64,
    pub dead: i64,
}
