//! What the services need to know about the deployment: URLs and lifetimes.

use time::Duration;

#[derive(Clone, Debug)]
pub struct Settings {
    /// The issuer: the auth host's public base URL, exactly as in `iss`.
    pub auth_url: String,
    /// The API host's public base URL (accessible-resources, /me, the gateway).
    pub api_url: String,
    /// trilo's own API audience: what apps request, and the `aud` of access tokens.
    pub audience: String,
    /// Other `audience` values apps may request (the reference's `api.atlassian.com`, for
    /// clients that hard-code it); their tokens carry the one requested.
    pub audience_aliases: Vec<String>,
    /// Hosts whose app avatars users are shown (consent page, connected apps); any other
    /// avatar is replaced by the app's initial, so a developer cannot make users' browsers
    /// fetch from a host of their choosing.
    pub avatar_hosts: Vec<String>,
    /// The emails of the accounts that run this trilo: they get the operator console
    /// (every site, new sites, products on sites) and review other developers' apps.
    pub operators: Vec<String>,
    pub access_token_ttl: Duration,
    /// At most 10 minutes (security checklist C4).
    pub code_ttl: Duration,
    pub session_ttl: Duration,
    /// Clock skew tolerated when checking access tokens (≤ 60 s, H-J6).
    pub jwt_leeway: Duration,
    pub refresh_inactivity: Duration,
    pub refresh_absolute: Duration,
    pub refresh_reuse_leeway: Duration,
    /// How long the gateway reuses a checked standing (at most 1 s: DESIGN §3's bound on
    /// revocation at every instance).
    pub gateway_cache_ttl: Duration,
    pub webhooks: WebhookSettings,
    pub keys: KeySettings,
    pub janitor: JanitorSettings,
}

impl Settings {
    /// The app avatar users may be shown: only an https URL on an allowed host.
    pub fn shown_avatar(&self, avatar_url: Option<&str>) -> Option<String> {
        let url = avatar_url?;
        let parsed = url::Url::parse(url).ok()?;
        let allowed = parsed.scheme() == "https"
            && parsed.host_str().is_some_and(|host| {
                self.avatar_hosts
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(host))
            });
        allowed.then(|| url.to_owned())
    }

    /// Every audience apps may request: trilo's own first, then the aliases.
    pub fn audiences(&self) -> Vec<String> {
        std::iter::once(self.audience.clone())
            .chain(self.audience_aliases.iter().cloned())
            .collect()
    }

    /// Defaults for a deployment at the given URLs (the reference's lifetimes).
    pub fn new(
        auth_url: impl Into<String>,
        api_url: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            auth_url: auth_url.into(),
            api_url: api_url.into(),
            audience: audience.into(),
            audience_aliases: Vec::new(),
            avatar_hosts: Vec::new(),
            operators: Vec::new(),
            access_token_ttl: Duration::hours(1),
            code_ttl: Duration::minutes(10),
            session_ttl: Duration::hours(12),
            jwt_leeway: Duration::seconds(60),
            refresh_inactivity: Duration::days(90),
            refresh_absolute: Duration::days(365),
            refresh_reuse_leeway: Duration::minutes(10),
            gateway_cache_ttl: Duration::milliseconds(500),
            webhooks: WebhookSettings::default(),
            keys: KeySettings::default(),
            janitor: JanitorSettings::default(),
        }
    }
}

/// How webhooks are accepted and delivered (DESIGN §3 "Webhooks").
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Accept `http://` receivers on loopback addresses (development and tests only).
    pub allow_http_loopback: bool,
    /// Backoff and the number of attempts before a delivery is dead.
    pub retry: trilo_protocol::webhooks::RetryPolicy,
    /// How long a claimed delivery is left to its sender before another may claim it: longer
    /// than a send may take (`send_timeout`), so a live sender is never doubled.
    pub lease: Duration,
    /// A receiver that has not answered by then has failed the attempt.
    pub send_timeout: Duration,
    /// The most objects one data security policy event lists.
    pub max_policy_objects: usize,
    /// The largest event body a product may post.
    pub max_event_bytes: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_http_loopback: false,
            retry: trilo_protocol::webhooks::RetryPolicy::default(),
            lease: Duration::seconds(60),
            send_timeout: Duration::seconds(10),
            max_policy_objects: trilo_protocol::webhooks::DEFAULT_POLICY_EVENT_MAX_OBJECTS,
            max_event_bytes: 1024 * 1024,
        }
    }
}

/// Signing-key rotation (DESIGN §4 "Signing key"): a `next` key is published before it
/// signs, so relying parties and other instances know it when it becomes `current`.
#[derive(Clone, Debug)]
pub struct KeySettings {
    /// How long a key stays `current` before the schedule rotates it (None: only
    /// `trilo admin keys rotate` does).
    pub rotate_every: Option<Duration>,
    /// How long a retired key stays published and accepted: at least the lifetime of the
    /// longest token it signed plus the clock leeway.
    pub retired_kept: Duration,
    /// How often an instance re-reads the keys, and so how soon it follows a rotation made
    /// elsewhere.
    pub reload_every: Duration,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            rotate_every: Some(Duration::days(90)),
            retired_kept: Duration::days(1),
            reload_every: Duration::milliseconds(500),
        }
    }
}

/// What the janitor removes, and how gently (see `services::janitor`).
#[derive(Clone, Debug)]
pub struct JanitorSettings {
    /// Off in tests that count rows.
    pub enabled: bool,
    /// Pause between sweeps.
    pub every: Duration,
    /// Rows removed per statement: each batch is one short transaction.
    pub batch: u32,
    /// Pause between batches, so the hot paths get the store between them.
    pub pause: Duration,
    /// How long a revoked or expired token family is kept (for the audit trail and for
    /// telling a replayed token apart from an unknown one).
    pub family_retention: Duration,
}

impl Default for JanitorSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            every: Duration::minutes(5),
            batch: 250,
            pause: Duration::milliseconds(20),
            family_retention: Duration::days(30),
        }
    }
}
