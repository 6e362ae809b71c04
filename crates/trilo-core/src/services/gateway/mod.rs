//! The gateway's service for one call to `/ex/{product}/{cloudid}/{api}` (DESIGN §3
//! "Gateway"): it verifies the credentials, reads what the decision needs from the store
//! and the caches, lets `trilo_protocol::gateway` decide, and for an admitted call gives
//! the upstream and the signed assertion to forward with.
//!
//! The caches live in `cache`.

mod cache;
mod catalogs;

use std::sync::Arc;

use trilo_protocol::ScopeSet;
use trilo_protocol::alias::canonical_path;
use trilo_protocol::gateway::{
    self, AppOnSite, Container, ContainerRules, GatewayRefusal, PolicyView, Principal,
    SiteStanding, StandingFacts,
};
pub use trilo_protocol::gateway::{Challenge, GatewayCall};
use trilo_protocol::jwt::{ASSERTION_TYP, AssertionClaims};
use trilo_protocol::operations::Operation;
use trilo_protocol::route::Router;

pub use self::cache::GatewayCache;
pub(crate) use self::cache::{AssertionCache, SiteFactsCache};
use self::cache::{AssertionKey, SignedAssertion, SiteFactsKey, StandingKey};
pub use self::catalogs::{CatalogCache, ProductScopeSets, ProductScopesCache};
use self::catalogs::{CompiledCatalog, ProductCatalog};
use super::access::TokenRejection;
use super::{Core, new_id};
use crate::error::CoreResult;
use crate::model::{InstalledBy, Role, UserInstalls};

/// Lifetime of an assertion to an upstream: one call, plus clock skew. Cached standings
/// reuse theirs for half of it.
const ASSERTION_LIFETIME_SECS: i64 = 60;

/// Who calls.
#[derive(Clone, Copy, Debug)]
pub enum Caller<'a> {
    /// An app, with an access token (RFC 6750).
    Bearer(&'a str),
    /// A user's script, with HTTP Basic `email:api-token`.
    ApiToken { email: &'a str, secret: &'a str },
}

/// An admitted call: where to send it and what to tell the upstream.
#[derive(Clone, Debug)]
pub struct Admitted {
    /// What every call of the caller's standing is forwarded with, shared with the cached
    /// standing (a warm call copies none of it).
    pub forwarding: Arc<Forwarding>,
    /// The product's own path when the call used an alias: forward this instead of
    /// `{api}` as sent (`None`, the common case, allocates nothing).
    pub aliased_path: Option<String>,
    /// Containers the operation may not touch for this caller (empty, the common case,
    /// allocates nothing).
    pub blocked_containers: Vec<String>,
}

/// Where a standing's calls go and who they act for: the same for every call the
/// standing admits, so made once when it is checked.
#[derive(Debug)]
pub struct Forwarding {
    /// The site's upstream base URL for the product; `{api}` is appended.
    pub upstream_base: String,
    pub account_id: String,
    pub client_id: Option<String>,
    pub cloud_id: String,
    /// The app's scopes, space-separated (empty for an API token).
    pub scopes: String,
    /// The signed assertion the upstream verifies.
    pub assertion: String,
}

/// A refused call: the status, a message saying what is missing, and for a 401/403 the
/// `WWW-Authenticate` challenge's error, for a 405 the allowed methods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The kind of refusal, for metrics ([`GatewayRefusal::reason`]).
    pub reason: &'static str,
    pub status: u16,
    pub message: String,
    pub challenge: Challenge,
    pub allow: Vec<String>,
}

/// The one place a protocol refusal becomes what the HTTP layer sends.
impl From<GatewayRefusal> for Refusal {
    fn from(refusal: GatewayRefusal) -> Self {
        Self {
            reason: refusal.reason(),
            status: refusal.status(),
            message: refusal.message(),
            challenge: refusal.challenge(),
            allow: refusal.allow().to_vec(),
        }
    }
}

/// The app behind an access token.
struct AppToken {
    app_id: String,
    client_id: String,
    scopes: ScopeSet,
}

/// Who the call acts for, once the credentials checked out.
struct Acting {
    account_id: String,
    /// `None` for an API token (the user's own rights).
    app: Option<AppToken>,
    /// When the access token expires (unix seconds); API tokens are checked each time
    /// their standing is.
    expires_at: Option<i64>,
}

/// What a standing on one site and product reads besides the credentials (see
/// [`SiteFactsCache`]).
#[derive(Debug)]
pub(crate) struct SiteFacts {
    /// The product's upstream on the site; `None` when the site does not host it.
    upstream_base: Option<String>,
    /// The account's membership of the product there.
    member: Option<Member>,
    /// What the site says about the app; `None` for an API token or an unknown site.
    app: Option<AppFacts>,
}

/// A membership with the container rules of its role.
#[derive(Debug)]
struct Member {
    role: Role,
    containers: ContainerRules,
}

/// The site's say about an app: [`AppOnSite`] without the product's scope catalog.
#[derive(Clone, Copy, Debug)]
struct AppFacts {
    installed: bool,
    installed_by_admin: bool,
    user_installs_blocked: bool,
}

impl SiteFacts {
    /// The app's standing on the site for the reachability rule, with the called
    /// product's scope catalog out of `product_scopes`.
    fn app_on_site<'a>(
        &self,
        call: &GatewayCall<'_>,
        product_scopes: Option<&'a [(String, ScopeSet)]>,
    ) -> Option<AppOnSite<'a>> {
        let app = self.app?;
        Some(AppOnSite {
            installed: app.installed,
            installed_by_admin: app.installed_by_admin,
            user_installs_blocked: app.user_installs_blocked,
            product_scopes: product_scopes
                .into_iter()
                .flatten()
                .find(|(key, _)| key == call.product)
                .map(|(_, scopes)| scopes),
        })
    }
}

/// A checked standing on one site and product (DESIGN §3 steps 1–3): the protocol's
/// [`gateway::Standing`], which decides any operation of that product on that site, plus
/// what an admitted call is forwarded with.
#[derive(Debug)]
pub(crate) struct Standing {
    decision: gateway::Standing,
    forwarding: Arc<Forwarding>,
    /// Unix seconds after which the entry is not used (token expiry, assertion age).
    pub(crate) valid_until: i64,
}

impl Core {
    /// Runs the gateway's checks for one call (DESIGN §3, in order).
    pub async fn admit(
        &self,
        caller: Caller<'_>,
        call: &GatewayCall<'_>,
    ) -> CoreResult<Result<Admitted, Refusal>> {
        let decision = self.decide(caller, call).await?;
        match &decision {
            Ok(_) => crate::metrics::bump(&self.metrics.gateway_admitted),
            Err(refusal) => self.metrics.gateway_refused(refusal.reason),
        }
        Ok(decision)
    }

    async fn decide(
        &self,
        caller: Caller<'_>,
        call: &GatewayCall<'_>,
    ) -> CoreResult<Result<Admitted, Refusal>> {
        let standing = match self.standing(caller, call).await? {
            Ok(standing) => standing,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let catalog = self.catalog(call.product).await?;
        // An aliased path is looked up, and forwarded, as the product's own.
        let path = canonical_path(&catalog.aliases, call.path);
        let call = &GatewayCall {
            path: &path,
            ..*call
        };
        let lookup = catalog.router.lookup(call.method, call.path);
        let allowed = match gateway::check_operation(call, &standing.decision, lookup) {
            Ok(allowed) => allowed,
            Err(refusal) => return Ok(Err(refusal.into())),
        };
        Ok(Ok(Admitted {
            forwarding: Arc::clone(&standing.forwarding),
            aliased_path: match &path {
                std::borrow::Cow::Owned(own) => Some(own.clone()),
                std::borrow::Cow::Borrowed(_) => None,
            },
            blocked_containers: allowed.blocked_containers.to_vec(),
        }))
    }

    /// The caller's standing on the call's site and product: from the cache when checked
    /// less than the TTL ago, else checked against the store (and cached if good).
    async fn standing(
        &self,
        caller: Caller<'_>,
        call: &GatewayCall<'_>,
    ) -> CoreResult<Result<Arc<Standing>, Refusal>> {
        let key = StandingKey::new(caller, call);
        let now = self.now().unix_timestamp();
        if let Some(standing) = self.caches.gateway.get(&key, now) {
            crate::metrics::bump(&self.metrics.gateway_cache_hits);
            return Ok(Ok(standing));
        }
        crate::metrics::bump(&self.metrics.gateway_cache_misses);
        let standing = match self.check_standing(caller, call).await? {
            Ok(standing) => Arc::new(standing),
            Err(refusal) => return Ok(Err(refusal)),
        };
        self.caches.gateway.put(key, Arc::clone(&standing));
        Ok(Ok(standing))
    }

    /// Reads what DESIGN §3 steps 1–3 depend on, has them checked, and for a good standing
    /// signs the assertion. The facts are all read before the check (an admitted call
    /// reads the same rows as before; a refused one may read the membership or
    /// installation it is then refused without); those of the site come from
    /// [`SiteFactsCache`] when another token of the account and app read them recently.
    async fn check_standing(
        &self,
        caller: Caller<'_>,
        call: &GatewayCall<'_>,
    ) -> CoreResult<Result<Standing, Refusal>> {
        let acting = match self.acting(caller).await? {
            Ok(acting) => acting,
            Err(refusal) => return Ok(Err(refusal.into())),
        };
        let app_id = acting.app.as_ref().map(|app| app.app_id.as_str());
        let site = self.site_facts(&acting.account_id, app_id, call).await?;
        let product_scopes = match &acting.app {
            Some(_) => Some(self.product_scopes().await?),
            None => None,
        };
        let principal = match &acting.app {
            Some(app) => Principal::App {
                scopes: &app.scopes,
                site: site.app_on_site(call, product_scopes.as_deref().map(Vec::as_slice)),
            },
            None => Principal::User,
        };
        let facts = StandingFacts {
            principal,
            upstream_base: site.upstream_base.as_deref(),
            role: site.member.as_ref().map(|member| member.role),
        };
        let SiteStanding {
            role,
            upstream_base,
        } = match gateway::check_standing(call, &facts) {
            Ok(checked) => checked,
            Err(refusal) => return Ok(Err(refusal.into())),
        };
        let upstream_base = upstream_base.to_owned();
        // The check passed on the membership's role, so its container rules are there.
        let containers = site
            .member
            .as_ref()
            .map(|member| member.containers.clone())
            .unwrap_or_default();
        let (client_id, app_scopes) = match acting.app {
            Some(app) => (Some(app.client_id), Some(app.scopes)),
            None => (None, None),
        };
        let scopes = app_scopes
            .as_ref()
            .map(|scopes| scopes.to_vec().join(" "))
            .unwrap_or_default();
        let assertion = self.assertion(AssertionKey {
            account_id: acting.account_id.clone(),
            client_id: client_id.clone(),
            product: call.product.to_owned(),
            cloud_id: call.cloud_id.to_owned(),
            scope: scopes.clone(),
        })?;
        Ok(Ok(Standing {
            decision: gateway::Standing::new(app_scopes, role, containers),
            // The cached standing must not outlive the token or the assertion's use.
            valid_until: acting
                .expires_at
                .unwrap_or(i64::MAX)
                .min(assertion.issued_at + ASSERTION_LIFETIME_SECS / 2),
            forwarding: Arc::new(Forwarding {
                upstream_base,
                account_id: acting.account_id,
                client_id,
                cloud_id: call.cloud_id.to_owned(),
                scopes,
                assertion: assertion.jws.clone(),
            }),
        }))
    }

    /// What the standing of the account (acting through the app, if any) on the call's
    /// site and product depends on besides the credentials: from [`SiteFactsCache`], or
    /// read and kept there.
    async fn site_facts(
        &self,
        account_id: &str,
        app_id: Option<&str>,
        call: &GatewayCall<'_>,
    ) -> CoreResult<Arc<SiteFacts>> {
        let key = SiteFactsKey::new(account_id, app_id, call);
        if let Some(facts) = self.caches.sites.get(&key) {
            return Ok(facts);
        }
        let upstream_base = self.upstream_of(call).await?;
        let role = self
            .store
            .memberships_of_account(account_id)
            .await?
            .into_iter()
            .find(|m| m.cloud_id == call.cloud_id && m.product_key == call.product)
            .map(|m| m.role);
        let app = match app_id {
            Some(app_id) => self.app_facts(app_id, call).await?,
            None => None,
        };
        let member = match role {
            Some(role) => Some(Member {
                role,
                containers: self.container_rules(account_id, role, call).await?,
            }),
            None => None,
        };
        let facts = Arc::new(SiteFacts {
            upstream_base,
            member,
            app,
        });
        self.caches.sites.put(key, Arc::clone(&facts));
        Ok(facts)
    }

    /// Checks the credentials: a live access token, or a live API token of that email.
    async fn acting(&self, caller: Caller<'_>) -> CoreResult<Result<Acting, GatewayRefusal>> {
        match caller {
            Caller::Bearer(token) => Ok(match self.check_access_token(token).await? {
                Ok(ctx) => Ok(Acting {
                    expires_at: Some(ctx.claims.exp),
                    account_id: ctx.account_id,
                    app: Some(AppToken {
                        app_id: ctx.app_id,
                        client_id: ctx.claims.client_id,
                        scopes: ctx.scopes,
                    }),
                }),
                Err(TokenRejection::Invalid(_)) => Err(GatewayRefusal::InvalidToken),
                Err(TokenRejection::Revoked) => Err(GatewayRefusal::RevokedToken),
            }),
            Caller::ApiToken { email, secret } => {
                Ok(match self.check_api_token(email, secret).await? {
                    Some(account) => Ok(Acting {
                        account_id: account.account_id,
                        app: None,
                        expires_at: None,
                    }),
                    None => Err(GatewayRefusal::UnknownApiToken),
                })
            }
        }
    }

    /// The site's containers of the product, its policies and, when the role is held to
    /// them, the containers on the membership.
    async fn container_rules(
        &self,
        account_id: &str,
        role: Role,
        call: &GatewayCall<'_>,
    ) -> CoreResult<ContainerRules> {
        let containers = self
            .store
            .containers(call.cloud_id, Some(call.product))
            .await?
            .into_iter()
            .map(|c| Container {
                key: c.key,
                id: c.container_id,
            })
            .collect();
        let policies = self.store.policies(call.cloud_id).await?;
        let policies: Vec<PolicyView<'_>> = policies
            .iter()
            .map(|p| PolicyView {
                name: &p.name,
                active: p.active,
                blocks_apps: p.blocks_apps,
                containers: &p.containers,
            })
            .collect();
        let invited = if role.limited_to_invited_containers() {
            self.store
                .guest_containers(account_id, call.cloud_id, call.product)
                .await?
        } else {
            Vec::new()
        };
        Ok(ContainerRules::new(
            call.product,
            role,
            containers,
            &policies,
            invited,
        ))
    }

    /// The upstream base URL when the site exists and hosts the product.
    async fn upstream_of(&self, call: &GatewayCall<'_>) -> CoreResult<Option<String>> {
        Ok(self
            .store
            .site_products(call.cloud_id)
            .await?
            .into_iter()
            .find(|sp| sp.product_key == call.product)
            .map(|sp| sp.upstream_url))
    }

    /// What the site says about the app; `None` when the site is unknown.
    async fn app_facts(
        &self,
        app_id: &str,
        call: &GatewayCall<'_>,
    ) -> CoreResult<Option<AppFacts>> {
        let Some(site) = self.store.site(call.cloud_id).await? else {
            return Ok(None);
        };
        let installation = self
            .store
            .installations_of_app(app_id)
            .await?
            .into_iter()
            .find(|i| i.cloud_id == call.cloud_id);
        Ok(Some(AppFacts {
            installed: installation.is_some(),
            installed_by_admin: installation.is_some_and(|i| i.installed_by == InstalledBy::Admin),
            user_installs_blocked: site.user_installs == UserInstalls::Blocked,
        }))
    }

    /// Every product's scope catalog (cached, see [`ProductScopesCache`]).
    pub(crate) async fn product_scopes(&self) -> CoreResult<ProductScopeSets> {
        if let Some(scopes) = self.product_scopes.get() {
            return Ok(scopes);
        }
        let scopes: ProductScopeSets = Arc::new(
            self.store
                .list_products()
                .await?
                .into_iter()
                .map(|p| {
                    let scopes = ScopeSet::from_tokens(p.scopes.iter().map(|s| &s.scope));
                    (p.key, scopes)
                })
                .collect(),
        );
        self.product_scopes.put(Arc::clone(&scopes));
        Ok(scopes)
    }

    /// The product's compiled operation catalog (cached, see [`CatalogCache`]).
    async fn catalog(&self, product: &str) -> CoreResult<CompiledCatalog> {
        if let Some(router) = self.catalogs.get(product) {
            return Ok(router);
        }
        let aliases = self
            .store
            .product(product)
            .await?
            .map(|p| p.path_aliases)
            .unwrap_or_default();
        let mut router = Router::new();
        for op in self.store.product_operations(product).await? {
            let operation = Operation {
                method: op.method,
                path: op.template,
                operation_id: None,
                alternatives: op.alternatives,
            };
            let (method, path) = (operation.method.clone(), operation.path.clone());
            if let Err(e) = router.insert(&method, &path, operation) {
                // The import compiled these templates already; skip rather than fail all.
                tracing::warn!(product, %method, %path, error = ?e, "operation not routable");
            }
        }
        let catalog = Arc::new(ProductCatalog { router, aliases });
        self.catalogs.put(product, Arc::clone(&catalog));
        Ok(catalog)
    }

    /// The short-lived assertion the upstream verifies against the JWKS: one signed for
    /// the same claims a moment ago ([`AssertionCache`]), else a new one.
    fn assertion(&self, key: AssertionKey) -> CoreResult<Arc<SignedAssertion>> {
        if let Some(signed) = self.caches.assertions.get(&key) {
            return Ok(signed);
        }
        let now = self.now().unix_timestamp();
        let claims = AssertionClaims {
            iss: self.settings.auth_url.clone(),
            aud: key.product.clone(),
            sub: key.account_id.clone(),
            client_id: key.client_id.clone(),
            cloud_id: key.cloud_id.clone(),
            scope: key.scope.clone(),
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
            jti: new_id(),
        };
        let signed = Arc::new(SignedAssertion {
            jws: self.sign_jws(ASSERTION_TYP, &claims)?,
            issued_at: now,
        });
        self.caches.assertions.put(key, Arc::clone(&signed));
        Ok(signed)
    }
}
