//! The gateway's decision for one call to `/ex/{product}/{cloudid}/{api}` (DESIGN §3
//! "Gateway"): the checks in their documented order, each refusal with its own status and
//! a message that says what is missing, and for an admitted call the upstream and the
//! signed assertion to forward with.
//!
//! The caches live in `cache`.
//!
//! The last two checks, a guest's containers and data security policies, are in
//! `containers`.

mod cache;
mod containers;

use std::sync::Arc;

use trilo_protocol::ScopeSet;
use trilo_protocol::jwt::{ASSERTION_TYP, AssertionClaims};
use trilo_protocol::operations::Operation;
use trilo_protocol::resources::{ProductOnSite, SiteView, reachable};
use trilo_protocol::route::{Lookup, Router};

pub use self::cache::{CatalogCache, GatewayCache, ProductScopeSets, ProductScopesCache};
use self::cache::{CompiledCatalog, StandingKey};
use self::containers::ContainerRules;
use super::access::TokenRejection;
use super::{Core, new_id};
use crate::error::CoreResult;
use crate::model::{Account, InstalledBy, Role, UserInstalls};

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

/// The call: the product and site from the URL, the method, and `{api}`, the raw path
/// after the cloud id.
#[derive(Clone, Copy, Debug)]
pub struct GatewayCall<'a> {
    pub product: &'a str,
    pub cloud_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
}

/// An admitted call: where to send it and what to tell the upstream.
#[derive(Clone, Debug)]
pub struct Admitted {
    /// The site's upstream base URL for the product; `{api}` is appended.
    pub upstream_base: String,
    pub account_id: String,
    pub client_id: Option<String>,
    pub cloud_id: String,
    pub scopes: Vec<String>,
    pub blocked_containers: Vec<String>,
    pub assertion: String,
}

/// A refused call: the status, a message saying what is missing, and for a 401/403 the
/// `WWW-Authenticate` challenge's error, for a 405 the allowed methods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
    pub challenge: Challenge,
    pub allow: Vec<String>,
}

/// The challenge a refusal carries (RFC 6750 §3 for bearer tokens).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Challenge {
    None,
    Basic,
    Bearer,
    InvalidToken,
    InsufficientScope,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            challenge: Challenge::None,
            allow: Vec::new(),
        }
    }

    fn with(mut self, challenge: Challenge) -> Self {
        self.challenge = challenge;
        self
    }
}

/// Who the call acts for, once the credentials checked out.
struct Acting {
    account: Account,
    /// The app id, client id and the token's scopes; `None` for an API token (the user's
    /// own rights).
    app: Option<(String, String, ScopeSet)>,
    /// When the access token expires (unix seconds); API tokens are checked each time
    /// their standing is.
    expires_at: Option<i64>,
}

/// What the checks of the credentials, site and product found (DESIGN §3 steps 1–3):
/// enough to decide any operation of that product on that site.
#[derive(Debug)]
pub(crate) struct Standing {
    account_id: String,
    /// The app's client id and the token's scopes; `None` for an API token.
    app: Option<(String, ScopeSet)>,
    role: Role,
    /// Guests' containers and policies, for the container the call addresses.
    containers: ContainerRules,
    upstream_base: String,
    assertion: String,
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
        let standing = match self.standing(caller, call).await? {
            Ok(standing) => standing,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let catalog = self.catalog(call.product).await?;
        let (operation, params) = match catalog.lookup(call.method, call.path) {
            Lookup::Found(found) => (found.value, found.params),
            Lookup::MethodNotAllowed { allowed } => {
                let mut refusal = Refusal::new(
                    405,
                    format!("{} does not allow {} here.", call.product, call.method),
                );
                refusal.allow = allowed.into_iter().map(str::to_owned).collect();
                return Ok(Err(refusal));
            }
            Lookup::NotFound => {
                return Ok(Err(Refusal::new(
                    404,
                    format!(
                        "No {} operation matches {} {}.",
                        call.product, call.method, call.path
                    ),
                )));
            }
            Lookup::Invalid(e) => {
                return Ok(Err(Refusal::new(400, format!("The path is refused: {e}."))));
            }
        };
        let needs_admin = match &standing.app {
            Some((_, scopes)) => {
                if !operation.is_open_to_apps() {
                    return Ok(Err(Refusal::new(
                        403,
                        "Apps can't access this REST resource.",
                    )));
                }
                let granted: Vec<&Vec<String>> = operation
                    .alternatives
                    .iter()
                    .filter(|alt| alt.iter().all(|s| scopes.contains(s)))
                    .collect();
                if granted.is_empty() {
                    return Ok(Err(Refusal::new(
                        403,
                        format!(
                            "The access token lacks the scopes this operation needs: {}.",
                            describe_alternatives(&operation.alternatives)
                        ),
                    )
                    .with(Challenge::InsufficientScope)));
                }
                // Admin only when every granted way in needs a manage scope.
                granted
                    .iter()
                    .all(|alt| alt.iter().any(|s| is_manage_scope(s)))
            }
            // The user's own rights: admin-only when every way in needs a manage scope.
            None => {
                !operation.alternatives.is_empty()
                    && operation
                        .alternatives
                        .iter()
                        .all(|alt| alt.iter().any(|s| is_manage_scope(s)))
            }
        };
        if needs_admin && standing.role != Role::Admin {
            return Ok(Err(Refusal::new(
                403,
                format!(
                    "This operation needs the admin role for {} on this site.",
                    call.product
                ),
            )));
        }
        let is_app = standing.app.is_some();
        if let Some(container) = standing.containers.addressed(&params)
            && let Some(refusal) = standing.containers.refusal(container, is_app)
        {
            return Ok(Err(refusal));
        }
        let (client_id, scopes) = match &standing.app {
            Some((client_id, scopes)) => (Some(client_id.clone()), scopes.to_vec()),
            None => (None, Vec::new()),
        };
        Ok(Ok(Admitted {
            upstream_base: standing.upstream_base.clone(),
            account_id: standing.account_id.clone(),
            client_id,
            cloud_id: call.cloud_id.to_owned(),
            scopes,
            blocked_containers: standing.containers.blocked(is_app),
            assertion: standing.assertion.clone(),
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
            return Ok(Ok(standing));
        }
        let standing = match self.check_standing(caller, call).await? {
            Ok(standing) => Arc::new(standing),
            Err(refusal) => return Ok(Err(refusal)),
        };
        self.caches.gateway.put(key, Arc::clone(&standing));
        Ok(Ok(standing))
    }

    /// The checks that depend only on the credentials, the site and the product (DESIGN
    /// §3 steps 1–3), and the assertion for them.
    async fn check_standing(
        &self,
        caller: Caller<'_>,
        call: &GatewayCall<'_>,
    ) -> CoreResult<Result<Standing, Refusal>> {
        let acting = match self.acting(caller).await? {
            Ok(acting) => acting,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let Some(upstream_base) = self.upstream_of(call).await? else {
            return Ok(Err(Refusal::new(
                404,
                format!(
                    "There is no {} on a site with id {}.",
                    call.product, call.cloud_id
                ),
            )));
        };
        let role = self
            .store
            .memberships_of_account(&acting.account.account_id)
            .await?
            .into_iter()
            .find(|m| m.cloud_id == call.cloud_id && m.product_key == call.product)
            .map(|m| m.role);
        let Some(role) = role else {
            return Ok(Err(Refusal::new(
                403,
                format!(
                    "The account is not a member of {} on this site.",
                    call.product
                ),
            )));
        };
        if let Some((app_id, _, scopes)) = &acting.app
            && !self.site_reachable(app_id, scopes, call).await?
        {
            return Ok(Err(Refusal::new(
                403,
                format!(
                    "The app has no access to {} on this site: it is not installed there, the \
                     site blocks it, or no granted scope is for this product.",
                    call.product
                ),
            )));
        }
        let client_id = acting
            .app
            .as_ref()
            .map(|(_, client_id, _)| client_id.as_str());
        let scopes = acting
            .app
            .as_ref()
            .map(|(_, _, scopes)| scopes.to_vec())
            .unwrap_or_default();
        let now = self.now().unix_timestamp();
        let assertion = self.sign_assertion(&acting.account, client_id, call, &scopes)?;
        let containers = self
            .container_rules(&acting.account.account_id, role, call)
            .await?;
        Ok(Ok(Standing {
            account_id: acting.account.account_id.clone(),
            app: acting.app.map(|(_, client_id, scopes)| (client_id, scopes)),
            role,
            containers,
            upstream_base,
            assertion,
            // The cached standing must not outlive the token or the assertion's use.
            valid_until: acting
                .expires_at
                .unwrap_or(i64::MAX)
                .min(now + ASSERTION_LIFETIME_SECS / 2),
        }))
    }

    /// Checks the credentials: a live access token, or a live API token of that email.
    async fn acting(&self, caller: Caller<'_>) -> CoreResult<Result<Acting, Refusal>> {
        match caller {
            Caller::Bearer(token) => Ok(match self.check_access_token(token).await? {
                Ok(ctx) => Ok(Acting {
                    expires_at: Some(ctx.claims.exp),
                    account: ctx.account,
                    app: Some((ctx.app_id, ctx.claims.client_id, ctx.scopes)),
                }),
                Err(TokenRejection::Invalid(_)) => {
                    Err(Refusal::new(401, "The access token is invalid or expired.")
                        .with(Challenge::InvalidToken))
                }
                Err(TokenRejection::Revoked) => {
                    Err(Refusal::new(401, "The access token has been revoked.")
                        .with(Challenge::InvalidToken))
                }
            }),
            Caller::ApiToken { email, secret } => {
                Ok(match self.check_api_token(email, secret).await? {
                    Some(account) => Ok(Acting {
                        account,
                        app: None,
                        expires_at: None,
                    }),
                    None => Err(Refusal::new(
                        401,
                        "The email and API token do not match a live API token.",
                    )
                    .with(Challenge::Basic)),
                })
            }
        }
    }

    /// The site's containers, its policies and a guest's containers, for one product.
    async fn container_rules(
        &self,
        account_id: &str,
        role: Role,
        call: &GatewayCall<'_>,
    ) -> CoreResult<ContainerRules> {
        let containers = self
            .store
            .containers(call.cloud_id, Some(call.product))
            .await?;
        let policies = self.store.policies(call.cloud_id).await?;
        let guest_allowed = match role {
            Role::Guest => Some(
                self.store
                    .guest_containers(account_id, call.cloud_id, call.product)
                    .await?,
            ),
            Role::Admin | Role::Member => None,
        };
        Ok(ContainerRules::new(
            call.product,
            containers,
            &policies,
            guest_allowed,
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

    /// DESIGN §3 "accessible-resources" for one site and product: the app is installed,
    /// the site does not block it, the account is a member, a granted scope is the
    /// product's.
    async fn site_reachable(
        &self,
        app_id: &str,
        scopes: &ScopeSet,
        call: &GatewayCall<'_>,
    ) -> CoreResult<bool> {
        let Some(site) = self.store.site(call.cloud_id).await? else {
            return Ok(false);
        };
        let installation = self
            .store
            .installations_of_app(app_id)
            .await?
            .into_iter()
            .find(|i| i.cloud_id == call.cloud_id);
        let product_scopes = self.product_scopes().await?;
        let Some((_, catalog_scopes)) = product_scopes.iter().find(|(key, _)| key == call.product)
        else {
            return Ok(false);
        };
        let view = SiteView {
            cloud_id: &site.cloud_id,
            products: vec![ProductOnSite {
                product_key: call.product,
                catalog_scopes,
                // Membership was checked by the caller.
                is_member: true,
            }],
            app_installed: installation.is_some(),
            installed_by_admin: installation.is_some_and(|i| i.installed_by == InstalledBy::Admin),
            user_installs_blocked: site.user_installs == UserInstalls::Blocked,
        };
        Ok(!reachable(scopes, &[view]).is_empty())
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
        let router = Arc::new(router);
        self.catalogs.put(product, Arc::clone(&router));
        Ok(router)
    }

    /// The short-lived assertion the upstream verifies against the JWKS.
    fn sign_assertion(
        &self,
        account: &Account,
        client_id: Option<&str>,
        call: &GatewayCall<'_>,
        scopes: &[String],
    ) -> CoreResult<String> {
        let now = self.now().unix_timestamp();
        let claims = AssertionClaims {
            iss: self.settings.auth_url.clone(),
            aud: call.product.to_owned(),
            sub: account.account_id.clone(),
            client_id: client_id.map(str::to_owned),
            cloud_id: call.cloud_id.to_owned(),
            scope: scopes.join(" "),
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
            jti: new_id(),
        };
        self.sign_jws(ASSERTION_TYP, &claims)
    }
}

/// `manage:*` scopes administer a product: they need the admin role (DESIGN §3).
fn is_manage_scope(scope: &str) -> bool {
    scope.starts_with("manage:")
}

/// `[a b] or [c]`: the alternatives as a person reads them.
fn describe_alternatives(alternatives: &[Vec<String>]) -> String {
    alternatives
        .iter()
        .map(|alt| format!("[{}]", alt.join(" ")))
        .collect::<Vec<_>>()
        .join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternatives_read_as_either_or() {
        let alts = vec![
            vec!["read:jira-work".to_owned()],
            vec!["read:issue:jira".to_owned(), "read:project:jira".to_owned()],
        ];
        assert_eq!(
            describe_alternatives(&alts),
            "[read:jira-work] or [read:issue:jira read:project:jira]"
        );
    }

    #[test]
    fn manage_scopes_are_recognized_by_prefix() {
        assert!(is_manage_scope("manage:jira-project"));
        assert!(!is_manage_scope("read:jira-work"));
        assert!(!is_manage_scope("write:manage:x"));
    }
}
