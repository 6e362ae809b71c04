//! The `trilo` binary.

use clap::Parser;
use tracing_subscriber::EnvFilter;
use trilo_server::cli::{Cli, run};

/// Many small short-lived allocations per request (headers, JSON, tokens): mimalloc
/// serves them faster than glibc's malloc and returns memory as readily.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let filter =
        EnvFilter::try_from_env("TRILO_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let json = std::env::var("TRILO_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trilo: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
