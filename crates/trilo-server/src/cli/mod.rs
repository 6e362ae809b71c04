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
    /// at a fixed concurrency for a bounded time, print a JSON report. Only in builds with
    /// the `bench` feature.
    #[cfg(feature = "bench")]
    Bench(crate::bench::command::BenchArgs),
    /// The server `trilo bench` starts and measures (internal).
    #[cfg(feature = "bench")]
    #[command(hide = true)]
    BenchServer(crate::bench::command::BenchServerArgs),
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
