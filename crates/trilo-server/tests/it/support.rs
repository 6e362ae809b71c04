//! The test harness: a real trilo server on 127.0.0.1:0 over SQLite or PostgreSQL, seeded
#![allow(
    dead_code,
    reason = "harness helpers shared by test modules; not every module uses each one"
)]
//! with the demo data, with an injected clock, plus small clients and HTML helpers.

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::redirect::Policy;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use trilo_core::{Core, MockClock};
use trilo_protocol::authorize::append_query;
use trilo_server::app::build_with_clock;
use trilo_server::config::Config;
use trilo_server::demo::{self, DemoInfo};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running server.
pub struct TestApp {
    pub base: String,
    /// The database the server uses, for other processes to share.
    pub database_url: String,
    pub core: Core,
    pub demo: DemoInfo,
    pub clock: MockClock,
    dir: PathBuf,
    task: JoinHandle<()>,
    pg_database: Option<trilo_store_postgres::testing::TestDatabase>,
    /// The webhook sender, stopped with the app.
    _sender: Option<Arc<trilo_server::webhooks::SenderHandle>>,
    /// The key follower and the janitor, stopped with the app.
    _housekeeping: Option<Arc<trilo_server::housekeeping::HousekeepingHandle>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(db) = self.pg_database.take() {
            // Dropped from a thread of its own: Drop cannot await on the test's runtime.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    let _ = runtime.block_on(db.drop_database());
                }
            })
            .join();
        }
    }
}

/// The PostgreSQL URL for tests, or `None` (a failure when `TRILO_REQUIRE_POSTGRES=1`).
pub fn postgres_url() -> Option<String> {
    match std::env::var("TRILO_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("TRILO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "TRILO_REQUIRE_POSTGRES=1 but TRILO_TEST_POSTGRES_URL is not set"
            );
            None
        }
    }
}

/// A change to the configuration, made before the server starts.
type ConfigChange<'a> = Box<dyn FnOnce(&mut Config) + 'a>;

/// How a test's server is set up, one choice at a time:
/// `TestApp::builder().postgres().demo_callback().configure(|c| …).start().await`.
pub struct TestAppBuilder<'a> {
    backend: Backend,
    callback_path: Option<&'static str>,
    configure: Vec<ConfigChange<'a>>,
}

impl<'a> TestAppBuilder<'a> {
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    pub fn postgres(self) -> Self {
        self.backend(Backend::Postgres)
    }

    /// The demo app calls back to trilo's own `/demo/callback` page, so a real browser
    /// lands on a page that exists (else `https://app.example.test/callback`, never
    /// fetched).
    pub fn demo_callback(mut self) -> Self {
        self.callback_path = Some("/demo/callback");
        self
    }

    /// Changes the configuration before the server starts (after the harness's own
    /// settings); several apply in order.
    pub fn configure(mut self, change: impl FnOnce(&mut Config) + 'a) -> Self {
        self.configure.push(Box::new(change));
        self
    }

    /// Starts the server with the demo data; `None` for PostgreSQL when no database is
    /// configured for tests.
    pub async fn start(self) -> Option<TestApp> {
        TestApp::start(self).await
    }
}

impl TestApp {
    /// The stored state of a refresh token issued by this server (`None` once it is gone).
    pub async fn stored_refresh_token(
        &self,
        token: &str,
    ) -> Option<trilo_core::model::RefreshTokenState> {
        let Some(key) = self.core.refresh_token_key(token).await.unwrap() else {
            panic!("{token:?} is not a refresh token of trilo's");
        };
        self.core.store().refresh_token(&key).await.unwrap()
    }

    pub fn builder<'a>() -> TestAppBuilder<'a> {
        TestAppBuilder {
            backend: Backend::Sqlite,
            callback_path: None,
            configure: Vec::new(),
        }
    }

    pub async fn sqlite() -> TestApp {
        Self::builder()
            .start()
            .await
            .expect("sqlite is always available")
    }

    /// `None` when no PostgreSQL is configured for tests.
    pub async fn postgres() -> Option<TestApp> {
        Self::builder().postgres().start().await
    }

    /// [`TestApp::builder`] with a backend and one configuration change.
    pub async fn spawn(backend: Backend, configure: impl FnOnce(&mut Config)) -> Option<TestApp> {
        Self::builder()
            .backend(backend)
            .configure(configure)
            .start()
            .await
    }

    pub async fn sqlite_with_demo_callback() -> TestApp {
        Self::builder()
            .demo_callback()
            .start()
            .await
            .expect("sqlite")
    }

    async fn start(setup: TestAppBuilder<'_>) -> Option<TestApp> {
        let TestAppBuilder {
            backend,
            callback_path,
            configure,
        } = setup;
        let dir = std::env::temp_dir().join(format!("trilo-it-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut pg_database = None;
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.join("trilo.db").display()),
            Backend::Postgres => {
                let url = postgres_url()?;
                let db = trilo_store_postgres::testing::fresh_database(&url)
                    .await
                    .unwrap();
                let url = db.url.clone();
                pg_database = Some(db);
                url
            }
        };
        let mut config = Config {
            auth_url: base.clone(),
            api_url: base.clone(),
            audience: "api.trilo.test".into(),
            data_dir: dir.clone(),
            database_url: Some(database_url.clone()),
            ..Config::default()
        };
        // Tests move the clock by months: a scheduled rotation would surprise the many that
        // do not look at keys (those that do turn it back on).
        config.keys.rotate_every = "off".into();
        // Alice runs the test's trilo, as she runs the demo's.
        config.operators = vec![trilo_server::demo::DEMO_OPERATOR.to_owned()];
        // Mail (password reset links) lands in a file the tests read.
        config.mail.file = Some(dir.join("mail.log"));
        for change in configure {
            change(&mut config);
        }
        let validated = config.validate().unwrap();
        let now_ms = OffsetDateTime::now_utc().unix_timestamp() * 1000;
        let clock = MockClock::at_unix_millis(now_ms);
        let server = build_with_clock(&validated, Arc::new(clock.clone()))
            .await
            .unwrap();
        let callback = match callback_path {
            Some(path) => format!("{base}{path}"),
            None => "https://app.example.test/callback".to_owned(),
        };
        let demo = demo::seed(&server.core, &format!("{base}/sample"), &callback)
            .await
            .unwrap();
        let sender = server.sender.clone();
        let housekeeping = server.housekeeping.clone();
        let router = demo::with_sample_products(server.router, &server.core).unwrap();
        let router = demo::with_callback_page(router);
        let task = tokio::spawn(async move {
            let _ = trilo_server::app::serve_forever(listener, router).await;
        });
        Some(TestApp {
            base,
            database_url,
            core: server.core,
            demo,
            clock,
            dir,
            task,
            pg_database,
            _sender: sender,
            _housekeeping: housekeeping,
        })
    }

    /// Drops the PostgreSQL database under the running server (its connections too), so
    /// every later store call fails: for fail-closed tests.
    pub async fn lose_the_database(&mut self) {
        let db = self.pg_database.take().expect("a PostgreSQL test app");
        db.drop_database().await.unwrap();
    }

    /// Runs the `trilo` command on this server's data directory and database (both
    /// backends), with `env` set; panics with its stderr unless it succeeds.
    pub fn run_trilo(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_trilo"));
        command
            .args(args)
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--database-url", &self.database_url])
            .env("TRILO_LOG", "warn")
            .env_remove("SUDO_USER");
        for (name, value) in env {
            command.env(name, value);
        }
        let out = command.output().expect("the trilo binary runs");
        assert!(
            out.status.success(),
            "trilo {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The data directory (its `master.key` is what other instances must share).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A browser-like client: cookie jar, no automatic redirects.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .build()
            .unwrap()
    }

    pub fn alice(&self) -> (&str, &str) {
        (&self.demo.users[0].email, &self.demo.users[0].password)
    }

    pub fn app(&self) -> &demo::DemoApp {
        &self.demo.apps[0]
    }

    /// An authorization URL for the demo app; `extra` replaces or adds parameters.
    pub fn authorize_url(&self, extra: &[(&str, &str)]) -> String {
        let app = self.app();
        let mut params: Vec<(&str, &str)> = vec![
            ("audience", &self.demo.audience),
            ("client_id", &app.client_id),
            ("scope", "read:me read:jira-work offline_access"),
            ("redirect_uri", &app.callback_url),
            ("state", "st-123"),
            ("response_type", "code"),
            ("prompt", "consent"),
        ];
        for (k, v) in extra {
            params.retain(|(name, _)| name != k);
            if !v.is_empty() {
                params.push((k, v));
            }
        }
        append_query(&self.url("/authorize"), &params)
    }

    /// The demo app's authorization URL asking for `audience`.
    pub fn url_of_authorize_with_audience(&self, audience: &str) -> String {
        self.authorize_url(&[("audience", audience)])
    }

    /// Logs `client` in through the login form.
    pub async fn login(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        let page = client.get(self.url("/login")).fetch_text().await;
        let csrf = hidden_field(&page, "csrf_token").expect("login form has a csrf_token");
        client
            .post(self.url("/login"))
            .form(&login_form(email, password, &csrf, "/"))
            .fetch()
            .await
    }

    /// Logs in as Alice and opens the consent page for `authorize_url`; returns its HTML.
    pub async fn consent_page(&self, client: &reqwest::Client, authorize_url: &str) -> String {
        let (email, password) = self.alice();
        let res = self.login(client, email, password).await;
        assert_eq!(res.status(), 303, "login should succeed");
        let res = client.get(authorize_url).fetch().await;
        assert_eq!(res.status(), 200, "consent page expected");
        res.text().await.unwrap()
    }

    /// A browser where Alice is logged in and looks at the demo app's consent page, with
    /// the page: where every test of the consent form starts.
    pub async fn alice_at_consent(&self) -> (reqwest::Client, String) {
        let browser = self.browser();
        let page = self.consent_page(&browser, &self.authorize_url(&[])).await;
        (browser, page)
    }

    /// Submits the consent form from `page` with a decision and site; returns the response.
    pub async fn submit_consent(
        &self,
        client: &reqwest::Client,
        page: &str,
        decision: &str,
        cloud_id: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![
            (
                "csrf_token".to_owned(),
                hidden_field(page, "csrf_token").unwrap(),
            ),
            ("request".to_owned(), hidden_field(page, "request").unwrap()),
            ("decision".to_owned(), decision.to_owned()),
        ];
        if let Some(id) = cloud_id {
            form.push(("cloud_id".to_owned(), id.to_owned()));
        }
        client
            .post(self.url("/authorize/consent"))
            .form(&form)
            .fetch()
            .await
    }

    /// Creates a data security policy over Jira projects `projects` on `site` and turns it
    /// on: the setup of every test that checks what an active policy keeps from apps.
    pub async fn active_jira_policy(
        &self,
        site: &str,
        name: &str,
        projects: &[&str],
    ) -> trilo_core::model::Policy {
        let containers = projects
            .iter()
            .map(|key| ("jira".to_owned(), (*key).to_owned()))
            .collect();
        let policy = self
            .core
            .create_policy(site, name, containers, true)
            .await
            .unwrap();
        self.core
            .set_policy_active(&policy.policy_id, true)
            .await
            .unwrap();
        policy
    }

    /// A code for the demo app's usual request, from Alice's consent on the first site.
    pub async fn demo_code(&self) -> String {
        self.obtain_code(&self.authorize_url(&[])).await
    }

    /// The demo app as the store holds it (its id, for the store's other questions).
    pub async fn demo_app_record(&self) -> trilo_core::model::App {
        self.core
            .store()
            .app_by_client_id(&self.app().client_id)
            .await
            .unwrap()
            .expect("the demo app is stored")
    }

    /// Alice's live grant to the app `app_id`; panics when she has none.
    pub async fn alices_live_grant(&self, app_id: &str) -> trilo_core::model::Grant {
        self.core
            .store()
            .live_grant(app_id, &self.demo.users[0].account_id)
            .await
            .unwrap()
            .expect("Alice has a live grant")
    }

    /// Runs login and consent for Alice on the first site; returns the callback URL's code.
    pub async fn obtain_code(&self, authorize_url: &str) -> String {
        let client = self.browser();
        let page = self.consent_page(&client, authorize_url).await;
        let res = self
            .submit_consent(&client, &page, "accept", Some(&self.demo.sites[0].cloud_id))
            .await;
        assert_eq!(res.status(), 303);
        let location = location(&res);
        query_param(&location, "code").expect("callback has a code")
    }
}

/// Sends a request and reads its answer in one step, so that tests need not repeat the
/// `.send().await.unwrap()` ladder; a request that cannot be sent fails the test.
pub trait Fetch {
    /// Sends the request.
    fn fetch(self) -> impl Future<Output = reqwest::Response>;
    /// Sends the request and reads the body as text.
    fn fetch_text(self) -> impl Future<Output = String>;
    /// Sends the request and parses the body as JSON.
    fn fetch_json<T: serde::de::DeserializeOwned>(self) -> impl Future<Output = T>;
}

impl Fetch for reqwest::RequestBuilder {
    async fn fetch(self) -> reqwest::Response {
        self.send().await.unwrap()
    }

    async fn fetch_text(self) -> String {
        self.fetch().await.text().await.unwrap()
    }

    async fn fetch_json<T: serde::de::DeserializeOwned>(self) -> T {
        self.fetch().await.json().await.unwrap()
    }
}

/// GETs a public JSON document (metadata, discovery, JWKS) that needs no credentials.
pub async fn get_json<T: serde::de::DeserializeOwned>(url: impl reqwest::IntoUrl) -> T {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// The login form's fields as the page posts them.
pub fn login_form<'a>(
    email: &'a str,
    password: &'a str,
    csrf: &'a str,
    return_to: &'a str,
) -> [(&'static str, &'a str); 4] {
    [
        ("email", email),
        ("password", password),
        ("csrf_token", csrf),
        ("return_to", return_to),
    ]
}

/// The sites `/oauth/token/accessible-resources` lists for `token` (asserting a 200).
pub async fn accessible_resources(app: &TestApp, token: &str) -> Vec<serde_json::Value> {
    let res = reqwest::Client::new()
        .get(app.url("/oauth/token/accessible-resources"))
        .bearer_auth(token)
        .fetch()
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// An answer's `Content-Security-Policy`, for the checks on framing and scripts.
pub fn csp_of(res: &reqwest::Response) -> String {
    res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// A query parameter of a URL, decoded.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let params = trilo_protocol::Params::parse(query.as_bytes()).ok()?;
    params.get(name).map(str::to_owned)
}

/// The value of `<input type="hidden" name="NAME" value="...">`, HTML-unescaped.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(unescape_html(&html[start..end]))
}

pub fn unescape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';') else { break };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if entity.starts_with("#x") || entity.starts_with("#X") => {
                u32::from_str_radix(&entity[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if entity.starts_with('#') => entity[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Runs a test body on SQLite, and on PostgreSQL when configured.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let app = $crate::support::TestApp::sqlite().await;
                $body(app).await;
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(app) = $crate::support::TestApp::postgres().await {
                    $body(app).await;
                }
            }
        }
    };
}
