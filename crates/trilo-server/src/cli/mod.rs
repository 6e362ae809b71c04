//! The `trilo` command line: `serve`, `migrate`, `demo` and `admin …`.

mod admin;
mod api_token;
mod container;
mod keys;
mod run;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use run::run;

/// trilo: a self-hosted three-legged OAuth platform: authorization server, consent pages,
/// API host and admin tools in one binary.
#[derive(Debug, Parser)]
#[command(name = "trilo", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes, so admin commands can work on a running server's database.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalOptions {
    /// TOML configuration file (environment variables TRILO__SECTION__KEY override it).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (SQLite database, generated key file).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST:PORT/DB.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server with the configured database.
    Serve {
        /// Address to listen on (overrides the `listen` key).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Run a demo: a fresh embedded database with sample products, two sites, two users and
    /// an app; prints URLs and credentials and writes them to DIR/demo.json.
    Demo {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Manage users, sites, products, memberships and apps.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Operation catalogs read from OpenAPI 3 descriptions.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Load benchmark: start a server on a scratch database, drive hot paths over loopback
    /// at a fixed concurrency for a bounded time, print a JSON report.
    Bench(BenchArgs),
    /// The server `trilo bench` starts and measures (internal).
    #[command(hide = true)]
    BenchServer {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR")]
        listen: String,
        /// The auth and API URL the prepared tokens name (their issuer).
        #[arg(long, value_name = "URL")]
        public_url: String,
        /// Run the janitor this often (default: not at all).
        #[arg(long, value_name = "DURATION")]
        janitor_every: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Read a description as `admin product import` would and report what the gateway will
    /// enforce: operations, operations open to apps, scopes, templates it cannot parse
    /// (exit status 1 when there are any).
    Check {
        /// The OpenAPI JSON file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Print `{"operations", "app_operations", "scopes"}` as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The backend: `sqlite` (a temporary file) or `postgres` (a scratch database on the
    /// server of `--database-url` or `TRILO_TEST_POSTGRES_URL`, dropped afterwards).
    #[arg(long, value_enum, default_value_t = BenchDatabase::Sqlite)]
    pub database: BenchDatabase,
    /// Scenarios to run, in order (repeat the flag); default: all of them.
    #[arg(long = "scenario", value_enum)]
    pub scenarios: Vec<crate::bench::Scenario>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Measured time per scenario, e.g. `10s`.
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Unmeasured warm-up before each scenario, e.g. `2s`.
    #[arg(long, default_value = "2s")]
    pub warmup: String,
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
