//! `trilo bench`: the project's load benchmark (DESIGN §5). It seeds a scratch database
//! with the demo data (and, with `--preload N`, N more accounts with their grants and
//! token families), prepares tokens and codes, starts the server as a child process
//! (`trilo bench-server`, so its memory is measured apart from the load generator), drives
//! each hot path over loopback at a fixed concurrency for a bounded time and prints
//! throughput, latency percentiles and the server's peak RSS as JSON. Speed is measured
//! here, never in timed tests.
//!
//! Scenarios, in the order they run:
//! - `code-exchange`: `POST /oauth/token` with `grant_type=authorization_code`, each
//!   request a fresh code from a pool inserted before timing.
//! - `refresh-rotation`: each worker rotates its own family's refresh token in a loop, so
//!   the figure includes client authentication, the rotation's durable commit and one
//!   ES256 signature.
//! - `accessible-resources`: `GET /oauth/token/accessible-resources` with a warm token.
//! - `gateway`: `GET /ex/jira/{cloudid}/rest/api/3/myself` with a warm access token,
//!   through every gateway check to the sample Jira upstream served by the same process.
//! - `gateway-cold`: the same call, each request with a token the server has never seen.
//! - `direct`: the same upstream call without the gateway (with the identity headers and
//!   an assertion the gateway issued), for the ratio.
//! - `relay`: the `direct` call through a byte relay in the server process, which copies
//!   each connection's bytes to the upstream unread: the ceiling any gateway with a second
//!   loopback hop could reach, for reading `gateway`'s ratio.
//! - `events`: products post events in batches; the figure is webhook deliveries per second
//!   received by a loopback receiver, and their latency from the event's commit (see
//!   `events`).

mod child;
pub mod command;
mod cpu;
mod events;
mod load;
mod preload;
mod prepare;
mod store;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

pub use child::serve_child;

use trilo_core::Core;

use crate::config::{Config, Validated};
use crate::demo;
use child::ServerProcess;
use cpu::{CpuSample, Spent};
use load::{Load, Measured};
use prepare::{Fixture, Payload};

/// A hot path the benchmark can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Scenario {
    CodeExchange,
    RefreshRotation,
    AccessibleResources,
    Gateway,
    GatewayCold,
    Direct,
    Relay,
    Events,
}

impl Scenario {
    /// Every scenario, in the order they run by default.
    pub const ALL: [Scenario; 8] = [
        Scenario::CodeExchange,
        Scenario::RefreshRotation,
        Scenario::AccessibleResources,
        Scenario::Gateway,
        Scenario::GatewayCold,
        Scenario::Direct,
        Scenario::Relay,
        Scenario::Events,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::CodeExchange => "code-exchange",
            Scenario::RefreshRotation => "refresh-rotation",
            Scenario::AccessibleResources => "accessible-resources",
            Scenario::Gateway => "gateway",
            Scenario::GatewayCold => "gateway-cold",
            Scenario::Direct => "direct",
            Scenario::Relay => "relay",
            Scenario::Events => "events",
        }
    }
}

/// What to run and for how long.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// `None`: SQLite in a temporary directory. `postgres://…`: a scratch database is
    /// created on that server and dropped afterwards.
    pub database_url: Option<String>,
    /// Run in this order; a repeated scenario runs once.
    pub scenarios: Vec<Scenario>,
    pub concurrency: usize,
    pub duration: Duration,
    /// Measured but not counted: connections, caches and the WAL warm up.
    pub warmup: Duration,
    /// How many times the scenarios run in turn (at least one).
    pub rounds: usize,
    /// Accounts with a grant and a token family each, loaded before the scenarios.
    pub preload: u64,
    /// Run the janitor in the server, with a backlog from the preload (`--janitor`).
    pub janitor: bool,
}

/// The JSON report `trilo bench` prints.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub database: &'static str,
    pub concurrency: usize,
    pub duration_s: f64,
    /// Token families in the database after `--preload`, counted in the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preloaded_families: Option<u64>,
    /// How long the preload took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preload_s: Option<f64>,
    /// With `--janitor`: rows the server's janitor removed while the scenarios ran (from
    /// its `/metrics`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub janitor_removed: Option<u64>,
    /// With one round, its figures; with more, each figure's median over the rounds
    /// (`errors`: their sum; `server_peak_rss_mb`: the highest; `to_direct`: the median of
    /// the rounds' ratios).
    pub scenarios: Vec<ScenarioReport>,
    /// With `--rounds` above one: every round's figures, in the order they ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<Vec<ScenarioReport>>,
    /// `gateway` requests/s over `direct` requests/s, when both ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_to_direct: Option<f64>,
    /// The gateway's own latency: `gateway` p50 minus `direct` p50, both measured again
    /// with one client (at full concurrency p50 is mostly queueing), when both ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_added_p50_ms: Option<f64>,
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
    /// The server process's peak resident memory during the scenario (warm-up included),
    /// in MiB; 0 where `/proc` cannot tell.
    pub server_peak_rss_mb: f64,
    /// The server process's CPU time (user and system, all its threads) over the measured
    /// time, per request counted, in microseconds; 0 where `/proc` cannot tell. It moves
    /// less than the rate when other work shares the machine, so it is the figure to
    /// compare two builds by; PostgreSQL's own CPU is not in it.
    pub server_cpu_us_per_request: f64,
    /// The load generator's (the `trilo bench` process's) CPU time over the measured time,
    /// per request counted, in microseconds; 0 where `/proc` cannot tell.
    pub load_cpu_us_per_request: f64,
    /// On PostgreSQL, its backends' CPU time serving the scratch database (found by their
    /// process titles, so only when the server runs on this machine) over the measured
    /// time, per request counted, in microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_cpu_us_per_request: Option<f64>,
    /// How long the server's threads were ready to run but waited for a CPU over the
    /// measured time, per request counted, in microseconds (`/proc/PID/task/*/schedstat`).
    /// A token path whose committer waits here is held up by the machine's other work,
    /// not by its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_wait_us_per_request: Option<f64>,
    /// The same for the load generator's threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_cpu_wait_us_per_request: Option<f64>,
    /// The same for the PostgreSQL backends of `database_cpu_us_per_request`: a batch
    /// writer's backend that waits here delays every request of its batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_cpu_wait_us_per_request: Option<f64>,
    /// The share of all CPUs' time the machine sat idle over the measured time, in
    /// percent: a scenario that leaves the machine idle waits on something (a commit's
    /// flush, a round trip) rather than on the CPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_idle_pct: Option<f64>,
    /// This scenario's requests/s over `direct`'s in the same run, when `direct` ran: how
    /// issue 19 states its targets, since the machine's own speed varies from run to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_direct: Option<f64>,
}

/// The single-client runs behind `gateway_added_p50_ms` last at most this long each (and
/// no longer than the main runs).
const SINGLE_CLIENT_RUN: Duration = Duration::from_secs(2);
const SINGLE_CLIENT_WARMUP: Duration = Duration::from_millis(500);
/// How long the sample upstream accepts one assertion (its lifetime plus leeway), which
/// bounds a `direct` run.
const DIRECT_LIMIT: Duration = Duration::from_secs(120);

/// Runs the chosen scenarios and returns the report.
pub async fn run(options: &BenchOptions) -> anyhow::Result<BenchReport> {
    if options.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if options.duration.is_zero() {
        bail!("--duration must be longer than 0");
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
    let result = run_in(options, &dir, scratch.as_ref().map(|s| s.url.as_str())).await;
    if let Some(db) = scratch {
        let _ = db.drop_database().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The configuration both processes use: the same database, data directory (so the same
/// key file) and public URL (the issuer tokens carry).
fn bench_config(public_url: &str, data_dir: &Path, database_url: Option<String>) -> Config {
    let mut config = Config {
        auth_url: public_url.to_owned(),
        api_url: public_url.to_owned(),
        database_url,
        data_dir: data_dir.to_owned(),
        ..Config::default()
    };
    // The events scenario's receiver listens on loopback.
    config.webhooks.allow_http_loopback = true;
    config
}

async fn run_in(
    options: &BenchOptions,
    dir: &Path,
    database_url: Option<&str>,
) -> anyhow::Result<BenchReport> {
    // The server's address is in the seeded upstream URLs, so it is chosen before seeding.
    let port = child::free_port()?;
    let public_url = format!("http://127.0.0.1:{port}");
    let validated = bench_config(&public_url, dir, database_url.map(str::to_owned)).validate()?;
    let (core, own_store) = store::open(&validated).await?;
    let setup = Setup {
        port,
        public_url: &public_url,
        dir,
        database_url,
        validated: &validated,
        core: &core,
    };
    let result = run_with(options, &setup).await;
    own_store.close().await;
    result
}

/// Where the benchmark runs, decided before anything is seeded.
struct Setup<'a> {
    port: u16,
    public_url: &'a str,
    dir: &'a Path,
    database_url: Option<&'a str>,
    validated: &'a Validated,
    core: &'a Core,
}

async fn run_with(options: &BenchOptions, setup: &Setup<'_>) -> anyhow::Result<BenchReport> {
    let (core, public_url, validated) = (setup.core, setup.public_url, setup.validated);
    let scenarios = dedup(&options.scenarios);
    if scenarios
        .iter()
        .any(|s| matches!(s, Scenario::Direct | Scenario::Relay))
        && options.warmup + options.duration > DIRECT_LIMIT
    {
        eprintln!(
            "trilo bench: warning: direct and relay reuse one gateway assertion per client, \
             which the sample upstream accepts for {DIRECT_LIMIT:?}: expect errors near the end"
        );
    }
    let info = demo::seed(
        core,
        &format!("{public_url}/sample"),
        &format!("{public_url}/callback"),
    )
    .await?;
    let database = core.store().backend();

    let mut loader = preload::Loader::open(&validated.database).await?;
    let preloaded = if options.preload > 0 {
        Some(preload::families(&mut loader, core, &info, options.preload, options.janitor).await?)
    } else {
        None
    };
    let fixture = Fixture::new(core, &info).await?;
    // Each round uses up payloads of its own (codes, cold tokens, rotated families).
    let round_count = options.rounds.max(1);
    let mut prepared = Vec::with_capacity(round_count);
    for _ in 0..round_count {
        let mut round = Vec::with_capacity(scenarios.len());
        for scenario in &scenarios {
            round.push(fixture.prepare(*scenario, options, &mut loader).await?);
        }
        prepared.push(round);
    }
    loader.close().await;
    let events = if scenarios.contains(&Scenario::Events) {
        Some(events::prepare(core, &info).await?)
    } else {
        None
    };

    let mut server = ServerProcess::start(&child::Spawn {
        port: setup.port,
        public_url,
        data_dir: setup.dir,
        database_url: setup.database_url,
        core,
        info: &info,
        janitor: options.janitor,
    })
    .await?;
    let measured = measure_all(
        options,
        &scenarios,
        prepared,
        (&fixture, events.as_ref()),
        &mut server,
    )
    .await;
    let janitor_removed = if options.janitor {
        Some(janitor_removed(&server.base).await?)
    } else {
        None
    };
    server.stop().await;
    let (mut rounds, gateway_added_p50_ms) = measured?;
    for round in &mut rounds {
        set_ratios_to_direct(round);
    }
    let reports = if rounds.len() == 1 {
        rounds.pop().unwrap_or_default()
    } else {
        median_of_rounds(&rounds)
    };
    for report in &reports {
        if let Some(ratio) = report.to_direct {
            eprintln!("trilo bench: {}: {ratio} of direct", report.name);
        }
    }
    let gateway_to_direct = reports
        .iter()
        .find(|s| s.name == Scenario::Gateway.name())
        .and_then(|s| s.to_direct);
    Ok(BenchReport {
        database,
        concurrency: options.concurrency,
        duration_s: options.duration.as_secs_f64(),
        preloaded_families: preloaded.as_ref().map(|p| p.families),
        preload_s: preloaded.as_ref().map(|p| round(p.seconds, 1)),
        janitor_removed,
        scenarios: reports,
        rounds,
        gateway_to_direct,
        gateway_added_p50_ms,
    })
}

/// Sets each scenario's `to_direct` when `direct` ran with a rate above zero.
fn set_ratios_to_direct(reports: &mut [ScenarioReport]) {
    let direct = reports
        .iter()
        .find(|s| s.name == Scenario::Direct.name())
        .map(|s| s.requests_per_s)
        .filter(|rate| *rate > 0.0);
    for report in reports {
        report.to_direct = direct.map(|direct| round(report.requests_per_s / direct, 3));
    }
}

/// The sum of the server's `trilo_janitor_removed_total` samples.
async fn janitor_removed(base: &str) -> anyhow::Result<u64> {
    use http_body_util::BodyExt;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<axum::body::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let response = client.get(format!("{base}/metrics").parse()?).await?;
    if !response.status().is_success() {
        bail!("/metrics answered {}", response.status());
    }
    let body = response.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&body);
    Ok(text
        .lines()
        .filter(|l| l.starts_with("trilo_janitor_removed_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum())
}

/// Runs each round's scenarios against the server with the round's prepared payloads,
/// then the single-client runs behind `gateway_added_p50_ms`. One list of reports per round.
async fn measure_all(
    options: &BenchOptions,
    scenarios: &[Scenario],
    prepared: Vec<Vec<Vec<Payload>>>,
    (fixture, events): (&Fixture<'_>, Option<&events::EventsFixture>),
    server: &mut ServerProcess,
) -> anyhow::Result<(Vec<Vec<ScenarioReport>>, Option<f64>)> {
    let load = Load::new()?;
    let rounds = prepared.len();
    let mut reports = Vec::with_capacity(rounds);
    let mut single_client = Vec::new();
    for (round, payloads_of_round) in prepared.into_iter().enumerate() {
        if rounds > 1 {
            eprintln!("trilo bench: round {} of {rounds}", round + 1);
        }
        let mut round_reports = Vec::with_capacity(scenarios.len());
        for (scenario, payloads) in scenarios.iter().zip(payloads_of_round) {
            if round == 0
                && matches!(scenario, Scenario::Gateway | Scenario::Direct)
                && let Some(first) = payloads.first()
            {
                single_client.push((*scenario, first.clone()));
            }
            let report = match (scenario, events) {
                (Scenario::Events, Some(events)) => measure_events(options, events, server).await?,
                _ => measure_one(options, *scenario, payloads, fixture, server, &load).await?,
            };
            round_reports.push(report);
        }
        reports.push(round_reports);
    }
    let added = added_latency(&load, fixture, server, options, single_client).await?;
    Ok((reports, added))
}

/// Each scenario's figures over several rounds (the same scenarios in the same order in
/// each): medians, except `errors` (summed: an error in any round counts) and
/// `server_peak_rss_mb` (the highest).
fn median_of_rounds(rounds: &[Vec<ScenarioReport>]) -> Vec<ScenarioReport> {
    let Some(first) = rounds.first() else {
        return Vec::new();
    };
    (0..first.len())
        .map(|i| {
            let of = |field: fn(&ScenarioReport) -> f64| {
                median(rounds.iter().map(|round| field(&round[i])).collect())
            };
            // Figures a round may lack: their median when every round has one, to a decimal.
            let of_some = |field: fn(&ScenarioReport) -> Option<f64>| {
                median_of_some(rounds, i, field).map(|value| round(value, 1))
            };
            let ratios: Option<Vec<f64>> = rounds.iter().map(|round| round[i].to_direct).collect();
            ScenarioReport {
                name: first[i].name,
                requests: of(|r| r.requests as f64).round() as u64,
                requests_per_s: round(of(|r| r.requests_per_s), 1),
                p50_ms: round(of(|r| r.p50_ms), 2),
                p90_ms: round(of(|r| r.p90_ms), 2),
                p99_ms: round(of(|r| r.p99_ms), 2),
                p999_ms: round(of(|r| r.p999_ms), 2),
                max_ms: round(of(|r| r.max_ms), 2),
                errors: rounds.iter().map(|round| round[i].errors).sum(),
                server_peak_rss_mb: rounds
                    .iter()
                    .map(|round| round[i].server_peak_rss_mb)
                    .fold(0.0, f64::max),
                server_cpu_us_per_request: round(of(|r| r.server_cpu_us_per_request), 1),
                load_cpu_us_per_request: round(of(|r| r.load_cpu_us_per_request), 1),
                database_cpu_us_per_request: of_some(|r| r.database_cpu_us_per_request),
                server_cpu_wait_us_per_request: of_some(|r| r.server_cpu_wait_us_per_request),
                load_cpu_wait_us_per_request: of_some(|r| r.load_cpu_wait_us_per_request),
                database_cpu_wait_us_per_request: of_some(|r| r.database_cpu_wait_us_per_request),
                machine_idle_pct: of_some(|r| r.machine_idle_pct),
                to_direct: ratios.map(|ratios| round(median(ratios), 3)),
            }
        })
        .collect()
}

/// The median of scenario `i`'s `field` over the rounds, when every round has one.
fn median_of_some(
    rounds: &[Vec<ScenarioReport>],
    i: usize,
    field: fn(&ScenarioReport) -> Option<f64>,
) -> Option<f64> {
    let values: Option<Vec<f64>> = rounds.iter().map(|round| field(&round[i])).collect();
    values.map(median)
}

/// The middle value (the mean of the two middle ones for an even count); 0 for none.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

async fn measure_one(
    options: &BenchOptions,
    scenario: Scenario,
    payloads: Vec<Payload>,
    fixture: &Fixture<'_>,
    server: &mut ServerProcess,
    load: &Load,
) -> anyhow::Result<ScenarioReport> {
    let jobs = fixture.jobs(scenario, server, payloads).await?;
    eprintln!(
        "trilo bench: {}, {} clients, {:?} warm-up + {:?}",
        scenario.name(),
        options.concurrency,
        options.warmup,
        options.duration
    );
    let (measured, spent) = on_server(
        server,
        options,
        load.measure(scenario, jobs, options.warmup, options.duration),
    )
    .await?;
    let report = scenario_report(scenario, options.duration, measured, spent, server);
    eprintln!(
        "trilo bench: {}: {} requests/s, p50 {} ms, p99 {} ms, {} errors, server peak RSS {} \
         MiB; CPU a request: server {} µs, load generator {} µs{}; waiting for a CPU: {}; \
         machine idle {}",
        report.name,
        report.requests_per_s,
        report.p50_ms,
        report.p99_ms,
        report.errors,
        report.server_peak_rss_mb,
        report.server_cpu_us_per_request,
        report.load_cpu_us_per_request,
        report
            .database_cpu_us_per_request
            .map(|us| format!(", database {us} µs"))
            .unwrap_or_default(),
        waits_of(&report),
        report
            .machine_idle_pct
            .map_or_else(|| "unknown".to_owned(), |pct| format!("{pct} %")),
    );
    Ok(report)
}

/// The progress line's account of the waits for a CPU, a request's worth each.
fn waits_of(report: &ScenarioReport) -> String {
    let parties = [
        ("server", report.server_cpu_wait_us_per_request),
        ("load generator", report.load_cpu_wait_us_per_request),
        ("database", report.database_cpu_wait_us_per_request),
    ];
    let known: Vec<String> = parties
        .iter()
        .filter_map(|(party, us)| Some(format!("{party} {} µs", (*us)?)))
        .collect();
    if known.is_empty() {
        "unknown".to_owned()
    } else {
        known.join(", ")
    }
}

/// The events scenario, measured at its receiver rather than by request.
async fn measure_events(
    options: &BenchOptions,
    events: &events::EventsFixture,
    server: &mut ServerProcess,
) -> anyhow::Result<ScenarioReport> {
    eprintln!(
        "trilo bench: events, {} producers, {:?} warm-up + {:?}",
        options.concurrency, options.warmup, options.duration
    );
    let base = server.base.clone();
    let run = events::measure(
        events,
        &base,
        options.concurrency,
        options.warmup,
        options.duration,
    );
    let (measured, spent) = on_server(server, options, run).await?;
    let report = scenario_report(Scenario::Events, options.duration, measured, spent, server);
    eprintln!(
        "trilo bench: events: {} deliveries/s, p50 {} ms, p99 {} ms from commit, {} errors",
        report.requests_per_s, report.p50_ms, report.p99_ms, report.errors
    );
    Ok(report)
}

/// The scenarios in order, each once.
fn dedup(scenarios: &[Scenario]) -> Vec<Scenario> {
    let mut out = Vec::new();
    for scenario in scenarios {
        if !out.contains(scenario) {
            out.push(*scenario);
        }
    }
    out
}

/// Runs `gateway` and `direct` again with one client each and returns the difference of
/// their medians: with many clients the median is mostly time spent queueing.
async fn added_latency(
    load: &Load,
    fixture: &Fixture<'_>,
    server: &ServerProcess,
    options: &BenchOptions,
    runs: Vec<(Scenario, Payload)>,
) -> anyhow::Result<Option<f64>> {
    if runs.len() != 2 {
        return Ok(None);
    }
    let mut medians = Vec::new();
    for (scenario, payload) in runs {
        eprintln!(
            "trilo bench: {} with one client, for gateway_added_p50_ms",
            scenario.name()
        );
        // Made again: the direct call's assertion is short-lived.
        let jobs = fixture.jobs(scenario, server, vec![payload]).await?;
        let measured = load
            .measure(
                scenario,
                jobs,
                SINGLE_CLIENT_WARMUP.min(options.warmup),
                SINGLE_CLIENT_RUN.min(options.duration),
            )
            .await?;
        if measured.errors > 0 || measured.latencies.is_empty() {
            bail!(
                "the single-client {} run failed: {}",
                scenario.name(),
                measured.first_error.unwrap_or_default()
            );
        }
        let median = load::percentile(&measured.sorted(), 0.50);
        medians.push((scenario, median.as_secs_f64() * 1000.0));
    }
    let median = |wanted: Scenario| medians.iter().find(|(s, _)| *s == wanted).map(|m| m.1);
    let (Some(gateway), Some(direct)) = (median(Scenario::Gateway), median(Scenario::Direct))
    else {
        return Ok(None);
    };
    Ok(Some(round(gateway - direct, 2)))
}

/// Runs one measured load against the server: its peak RSS counted afresh, the CPU time
/// spent over the measured part (from the end of the warm-up to `duration` later, as the
/// load generator counts; see `cpu`), and a server that died under the load an error.
async fn on_server(
    server: &mut ServerProcess,
    options: &BenchOptions,
    run: impl Future<Output = anyhow::Result<Measured>>,
) -> anyhow::Result<(Measured, Spent)> {
    server.reset_peak_rss();
    let (pid, database) = (server.pid(), server.database.clone());
    // Off the load generator's workers: finding the database's backends reads all of /proc.
    let sample = move || {
        let database = database.clone();
        async move {
            tokio::task::spawn_blocking(move || CpuSample::take(pid, database.as_deref()))
                .await
                .ok()
        }
    };
    let cpu = async {
        tokio::time::sleep(options.warmup).await;
        let before = sample().await;
        tokio::time::sleep(options.duration).await;
        match (sample().await, before) {
            (Some(after), Some(before)) => after.spent_since(&before),
            _ => Spent::default(),
        }
    };
    let (measured, spent) = tokio::join!(run, cpu);
    let measured = measured?;
    server.check_running()?;
    Ok((measured, spent))
}

fn scenario_report(
    scenario: Scenario,
    duration: Duration,
    measured: Measured,
    spent: Spent,
    server: &ServerProcess,
) -> ScenarioReport {
    if measured.exhausted > 0 {
        eprintln!(
            "trilo bench: warning: {} of {}'s clients used up their prepared {} before the \
             end and stopped early; requests_per_s understates the server",
            measured.exhausted,
            scenario.name(),
            match scenario {
                Scenario::CodeExchange => "codes",
                _ => "tokens",
            }
        );
    }
    if let Some(error) = &measured.first_error {
        eprintln!(
            "trilo bench: {}: {} errors, the first: {error}",
            scenario.name(),
            measured.errors
        );
    }
    let latencies = measured.sorted();
    let ms = |d: Duration| round(d.as_secs_f64() * 1000.0, 2);
    let requests = latencies.len() as u64;
    let per_request = |cpu: Option<Duration>| {
        cpu.filter(|_| requests > 0)
            .map(|cpu| round(cpu.as_secs_f64() * 1e6 / requests as f64, 1))
    };
    ScenarioReport {
        name: scenario.name(),
        requests,
        requests_per_s: round(requests as f64 / duration.as_secs_f64(), 1),
        p50_ms: ms(load::percentile(&latencies, 0.50)),
        p90_ms: ms(load::percentile(&latencies, 0.90)),
        p99_ms: ms(load::percentile(&latencies, 0.99)),
        p999_ms: ms(load::percentile(&latencies, 0.999)),
        max_ms: latencies.last().copied().map_or(0.0, ms),
        errors: measured.errors,
        server_peak_rss_mb: server.peak_rss_mb().map_or(0.0, |mb| round(mb, 1)),
        server_cpu_us_per_request: per_request(spent.server).unwrap_or(0.0),
        load_cpu_us_per_request: per_request(spent.load).unwrap_or(0.0),
        database_cpu_us_per_request: per_request(spent.database),
        server_cpu_wait_us_per_request: per_request(spent.server_waited),
        load_cpu_wait_us_per_request: per_request(spent.load_waited),
        database_cpu_wait_us_per_request: per_request(spent.database_waited),
        machine_idle_pct: spent.idle_pct.map(|pct| round(pct, 1)),
        to_direct: None,
    }
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_scenarios_run_once_in_order() {
        use Scenario::*;
        assert_eq!(
            dedup(&[Gateway, Direct, Gateway, CodeExchange]),
            vec![Gateway, Direct, CodeExchange]
        );
    }

    #[test]
    fn rounding_keeps_the_asked_decimals() {
        assert_eq!(round(1.234_56, 2), 1.23);
        assert_eq!(round(1_536.0 / 1024.0, 1), 1.5);
    }

    #[test]
    fn names_are_the_command_line_values() {
        use clap::ValueEnum;
        for scenario in Scenario::ALL {
            let value = scenario
                .to_possible_value()
                .map(|v| v.get_name().to_owned());
            assert_eq!(value.as_deref(), Some(scenario.name()));
        }
    }

    fn report(scenario: Scenario, requests_per_s: f64) -> ScenarioReport {
        ScenarioReport {
            name: scenario.name(),
            requests: 1,
            requests_per_s,
            p50_ms: 1.0,
            p90_ms: 1.0,
            p99_ms: 1.0,
            p999_ms: 1.0,
            max_ms: 1.0,
            errors: 0,
            server_peak_rss_mb: 1.0,
            server_cpu_us_per_request: 1.0,
            load_cpu_us_per_request: 1.0,
            database_cpu_us_per_request: None,
            server_cpu_wait_us_per_request: None,
            load_cpu_wait_us_per_request: None,
            database_cpu_wait_us_per_request: None,
            machine_idle_pct: None,
            to_direct: None,
        }
    }

    #[test]
    fn each_scenario_is_set_against_direct_when_direct_ran() {
        use Scenario::*;
        let mut reports = vec![
            report(RefreshRotation, 9_000.0),
            report(Direct, 12_000.0),
            report(GatewayCold, 4_000.0),
        ];
        set_ratios_to_direct(&mut reports);
        let ratios: Vec<_> = reports.iter().map(|r| r.to_direct).collect();
        assert_eq!(ratios, [Some(0.75), Some(1.0), Some(0.333)]);

        let mut without_direct = vec![report(RefreshRotation, 9_000.0)];
        set_ratios_to_direct(&mut without_direct);
        assert_eq!(without_direct[0].to_direct, None);
        let mut direct_failed = vec![report(Gateway, 9_000.0), report(Direct, 0.0)];
        set_ratios_to_direct(&mut direct_failed);
        assert_eq!(direct_failed[0].to_direct, None);
    }

    #[test]
    fn rounds_are_summed_up_by_their_medians() {
        use Scenario::*;
        let round = |refresh: f64, direct: f64, errors: u64, rss: f64| {
            let mut reports = vec![report(RefreshRotation, refresh), report(Direct, direct)];
            reports[0].errors = errors;
            reports[0].server_peak_rss_mb = rss;
            reports[0].database_cpu_us_per_request = Some(rss / 2.0);
            reports[0].server_cpu_wait_us_per_request = Some(rss / 4.0);
            reports[0].load_cpu_wait_us_per_request = Some(rss / 5.0);
            reports[0].database_cpu_wait_us_per_request = Some(rss / 20.0);
            reports[0].machine_idle_pct = Some(rss / 10.0);
            set_ratios_to_direct(&mut reports);
            reports
        };
        let rounds = [
            round(9_000.0, 12_000.0, 0, 40.0),
            round(6_000.0, 10_000.0, 2, 70.0),
            round(10_000.0, 10_000.0, 1, 50.0),
        ];
        let summary = median_of_rounds(&rounds);
        assert_eq!(summary.len(), 2);
        assert_eq!(summary[0].name, "refresh-rotation");
        assert_eq!(summary[0].requests_per_s, 9_000.0);
        assert_eq!(summary[1].requests_per_s, 10_000.0);
        // The median of the rounds' ratios (0.75, 0.6, 1.0), not the ratio of the medians.
        assert_eq!(summary[0].to_direct, Some(0.75));
        assert_eq!(summary[0].errors, 3);
        assert_eq!(summary[0].server_peak_rss_mb, 70.0);
        assert_eq!(summary[0].database_cpu_us_per_request, Some(25.0));
        assert_eq!(summary[0].server_cpu_wait_us_per_request, Some(12.5));
        assert_eq!(summary[0].load_cpu_wait_us_per_request, Some(10.0));
        assert_eq!(summary[0].database_cpu_wait_us_per_request, Some(2.5));
        assert_eq!(summary[0].machine_idle_pct, Some(5.0));
        // A figure some round lacks has no median.
        assert_eq!(summary[1].database_cpu_us_per_request, None);
        assert_eq!(summary[1].database_cpu_wait_us_per_request, None);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
