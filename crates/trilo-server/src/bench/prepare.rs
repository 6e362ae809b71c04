//! What each scenario's workers send, prepared through the services before timing (tokens
//! issued, codes inserted, cold tokens minted), and the jobs made of it once the server's
//! address is known.

use anyhow::{Context, bail};
use trilo_core::Core;
use trilo_core::crypto::{random_token, sha256};
use trilo_core::model::{App, AuthorizationCode, TokenFamily};
use trilo_core::services::authorize::{AuthorizeOutcome, ConsentAnswer};
use trilo_core::services::gateway::{Caller, GatewayCall};
use trilo_core::services::token::TokenResponse;
use trilo_protocol::Params;
use trilo_protocol::params::encode;
use trilo_protocol::token_request::{AuthMethod, ClientCredentials, TokenGrant};

use super::child::ServerProcess;
use super::load::Job;
use super::preload::{Loader, Rows};
use super::{BenchOptions, Scenario};
use crate::demo::DemoInfo;

/// Codes prepared per second of warm-up and measured time: above what code exchanges
/// reach on a small machine, so workers rarely run out.
const CODES_PER_SECOND: f64 = 20_000.0;
/// Cold tokens minted per second of warm-up and measured time, likewise.
const COLD_TOKENS_PER_SECOND: f64 = 15_000.0;
/// Families the cold tokens are minted for.
const COLD_FAMILIES: usize = 4;
/// Codes per insert transaction.
const CODES_PER_BATCH: usize = 10_000;
/// The scopes every prepared token and code carries.
const SCOPES: &str = "offline_access read:me read:jira-user";
const MYSELF: &str = "/rest/api/3/myself";

/// What one worker needs, prepared before the server starts.
#[derive(Clone, Debug)]
pub enum Payload {
    /// Unused authorization codes, one per request.
    Codes(Vec<String>),
    /// The head of a family of the worker's own.
    RefreshToken(String),
    /// A warm access token.
    AccessToken(String),
    /// Access tokens the server has never seen, one per request.
    ColdTokens(Vec<String>),
}

/// The demo app and user that every prepared token belongs to.
pub struct Fixture<'a> {
    core: &'a Core,
    info: &'a DemoInfo,
    app: App,
    /// `client_id=…&client_secret=…` (client_secret_post).
    credentials: String,
}

impl<'a> Fixture<'a> {
    pub async fn new(core: &'a Core, info: &'a DemoInfo) -> anyhow::Result<Fixture<'a>> {
        let demo = &info.apps[0];
        let app = core
            .store()
            .app_by_client_id(&demo.client_id)
            .await?
            .context("the demo app is missing")?;
        Ok(Fixture {
            core,
            info,
            app,
            credentials: format!(
                "client_id={}&client_secret={}",
                encode(&demo.client_id),
                encode(&demo.client_secret)
            ),
        })
    }

    /// One payload per worker for `scenario`. Codes go into the database through `loader`.
    pub async fn prepare(
        &self,
        scenario: Scenario,
        options: &BenchOptions,
        loader: &mut Loader,
    ) -> anyhow::Result<Vec<Payload>> {
        let workers = options.concurrency;
        let seconds = (options.warmup + options.duration).as_secs_f64();
        let pool = |per_second: f64| ((per_second * seconds).ceil() as usize).max(workers);
        let mut payloads = Vec::with_capacity(workers);
        match scenario {
            Scenario::CodeExchange => {
                let codes = self.codes(pool(CODES_PER_SECOND), options, loader).await?;
                payloads.extend(deal(codes, workers).into_iter().map(Payload::Codes));
            }
            Scenario::GatewayCold => {
                let tokens = self.cold_tokens(pool(COLD_TOKENS_PER_SECOND)).await?;
                payloads.extend(deal(tokens, workers).into_iter().map(Payload::ColdTokens));
            }
            Scenario::RefreshRotation => {
                for _ in 0..workers {
                    let tokens = self.first_tokens().await?;
                    let refresh = tokens.refresh_token.context("no refresh token")?;
                    payloads.push(Payload::RefreshToken(refresh));
                }
            }
            // Measured at its receiver: no per-worker payloads (see `events`).
            Scenario::Events => {}
            Scenario::AccessibleResources
            | Scenario::Gateway
            | Scenario::Direct
            | Scenario::Relay => {
                for _ in 0..workers {
                    let tokens = self.first_tokens().await?;
                    payloads.push(Payload::AccessToken(tokens.access_token));
                }
            }
        }
        Ok(payloads)
    }

    /// The workers' jobs against `server`.
    pub async fn jobs(
        &self,
        scenario: Scenario,
        server: &ServerProcess,
        payloads: Vec<Payload>,
    ) -> anyhow::Result<Vec<Job>> {
        let base = &server.base;
        let token_uri: http::Uri = format!("{base}/oauth/token").parse()?;
        let cloud_id = &self.info.sites[0].cloud_id;
        let gateway_uri: http::Uri = format!("{base}/ex/jira/{cloud_id}{MYSELF}").parse()?;
        let mut jobs = Vec::with_capacity(payloads.len());
        for payload in payloads {
            jobs.push(match (scenario, payload) {
                (Scenario::CodeExchange, Payload::Codes(codes)) => Job::Exchange {
                    uri: token_uri.clone(),
                    form: format!(
                        "redirect_uri={}&{}",
                        encode(&self.info.apps[0].callback_url),
                        self.credentials
                    ),
                    codes,
                },
                (Scenario::RefreshRotation, Payload::RefreshToken(token)) => Job::Refresh {
                    uri: token_uri.clone(),
                    credentials: self.credentials.clone(),
                    token,
                },
                (Scenario::AccessibleResources, Payload::AccessToken(token)) => Job::Get {
                    uri: format!("{base}/oauth/token/accessible-resources").parse()?,
                    headers: vec![bearer(&token)?],
                },
                (Scenario::Gateway, Payload::AccessToken(token)) => Job::Get {
                    uri: gateway_uri.clone(),
                    headers: vec![bearer(&token)?],
                },
                (Scenario::GatewayCold, Payload::ColdTokens(tokens)) => Job::ColdGet {
                    uri: gateway_uri.clone(),
                    tokens,
                },
                (Scenario::Direct, Payload::AccessToken(token)) => self.direct(&token).await?,
                (Scenario::Relay, Payload::AccessToken(token)) => {
                    through_relay(self.direct(&token).await?, server.relay)?
                }
                (scenario, _) => bail!("a payload of another scenario for {}", scenario.name()),
            });
        }
        Ok(jobs)
    }

    /// The upstream call the gateway would make for `token`, with a fresh assertion (it
    /// lives a minute, so it is made right before the run).
    async fn direct(&self, token: &str) -> anyhow::Result<Job> {
        let call = GatewayCall {
            product: "jira",
            cloud_id: &self.info.sites[0].cloud_id,
            method: "GET",
            path: MYSELF,
        };
        let admitted = self
            .core
            .admit(Caller::Bearer(token), &call)
            .await?
            .map_err(|refusal| anyhow::anyhow!("the gateway refused: {}", refusal.message))?;
        let forwarding = &admitted.forwarding;
        let header = |name: &'static str, value: &str| {
            Ok::<_, anyhow::Error>((
                http::HeaderName::from_static(name),
                http::HeaderValue::from_str(value)?,
            ))
        };
        Ok(Job::Get {
            uri: format!("{}{MYSELF}", forwarding.upstream_base).parse()?,
            headers: vec![
                header("x-trilo-account-id", &forwarding.account_id)?,
                header(
                    "x-trilo-client-id",
                    forwarding.client_id.as_deref().unwrap_or_default(),
                )?,
                header("x-trilo-cloud-id", &forwarding.cloud_id)?,
                header("x-trilo-scopes", &forwarding.scopes)?,
                header("x-trilo-assertion", &forwarding.assertion)?,
            ],
        })
    }

    /// Inserts `count` unused codes for the demo app, user and site, as a consent would
    /// (the code's hash, the grant's scopes, the app's callback), valid past the run.
    async fn codes(
        &self,
        count: usize,
        options: &BenchOptions,
        loader: &mut Loader,
    ) -> anyhow::Result<Vec<String>> {
        eprintln!("trilo bench: inserting {count} authorization codes for code-exchange");
        let family = self.family().await?;
        let now = self.core.now();
        let run = options.warmup + options.duration;
        let expires_at = now + time::Duration::hours(1) + time::Duration::try_from(run)?;
        let template = AuthorizationCode {
            code_hash: [0; 32],
            app_id: family.app_id,
            account_id: family.account_id,
            grant_id: family.grant_id,
            cloud_id: Some(self.info.sites[0].cloud_id.clone()),
            scopes: family.scopes,
            redirect_uri: Some(self.info.apps[0].callback_url.clone()),
            code_challenge: None,
            nonce: None,
            auth_time: None,
            created_at: now,
            expires_at,
            used_at: None,
            family_id: None,
            audience: None,
        };
        let mut codes = Vec::with_capacity(count);
        while codes.len() < count {
            let batch = CODES_PER_BATCH.min(count - codes.len());
            let template = template.clone();
            let (strings, rows) =
                tokio::task::spawn_blocking(move || new_codes(&template, batch)).await?;
            let rows = Rows {
                codes: rows,
                ..Rows::default()
            };
            loader.insert(&rows).await?;
            codes.extend(strings);
        }
        Ok(codes)
    }

    /// `count` access tokens no one has presented yet, minted for a few fresh families at
    /// their head generation (each carries its own `jti`, so no two are alike).
    async fn cold_tokens(&self, count: usize) -> anyhow::Result<Vec<String>> {
        eprintln!("trilo bench: minting {count} access tokens for gateway-cold");
        let mut families = Vec::with_capacity(COLD_FAMILIES);
        for _ in 0..COLD_FAMILIES {
            families.push(self.family().await?);
        }
        // Signing is CPU work: two blocking threads, one per core of a small machine.
        let halves = [count / 2, count - count / 2].map(|share| {
            let core = self.core.clone();
            let app = self.app.clone();
            let families = families.clone();
            tokio::task::spawn_blocking(move || mint(&core, &app, &families, share))
        });
        let mut tokens = Vec::with_capacity(count);
        for half in halves {
            tokens.extend(half.await??);
        }
        Ok(tokens)
    }

    /// A new family of the demo user (through consent and code exchange), read back.
    async fn family(&self) -> anyhow::Result<TokenFamily> {
        let tokens = self.first_tokens().await?;
        let refresh = tokens.refresh_token.context("no refresh token")?;
        let Some(key) = self.core.refresh_token_key(&refresh).await? else {
            anyhow::bail!("the new refresh token does not name its family");
        };
        let state = self
            .core
            .store()
            .refresh_token(&key)
            .await?
            .context("the new refresh token is not in the store")?;
        Ok(state.family)
    }

    /// Consents for the demo user through the services (not measured) and redeems the
    /// code with `offline_access` and `read:jira-user`.
    async fn first_tokens(&self) -> anyhow::Result<TokenResponse> {
        let (core, info) = (self.core, self.info);
        let app = &info.apps[0];
        let account = core.account_by_email(&info.users[0].email).await?;
        let params = Params::from_pairs([
            ("audience", info.audience.as_str()),
            ("client_id", &app.client_id),
            ("scope", SCOPES),
            ("redirect_uri", &app.callback_url),
            ("state", "bench"),
            ("response_type", "code"),
        ]);
        let answer = ConsentAnswer::Accept {
            cloud_id: Some(info.sites[0].cloud_id.clone()),
        };
        let AuthorizeOutcome::Redirect(location) =
            core.answer_consent(&params, &account, answer).await?
        else {
            bail!("the demo consent did not redirect");
        };
        let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let code = Params::parse(query.as_bytes())?
            .get("code")
            .map(str::to_owned)
            .context("the consent redirect has no code")?;
        let creds = ClientCredentials {
            client_id: app.client_id.clone(),
            secret: Some(app.client_secret.clone()),
            method: AuthMethod::Post,
        };
        let grant = TokenGrant::AuthorizationCode {
            code,
            redirect_uri: Some(app.callback_url.clone()),
            code_verifier: None,
        };
        Ok(core.token(&creds, grant).await?)
    }
}

/// `direct`'s job sent to the relay at `relay` instead: the same path and headers, so
/// the upstream gets the same bytes by way of one more hop.
fn through_relay(direct: Job, relay: std::net::SocketAddr) -> anyhow::Result<Job> {
    let Job::Get { uri, headers } = direct else {
        bail!("the direct call is a GET");
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Ok(Job::Get {
        uri: format!("http://{relay}{path}").parse()?,
        headers,
    })
}

fn bearer(token: &str) -> anyhow::Result<(http::HeaderName, http::HeaderValue)> {
    Ok((
        http::header::AUTHORIZATION,
        http::HeaderValue::from_str(&format!("Bearer {token}"))?,
    ))
}

/// Deals `items` out to `hands` workers in turn.
fn deal<T>(items: Vec<T>, hands: usize) -> Vec<Vec<T>> {
    let mut dealt: Vec<Vec<T>> = (0..hands).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        dealt[i % hands].push(item);
    }
    dealt
}

/// `count` random codes and their rows (the row keeps the code's hash, never the code).
fn new_codes(template: &AuthorizationCode, count: usize) -> (Vec<String>, Vec<AuthorizationCode>) {
    let strings: Vec<String> = (0..count).map(|_| random_token()).collect();
    let rows = strings
        .iter()
        .map(|code| AuthorizationCode {
            code_hash: sha256(code),
            ..template.clone()
        })
        .collect();
    (strings, rows)
}

/// `count` access tokens spread over `families`, each at its head generation.
fn mint(
    core: &Core,
    app: &App,
    families: &[TokenFamily],
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::with_capacity(count);
    for i in 0..count {
        let family = &families[i % families.len()];
        tokens.push(core.sign_access_token(app, family, family.head_generation, &family.scopes)?);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn sample_code() -> AuthorizationCode {
        AuthorizationCode {
            code_hash: [0; 32],
            app_id: "app".into(),
            account_id: "account".into(),
            grant_id: "grant".into(),
            cloud_id: Some("cloud".into()),
            scopes: vec!["read:me".into()],
            redirect_uri: None,
            code_challenge: None,
            nonce: None,
            auth_time: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            expires_at: OffsetDateTime::UNIX_EPOCH,
            used_at: None,
            family_id: None,
            audience: None,
        }
    }

    #[test]
    fn dealing_gives_every_worker_a_share() {
        let dealt = deal((0..7).collect(), 3);
        assert_eq!(dealt, vec![vec![0, 3, 6], vec![1, 4], vec![2, 5]]);
    }

    #[test]
    fn code_rows_keep_the_hash_of_their_code() {
        let (strings, rows) = new_codes(&sample_code(), 3);
        assert_eq!(strings.len(), 3);
        for (code, row) in strings.iter().zip(&rows) {
            assert_eq!(row.code_hash, sha256(code));
        }
        assert_ne!(strings[0], strings[1]);
    }
}
