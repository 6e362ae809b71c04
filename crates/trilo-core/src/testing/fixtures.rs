//! Fixtures: domain records with sane values for store and service tests. Ids are fresh
//! UUIDv7 strings and times are millisecond-aligned, so records round-trip through a store
//! unchanged.

use time::{Duration, OffsetDateTime};

use crate::code_plan::CodePlan;
use crate::crypto::{random_token, sha256};
use crate::model::{
    Account, AccountStatus, App, AppSecret, AuditEvent, ClientType, ConsentRecord, Distribution,
    ExtendedProfile, Grant, GrantChange, Installation, InstalledBy, KeptHead, KeyState, Membership,
    NewCode, NewFamily, NewRefreshToken, Product, ProductScope, RefreshTokenKey, ReviewState, Role,
    Session, SigningKeyRecord, Site, SiteProduct, TokenFamily, TokenHash, TokenKeeping,
    UserInstalls,
};
use crate::store::{Store, StoreResult};

/// A fixed, millisecond-aligned instant (2026-03-01T12:00:00.123Z) to build times from.
pub fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(1_772_366_400_123_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `t0()` plus whole seconds.
pub fn at(seconds: i64) -> OffsetDateTime {
    t0() + Duration::seconds(seconds)
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The hash of a fresh random token (a session id, code, secret…).
pub fn random_hash() -> TokenHash {
    sha256(&random_token())
}

pub fn account(email: &str) -> Account {
    Account {
        account_id: new_id(),
        email: email.to_owned(),
        name: "Ada Lovelace".to_owned(),
        nickname: "ada".to_owned(),
        picture: Some("https://avatars.example.test/ada.png".to_owned()),
        zoneinfo: "Europe/London".to_owned(),
        locale: "en-GB".to_owned(),
        extended_profile: ExtendedProfile {
            job_title: Some("Analyst".to_owned()),
            organization: Some("Analytical Engines".to_owned()),
            department: None,
            location: Some("London".to_owned()),
        },
        status: AccountStatus::Active,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
        credential_generation: 0,
        created_at: t0(),
    }
}

/// An account with a unique email.
pub fn any_account() -> Account {
    account(&format!(
        "user-{}@example.test",
        uuid::Uuid::new_v4().simple()
    ))
}

pub fn session(account_id: &str, expires_at: OffsetDateTime) -> Session {
    Session {
        id_hash: random_hash(),
        account_id: account_id.to_owned(),
        csrf_token: random_token(),
        created_at: t0(),
        expires_at,
    }
}

pub fn site() -> Site {
    let cloud_id = uuid::Uuid::new_v4().to_string();
    Site {
        url: format!("https://{}.example.test", &cloud_id[..8]),
        cloud_id,
        name: "Acme".to_owned(),
        avatar_url: None,
        user_installs: UserInstalls::Allowed,
        created_at: t0(),
    }
}

/// A product with the given scopes, described as "Can <scope>".
pub fn product(key: &str, scopes: &[&str]) -> Product {
    Product {
        key: key.to_owned(),
        display_name: format!("Product {key}"),
        path_aliases: Vec::new(),
        scopes: scopes
            .iter()
            .map(|s| ProductScope {
                scope: (*s).to_owned(),
                description: format!("Can {s}"),
            })
            .collect(),
    }
}

pub fn site_product(cloud_id: &str, product_key: &str) -> SiteProduct {
    SiteProduct {
        cloud_id: cloud_id.to_owned(),
        product_key: product_key.to_owned(),
        upstream_url: format!("http://127.0.0.1:9/{product_key}"),
    }
}

pub fn membership(account_id: &str, cloud_id: &str, product_key: &str, role: Role) -> Membership {
    Membership {
        account_id: account_id.to_owned(),
        cloud_id: cloud_id.to_owned(),
        product_key: product_key.to_owned(),
        role,
        created_at: t0(),
    }
}

pub fn app(owner_account_id: &str) -> App {
    App {
        app_id: new_id(),
        client_id: random_token(),
        owner_account_id: owner_account_id.to_owned(),
        name: "Reporting app".to_owned(),
        description: "Builds reports".to_owned(),
        avatar_url: None,
        callback_urls: vec![
            "https://app.example.test/callback".to_owned(),
            "http://127.0.0.1/cb".to_owned(),
        ],
        scopes: vec!["read:jira-work".to_owned(), "write:jira-work".to_owned()],
        web_origins: vec!["https://app.example.test".to_owned()],
        distribution: Distribution::Sharing,
        review_state: ReviewState::Unreviewed,
        client_type: ClientType::Confidential,
        created_at: t0(),
        updated_at: t0(),
    }
}

pub fn secret(app_id: &str, created_at: OffsetDateTime) -> AppSecret {
    AppSecret {
        secret_id: new_id(),
        app_id: app_id.to_owned(),
        secret_hash: random_hash(),
        created_at,
        expires_at: None,
    }
}

pub fn installation(app_id: &str, cloud_id: &str, by: &str, kind: InstalledBy) -> Installation {
    Installation {
        app_id: app_id.to_owned(),
        cloud_id: cloud_id.to_owned(),
        installed_by_account_id: by.to_owned(),
        installed_by: kind,
        created_at: t0(),
    }
}

pub fn consent(
    app_id: &str,
    account_id: &str,
    cloud_id: &str,
    scopes: &[&str],
    at: OffsetDateTime,
) -> ConsentRecord {
    ConsentRecord {
        app_id: app_id.to_owned(),
        account_id: account_id.to_owned(),
        cloud_id: Some(cloud_id.to_owned()),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        change: GrantChange::Replace,
        at,
    }
}

/// A code that expires ten minutes after `at`.
pub fn new_code(at: OffsetDateTime) -> NewCode {
    NewCode {
        code_hash: random_hash(),
        redirect_uri: Some("https://app.example.test/callback".to_owned()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned()),
        nonce: None,
        auth_time: Some(at - Duration::seconds(30)),
        expires_at: at + Duration::minutes(10),
        audience: Some("api.example.test".to_owned()),
    }
}

/// The verifier of [`new_code`]'s challenge (RFC 7636 appendix B).
pub const CODE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// `app_id`'s exchange of `code` at `at`, with the code's redirect URI and
/// [`CODE_VERIFIER`], starting a family that ends 365 days later.
pub fn code_plan(app_id: &str, code: &NewCode, at: OffsetDateTime) -> CodePlan {
    CodePlan {
        code_hash: code.code_hash,
        app_id: app_id.to_owned(),
        redirect_uri: code.redirect_uri.clone(),
        code_verifier: Some(CODE_VERIFIER.to_owned()),
        now: at,
        family_id: new_id(),
        absolute_expires_at: at + Duration::days(365),
        first_refresh_token: NewRefreshToken {
            token_hash: random_hash(),
            inactivity_expires_at: at + Duration::days(90),
            kept: TokenKeeping::Row,
        },
        event_id: new_id(),
    }
}

/// A family that ends 365 days after `at`, without refresh tokens.
pub fn new_family(at: OffsetDateTime) -> NewFamily {
    NewFamily {
        family_id: new_id(),
        absolute_expires_at: at + Duration::days(365),
        refresh_token: None,
        issued: None,
    }
}

/// Where refresh token `generation` of `family_id` is stored, when its hash is
/// `token_hash`.
pub fn token_key(family_id: &str, generation: i64, token_hash: TokenHash) -> RefreshTokenKey {
    RefreshTokenKey {
        family_id: family_id.to_owned(),
        generation,
        token_hash,
        kept: TokenKeeping::Row,
    }
}

/// Refresh token `generation` of `family_id`, kept in the family's row (its MAC taken as
/// checked: the store never sees the token itself).
pub fn kept_token_key(family_id: &str, generation: i64) -> RefreshTokenKey {
    RefreshTokenKey {
        family_id: family_id.to_owned(),
        generation,
        token_hash: random_hash(),
        kept: TokenKeeping::Family,
    }
}

/// A refresh token about to be issued, kept in its family's row, idle for at most 90 days
/// after `at`.
pub fn new_kept_token(at: OffsetDateTime) -> NewRefreshToken {
    NewRefreshToken {
        token_hash: random_hash(),
        inactivity_expires_at: at + Duration::days(90),
        kept: TokenKeeping::Family,
    }
}

/// Two families of `grant` as a bulk loader writes them (`trilo bench --preload`): one
/// keeping its tokens, rotated twice, and one whose tokens have rows. A loader's test
/// inserts them and reads them back through the store.
pub fn families_to_load(grant: &Grant, at: OffsetDateTime) -> Vec<TokenFamily> {
    let family = |kept_head| TokenFamily {
        family_id: new_id(),
        grant_id: grant.grant_id.clone(),
        app_id: grant.app_id.clone(),
        account_id: grant.account_id.clone(),
        scopes: grant.scopes.clone(),
        credential_generation: 0,
        created_at: at,
        absolute_expires_at: at + Duration::days(365),
        head_generation: 2,
        revoked_at: None,
        revoke_reason: None,
        audience: None,
        kept_head,
    };
    vec![
        family(Some(KeptHead {
            issued_at: at + Duration::days(2),
            inactivity_expires_at: at + Duration::days(92),
            previous_issued_at: Some(at + Duration::days(1)),
        })),
        family(None),
    ]
}

/// A family that ends 365 days after `at` and keeps its refresh tokens in its row.
pub fn new_family_keeping_tokens(at: OffsetDateTime) -> NewFamily {
    NewFamily {
        refresh_token: Some(new_kept_token(at)),
        ..new_family(at)
    }
}

/// Where the first refresh token (generation 0) of `family_id` is stored, when its hash
/// is `token_hash`.
pub fn first_token_key(family_id: &str, token_hash: TokenHash) -> RefreshTokenKey {
    token_key(family_id, 0, token_hash)
}

/// A family that ends 365 days after `at` with its first refresh token (`token_hash`),
/// idle for at most 90 days.
pub fn new_family_with_refresh(at: OffsetDateTime, token_hash: TokenHash) -> NewFamily {
    NewFamily {
        refresh_token: Some(NewRefreshToken {
            token_hash,
            inactivity_expires_at: at + Duration::days(90),
            kept: TokenKeeping::Row,
        }),
        ..new_family(at)
    }
}

pub fn signing_key(state: KeyState, created_at: OffsetDateTime) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: new_id(),
        alg: "ES256".to_owned(),
        state,
        private_key_encrypted: vec![0x5a; 48],
        public_jwk: r#"{"kty":"EC","crv":"P-256","x":"x","y":"y"}"#.to_owned(),
        created_at,
        activated_at: (state == KeyState::Current).then_some(created_at),
        retired_at: None,
    }
}

pub fn audit_event(action: &str, cloud_id: Option<&str>, at: OffsetDateTime) -> AuditEvent {
    AuditEvent {
        event_id: new_id(),
        at,
        actor_account_id: None,
        action: action.to_owned(),
        target: new_id(),
        cloud_id: cloud_id.map(str::to_owned),
        details: serde_json::json!({ "note": "fixture", "n": 1 }),
    }
}

/// A small world most grant tests need: a developer who owns an app, a user who is a member
/// of the product on two sites.
#[derive(Clone, Debug)]
pub struct World {
    pub developer: Account,
    pub user: Account,
    pub site: Site,
    pub other_site: Site,
    pub product: Product,
    pub app: App,
}

impl World {
    /// Inserts the world's records into `store`.
    pub async fn seed(store: &dyn Store) -> StoreResult<World> {
        let developer = any_account();
        let user = any_account();
        let (site, other_site) = (site(), site());
        let product = product("jira", &["read:jira-work", "write:jira-work"]);
        let app = app(&developer.account_id);
        store.insert_account(&developer).await?;
        store.insert_account(&user).await?;
        store.upsert_product(&product).await?;
        for s in [&site, &other_site] {
            store.insert_site(s).await?;
            store
                .put_site_product(&site_product(&s.cloud_id, &product.key))
                .await?;
            store
                .put_membership(&membership(
                    &user.account_id,
                    &s.cloud_id,
                    &product.key,
                    Role::Member,
                ))
                .await?;
        }
        store
            .insert_app(&app, Some(&secret(&app.app_id, t0())))
            .await?;
        Ok(World {
            developer,
            user,
            site,
            other_site,
            product,
            app,
        })
    }

    /// The user's consent to the app on the main site.
    pub fn consent(&self, scopes: &[&str], at: OffsetDateTime) -> ConsentRecord {
        consent(
            &self.app.app_id,
            &self.user.account_id,
            &self.site.cloud_id,
            scopes,
            at,
        )
    }

    /// The user's consent to `scopes` at `at`, accepted in `store` with a new code issued
    /// at the same time: the grant it made or updated, and the code linked to it.
    pub async fn consented(
        &self,
        store: &dyn Store,
        scopes: &[&str],
        at: OffsetDateTime,
    ) -> StoreResult<(Grant, NewCode)> {
        let code = new_code(at);
        let grant = store
            .accept_consent(&self.consent(scopes, at), &new_id(), &code)
            .await?;
        Ok((grant, code))
    }
}
