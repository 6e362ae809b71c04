//! The gateway's own HTTP/1.1 exchange with an upstream, for calls without a request body
//! (most API calls): the request head is written and the response head read in the
//! calling task, on a pooled keep-alive connection, and the response body is streamed off
//! that connection as the caller reads it (`body`).
//!
//! Why not hyper's client for these: its connection task and the channels between it and
//! the caller cost as much again as the hop's HTTP itself. Measured with `trilo bench
//! --scenario relay` against relays of each kind (README, "The gateway's own upstream
//! exchange"): a byte relay adds about 11 µs of server CPU a call to `direct`, hyper's
//! server and client 23 µs, hyper's server and an exchange like this one 14 µs.
//!
//! Calls with a body stay on hyper's client (`forward`), which reads an early answer (a
//! 413, say) while the body is still being sent; this exchange writes, then reads. So do
//! calls to `https://` upstreams: this exchange speaks plain TCP only.

mod body;
mod head;
mod pool;

use std::io;
use std::sync::{Arc, Once};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::http::{Method, Response};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use body::UpstreamBody;
pub use head::{HeadError, is_field_value};
use head::{take_response_head, write_request_head};
use pool::{Host, Pool};

/// How much is read from an upstream at a time.
const READ_SIZE: usize = 16 * 1024;

/// Why an exchange failed before the response head arrived.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("the product's address or the call's path cannot be sent")]
    Target,
    #[error("connecting to the product failed: {0}")]
    Connect(io::Error),
    #[error("connecting to the product timed out")]
    ConnectTimeout,
    #[error("the product closed the connection before answering")]
    Closed,
    #[error("the exchange with the product failed: {0}")]
    Io(io::Error),
    #[error(transparent)]
    Head(#[from] HeadError),
}

/// How an attempt on one connection failed: before any of the answer arrived (so it may be
/// sent again on a new connection when that is safe), or after.
enum Failed {
    Unanswered(ExchangeError),
    Answering(ExchangeError),
}

/// One connection to an upstream, with what has been read from it but not yet used.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buffer: BytesMut,
    home: Arc<Host>,
}

impl Conn {
    /// Back to the pool, for the next call to the same upstream.
    fn release(self) {
        self.home.put(self.stream, self.buffer);
    }

    /// Reads more of the answer into the buffer; `Ok(0)` at the connection's end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buffer.capacity() - self.buffer.len() < READ_SIZE / 4 {
            self.buffer.reserve(READ_SIZE);
        }
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            match self.stream.try_read_buf(&mut self.buffer) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                read => return Poll::Ready(read),
            }
        }
    }
}

/// Bodiless calls to upstreams over pooled HTTP/1.1 connections.
#[derive(Debug)]
pub struct Exchange {
    pool: Arc<Pool>,
    connect_timeout: Duration,
    sweeper: Once,
}

impl Exchange {
    pub fn new(
        connect_timeout: Duration,
        max_idle_per_host: usize,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            pool: Arc::new(Pool::new(max_idle_per_host, idle_timeout)),
            connect_timeout,
            sweeper: Once::new(),
        }
    }

    /// Sends `method` for the request target `target` (its pieces in order) to
    /// `authority` (`host[:port]`) with `headers` and no body, and returns the answer once
    /// its head has arrived, its body to be read off the connection. A request found to
    /// have gone out on a connection the upstream had closed is sent once more on a new one
    /// when its method is idempotent (RFC 9110 §9.2.2), as nothing of it was answered.
    /// The authority and the target must be visible ASCII without spaces, else the call
    /// fails with [`ExchangeError::Target`] before anything is sent; header values are the
    /// caller's to check ([`is_field_value`]).
    pub async fn send<'a>(
        &self,
        method: &Method,
        authority: &str,
        target: &[&str],
        headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<Response<UpstreamBody>, ExchangeError> {
        let fit = |piece: &str| piece.bytes().all(|byte| byte.is_ascii_graphic());
        if authority.is_empty() || !fit(authority) || !target.iter().all(|piece| fit(piece)) {
            return Err(ExchangeError::Target);
        }
        let host_and_port = authority
            .rsplit_once('@')
            .map_or(authority, |(_, after)| after);
        let mut head = Vec::with_capacity(1024);
        write_request_head(&mut head, method, target, host_and_port, headers);
        let head_request = *method == Method::HEAD;
        let home = self.pool.host(host_and_port);
        let pooled = home.take();
        let reused = pooled.is_some();
        let conn = match pooled {
            Some((stream, buffer)) => Conn {
                stream,
                buffer,
                home,
            },
            None => self.connect(host_and_port, home).await?,
        };
        match attempt(conn, &head, head_request).await {
            Ok(response) => Ok(response),
            Err(Failed::Unanswered(_)) if reused && method.is_idempotent() => {
                let home = self.pool.host(host_and_port);
                let conn = self.connect(host_and_port, home).await?;
                attempt(conn, &head, head_request)
                    .await
                    .map_err(|(Failed::Unanswered(error) | Failed::Answering(error))| error)
            }
            Err(Failed::Unanswered(error) | Failed::Answering(error)) => Err(error),
        }
    }

    async fn connect(&self, host_and_port: &str, home: Arc<Host>) -> Result<Conn, ExchangeError> {
        self.sweeper.call_once(|| {
            tokio::spawn(pool::sweep_while_alive(Arc::downgrade(&self.pool)));
        });
        let (host, port) = host_and_port_of(host_and_port).ok_or(ExchangeError::Target)?;
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| ExchangeError::ConnectTimeout)?
            .map_err(ExchangeError::Connect)?;
        stream.set_nodelay(true).map_err(ExchangeError::Connect)?;
        Ok(Conn {
            stream,
            buffer: BytesMut::with_capacity(READ_SIZE),
            home,
        })
    }

    #[cfg(test)]
    fn idle_count(&self, host_and_port: &str) -> usize {
        self.pool.host(host_and_port).idle_count()
    }
}

/// The host (an IPv6 literal without its brackets) and port (80 when none is given) of
/// `host[:port]`, as the `http` crate reads an authority.
fn host_and_port_of(authority: &str) -> Option<(&str, u16)> {
    let parsed: axum::http::uri::Authority = authority.parse().ok()?;
    // `host()` borrows `parsed`; the same text lies at the start of `authority`.
    let (host, port) = authority.split_at(parsed.host().len());
    let port = match port.strip_prefix(':') {
        Some(_) => parsed.port_u16()?,
        None => 80,
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then_some((host, port))
}

/// The `host[:port]` and the path of an `http://` URL (`http://host:port/base/path`), the
/// path without a trailing `/`; `None` for another scheme or a URL with a query or
/// fragment.
pub fn split_http_url(url: &str) -> Option<(&str, &str)> {
    let scheme = url.get(..7)?;
    if !scheme.eq_ignore_ascii_case("http://") {
        return None;
    }
    let rest = &url[7..];
    if rest.contains(['?', '#']) {
        return None;
    }
    let (authority, path) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
    (!authority.is_empty()).then_some((authority, path.trim_end_matches('/')))
}

/// Writes the request head on `conn` and reads the answer's head.
async fn attempt(
    mut conn: Conn,
    head: &[u8],
    head_request: bool,
) -> Result<Response<UpstreamBody>, Failed> {
    if let Err(error) = conn.stream.write_all(head).await {
        return Err(Failed::Unanswered(ExchangeError::Io(error)));
    }
    loop {
        match take_response_head(&mut conn.buffer, head_request) {
            Err(error) => return Err(Failed::Answering(error.into())),
            Ok(Some(answer)) => {
                let mut response =
                    Response::new(UpstreamBody::new(conn, answer.framing, answer.reusable));
                *response.status_mut() = answer.status;
                *response.headers_mut() = answer.headers;
                return Ok(response);
            }
            Ok(None) => {}
        }
        conn.buffer.reserve(READ_SIZE);
        let nothing_yet = conn.buffer.is_empty();
        let failed = match conn.stream.read_buf(&mut conn.buffer).await {
            Ok(0) => ExchangeError::Closed,
            Ok(_) => continue,
            Err(error) => ExchangeError::Io(error),
        };
        return Err(if nothing_yet {
            Failed::Unanswered(failed)
        } else {
            Failed::Answering(failed)
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::{HeaderMap, HeaderValue};
    use http_body_util::BodyExt;
    use tokio::net::TcpListener;

    use super::*;

    /// What the scripted upstream does for one request: writes `pieces` a moment apart,
    /// then closes the connection if `close`.
    struct Reply {
        pieces: Vec<&'static str>,
        close: bool,
    }

    fn reply(pieces: &[&'static str]) -> Reply {
        Reply {
            pieces: pieces.to_vec(),
            close: false,
        }
    }

    /// A loopback upstream answering the n-th request (from 0, over all connections) with
    /// `script(n)`; it records each request head and counts connections.
    struct Upstream {
        authority: String,
        connections: Arc<AtomicUsize>,
        requests: Arc<Mutex<Vec<String>>>,
    }

    impl Upstream {
        async fn start(script: fn(usize) -> Reply) -> Upstream {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let authority = listener.local_addr().unwrap().to_string();
            let connections = Arc::new(AtomicUsize::new(0));
            let requests = Arc::new(Mutex::new(Vec::new()));
            let (counted, recorded) = (Arc::clone(&connections), Arc::clone(&requests));
            tokio::spawn(async move {
                loop {
                    let (mut stream, _) = listener.accept().await.unwrap();
                    counted.fetch_add(1, Ordering::SeqCst);
                    let recorded = Arc::clone(&recorded);
                    tokio::spawn(async move {
                        let mut received = Vec::new();
                        loop {
                            let mut chunk = [0u8; 4096];
                            let Ok(n) = stream.read(&mut chunk).await else {
                                return;
                            };
                            if n == 0 {
                                return;
                            }
                            received.extend_from_slice(&chunk[..n]);
                            let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n")
                            else {
                                continue;
                            };
                            let head: Vec<u8> = received.drain(..end + 4).collect();
                            let index = {
                                let mut requests = recorded.lock().unwrap();
                                requests.push(String::from_utf8(head).unwrap());
                                requests.len() - 1
                            };
                            let answer = script(index);
                            for piece in answer.pieces {
                                if stream.write_all(piece.as_bytes()).await.is_err() {
                                    return;
                                }
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            if answer.close {
                                return;
                            }
                        }
                    });
                }
            });
            Upstream {
                authority,
                connections,
                requests,
            }
        }

        fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }
    }

    /// `method path` to `upstream` with `headers`.
    async fn call(
        exchange: &Exchange,
        method: Method,
        upstream: &Upstream,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<Response<UpstreamBody>, ExchangeError> {
        let pairs = headers
            .iter()
            .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()));
        exchange
            .send(&method, &upstream.authority, &[path], pairs)
            .await
    }

    fn exchange() -> Exchange {
        Exchange::new(Duration::from_secs(2), 8, Duration::from_secs(60))
    }

    /// The body of the answer to a `method` of `path` without headers, read whole.
    async fn text_of(
        exchange: &Exchange,
        method: Method,
        upstream: &Upstream,
        path: &str,
    ) -> String {
        let response = call(exchange, method, upstream, path, &HeaderMap::new())
            .await
            .unwrap();
        read_all(response).await.unwrap()
    }

    async fn read_all(response: Response<UpstreamBody>) -> io::Result<String> {
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok(String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn calls_share_one_kept_alive_connection_and_send_the_headers_given() {
        let upstream = Upstream::start(|_| {
            reply(&[
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello",
            ])
        })
        .await;
        let exchange = exchange();
        let mut headers = HeaderMap::new();
        headers.insert("x-trilo-account-id", HeaderValue::from_static("a-1"));
        for _ in 0..3 {
            let response = call(&exchange, Method::GET, &upstream, "/rest/x?y=1", &headers)
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["content-type"], "text/plain");
            assert_eq!(read_all(response).await.unwrap(), "hello");
        }
        assert_eq!(upstream.connections(), 1);
        assert_eq!(exchange.idle_count(&upstream.authority), 1);
        let requests = upstream.requests.lock().unwrap();
        assert_eq!(
            requests[0],
            format!(
                "GET /rest/x?y=1 HTTP/1.1\r\nhost: {}\r\nx-trilo-account-id: a-1\r\n\r\n",
                upstream.authority
            )
        );
    }

    #[tokio::test]
    async fn chunked_answers_stream_through_in_pieces_and_keep_the_connection() {
        let upstream = Upstream::start(|_| {
            reply(&[
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                "5\r\nhel",
                "lo\r\n7\r\n, world\r\n",
                "0\r\n\r\n",
            ])
        })
        .await;
        let exchange = exchange();
        for _ in 0..2 {
            assert_eq!(
                text_of(&exchange, Method::GET, &upstream, "/c").await,
                "hello, world"
            );
        }
        assert_eq!(upstream.connections(), 1);
    }

    #[tokio::test]
    async fn answers_that_end_with_the_connection_are_read_whole_and_not_pooled() {
        let upstream = Upstream::start(|n| match n {
            0 => Reply {
                pieces: vec!["HTTP/1.1 200 OK\r\n\r\nuntil ", "the end"],
                close: true,
            },
            _ => reply(&["HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"]),
        })
        .await;
        let exchange = exchange();
        assert_eq!(
            text_of(&exchange, Method::GET, &upstream, "/").await,
            "until the end"
        );
        assert_eq!(text_of(&exchange, Method::GET, &upstream, "/").await, "ok");
        assert_eq!(upstream.connections(), 2);
        assert_eq!(exchange.idle_count(&upstream.authority), 0);
    }

    /// An upstream that closes each connection after one answer, without saying so.
    fn one_answer_then_close(_: usize) -> Reply {
        Reply {
            pieces: vec!["HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"],
            close: true,
        }
    }

    #[tokio::test]
    async fn an_idempotent_call_on_a_connection_closed_meanwhile_is_sent_again() {
        let upstream = Upstream::start(one_answer_then_close).await;
        let exchange = exchange();
        for _ in 0..3 {
            assert_eq!(text_of(&exchange, Method::GET, &upstream, "/").await, "ok");
            // The close reaches this side.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Each call after the first went out on the closed connection first (the upstream
        // never read it), then again on a new one.
        assert_eq!(upstream.requests.lock().unwrap().len(), 3);
        assert_eq!(upstream.connections(), 3);
        // A POST is not sent twice: it fails instead.
        let failed = call(&exchange, Method::POST, &upstream, "/", &HeaderMap::new()).await;
        assert!(matches!(failed, Err(ExchangeError::Closed)), "{failed:?}");
    }

    #[tokio::test]
    async fn a_connection_idle_a_while_is_checked_before_use() {
        let upstream = Upstream::start(one_answer_then_close).await;
        let exchange = exchange();
        assert_eq!(text_of(&exchange, Method::POST, &upstream, "/").await, "ok");
        tokio::time::sleep(pool::CHECK_AFTER + Duration::from_millis(100)).await;
        assert_eq!(text_of(&exchange, Method::POST, &upstream, "/").await, "ok");
        assert_eq!(upstream.requests.lock().unwrap().len(), 2, "nothing resent");
        let requests = upstream.requests.lock().unwrap();
        assert!(
            requests[1].ends_with("content-length: 0\r\n\r\n"),
            "{requests:?}"
        );
    }

    #[tokio::test]
    async fn broken_answers_are_errors_and_their_connections_closed() {
        let upstream = Upstream::start(|n| match n {
            0 => reply(&["SSH-2.0-OpenSSH_9.6\r\n\r\n"]),
            1 => Reply {
                pieces: vec!["HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf."],
                close: true,
            },
            2 => reply(&["HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nx"]),
            _ => reply(&["HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n", "partial"]),
        })
        .await;
        let exchange = exchange();
        let no_headers = HeaderMap::new();
        let get = || call(&exchange, Method::GET, &upstream, "/", &no_headers);
        assert!(matches!(
            get().await,
            Err(ExchangeError::Head(HeadError::Malformed(_)))
        ));
        let cut = read_all(get().await.unwrap()).await.unwrap_err();
        assert_eq!(cut.kind(), io::ErrorKind::UnexpectedEof);
        assert!(matches!(
            get().await,
            Err(ExchangeError::Head(HeadError::Malformed(_)))
        ));
        // A body the caller drops half-read closes its connection.
        let mut response = get().await.unwrap();
        let first = response.body_mut().frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "partial");
        drop(response);
        assert_eq!(exchange.idle_count(&upstream.authority), 0);
        assert_eq!(upstream.connections(), 4);
    }

    #[tokio::test]
    async fn unreachable_upstreams_and_unfit_targets_fail_at_once() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = closed.local_addr().unwrap().to_string();
        drop(closed);
        let exchange = exchange();
        let none = || std::iter::empty();
        let failed = exchange.send(&Method::GET, &dead, &["/"], none()).await;
        assert!(
            matches!(failed, Err(ExchangeError::Connect(_))),
            "{failed:?}"
        );
        for (authority, target) in [
            ("127.0.0.1:1", "/a b"),
            ("127.0.0.1:1", "/a\r\nx-injected: 1"),
            ("127.0.0.1:1 x", "/"),
            ("", "/"),
        ] {
            let failed = exchange
                .send(&Method::GET, authority, &[target], none())
                .await;
            assert!(matches!(failed, Err(ExchangeError::Target)), "{failed:?}");
        }
    }

    #[test]
    fn upstream_urls_split_into_authority_and_path() {
        assert_eq!(
            split_http_url("http://127.0.0.1:8080/sample/jira/"),
            Some(("127.0.0.1:8080", "/sample/jira"))
        );
        assert_eq!(
            split_http_url("HTTP://jira.internal"),
            Some(("jira.internal", ""))
        );
        for unfit in [
            "https://jira.internal/",
            "http:///x",
            "http://h/p?q",
            "ftp://h",
            "http:/",
        ] {
            assert_eq!(split_http_url(unfit), None, "{unfit}");
        }
        assert_eq!(host_and_port_of("[::1]:8080"), Some(("::1", 8080)));
        assert_eq!(host_and_port_of("[::1]"), Some(("::1", 80)));
        assert_eq!(
            host_and_port_of("jira.internal"),
            Some(("jira.internal", 80))
        );
        assert_eq!(host_and_port_of("jira.internal:x"), None);
    }

    #[tokio::test]
    async fn head_answers_have_no_body_whatever_their_length_says() {
        let upstream =
            Upstream::start(|_| reply(&["HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n"])).await;
        let exchange = exchange();
        for _ in 0..2 {
            let response = call(&exchange, Method::HEAD, &upstream, "/", &HeaderMap::new())
                .await
                .unwrap();
            assert_eq!(response.headers()["content-length"], "1234");
            assert_eq!(read_all(response).await.unwrap(), "");
        }
        assert_eq!(upstream.connections(), 1);
    }
}
