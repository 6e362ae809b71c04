//! `trilo bench` and `trilo bench-server` on the command line (feature `bench`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{BenchOptions, Scenario};
use crate::cli::GlobalOptions;
use crate::config::parse_duration;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The backend: `sqlite` (a temporary file) or `postgres` (a scratch database on the
    /// server of `--database-url` or `TRILO_TEST_POSTGRES_URL`, dropped afterwards).
    #[arg(long, value_enum, default_value_t = BenchDatabase::Sqlite)]
    pub database: BenchDatabase,
    /// Scenarios to run, in order (repeat the flag); default: all of them.
    #[arg(long = "scenario", value_enum)]
    pub scenarios: Vec<Scenario>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Measured time per scenario, e.g. `10s`.
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Unmeasured warm-up before each scenario, e.g. `2s`.
    #[arg(long, default_value = "2s")]
    pub warmup: String,
    /// Run the scenarios N times in turn (each round with payloads of its own) and report
    /// each figure's median over the rounds, with every round's figures under `rounds`.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=100))]
    pub rounds: u16,
    /// Load N accounts, each with a grant and a token family, before the scenarios.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preload: u64,
    /// Run the janitor every second in the server under load, with a backlog: each
    /// preloaded family's first refresh token is then past its lifetime, so the janitor
    /// removes one row per family while the scenarios run.
    #[arg(long)]
    pub janitor: bool,
    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchDatabase {
    Sqlite,
    Postgres,
}

#[derive(Debug, Args)]
pub struct BenchServerArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// The auth and API URL the prepared tokens name (their issuer).
    #[arg(long, value_name = "URL")]
    public_url: String,
    /// Run the janitor this often (default: not at all).
    #[arg(long, value_name = "DURATION")]
    janitor_every: Option<String>,
}

/// Runs the benchmark and prints (and with `--json`, writes) its report.
pub async fn run(global: &GlobalOptions, args: BenchArgs) -> anyhow::Result<()> {
    let database_url = match args.database {
        BenchDatabase::Sqlite => None,
        BenchDatabase::Postgres => Some(
            global
                .database_url
                .clone()
                .or_else(|| std::env::var("TRILO_TEST_POSTGRES_URL").ok())
                .context("--database postgres needs --database-url or TRILO_TEST_POSTGRES_URL")?,
        ),
    };
    let options = BenchOptions {
        database_url,
        scenarios: if args.scenarios.is_empty() {
            Scenario::ALL.to_vec()
        } else {
            args.scenarios
        },
        concurrency: args.concurrency,
        duration: std_duration("--duration", &args.duration)?,
        warmup: std_duration("--warmup", &args.warmup)?,
        rounds: usize::from(args.rounds),
        preload: args.preload,
        janitor: args.janitor,
    };
    let report = super::run(&options).await?;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.json {
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{json}");
    Ok(())
}

/// The measured server the benchmark starts as a child process.
pub async fn serve(global: GlobalOptions, args: BenchServerArgs) -> anyhow::Result<()> {
    let data_dir = global
        .data_dir
        .context("trilo bench-server needs --data-dir")?;
    super::serve_child(
        data_dir,
        global.database_url,
        &args.listen,
        &args.public_url,
        args.janitor_every,
    )
    .await
}

/// A command-line duration (`500ms`, `10s`, `2m`) as a std duration.
fn std_duration(flag: &'static str, text: &str) -> anyhow::Result<std::time::Duration> {
    let parsed = parse_duration(flag, text)?;
    std::time::Duration::try_from(parsed).with_context(|| format!("{flag} must not be negative"))
}
