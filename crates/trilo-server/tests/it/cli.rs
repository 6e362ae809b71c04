//! The `trilo` binary from the outside: `--help`, `admin … --json` against a database
//! directory, `migrate`, and the demo writing `demo.json`.

use crate::support::get_json;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn trilo(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trilo"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("TRILO__DATABASE_URL")
        .env("TRILO_ADMIN_PASSWORD", "")
        .output()
        .expect("the trilo binary runs")
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let out = trilo(dir, args);
    assert!(
        out.status.success(),
        "trilo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "trilo {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("trilo-cli-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn help_documents_every_command() {
    let dir = TempDir::new();
    let out = trilo(&dir.0, &["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for command in ["serve", "migrate", "demo", "admin", "bench"] {
        assert!(text.contains(command), "--help lists {command}: {text}");
    }
    let out = trilo(&dir.0, &["admin", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for command in ["user", "site", "product", "membership", "app"] {
        assert!(
            text.contains(command),
            "admin --help lists {command}: {text}"
        );
    }
}

#[test]
fn admin_commands_manage_a_database_with_json_output() {
    let dir = TempDir::new();
    let d = &dir.0;
    let migrate = trilo(d, &["migrate"]);
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    let user = json(
        d,
        &[
            "admin",
            "user",
            "create",
            "--email",
            "Dev@Example.com",
            "--name",
            "Dev",
            "--password",
            "dev-password-1",
            "--json",
        ],
    );
    assert_eq!(user["email"], "Dev@Example.com");
    let users = json(d, &["admin", "user", "list", "--json"]);
    assert_eq!(users.as_array().unwrap().len(), 1);
    // The same email in another case is the same account.
    let dup = trilo(
        d,
        &[
            "admin",
            "user",
            "create",
            "--email",
            "dev@example.com",
            "--name",
            "D",
            "--password",
            "dev-password-1",
        ],
    );
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("exists"));

    let spec = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../trilo-sample-products/specs/jira-platform.openapi.json"
    );
    let product = json(
        d,
        &[
            "admin",
            "product",
            "import",
            "--key",
            "jira",
            "--name",
            "Jira",
            "--openapi",
            spec,
            "--json",
        ],
    );
    assert!(product["scopes"].as_u64().unwrap() > 50);
    // A product of several descriptions, with path aliases; a bad alias is refused.
    let specs = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../trilo-sample-products/specs/"
    );
    let v1 = format!("{specs}confluence.openapi.json");
    let v2 = format!("{specs}confluence-v2.openapi.json");
    let confluence = json(
        d,
        &[
            "admin",
            "product",
            "import",
            "--key",
            "confluence",
            "--name",
            "Confluence",
            "--openapi",
            &v1,
            "--openapi",
            &v2,
            "--path-alias",
            "/rest/=/wiki/rest/",
            "--path-alias",
            "/api/v2/=/wiki/api/v2/",
            "--json",
        ],
    );
    assert_eq!(
        confluence["path_aliases"],
        serde_json::json!(["/rest/=/wiki/rest/", "/api/v2/=/wiki/api/v2/"])
    );
    assert_eq!(confluence["operations"], 155 + 14, "{confluence}");
    let bad = trilo(
        d,
        &[
            "admin",
            "product",
            "import",
            "--key",
            "confluence",
            "--name",
            "Confluence",
            "--openapi",
            &v1,
            "--path-alias",
            "rest=wiki",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("rest=wiki"));

    let site = json(
        d,
        &[
            "admin",
            "site",
            "create",
            "--name",
            "Initech",
            "--url",
            "https://initech.example.com",
            "--json",
        ],
    );
    let cloud_id = site["cloud_id"].as_str().unwrap().to_owned();
    json(
        d,
        &[
            "admin",
            "site",
            "add-product",
            "--cloud-id",
            &cloud_id,
            "--product",
            "jira",
            "--upstream",
            "http://127.0.0.1:9/jira",
            "--json",
        ],
    );
    let m = json(
        d,
        &[
            "admin",
            "membership",
            "set",
            "--email",
            "dev@example.com",
            "--cloud-id",
            &cloud_id,
            "--product",
            "jira",
            "--role",
            "admin",
            "--json",
        ],
    );
    assert_eq!(m["role"], "admin");
    let blocked = json(
        d,
        &[
            "admin",
            "site",
            "set-user-installs",
            "--cloud-id",
            &cloud_id,
            "blocked",
            "--json",
        ],
    );
    assert_eq!(blocked["user_installs"], "blocked");
    let sites = json(d, &["admin", "site", "list", "--json"]);
    assert_eq!(sites[0]["products"], serde_json::json!(["jira"]));
    assert_eq!(sites[0]["user_installs"], "blocked");

    let app = json(
        d,
        &[
            "admin",
            "app",
            "create",
            "--owner-email",
            "dev@example.com",
            "--name",
            "Tool",
            "--callback-url",
            "https://tool.example.com/cb",
            "--scope",
            "read:jira-work",
            "--scope",
            "read:me",
            "--json",
        ],
    );
    let client_id = app["client_id"].as_str().unwrap().to_owned();
    assert_eq!(app["client_secret"].as_str().unwrap().len(), 43);
    let shown = json(d, &["admin", "app", "show", &client_id, "--json"]);
    assert_eq!(
        shown["scopes"],
        serde_json::json!(["read:jira-work", "read:me"])
    );
    assert!(
        shown.get("client_secret").is_none(),
        "a secret is shown only at creation"
    );
    let reviewed = json(
        d,
        &["admin", "app", "review", &client_id, "approved", "--json"],
    );
    assert_eq!(reviewed["review_state"], "approved");

    // Bad input is refused with a clear message and changes nothing.
    let bad = trilo(
        d,
        &[
            "admin",
            "app",
            "create",
            "--owner-email",
            "dev@example.com",
            "--name",
            "Bad",
            "--callback-url",
            "http://evil.example.com/cb",
        ],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("https"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let bad = trilo(
        d,
        &[
            "admin",
            "app",
            "create",
            "--owner-email",
            "dev@example.com",
            "--name",
            "Bad",
            "--callback-url",
            "https://x.example.com/cb",
            "--scope",
            "admin:everything",
        ],
    );
    assert!(!bad.status.success());
    assert_eq!(
        json(d, &["admin", "app", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let deleted = json(d, &["admin", "app", "delete", &client_id, "--json"]);
    assert_eq!(deleted["deleted"], true);
    assert_eq!(
        json(d, &["admin", "app", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn bad_configuration_is_refused_with_the_key_named() {
    let dir = TempDir::new();
    let out = Command::new(env!("CARGO_BIN_EXE_trilo"))
        .args(["migrate", "--data-dir"])
        .arg(&dir.0)
        .env("TRILO__TOKENS__CODE_LIFETIME", "11m")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tokens.code_lifetime"));
}

/// `trilo demo` seeds a fresh database, writes `demo.json` and serves the flow.
#[tokio::test]
async fn demo_writes_demo_json_and_serves() {
    let dir = TempDir::new();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_trilo"))
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir.0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let json_path = dir.0.join("demo.json");
    let mut info: Option<Value> = None;
    for _ in 0..200 {
        if let Ok(bytes) = std::fs::read(&json_path)
            && let Ok(v) = serde_json::from_slice(&bytes)
        {
            info = Some(v);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let info = info.expect("demo.json written within 20 s");
    for key in ["auth_url", "api_url", "audience"] {
        assert!(info[key].is_string(), "{key} in {info}");
    }
    assert_eq!(info["users"].as_array().unwrap().len(), 2);
    assert!(info["users"][0]["password"].is_string() && info["users"][0]["account_id"].is_string());
    let app = &info["apps"][0];
    for key in ["client_id", "client_secret", "callback_url"] {
        assert!(app[key].is_string(), "apps[0].{key}");
    }
    let scopes: Vec<&str> = app["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for s in ["offline_access", "read:me", "read:jira-work"] {
        assert!(scopes.contains(&s), "{s}");
    }
    let sites = info["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 2);
    assert_eq!(
        sites[0]["products"],
        serde_json::json!(["jira", "confluence"])
    );

    let auth_url = info["auth_url"].as_str().unwrap();
    let metadata: Value =
        get_json(format!("{auth_url}/.well-known/oauth-authorization-server")).await;
    assert_eq!(metadata["issuer"], auth_url);
    child.kill().await.unwrap();
}

/// Every scenario in its order, as `trilo bench` reports them by default.
const BENCH_SCENARIOS: [&str; 8] = [
    "code-exchange",
    "refresh-rotation",
    "accessible-resources",
    "gateway",
    "gateway-cold",
    "direct",
    "relay",
    "events",
];

/// Runs `trilo bench` briefly with two clients and returns its report.
fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_trilo"))
        .arg("bench")
        .args([
            "--concurrency",
            "2",
            "--duration",
            "300ms",
            "--warmup",
            "100ms",
        ])
        .args(args)
        .env_remove("TRILO__DATABASE_URL")
        .output()
        .expect("the trilo binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every scenario ran without errors, with latencies and the server's memory and CPU
/// measured.
fn assert_every_scenario_ran(report: &Value) {
    let scenarios = report["scenarios"].as_array().unwrap();
    let names: Vec<_> = scenarios.iter().map(|s| s["name"].as_str()).collect();
    assert_eq!(names, BENCH_SCENARIOS.map(Some), "{report}");
    for scenario in scenarios {
        assert_eq!(scenario["errors"], 0, "{report}");
        assert!(scenario["requests"].as_u64().unwrap() > 0, "{report}");
        assert!(scenario["p99_ms"].as_f64().unwrap() > 0.0, "{report}");
        assert!(
            scenario["server_peak_rss_mb"].as_f64().unwrap() > 0.0,
            "{report}"
        );
        assert!(
            scenario["server_cpu_us_per_request"].as_f64().unwrap() > 0.0,
            "{report}"
        );
        assert!(
            scenario["load_cpu_us_per_request"].as_f64().unwrap() > 0.0,
            "{report}"
        );
        // Waits for a CPU are read from every thread's schedstat (Linux).
        for party in ["server", "load"] {
            let waited = scenario[format!("{party}_cpu_wait_us_per_request")]
                .as_f64()
                .unwrap();
            assert!(waited >= 0.0, "{report}");
        }
        let idle = scenario["machine_idle_pct"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&idle), "{report}");
        assert!(scenario["to_direct"].as_f64().unwrap() > 0.0, "{report}");
    }
    let direct = scenarios.iter().find(|s| s["name"] == "direct").unwrap();
    assert_eq!(direct["to_direct"], 1.0, "{report}");
    let gateway = scenarios.iter().find(|s| s["name"] == "gateway").unwrap();
    assert_eq!(
        report["gateway_to_direct"], gateway["to_direct"],
        "{report}"
    );
    assert!(report["gateway_added_p50_ms"].is_f64(), "{report}");
}

/// The benchmark is not a test, but it must keep working: a short run on SQLite over a
/// preloaded database reports every scenario without errors, and `--json` writes the
/// same report.
#[test]
fn bench_runs_every_scenario_and_writes_the_report() {
    let dir = TempDir::new();
    let file = dir.0.join("report.json");
    let report = bench(&["--preload", "500", "--json", file.to_str().unwrap()]);
    assert_eq!(report["database"], "sqlite");
    assert_eq!(report["preloaded_families"], 500, "{report}");
    assert_every_scenario_ran(&report);
    // SQLite works inside the server process: no database CPU of its own.
    for scenario in report["scenarios"].as_array().unwrap() {
        for figure in [
            "database_cpu_us_per_request",
            "database_cpu_wait_us_per_request",
        ] {
            assert!(scenario.get(figure).is_none(), "{report}");
        }
    }
    let written: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written, report);
}

/// The same on PostgreSQL (a scratch database on the test server).
#[test]
fn bench_runs_on_postgres() {
    let Some(url) = crate::support::postgres_url() else {
        eprintln!("skipped: TRILO_TEST_POSTGRES_URL is not set");
        return;
    };
    let report = bench(&[
        "--database",
        "postgres",
        "--database-url",
        &url,
        "--preload",
        "200",
    ]);
    assert_eq!(report["database"], "postgres");
    assert_eq!(report["preloaded_families"], 200, "{report}");
    assert_every_scenario_ran(&report);
    // Its backends are found and counted (each scenario's window is short: summed, at
    // /proc's 10 ms resolution).
    let database_cpu: f64 = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|scenario| scenario["database_cpu_us_per_request"].as_f64().unwrap())
        .sum();
    assert!(database_cpu > 0.0, "{report}");
    for scenario in report["scenarios"].as_array().unwrap() {
        let waited = scenario["database_cpu_wait_us_per_request"]
            .as_f64()
            .unwrap();
        assert!(waited >= 0.0, "{report}");
    }
}

/// `--rounds 2` runs the scenarios twice, each round with payloads of its own (a second
/// round of rotations on the first round's families would be refused as reuse), and sums
/// them up by their medians.
#[test]
fn bench_rounds_report_each_round_and_their_medians() {
    let report = bench(&[
        "--rounds",
        "2",
        "--scenario",
        "refresh-rotation",
        "--scenario",
        "code-exchange",
        "--scenario",
        "direct",
    ]);
    let rounds = report["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2, "{report}");
    let scenarios = report["scenarios"].as_array().unwrap();
    for (i, summary) in scenarios.iter().enumerate() {
        let ratios: Vec<f64> = rounds
            .iter()
            .map(|round| {
                assert_eq!(round[i]["name"], summary["name"], "{report}");
                assert_eq!(round[i]["errors"], 0, "{report}");
                assert!(round[i]["requests"].as_u64().unwrap() > 0, "{report}");
                round[i]["to_direct"].as_f64().unwrap()
            })
            .collect();
        let median = ((ratios[0] + ratios[1]) / 2.0 * 1000.0).round() / 1000.0;
        let to_direct = summary["to_direct"].as_f64().unwrap();
        assert!((to_direct - median).abs() < 1e-9, "{report}");
    }
    let once = bench(&["--scenario", "direct"]);
    assert!(once.get("rounds").is_none(), "{once}");
}

/// `--preload` inserts exactly N families, also when they span several transactions
/// (the count is read back from the store).
#[test]
fn bench_preload_inserts_every_family() {
    let report = bench(&["--preload", "10001", "--scenario", "refresh-rotation"]);
    assert_eq!(report["preloaded_families"], 10_001, "{report}");
    let scenarios = report["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 1, "{report}");
    assert_eq!(scenarios[0]["errors"], 0, "{report}");
    assert!(report.get("gateway_added_p50_ms").is_none(), "{report}");
}

/// `trilo catalog check` on both real descriptions: counts in JSON and in text; a file
/// that is not a description fails.
#[test]
fn catalog_check_reports_operations_and_scopes() {
    let dir = TempDir::new();
    let specs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../trilo-sample-products/specs");
    let jira = specs.join("jira-platform.openapi.json");
    let report = json(
        &dir.0,
        &["catalog", "check", jira.to_str().unwrap(), "--json"],
    );
    assert_eq!(report["operations"], 468);
    assert_eq!(report["app_operations"], 438);
    assert_eq!(report["scopes"].as_array().unwrap().len(), 179);
    assert!(report.get("unparsed").is_none(), "{report}");
    let confluence = specs.join("confluence.openapi.json");
    let out = trilo(&dir.0, &["catalog", "check", confluence.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "155 operations, 133 open to apps, 15 scopes"
    );
    let not_openapi = dir.0.join("x.json");
    std::fs::write(&not_openapi, "{\"swagger\": \"2.0\"}").unwrap();
    let out = trilo(&dir.0, &["catalog", "check", not_openapi.to_str().unwrap()]);
    assert!(!out.status.success());
}

/// `trilo admin api-token create --json` prints the token once; `list` never shows it;
/// `revoke` ends it.
#[test]
fn api_token_commands_create_list_and_revoke() {
    let dir = TempDir::new();
    let d = dir.0.as_path();
    let out = Command::new(env!("CARGO_BIN_EXE_trilo"))
        .args([
            "admin",
            "user",
            "create",
            "--email",
            "ci@example.com",
            "--name",
            "CI",
        ])
        .arg("--data-dir")
        .arg(d)
        .env_remove("TRILO__DATABASE_URL")
        .env("TRILO_ADMIN_PASSWORD", "a-long-enough-password")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created = json(
        d,
        &[
            "admin",
            "api-token",
            "create",
            "--email",
            "ci@example.com",
            "--label",
            "deploy",
            "--json",
        ],
    );
    let token = created["token"].as_str().unwrap();
    assert_eq!(token.len(), 43);
    assert_eq!(created["label"], "deploy");
    assert_eq!(created["email"], "ci@example.com");
    let listed = json(
        d,
        &[
            "admin",
            "api-token",
            "list",
            "--email",
            "ci@example.com",
            "--json",
        ],
    );
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(
        !listed.to_string().contains(token),
        "the token is shown only once"
    );
    let id = created["id"].as_str().unwrap();
    let revoked = json(
        d,
        &[
            "admin",
            "api-token",
            "revoke",
            "--email",
            "ci@example.com",
            "--id",
            id,
            "--json",
        ],
    );
    assert_eq!(revoked["revoked"], true);
    let again = trilo(
        d,
        &[
            "admin",
            "api-token",
            "revoke",
            "--email",
            "ci@example.com",
            "--id",
            id,
        ],
    );
    assert!(
        !again.status.success(),
        "a revoked token cannot be revoked again"
    );
}

/// `trilo admin container add|list` on a site that hosts the product.
#[test]
fn container_commands_add_and_list() {
    let dir = TempDir::new();
    let d = dir.0.as_path();
    let site = json(
        d,
        &[
            "admin",
            "site",
            "create",
            "--name",
            "Initech",
            "--url",
            "https://initech.example.com",
            "--json",
        ],
    );
    let cloud_id = site["cloud_id"].as_str().unwrap().to_owned();
    let specs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../trilo-sample-products/specs");
    let jira = specs.join("jira-platform.openapi.json");
    json(
        d,
        &[
            "admin",
            "product",
            "import",
            "--key",
            "jira",
            "--name",
            "Jira",
            "--openapi",
            jira.to_str().unwrap(),
            "--json",
        ],
    );
    json(
        d,
        &[
            "admin",
            "site",
            "add-product",
            "--cloud-id",
            &cloud_id,
            "--product",
            "jira",
            "--upstream",
            "http://127.0.0.1:9/jira",
            "--json",
        ],
    );
    let added = json(
        d,
        &[
            "admin",
            "container",
            "add",
            "--cloud-id",
            &cloud_id,
            "--product",
            "jira",
            "--key",
            "HR",
            "--id",
            "10500",
            "--name",
            "People",
            "--json",
        ],
    );
    assert_eq!(added["key"], "HR");
    let listed = json(
        d,
        &[
            "admin",
            "container",
            "list",
            "--cloud-id",
            &cloud_id,
            "--json",
        ],
    );
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let out = trilo(
        d,
        &[
            "admin",
            "container",
            "add",
            "--cloud-id",
            &cloud_id,
            "--product",
            "confluence",
            "--key",
            "X",
            "--id",
            "1",
        ],
    );
    assert!(!out.status.success(), "the site does not host confluence");
}
