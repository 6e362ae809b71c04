//! Forwarding a checked gateway call to its upstream (DESIGN §3 "Gateway", security
//! checklist §4.6): pooled keep-alive connections, bodies streamed both ways and never
//! buffered whole, hop-by-hop and inbound `X-Trilo-*` headers stripped, the caller's
//! credentials never passed on, the identity headers and the signed assertion added.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Request, Response, StatusCode, Uri};
use http_body_util::{LengthLimitError, Limited};
use hyper::body::{Frame, SizeHint};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use trilo_core::services::gateway::Admitted;

use super::super::errors::ApiError;
use super::exchange::{Exchange, ExchangeError, UpstreamBody, is_field_value, split_http_url};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The caller's credentials and cookies belong to trilo, never to the upstream; `Host`
/// is the upstream's own.
const CALLER_ONLY: [HeaderName; 3] = [header::AUTHORIZATION, header::COOKIE, header::HOST];

/// The prefix of the headers only trilo may set (identity and assertion).
const TRILO_PREFIX: &str = "x-trilo-";

/// Headers by which a caller could make an upstream (or a proxy in front of it) believe
/// another client address, host, scheme, path or method than the gateway's (issue 16).
/// All `X-Forwarded-*` go too; trilo sets `Forwarded` itself from the connection.
const CALLER_ROUTING: [&str; 16] = [
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-host",
    "x-proxyuser-ip",
];
const FORWARDED_PREFIX: &str = "x-forwarded-";

/// What every proxied answer carries whatever the upstream said: no sniffing, and a policy
/// under which a product's answer opened as a page on the API host's origin runs nothing.
const PROXIED_CSP: &str = "default-src 'none'; frame-ancestors 'none'; sandbox";

/// How to reach upstreams.
#[derive(Clone, Copy, Debug)]
pub struct UpstreamSettings {
    pub connect_timeout: Duration,
    /// From sending the request until the response head arrives.
    pub response_timeout: Duration,
    /// Idle keep-alive connections kept per upstream host.
    pub max_idle_per_host: usize,
    /// Request bodies larger than this are refused with 413 (streamed bodies are cut off
    /// when they pass it).
    pub max_request_body: u64,
    /// A missing scope is answered with the reference's 401 instead of 403
    /// (`gateway.scope_mismatch = "reference"`).
    pub reference_scope_mismatch: bool,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(30),
            max_idle_per_host: 64,
            max_request_body: 1024 * 1024 * 1024,
            reference_scope_mismatch: false,
        }
    }
}

/// How long an idle keep-alive connection to an upstream is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The pooled HTTP clients for upstream calls: the gateway's own exchange for calls
/// without a body to `http://` upstreams, hyper's client for those with one and for every
/// call to an `https://` upstream (see `exchange`).
#[derive(Clone, Debug)]
pub struct Upstreams {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    exchange: Arc<Exchange>,
    settings: UpstreamSettings,
}

impl Upstreams {
    /// The clients; `https://` upstreams are verified against the system's CA roots, which
    /// must load.
    pub fn new(settings: UpstreamSettings) -> anyhow::Result<Self> {
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_connect_timeout(Some(settings.connect_timeout));
        connector.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .context("loading the system's CA roots for https upstreams")?
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(settings.max_idle_per_host)
            .build(connector);
        let exchange = Arc::new(Exchange::new(
            settings.connect_timeout,
            settings.max_idle_per_host,
            IDLE_TIMEOUT,
        ));
        Ok(Self {
            client,
            exchange,
            settings,
        })
    }

    pub fn settings(&self) -> &UpstreamSettings {
        &self.settings
    }

    /// Sends `request` (its body streamed as it arrives) to the admitted call's upstream,
    /// at its base URL followed by `path` and `query`, with the identity of the call, and
    /// returns the upstream's response with its body streamed back. A dead upstream is
    /// 502, a slow one 504.
    pub async fn forward(
        &self,
        request: Request<Body>,
        identity: &Admitted,
        path: &str,
        query: Option<&str>,
    ) -> Result<Response<Body>, ApiError> {
        let (mut parts, body) = request.into_parts();
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.settings.max_request_body) {
            return Err(too_large());
        }
        let mut forwarded = [0u8; FORWARDED_MAX];
        let forwarded = forwarded_for(peer, &mut forwarded);
        let blocked = identity.blocked_containers.join(",");
        let own = trilo_headers(identity, forwarded, &blocked)?;
        let upstream = &identity.forwarding.upstream_base;
        let response = if hyper::body::Body::is_end_stream(&body)
            && let Some((authority, base_path)) = split_http_url(upstream)
        {
            let target = match query {
                Some(query) => [base_path, path, "?", query],
                None => [base_path, path, "", ""],
            };
            answer(self.by_exchange(&parts, authority, &target, &own).await?)
        } else {
            strip(&mut parts.headers);
            for (name, value) in own.iter().flatten() {
                // Checked by `trilo_headers` by the same rule as `HeaderValue`'s.
                let value = HeaderValue::from_str(value).map_err(|_| unsendable_identity())?;
                parts.headers.insert(HeaderName::from_static(name), value);
            }
            parts.uri = target_uri(upstream, path, query)?;
            answer(self.by_client(Request::from_parts(parts, body)).await?)
        };
        Ok(response)
    }

    /// A call without a body (most of them) by the gateway's own exchange, its headers
    /// written as they are read: the caller's that may cross, then trilo's.
    async fn by_exchange(
        &self,
        request: &axum::http::request::Parts,
        authority: &str,
        target: &[&str],
        own: &[Option<(&'static str, &str)>],
    ) -> Result<Response<UpstreamBody>, ApiError> {
        let named = connection_named(&request.headers);
        let headers = request
            .headers
            .iter()
            .filter(|(name, _)| crosses(name, &named))
            .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()))
            .chain(
                own.iter()
                    .flatten()
                    .map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            );
        let sent = self
            .exchange
            .send(&request.method, authority, target, headers);
        match tokio::time::timeout(self.settings.response_timeout, sent).await {
            Err(_) => Err(too_slow()),
            Ok(Err(ExchangeError::Target)) => Err(misconfigured()),
            Ok(Err(ExchangeError::Head(e))) => {
                tracing::warn!(error = %e, "the product's answer could not be read");
                Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "The product's answer was not valid HTTP.",
                ))
            }
            Ok(Err(e)) => Err(unreachable_product(&e)),
            Ok(Ok(response)) => Ok(response),
        }
    }

    /// A call with a body, or to an `https://` upstream, by hyper's client; the body is
    /// streamed under the request body limit.
    async fn by_client(
        &self,
        request: Request<Body>,
    ) -> Result<Response<hyper::body::Incoming>, ApiError> {
        let limit = usize::try_from(self.settings.max_request_body).unwrap_or(usize::MAX);
        let request = request.map(|body| Body::new(Limited::new(body, limit)));
        let sent = self.client.request(request);
        match tokio::time::timeout(self.settings.response_timeout, sent).await {
            Err(_) => Err(too_slow()),
            Ok(Err(e)) if exceeded_limit(&e) => Err(too_large()),
            Ok(Err(e)) => Err(unreachable_product(&e)),
            Ok(Ok(response)) => Ok(response),
        }
    }
}

/// The upstream URL: the site's base for the product, then `{api}` and the query as sent.
fn target_uri(base: &str, path: &str, query: Option<&str>) -> Result<Uri, ApiError> {
    let base = base.trim_end_matches('/');
    let query_len = query.map_or(0, |query| query.len() + 1);
    let mut target = String::with_capacity(base.len() + path.len() + query_len);
    target.push_str(base);
    target.push_str(path);
    if let Some(query) = query {
        target.push('?');
        target.push_str(query);
    }
    // From the `String` itself: parsing a `&str` would copy it again.
    Uri::try_from(target).map_err(|_| misconfigured())
}

/// The product's answer as the caller gets it: filtered, its body streamed on.
fn answer<B>(response: Response<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = axum::body::Bytes> + Send + Unpin + 'static,
    B::Error: std::fmt::Display + Into<axum::BoxError>,
{
    let (mut parts, body) = response.into_parts();
    strip_response(&mut parts.headers);
    let body = ReportBreaks {
        inner: body,
        span: tracing::Span::current(),
    };
    Response::from_parts(parts, Body::new(body))
}

/// The product's answer on its way back to the caller. A break mid-stream (the product
/// died or dropped the connection) can only cut the caller's connection, since the status
/// has gone out already; it is logged here, in the request's span (its request id), so
/// the operator hears of it too.
struct ReportBreaks<B> {
    inner: B,
    span: tracing::Span,
}

impl<B> hyper::body::Body for ReportBreaks<B>
where
    B: hyper::body::Body<Data = axum::body::Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    type Data = axum::body::Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Err(error))) = &polled {
            let _in_request = self.span.enter();
            tracing::warn!(error = %error, "the product's answer broke off mid-stream");
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn too_slow() -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "The product did not answer in time.",
    )
}

/// The product could not be reached (`error` says why, in the log only).
fn unreachable_product(error: &dyn std::fmt::Display) -> ApiError {
    tracing::warn!(error = %error, "upstream request failed");
    ApiError::new(StatusCode::BAD_GATEWAY, "The product could not be reached.")
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "The request body is larger than the gateway accepts.",
    )
}

/// Whether sending failed because the request body passed the limit.
fn exceeded_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Whether a caller's header goes on to the upstream: not one that describes the
/// connection (hop-by-hop, or named by its `Connection` header: `named`), nor the caller's
/// credentials and cookies, nor one that claims another address, host, path or method, nor
/// an `X-Trilo-*` only trilo may set.
fn crosses(name: &HeaderName, named: &[HeaderName]) -> bool {
    let text = name.as_str();
    !(HOP_BY_HOP.contains(name)
        || CALLER_ONLY.contains(name)
        || CALLER_ROUTING.contains(&text)
        || text.starts_with(TRILO_PREFIX)
        || text.starts_with(FORWARDED_PREFIX)
        || named.contains(name))
}

/// The headers a `Connection` header names (RFC 9110 §7.6.1); none, the common case,
/// allocates nothing.
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect()
}

/// The inbound strip as a header map undergoes it (for calls with a body, which go by
/// hyper's client): what does not [`cross`](crosses) is removed.
fn strip(headers: &mut HeaderMap) {
    let named = connection_named(headers);
    remove_where(headers, |name| !crosses(name, &named));
}

/// Removes every header whose (lowercase) name `matches`, in one pass over the headers
/// there are rather than one lookup per name that could be.
fn remove_where(headers: &mut HeaderMap, matches: impl Fn(&HeaderName) -> bool) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|name| matches(name))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

/// Room for `for="[` + the longest IPv6 text (45) + `]"`.
const FORWARDED_MAX: usize = 64;

/// `Forwarded` (RFC 7239) as the gateway saw the call, the connection's peer, written
/// into `buffer`.
fn forwarded_for(peer: Option<std::net::IpAddr>, buffer: &mut [u8; FORWARDED_MAX]) -> Option<&str> {
    use std::io::Write as _;
    let peer = peer?;
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    match peer {
        std::net::IpAddr::V4(ip) => write!(cursor, "for={ip}"),
        std::net::IpAddr::V6(ip) => write!(cursor, "for=\"[{ip}]\""),
    }
    .ok()?;
    let len = usize::try_from(cursor.position()).ok()?;
    std::str::from_utf8(&buffer[..len]).ok()
}

/// Outbound: connection headers, and what an upstream must not do to the API host's
/// origin or its callers: set cookies (trilo's own session cookie among them), open
/// credentialed CORS or answer CORS at all (the API host answers it), or redirect
/// anywhere but a path on the same origin (an absolute `Location` would send the app off
/// site or name the upstream's internal address). Every answer is `nosniff` with a
/// sandboxing CSP.
fn strip_response(headers: &mut HeaderMap) {
    let named = connection_named(headers);
    remove_where(headers, |name| {
        HOP_BY_HOP.contains(name)
            || named.contains(name)
            || name == header::SET_COOKIE
            || name.as_str().starts_with("access-control-")
    });
    let off_site = headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|location| !location.starts_with('/') || location.starts_with("//"));
    if off_site {
        headers.remove(header::LOCATION);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PROXIED_CSP),
    );
}

/// trilo's own headers for the call, in the order sent: `Forwarded` (when the peer is
/// known), then the identity and the assertion: who acts, for which app, with what, and
/// proof. A value that cannot be sent (it never should) fails the call with a 500.
fn trilo_headers<'a>(
    identity: &'a Admitted,
    forwarded: Option<&'a str>,
    blocked_containers: &'a str,
) -> Result<[Option<(&'static str, &'a str)>; 7], ApiError> {
    let forwarding = &identity.forwarding;
    let own = [
        forwarded.map(|value| ("forwarded", value)),
        Some(("x-trilo-account-id", forwarding.account_id.as_str())),
        forwarding
            .client_id
            .as_deref()
            .map(|value| ("x-trilo-client-id", value)),
        Some(("x-trilo-cloud-id", forwarding.cloud_id.as_str())),
        Some(("x-trilo-scopes", forwarding.scopes.as_str())),
        Some(("x-trilo-blocked-containers", blocked_containers)),
        Some(("x-trilo-assertion", forwarding.assertion.as_str())),
    ];
    if own.iter().flatten().all(|(_, value)| is_field_value(value)) {
        Ok(own)
    } else {
        Err(unsendable_identity())
    }
}

fn unsendable_identity() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "An identity value could not be sent to the product.",
    )
}

fn misconfigured() -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "The product's address on this site is misconfigured.",
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A header map from `(name, value)` pairs; names in any case.
    fn headers<const N: usize>(pairs: [(&str, &'static str); N]) -> HeaderMap {
        pairs
            .into_iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn inbound_strip_removes_connection_credentials_and_trilo_headers() {
        let mut h = headers([
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("authorization", "Bearer t"),
            ("cookie", "trilo_session=s"),
            ("x-trilo-account-id", "someone-else"),
            ("X-Trilo-Assertion", "forged"),
            ("accept", "application/json"),
            ("x-request-id", "r-1"),
        ]);
        strip(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, vec!["accept", "x-request-id"]);
    }

    #[test]
    fn outbound_strip_keeps_the_products_own_headers() {
        let mut h = headers([
            ("transfer-encoding", "chunked"),
            ("content-type", "application/json"),
            ("set-cookie", "trilo_session=evil"),
            ("access-control-allow-credentials", "true"),
            ("x-content-type-options", "sniff"),
            ("location", "https://evil.example/x"),
            ("x-product-header", "kept"),
        ]);
        strip_response(&mut h);
        assert!(h.get(header::TRANSFER_ENCODING).is_none());
        assert!(h.get(header::CONTENT_TYPE).is_some());
        assert!(h.get(header::SET_COOKIE).is_none());
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
        assert!(h.get(header::LOCATION).is_none());
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], PROXIED_CSP);
        assert_eq!(h["x-product-header"], "kept");
        // A redirect to a path on the same origin stays; protocol-relative ones do not.
        for (location, kept) in [
            ("/ex/jira/c/rest/api/3/x", true),
            ("//evil.example/x", false),
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::LOCATION, HeaderValue::from_str(location).unwrap());
            strip_response(&mut h);
            assert_eq!(h.get(header::LOCATION).is_some(), kept, "{location}");
        }
    }

    #[test]
    fn inbound_strip_removes_what_would_spoof_address_host_path_or_method() {
        let mut h = HeaderMap::new();
        for name in CALLER_ROUTING.iter().copied().chain([
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "X-Forwarded-Prefix",
        ]) {
            h.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("spoof"),
            );
        }
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        strip(&mut h);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, vec!["accept"]);
        let mut buffer = [0u8; FORWARDED_MAX];
        let v4 = forwarded_for(Some("203.0.113.7".parse().unwrap()), &mut buffer);
        assert_eq!(v4, Some("for=203.0.113.7"));
        let longest = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let v6 = forwarded_for(Some(longest.parse().unwrap()), &mut buffer);
        assert_eq!(v6, Some(format!("for=\"[{longest}]\"").as_str()));
        let v6 = forwarded_for(Some("2001:db8::1".parse().unwrap()), &mut buffer);
        assert_eq!(v6, Some("for=\"[2001:db8::1]\""));
        assert_eq!(forwarded_for(None, &mut buffer), None);
    }
}
