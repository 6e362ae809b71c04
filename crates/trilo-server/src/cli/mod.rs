//! The `trilo` command line: `serve`, `migrate`, `demo` and `admin …`.

mod admin;
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
    /// Load benchmarks: start a server on a scratch database, drive one hot path over
    /// loopback for a bounded time, print throughput and latency percentiles as JSON.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Refresh-token rotations (`POST /oauth/token`), one token family per worker.
    Refresh(BenchArgs),
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Measured time, e.g. `10s`.
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Unmeasured warm-up before it, e.g. `2s`.
    #[arg(long, default_value = "2s")]
    pub warmup: String,
    /// `postgres://…` to benchmark PostgreSQL (a scratch database is created on that
    /// server and dropped afterwards); without it, SQLite in a temporary directory.
    #[arg(long = "postgres", value_name = "URL")]
    pub postgres_url: Option<String>,
}
