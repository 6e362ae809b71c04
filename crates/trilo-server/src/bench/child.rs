//! The server under load runs as a child process (`trilo bench-server`), so its memory is
//! measured apart from the load generator's: the parent reads its peak RSS from `/proc`
//! after each scenario, having reset it before.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdin, ChildStdout};
use trilo_core::Core;

use super::bench_config;
use crate::app::{build, serve_forever};
use crate::demo::{self, DemoInfo};

/// Ports tried before giving up: another process may take the chosen port before the
/// server binds it.
const ATTEMPTS: usize = 3;
/// How long the server may take to open the database and start listening.
const STARTUP: Duration = Duration::from_secs(60);

/// A free loopback port (free now; the server binds it a moment later).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// What the server process is started with.
pub struct Spawn<'a> {
    /// The port the seeded upstream URLs name.
    pub port: u16,
    pub public_url: &'a str,
    pub data_dir: &'a Path,
    pub database_url: Option<&'a str>,
    /// To point the upstreams at another port when the first is taken.
    pub core: &'a Core,
    pub info: &'a DemoInfo,
    /// Run the server's janitor every second (`--janitor`).
    pub janitor: bool,
}

/// The running server; dropping it kills the process.
pub struct ServerProcess {
    child: Child,
    pid: u32,
    /// `http://127.0.0.1:PORT`, where it listens.
    pub base: String,
    /// `127.0.0.1:PORT`, where its byte relay to `base` listens (the `relay` scenario).
    pub relay: SocketAddr,
    /// The PostgreSQL database it serves, by name; `None` on SQLite.
    pub database: Option<String>,
    /// Closed when the parent goes, which makes the server exit (see [`serve_child`]).
    _stdin: Option<ChildStdin>,
    _stdout: Lines<BufReader<ChildStdout>>,
}

impl ServerProcess {
    /// Starts `trilo bench-server` and waits until it listens.
    pub async fn start(spawn: &Spawn<'_>) -> anyhow::Result<ServerProcess> {
        let mut port = spawn.port;
        let mut attempt = 1;
        loop {
            match Self::start_on(spawn, port).await {
                Ok(server) => return Ok(server),
                Err(e) if attempt < ATTEMPTS => {
                    eprintln!("trilo bench: the server did not start on port {port} ({e:#})");
                    port = free_port()?;
                    point_upstreams(spawn.core, spawn.info, port).await?;
                    attempt += 1;
                }
                Err(e) => return Err(e.context("starting the benchmark's server")),
            }
        }
    }

    async fn start_on(spawn: &Spawn<'_>, port: u16) -> anyhow::Result<ServerProcess> {
        let mut command = tokio::process::Command::new(std::env::current_exe()?);
        command
            .arg("bench-server")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--public-url")
            .arg(spawn.public_url)
            .arg("--data-dir")
            .arg(spawn.data_dir);
        if let Some(url) = spawn.database_url {
            command.arg("--database-url").arg(url);
        }
        if spawn.janitor {
            command.args(["--janitor-every", "1s"]);
        }
        // Request logs would compete with the server for the CPU it is measured on.
        if std::env::var_os("TRILO_LOG").is_none() {
            command.env("TRILO_LOG", "warn");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting trilo bench-server")?;
        let pid = child.id().context("the server exited at once")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("no pipe from the server")?;
        let mut server = ServerProcess {
            child,
            pid,
            base: String::new(),
            relay: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: spawn.database_url.and_then(database_name),
            _stdin: stdin,
            _stdout: BufReader::new(stdout).lines(),
        };
        let address = server.printed_address().await?;
        server.base = format!("http://{address}");
        server.relay = server.printed_address().await?;
        Ok(server)
    }

    /// The next address the server prints on stdout once it listens there.
    async fn printed_address(&mut self) -> anyhow::Result<SocketAddr> {
        let line = match tokio::time::timeout(STARTUP, self._stdout.next_line()).await {
            Err(_) => bail!("the server did not listen within {STARTUP:?}"),
            Ok(line) => line?,
        };
        let Some(line) = line else {
            let status = self.child.wait().await?;
            bail!("the server exited before listening ({status})");
        };
        line.trim()
            .parse()
            .with_context(|| format!("the server printed {line:?}, not an address"))
    }

    /// Starts the peak-RSS count afresh (Linux: `clear_refs` 5 resets `VmHWM`).
    pub fn reset_peak_rss(&self) {
        // Where this is refused the peak covers the process's life so far.
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5");
    }

    /// The peak resident memory since the last reset, in MiB.
    pub fn peak_rss_mb(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        peak_rss_kib(&status).map(|kib| kib as f64 / 1024.0)
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Fails when the server has exited (a crash under load must not pass as a result).
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            Some(status) => bail!("the benchmark's server exited ({status})"),
            None => Ok(()),
        }
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The database a `postgres://…/NAME` URL names.
fn database_name(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    if !url.scheme().starts_with("postgres") {
        return None;
    }
    let name = url.path_segments()?.next()?;
    (!name.is_empty()).then(|| name.to_owned())
}

/// `VmHWM` of a `/proc/PID/status` text, in KiB.
fn peak_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
}

/// Points every demo site's products at the sample upstreams on `port`.
async fn point_upstreams(core: &Core, info: &DemoInfo, port: u16) -> anyhow::Result<()> {
    for site in &info.sites {
        for product in &site.products {
            let upstream = format!("http://127.0.0.1:{port}/sample/{product}");
            core.add_product_to_site(&site.cloud_id, product, &upstream)
                .await?;
        }
    }
    Ok(())
}

/// `trilo bench-server`: serves the prepared database with the sample products on
/// `listen` and prints the bound address on stdout, then the address of its byte relay to
/// it (see [`relay_forever`]). It exits when its stdin closes, so it never outlives the
/// `trilo bench` that started it.
pub async fn serve_child(
    data_dir: PathBuf,
    database_url: Option<String>,
    listen: &str,
    public_url: &str,
    janitor_every: Option<String>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let mut config = bench_config(public_url, &data_dir, database_url);
    // The parent has migrated the database.
    config.migrate_on_start = false;
    match janitor_every {
        Some(every) => config.janitor.every = every,
        None => config.janitor.enabled = false,
    }
    let server = build(&config.validate()?).await?;
    let router = demo::with_sample_products(server.router, &server.core)?;
    let address = listener.local_addr()?;
    let relay = TcpListener::bind((address.ip(), 0))
        .await
        .context("listening for the relay")?;
    println!("{address}");
    println!("{}", relay.local_addr()?);
    tokio::spawn(relay_forever(relay, address));
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    serve_forever(listener, router).await
}

/// The `relay` scenario's hop: each connection accepted on `listener` is joined to a new
/// one to `target` and bytes are copied both ways, unread. It is the least any gateway
/// with a second loopback hop can do (two more reads and writes a call, no HTTP), so
/// `relay` over `direct` is the ceiling for `gateway` over `direct` on this machine.
async fn relay_forever(listener: TcpListener, target: SocketAddr) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            // Out of file descriptors and the like: wait instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tokio::spawn(async move {
            let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_the_urls_path() {
        assert_eq!(
            database_name("postgres://postgres@127.0.0.1:5432/trilo_test_1a?sslmode=disable")
                .as_deref(),
            Some("trilo_test_1a")
        );
        assert_eq!(database_name("postgresql://h/db").as_deref(), Some("db"));
        assert_eq!(database_name("postgres://h/"), None);
        assert_eq!(database_name("sqlite:///tmp/x.db"), None);
    }

    #[test]
    fn the_peak_is_read_from_vm_hwm() {
        let status = "Name:\ttrilo\nVmPeak:\t  900000 kB\nVmHWM:\t   52428 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(peak_rss_kib(status), Some(52_428));
        assert_eq!(peak_rss_kib("Name:\ttrilo\n"), None);
    }
}
