//! Browser end-to-end tests: a real Chromium, driven through chromedriver (DEPENDENCIES §4),
//! walks the login page, the consent page and the demo callback page of a spawned server.
//!
//! Without `chromium` and `chromedriver` the tests are skipped, unless
//! `TRILO_REQUIRE_BROWSER=1`, which makes a missing browser a failure. `TRILO_CHROMIUM`
//! overrides the Chromium binary. Screenshots go to `target/screenshots/`.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use thirtyfour::prelude::*;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use trilo_core::model::UserInstalls;

use crate::support::{TestApp, query_param};

const BLOCKED_TITLE: &str = "App is blocked by an admin";

/// `chromium` and `chromedriver`, or `None` to skip (a panic when `TRILO_REQUIRE_BROWSER=1`).
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = match std::env::var_os("TRILO_CHROMIUM") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => find_on_path("chromium"),
    };
    let chromedriver = find_on_path("chromedriver");
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) if chromium.is_file() => {
            Some((chromium, chromedriver))
        }
        (chromium, chromedriver) => {
            let message = format!(
                "browser tests need Debian's chromium and chromium-driver \
                 (found chromium: {chromium:?}, chromedriver: {chromedriver:?}); \
                 install them with `apt-get install chromium chromium-driver` \
                 or point TRILO_CHROMIUM at a Chromium binary"
            );
            assert!(
                std::env::var("TRILO_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "TRILO_REQUIRE_BROWSER=1: {message}"
            );
            eprintln!("skipping browser test: {message}");
            None
        }
    }
}

/// `which NAME`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A per-test scratch directory (Chromium profile, chromedriver log). Removed on drop,
/// except after a failure, when the chromedriver log is worth reading.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "browser test failed; chromedriver log: {}",
                self.0.join("chromedriver.log").display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Starts chromedriver on a free loopback port and waits (at most 5 s) until it accepts.
async fn start_chromedriver(binary: &Path, scratch: &Path) -> (Child, u16) {
    let port = StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap();
    let child = Command::new(binary)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .arg(format!(
            "--log-path={}",
            scratch.join("chromedriver.log").display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not accept connections on {addr} within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, port)
}

/// Runs `body` with a fresh headless Chromium session and always quits it afterwards, also
/// when `body` fails or panics. Returns without running `body` when the browser is missing.
pub(crate) async fn with_browser<F, Fut>(body: F)
where
    F: FnOnce(WebDriver) -> Fut,
    Fut: Future<Output = WebDriverResult<()>>,
{
    let Some((chromium, chromedriver)) = browser_binaries() else {
        return;
    };
    let scratch = Scratch(
        std::env::temp_dir().join(format!("trilo-browser-{}", uuid::Uuid::new_v4().simple())),
    );
    let profile = scratch.0.join("profile");
    std::fs::create_dir_all(&profile).unwrap();
    let (_chromedriver, port) = start_chromedriver(&chromedriver, &scratch.0).await;

    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary(&chromium.to_string_lossy()).unwrap();
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--disable-default-apps",
        "--disable-extensions",
        "--window-size=1280,800",
        &format!("--user-data-dir={}", profile.display()),
    ] {
        caps.add_arg(arg).unwrap();
    }
    let driver = WebDriver::new(format!("http://127.0.0.1:{port}"), caps)
        .await
        .unwrap_or_else(|e| panic!("cannot start a Chromium session: {e}"));
    // `run_and_quit` quits the session after success, error or panic, then re-raises.
    let run = driver
        .run_and_quit(|driver| async move {
            fit_viewport(&driver, 1280, 800).await?;
            body(driver).await
        })
        .await;
    if let Err(e) = run {
        panic!("browser test failed: {e}");
    }
    // `_chromedriver` (kill_on_drop) and `scratch` go after the session has quit.
}

/// `--window-size` sizes the window, and the browser's own frame takes part of it: grows the
/// window so that the page, and so every screenshot, is exactly `width`×`height`.
async fn fit_viewport(driver: &WebDriver, width: i64, height: i64) -> WebDriverResult<()> {
    let (inner_width, inner_height): (i64, i64) = driver
        .execute(
            "return [window.innerWidth, window.innerHeight];",
            Vec::new(),
        )
        .await?
        .convert()?;
    if (inner_width, inner_height) != (width, height) {
        let rect = driver.get_window_rect().await?;
        let outer_width = u32::try_from(rect.width + width - inner_width).unwrap();
        let outer_height = u32::try_from(rect.height + height - inner_height).unwrap();
        driver
            .set_window_rect(rect.x, rect.y, outer_width, outer_height)
            .await?;
    }
    Ok(())
}

/// Saves a PNG of the viewport into `target/screenshots/NAME`.
pub(crate) async fn save_screenshot(driver: &WebDriver, name: &str) -> WebDriverResult<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = driver.screenshot_as_png().await?;
    std::fs::write(dir.join(name), png).unwrap();
    Ok(())
}

/// Saves the page at a desktop size (1280×900) and a phone size (390×844), as
/// `NAME-1280.png` and `NAME-390.png`, and leaves the window at the desktop size. At the
/// phone size nothing may be wider than the screen: the page must not scroll sideways.
pub(crate) async fn screenshots_at_both_sizes(
    driver: &WebDriver,
    name: &str,
) -> WebDriverResult<()> {
    fit_viewport(driver, 1280, 900).await?;
    save_screenshot(driver, &format!("{name}-1280.png")).await?;
    fit_viewport(driver, 390, 844).await?;
    save_screenshot(driver, &format!("{name}-390.png")).await?;
    let (scroll_width, client_width): (i64, i64) = driver
        .execute(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
            Vec::new(),
        )
        .await?
        .convert()?;
    assert!(
        scroll_width <= client_width,
        "{name} runs off a 390 px screen: {scroll_width} px wide"
    );
    fit_viewport(driver, 1280, 900).await
}

/// On the login page: fills in the form, submits it and waits for the page it leads to.
/// Opens `path`, which asks a signed-out browser to log in, and logs in as Alice there.
pub(crate) async fn open_as_alice(
    driver: &WebDriver,
    app: &TestApp,
    path: &str,
) -> WebDriverResult<()> {
    driver.goto(app.url(path)).await?;
    let (email, password) = app.alice();
    log_in(driver, email, password).await
}

pub(crate) async fn log_in(driver: &WebDriver, email: &str, password: &str) -> WebDriverResult<()> {
    driver
        .query(By::Id("email"))
        .first()
        .await?
        .send_keys(email)
        .await?;
    driver
        .find(By::Id("password"))
        .await?
        .send_keys(password)
        .await?;
    let submit = driver.find(By::Id("login-submit")).await?;
    submit.click().await?;
    // The next page has replaced this one (the one the login led to, or the login page
    // again), so the caller's next step cannot race the login's own navigation.
    submit.wait_until().stale().await
}

/// The consent page's radio input for a site.
pub(crate) async fn site_radio(driver: &WebDriver, cloud_id: &str) -> WebDriverResult<WebElement> {
    driver
        .query(By::Css(format!(
            "input[type='radio'][name='cloud_id'][value='{cloud_id}']"
        )))
        .first()
        .await
}

/// Opens `authorize_url` logged out, logs in as Alice and waits for the consent page.
pub(crate) async fn reach_consent(
    app: &TestApp,
    driver: &WebDriver,
    authorize_url: &str,
    screenshot_login: bool,
) -> WebDriverResult<()> {
    driver.goto(authorize_url).await?;
    driver.query(By::Id("login-submit")).first().await?;
    let login_url = driver.current_url().await?;
    assert_eq!(login_url.path(), "/login", "logged out → login page");
    if screenshot_login {
        save_screenshot(driver, "login.png").await?;
    }
    let (email, password) = app.alice();
    log_in(driver, email, password).await?;
    driver.query(By::Id("accept")).first().await?;
    let consent_url = driver.current_url().await?;
    assert_eq!(
        consent_url.path(),
        "/authorize",
        "back to /authorize after login"
    );
    Ok(())
}

#[tokio::test]
async fn browser_login_consent_accept_lands_on_callback_with_code() {
    let app = TestApp::sqlite_with_demo_callback().await;
    let state = "browser-accept-7f3a";
    let authorize_url = app.authorize_url(&[("state", state)]);
    let acme = app.demo.sites[0].cloud_id.clone();
    let app = &app;
    with_browser(|driver| async move {
        reach_consent(app, &driver, &authorize_url, true).await?;
        let title = driver.find(By::Id("consent-title")).await?.text().await?;
        assert!(title.contains("Demo Integration"), "{title}");
        let radio = site_radio(&driver, &acme).await?;
        radio.click().await?;
        assert!(radio.is_selected().await?);
        save_screenshot(&driver, "consent.png").await?;

        driver.find(By::Id("accept")).await?.click().await?;
        let code = driver
            .query(By::Id("callback-code"))
            .first()
            .await?
            .text()
            .await?;
        assert!(!code.trim().is_empty(), "the callback page shows a code");
        let shown_state = driver.find(By::Id("callback-state")).await?.text().await?;
        assert_eq!(shown_state, state);

        let url = driver.current_url().await?;
        assert_eq!(url.path(), "/demo/callback");
        let url = url.as_str();
        assert!(url.contains("iss="), "{url}");
        assert_eq!(query_param(url, "iss").as_deref(), Some(app.base.as_str()));
        assert_eq!(query_param(url, "code").as_deref(), Some(code.trim()));
        assert_eq!(query_param(url, "state").as_deref(), Some(state));
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn browser_deny_returns_access_denied_with_state() {
    let app = TestApp::sqlite_with_demo_callback().await;
    let state = "browser-deny-41c2";
    let authorize_url = app.authorize_url(&[("state", state)]);
    let acme = app.demo.sites[0].cloud_id.clone();
    let app = &app;
    with_browser(|driver| async move {
        reach_consent(app, &driver, &authorize_url, false).await?;
        site_radio(&driver, &acme).await?.click().await?;
        driver.find(By::Id("deny")).await?.click().await?;

        let error = driver
            .query(By::Id("callback-error"))
            .first()
            .await?
            .text()
            .await?;
        assert!(error.contains("access_denied"), "{error}");
        assert!(
            driver.find_all(By::Id("callback-code")).await?.is_empty(),
            "no code after deny"
        );
        let url = driver.current_url().await?;
        assert_eq!(url.path(), "/demo/callback");
        let url = url.as_str();
        assert!(url.contains("error=access_denied"), "{url}");
        assert_eq!(query_param(url, "state").as_deref(), Some(state));
        assert_eq!(query_param(url, "code"), None);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn browser_blocked_site_is_shown_and_not_selectable() {
    let app = TestApp::sqlite_with_demo_callback().await;
    let globex = app
        .demo
        .sites
        .iter()
        .find(|s| s.name == "Globex")
        .expect("the demo has Globex")
        .cloud_id
        .clone();
    let acme = app.demo.sites[0].cloud_id.clone();
    app.core
        .set_user_installs(&globex, UserInstalls::Blocked)
        .await
        .unwrap();
    let authorize_url = app.authorize_url(&[("scope", "read:me read:jira-work")]);
    let app = &app;
    with_browser(|driver| async move {
        reach_consent(app, &driver, &authorize_url, false).await?;

        let globex_radio = site_radio(&driver, &globex).await?;
        assert!(
            !globex_radio.is_enabled().await?,
            "a blocked site cannot be picked"
        );
        // Clicking a disabled radio changes nothing.
        let _ = globex_radio.click().await;
        assert!(!globex_radio.is_selected().await?);

        let globex_entry = globex_radio.parent().await?;
        let text = globex_entry.text().await?;
        assert!(text.contains("Globex"), "{text}");
        assert!(text.contains(BLOCKED_TITLE), "{text}");
        assert!(
            text.contains(
                "An admin has not allowed Demo Integration to access data from Globex. \
                 Select another site to authorize access to or contact your admin for \
                 more information."
            ),
            "{text}"
        );

        let acme_radio = site_radio(&driver, &acme).await?;
        assert!(acme_radio.is_enabled().await?, "Acme stays selectable");
        let acme_text = acme_radio.parent().await?.text().await?;
        assert!(!acme_text.contains(BLOCKED_TITLE), "{acme_text}");
        save_screenshot(&driver, "consent-blocked-site.png").await?;
        Ok(())
    })
    .await;
}

/// The developer console: log in, create an app (its secret shown once), find it again
/// with the search box; screenshots of each page.
#[tokio::test]
async fn browser_console_creates_an_app_and_finds_it() {
    let app = TestApp::sqlite().await;
    let app = &app;
    with_browser(|driver| async move {
        driver.goto(app.url("/developer")).await?;
        driver.query(By::Id("login-submit")).first().await?;
        let (email, password) = app.alice();
        log_in(&driver, email, password).await?;
        driver.query(By::Id("create-app")).first().await?;
        assert_eq!(driver.current_url().await?.path(), "/developer");
        save_screenshot(&driver, "console-apps.png").await?;

        click_on(&driver, By::Id("create-app")).await?;
        type_into(&driver, By::Id("name"), "Release Notes <b>Bot</b>").await?;
        type_into(&driver, By::Id("description"), "Posts release notes.").await?;
        save_screenshot(&driver, "console-new-app.png").await?;
        click_on(&driver, By::Id("create")).await?;
        let secret = driver
            .query(By::Id("client-secret"))
            .first()
            .await?
            .text()
            .await?;
        assert_eq!(secret.len(), 43, "the secret is shown once: {secret}");
        let name = driver.find(By::Id("app-name")).await?.text().await?;
        assert_eq!(name, "Release Notes <b>Bot</b>", "names render as text");
        save_screenshot(&driver, "console-app-created.png").await?;

        driver.goto(app.url("/developer")).await?;
        let search = driver.query(By::Id("q")).first().await?;
        search.send_keys("release").await?;
        click_on(&driver, By::Id("search")).await?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while driver.current_url().await?.query() != Some("q=release") {
            assert!(Instant::now() < deadline, "the search did not load");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let rows = driver
            .query(By::Css("#apps tbody tr"))
            .all_from_selector()
            .await?;
        assert_eq!(rows.len(), 1, "one app matches");
        assert!(rows[0].text().await?.contains("Not sharing"));
        save_screenshot(&driver, "console-search.png").await?;
        driver.goto(app.url("/developer?q=nothing-like-it")).await?;
        driver.query(By::Id("no-match")).first().await?;
        Ok(())
    })
    .await;
}

/// An app's whole life in the console: callback URL, scopes, the authorization URL used
/// for a real consent, deletion refused while installed (sites listed), sharing, secret
/// rotation; a screenshot of every page.
#[tokio::test]
async fn browser_console_takes_an_app_through_its_life() {
    let app = TestApp::sqlite().await;
    let app = &app;
    let acme = app.demo.sites[0].cloud_id.clone();
    with_browser(|driver| async move {
        driver.goto(app.url("/developer/apps/new")).await?;
        driver.query(By::Id("login-submit")).first().await?;
        let (email, password) = app.alice();
        log_in(&driver, email, password).await?;
        type_into(&driver, By::Id("name"), "Life Cycle App").await?;
        click_on(&driver, By::Id("create")).await?;
        driver.query(By::Id("client-secret")).first().await?;
        save_screenshot(&driver, "console-overview.png").await?;

        // Authorization: a callback URL on this server, so the consent lands somewhere real.
        click_tab(&driver, "Authorization").await?;
        let callbacks = driver.query(By::Id("callback_urls")).first().await?;
        callbacks.send_keys(app.url("/demo/callback")).await?;
        click_on(&driver, By::Id("save-callbacks")).await?;
        driver.query(By::Id("notice")).first().await?;

        // Permissions: the identity API is listed first; Jira's scopes fold out.
        click_tab(&driver, "Permissions").await?;
        click_on(&driver, By::Css("input[value='read:me']")).await?;
        for summary in driver.find_all(By::Css("details.api summary")).await? {
            if summary.text().await?.contains("Jira") {
                summary.click().await?;
            }
        }
        click_on(&driver, By::Css("input[value='read:jira-work']")).await?;
        save_screenshot(&driver, "console-permissions.png").await?;
        click_on(&driver, By::Id("save-scopes")).await?;
        driver.query(By::Id("notice")).first().await?;

        // The ready-made authorization URL completes a consent.
        click_tab(&driver, "Authorization").await?;
        let url = driver
            .query(By::Id("authorization-url"))
            .first()
            .await?
            .prop("value")
            .await?
            .unwrap_or_default();
        assert!(url.contains("scope=read%3Ame%20read%3Ajira-work"), "{url}");
        save_screenshot(&driver, "console-authorization.png").await?;
        driver
            .goto(url.replace("YOUR_USER_BOUND_VALUE", "console-7"))
            .await?;
        site_radio(&driver, &acme).await?.click().await?;
        click_on(&driver, By::Id("accept")).await?;
        let code = driver
            .query(By::Id("callback-code"))
            .first()
            .await?
            .text()
            .await?;
        assert!(!code.is_empty());
        let landed = driver.current_url().await?;
        assert_eq!(
            query_param(landed.as_str(), "state").as_deref(),
            Some("console-7")
        );

        // Deleting is refused while the app is installed, naming the site.
        driver.back().await?;
        driver.back().await?;
        click_tab(&driver, "Settings").await?;
        click_on(&driver, By::Id("delete-app")).await?;
        // Deleting asks for the app's name first.
        type_into(&driver, By::Id("confirm-name"), "Life Cycle App").await?;
        save_screenshot(&driver, "console-delete-confirm.png").await?;
        click_on(&driver, By::Id("confirm-submit")).await?;
        let error = driver
            .query(By::Id("form-error"))
            .first()
            .await?
            .text()
            .await?;
        assert!(error.contains(&acme), "{error}");
        save_screenshot(&driver, "console-delete-refused.png").await?;

        // Sharing on.
        click_tab(&driver, "Distribution").await?;
        click_on(&driver, By::Id("toggle-sharing")).await?;
        // The old page also shows a status: wait for the new one.
        wait_for_text(&driver, "distribution", "Sharing").await?;
        save_screenshot(&driver, "console-distribution.png").await?;

        // A new secret, shown once, with the old one kept for the grace chosen.
        click_tab(&driver, "Settings").await?;
        click_on(&driver, By::Id("rotate-secret")).await?;
        click_on(&driver, By::Id("confirm-submit")).await?;
        let secret = driver
            .query(By::Id("client-secret"))
            .first()
            .await?
            .text()
            .await?;
        assert_eq!(secret.len(), 43);
        save_screenshot(&driver, "console-settings.png").await?;
        Ok(())
    })
    .await;
}

/// Opens one of the app's tabs by its link text and waits for it to be the current one.
async fn click_tab(driver: &WebDriver, name: &str) -> WebDriverResult<()> {
    click_on(driver, By::LinkText(name)).await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let current = driver.find(By::Css(".tabs a[aria-current=page]")).await;
        if let Ok(current) = current
            && current.text().await? == name
        {
            return Ok(());
        }
        assert!(Instant::now() < deadline, "the {name} tab did not open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (at most 5 s) until the element with `id` reads `expected`: after a form POST the
/// old page stays in place until the new one has loaded.
pub(crate) async fn wait_for_text(
    driver: &WebDriver,
    id: &str,
    expected: &str,
) -> WebDriverResult<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if let Ok(element) = driver.find(By::Id(id)).await
            && element.text().await.is_ok_and(|t| t == expected)
        {
            return Ok(());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "#{id} never read {expected:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Clicks the element `by` finds, again while it is missing or goes stale (a page still
/// being replaced after the previous action), for at most 5 s.
pub(crate) async fn click_on(driver: &WebDriver, by: By) -> WebDriverResult<()> {
    retry(|| async { driver.find(by.clone()).await?.click().await }).await
}

/// Types into the element `by` finds, with the same patience as [`click_on`].
pub(crate) async fn type_into(driver: &WebDriver, by: By, text: &str) -> WebDriverResult<()> {
    retry(|| async { driver.find(by.clone()).await?.send_keys(text).await }).await
}

async fn retry<F, Fut>(mut action: F) -> WebDriverResult<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = WebDriverResult<()>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match action().await {
            Ok(()) => return Ok(()),
            Err(e) if std::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}
