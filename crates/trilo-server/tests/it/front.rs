//! The gateway's front (`http::gateway::front`): the calls it answers before hyper, over
//! raw TCP so each test controls exactly what a client sends and when.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::gateway::alice_read_token_on_acme;
use crate::support::TestApp;

const MYSELF: &str = "/rest/api/3/myself";

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// A gateway `GET` of `path` on `site` with `token`, and `extra` header lines.
fn call(app: &TestApp, site: &str, path: &str, token: &str, extra: &str) -> String {
    let host = app.base.trim_start_matches("http://");
    format!(
        "GET /ex/jira/{site}{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         {extra}\r\n"
    )
}

/// One answer read off `stream`: status, header lines (names lowercased) and body, which
/// is delimited by `Content-Length` (every answer here has one).
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn names(&self) -> BTreeSet<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// Reads one answer, keeping what follows it in `pending`.
async fn read_answer(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(pending[..end].to_vec()).unwrap();
            let mut lines = head.split("\r\n");
            let status = lines.next().unwrap().split(' ').nth(1).unwrap();
            let headers: Vec<(String, String)> = lines
                .map(|line| {
                    let (name, value) = line.split_once(':').unwrap();
                    (name.to_ascii_lowercase(), value.trim().to_owned())
                })
                .collect();
            let length: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map(|(_, v)| v.parse().unwrap())
                .expect("a length");
            if pending.len() >= end + 4 + length {
                let body = String::from_utf8(pending[end + 4..end + 4 + length].to_vec()).unwrap();
                pending.drain(..end + 4 + length);
                return Answer {
                    status: status.parse().unwrap(),
                    headers,
                    body,
                };
            }
        }
        let mut chunk = [0u8; 8192];
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(n > 0, "closed before a whole answer: {pending:?}");
        pending.extend_from_slice(&chunk[..n]);
    }
}

/// Whether the server closes `stream` within `within` (reading and dropping what comes).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn pipelined_calls_are_answered_in_order_and_the_first_it_does_not_take_goes_to_hyper() {
    let app = TestApp::sqlite().await;
    let (token, acme) = alice_read_token_on_acme(&app).await;
    let mut stream = connect(&app).await;
    // Two calls the front answers, then one with a body (hyper's), then one the front
    // would take but that now comes after hyper took the connection, all in one write.
    let body_call = format!(
        "POST /ex/jira/{acme}{MYSELF} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 2\r\n\r\n{{}}"
    );
    let all = [
        call(&app, &acme, MYSELF, &token, "X-Request-Id: first\r\n"),
        call(&app, &acme, "/rest/api/3/project/search", &token, ""),
        body_call,
        call(&app, &acme, MYSELF, &token, "Connection: close\r\n"),
    ]
    .concat();
    stream.write_all(all.as_bytes()).await.unwrap();
    let mut pending = Vec::new();
    let first = read_answer(&mut stream, &mut pending).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("x-request-id"), Some("first"));
    assert!(
        first.body.contains(&app.demo.users[0].account_id),
        "{}",
        first.body
    );
    let second = read_answer(&mut stream, &mut pending).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert!(second.body.contains("values"), "{}", second.body);
    let third = read_answer(&mut stream, &mut pending).await;
    assert_eq!(third.status, 405, "{}", third.body);
    let fourth = read_answer(&mut stream, &mut pending).await;
    assert_eq!(fourth.status, 200, "{}", fourth.body);
    assert_eq!(fourth.header("connection"), Some("close"));
    assert!(closed_within(&mut stream, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn the_front_answers_with_the_headers_the_router_gives_the_same_call() {
    let app = TestApp::sqlite().await;
    let (token, acme) = alice_read_token_on_acme(&app).await;
    // The same call twice, on connections of their own: as the front takes it, and with
    // `Content-Length: 0`, which only hyper and the router take.
    let mut answers = Vec::new();
    for extra in ["", "Content-Length: 0\r\n"] {
        let mut stream = connect(&app).await;
        let request = call(&app, &acme, MYSELF, &token, extra);
        stream.write_all(request.as_bytes()).await.unwrap();
        answers.push(read_answer(&mut stream, &mut Vec::new()).await);
    }
    let (front, router) = (&answers[0], &answers[1]);
    assert_eq!(front.status, 200, "{}", front.body);
    assert_eq!(router.status, 200, "{}", router.body);
    assert_eq!(front.names(), router.names());
    for name in [
        "date",
        "x-request-id",
        "x-content-type-options",
        "content-security-policy",
        "referrer-policy",
        "access-control-allow-origin",
        "content-type",
    ] {
        assert!(
            front.header(name).is_some(),
            "{name} in {:?}",
            front.headers
        );
    }
    for (name, value) in &front.headers {
        if !matches!(name.as_str(), "date" | "x-request-id" | "content-length") {
            assert_eq!(router.header(name), Some(value.as_str()), "{name}");
        }
    }
    assert_eq!(front.body.len(), router.body.len());

    // A refusal is the router's refusal too.
    let mut refusals = Vec::new();
    for extra in ["", "Content-Length: 0\r\n"] {
        let mut stream = connect(&app).await;
        let request = call(&app, &acme, MYSELF, "not-a-token", extra);
        stream.write_all(request.as_bytes()).await.unwrap();
        refusals.push(read_answer(&mut stream, &mut Vec::new()).await);
    }
    assert_eq!(refusals[0].status, 401);
    assert_eq!(refusals[0].names(), refusals[1].names());
    assert_eq!(
        refusals[0].header("www-authenticate"),
        refusals[1].header("www-authenticate")
    );
    assert_eq!(refusals[0].body, refusals[1].body);
}

#[tokio::test]
async fn a_head_that_arrives_in_pieces_is_answered() {
    let app = TestApp::sqlite().await;
    let (token, acme) = alice_read_token_on_acme(&app).await;
    let mut stream = connect(&app).await;
    let request = call(&app, &acme, MYSELF, &token, "");
    let bytes = request.as_bytes();
    for piece in [
        &bytes[..7],
        &bytes[7..40],
        &bytes[40..bytes.len() - 1],
        &bytes[bytes.len() - 1..],
    ] {
        stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let answer = read_answer(&mut stream, &mut Vec::new()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn idle_and_half_sent_connections_are_closed_after_the_header_timeout() {
    let app = TestApp::builder()
        .configure(|config| config.http.header_read_timeout = "300ms".into())
        .start()
        .await
        .unwrap();
    let (token, acme) = alice_read_token_on_acme(&app).await;
    // Kept alive after an answer, then idle.
    let mut idle = connect(&app).await;
    let request = call(&app, &acme, MYSELF, &token, "");
    idle.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut idle, &mut Vec::new()).await.status, 200);
    // A head begun and never finished.
    let mut half = connect(&app).await;
    half.write_all(&request.as_bytes()[..30]).await.unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);
    assert!(closed_within(&mut half, Duration::from_secs(5)).await);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn shutdown_closes_the_fronts_idle_connections_at_once() {
    let mut app = TestApp::sqlite().await;
    let (token, acme) = alice_read_token_on_acme(&app).await;
    let mut idle = connect(&app).await;
    let request = call(&app, &acme, MYSELF, &token, "");
    idle.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut idle, &mut Vec::new()).await.status, 200);
    // The header timeout is 10 s: without the front watching for shutdown, the server
    // would wait that long for this connection.
    assert!(app.shut_down_within(Duration::from_secs(5)).await);
    assert!(closed_within(&mut idle, Duration::from_secs(1)).await);
}
