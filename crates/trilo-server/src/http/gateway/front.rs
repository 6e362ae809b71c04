//! The gateway's front: what a connection meets before hyper (`listener::Front`). It reads
//! request heads itself and answers the gateway calls without a body (most API calls)
//! straight off the connection; at the first request it does not take, it hands the
//! connection, with what it has read of that request, to hyper and the router for good.
//!
//! Why: a warm gateway call is two HTTP exchanges, and hyper's server side (its connection
//! state machine, the router and the service stack around a handler) was most of what the
//! caller's exchange cost (README, "The gateway's front"). The front keeps the rules
//! where they are: the call is answered by [`super::answer`], the same as the router's
//! gateway service, inside the same envelope ([`enveloped`]), and only the reading of the
//! head and the writing of the answer are its own.
//!
//! What it takes: an HTTP/1.1 `GET`, `HEAD` or `DELETE` under `/ex/` with neither
//! `Content-Length` nor `Transfer-Encoding` (so no body, RFC 9112 §6.3), nor `Expect`,
//! `Upgrade` or `Origin` (CORS preflights and browsers' calls stay with the router's CORS
//! layer), its head parsed whole within hyper's limits. Anything else, a head that does
//! not parse included, goes to hyper untouched, which answers it as it always has.

use axum::body::Body;
use axum::http::header::{self, HeaderName};
use axum::http::{Method, Request, Response, StatusCode, Uri};
use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use http_body_util::BodyExt;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::exchange::{FieldSpan, MAX_HEAD, MAX_HEADERS, header_map};
use super::{ROUTE, answer, is_gateway_path};
use crate::http::api_cors::add_cors_headers;
use crate::http::envelope::enveloped;
use crate::http::request_id::{self, RouteName};
use crate::listener::{Front, ListenerSettings, client_address};
use crate::state::AppState;

/// A request with any of these is hyper's: a body comes or may come, or it asks for what
/// the router's layers answer (CORS).
const LEFT_TO_HYPER: [HeaderName; 5] = [
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::EXPECT,
    header::UPGRADE,
    header::ORIGIN,
];
/// Room in a request's header map for what the envelope adds (`X-Request-Id`).
const ROOM_FOR_THE_ENVELOPE: usize = 1;
/// An answer's body is gathered into one write with its head up to this size; a larger
/// piece is written by itself.
const GATHER_UP_TO: usize = 16 * 1024;

/// The gateway's front for one server (see the module's comment).
pub struct GatewayFront {
    state: AppState,
}

impl GatewayFront {
    pub fn new(state: AppState) -> Arc<Self> {
        Arc::new(Self { state })
    }
}

impl std::fmt::Debug for GatewayFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewayFront")
    }
}

impl Front for GatewayFront {
    fn serve<'a>(
        &'a self,
        stream: &'a mut TcpStream,
        peer: SocketAddr,
        settings: &'a ListenerSettings,
        closing: watch::Receiver<bool>,
    ) -> BoxFuture<'a, Option<BytesMut>> {
        Box::pin(self.serve_connection(stream, peer, settings, closing))
    }
}

/// A request head the front takes, read off the connection.
struct TakenRequest {
    request: Request<Body>,
    /// The caller asked for the connection to close after the answer.
    close: bool,
}

/// What the front made of the bytes at the front of the buffer.
// Moved once per request; boxing the request would cost an allocation each time.
#[allow(clippy::large_enum_variant)]
enum Head {
    /// More bytes are needed.
    Partial,
    /// Not a request the front takes: hyper's.
    NotOurs,
    Ours(TakenRequest),
}

impl GatewayFront {
    async fn serve_connection(
        &self,
        stream: &mut TcpStream,
        peer: SocketAddr,
        settings: &ListenerSettings,
        mut closing: watch::Receiver<bool>,
    ) -> Option<BytesMut> {
        let mut buffer = BytesMut::with_capacity(8 * 1024);
        let mut out = Vec::with_capacity(4 * 1024);
        loop {
            let taken = loop {
                match take_request_head(&mut buffer) {
                    Head::Ours(taken) => break taken,
                    Head::NotOurs => return Some(buffer),
                    Head::Partial => {}
                }
                if *closing.borrow_and_update() {
                    return None;
                }
                // Waiting for a head (a keep-alive connection between requests too) is
                // bounded as hyper bounds it.
                buffer.reserve(4 * 1024);
                let read = tokio::select! {
                    read = tokio::time::timeout(
                        settings.header_read_timeout,
                        tokio::io::AsyncReadExt::read_buf(stream, &mut buffer),
                    ) => read,
                    _ = closing.changed() => return None,
                };
                match read {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                    Ok(Ok(_)) => {}
                }
            };
            let head_request = taken.request.method() == Method::HEAD;
            let client = client_address(peer, taken.request.headers(), &settings.trusted_proxies);
            let state = &self.state;
            let response = enveloped(taken.request, state, |request| async move {
                request_id::note_route(RouteName::Fixed(ROUTE));
                let mut response = answer(state, request, Some(client.ip())).await;
                add_cors_headers(response.headers_mut());
                response
            })
            .await;
            let close = taken.close || *closing.borrow();
            match write_answer(stream, &mut out, response, head_request, close).await {
                Ok(true) if !close => {}
                _ => return None,
            }
        }
    }
}

/// Reads the request head at the front of `buffer` (see the module's comment for what the
/// front takes). A head it takes is removed from the buffer; anything else stays.
fn take_request_head(buffer: &mut BytesMut) -> Head {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    let length = match parsed.parse(buffer) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if buffer.len() <= MAX_HEAD => return Head::Partial,
        _ => return Head::NotOurs,
    };
    let method = match parsed.method {
        Some("GET") => Method::GET,
        Some("HEAD") => Method::HEAD,
        Some("DELETE") => Method::DELETE,
        _ => return Head::NotOurs,
    };
    let Some(target) = parsed.path.filter(|path| is_gateway_path(path)) else {
        return Head::NotOurs;
    };
    if parsed.version != Some(1) {
        return Head::NotOurs;
    }
    let mut close = false;
    let mut spans = [FieldSpan::default(); MAX_HEADERS];
    let count = parsed.headers.len();
    for (span, field) in spans.iter_mut().zip(parsed.headers.iter()) {
        let name = field.name;
        if LEFT_TO_HYPER
            .iter()
            .any(|left| left.as_str().eq_ignore_ascii_case(name))
        {
            return Head::NotOurs;
        }
        if name.eq_ignore_ascii_case(header::CONNECTION.as_str()) {
            close |= lists_close(field.value);
        }
        *span = FieldSpan::of(field, buffer.as_ptr());
    }
    let target_at = target.as_ptr() as usize - buffer.as_ptr() as usize;
    let target_len = target.len();
    let head = buffer.split_to(length).freeze();
    let built = build_request(
        &head,
        method,
        target_at..target_at + target_len,
        &spans[..count],
    );
    match built {
        Some(request) => Head::Ours(TakenRequest { request, close }),
        None => {
            // A target or field hyper's own reading decides on: put the head back.
            let mut whole = BytesMut::with_capacity(head.len() + buffer.len());
            whole.extend_from_slice(&head);
            whole.extend_from_slice(buffer);
            *buffer = whole;
            Head::NotOurs
        }
    }
}

/// The request as the router's gateway service would get it from hyper: method, target,
/// fields (their values sharing the head's bytes), no body.
fn build_request(
    head: &Bytes,
    method: Method,
    target: std::ops::Range<usize>,
    spans: &[FieldSpan],
) -> Option<Request<Body>> {
    let uri = Uri::from_maybe_shared(head.slice(target)).ok()?;
    let headers = header_map(head, spans, ROOM_FOR_THE_ENVELOPE)?;
    let mut request = Request::new(Body::empty());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Some(request)
}

/// Whether a `Connection` value lists `close`.
fn lists_close(value: &[u8]) -> bool {
    value
        .split(|byte| *byte == b',')
        .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
}

/// Writes `response` as HTTP/1.1: its head (with `Date`, and the framing the body needs),
/// then its body as it comes. `Ok(true)`: the connection may carry another request.
async fn write_answer(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    response: Response<Body>,
    head_request: bool,
    close: bool,
) -> io::Result<bool> {
    out.clear();
    let (parts, mut body) = response.into_parts();
    let status = parts.status;
    let bodiless = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let length = (!bodiless)
        .then(|| hyper::body::Body::size_hint(&body).exact())
        .flatten();
    write_status_line(out, status);
    for (name, value) in &parts.headers {
        // The framing is the body's own, written below; an answer to HEAD keeps the
        // length the upstream stated.
        let framing = *name == header::CONTENT_LENGTH || *name == header::TRANSFER_ENCODING;
        if framing && (!head_request || *name == header::TRANSFER_ENCODING) {
            continue;
        }
        write_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let chunked = !bodiless && length.is_none();
    if let Some(length) = length {
        let mut digits = [0u8; 20];
        write_field(out, b"content-length", decimal(length, &mut digits));
    } else if chunked {
        write_field(out, b"transfer-encoding", b"chunked");
    }
    if close {
        write_field(out, b"connection", b"close");
    }
    if !parts.headers.contains_key(header::DATE) {
        write_field(out, b"date", &date::now());
    }
    out.extend_from_slice(b"\r\n");
    if bodiless {
        stream.write_all(out).await?;
        return Ok(true);
    }
    let mut sent: u64 = 0;
    loop {
        // What is ready now joins the head in one write; the rest is awaited.
        let frame = match body.frame().now_or_never() {
            Some(frame) => frame,
            None => {
                stream.write_all(out).await?;
                out.clear();
                body.frame().await
            }
        };
        let data = match frame {
            None => break,
            // The upstream broke off (logged by `forward`): the caller's connection is cut
            // so it sees the answer is not whole.
            Some(Err(_)) => {
                stream.write_all(out).await?;
                return Ok(false);
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
        };
        if data.is_empty() {
            continue;
        }
        sent += data.len() as u64;
        if length.is_some_and(|length| sent > length) {
            // Longer than it said: what was promised has gone out in full, so the
            // connection cannot carry on.
            stream.write_all(out).await?;
            return Ok(false);
        }
        if chunked {
            let _ = write!(out, "{:x}\r\n", data.len());
        }
        if data.len() <= GATHER_UP_TO {
            out.extend_from_slice(&data);
        } else {
            stream.write_all(out).await?;
            out.clear();
            stream.write_all(&data).await?;
        }
        if chunked {
            out.extend_from_slice(b"\r\n");
        }
        if out.len() >= GATHER_UP_TO {
            stream.write_all(out).await?;
            out.clear();
        }
    }
    if chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    stream.write_all(out).await?;
    Ok(length.is_none_or(|length| sent == length))
}

fn write_status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `n` in decimal, written into `digits`.
fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &digits[at..];
        }
    }
}

fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `Date` (RFC 9110 §6.6.1), formatted once a second per thread.
mod date {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};

    thread_local! {
        static CACHED: RefCell<(u64, [u8; 29])> = const { RefCell::new((0, [0; 29])) };
    }

    pub fn now() -> [u8; 29] {
        let now = SystemTime::now();
        let second = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        CACHED.with(|cached| {
            let mut cached = cached.borrow_mut();
            if cached.0 != second {
                let text = httpdate::fmt_http_date(now);
                if let Ok(bytes) = <[u8; 29]>::try_from(text.as_bytes()) {
                    *cached = (second, bytes);
                }
            }
            cached.1
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use axum::http::HeaderValue;

    use super::*;

    /// How long a test waits for what should come at once.
    const PROMPT: Duration = Duration::from_secs(5);

    fn taken(raw: &str) -> (Head, String) {
        let mut buffer = BytesMut::from(raw);
        let head = take_request_head(&mut buffer);
        (head, String::from_utf8(buffer.to_vec()).unwrap())
    }

    #[test]
    fn a_bodiless_gateway_call_is_taken_and_the_next_request_stays() {
        let raw = "GET /ex/jira/c-1/rest/api/3/myself?x=1 HTTP/1.1\r\nHost: api\r\n\
                   Authorization: Bearer t\r\nX-Custom: a\r\nx-custom: b\r\n\r\nGET /next";
        let (head, rest) = taken(raw);
        let Head::Ours(taken) = head else {
            panic!("taken")
        };
        assert_eq!(rest, "GET /next");
        assert!(!taken.close);
        let request = taken.request;
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri().path(), "/ex/jira/c-1/rest/api/3/myself");
        assert_eq!(request.uri().query(), Some("x=1"));
        assert_eq!(request.headers()["authorization"], "Bearer t");
        let custom: Vec<_> = request.headers().get_all("x-custom").iter().collect();
        assert_eq!(custom, ["a", "b"]);
        assert!(hyper::body::Body::is_end_stream(request.body()));
    }

    #[test]
    fn connection_close_is_noticed() {
        let raw = "DELETE /ex/jira/c/x HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n";
        let (Head::Ours(taken), _) = taken(raw) else {
            panic!("taken")
        };
        assert!(taken.close);
    }

    #[test]
    fn anything_else_is_left_whole_for_hyper() {
        for raw in [
            // Not the gateway's, or not a method without a body.
            "GET /oauth/authorize HTTP/1.1\r\n\r\n",
            "POST /ex/jira/c/x HTTP/1.1\r\n\r\n",
            "OPTIONS /ex/jira/c/x HTTP/1.1\r\nOrigin: https://a\r\n\r\n",
            // Bodies, in any case.
            "GET /ex/jira/c/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "GET /ex/jira/c/x HTTP/1.1\r\ntransfer-ENCODING: chunked\r\n\r\n0\r\n\r\n",
            "GET /ex/jira/c/x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET /ex/jira/c/x HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET /ex/jira/c/x HTTP/1.1\r\nOrigin: https://app\r\n\r\n",
            // Other versions and heads that do not parse.
            "GET /ex/jira/c/x HTTP/1.0\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GET /ex/jira/c/x HTTP/1.1\r\nbad header\r\n\r\n",
            "GET /ex/jira/c/x HTTP/1.1\r\nX-Bad: a\u{1}b\r\n\r\n",
        ] {
            let (head, rest) = taken(raw);
            assert!(matches!(head, Head::NotOurs), "{raw:?}");
            assert_eq!(rest, raw, "nothing of {raw:?} is taken");
        }
    }

    #[test]
    fn a_head_not_yet_whole_waits_for_more_within_the_limit() {
        let (head, rest) = taken("GET /ex/jira/c/x HTTP/1.1\r\nHost: a");
        assert!(matches!(head, Head::Partial));
        assert_eq!(rest, "GET /ex/jira/c/x HTTP/1.1\r\nHost: a");
        let endless = format!("GET /ex/jira/c/x HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
        assert!(matches!(taken(&endless).0, Head::NotOurs));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
        let raw = format!("GET /ex/jira/c/x HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(taken(&raw).0, Head::NotOurs));
    }

    /// What `write_answer` writes for `response` (to a loopback socket) and whether it
    /// keeps the connection.
    async fn written(response: Response<Body>, head_request: bool, close: bool) -> (String, bool) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let mut out = Vec::new();
        let keep = write_answer(&mut server, &mut out, response, head_request, close)
            .await
            .unwrap();
        drop(server);
        let mut all = Vec::new();
        tokio::time::timeout(
            PROMPT,
            tokio::io::AsyncReadExt::read_to_end(&mut client, &mut all),
        )
        .await
        .unwrap()
        .unwrap();
        (String::from_utf8(all).unwrap(), keep)
    }

    fn without_date(written: &str) -> String {
        written
            .split("\r\n")
            .filter(|line| !line.starts_with("date: "))
            .collect::<Vec<_>>()
            .join("\r\n")
    }

    #[tokio::test]
    async fn a_whole_answer_goes_out_with_its_length_and_a_date() {
        let mut response = Response::new(Body::from("hello"));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let (text, keep) = written(response, false, false).await;
        assert!(keep);
        assert!(text.contains("\r\ndate: "), "{text}");
        assert_eq!(
            without_date(&text),
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello"
        );
    }

    #[tokio::test]
    async fn a_streamed_answer_is_chunked_and_a_head_answer_keeps_its_length() {
        let body = Body::from_stream(futures_util::stream::iter([
            Ok::<_, io::Error>(Bytes::from_static(b"hel")),
            Ok(Bytes::from_static(b"lo, world")),
        ]));
        let (text, keep) = written(Response::new(body), false, true).await;
        assert!(keep);
        assert_eq!(
            without_date(&text),
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
             3\r\nhel\r\n9\r\nlo, world\r\n0\r\n\r\n"
        );

        let mut response = Response::new(Body::empty());
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("42"));
        let (text, _) = written(response, true, false).await;
        assert_eq!(
            without_date(&text),
            "HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n"
        );

        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let (text, _) = written(response, false, false).await;
        assert_eq!(without_date(&text), "HTTP/1.1 204 No Content\r\n\r\n");
    }

    #[tokio::test]
    async fn an_answer_that_breaks_off_cuts_the_connection() {
        let pieces = futures_util::stream::iter([
            Ok(Bytes::from_static(b"part")),
            Err(io::Error::other("upstream died")),
        ]);
        let (text, keep) = written(Response::new(Body::from_stream(pieces)), false, false).await;
        assert!(!keep);
        assert!(text.ends_with("4\r\npart\r\n"), "{text}");
    }
}
