//! The gateway's allow/deny decision for one call to `/ex/{product}/{cloudid}/{api}`
//! (DESIGN §3 "Gateway"), in two stages:
//! 1. [`check_standing`]: the credentials, the site and the product (steps 1–3). Its
//!    outcome holds for every operation of that product on that site, so the caller may
//!    cache it as a [`Standing`].
//! 2. [`check_operation`]: the operation the path matches, its scope alternatives, the
//!    role, a guest's containers and data security policies (steps 4–8).
//!
//! Pure: the caller verifies the credentials, reads the store, matches the route and
//! passes what it found. Every refusal is a [`GatewayRefusal`] that knows its status,
//! message and challenge.

use std::borrow::Cow;

use crate::operations::{Operation, OperationLookup};
use crate::resources::{ProductOnSite, SiteView, reachable};
use crate::route::{Lookup, PathError};
use crate::scope::ScopeSet;

/// The call: the product and site from the URL, the method, and `{api}`, the raw path
/// after the cloud id.
#[derive(Clone, Copy, Debug)]
pub struct GatewayCall<'a> {
    pub product: &'a str,
    pub cloud_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
}

/// A membership's role for one product on one site (DESIGN §2 Membership).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    Member,
    Guest,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Guest => "guest",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            "guest" => Some(Self::Guest),
            _ => None,
        }
    }

    /// A guest reaches only the containers listed on its membership (the single-space
    /// guest); the caller reads that list only when this is true.
    pub fn limited_to_invited_containers(self) -> bool {
        self == Role::Guest
    }
}

/// Who acts, once the credentials checked out.
#[derive(Clone, Copy, Debug)]
pub enum Principal<'a> {
    /// An app with a verified access token whose grant, family and generation are live.
    App {
        /// The token's scopes.
        scopes: &'a ScopeSet,
        /// What the site says about the app; `None` when the site is unknown.
        site: Option<AppOnSite<'a>>,
    },
    /// A user's script with a live API token: the user's own rights, no app rules.
    User,
}

/// The site's facts about one app (DESIGN §3 "accessible-resources").
#[derive(Clone, Copy, Debug)]
pub struct AppOnSite<'a> {
    pub installed: bool,
    /// The installation was made by a site admin (survives a user-install block).
    pub installed_by_admin: bool,
    pub user_installs_blocked: bool,
    /// The called product's scope catalog; `None` when the product is unknown.
    pub product_scopes: Option<&'a ScopeSet>,
}

/// What the first stage depends on.
#[derive(Clone, Copy, Debug)]
pub struct StandingFacts<'a> {
    pub principal: Principal<'a>,
    /// The product's upstream base URL on the site; `None` when the site is unknown or
    /// does not host the product.
    pub upstream_base: Option<&'a str>,
    /// The account's role for the product on the site; `None`: not a member.
    pub role: Option<Role>,
}

/// The first stage passed: the member's role and where its calls go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SiteStanding<'a> {
    pub role: Role,
    pub upstream_base: &'a str,
}

/// DESIGN §3 "Gateway" steps 1–3 after the credentials: the site hosts the product, the
/// account is a member of it there, and an app reaches the site (installed, not blocked,
/// a granted scope is the product's).
pub fn check_standing<'a>(
    call: &GatewayCall<'_>,
    facts: &StandingFacts<'a>,
) -> Result<SiteStanding<'a>, GatewayRefusal> {
    let Some(upstream_base) = facts.upstream_base else {
        return Err(GatewayRefusal::UnknownSiteOrProduct {
            product: call.product.to_owned(),
            cloud_id: call.cloud_id.to_owned(),
        });
    };
    let Some(role) = facts.role else {
        return Err(GatewayRefusal::NotAMember {
            product: call.product.to_owned(),
        });
    };
    if let Principal::App { scopes, site } = facts.principal
        && !app_reaches(call, scopes, site)
    {
        return Err(GatewayRefusal::SiteUnreachable {
            product: call.product.to_owned(),
        });
    }
    Ok(SiteStanding {
        role,
        upstream_base,
    })
}

/// The accessible-resources rule for this one site and product (the membership was
/// checked before).
fn app_reaches(call: &GatewayCall<'_>, scopes: &ScopeSet, site: Option<AppOnSite<'_>>) -> bool {
    let Some(site) = site else { return false };
    let Some(catalog_scopes) = site.product_scopes else {
        return false;
    };
    let view = SiteView {
        cloud_id: call.cloud_id,
        products: vec![ProductOnSite {
            product_key: call.product,
            catalog_scopes,
            is_member: true,
        }],
        app_installed: site.installed,
        installed_by_admin: site.installed_by_admin,
        user_installs_blocked: site.user_installs_blocked,
    };
    !reachable(scopes, &[view]).is_empty()
}

/// A space or project of the product on the site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    /// The key (`DEMO`), as paths and issue keys name it.
    pub key: String,
    /// The product's numeric or opaque id, as other paths name it.
    pub id: String,
}

/// A data security policy of the site, as stored.
#[derive(Clone, Copy, Debug)]
pub struct PolicyView<'a> {
    pub name: &'a str,
    pub active: bool,
    /// The app access rule: apps cannot reach the covered containers.
    pub blocks_apps: bool,
    /// Covered containers as (product key, container key).
    pub containers: &'a [(String, String)],
}

/// The site's containers of one product as they bear on one member: a guest reaches only
/// its containers; an active policy with the app access rule keeps apps away from the
/// containers it covers (API tokens act as the user and are not blocked).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerRules {
    containers: Vec<Container>,
    /// Container key → the name of an active policy keeping apps away from it.
    blocked_for_apps: Vec<(String, String)>,
    /// For a guest, the container keys it may reach; `None` for other roles.
    guest_allowed: Option<Vec<String>>,
}

impl ContainerRules {
    /// `invited`: the containers on the membership, read only when
    /// [`Role::limited_to_invited_containers`]; ignored otherwise.
    pub fn new(
        product_key: &str,
        role: Role,
        containers: Vec<Container>,
        policies: &[PolicyView<'_>],
        invited: Vec<String>,
    ) -> Self {
        let blocked_for_apps = policies
            .iter()
            .filter(|p| p.active && p.blocks_apps)
            .flat_map(|p| {
                p.containers
                    .iter()
                    .filter(|(product, _)| product == product_key)
                    .map(|(_, key)| (key.clone(), p.name.to_owned()))
            })
            .collect();
        Self {
            containers,
            blocked_for_apps,
            guest_allowed: role.limited_to_invited_containers().then_some(invited),
        }
    }

    /// The container the call's path parameters name, if any: a project or space by key
    /// or id, or the project of an issue key (`DEMO-12`).
    fn addressed(&self, params: &[(&str, Cow<'_, str>)]) -> Option<&Container> {
        params.iter().find_map(|(name, value)| {
            let name = name.to_ascii_lowercase();
            if name.contains("project") || name.contains("space") {
                self.containers
                    .iter()
                    .find(|c| c.key == *value || c.id == *value)
            } else if name.starts_with("issue") {
                let (key, number) = value.rsplit_once('-')?;
                let is_issue_key = !key.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
                is_issue_key
                    .then(|| self.containers.iter().find(|c| c.key == key))
                    .flatten()
            } else {
                None
            }
        })
    }

    /// Why the caller may not touch `container`, if it may not: a guest's limit first,
    /// then a policy (apps only).
    fn refusal(&self, container: &Container, is_app: bool) -> Option<GatewayRefusal> {
        if let Some(allowed) = &self.guest_allowed
            && !allowed.contains(&container.key)
        {
            return Some(GatewayRefusal::OutsideGuestContainers);
        }
        if is_app
            && let Some((_, policy)) = self
                .blocked_for_apps
                .iter()
                .find(|(key, _)| *key == container.key)
        {
            return Some(GatewayRefusal::BlockedByPolicy {
                policy: policy.clone(),
            });
        }
        None
    }

    /// The keys the upstream must keep out of searches and lists for this caller, sorted.
    fn blocked(&self, is_app: bool) -> Vec<String> {
        let mut blocked: Vec<String> = Vec::new();
        if is_app {
            blocked.extend(self.blocked_for_apps.iter().map(|(key, _)| key.clone()));
        }
        if let Some(allowed) = &self.guest_allowed {
            blocked.extend(
                self.containers
                    .iter()
                    .filter(|c| !allowed.contains(&c.key))
                    .map(|c| c.key.clone()),
            );
        }
        blocked.sort();
        blocked.dedup();
        blocked
    }
}

/// Everything the second stage needs about the caller on one site and product; the
/// outcome of the first stage plus the container rules, fit to cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing {
    /// The token's scopes for an app; `None` for an API token (the user's own rights).
    app_scopes: Option<ScopeSet>,
    role: Role,
    containers: ContainerRules,
    /// [`ContainerRules::blocked`] for this caller, computed once.
    blocked_containers: Vec<String>,
}

impl Standing {
    pub fn new(app_scopes: Option<ScopeSet>, role: Role, containers: ContainerRules) -> Self {
        let blocked_containers = containers.blocked(app_scopes.is_some());
        Self {
            app_scopes,
            role,
            containers,
            blocked_containers,
        }
    }

    /// The app's scopes; `None` for an API token.
    pub fn app_scopes(&self) -> Option<&ScopeSet> {
        self.app_scopes.as_ref()
    }

    pub fn role(&self) -> Role {
        self.role
    }
}

/// An admitted call: what the upstream must be told besides who acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowed<'s> {
    /// Container keys the upstream must keep out of searches and lists.
    pub blocked_containers: &'s [String],
}

/// DESIGN §3 "Gateway" steps 4–8: the operation is found, open to apps, one scope
/// alternative is fully granted, the role allows it (a `manage:*` scope needs `admin`),
/// a guest stays in its containers, and no active policy keeps apps from the container
/// the path names. `lookup` is the product catalog's match for the call.
pub fn check_operation<'s>(
    call: &GatewayCall<'_>,
    standing: &'s Standing,
    lookup: OperationLookup<'_, '_>,
) -> Result<Allowed<'s>, GatewayRefusal> {
    let (operation, params) = match lookup {
        Lookup::Found(found) => (found.value, found.params),
        Lookup::MethodNotAllowed { allowed } => {
            return Err(GatewayRefusal::MethodNotAllowed {
                product: call.product.to_owned(),
                method: call.method.to_owned(),
                allowed: allowed.into_iter().map(str::to_owned).collect(),
            });
        }
        Lookup::NotFound => {
            return Err(GatewayRefusal::UnknownOperation {
                product: call.product.to_owned(),
                method: call.method.to_owned(),
                path: call.path.to_owned(),
            });
        }
        Lookup::Invalid(e) => return Err(GatewayRefusal::InvalidPath(e)),
    };
    let needs_admin = match &standing.app_scopes {
        Some(scopes) => app_needs_admin(operation, scopes)?,
        // The user's own rights: admin-only when every way in needs a manage scope.
        None => {
            !operation.alternatives.is_empty()
                && operation
                    .alternatives
                    .iter()
                    .all(|alt| has_manage_scope(alt))
        }
    };
    if needs_admin && standing.role != Role::Admin {
        return Err(GatewayRefusal::NeedsAdmin {
            product: call.product.to_owned(),
        });
    }
    let is_app = standing.app_scopes.is_some();
    if let Some(container) = standing.containers.addressed(&params)
        && let Some(refusal) = standing.containers.refusal(container, is_app)
    {
        return Err(refusal);
    }
    Ok(Allowed {
        blocked_containers: &standing.blocked_containers,
    })
}

/// For an app: refused unless the operation is open and an alternative is fully granted;
/// admin only when every granted way in needs a manage scope.
fn app_needs_admin(operation: &Operation, scopes: &ScopeSet) -> Result<bool, GatewayRefusal> {
    if !operation.is_open_to_apps() {
        return Err(GatewayRefusal::ClosedToApps);
    }
    let mut granted = operation
        .alternatives
        .iter()
        .filter(|alt| alt.iter().all(|s| scopes.contains(s)))
        .peekable();
    if granted.peek().is_none() {
        return Err(GatewayRefusal::MissingScope {
            alternatives: operation.alternatives.clone(),
        });
    }
    Ok(granted.all(|alt| has_manage_scope(alt)))
}

/// `manage:*` scopes administer a product: they need the admin role (DESIGN §3).
fn is_manage_scope(scope: &str) -> bool {
    scope.starts_with("manage:")
}

fn has_manage_scope(alternative: &[String]) -> bool {
    alternative.iter().any(|s| is_manage_scope(s))
}

/// Why a call is refused, in DESIGN §3's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayRefusal {
    /// The access token does not verify (format, signature, `kid`, `iss`, `aud`, `exp`).
    InvalidToken,
    /// Its grant, family or generation is no longer live.
    RevokedToken,
    /// HTTP Basic `email:api-token` that matches no live API token of that email.
    UnknownApiToken,
    /// The site does not exist or does not host the product.
    UnknownSiteOrProduct {
        product: String,
        cloud_id: String,
    },
    NotAMember {
        product: String,
    },
    /// The app is not installed there, the site blocks it, or no granted scope is the
    /// product's.
    SiteUnreachable {
        product: String,
    },
    /// The raw path is refused before matching (see [`crate::route`]).
    InvalidPath(PathError),
    /// No operation of the catalog matches (DESIGN §3: 404).
    UnknownOperation {
        product: String,
        method: String,
        path: String,
    },
    /// The path matches operations, but not with this method.
    MethodNotAllowed {
        product: String,
        method: String,
        allowed: Vec<String>,
    },
    /// The operation has no OAuth scope alternative.
    ClosedToApps,
    /// No alternative is fully granted; lists them all (RFC 6750 §3.1
    /// `insufficient_scope`).
    MissingScope {
        alternatives: Vec<Vec<String>>,
    },
    NeedsAdmin {
        product: String,
    },
    OutsideGuestContainers,
    /// Names the policy, never the container.
    BlockedByPolicy {
        policy: String,
    },
}

/// The `WWW-Authenticate` challenge a refusal carries (RFC 6750 §3 for bearer tokens,
/// RFC 7617 for API tokens).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Challenge {
    None,
    Basic,
    Bearer,
    InvalidToken,
    InsufficientScope,
}

impl GatewayRefusal {
    /// A short name for metrics (`trilo_gateway_decisions_total{reason=…}`): the kind of
    /// refusal, never its details.
    pub fn reason(&self) -> &'static str {
        use GatewayRefusal::*;
        match self {
            InvalidToken => "invalid_token",
            RevokedToken => "revoked_token",
            UnknownApiToken => "unknown_api_token",
            UnknownSiteOrProduct { .. } => "unknown_site_or_product",
            NotAMember { .. } => "not_a_member",
            SiteUnreachable { .. } => "site_unreachable",
            InvalidPath(_) => "invalid_path",
            UnknownOperation { .. } => "unknown_operation",
            MethodNotAllowed { .. } => "method_not_allowed",
            ClosedToApps => "closed_to_apps",
            MissingScope { .. } => "missing_scope",
            NeedsAdmin { .. } => "needs_admin",
            OutsideGuestContainers => "outside_guest_containers",
            BlockedByPolicy { .. } => "blocked_by_policy",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        use GatewayRefusal::*;
        match self {
            InvalidToken | RevokedToken | UnknownApiToken => 401,
            UnknownSiteOrProduct { .. } | UnknownOperation { .. } => 404,
            InvalidPath(_) => 400,
            MethodNotAllowed { .. } => 405,
            NotAMember { .. }
            | SiteUnreachable { .. }
            | ClosedToApps
            | MissingScope { .. }
            | NeedsAdmin { .. }
            | OutsideGuestContainers
            | BlockedByPolicy { .. } => 403,
        }
    }

    /// What is missing, for a person.
    pub fn message(&self) -> String {
        use GatewayRefusal::*;
        match self {
            InvalidToken => "The access token is invalid or expired.".to_owned(),
            RevokedToken => "The access token has been revoked.".to_owned(),
            UnknownApiToken => "The email and API token do not match a live API token.".to_owned(),
            UnknownSiteOrProduct { product, cloud_id } => {
                format!("There is no {product} on a site with id {cloud_id}.")
            }
            NotAMember { product } => {
                format!("The account is not a member of {product} on this site.")
            }
            SiteUnreachable { product } => format!(
                "The app has no access to {product} on this site: it is not installed there, \
                 the site blocks it, or no granted scope is for this product."
            ),
            InvalidPath(e) => format!("The path is refused: {e}."),
            UnknownOperation {
                product,
                method,
                path,
            } => format!("No {product} operation matches {method} {path}."),
            MethodNotAllowed {
                product, method, ..
            } => format!("{product} does not allow {method} here."),
            ClosedToApps => "Apps can't access this REST resource.".to_owned(),
            MissingScope { alternatives } => format!(
                "The access token lacks the scopes this operation needs: {}.",
                describe_alternatives(alternatives)
            ),
            NeedsAdmin { product } => {
                format!("This operation needs the admin role for {product} on this site.")
            }
            OutsideGuestContainers => {
                "Guests can reach only the spaces or projects they were invited to.".to_owned()
            }
            BlockedByPolicy { policy } => format!(
                "The data security policy \u{201c}{policy}\u{201d} does not allow apps to access \
                 this content."
            ),
        }
    }

    /// The challenge to send with the refusal.
    pub fn challenge(&self) -> Challenge {
        use GatewayRefusal::*;
        match self {
            InvalidToken | RevokedToken => Challenge::InvalidToken,
            UnknownApiToken => Challenge::Basic,
            MissingScope { .. } => Challenge::InsufficientScope,
            UnknownSiteOrProduct { .. }
            | NotAMember { .. }
            | SiteUnreachable { .. }
            | InvalidPath(_)
            | UnknownOperation { .. }
            | MethodNotAllowed { .. }
            | ClosedToApps
            | NeedsAdmin { .. }
            | OutsideGuestContainers
            | BlockedByPolicy { .. } => Challenge::None,
        }
    }

    /// For a 405, the methods the path allows (the `Allow` header); empty otherwise.
    pub fn allow(&self) -> &[String] {
        match self {
            GatewayRefusal::MethodNotAllowed { allowed, .. } => allowed,
            _ => &[],
        }
    }
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
    use crate::route::Router;

    const ACME: &str = "acme";
    const UPSTREAM: &str = "http://jira.acme.test";
    const READ: &str = "read:jira-user read:jira-work";

    fn call<'a>(method: &'a str, path: &'a str) -> GatewayCall<'a> {
        GatewayCall {
            product: "jira",
            cloud_id: ACME,
            method,
            path,
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn scopes(list: &str) -> ScopeSet {
        ScopeSet::from_tokens(list.split(' ').filter(|s| !s.is_empty()))
    }

    /// A small Jira: open, granular, closed, manage-only and mixed operations, some of
    /// them addressing a container.
    fn catalog() -> Router<Operation> {
        let mut router = Router::new();
        let ops: [(&str, &str, &[&[&str]]); 9] = [
            (
                "GET",
                "/rest/api/3/myself",
                &[&["read:jira-user"], &["read:user:jira", "read:avatar:jira"]],
            ),
            ("GET", "/rest/api/3/serverInfo", &[]),
            (
                "GET",
                "/rest/api/3/application-properties",
                &[&["manage:jira-configuration"]],
            ),
            (
                "GET",
                "/rest/api/3/either",
                &[&["manage:jira-configuration"], &["read:jira-work"]],
            ),
            (
                "GET",
                "/rest/api/3/issue/{issueIdOrKey}",
                &[&["read:jira-work"]],
            ),
            (
                "GET",
                "/rest/api/3/project/{projectIdOrKey}",
                &[&["read:jira-work"]],
            ),
            (
                "DELETE",
                "/rest/api/3/project/{projectIdOrKey}",
                &[&["manage:jira-project"]],
            ),
            ("GET", "/rest/api/3/project/{projectIdOrKey}/secret", &[]),
            (
                "GET",
                "/wiki/rest/api/space/{spaceKey}",
                &[&["read:jira-work"]],
            ),
        ];
        for (method, path, alternatives) in ops {
            let operation = Operation {
                method: method.to_owned(),
                path: path.to_owned(),
                operation_id: None,
                alternatives: alternatives.iter().map(|alt| strings(alt)).collect(),
            };
            assert_eq!(router.insert(method, path, operation), Ok(()), "{path}");
        }
        router
    }

    /// DEMO, OPS and HR; Finance (active, app rule) covers OPS; Draft (inactive) covers
    /// DEMO; Audit (no app rule) covers HR; Wiki (another product) covers HR.
    fn rules(role: Role) -> ContainerRules {
        let containers = [("DEMO", "10000"), ("OPS", "10001"), ("HR", "10002")]
            .iter()
            .map(|(key, id)| Container {
                key: (*key).to_owned(),
                id: (*id).to_owned(),
            })
            .collect();
        let jira = |key: &str| vec![("jira".to_owned(), key.to_owned())];
        let (ops, demo, hr) = (jira("OPS"), jira("DEMO"), jira("HR"));
        let wiki = [("confluence".to_owned(), "HR".to_owned())];
        let policy = |name, active, blocks_apps, containers| PolicyView {
            name,
            active,
            blocks_apps,
            containers,
        };
        let policies = [
            policy("Finance", true, true, &ops[..]),
            policy("Draft", false, true, &demo[..]),
            policy("Audit", true, false, &hr[..]),
            policy("Wiki", true, true, &wiki[..]),
        ];
        // Every role is given the same invitation; only a guest is held to it.
        ContainerRules::new("jira", role, containers, &policies, strings(&["DEMO"]))
    }

    #[derive(Clone, Copy, Debug)]
    enum Who {
        /// An app with these scopes.
        App(&'static str),
        /// An API token.
        User,
    }

    fn standing(who: Who, role: Role) -> Standing {
        let app_scopes = match who {
            Who::App(list) => Some(scopes(list)),
            Who::User => None,
        };
        Standing::new(app_scopes, role, rules(role))
    }

    fn missing(alternatives: &[&[&str]]) -> GatewayRefusal {
        GatewayRefusal::MissingScope {
            alternatives: alternatives.iter().map(|alt| strings(alt)).collect(),
        }
    }

    fn needs_admin() -> GatewayRefusal {
        GatewayRefusal::NeedsAdmin {
            product: "jira".into(),
        }
    }

    fn policy(name: &str) -> GatewayRefusal {
        GatewayRefusal::BlockedByPolicy {
            policy: name.into(),
        }
    }

    /// (name, caller, role, method, path, the blocked containers or the refusal)
    type OperationRow = (
        &'static str,
        Who,
        Role,
        &'static str,
        &'static str,
        Result<&'static [&'static str], GatewayRefusal>,
    );

    const APP_SEES: &[&str] = &["OPS"];
    const GUEST_SEES: &[&str] = &["HR", "OPS"];
    const USER_SEES: &[&str] = &[];

    #[test]
    fn each_operation_is_admitted_or_refused_in_order() {
        use GatewayRefusal::*;
        use Role::{Admin, Guest, Member};
        use Who::{App, User};
        let myself_alternatives: &[&[&str]] =
            &[&["read:jira-user"], &["read:user:jira", "read:avatar:jira"]];
        #[rustfmt::skip]
        let table: Vec<OperationRow> = vec![
            // Admitted, with what the upstream must hide from this caller.
            ("classic scope", App(READ), Member, "GET", "/rest/api/3/myself", Ok(APP_SEES)),
            ("granular alternative", App("read:user:jira read:avatar:jira"), Member, "GET", "/rest/api/3/myself", Ok(APP_SEES)),
            ("api token", User, Member, "GET", "/rest/api/3/myself", Ok(USER_SEES)),
            ("trailing slash", App(READ), Member, "GET", "/rest/api/3/myself/", Ok(APP_SEES)),
            // The catalog.
            ("unknown operation", App(READ), Member, "GET", "/rest/api/3/nothing", Err(UnknownOperation { product: "jira".into(), method: "GET".into(), path: "/rest/api/3/nothing".into() })),
            ("other method", App(READ), Member, "PUT", "/rest/api/3/myself", Err(MethodNotAllowed { product: "jira".into(), method: "PUT".into(), allowed: strings(&["GET"]) })),
            ("other method, no scope either", App(""), Member, "PUT", "/rest/api/3/myself", Err(MethodNotAllowed { product: "jira".into(), method: "PUT".into(), allowed: strings(&["GET"]) })),
            ("dot segment", App(READ), Admin, "GET", "/rest/api/3/x/../myself", Err(InvalidPath(PathError::DotSegment))),
            ("encoded slash", App(READ), Admin, "GET", "/rest/api/3/issue/a%2Fb", Err(InvalidPath(PathError::ForbiddenCharacter))),
            // Closed to apps; a user's own token is not an app.
            ("closed to apps", App(READ), Admin, "GET", "/rest/api/3/serverInfo", Err(ClosedToApps)),
            ("closed, api token", User, Member, "GET", "/rest/api/3/serverInfo", Ok(USER_SEES)),
            // Scopes.
            ("no alternative granted", App("read:jira-work read:user:jira"), Admin, "GET", "/rest/api/3/myself", Err(missing(myself_alternatives))),
            ("no scope at all", App(""), Admin, "GET", "/rest/api/3/issue/DEMO-1", Err(missing(&[&["read:jira-work"]]))),
            // The admin role.
            ("manage scope, member", App("manage:jira-configuration"), Member, "GET", "/rest/api/3/application-properties", Err(needs_admin())),
            ("manage scope, guest", App("manage:jira-configuration"), Guest, "GET", "/rest/api/3/application-properties", Err(needs_admin())),
            ("manage scope, admin", App("manage:jira-configuration"), Admin, "GET", "/rest/api/3/application-properties", Ok(APP_SEES)),
            ("manage only, api token member", User, Member, "GET", "/rest/api/3/application-properties", Err(needs_admin())),
            ("manage only, api token admin", User, Admin, "GET", "/rest/api/3/application-properties", Ok(USER_SEES)),
            ("granted read way in", App("read:jira-work manage:jira-configuration"), Member, "GET", "/rest/api/3/either", Ok(APP_SEES)),
            ("only the manage way in", App("manage:jira-configuration"), Member, "GET", "/rest/api/3/either", Err(needs_admin())),
            ("a read way in exists, api token", User, Member, "GET", "/rest/api/3/either", Ok(USER_SEES)),
            // A guest's containers, with an app or its own token.
            ("guest inside", App(READ), Guest, "GET", "/rest/api/3/issue/DEMO-1", Ok(GUEST_SEES)),
            ("guest outside", App(READ), Guest, "GET", "/rest/api/3/project/10002", Err(OutsideGuestContainers)),
            ("guest outside, api token", User, Guest, "GET", "/rest/api/3/issue/HR-3", Err(OutsideGuestContainers)),
            ("guest, no container named", App(READ), Guest, "GET", "/rest/api/3/myself", Ok(GUEST_SEES)),
            ("member, invitation ignored", App(READ), Member, "GET", "/rest/api/3/issue/HR-3", Ok(APP_SEES)),
            // Data security policies, by issue key, project key or id, space key.
            ("policy, issue key", App(READ), Member, "GET", "/rest/api/3/issue/OPS-1", Err(policy("Finance"))),
            ("policy, project key", App(READ), Member, "GET", "/rest/api/3/project/OPS", Err(policy("Finance"))),
            ("policy, project id", App(READ), Member, "GET", "/rest/api/3/project/10001", Err(policy("Finance"))),
            ("policy, space key", App(READ), Member, "GET", "/wiki/rest/api/space/OPS", Err(policy("Finance"))),
            ("policy binds admins' apps", App(READ), Admin, "GET", "/rest/api/3/issue/OPS-1", Err(policy("Finance"))),
            ("policy, api token", User, Member, "GET", "/rest/api/3/issue/OPS-1", Ok(USER_SEES)),
            ("inactive policy", App(READ), Member, "GET", "/rest/api/3/issue/DEMO-1", Ok(APP_SEES)),
            ("policy without the app rule, or of another product", App(READ), Member, "GET", "/rest/api/3/project/HR", Ok(APP_SEES)),
            ("issue id, not key", App(READ), Member, "GET", "/rest/api/3/issue/10001", Ok(APP_SEES)),
            ("unknown project", App(READ), Member, "GET", "/rest/api/3/project/NOPE", Ok(APP_SEES)),
            // Orderings: the earlier refusal wins.
            ("guest outside, closed operation", App(READ), Guest, "GET", "/rest/api/3/project/OPS/secret", Err(ClosedToApps)),
            ("guest outside, missing scope", App("read:jira-user"), Guest, "GET", "/rest/api/3/issue/HR-1", Err(missing(&[&["read:jira-work"]]))),
            ("guest outside, needs admin", App("manage:jira-project"), Guest, "DELETE", "/rest/api/3/project/HR", Err(needs_admin())),
            ("member on a blocked container, needs admin", App("manage:jira-project"), Member, "DELETE", "/rest/api/3/project/OPS", Err(needs_admin())),
            ("admin on a blocked container", App("manage:jira-project"), Admin, "DELETE", "/rest/api/3/project/OPS", Err(policy("Finance"))),
            ("guest outside and blocked", App(READ), Guest, "GET", "/rest/api/3/issue/OPS-1", Err(OutsideGuestContainers)),
            ("guest outside, closed, api token", User, Guest, "GET", "/rest/api/3/project/OPS/secret", Err(OutsideGuestContainers)),
            ("method before scopes and containers", App(""), Guest, "PUT", "/rest/api/3/project/OPS", Err(MethodNotAllowed { product: "jira".into(), method: "PUT".into(), allowed: strings(&["GET", "DELETE"]) })),
        ];
        let catalog = catalog();
        for (name, who, role, method, path, expected) in table {
            let standing = standing(who, role);
            let call = call(method, path);
            let got = check_operation(&call, &standing, catalog.lookup(method, path));
            let got = got.map(|allowed| allowed.blocked_containers.to_vec());
            let expected = expected.map(strings);
            assert_eq!(
                got, expected,
                "{name}: {who:?} as {role:?}, {method} {path}"
            );
        }
    }

    #[derive(Clone, Copy, Debug)]
    struct Site {
        exists: bool,
        installed: bool,
        by_admin: bool,
        blocked: bool,
        product_known: bool,
    }

    /// (name, the app's scopes or `None` for an API token, the site as the app finds it,
    /// the site hosts the product, the role, the outcome)
    type StandingRow = (
        &'static str,
        Option<&'static str>,
        Option<Site>,
        bool,
        Option<Role>,
        Result<Role, GatewayRefusal>,
    );

    const INSTALLED: Site = Site {
        exists: true,
        installed: true,
        by_admin: false,
        blocked: false,
        product_known: true,
    };

    #[test]
    fn standing_checks_the_site_the_membership_and_the_app_in_order() {
        use GatewayRefusal::*;
        let jira = scopes("read:jira-work read:jira-user");
        let unknown_site = || UnknownSiteOrProduct {
            product: "jira".into(),
            cloud_id: ACME.into(),
        };
        let not_a_member = || NotAMember {
            product: "jira".into(),
        };
        let unreachable = || SiteUnreachable {
            product: "jira".into(),
        };
        #[rustfmt::skip]
        let table: Vec<StandingRow> = vec![
            ("installed app, member", Some(READ), Some(INSTALLED), true, Some(Role::Member), Ok(Role::Member)),
            ("installed app, guest", Some(READ), Some(INSTALLED), true, Some(Role::Guest), Ok(Role::Guest)),
            ("api token, admin", None, None, true, Some(Role::Admin), Ok(Role::Admin)),
            ("blocked, but installed by an admin", Some(READ), Some(Site { by_admin: true, blocked: true, ..INSTALLED }), true, Some(Role::Member), Ok(Role::Member)),
            ("one granted scope is the product's", Some("read:jira-work write:confluence-content"), Some(INSTALLED), true, Some(Role::Member), Ok(Role::Member)),
            ("site or product unknown", Some(READ), Some(INSTALLED), false, Some(Role::Member), Err(unknown_site())),
            ("unknown and not a member", Some(READ), None, false, None, Err(unknown_site())),
            ("api token, unknown", None, None, false, None, Err(unknown_site())),
            ("not a member", Some(READ), Some(INSTALLED), true, None, Err(not_a_member())),
            ("not a member, app unreachable too", Some(READ), None, true, None, Err(not_a_member())),
            ("api token, not a member", None, None, true, None, Err(not_a_member())),
            ("not installed", Some(READ), Some(Site { installed: false, ..INSTALLED }), true, Some(Role::Admin), Err(unreachable())),
            ("user installs blocked", Some(READ), Some(Site { blocked: true, ..INSTALLED }), true, Some(Role::Admin), Err(unreachable())),
            ("site record missing", Some(READ), Some(Site { exists: false, ..INSTALLED }), true, Some(Role::Member), Err(unreachable())),
            ("product catalog unknown", Some(READ), Some(Site { product_known: false, ..INSTALLED }), true, Some(Role::Member), Err(unreachable())),
            ("no granted scope is the product's", Some("read:me write:confluence-content"), Some(INSTALLED), true, Some(Role::Member), Err(unreachable())),
        ];
        for (name, app, site, hosts, role, expected) in table {
            let token_scopes = app.map(scopes);
            let principal = match &token_scopes {
                Some(scopes) => Principal::App {
                    scopes,
                    site: site.filter(|s| s.exists).map(|s| AppOnSite {
                        installed: s.installed,
                        installed_by_admin: s.by_admin,
                        user_installs_blocked: s.blocked,
                        product_scopes: s.product_known.then_some(&jira),
                    }),
                },
                None => Principal::User,
            };
            let facts = StandingFacts {
                principal,
                upstream_base: hosts.then_some(UPSTREAM),
                role,
            };
            let got = check_standing(&call("GET", "/rest/api/3/myself"), &facts);
            let expected = expected.map(|role| SiteStanding {
                role,
                upstream_base: UPSTREAM,
            });
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn each_refusal_has_its_status_message_and_challenge() {
        use GatewayRefusal::*;
        let jira = || "jira".to_owned();
        #[rustfmt::skip]
        let table: Vec<(GatewayRefusal, u16, &str, Challenge)> = vec![
            (InvalidToken, 401, "The access token is invalid or expired.", Challenge::InvalidToken),
            (RevokedToken, 401, "The access token has been revoked.", Challenge::InvalidToken),
            (UnknownApiToken, 401, "The email and API token do not match a live API token.", Challenge::Basic),
            (UnknownSiteOrProduct { product: jira(), cloud_id: "c-1".into() }, 404, "There is no jira on a site with id c-1.", Challenge::None),
            (NotAMember { product: jira() }, 403, "The account is not a member of jira on this site.", Challenge::None),
            (SiteUnreachable { product: jira() }, 403, "The app has no access to jira on this site: it is not installed there, the site blocks it, or no granted scope is for this product.", Challenge::None),
            (InvalidPath(PathError::DotSegment), 400, "The path is refused: path has a '.' or '..' segment.", Challenge::None),
            (UnknownOperation { product: jira(), method: "GET".into(), path: "/rest/api/3/x".into() }, 404, "No jira operation matches GET /rest/api/3/x.", Challenge::None),
            (MethodNotAllowed { product: jira(), method: "PUT".into(), allowed: strings(&["GET", "DELETE"]) }, 405, "jira does not allow PUT here.", Challenge::None),
            (ClosedToApps, 403, "Apps can't access this REST resource.", Challenge::None),
            (missing(&[&["read:jira-work"], &["read:issue:jira", "read:project:jira"]]), 403, "The access token lacks the scopes this operation needs: [read:jira-work] or [read:issue:jira read:project:jira].", Challenge::InsufficientScope),
            (needs_admin(), 403, "This operation needs the admin role for jira on this site.", Challenge::None),
            (OutsideGuestContainers, 403, "Guests can reach only the spaces or projects they were invited to.", Challenge::None),
            (policy("Finance <data>"), 403, "The data security policy \u{201c}Finance <data>\u{201d} does not allow apps to access this content.", Challenge::None),
        ];
        for (refusal, status, message, challenge) in table {
            assert_eq!(refusal.status(), status, "{refusal:?}");
            assert_eq!(refusal.message(), message, "{refusal:?}");
            assert_eq!(refusal.challenge(), challenge, "{refusal:?}");
            let allow = match &refusal {
                MethodNotAllowed { allowed, .. } => allowed.clone(),
                _ => Vec::new(),
            };
            assert_eq!(refusal.allow(), allow.as_slice(), "{refusal:?}");
        }
    }

    #[test]
    fn manage_scopes_are_recognized_by_prefix() {
        assert!(is_manage_scope("manage:jira-project"));
        assert!(!is_manage_scope("read:jira-work"));
        assert!(!is_manage_scope("write:manage:x"));
    }

    #[test]
    fn only_guests_are_held_to_their_invitation() {
        assert!(Role::Guest.limited_to_invited_containers());
        assert!(!Role::Member.limited_to_invited_containers());
        assert!(!Role::Admin.limited_to_invited_containers());
        let member = standing(Who::App(READ), Role::Member);
        assert_eq!(member.role(), Role::Member);
        assert_eq!(member.app_scopes(), Some(&scopes(READ)));
        assert_eq!(standing(Who::User, Role::Guest).app_scopes(), None);
    }
}
