//! The gateway's operation catalog: every operation of a product's OpenAPI 3 document
//! (method, path template, operationId) with the OAuth scope alternatives that allow an
//! app to call it, and a [`Router`] that finds the operation for a request.
//!
//! Scope alternatives: an operation lists alternatives, each a set of scopes that are all
//! required; any one alternative suffices. They are read as follows.
//! - `x-atlassian-oauth2-scopes` (Jira), when present, is authoritative: each element
//!   `{state, scheme, scopes}` whose `scheme` is an OAuth scheme (or absent) and whose
//!   `scopes` is non-empty is one alternative (`Current` = classic, `Beta` = granular).
//!   In the Jira document the OAuth part of `security` always equals the `Current`
//!   alternative, so `security` adds nothing. An extension whose alternatives are all
//!   empty, on an operation whose `security` names the OAuth scheme with no scopes, says
//!   that an app needs no scope for it (`GET /rest/api/3/serverInfo`, which anyone may
//!   read and which the Python `jira` client calls first): it is open with one empty
//!   alternative, so any token of an app that reaches the site will do. Forge-only
//!   operations (`x-atlassian-connect-scope: INACCESSIBLE`) stay closed.
//! - Otherwise the standard `security` requirement (OpenAPI 3 §4.8.10), or the document's
//!   when the operation has none (`security: []` overrides it with "none"): each
//!   requirement object is one alternative made of the scopes of its OAuth schemes
//!   (`oauth2`/`openIdConnect` in `components.securitySchemes`). A requirement naming
//!   only other schemes (`basicAuth`), `{}` (anonymous) or an OAuth scheme with `[]`
//!   gives no alternative: an alternative without scopes would let any token through.
//! - An alternative holding a value that is not a single valid scope token
//!   (RFC 6749 §3.3) is dropped, so a malformed document closes rather than opens.
//!
//! An operation is open to apps iff it has at least one alternative.
//!
//! Request paths: the path an app sends after `/ex/{product}/{cloudid}` is the path the
//! upstream itself serves, i.e. the server base path (`servers[0].url`, operation- or
//! path-level `servers` first) followed by the template. Both sample documents have no
//! server base path and Confluence's templates already start with `/wiki`, so the apps
//! call `/ex/confluence/{cloudid}/wiki/rest/api/space` and
//! `/ex/jira/{cloudid}/rest/api/3/myself`. Path rules (encoding, dot segments, trailing
//! slash) are those of [`crate::route`].

use serde::Serialize;
use serde_json::Value;

use crate::catalog::CatalogError;
use crate::route::{Lookup, RouteMatch, Router};
use crate::scope::ScopeSet;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One operation of a product API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Operation {
    /// Uppercase HTTP method.
    pub method: String,
    /// Server base path plus the document's path template.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// Any one alternative suffices; every scope of an alternative is required. Empty
    /// means the operation cannot be called by apps.
    pub alternatives: Vec<Vec<String>>,
}

impl Operation {
    pub fn is_open_to_apps(&self) -> bool {
        !self.alternatives.is_empty()
    }

    /// The first alternative whose scopes are all in `granted`.
    pub fn granted_alternative(&self, granted: &ScopeSet) -> Option<&[String]> {
        self.alternatives
            .iter()
            .find(|alt| alt.iter().all(|s| granted.contains(s)))
            .map(Vec::as_slice)
    }
}

/// Summary of an imported catalog, printed by the CLI as JSON.
#[derive(Default, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CatalogReport {
    /// All operations of the document, including unparsed ones.
    pub operations: usize,
    pub app_operations: usize,
    /// Distinct scopes named by any alternative, sorted.
    pub scopes: Vec<String>,
    /// Templates the router could not compile, or that repeat a method on a path shape
    /// already routed; their operations exist but can never be matched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unparsed: Vec<String>,
}

impl CatalogReport {
    /// Adds another description's report to this one (a product of several).
    pub fn add(&mut self, other: CatalogReport) {
        self.operations += other.operations;
        self.app_operations += other.app_operations;
        for scope in other.scopes {
            if let Err(at) = self.scopes.binary_search(&scope) {
                self.scopes.insert(at, scope);
            }
        }
        self.unparsed.extend(other.unparsed);
    }
}

pub type OperationMatch<'c, 'p> = RouteMatch<'c, 'p, Operation>;
pub type OperationLookup<'c, 'p> = Lookup<'c, 'p, Operation>;

/// The operations of one product and the router over their templates.
#[derive(Debug)]
pub struct OperationCatalog {
    operations: Vec<Operation>,
    router: Router<usize>,
    unparsed: Vec<String>,
}

impl OperationCatalog {
    /// Imports an OpenAPI 3 document. Bad templates do not fail the import; they are
    /// listed in [`CatalogReport::unparsed`].
    pub fn from_openapi(doc: &Value) -> Result<Self, CatalogError> {
        if !doc
            .get("openapi")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with('3'))
        {
            return Err(CatalogError::NotOpenApi);
        }
        let oauth = oauth_schemes(doc);
        let doc_security = doc.get("security");
        let doc_base = server_base(doc.get("servers")).unwrap_or_default();
        let mut catalog = OperationCatalog {
            operations: Vec::new(),
            router: Router::new(),
            unparsed: Vec::new(),
        };
        let paths = doc.get("paths").and_then(Value::as_object);
        for (template, item) in paths.into_iter().flatten() {
            let item_base = server_base(item.get("servers"));
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                let base = server_base(op.get("servers"))
                    .or_else(|| item_base.clone())
                    .unwrap_or_else(|| doc_base.clone());
                let operation = Operation {
                    method: method.to_ascii_uppercase(),
                    path: format!("{base}{template}"),
                    operation_id: op
                        .get("operationId")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    alternatives: alternatives(op, doc_security, &oauth),
                };
                let id = catalog.operations.len();
                if catalog
                    .router
                    .insert(&operation.method, &operation.path, id)
                    .is_err()
                    && !catalog.unparsed.contains(&operation.path)
                {
                    catalog.unparsed.push(operation.path.clone());
                }
                catalog.operations.push(operation);
            }
        }
        Ok(catalog)
    }

    /// All operations, in document order.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// The operation declared for `method` on exactly `template` (base path included).
    pub fn operation(&self, method: &str, template: &str) -> Option<&Operation> {
        self.operations
            .iter()
            .find(|o| o.method == method && o.path == template)
    }

    /// Finds the operation for a request; `path` is the raw path after the cloud id,
    /// without query string. See [`Router::lookup`].
    pub fn lookup<'c, 'p>(&'c self, method: &str, path: &'p str) -> OperationLookup<'c, 'p> {
        match self.router.lookup(method, path) {
            Lookup::Found(m) => match self.operations.get(*m.value) {
                Some(op) => Lookup::Found(RouteMatch {
                    value: op,
                    params: m.params,
                }),
                None => Lookup::NotFound,
            },
            Lookup::MethodNotAllowed { allowed } => Lookup::MethodNotAllowed { allowed },
            Lookup::NotFound => Lookup::NotFound,
            Lookup::Invalid(e) => Lookup::Invalid(e),
        }
    }

    /// [`Self::lookup`] when only a match matters.
    pub fn find<'c, 'p>(&'c self, method: &str, path: &'p str) -> Option<OperationMatch<'c, 'p>> {
        self.lookup(method, path).found()
    }

    /// Methods declared for the operations at `path` (empty: no such path), so the
    /// gateway can tell 405 from 404.
    pub fn allowed_methods(&self, path: &str) -> Vec<&str> {
        self.router.allowed_methods(path)
    }

    pub fn unparsed(&self) -> &[String] {
        &self.unparsed
    }

    pub fn report(&self) -> CatalogReport {
        let mut scopes: Vec<String> = self
            .operations
            .iter()
            .flat_map(|o| o.alternatives.iter().flatten().cloned())
            .collect();
        scopes.sort();
        scopes.dedup();
        CatalogReport {
            operations: self.operations.len(),
            app_operations: self
                .operations
                .iter()
                .filter(|o| o.is_open_to_apps())
                .count(),
            scopes,
            unparsed: self.unparsed.clone(),
        }
    }
}

/// Names of the `oauth2` and `openIdConnect` security schemes.
fn oauth_schemes(doc: &Value) -> Vec<&str> {
    doc.pointer("/components/securitySchemes")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, s)| {
            matches!(
                s.get("type").and_then(Value::as_str),
                Some("oauth2" | "openIdConnect")
            )
        })
        .map(|(name, _)| name.as_str())
        .collect()
}

/// The scope alternatives of one operation; see the module doc for the rules.
fn alternatives(op: &Value, doc_security: Option<&Value>, oauth: &[&str]) -> Vec<Vec<String>> {
    let raw: Vec<Vec<String>> = if let Some(ext) = op.get("x-atlassian-oauth2-scopes") {
        ext.as_array()
            .into_iter()
            .flatten()
            .filter(|alt| {
                alt.get("scheme")
                    .map(|s| s.as_str().is_some_and(|s| oauth.contains(&s)))
                    .unwrap_or(true)
            })
            .filter_map(|alt| scope_list(alt.get("scopes")?))
            .collect()
    } else {
        op.get("security")
            .or(doc_security)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|req| {
                let mut scopes = Vec::new();
                for (scheme, list) in req.as_object()? {
                    if oauth.contains(&scheme.as_str()) {
                        scopes.extend(scope_list(list)?);
                    }
                }
                Some(scopes)
            })
            .collect()
    };
    if needs_no_scope(op, oauth) {
        return vec![Vec::new()];
    }
    let mut out: Vec<Vec<String>> = Vec::new();
    for mut alt in raw {
        let mut seen = Vec::with_capacity(alt.len());
        alt.retain(|s| {
            let new = !seen.contains(s);
            if new {
                seen.push(s.clone());
            }
            new
        });
        let same = |o: &Vec<String>| o.len() == alt.len() && alt.iter().all(|s| o.contains(s));
        if !alt.is_empty() && !out.iter().any(same) {
            out.push(alt);
        }
    }
    out
}

/// The document says an app needs no scope: see the module doc. Only Jira's extension can
/// say so; a `security` requirement of an OAuth scheme with `[]` alone does not (an
/// alternative without scopes would otherwise open whatever a document forgot to scope).
fn needs_no_scope(op: &Value, oauth: &[&str]) -> bool {
    let Some(ext) = op
        .get("x-atlassian-oauth2-scopes")
        .and_then(Value::as_array)
    else {
        return false;
    };
    let all_empty = !ext.is_empty()
        && ext.iter().all(|alt| {
            alt.get("scopes")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
        });
    let oauth_without_scopes = op
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .any(|req| {
            req.iter().any(|(scheme, scopes)| {
                oauth.contains(&scheme.as_str()) && scopes.as_array().is_some_and(Vec::is_empty)
            })
        });
    let forge_only =
        op.get("x-atlassian-connect-scope").and_then(Value::as_str) == Some("INACCESSIBLE");
    all_empty && oauth_without_scopes && !forge_only
}

/// A JSON array of scope tokens; `None` if any entry is not one valid scope token.
fn scope_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| {
            let s = s.as_str()?;
            let one = ScopeSet::parse(s).is_ok_and(|set| set.len() == 1) && !s.contains(' ');
            one.then(|| s.to_owned())
        })
        .collect()
}

/// The path of the first server URL (OpenAPI 3 §4.8.5), with server variables replaced by
/// their defaults and no trailing slash; `None` when `servers` is absent or empty.
fn server_base(servers: Option<&Value>) -> Option<String> {
    let server = servers?.as_array()?.first()?;
    let url = server
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let after_host = |rest: &str| rest.find('/').map_or("", |i| &rest[i..]).to_owned();
    let path = if let Some(rest) = url.strip_prefix("//") {
        after_host(rest)
    } else if let Some(i) = url.find("://") {
        after_host(&url[i + 3..])
    } else {
        url.to_owned()
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        let name = &rest[open + 1..close];
        let default = server
            .get("variables")
            .and_then(|v| v.get(name))
            .and_then(|v| v.get("default"))
            .and_then(Value::as_str);
        out.push_str(&rest[..open]);
        // An unknown variable stays as written, which makes the templates unparsed.
        out.push_str(default.unwrap_or(&rest[open..=close]));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    let trimmed = out.trim_end_matches('/');
    Some(match trimmed {
        "" => String::new(),
        t if t.starts_with('/') => t.to_owned(),
        t => format!("/{t}"),
    })
}

#[cfg(test)]
mod tests;
