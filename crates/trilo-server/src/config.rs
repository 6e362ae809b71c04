//! Configuration: defaults, then a TOML file, then `TRILO__SECTION__KEY` environment
//! variables, parsed into typed values at start with errors that say which key is wrong.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use trilo_core::Settings;

use crate::http::gateway::forward::UpstreamSettings;

/// The whole configuration, as written in `trilo.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Public base URL of the auth host; also the issuer (`iss`).
    pub auth_url: String,
    /// Public base URL of the API host (accessible-resources, /me, /ex/…).
    pub api_url: String,
    /// The audience apps request and access tokens carry.
    pub audience: String,
    /// Other audiences apps may request, e.g. the reference's `api.atlassian.com` for
    /// clients that hard-code it; tokens carry the audience that was asked for.
    pub audience_aliases: Vec<String>,
    /// Hosts whose app avatars users are shown (https only); other avatars show the app's
    /// initial instead.
    pub avatar_hosts: Vec<String>,
    /// Emails of the accounts that run this trilo: the operator console (every site, new
    /// sites, products on sites) and app review are theirs. None by default.
    pub operators: Vec<String>,
    /// Address to listen on.
    pub listen: String,
    /// `sqlite://PATH` or `postgres://…`; default: `trilo.db` inside `data_dir`.
    pub database_url: Option<String>,
    /// Where the SQLite database and the generated key-encryption key live.
    pub data_dir: PathBuf,
    /// Run migrations when the server starts.
    pub migrate_on_start: bool,
    /// 32 bytes, base64: encrypts signing keys at rest. Default: `data_dir/master.key`,
    /// created on first start. Set it for PostgreSQL deployments with several instances.
    #[serde(serialize_with = "serialize_secret_opt")]
    pub key_encryption_key: Option<SecretString>,
    pub tokens: TokensConfig,
    pub sessions: SessionsConfig,
    pub gateway: GatewayConfig,
    pub webhooks: WebhooksConfig,
    pub http: HttpConfig,
    pub limits: LimitsConfig,
    pub keys: KeysConfig,
    pub janitor: JanitorConfig,
    pub mail: MailConfig,
}

/// Where trilo's mail (password reset links) goes: at most one of `smtp_relay` and
/// `file`; neither turns reset by mail off.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// The sender address.
    pub from: String,
    /// `host:port` of an SMTP relay (plain SMTP, e.g. a local MTA that does TLS onward).
    pub smtp_relay: String,
    /// A file every message is appended to (the demo's `mail.log`).
    pub file: Option<PathBuf>,
}

/// Signing-key rotation.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// How long a key signs before the schedule rotates it; `"off"`: only
    /// `trilo admin keys rotate` rotates.
    pub rotate_every: String,
    /// How long a retired key stays published and accepted: at least the access-token
    /// lifetime plus the JWT leeway.
    pub retired_kept: String,
    /// How often each instance re-reads the keys (how soon it follows a rotation made
    /// elsewhere).
    pub reload_every: String,
}

/// The janitor, which removes expired and dead rows in small batches.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JanitorConfig {
    pub enabled: bool,
    /// Pause between sweeps.
    pub every: String,
    /// Rows per delete statement.
    pub batch: u32,
    /// Pause between two batches.
    pub pause: String,
    /// How long revoked and expired token families are kept.
    pub family_retention: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensConfig {
    pub access_token_lifetime: String,
    pub code_lifetime: String,
    pub jwt_leeway: String,
    pub refresh_inactivity: String,
    pub refresh_absolute: String,
    pub refresh_reuse_leeway: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    pub lifetime: String,
}

/// How the gateway talks to upstreams.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Giving up on connecting to an upstream: 502.
    pub connect_timeout: String,
    /// Waiting for an upstream's response head: 504.
    pub upstream_timeout: String,
    /// The largest request body the gateway forwards, in MiB: 413 beyond it.
    pub max_request_body_mib: u64,
    /// How long a checked token's standing is reused (at most 1s: the bound on how late a
    /// revocation on another instance takes effect).
    pub cache_ttl: String,
    /// How a call whose token lacks the operation's scopes is answered: `"403"` (403 naming
    /// the scopes, with RFC 6750's `insufficient_scope`) or `"reference"` (the reference
    /// platform's `401 {"code":401,"message":"Unauthorized; scope does not match"}`).
    pub scope_mismatch: String,
}

/// Failure limits per instance (security checklist H-T2, H-T3): after this many failures
/// in the window, 429 with `Retry-After`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Wrong passwords per (email, address).
    pub login_failures_per_account: u32,
    /// Wrong passwords per address, whatever the email (one address spraying accounts).
    pub login_failures_per_address: u32,
    pub login_window: String,
    /// Failed client authentications per (client id, address) at the token, revocation
    /// and introspection endpoints.
    pub client_auth_failures: u32,
    pub client_auth_window: String,
}

/// How the listener treats slow, idle and greedy clients.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Time a client has to send a request's headers; it also bounds how long a
    /// keep-alive connection may sit idle between requests.
    pub header_read_timeout: String,
    /// Longest wait for the next part of a request body.
    pub body_read_timeout: String,
    /// Connections one address may hold open at once; more are closed when accepted.
    pub max_connections_per_peer: usize,
    /// Addresses of reverse proxies in front of trilo: their `X-Forwarded-For` names the
    /// client (rate limits, the gateway's `Forwarded`).
    pub trusted_proxies: Vec<String>,
    /// Addresses that may read `/metrics` (others get 404).
    pub metrics_allow: Vec<String>,
}

/// How webhooks are accepted and delivered.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Accept `http://` receivers on 127.0.0.1, ::1 or localhost, and send to loopback and
    /// private addresses (development only; otherwise receivers must be public).
    pub allow_http_loopback: bool,
    /// The wait after a first failed attempt; doubled after each further one.
    pub retry_base: String,
    /// The longest wait between two attempts.
    pub retry_cap: String,
    /// Attempts before a delivery is dead (the developer can redeliver it).
    pub max_attempts: i64,
    /// How long a claimed delivery is left to its sender before another may claim it.
    pub lease: String,
    /// A receiver that has not answered by then has failed the attempt.
    pub send_timeout: String,
    /// The most objects one data security policy event lists.
    pub max_policy_objects: usize,
    /// Deliveries sent at once by this instance.
    pub concurrency: usize,
    /// How often this instance looks for due deliveries when nothing woke it.
    pub poll_interval: String,
    /// Send deliveries from this instance (off for an instance that only serves requests).
    pub deliver: bool,
}

fn serialize_secret_opt<S: serde::Serializer>(
    v: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_some("[redacted]"),
        None => s.serialize_none(),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            auth_url: "http://127.0.0.1:8080".into(),
            api_url: "http://127.0.0.1:8080".into(),
            audience: "api.trilo.local".into(),
            audience_aliases: Vec::new(),
            avatar_hosts: Vec::new(),
            operators: Vec::new(),
            listen: "127.0.0.1:8080".into(),
            database_url: None,
            data_dir: PathBuf::from("trilo-data"),
            migrate_on_start: true,
            key_encryption_key: None,
            tokens: TokensConfig {
                access_token_lifetime: "1h".into(),
                code_lifetime: "10m".into(),
                jwt_leeway: "60s".into(),
                refresh_inactivity: "90d".into(),
                refresh_absolute: "365d".into(),
                refresh_reuse_leeway: "10m".into(),
            },
            keys: KeysConfig {
                rotate_every: "90d".into(),
                retired_kept: "1d".into(),
                reload_every: "500ms".into(),
            },
            mail: MailConfig {
                from: "trilo@localhost".into(),
                smtp_relay: String::new(),
                file: None,
            },
            janitor: JanitorConfig {
                enabled: true,
                every: "5m".into(),
                batch: 250,
                pause: "20ms".into(),
                family_retention: "30d".into(),
            },
            limits: LimitsConfig {
                login_failures_per_account: 5,
                login_failures_per_address: 50,
                login_window: "15m".into(),
                client_auth_failures: 20,
                client_auth_window: "1m".into(),
            },
            http: HttpConfig {
                header_read_timeout: "10s".into(),
                body_read_timeout: "60s".into(),
                max_connections_per_peer: 512,
                trusted_proxies: Vec::new(),
                metrics_allow: vec!["127.0.0.1".into(), "::1".into()],
            },
            gateway: GatewayConfig {
                connect_timeout: "5s".into(),
                upstream_timeout: "30s".into(),
                max_request_body_mib: 1024,
                cache_ttl: "500ms".into(),
                scope_mismatch: "403".into(),
            },
            sessions: SessionsConfig {
                lifetime: "12h".into(),
            },
            webhooks: WebhooksConfig {
                allow_http_loopback: false,
                retry_base: "10s".into(),
                retry_cap: "30m".into(),
                max_attempts: 24,
                lease: "60s".into(),
                send_timeout: "10s".into(),
                max_policy_objects: 200_000,
                concurrency: 256,
                poll_interval: "500ms".into(),
                deliver: true,
            },
        }
    }
}

/// Which store the database URL selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

/// Values checked and converted once at start.
#[derive(Clone, Debug)]
pub struct Validated {
    pub config: Config,
    pub listen: SocketAddr,
    pub database: DatabaseUrl,
    pub settings: Settings,
    pub upstreams: UpstreamSettings,
    /// How the listener treats slow, idle and greedy clients.
    pub listener: crate::app::ListenerSettings,
    /// The failure limits' numbers.
    pub limits: crate::state::LimitSettings,
    /// Who may read `/metrics`.
    pub metrics_allow: Vec<std::net::IpAddr>,
    /// How this instance sends webhooks; `None` when `webhooks.deliver` is off.
    pub sender: Option<crate::webhooks::SenderSettings>,
    /// Run the key follower and the janitor (off for CLI commands).
    pub housekeeping: bool,
    /// Where mail goes.
    pub mailer: crate::mail::Mailer,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

impl Config {
    /// Defaults ← `file` (if given; it must exist) ← `TRILO__…` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(invalid(
                    "--config",
                    format!("file {} does not exist", path.display()),
                ));
            }
            fig = fig.merge(Toml::file(path));
        }
        fig = fig.merge(
            Env::prefixed("TRILO__")
                .split("__")
                .map(|k| k.as_str().to_lowercase().into()),
        );
        fig.extract().map_err(|e| ConfigError::Load(Box::new(e)))
    }

    /// Checks every value and converts it to its typed form.
    pub fn validate(self) -> Result<Validated, ConfigError> {
        for (key, value) in [("auth_url", &self.auth_url), ("api_url", &self.api_url)] {
            let url =
                url::Url::parse(value).map_err(|e| invalid(key, format!("not a URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(invalid(key, "must be an absolute http(s) URL"));
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(invalid(key, "must not have a query or fragment"));
            }
        }
        if self.audience.trim().is_empty() {
            return Err(invalid("audience", "must not be empty"));
        }
        if self
            .audience_aliases
            .iter()
            .any(|a| a.trim().is_empty() || a.chars().any(char::is_whitespace))
        {
            return Err(invalid(
                "audience_aliases",
                "each must be a non-empty value without spaces",
            ));
        }
        let listen: SocketAddr = self
            .listen
            .parse()
            .map_err(|_| invalid("listen", "must be an address like 127.0.0.1:8080"))?;
        let database = match &self.database_url {
            None => DatabaseUrl::Sqlite(self.data_dir.join("trilo.db")),
            Some(url) => parse_database_url(url)?,
        };
        let t = &self.tokens;
        let code_ttl = parse_duration("tokens.code_lifetime", &t.code_lifetime)?;
        if code_ttl > time::Duration::minutes(10) {
            return Err(invalid("tokens.code_lifetime", "must be at most 10m"));
        }
        let jwt_leeway = parse_duration("tokens.jwt_leeway", &t.jwt_leeway)?;
        if jwt_leeway > time::Duration::seconds(60) {
            return Err(invalid("tokens.jwt_leeway", "must be at most 60s"));
        }
        let gateway_cache_ttl = parse_duration("gateway.cache_ttl", &self.gateway.cache_ttl)?;
        if gateway_cache_ttl > time::Duration::seconds(1) {
            return Err(invalid("gateway.cache_ttl", "must be at most 1s"));
        }
        if let Some(kek) = &self.key_encryption_key {
            decode_key(kek)?;
        }
        let settings = Settings {
            auth_url: self.auth_url.clone(),
            api_url: self.api_url.clone(),
            audience: self.audience.clone(),
            audience_aliases: self.audience_aliases.clone(),
            avatar_hosts: self.avatar_hosts.clone(),
            operators: self.operators()?,
            access_token_ttl: parse_duration(
                "tokens.access_token_lifetime",
                &t.access_token_lifetime,
            )?,
            code_ttl,
            session_ttl: parse_duration("sessions.lifetime", &self.sessions.lifetime)?,
            jwt_leeway,
            refresh_inactivity: parse_duration("tokens.refresh_inactivity", &t.refresh_inactivity)?,
            refresh_absolute: parse_duration("tokens.refresh_absolute", &t.refresh_absolute)?,
            refresh_reuse_leeway: parse_duration(
                "tokens.refresh_reuse_leeway",
                &t.refresh_reuse_leeway,
            )?,
            gateway_cache_ttl,
            webhooks: self.webhooks.settings()?,
            keys: trilo_core::settings::KeySettings::default(),
            janitor: self.janitor.settings()?,
        };
        let settings = Settings {
            keys: self.keys.settings(&settings)?,
            ..settings
        };
        let upstreams = UpstreamSettings {
            connect_timeout: std_duration(
                "gateway.connect_timeout",
                &self.gateway.connect_timeout,
            )?,
            response_timeout: std_duration(
                "gateway.upstream_timeout",
                &self.gateway.upstream_timeout,
            )?,
            max_request_body: self
                .gateway
                .max_request_body_mib
                .checked_mul(1024 * 1024)
                .filter(|bytes| *bytes > 0)
                .ok_or_else(|| invalid("gateway.max_request_body_mib", "must be 1 or more"))?,
            reference_scope_mismatch: match self.gateway.scope_mismatch.as_str() {
                "403" => false,
                "reference" => true,
                _ => {
                    return Err(invalid(
                        "gateway.scope_mismatch",
                        "must be \"403\" or \"reference\"",
                    ));
                }
            },
            ..UpstreamSettings::default()
        };
        let sender = self
            .webhooks
            .deliver
            .then(|| -> Result<_, ConfigError> {
                Ok(crate::webhooks::SenderSettings {
                    concurrency: self.webhooks.concurrency,
                    poll_interval: std_duration(
                        "webhooks.poll_interval",
                        &self.webhooks.poll_interval,
                    )?,
                    send_timeout: std_duration(
                        "webhooks.send_timeout",
                        &self.webhooks.send_timeout,
                    )?,
                    allow_private: self.webhooks.allow_http_loopback,
                })
            })
            .transpose()?;
        if self.http.max_connections_per_peer == 0 {
            return Err(invalid(
                "http.max_connections_per_peer",
                "must be 1 or more",
            ));
        }
        let listener = crate::app::ListenerSettings {
            header_read_timeout: std_duration(
                "http.header_read_timeout",
                &self.http.header_read_timeout,
            )?,
            body_read_timeout: std_duration(
                "http.body_read_timeout",
                &self.http.body_read_timeout,
            )?,
            max_connections_per_peer: self.http.max_connections_per_peer,
            trusted_proxies: self
                .http
                .trusted_proxies
                .iter()
                .map(|ip| {
                    ip.trim().parse::<std::net::IpAddr>().map_err(|_| {
                        invalid(
                            "http.trusted_proxies",
                            format!("{ip:?} is not an IP address"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
                .into(),
        };
        if listener.header_read_timeout.is_zero() || listener.body_read_timeout.is_zero() {
            return Err(invalid("http", "timeouts must be longer than 0"));
        }
        let l = &self.limits;
        if l.login_failures_per_account == 0
            || l.login_failures_per_address == 0
            || l.client_auth_failures == 0
        {
            return Err(invalid("limits", "failure counts must be 1 or more"));
        }
        let limits = crate::state::LimitSettings {
            login_per_account: l.login_failures_per_account,
            login_per_address: l.login_failures_per_address,
            login_window: parse_duration("limits.login_window", &l.login_window)?,
            client_auth: l.client_auth_failures,
            client_auth_window: parse_duration("limits.client_auth_window", &l.client_auth_window)?,
        };
        let metrics_allow = self
            .http
            .metrics_allow
            .iter()
            .map(|ip| {
                ip.trim().parse::<std::net::IpAddr>().map_err(|_| {
                    invalid("http.metrics_allow", format!("{ip:?} is not an IP address"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mailer = self.mail.mailer()?;
        Ok(Validated {
            mailer,
            housekeeping: true,
            metrics_allow,
            limits,
            config: self,
            listen,
            database,
            settings,
            upstreams,
            sender,
            listener,
        })
    }
}

impl Config {
    /// The operators' emails, trimmed; each must look like an email address.
    fn operators(&self) -> Result<Vec<String>, ConfigError> {
        self.operators
            .iter()
            .map(|email| {
                let email = email.trim();
                let plausible = email.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty() && !domain.is_empty() && !email.contains(char::is_whitespace)
                });
                if plausible {
                    Ok(email.to_owned())
                } else {
                    Err(invalid(
                        "operators",
                        format!("{email:?} is not an email address"),
                    ))
                }
            })
            .collect()
    }
}

impl MailConfig {
    fn mailer(&self) -> Result<crate::mail::Mailer, ConfigError> {
        let from = self.from.trim().to_owned();
        if from.is_empty() || from.contains(['\r', '\n', '<', '>']) {
            return Err(invalid("mail.from", "must be a plain email address"));
        }
        let relay = self.smtp_relay.trim();
        Ok(match (relay.is_empty(), &self.file) {
            (true, None) => crate::mail::Mailer::Off,
            (true, Some(path)) => crate::mail::Mailer::File {
                path: path.clone(),
                from,
            },
            (false, None) => crate::mail::Mailer::Smtp {
                relay: relay.to_owned(),
                from,
            },
            (false, Some(_)) => {
                return Err(invalid("mail", "set smtp_relay or file, not both"));
            }
        })
    }
}

impl KeysConfig {
    fn settings(&self, s: &Settings) -> Result<trilo_core::settings::KeySettings, ConfigError> {
        let rotate_every = match self.rotate_every.trim() {
            "off" => None,
            every => Some(parse_duration("keys.rotate_every", every)?),
        };
        let retired_kept = parse_duration("keys.retired_kept", &self.retired_kept)?;
        // A retired key must outlive every token it signed, or those fail before they expire.
        if retired_kept < s.access_token_ttl + s.jwt_leeway {
            return Err(invalid(
                "keys.retired_kept",
                "must be at least tokens.access_token_lifetime plus tokens.jwt_leeway",
            ));
        }
        if rotate_every.is_some_and(|every| every < retired_kept) {
            return Err(invalid(
                "keys.rotate_every",
                "must be at least keys.retired_kept, so at most one retired key is published",
            ));
        }
        Ok(trilo_core::settings::KeySettings {
            rotate_every,
            retired_kept,
            reload_every: parse_duration("keys.reload_every", &self.reload_every)?,
        })
    }
}

impl JanitorConfig {
    fn settings(&self) -> Result<trilo_core::settings::JanitorSettings, ConfigError> {
        if self.batch == 0 {
            return Err(invalid("janitor.batch", "must be 1 or more"));
        }
        Ok(trilo_core::settings::JanitorSettings {
            enabled: self.enabled,
            every: parse_duration("janitor.every", &self.every)?,
            batch: self.batch,
            pause: parse_duration("janitor.pause", &self.pause)?,
            family_retention: parse_duration("janitor.family_retention", &self.family_retention)?,
        })
    }
}

impl WebhooksConfig {
    fn settings(&self) -> Result<trilo_core::settings::WebhookSettings, ConfigError> {
        let ms = |key, value: &str| {
            parse_duration(key, value)
                .map(|d| i64::try_from(d.whole_milliseconds()).unwrap_or(i64::MAX))
        };
        if self.max_attempts < 1 {
            return Err(invalid("webhooks.max_attempts", "must be 1 or more"));
        }
        if self.max_policy_objects < 1 {
            return Err(invalid("webhooks.max_policy_objects", "must be 1 or more"));
        }
        if self.concurrency < 1 {
            return Err(invalid("webhooks.concurrency", "must be 1 or more"));
        }
        let lease = parse_duration("webhooks.lease", &self.lease)?;
        let send_timeout = parse_duration("webhooks.send_timeout", &self.send_timeout)?;
        if lease <= send_timeout {
            return Err(invalid(
                "webhooks.lease",
                "must be longer than webhooks.send_timeout, or a slow send would be doubled",
            ));
        }
        parse_duration("webhooks.poll_interval", &self.poll_interval)?;
        Ok(trilo_core::settings::WebhookSettings {
            allow_http_loopback: self.allow_http_loopback,
            retry: trilo_protocol::webhooks::RetryPolicy {
                base_ms: ms("webhooks.retry_base", &self.retry_base)?,
                cap_ms: ms("webhooks.retry_cap", &self.retry_cap)?,
                max_attempts: self.max_attempts,
            },
            lease,
            send_timeout,
            max_policy_objects: self.max_policy_objects,
            ..trilo_core::settings::WebhookSettings::default()
        })
    }
}

impl Validated {
    /// Whether cookies must carry `Secure` (the auth host is served over https).
    pub fn secure_cookies(&self) -> bool {
        self.config.auth_url.starts_with("https://")
    }

    /// The configured key-encryption key, if any.
    pub fn key_encryption_key(&self) -> Result<Option<[u8; 32]>, ConfigError> {
        self.config
            .key_encryption_key
            .as_ref()
            .map(decode_key)
            .transpose()
    }
}

fn decode_key(secret: &SecretString) -> Result<[u8; 32], ConfigError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(secret.expose_secret().trim())
        .map_err(|_| invalid("key_encryption_key", "must be base64"))?;
    bytes
        .try_into()
        .map_err(|_| invalid("key_encryption_key", "must decode to exactly 32 bytes"))
}

pub fn parse_database_url(url: &str) -> Result<DatabaseUrl, ConfigError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(invalid("database_url", "sqlite:// needs a file path"));
        }
        return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(DatabaseUrl::Postgres(url.to_owned()));
    }
    Err(invalid(
        "database_url",
        "must start with sqlite:// or postgres://",
    ))
}

/// A positive duration as a std duration (for I/O timeouts).
fn std_duration(key: &'static str, value: &str) -> Result<std::time::Duration, ConfigError> {
    std::time::Duration::try_from(parse_duration(key, value)?)
        .map_err(|_| invalid(key, "must be positive"))
}

/// Durations like `90d`, `10m`, `2s`, `1h`, `500ms`.
pub fn parse_duration(key: &'static str, value: &str) -> Result<time::Duration, ConfigError> {
    let value = value.trim();
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = value.split_at(digits);
    let n: i64 = number.parse().map_err(|_| {
        invalid(
            key,
            format!("{value:?} is not a duration like 10m, 90d, 2s"),
        )
    })?;
    let d = match unit {
        "ms" => time::Duration::milliseconds(n),
        "s" => time::Duration::seconds(n),
        "m" => time::Duration::minutes(n),
        "h" => time::Duration::hours(n),
        "d" => time::Duration::days(n),
        _ => {
            return Err(invalid(
                key,
                format!("{value:?} has no unit: use ms, s, m, h or d"),
            ));
        }
    };
    if d <= time::Duration::ZERO {
        return Err(invalid(key, "must be greater than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::field_reassign_with_default,
        clippy::result_large_err
    )]
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(
            parse_duration("k", "90d").unwrap(),
            time::Duration::days(90)
        );
        assert_eq!(
            parse_duration("k", "2s").unwrap(),
            time::Duration::seconds(2)
        );
        assert_eq!(
            parse_duration("k", "500ms").unwrap(),
            time::Duration::milliseconds(500)
        );
        for bad in ["", "10", "m", "-1s", "0s", "1w", "1.5h"] {
            assert!(parse_duration("k", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_validate() {
        let v = Config::default().validate().unwrap();
        assert_eq!(
            v.database,
            DatabaseUrl::Sqlite(PathBuf::from("trilo-data/trilo.db"))
        );
        assert_eq!(v.settings.refresh_reuse_leeway, time::Duration::minutes(10));
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut c = Config::default();
        c.tokens.code_lifetime = "11m".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("tokens.code_lifetime"), "{e}");
        let mut c = Config::default();
        c.gateway.cache_ttl = "2s".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("gateway.cache_ttl"), "{e}");
        let mut c = Config::default();
        c.gateway.max_request_body_mib = 0;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("gateway.max_request_body_mib"), "{e}");
        let mut c = Config::default();
        c.gateway.upstream_timeout = "soon".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("gateway.upstream_timeout"), "{e}");
        let mut c = Config::default();
        c.database_url = Some("mysql://x".into());
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("database_url")
        );
        let mut c = Config::default();
        c.auth_url = "not a url".into();
        assert!(c.validate().unwrap_err().to_string().contains("auth_url"));
        for bad in ["alice", "alice@", "@example.com", "al ice@example.com"] {
            let mut c = Config::default();
            c.operators = vec![bad.into()];
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("operators"), "{bad}: {e}");
        }
        let mut c = Config::default();
        c.operators = vec![" ops@example.com ".into()];
        assert_eq!(
            c.validate().unwrap().settings.operators,
            ["ops@example.com"]
        );
    }

    #[test]
    fn environment_overrides_nested_keys() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "trilo.toml",
                "audience = \"from-file\"\n[tokens]\ncode_lifetime = \"5m\"\n",
            )?;
            jail.set_env("TRILO__TOKENS__REFRESH_REUSE_LEEWAY", "2s");
            jail.set_env("TRILO__AUDIENCE", "from-env");
            let c = Config::load(Some(Path::new("trilo.toml"))).unwrap();
            assert_eq!(c.audience, "from-env");
            assert_eq!(c.tokens.code_lifetime, "5m");
            assert_eq!(c.tokens.refresh_reuse_leeway, "2s");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("trilo.toml", "audiense = \"typo\"\n")?;
            assert!(Config::load(Some(Path::new("trilo.toml"))).is_err());
            Ok(())
        });
    }
}
