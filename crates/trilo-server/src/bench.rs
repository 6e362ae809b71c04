//! `trilo bench`: the project's load benchmark (DESIGN §5). It starts a server on
//! 127.0.0.1:0 over a scratch database, drives one hot path over loopback at a fixed
//! concurrency for a bounded time, and prints throughput and latency percentiles as JSON.
//! Speed is measured here, never in timed tests.
//!
//! Scenarios:
//! - `refresh-rotation`: each worker holds its own token family and rotates its refresh
//!   token in a loop (`POST /oauth/token`, `grant_type=refresh_token`), so the figure
//!   includes client authentication, the rotation's durable commit and one ES256 signature.
//! - `gateway`: `GET /ex/jira/{cloudid}/rest/api/3/myself` with a warm access token,
//!   through every gateway check to the sample Jira upstream served by the same process.
//! - `direct`: the same upstream call without the gateway (with the identity headers and
//!   an assertion the gateway issued), for the ratio.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use tokio::net::TcpListener;
use trilo_core::Core;
use trilo_core::services::authorize::{AuthorizeOutcome, ConsentAnswer};
use trilo_core::services::gateway::{Caller, GatewayCall};
use trilo_core::services::token::TokenResponse;
use trilo_protocol::Params;
use trilo_protocol::params::encode;
use trilo_protocol::token_request::{AuthMethod, ClientCredentials, TokenGrant};

use crate::app::{build, serve_forever};
use crate::config::Config;
use crate::demo::{self, DemoInfo};

/// A hot path the benchmark can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    RefreshRotation,
    Gateway,
    Direct,
}

impl Scenario {
    pub const ALL: [Scenario; 3] = [
        Scenario::RefreshRotation,
        Scenario::Gateway,
        Scenario::Direct,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::RefreshRotation => "refresh-rotation",
            Scenario::Gateway => "gateway",
            Scenario::Direct => "direct",
        }
    }
}

/// What to run and for how long.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// `None`: SQLite in a temporary directory. `postgres://…`: a scratch database is
    /// created on that server and dropped afterwards.
    pub database_url: Option<String>,
    pub scenarios: Vec<Scenario>,
    pub concurrency: usize,
    pub duration: Duration,
    /// Measured but not counted: connections, caches and the WAL warm up.
    pub warmup: Duration,
}

/// The JSON report `trilo bench` prints.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub database: &'static str,
    pub concurrency: usize,
    pub duration_s: f64,
    pub scenarios: Vec<ScenarioReport>,
    /// `gateway` requests/s over `direct` requests/s, when both ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_to_direct: Option<f64>,
}

/// One scenario's figures: requests counted after the warm-up, latencies in milliseconds.
#[derive(Debug, Serialize)]
pub struct ScenarioReport {
    pub name: &'static str,
    pub requests: u64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Runs the chosen scenarios and returns the report.
pub async fn run(options: &BenchOptions) -> anyhow::Result<BenchReport> {
    if options.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let dir = std::env::temp_dir().join(format!("trilo-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let scratch = match &options.database_url {
        Some(url) if url.starts_with("postgres") => Some(
            trilo_store_postgres::testing::fresh_database(url)
                .await
                .context("creating a scratch PostgreSQL database")?,
        ),
        Some(_) => bail!("the benchmark's PostgreSQL URL must start with postgres://"),
        None => None,
    };
    let result = run_in(
        options,
        dir.clone(),
        scratch.as_ref().map(|s| s.url.clone()),
    )
    .await;
    if let Some(db) = scratch {
        let _ = db.drop_database().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_in(
    options: &BenchOptions,
    dir: PathBuf,
    database_url: Option<String>,
) -> anyhow::Result<BenchReport> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let config = Config {
        auth_url: base.clone(),
        api_url: base.clone(),
        database_url,
        data_dir: dir,
        ..Config::default()
    };
    let server = build(&config.validate()?).await?;
    let core = server.core.clone();
    let info = demo::seed(
        &core,
        &format!("{base}/sample"),
        &format!("{base}/callback"),
    )
    .await?;
    let database = core.store.backend();
    let router = demo::with_sample_products(server.router, &core)?;
    let task = tokio::spawn(serve_forever(listener, router));
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut scenarios = Vec::new();
    for scenario in &options.scenarios {
        eprintln!(
            "trilo bench: {} on {database}, {} clients, {:?} warm-up + {:?}…",
            scenario.name(),
            options.concurrency,
            options.warmup,
            options.duration
        );
        let mut jobs = Vec::with_capacity(options.concurrency);
        for _ in 0..options.concurrency {
            jobs.push(job(*scenario, &core, &info, &base).await?);
        }
        let report = measure(*scenario, options, &client, jobs).await?;
        eprintln!(
            "trilo bench: {}: {} requests/s, p99 {} ms",
            report.name, report.requests_per_s, report.p99_ms
        );
        scenarios.push(report);
    }
    task.abort();
    let rate = |name: &str| {
        scenarios
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.requests_per_s)
    };
    let gateway_to_direct = match (rate("gateway"), rate("direct")) {
        (Some(g), Some(d)) if d > 0.0 => Some((g / d * 1000.0).round() / 1000.0),
        _ => None,
    };
    Ok(BenchReport {
        database,
        concurrency: options.concurrency,
        duration_s: options.duration.as_secs_f64(),
        scenarios,
        gateway_to_direct,
    })
}

/// One worker's request loop for `scenario`, prepared (tokens issued) before timing.
async fn job(scenario: Scenario, core: &Core, info: &DemoInfo, base: &str) -> anyhow::Result<Job> {
    let app = &info.apps[0];
    let cloud_id = &info.sites[0].cloud_id;
    let myself = "/rest/api/3/myself";
    Ok(match scenario {
        Scenario::RefreshRotation => Job::Refresh {
            url: format!("{base}/oauth/token"),
            credentials: format!(
                "client_id={}&client_secret={}",
                encode(&app.client_id),
                encode(&app.client_secret)
            ),
            token: first_tokens(core, info)
                .await?
                .refresh_token
                .context("no refresh token")?,
        },
        Scenario::Gateway => {
            let token = first_tokens(core, info).await?.access_token;
            Job::Get {
                url: format!("{base}/ex/jira/{cloud_id}{myself}"),
                headers: vec![(
                    http::header::AUTHORIZATION,
                    http::HeaderValue::from_str(&format!("Bearer {token}"))?,
                )],
            }
        }
        Scenario::Direct => {
            let token = first_tokens(core, info).await?.access_token;
            let call = GatewayCall {
                product: "jira",
                cloud_id,
                method: "GET",
                path: myself,
            };
            let admitted = core
                .admit(Caller::Bearer(&token), &call)
                .await?
                .map_err(|refusal| anyhow::anyhow!("the gateway refused: {}", refusal.message))?;
            let header = |value: &str| http::HeaderValue::from_str(value);
            Job::Get {
                url: format!("{}{myself}", admitted.upstream_base),
                headers: vec![
                    (name("x-trilo-account-id"), header(&admitted.account_id)?),
                    (
                        name("x-trilo-client-id"),
                        header(admitted.client_id.as_deref().unwrap_or_default())?,
                    ),
                    (name("x-trilo-cloud-id"), header(&admitted.cloud_id)?),
                    (name("x-trilo-scopes"), header(&admitted.scopes.join(" "))?),
                    (name("x-trilo-assertion"), header(&admitted.assertion)?),
                ],
            }
        }
    })
}

fn name(header: &'static str) -> http::HeaderName {
    http::HeaderName::from_static(header)
}

/// Runs the jobs concurrently through the warm-up and the measured time.
async fn measure(
    scenario: Scenario,
    options: &BenchOptions,
    client: &HttpClient,
    jobs: Vec<Job>,
) -> anyhow::Result<ScenarioReport> {
    let count_from = Instant::now() + options.warmup;
    let stop_at = count_from + options.duration;
    let workers: Vec<_> = jobs
        .into_iter()
        .map(|job| {
            let worker = Worker {
                client: client.clone(),
                job,
            };
            tokio::spawn(worker.run(count_from, stop_at))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let outcome = worker.await??;
        latencies.extend(outcome.latencies);
        errors += outcome.errors;
    }
    Ok(scenario_report(
        scenario,
        options.duration,
        latencies,
        errors,
    ))
}

/// Consents for the demo user through the services (not measured) and redeems the code
/// with `offline_access` and `read:jira-user`.
async fn first_tokens(core: &Core, info: &DemoInfo) -> anyhow::Result<TokenResponse> {
    let app = &info.apps[0];
    let account = core.account_by_email(&info.users[0].email).await?;
    let params = Params::from_pairs([
        ("audience", info.audience.as_str()),
        ("client_id", &app.client_id),
        ("scope", "offline_access read:me read:jira-user"),
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

/// What one worker sends, again and again.
enum Job {
    /// Rotates its refresh token; each answer's token is the next request's.
    Refresh {
        url: String,
        credentials: String,
        token: String,
    },
    Get {
        url: String,
        headers: Vec<(http::HeaderName, http::HeaderValue)>,
    },
}

struct Worker {
    client: HttpClient,
    job: Job,
}

struct WorkerOutcome {
    latencies: Vec<Duration>,
    errors: u64,
}

impl Worker {
    /// Sends until `stop_at`, timing the requests that start after `count_from`.
    async fn run(mut self, count_from: Instant, stop_at: Instant) -> anyhow::Result<WorkerOutcome> {
        let mut latencies = Vec::new();
        let mut errors = 0;
        loop {
            let start = Instant::now();
            if start >= stop_at {
                break;
            }
            let ok = self.once().await?;
            if start >= count_from {
                if ok {
                    latencies.push(start.elapsed());
                } else {
                    errors += 1;
                }
            }
        }
        Ok(WorkerOutcome { latencies, errors })
    }

    async fn once(&mut self) -> anyhow::Result<bool> {
        match &mut self.job {
            Job::Refresh {
                url,
                credentials,
                token,
            } => {
                let body = format!(
                    "grant_type=refresh_token&refresh_token={}&{credentials}",
                    encode(token)
                );
                let request = http::Request::post(url.as_str())
                    .header(
                        http::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(Full::new(Bytes::from(body)))?;
                let Some(body) = send(&self.client, request).await? else {
                    return Ok(false);
                };
                let answer: serde_json::Value = serde_json::from_slice(&body)?;
                let Some(next) = answer["refresh_token"].as_str() else {
                    return Ok(false);
                };
                *token = next.to_owned();
                Ok(true)
            }
            Job::Get { url, headers } => {
                let mut request = http::Request::get(url.as_str()).body(Full::new(Bytes::new()))?;
                request.headers_mut().extend(headers.iter().cloned());
                Ok(send(&self.client, request).await?.is_some())
            }
        }
    }
}

/// The body of a 2xx answer, or `None` for any other status.
async fn send(
    client: &HttpClient,
    request: http::Request<Full<Bytes>>,
) -> anyhow::Result<Option<Bytes>> {
    let response = client.request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(status.is_success().then_some(body))
}

fn scenario_report(
    scenario: Scenario,
    duration: Duration,
    mut latencies: Vec<Duration>,
    errors: u64,
) -> ScenarioReport {
    latencies.sort_unstable();
    let ms = |d: Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
    let at = |q: f64| {
        let last = latencies.len().saturating_sub(1);
        latencies
            .get(((last as f64) * q).round() as usize)
            .copied()
            .map_or(0.0, ms)
    };
    let requests = latencies.len() as u64;
    ScenarioReport {
        name: scenario.name(),
        requests,
        requests_per_s: (requests as f64 / duration.as_secs_f64() * 10.0).round() / 10.0,
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        p999_ms: at(0.999),
        max_ms: latencies.last().copied().map_or(0.0, ms),
        errors,
    }
}
