//! The load generator: workers that send one kind of request again and again over
//! loopback, on a runtime of their own with two threads so the generator stays cheap next
//! to the server it measures; a progress line on stderr once a second.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::runtime::Runtime;
use trilo_protocol::params::encode;

use super::Scenario;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// How long a request still unanswered at the end of a run is waited for before it is
/// abandoned and counted as an error, so every run ends within warm-up + duration + this.
const GRACE: Duration = Duration::from_secs(3);

/// What one worker sends, again and again.
#[derive(Clone)]
pub enum Job {
    /// Exchanges a fresh authorization code per request until the pool runs out.
    Exchange {
        uri: http::Uri,
        /// `redirect_uri=…&client_id=…&client_secret=…`, form-encoded.
        form: String,
        codes: Vec<String>,
    },
    /// Rotates its refresh token; each answer's token is the next request's.
    Refresh {
        uri: http::Uri,
        /// `client_id=…&client_secret=…`, form-encoded.
        credentials: String,
        token: String,
    },
    /// The same GET each time.
    Get {
        uri: http::Uri,
        headers: Vec<(http::HeaderName, http::HeaderValue)>,
    },
    /// A GET with a bearer token the server has not seen, a new one per request, until
    /// the pool runs out.
    ColdGet { uri: http::Uri, tokens: Vec<String> },
}

/// What the workers of one run saw.
#[derive(Debug, Default)]
pub struct Measured {
    /// Successful requests started after the warm-up.
    pub latencies: Vec<Duration>,
    /// Failed requests started after the warm-up.
    pub errors: u64,
    pub first_error: Option<String>,
    /// Workers that ran out of codes or tokens before the end.
    pub exhausted: usize,
}

impl Measured {
    pub fn sorted(&self) -> Vec<Duration> {
        let mut latencies = self.latencies.clone();
        latencies.sort_unstable();
        latencies
    }
}

/// The `q` quantile of sorted latencies (nearest rank); zero when there are none.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let last = sorted.len().saturating_sub(1);
    sorted
        .get(((last as f64) * q).round() as usize)
        .copied()
        .unwrap_or_default()
}

/// The load generator's runtime and HTTP client.
pub struct Load {
    /// Always `Some` until dropped.
    runtime: Option<Runtime>,
    client: HttpClient,
}

impl Drop for Load {
    /// Stops the runtime without waiting: a runtime may not be dropped inside another.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Load {
    pub fn new() -> anyhow::Result<Load> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("trilo-bench-load")
            .enable_all()
            .build()?;
        Ok(Load {
            runtime: Some(runtime),
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// Runs the jobs concurrently through the warm-up and the measured time.
    pub async fn measure(
        &self,
        scenario: Scenario,
        jobs: Vec<Job>,
        warmup: Duration,
        duration: Duration,
    ) -> anyhow::Result<Measured> {
        let start = Instant::now();
        let window = Window {
            count_from: start + warmup,
            stop_at: start + warmup + duration,
        };
        let sent = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                let worker = Worker {
                    client: self.client.clone(),
                    job,
                    sent: Arc::clone(&sent),
                };
                match &self.runtime {
                    Some(runtime) => runtime.spawn(worker.run(window)),
                    None => tokio::spawn(worker.run(window)),
                }
            })
            .collect();
        let shown = Arc::new(AtomicBool::new(false));
        let progress = tokio::spawn(progress(
            scenario,
            start,
            window,
            Arc::clone(&sent),
            Arc::clone(&shown),
        ));
        let mut measured = Measured::default();
        for worker in workers {
            let outcome = worker.await?;
            measured.latencies.extend(outcome.latencies);
            measured.errors += outcome.errors;
            measured.exhausted += usize::from(outcome.exhausted);
            if measured.first_error.is_none() {
                measured.first_error = outcome.first_error;
            }
        }
        progress.abort();
        if shown.load(Ordering::Relaxed) {
            clear_progress_line();
        }
        Ok(measured)
    }
}

/// When requests count and when workers stop sending.
#[derive(Clone, Copy)]
struct Window {
    count_from: Instant,
    stop_at: Instant,
}

/// Prints `scenario phase elapsed, requests so far, rate over the last second` in place.
async fn progress(
    scenario: Scenario,
    start: Instant,
    window: Window,
    sent: Arc<AtomicU64>,
    shown: Arc<AtomicBool>,
) {
    let total = (window.stop_at - start).as_secs_f64();
    let mut last = 0;
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let now = Instant::now();
        let count = sent.load(Ordering::Relaxed);
        let phase = if now < window.count_from {
            "warm-up"
        } else {
            "measuring"
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{}: {phase} {:.0}/{total:.0} s, {count} requests, {}/s        ",
            scenario.name(),
            (now - start).as_secs_f64(),
            count - last
        );
        let _ = err.flush();
        shown.store(true, Ordering::Relaxed);
        last = count;
    }
}

fn clear_progress_line() {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r{:79}\r", "");
    let _ = err.flush();
}

struct Worker {
    client: HttpClient,
    job: Job,
    /// Requests answered (or failed) so far, for the progress line.
    sent: Arc<AtomicU64>,
}

#[derive(Default)]
struct WorkerOutcome {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    exhausted: bool,
}

/// One request's result.
enum Sent {
    Ok,
    Failed(String),
    /// No code or token left to send.
    Exhausted,
}

impl Worker {
    /// Sends until `stop_at`, timing the requests that start after `count_from`.
    async fn run(mut self, window: Window) -> WorkerOutcome {
        let give_up = tokio::time::Instant::from_std(window.stop_at + GRACE);
        let mut outcome = WorkerOutcome::default();
        loop {
            let start = Instant::now();
            if start >= window.stop_at {
                break;
            }
            let sent = tokio::time::timeout_at(give_up, self.once())
                .await
                .unwrap_or_else(|_| Sent::Failed("no answer by the end of the run".into()));
            let counted = start >= window.count_from;
            match sent {
                Sent::Ok if counted => outcome.latencies.push(start.elapsed()),
                Sent::Failed(error) if counted => {
                    outcome.errors += 1;
                    outcome.first_error.get_or_insert(error);
                }
                Sent::Ok | Sent::Failed(_) => {}
                Sent::Exhausted => {
                    outcome.exhausted = true;
                    break;
                }
            }
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    async fn once(&mut self) -> Sent {
        match &mut self.job {
            Job::Exchange { uri, form, codes } => {
                let Some(code) = codes.pop() else {
                    return Sent::Exhausted;
                };
                let body = format!(
                    "grant_type=authorization_code&code={}&{form}",
                    encode(&code)
                );
                match post_form(&self.client, uri, body).await {
                    Ok(answer) if answer["access_token"].is_string() => Sent::Ok,
                    Ok(answer) => Sent::Failed(format!("no access_token in {answer}")),
                    Err(error) => Sent::Failed(error),
                }
            }
            Job::Refresh {
                uri,
                credentials,
                token,
            } => {
                let body = format!(
                    "grant_type=refresh_token&refresh_token={}&{credentials}",
                    encode(token)
                );
                match post_form(&self.client, uri, body).await {
                    Ok(answer) => match answer["refresh_token"].as_str() {
                        Some(next) => {
                            *token = next.to_owned();
                            Sent::Ok
                        }
                        None => Sent::Failed(format!("no refresh_token in {answer}")),
                    },
                    Err(error) => Sent::Failed(error),
                }
            }
            Job::Get { uri, headers } => {
                let mut request = get(uri);
                request.headers_mut().extend(headers.iter().cloned());
                result(send(&self.client, request).await)
            }
            Job::ColdGet { uri, tokens } => {
                let Some(token) = tokens.pop() else {
                    return Sent::Exhausted;
                };
                let mut request = get(uri);
                match http::HeaderValue::from_str(&format!("Bearer {token}")) {
                    Ok(value) => {
                        request
                            .headers_mut()
                            .insert(http::header::AUTHORIZATION, value);
                        result(send(&self.client, request).await)
                    }
                    Err(e) => Sent::Failed(e.to_string()),
                }
            }
        }
    }
}

fn result(sent: Result<Bytes, String>) -> Sent {
    match sent {
        Ok(_) => Sent::Ok,
        Err(error) => Sent::Failed(error),
    }
}

fn get(uri: &http::Uri) -> http::Request<Full<Bytes>> {
    let mut request = http::Request::new(Full::new(Bytes::new()));
    *request.uri_mut() = uri.clone();
    request
}

/// POSTs a form and returns the JSON of a 2xx answer.
async fn post_form(
    client: &HttpClient,
    uri: &http::Uri,
    body: String,
) -> Result<serde_json::Value, String> {
    let mut request = http::Request::new(Full::new(Bytes::from(body)));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri.clone();
    request.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let body = send(client, request).await?;
    serde_json::from_slice(&body).map_err(|e| format!("the answer is not JSON: {e}"))
}

/// The body of a 2xx answer; otherwise what went wrong, with the start of the body.
async fn send(client: &HttpClient, request: http::Request<Full<Bytes>>) -> Result<Bytes, String> {
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status.is_success() {
        Ok(body)
    } else {
        let text = String::from_utf8_lossy(&body);
        Err(format!(
            "HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 0.50), Duration::from_millis(51));
        assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&sorted, 1.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    /// A server that never answers cannot hold a run past its bound: the requests still
    /// open at the end are abandoned after the grace and counted as errors.
    #[tokio::test]
    async fn a_run_ends_within_its_bound_when_the_server_never_answers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: http::Uri = format!("http://{}/", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let load = Load::new().unwrap();
        let jobs = vec![
            Job::Get {
                uri,
                headers: Vec::new(),
            };
            2
        ];
        let (warmup, duration) = (Duration::ZERO, Duration::from_millis(100));
        let started = Instant::now();
        // Bounded here too, so a run that never ends fails the test instead of hanging it.
        let run = load.measure(Scenario::Direct, jobs, warmup, duration);
        let measured = tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .expect("the run ends")
            .unwrap();
        let took = started.elapsed();
        silent.abort();
        assert!(
            took < warmup + duration + GRACE + Duration::from_secs(2),
            "the run took {took:?}"
        );
        assert!(measured.latencies.is_empty());
        assert_eq!(measured.errors, 2, "each worker's one request, abandoned");
    }
}
