//! Small in-memory upstreams for the sample products: what trilo's gateway forwards to in
//! the demo, the integration tests and the benchmarks.
//!
//! The gateway forwards `/ex/{product}/{cloudid}/{api}` to the site's upstream base plus
//! `{api}`. [`router`] serves Jira under `/jira` and Confluence under `/confluence`, so a
//! site's upstream base is `{where the router is mounted}/jira` (or `/confluence`) and
//! `{api}` is the path of the product's OpenAPI document as is: `/rest/api/3/myself`,
//! `/wiki/rest/api/space` (Confluence's document lists its paths with the `/wiki` prefix).
//!
//! Every request must carry the gateway's identity headers and signed assertion (`trust`);
//! the cloud id they carry picks the site's data (`data`).

mod confluence;
mod confluence_pages;
mod data;
mod events;
mod jira;
mod jira_search;
mod service_desk;
mod trust;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde_json::json;

pub use data::SeedContainer;
pub(crate) use data::{CONFLUENCE_SEED_SPACES, JIRA_SEED_PROJECTS};
pub use events::EventSink;
pub use trust::{
    ACCOUNT_ID_HEADER, ASSERTION_HEADER, ASSERTION_LIFETIME_SECS, ASSERTION_TYP, AssertionClaims,
    BLOCKED_CONTAINERS_HEADER, CLIENT_ID_HEADER, CLOUD_ID_HEADER, Caller, SCOPES_HEADER,
};

/// What the upstreams trust and where their `self` links point.
///
/// Cloning shares the key set, so a clone kept by the caller can rotate the keys of a
/// running router ([`UpstreamConfig::replace_keys`]).
#[derive(Clone)]
pub struct UpstreamConfig {
    issuer: String,
    links_base: String,
    keys: Arc<RwLock<JwkSet>>,
    /// Where to read trilo's keys again when an assertion names a kid not yet known (a
    /// rotation), as a real product fetches the JWKS again.
    key_source: Option<KeySource>,
    /// Where each product posts its events, if anywhere (by product key).
    events: Vec<(&'static str, EventSink)>,
}

/// Reads trilo's current JWKS (see [`UpstreamConfig::with_key_source`]).
pub type KeySource = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

impl UpstreamConfig {
    /// `issuer` is trilo's issuer URL (the assertion's `iss`); `keys` is trilo's JWKS.
    /// Links point at the issuer until [`UpstreamConfig::with_links_base`] says otherwise,
    /// because the demo serves the auth and API hosts on one listener.
    pub fn new(issuer: impl Into<String>, keys: JwkSet) -> Self {
        let issuer = issuer.into();
        Self {
            links_base: issuer.trim_end_matches('/').to_owned(),
            issuer,
            keys: Arc::new(RwLock::new(keys)),
            key_source: None,
            events: Vec::new(),
        }
    }

    /// Reads the keys again from `source` when an assertion names an unknown kid.
    pub fn with_key_source(mut self, source: KeySource) -> Self {
        self.key_source = Some(source);
        self
    }

    /// Makes the product with `product_key` post its events to `sink` (trilo's
    /// `/internal/events` with that product's secret).
    pub fn with_events(mut self, product_key: &'static str, sink: EventSink) -> Self {
        self.events.retain(|(key, _)| *key != product_key);
        self.events.push((product_key, sink));
        self
    }

    /// Posts `event` for the product, if it posts events.
    fn emit(&self, product_key: &str, event: serde_json::Value) {
        if let Some((_, sink)) = self.events.iter().find(|(key, _)| *key == product_key) {
            sink.emit(event);
        }
    }

    /// The same from trilo's JWKS document as JSON (what `/.well-known/jwks.json` serves).
    pub fn from_jwks_json(
        issuer: impl Into<String>,
        jwks: &serde_json::Value,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self::new(issuer, serde_json::from_value(jwks.clone())?))
    }

    /// Makes `self` links point through trilo's API host (`{api_url}/ex/{product}/{cloudid}/…`),
    /// so a client that follows them goes through the gateway, as with the real products.
    pub fn with_links_base(mut self, api_url: impl Into<String>) -> Self {
        self.links_base = api_url.into().trim_end_matches('/').to_owned();
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Replaces the trusted keys, for example after trilo rotated its signing key.
    pub fn replace_keys(&self, keys: JwkSet) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
    }

    /// The trusted key with this id; cloned so the lock is not held while verifying.
    fn key(&self, kid: &str) -> Option<Jwk> {
        let known = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .find(kid)
            .cloned();
        known.or_else(|| {
            let fresh: JwkSet = serde_json::from_value((self.key_source.as_ref()?)()).ok()?;
            let key = fresh.find(kid).cloned();
            self.replace_keys(fresh);
            key
        })
    }
}

impl fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys
            .len();
        f.debug_struct("UpstreamConfig")
            .field("issuer", &self.issuer)
            .field("links_base", &self.links_base)
            .field("keys", &keys)
            .finish()
    }
}

/// The state every handler shares.
#[derive(Clone)]
struct Upstream {
    config: UpstreamConfig,
    sites: Arc<data::Sites>,
}

impl Upstream {
    /// Where a site's API is reached through the gateway: the base of `self` links.
    fn site_base(&self, product: Product, cloud_id: &str) -> String {
        format!("{}/ex/{}/{cloud_id}", self.config.links_base, product.key())
    }
}

/// The products these upstreams serve; the assertion's `aud` must name the route's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Product {
    Jira,
    Confluence,
}

impl Product {
    fn key(self) -> &'static str {
        match self {
            Product::Jira => crate::JIRA.key,
            Product::Confluence => crate::CONFLUENCE.key,
        }
    }

    /// An error in the product's own shape, so clients see what the real product sends.
    fn error(self, status: StatusCode, message: impl Into<String>) -> Response {
        let message = message.into();
        let body = match self {
            // Jira's ErrorCollection.
            Product::Jira => json!({ "errorMessages": [message], "errors": {} }),
            // Confluence's v1 REST error.
            Product::Confluence => json!({
                "statusCode": status.as_u16(),
                "data": { "authorized": false, "valid": true, "errors": [], "successful": false },
                "message": message,
            }),
        };
        (status, axum::Json(body)).into_response()
    }

    async fn not_found(self) -> Response {
        self.error(
            StatusCode::NOT_FOUND,
            format!("No {} resource at this path.", self.key()),
        )
    }

    async fn method_not_allowed(self) -> Response {
        self.error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed for this resource.",
        )
    }
}

/// Both sample products, to be mounted anywhere (the demo nests it under `/sample`).
pub fn router(config: UpstreamConfig) -> Router {
    let upstream = Upstream {
        config,
        sites: Arc::new(data::Sites::default()),
    };
    Router::new()
        .nest(
            "/jira",
            product_router(jira::router(), &upstream, Product::Jira),
        )
        .nest(
            "/confluence",
            product_router(confluence::router(), &upstream, Product::Confluence),
        )
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({
                    "statusCode": 404,
                    "message": "No sample product serves this path; try /jira or /confluence.",
                })),
            )
        })
        .with_state(upstream)
}

/// Adds the product's JSON fallbacks and, around routes and fallbacks alike, the
/// assertion check: an unauthenticated caller learns nothing, not even which paths exist.
fn product_router(
    routes: Router<Upstream>,
    upstream: &Upstream,
    product: Product,
) -> Router<Upstream> {
    routes
        .fallback(move || product.not_found())
        .method_not_allowed_fallback(move || product.method_not_allowed())
        .layer(axum::middleware::from_fn_with_state(
            (upstream.clone(), product),
            trust::require_assertion,
        ))
}

/// Serves `router` on `listener` until the task is dropped or the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(listener, router).await
}

/// The query string's pairs, repeated keys kept (Confluence's `spaceKey` repeats).
fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, String> {
    serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|_| "The query string is malformed.".to_owned())
}

/// A non-negative integer parameter: absent → `default`, above `max` → `max` (both products
/// clamp page sizes rather than fail).
fn int_param(
    pairs: &[(String, String)],
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, String> {
    match pairs.iter().find(|(k, _)| k == name) {
        None => Ok(default),
        Some((_, v)) => v
            .parse::<usize>()
            .map(|n| n.min(max))
            .map_err(|_| format!("The value '{v}' is invalid for {name}.")),
    }
}
