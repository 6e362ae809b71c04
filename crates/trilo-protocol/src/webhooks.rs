//! Webhooks (DESIGN §3 "Webhooks", "Admin controls"): the events apps may subscribe to,
//! which URLs may receive them, who gets an event, the `triggeredByUser` rule, the retry
//! schedule and the signature's base string. Pure: the caller supplies the facts, the
//! clock reading and the randomness.

use std::borrow::Cow;
use std::net::IpAddr;

use url::Url;

use crate::ScopeSet;

/// The data security policy events (reference changelog, 5 March and 19 July 2024): sent
/// to every installed app subscribed to them when a policy with the app access rule is
/// activated, changed or deactivated.
pub const POLICY_ACTIVATED: &str = "avi:ecosystem.data-security-policy:activated";
pub const POLICY_UPDATED: &str = "avi:ecosystem.data-security-policy:updated";
pub const POLICY_DEACTIVATED: &str = "avi:ecosystem.data-security-policy:deactivated";

/// The default cap on the objects one policy event lists (reference, 19 July 2024).
pub const DEFAULT_POLICY_EVENT_MAX_OBJECTS: usize = 200_000;

/// One event an app can subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventType {
    pub name: &'static str,
    /// The product whose data it carries; `None` for the platform's policy events.
    pub product: Option<&'static str>,
    /// Scope alternatives that read the event's data: a grant covers the event when it
    /// holds every scope of one alternative (classic or granular, as for operations).
    pub read_scopes: &'static [&'static [&'static str]],
    /// An event about a user carries no `triggeredByUser` (reference, 27 Feb 2023).
    pub about_user: bool,
}

const JIRA_WORK: &[&[&str]] = &[&["read:jira-work"], &["read:issue:jira"]];
const JIRA_USER: &[&[&str]] = &[&["read:jira-user"], &["read:user:jira"]];
const CONFLUENCE_CONTENT: &[&[&str]] = &[
    &["read:confluence-content.summary"],
    &["read:confluence-content.all"],
    &["read:page:confluence"],
];

const fn product_event(
    name: &'static str,
    product: &'static str,
    read_scopes: &'static [&'static [&'static str]],
    about_user: bool,
) -> EventType {
    EventType {
        name,
        product: Some(product),
        read_scopes,
        about_user,
    }
}

const fn policy_event(name: &'static str) -> EventType {
    EventType {
        name,
        product: None,
        read_scopes: &[],
        about_user: false,
    }
}

/// Every event trilo knows, named as the reference's products name their webhooks.
pub const EVENT_TYPES: &[EventType] = &[
    product_event("jira:issue_created", "jira", JIRA_WORK, false),
    product_event("jira:issue_updated", "jira", JIRA_WORK, false),
    product_event("jira:issue_deleted", "jira", JIRA_WORK, false),
    product_event("comment_created", "jira", JIRA_WORK, false),
    product_event("comment_updated", "jira", JIRA_WORK, false),
    product_event("comment_deleted", "jira", JIRA_WORK, false),
    product_event("user_created", "jira", JIRA_USER, true),
    product_event("user_updated", "jira", JIRA_USER, true),
    product_event("user_deleted", "jira", JIRA_USER, true),
    product_event("page_created", "confluence", CONFLUENCE_CONTENT, false),
    product_event("page_updated", "confluence", CONFLUENCE_CONTENT, false),
    product_event("page_removed", "confluence", CONFLUENCE_CONTENT, false),
    policy_event(POLICY_ACTIVATED),
    policy_event(POLICY_UPDATED),
    policy_event(POLICY_DEACTIVATED),
];

/// The event of this name, if trilo knows it.
pub fn event_type(name: &str) -> Option<&'static EventType> {
    EVENT_TYPES.iter().find(|e| e.name == name)
}

/// Why a subscription was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("the webhook URL is not a valid absolute URL")]
    BadUrl,
    #[error(
        "the webhook URL must use https (http is accepted only for 127.0.0.1, ::1 or localhost \
         when the server allows it for development)"
    )]
    NotHttps,
    #[error("the webhook URL must not carry a user name, password or fragment")]
    Credentials,
    #[error("the webhook URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("the webhook URL must not address a private, loopback or link-local network")]
    PrivateAddress,
    #[error("unknown event {0:?}")]
    UnknownEvent(String),
    #[error("a webhook needs at least one event and at most {} events", EVENT_TYPES.len())]
    EventCount,
}

const MAX_URL_LEN: usize = 2_000;

/// Checks a receiver URL: https, or http to a loopback host when `allow_http_loopback`
/// (development). Credentials and fragments are refused: they would be sent nowhere or
/// leak into logs.
pub fn validate_url(raw: &str, allow_http_loopback: bool) -> Result<Url, SubscriptionError> {
    if raw.len() > MAX_URL_LEN {
        return Err(SubscriptionError::TooLong);
    }
    let url = Url::parse(raw.trim()).map_err(|_| SubscriptionError::BadUrl)?;
    if url.host().is_none() {
        return Err(SubscriptionError::BadUrl);
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(SubscriptionError::Credentials);
    }
    match url.scheme() {
        "https" => match refused_literal(&url, allow_http_loopback) {
            Some(refused) => Err(refused),
            None => Ok(url),
        },
        "http" if allow_http_loopback && is_loopback(&url) => Ok(url),
        _ => Err(SubscriptionError::NotHttps),
    }
}

/// Whether an address is on the public internet. Webhooks are sent only there unless the
/// server allows loopback receivers (development): a subscription must not reach the
/// operator's own network, cloud metadata services or the host itself (server-side
/// request forgery).
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                // Shared address space (RFC 6598) and benchmarking (RFC 2544).
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local (fc00::/7) and link-local (fe80::/10).
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                // Documentation (2001:db8::/32).
                || (first == 0x2001 && v6.segments()[1] == 0x0db8))
        }
    }
}

/// Why a receiver's address is refused, if it is: an IP literal that is not public when
/// only public receivers are allowed.
pub fn refused_literal(url: &Url, allow_private: bool) -> Option<SubscriptionError> {
    let ip = match url.host()? {
        url::Host::Ipv4(ip) => IpAddr::V4(ip),
        url::Host::Ipv6(ip) => IpAddr::V6(ip),
        url::Host::Domain(_) => return None,
    };
    (!allow_private && !is_public_address(ip)).then_some(SubscriptionError::PrivateAddress)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Parses the event names of a subscription: each known, none twice, at least one.
pub fn validate_events<S: AsRef<str>>(names: &[S]) -> Result<Vec<String>, SubscriptionError> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let name = name.as_ref().trim();
        if name.is_empty() {
            continue;
        }
        let known = event_type(name).ok_or_else(|| SubscriptionError::UnknownEvent(name.into()))?;
        if !out.iter().any(|n| n == known.name) {
            out.push(known.name.to_owned());
        }
    }
    if out.is_empty() || out.len() > EVENT_TYPES.len() {
        return Err(SubscriptionError::EventCount);
    }
    Ok(out)
}

/// What decides whether one subscribed app receives one product event.
#[derive(Clone, Debug)]
pub struct Recipient<'a> {
    /// The app is installed on the event's site.
    pub installed: bool,
    /// The scopes of each live grant of the app whose account is a member of the event's
    /// product on the site.
    pub grants: &'a [ScopeSet],
    /// Whether an active data security policy with the app access rule covers the event's
    /// container.
    pub container_blocked: bool,
}

/// Why an app does not receive an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotDelivered {
    NotInstalled,
    NoCoveringGrant,
    BlockedByPolicy,
}

/// The delivery rule (issue 13, DESIGN §3 "Webhooks"): installed on the site, a live grant
/// of some member covers a scope that reads the event's data, and no active policy blocks
/// apps from the event's container.
pub fn deliver_to(event: &EventType, to: &Recipient<'_>) -> Result<(), NotDelivered> {
    if !to.installed {
        return Err(NotDelivered::NotInstalled);
    }
    if event.product.is_some() && !to.grants.iter().any(|g| covers(event, g)) {
        return Err(NotDelivered::NoCoveringGrant);
    }
    if to.container_blocked {
        return Err(NotDelivered::BlockedByPolicy);
    }
    Ok(())
}

/// Whether `scopes` hold every scope of one of the event's read alternatives.
pub fn covers(event: &EventType, scopes: &ScopeSet) -> bool {
    event
        .read_scopes
        .iter()
        .any(|alternative| alternative.iter().all(|s| scopes.contains(s)))
}

/// The URL a delivery goes to: the subscription's, plus `triggeredByUser={account_id}`
/// unless the account is unknown or the event is about a user (reference, 27 Feb 2023).
pub fn delivery_url(subscription_url: &Url, event: &EventType, account_id: Option<&str>) -> String {
    match account_id.filter(|a| !a.is_empty() && !event.about_user) {
        Some(account_id) => {
            let mut url = subscription_url.clone();
            url.query_pairs_mut()
                .append_pair("triggeredByUser", account_id);
            url.into()
        }
        None => subscription_url.as_str().to_owned(),
    }
}

/// The header carrying the signature, and its form: `t={unix seconds},v1={hex}` where the
/// hex is HMAC-SHA256, keyed with the subscription's secret, over [`signature_base`].
pub const SIGNATURE_HEADER: &str = "x-trilo-signature";
pub const EVENT_ID_HEADER: &str = "x-trilo-event-id";
pub const EVENT_NAME_HEADER: &str = "x-trilo-event";
pub const DELIVERY_ID_HEADER: &str = "x-trilo-delivery-id";
pub const ATTEMPT_HEADER: &str = "x-trilo-delivery-attempt";

/// What is signed: the timestamp, a dot, then the body as sent. The timestamp lets the
/// receiver refuse a replayed request.
pub fn signature_base(unix_seconds: i64, body: &[u8]) -> Vec<u8> {
    let mut base = format!("{unix_seconds}.").into_bytes();
    base.extend_from_slice(body);
    base
}

/// The header value for a signature computed over [`signature_base`].
pub fn signature_header(unix_seconds: i64, mac: &[u8]) -> String {
    let mut hex = String::with_capacity(mac.len() * 2);
    for b in mac {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("t={unix_seconds},v1={hex}")
}

/// When and how often a failed delivery is tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure, doubled after each further one.
    pub base_ms: i64,
    /// The longest wait between two attempts.
    pub cap_ms: i64,
    /// Attempts in all, the first included; after the last failure the delivery is dead.
    pub max_attempts: i64,
}

impl Default for RetryPolicy {
    /// 10 s doubling up to 30 min, 24 attempts: about 8.5 hours of trying, so a receiver
    /// that is down for an hour loses nothing.
    fn default() -> Self {
        Self {
            base_ms: 10_000,
            cap_ms: 30 * 60_000,
            max_attempts: 24,
        }
    }
}

/// What to do after attempt number `attempt` (1-based) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    RetryInMs(i64),
    Dead,
}

impl RetryPolicy {
    /// Exponential backoff with jitter: the wait is between half and all of
    /// `min(cap, base·2^(attempt-1))`, placed by `jitter` in `[0, 1)`, so receivers that
    /// come back are not hit by every sender at once.
    pub fn after_failure(&self, attempt: i64, jitter: f64) -> AfterFailure {
        if attempt >= self.max_attempts {
            return AfterFailure::Dead;
        }
        let doublings = u32::try_from((attempt - 1).clamp(0, 40)).unwrap_or(40);
        let full = self
            .base_ms
            .saturating_mul(1_i64 << doublings.min(40))
            .min(self.cap_ms)
            .max(1);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let half = full / 2;
        // The product is at most `half`, which fits an i64.
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let spread = (half as f64 * jitter) as i64;
        AfterFailure::RetryInMs(full - half + spread)
    }
}

/// One object a data security policy event lists: a container (space, project) or an
/// object inside one (page, issue).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AffectedObject<'a> {
    pub product: Cow<'a, str>,
    #[serde(rename = "type")]
    pub kind: Cow<'a, str>,
    pub id: Cow<'a, str>,
    /// The container's key (for a container, its own).
    pub container: Cow<'a, str>,
}

/// The `affected` part of a policy event: at most `max` objects, the total and whether
/// some were left out (reference, 19 July 2024).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Affected<'a> {
    pub objects: Vec<AffectedObject<'a>>,
    pub total: u64,
    pub truncated: bool,
}

impl<'a> Affected<'a> {
    /// `objects` are the first objects in order (the caller reads at most `max`); `total`
    /// counts them all.
    pub fn new(mut objects: Vec<AffectedObject<'a>>, total: u64, max: usize) -> Self {
        objects.truncate(max);
        let listed = u64::try_from(objects.len()).unwrap_or(u64::MAX);
        Affected {
            truncated: total > listed,
            total: total.max(listed),
            objects,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn scopes(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    #[test]
    fn urls_must_be_https_unless_loopback_http_is_allowed() {
        let cases = [
            ("https://example.com/hook", false, true),
            ("http://example.com/hook", false, false),
            ("http://example.com/hook", true, false),
            ("http://127.0.0.1:9000/hook", false, false),
            ("http://127.0.0.1:9000/hook", true, true),
            ("http://[::1]:9000/hook", true, true),
            ("http://localhost:9000/hook", true, true),
            ("http://10.0.0.1/hook", true, false),
            ("ftp://example.com/hook", true, false),
            ("https://user:pw@example.com/hook", false, false),
            ("https://example.com/hook#frag", false, false),
            ("not a url", true, false),
            ("/relative", true, false),
        ];
        for (url, allow, ok) in cases {
            assert_eq!(validate_url(url, allow).is_ok(), ok, "{url} allow={allow}");
        }
        assert_eq!(
            validate_url("http://example.com/", false),
            Err(SubscriptionError::NotHttps)
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(validate_url(&long, false), Err(SubscriptionError::TooLong));
    }

    #[test]
    fn only_public_addresses_are_receivers_unless_private_ones_are_allowed() {
        let cases = [
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("2606:4700::1111", true),
            ("10.1.2.3", false),
            ("172.16.0.1", false),
            ("192.168.1.1", false),
            ("127.0.0.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("0.0.0.0", false),
            ("255.255.255.255", false),
            ("224.0.0.1", false),
            ("::1", false),
            ("::", false),
            ("fd00::1", false),
            ("fe80::1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:8.8.8.8", true),
            ("2001:db8::1", false),
        ];
        for (ip, public) in cases {
            assert_eq!(is_public_address(ip.parse().unwrap()), public, "{ip}");
        }
        assert_eq!(
            validate_url("https://169.254.169.254/latest", false),
            Err(SubscriptionError::PrivateAddress)
        );
        assert_eq!(
            validate_url("https://[fd00::1]/hook", false),
            Err(SubscriptionError::PrivateAddress)
        );
        assert!(validate_url("https://10.0.0.1/hook", true).is_ok());
        assert!(validate_url("https://8.8.8.8/hook", false).is_ok());
        // Names are checked when they are resolved, at sending.
        assert!(validate_url("https://localhost/hook", false).is_ok());
    }

    #[test]
    fn events_must_be_known_and_are_deduplicated() {
        assert_eq!(
            validate_events(&["jira:issue_created", "jira:issue_created", POLICY_ACTIVATED])
                .unwrap(),
            vec!["jira:issue_created", POLICY_ACTIVATED]
        );
        assert_eq!(
            validate_events(&["jira:issue_exploded"]),
            Err(SubscriptionError::UnknownEvent(
                "jira:issue_exploded".into()
            ))
        );
        assert_eq!(
            validate_events::<&str>(&[]),
            Err(SubscriptionError::EventCount)
        );
        assert_eq!(validate_events(&[" "]), Err(SubscriptionError::EventCount));
    }

    #[test]
    fn delivery_needs_installation_covering_grant_and_no_blocking_policy() {
        let issue = event_type("jira:issue_created").unwrap();
        let classic = [scopes("read:jira-work")];
        let granular = [scopes("read:issue:jira write:issue:jira")];
        let unrelated = [scopes("read:jira-user"), scopes("write:jira-work")];
        let r = |installed, grants, container_blocked| Recipient {
            installed,
            grants,
            container_blocked,
        };
        assert_eq!(deliver_to(issue, &r(true, &classic, false)), Ok(()));
        assert_eq!(deliver_to(issue, &r(true, &granular, false)), Ok(()));
        assert_eq!(
            deliver_to(issue, &r(false, &classic, false)),
            Err(NotDelivered::NotInstalled)
        );
        assert_eq!(
            deliver_to(issue, &r(true, &unrelated, false)),
            Err(NotDelivered::NoCoveringGrant)
        );
        assert_eq!(
            deliver_to(issue, &r(true, &[], false)),
            Err(NotDelivered::NoCoveringGrant)
        );
        assert_eq!(
            deliver_to(issue, &r(true, &classic, true)),
            Err(NotDelivered::BlockedByPolicy)
        );
        // Policy events need only the installation.
        let policy = event_type(POLICY_ACTIVATED).unwrap();
        assert_eq!(deliver_to(policy, &r(true, &[], false)), Ok(()));
        assert_eq!(
            deliver_to(policy, &r(false, &[], false)),
            Err(NotDelivered::NotInstalled)
        );
    }

    #[test]
    fn triggered_by_user_is_added_except_for_unknown_accounts_and_user_events() {
        let base = Url::parse("https://example.com/hook?app=1").unwrap();
        let issue = event_type("jira:issue_created").unwrap();
        let user = event_type("user_created").unwrap();
        assert_eq!(
            delivery_url(&base, issue, Some("acc 1")),
            "https://example.com/hook?app=1&triggeredByUser=acc+1"
        );
        assert_eq!(
            delivery_url(&base, issue, None),
            "https://example.com/hook?app=1"
        );
        assert_eq!(
            delivery_url(&base, issue, Some("")),
            "https://example.com/hook?app=1"
        );
        assert_eq!(
            delivery_url(&base, user, Some("acc1")),
            "https://example.com/hook?app=1"
        );
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_up_to_the_cap_then_die() {
        let p = RetryPolicy {
            base_ms: 1_000,
            cap_ms: 8_000,
            max_attempts: 6,
        };
        assert_eq!(p.after_failure(1, 0.0), AfterFailure::RetryInMs(500));
        assert_eq!(p.after_failure(1, 1.0), AfterFailure::RetryInMs(1_000));
        assert_eq!(p.after_failure(2, 0.0), AfterFailure::RetryInMs(1_000));
        assert_eq!(p.after_failure(3, 0.5), AfterFailure::RetryInMs(3_000));
        assert_eq!(p.after_failure(5, 1.0), AfterFailure::RetryInMs(8_000));
        assert_eq!(p.after_failure(5, f64::NAN), AfterFailure::RetryInMs(4_000));
        assert_eq!(p.after_failure(6, 0.3), AfterFailure::Dead);
        assert_eq!(p.after_failure(60, 0.3), AfterFailure::Dead);
    }

    #[test]
    fn the_default_retry_schedule_outlasts_an_hour_long_outage() {
        let p = RetryPolicy::default();
        let mut waited = 0;
        for attempt in 1..p.max_attempts {
            match p.after_failure(attempt, 0.0) {
                AfterFailure::RetryInMs(ms) => waited += ms,
                AfterFailure::Dead => break,
            }
        }
        assert!(waited > 2 * 3_600_000, "only {waited} ms of retries");
    }

    #[test]
    fn signature_header_is_timestamp_and_hex() {
        assert_eq!(signature_base(17, b"{}"), b"17.{}".to_vec());
        assert_eq!(signature_header(17, &[0, 255, 16]), "t=17,v1=00ff10");
    }

    #[test]
    fn affected_objects_are_capped_with_total_and_flag() {
        let obj = |i: usize| AffectedObject {
            product: "jira".into(),
            kind: "issue".into(),
            id: i.to_string().into(),
            container: "P".into(),
        };
        let a = Affected::new((0..5).map(obj).collect(), 8, 3);
        assert_eq!((a.objects.len(), a.total, a.truncated), (3, 8, true));
        let b = Affected::new((0..3).map(obj).collect(), 3, 3);
        assert_eq!((b.objects.len(), b.total, b.truncated), (3, 3, false));
    }
}
