//! `trilo serve` as a separate process on the database of a [`TestApp`]: for tests that
//! need several instances or that kill one with SIGKILL.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::support::{Fetch, TestApp};

/// A running `trilo serve` sharing the test app's database, key file and issuer.
pub struct ServerProcess {
    pub base: String,
    listen: String,
    data_dir: std::path::PathBuf,
    database_url: String,
    issuer: String,
    audience: String,
    /// Extra environment, e.g. `TRILO__GATEWAY__CACHE_TTL`.
    env: Vec<(String, String)>,
    child: Option<Child>,
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl ServerProcess {
    /// Starts an instance and waits until it answers `/healthz`.
    pub async fn start(app: &TestApp) -> ServerProcess {
        Self::start_with_env(app, &[]).await
    }

    /// Starts an instance with extra environment variables.
    pub async fn start_with_env(app: &TestApp, env: &[(&str, &str)]) -> ServerProcess {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut server = ServerProcess {
            base: format!("http://{listen}"),
            listen,
            data_dir: app.data_dir().to_owned(),
            database_url: app.database_url.clone(),
            issuer: app.base.clone(),
            audience: app.demo.audience.clone(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            child: None,
        };
        server.spawn().await;
        server
    }

    /// What the process wrote to its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(
            self.data_dir
                .join(format!("serve-{}.log", self.listen.replace(':', "_"))),
        )
        .unwrap_or_default()
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(
                self.data_dir
                    .join(format!("serve-{}.log", self.listen.replace(':', "_"))),
            )
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_trilo"))
            .args(["serve", "--listen", &self.listen])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--database-url", &self.database_url])
            .env("TRILO__AUTH_URL", &self.issuer)
            .env("TRILO__API_URL", &self.issuer)
            .env("TRILO__AUDIENCE", &self.audience)
            .env("TRILO_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = reqwest::Client::new();
        loop {
            let up = client
                .get(format!("{}/healthz", self.base))
                .timeout(Duration::from_millis(500))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return;
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("trilo serve exited with {status}; see the serve-*.log in the data dir");
            }
            assert!(
                Instant::now() < deadline,
                "trilo serve did not start in 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush, whatever was in flight is lost.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// Starts the instance again on the same address.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }
}

/// `TRILO_LOG_FORMAT=json` writes one JSON object per line; a request's lines carry its
/// request id, and neither the query string nor the bearer token appears (issue 16).
#[tokio::test]
async fn json_logs_carry_the_request_id_and_no_secrets() {
    let Some(app) = crate::support::TestApp::postgres().await else {
        return;
    };
    let env = [
        ("TRILO_LOG_FORMAT", "json"),
        ("TRILO_LOG", "info,trilo::request=debug"),
    ];
    let server = ServerProcess::start_with_env(&app, &env).await;
    let secret_token = "eyJhbGciOiJFUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl";
    let res = reqwest::Client::new()
        .get(format!("{}/me?code=secret-code-in-query", server.base))
        .bearer_auth(secret_token)
        .header("x-request-id", "log-test-req-7")
        .fetch()
        .await;
    assert_eq!(res.status(), 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = server.log_text();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.to_string().contains("log-test-req-7")),
        "no line names the request id: {log}"
    );
    assert!(!log.contains("secret-code-in-query"), "{log}");
    assert!(!log.contains(secret_token), "{log}");
}
