//! The listener against slow, idle and greedy clients, and its graceful shutdown
//! (issue 16), over raw TCP so each test controls exactly what a client sends.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use trilo_server::app::{ListenerSettings, serve_with};

const SHORT: Duration = Duration::from_millis(400);

fn settings(max_connections_per_peer: usize) -> ListenerSettings {
    ListenerSettings {
        header_read_timeout: SHORT,
        body_read_timeout: SHORT,
        max_connections_per_peer,
        ..ListenerSettings::default()
    }
}

/// Serves a tiny router: `/` answers at once, `/slow` after 600 ms, `/echo` reads its body.
async fn start(
    settings: ListenerSettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (SocketAddr, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let router = axum::Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/peer",
            get(
                |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>| async move {
                    peer.ip().to_string()
                },
            ),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(600)).await;
                "finished"
            }),
        )
        .route(
            "/echo",
            post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/framing",
            axum::routing::any(|request: axum::extract::Request| async move {
                use axum::body::HttpBody;
                let body = request.body();
                format!("{} {:?}", body.is_end_stream(), body.size_hint().exact())
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(serve_with(listener, router, settings, shutdown));
    (addr, task)
}

/// Reads until the server closes the connection (or 5 s pass); returns what it sent and
/// how long that took.
async fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(5) {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

/// Sends one full request on `stream` and reads its answer (the first chunk is enough for
/// these tiny bodies).
async fn request(stream: &mut TcpStream, path: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn a_half_sent_header_and_an_idle_connection_are_closed() {
    let (addr, _task) = start(settings(16), std::future::pending()).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let (_, waited) = read_until_closed(&mut slow).await;
    assert!(
        waited < Duration::from_secs(3),
        "open {waited:?} with half a header"
    );

    let mut idle = TcpStream::connect(addr).await.unwrap();
    assert!(request(&mut idle, "/").await.starts_with("HTTP/1.1 200"));
    let (_, waited) = read_until_closed(&mut idle).await;
    assert!(
        waited < Duration::from_secs(3),
        "idle keep-alive open {waited:?}"
    );
}

#[tokio::test]
async fn a_stalled_body_fails_its_request() {
    let (addr, _task) = start(settings(16), std::future::pending()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let (answer, waited) = read_until_closed(&mut stream).await;
    assert!(
        waited < Duration::from_secs(3),
        "waited {waited:?} for a stalled body"
    );
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A handler sees whether a request has a body and how long it is, through the stall
/// timeout: the gateway sends calls without one by its own exchange.
#[tokio::test]
async fn handlers_see_whether_a_body_comes_and_its_length() {
    let (addr, _task) = start(settings(16), std::future::pending()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let answer = request(&mut stream, "/framing").await;
    assert!(answer.ends_with("true Some(0)"), "{answer}");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /framing HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde")
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.ends_with("false Some(5)"), "{answer}");
}

#[tokio::test]
async fn one_address_holds_at_most_its_share_of_connections() {
    let (addr, _task) = start(settings(2), std::future::pending()).await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    assert!(request(&mut first, "/").await.starts_with("HTTP/1.1 200"));
    assert!(request(&mut second, "/").await.starts_with("HTTP/1.1 200"));
    let mut third = TcpStream::connect(addr).await.unwrap();
    let _ = third.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let (answer, _) = read_until_closed(&mut third).await;
    assert!(answer.is_empty(), "a third connection was served: {answer}");
    // A slot comes back when a connection closes.
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fourth = TcpStream::connect(addr).await.unwrap();
    assert!(request(&mut fourth, "/").await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn shutdown_finishes_the_requests_in_flight() {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, task) = start(settings(16), async move {
        let _ = stopped.await;
    })
    .await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    let (answer, _) = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("finished"), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the server stops once the request is answered")
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}

/// Behind a trusted proxy the client is the nearest untrusted `X-Forwarded-For` hop; from
/// anyone else the header is ignored.
#[tokio::test]
async fn a_trusted_proxy_names_the_client_and_others_cannot() {
    let peer_seen = |addr: SocketAddr, forwarded: Option<&'static str>| async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let extra = forwarded
            .map(|f| format!("X-Forwarded-For: {f}\r\n"))
            .unwrap_or_default();
        stream
            .write_all(format!("GET /peer HTTP/1.1\r\nHost: t\r\n{extra}\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).await.unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
        answer.rsplit("\r\n").next().unwrap_or_default().to_owned()
    };
    let trusting = ListenerSettings {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()].into(),
        ..settings(16)
    };
    let (addr, _task) = start(trusting, std::future::pending()).await;
    assert_eq!(peer_seen(addr, Some("203.0.113.9")).await, "203.0.113.9");
    // The client may write its own hops first; the proxies' appended ones are read.
    assert_eq!(
        peer_seen(addr, Some("198.51.100.1, 203.0.113.9, 10.0.0.2")).await,
        "203.0.113.9"
    );
    assert_eq!(peer_seen(addr, None).await, "127.0.0.1");

    let (addr, _task) = start(settings(16), std::future::pending()).await;
    assert_eq!(peer_seen(addr, Some("203.0.113.9")).await, "127.0.0.1");
}
