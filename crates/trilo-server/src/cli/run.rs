//! Running the commands.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio::net::TcpListener;
use trilo_protocol::authorize::append_query;
use trilo_protocol::operations::OperationCatalog;

use super::{CatalogCommand, Cli, Command, GlobalOptions};
use crate::app::{build, serve};
use crate::config::{Config, Validated};
use crate::db::open_store;
use crate::demo;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { listen } => {
            let mut config = load_config(&cli.global)?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            let validated = config.validate()?;
            let listener = TcpListener::bind(validated.listen)
                .await
                .with_context(|| format!("listening on {}", validated.listen))?;
            let server = build(&validated).await?;
            tracing::info!(listen = %validated.listen, backend = server.core.backend_name(), "trilo is serving");
            serve(listener, server.router, validated.listener.clone()).await
        }
        Command::Migrate => {
            let validated = load_config(&cli.global)?.validate()?;
            open_store(&validated.database, true).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Demo { listen } => run_demo(&cli.global, &listen).await,
        Command::Admin(command) => {
            let validated = load_config(&cli.global)?.validate()?;
            super::admin::run(&validated, command).await
        }
        Command::Catalog(CatalogCommand::Check { file, json }) => check_catalog(&file, json),
        #[cfg(feature = "bench")]
        Command::Bench(args) => crate::bench::command::run(&cli.global, args).await,
        #[cfg(feature = "bench")]
        Command::BenchServer(args) => crate::bench::command::serve(cli.global, args).await,
    }
}

fn check_catalog(file: &Path, json: bool) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let report = OperationCatalog::from_openapi(&doc)
        .with_context(|| format!("reading {}", file.display()))?
        .report();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} operations, {} open to apps, {} scopes",
            report.operations,
            report.app_operations,
            report.scopes.len()
        );
        for template in &report.unparsed {
            println!("cannot parse: {template}");
        }
    }
    if !report.unparsed.is_empty() {
        anyhow::bail!("{} templates could not be parsed", report.unparsed.len());
    }
    Ok(())
}

/// The configuration file and environment, then the command-line options on top.
pub fn load_config(global: &GlobalOptions) -> anyhow::Result<Config> {
    let mut config = Config::load(global.config.as_deref())?;
    if let Some(dir) = &global.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(url) = &global.database_url {
        config.database_url = Some(url.clone());
    }
    Ok(config)
}

/// The reference platform's API audience, which the demo also accepts.
pub const REFERENCE_AUDIENCE: &str = "api.atlassian.com";

async fn run_demo(global: &GlobalOptions, listen: &str) -> anyhow::Result<()> {
    let mut config = load_config(global)?;
    if global.data_dir.is_none() && std::env::var_os("TRILO__DATA_DIR").is_none() {
        config.data_dir = PathBuf::from("trilo-demo");
    }
    // The demo always runs on its own fresh embedded database.
    config.database_url = None;
    config.migrate_on_start = true;
    // Developers try webhooks with a receiver on their own machine.
    if std::env::var_os("TRILO__WEBHOOKS__ALLOW_HTTP_LOOPBACK").is_none() {
        config.webhooks.allow_http_loopback = true;
    }
    // Reset links are written to a file in the data directory rather than sent.
    if config.mail.smtp_relay.is_empty() && config.mail.file.is_none() {
        config.mail.file = Some(config.data_dir.join("mail.log"));
    }
    // Alice runs the demo: she gets the operator console (sites, app review).
    if config.operators.is_empty() {
        config.operators = vec![demo::DEMO_OPERATOR.to_owned()];
    }
    // Clients written for the reference often hard-code its audience.
    if config.audience_aliases.is_empty() {
        config.audience_aliases = vec![REFERENCE_AUDIENCE.to_owned()];
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let base = format!("http://{}", listener.local_addr()?);
    config.listen = listener.local_addr()?.to_string();
    if std::env::var_os("TRILO__AUTH_URL").is_none() {
        config.auth_url = base.clone();
    }
    if std::env::var_os("TRILO__API_URL").is_none() {
        config.api_url = base.clone();
    }
    let validated: Validated = config.validate()?;
    fresh_demo_dir(&validated.config.data_dir)?;
    let server = build(&validated).await?;
    let callback = format!(
        "{}/demo/callback",
        validated.config.auth_url.trim_end_matches('/')
    );
    let info = demo::seed(&server.core, &format!("{base}/sample"), &callback).await?;
    let json_path = validated.config.data_dir.join("demo.json");
    std::fs::write(&json_path, serde_json::to_vec_pretty(&info)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    print_banner(&info, &json_path);
    let router = demo::with_sample_products(server.router, &server.core)?;
    serve(
        listener,
        demo::with_callback_page(router),
        validated.listener.clone(),
    )
    .await
}

/// Removes what an earlier demo left in the directory (only the demo's own files).
fn fresh_demo_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for name in [
        "trilo.db",
        "trilo.db-wal",
        "trilo.db-shm",
        "demo.json",
        "master.key",
    ] {
        let path = dir.join(name);
        if path.exists() {
            std::fs::remove_file(&path)
                .with_context(|| format!("removing the old demo file {}", path.display()))?;
        }
    }
    Ok(())
}

fn print_banner(info: &demo::DemoInfo, json_path: &Path) {
    let app = &info.apps[0];
    let authorize = append_query(
        &format!("{}/authorize", info.auth_url.trim_end_matches('/')),
        &[
            ("audience", &info.audience),
            ("client_id", &app.client_id),
            ("scope", &app.scopes.join(" ")),
            ("redirect_uri", &app.callback_url),
            ("state", "demo-state"),
            ("response_type", "code"),
            ("prompt", "consent"),
        ],
    );
    println!("trilo demo is running\n");
    println!("  auth URL      {}", info.auth_url);
    println!("  API URL       {}", info.api_url);
    println!("  audience      {}\n", info.audience);
    for user in &info.users {
        println!("  user          {} / {}", user.email, user.password);
    }
    for site in &info.sites {
        println!(
            "  site          {} ({}) products: {}",
            site.name,
            site.cloud_id,
            site.products.join(", ")
        );
    }
    println!("\n  app client_id     {}", app.client_id);
    println!("  app client_secret {}", app.client_secret);
    println!("  app callback      {}", app.callback_url);
    println!("  app scopes        {}\n", app.scopes.join(" "));
    println!("  Open this URL in a browser to start the 3LO flow:\n  {authorize}\n");
    let auth = info.auth_url.trim_end_matches('/');
    println!("  Your account      {auth}/account");
    println!("  Developer console {auth}/developer");
    println!(
        "  Site admin        {auth}/admin (alice administers {})",
        info.sites[0].name
    );
    println!("  Operator console  {auth}/operator (alice: every site, app review)");
    println!(
        "  Webhooks          add one under an app's Webhooks tab (http://127.0.0.1 receivers \
         work in the demo); creating an issue through the gateway sends jira:issue_created\n"
    );
    if let Some(dir) = json_path.parent() {
        println!(
            "  Mail (password reset links) is written to {}",
            dir.join("mail.log").display()
        );
    }
    println!("  Details for scripts: {}", json_path.display());
    println!("  Stop with Ctrl-C.");
}
