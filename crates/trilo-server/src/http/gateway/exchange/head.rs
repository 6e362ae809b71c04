//! The heads of one HTTP/1.1 exchange with an upstream: the request's written out, the
//! response's read, and how long the response's body is (RFC 9112 §3, §4, §6).

use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use bytes::{Buf, BytesMut};

/// The most a response head may take, interim heads included (hyper's own limit is
/// larger; a product's answer head is a few hundred bytes).
pub const MAX_HEAD: usize = 64 * 1024;
/// The most header fields a response head may have (hyper's limit too).
pub const MAX_HEADERS: usize = 100;

/// Fields the gateway adds to an answer on its way (`forward`'s `nosniff` and CSP, the
/// API host's CORS, the envelope's request id and referrer policy), room for which is made
/// at once rather than by growing the map as they come.
const ROOM_FOR_THE_GATEWAY: usize = 8;

/// How a response's body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body: an answer to HEAD, a 204 or a 304.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the upstream closes the connection.
    UntilClose,
}

/// A final response head.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// Whether the connection may carry another exchange once the body is read: HTTP/1.1
    /// without `Connection: close`, delimited by more than the connection's end.
    pub reusable: bool,
}

/// A response head the gateway cannot take.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeadError {
    #[error("the answer's head is larger than {MAX_HEAD} bytes or has over {MAX_HEADERS} fields")]
    TooLarge,
    #[error("the answer's head is not HTTP/1.1: {0}")]
    Malformed(&'static str),
}

/// Writes the request line (`target` is the request target's pieces in order), `Host` and
/// `headers` (whatever `Host` they hold is skipped) and the blank line. A method that gives
/// content a meaning gets `Content-Length: 0` when `headers` has none, since no body
/// follows (RFC 9110 §8.6). The caller has checked that every piece is fit for its place.
pub fn write_request_head<'a>(
    out: &mut Vec<u8>,
    method: &Method,
    target: &[&str],
    host: &str,
    headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    for piece in target {
        out.extend_from_slice(piece.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_length = false;
    for (name, value) in headers {
        if name == b"host" {
            continue;
        }
        has_length |= name == b"content-length";
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    let without_content = matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::CONNECT | Method::TRACE
    );
    if !without_content && !has_length {
        out.extend_from_slice(b"content-length: 0\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Whether `value` may be sent as a field value: visible ASCII, spaces and tabs (the
/// `http` crate's `HeaderValue` rule, RFC 9110 §5.5 without obsolete text).
pub fn is_field_value(value: &str) -> bool {
    // Without an early exit, so the compiler checks many bytes at a time: an assertion is
    // most of a kilobyte, checked on every call.
    let unfit = |byte: u8| u8::from((byte < b' ' && byte != b'\t') | (byte > b'~'));
    value.bytes().fold(0, |seen, byte| seen | unfit(byte)) == 0
}

/// Where one header field lies in the head: name and value, as offsets.
#[derive(Clone, Copy, Default)]
struct FieldSpan {
    name: (usize, usize),
    value: (usize, usize),
}

/// Takes the final response head off the front of `buffer`, dropping interim (1xx) heads
/// before it; the body's first bytes stay in `buffer`. `Ok(None)`: more bytes are needed.
/// `head_request`: the request was HEAD, so no body follows whatever the head says.
pub fn take_response_head(
    buffer: &mut BytesMut,
    head_request: bool,
) -> Result<Option<ResponseHead>, HeadError> {
    loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut slots);
        let length = match response.parse(buffer) {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) if buffer.len() > MAX_HEAD => {
                return Err(HeadError::TooLarge);
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(_) => return Err(HeadError::Malformed("the status line or a field")),
        };
        let code = response.code.unwrap_or_default();
        if code == 101 {
            // The gateway never asks to switch protocols (`Upgrade` is stripped).
            return Err(HeadError::Malformed("101 Switching Protocols unasked"));
        }
        if (100..200).contains(&code) {
            buffer.advance(length);
            continue;
        }
        let status =
            StatusCode::from_u16(code).map_err(|_| HeadError::Malformed("the status code"))?;
        let http11 = response.version == Some(1);
        // The fields' places, so their values can share the head's bytes uncopied.
        let start = buffer.as_ptr() as usize;
        let offset = |part: &[u8]| (part.as_ptr() as usize - start, part.len());
        let mut spans = [FieldSpan::default(); MAX_HEADERS];
        let count = response.headers.len();
        for (span, field) in spans.iter_mut().zip(response.headers.iter()) {
            *span = FieldSpan {
                name: offset(field.name.as_bytes()),
                value: offset(field.value),
            };
        }
        let head = buffer.split_to(length).freeze();
        let mut headers = HeaderMap::with_capacity(count + ROOM_FOR_THE_GATEWAY);
        for span in &spans[..count] {
            let (at, len) = span.name;
            let name = HeaderName::from_bytes(&head[at..at + len])
                .map_err(|_| HeadError::Malformed("a field name"))?;
            let (at, len) = span.value;
            let value = HeaderValue::from_maybe_shared(head.slice(at..at + len))
                .map_err(|_| HeadError::Malformed("a field value"))?;
            headers.append(name, value);
        }
        return framed(status, headers, http11, head_request).map(Some);
    }
}

/// The body's delimitation and the connection's fate, from the head (RFC 9112 §6.3, in
/// its order). A `Content-Length` beside `Transfer-Encoding` is dropped, and that
/// connection closed after the answer, as the RFC asks of a recipient of both.
fn framed(
    status: StatusCode,
    mut headers: HeaderMap,
    http11: bool,
    head_request: bool,
) -> Result<ResponseHead, HeadError> {
    let mut reusable = http11 && !has_token(&headers, header::CONNECTION, "close");
    let framing =
        if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            Framing::Empty
        } else if headers.contains_key(header::TRANSFER_ENCODING) {
            if headers.remove(header::CONTENT_LENGTH).is_some() {
                reusable = false;
            }
            if last_coding_is_chunked(&headers) {
                Framing::Chunked
            } else {
                reusable = false;
                Framing::UntilClose
            }
        } else if let Some(length) = content_length(&headers)? {
            // Passed on as one plain value, so the caller's side reads the length this
            // side read (`7, 7` or a repeated field is one length here).
            let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
            let plain = values.next().is_some_and(|v| !v.as_bytes().contains(&b','))
                && values.next().is_none();
            if !plain {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            }
            Framing::Length(length)
        } else {
            reusable = false;
            Framing::UntilClose
        };
    Ok(ResponseHead {
        status,
        headers,
        framing,
        reusable,
    })
}

/// Whether a comma-separated field `name` lists `token` (any case).
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// Whether the last transfer coding applied is `chunked`: only then is the end of the
/// body known before the connection's.
fn last_coding_is_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"))
}

/// The one length every `Content-Length` value states (a list of equal values is one
/// length, RFC 9110 §8.6); differing or non-numeric values are an error.
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, HeadError> {
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for item in value.as_bytes().split(|byte| *byte == b',') {
            let digits = item.trim_ascii();
            let stated = (!digits.is_empty() && digits.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(digits).ok()?.parse::<u64>().ok())
                .flatten()
                .ok_or(HeadError::Malformed("Content-Length"))?;
            if length.is_some_and(|length| length != stated) {
                return Err(HeadError::Malformed("differing Content-Length values"));
            }
            length = Some(stated);
        }
    }
    Ok(length)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn take(raw: &str, head_request: bool) -> (Result<Option<ResponseHead>, HeadError>, String) {
        let mut buffer = BytesMut::from(raw);
        let head = take_response_head(&mut buffer, head_request);
        (head, String::from_utf8(buffer.to_vec()).unwrap())
    }

    /// The whole head of `raw`, an answer to a GET.
    fn head_of(raw: &str) -> ResponseHead {
        take(raw, false).0.unwrap().unwrap()
    }

    fn framing_of(raw: &str) -> (Framing, bool) {
        let head = head_of(raw);
        (head.framing, head.reusable)
    }

    #[test]
    fn the_request_head_names_the_host_and_carries_the_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(header::HOST, HeaderValue::from_static("gateway.example"));
        headers.append("x-many", HeaderValue::from_static("1"));
        headers.append("x-many", HeaderValue::from_static("2"));
        let pairs = headers
            .iter()
            .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()));
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            &Method::GET,
            &["/a", "?", "b=c"],
            "127.0.0.1:9",
            pairs,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /a?b=c HTTP/1.1\r\nhost: 127.0.0.1:9\r\naccept: application/json\r\n\
             x-many: 1\r\nx-many: 2\r\n\r\n"
        );
        let mut out = Vec::new();
        write_request_head(&mut out, &Method::POST, &["/p"], "h", std::iter::empty());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /p HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n"
        );
        let stated = [(&b"content-length"[..], &b"0"[..])];
        let mut out = Vec::new();
        write_request_head(&mut out, &Method::PUT, &["/p"], "h", stated.into_iter());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "PUT /p HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n"
        );
    }

    #[test]
    fn field_values_are_visible_ascii_spaces_and_tabs() {
        assert!(is_field_value("read:jira-work write:jira-work\tx"));
        assert!(is_field_value(""));
        for bad in ["a\r\nx-injected: 1", "a\nb", "\u{7f}", "é"] {
            assert!(!is_field_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_head_is_taken_whole_and_the_body_left_behind() {
        let (head, rest) = take(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nX-Two: a\r\nX-Two: b\r\n\r\n{}",
            false,
        );
        let head = head.unwrap().unwrap();
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.headers[header::CONTENT_TYPE], "application/json");
        let twos: Vec<_> = head.headers.get_all("x-two").iter().collect();
        assert_eq!(twos, ["a", "b"]);
        assert_eq!((head.framing, head.reusable), (Framing::Length(2), true));
        assert_eq!(rest, "{}");
        // Half a head asks for more and consumes nothing.
        let (head, rest) = take("HTTP/1.1 200 OK\r\nContent-Le", false);
        assert!(head.unwrap().is_none());
        assert_eq!(rest, "HTTP/1.1 200 OK\r\nContent-Le");
    }

    #[test]
    fn interim_answers_are_skipped_and_101_refused() {
        let (head, rest) = take(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert_eq!(head.unwrap().unwrap().status, StatusCode::CREATED);
        assert_eq!(rest, "");
        let (head, _) = take("HTTP/1.1 101 Switching Protocols\r\n\r\n", false);
        assert!(matches!(head, Err(HeadError::Malformed(_))));
    }

    #[test]
    fn the_body_is_delimited_as_rfc_9112_says() {
        let ok = "HTTP/1.1 200 OK\r\n";
        assert_eq!(
            framing_of(&format!("{ok}Transfer-Encoding: gzip, chunked\r\n\r\n")),
            (Framing::Chunked, true)
        );
        // Both: the length is dropped and the connection not used again.
        let head = head_of(&format!(
            "{ok}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        assert_eq!((head.framing, head.reusable), (Framing::Chunked, false));
        assert!(head.headers.get(header::CONTENT_LENGTH).is_none());
        assert_eq!(
            framing_of(&format!("{ok}Transfer-Encoding: gzip\r\n\r\n")),
            (Framing::UntilClose, false)
        );
        assert_eq!(
            framing_of(&format!("{ok}\r\n")),
            (Framing::UntilClose, false)
        );
        let head = head_of(&format!(
            "{ok}Content-Length: 7, 7\r\nContent-Length: 7\r\n\r\n"
        ));
        assert_eq!((head.framing, head.reusable), (Framing::Length(7), true));
        let lengths: Vec<_> = head
            .headers
            .get_all(header::CONTENT_LENGTH)
            .iter()
            .collect();
        assert_eq!(lengths, ["7"], "one plain length goes on");
        assert_eq!(
            framing_of(&format!(
                "{ok}Content-Length: 7\r\nConnection: Close\r\n\r\n"
            )),
            (Framing::Length(7), false)
        );
        assert_eq!(
            framing_of("HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\n"),
            (Framing::Length(7), false)
        );
        assert_eq!(
            framing_of("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"),
            (Framing::Empty, true)
        );
        assert_eq!(
            framing_of("HTTP/1.1 304 Not Modified\r\n\r\n"),
            (Framing::Empty, true)
        );
        let head = take(&format!("{ok}Content-Length: 7\r\n\r\n"), true).0;
        assert_eq!(head.unwrap().unwrap().framing, Framing::Empty);
    }

    #[test]
    fn bad_lengths_and_heads_are_errors() {
        let ok = "HTTP/1.1 200 OK\r\n";
        for length in ["5, 6", "-1", "+5", "5x", "", "99999999999999999999999"] {
            let (head, _) = take(&format!("{ok}Content-Length: {length}\r\n\r\n"), false);
            assert!(matches!(head, Err(HeadError::Malformed(_))), "{length}");
        }
        let (head, _) = take(
            &format!("{ok}Content-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            false,
        );
        assert!(matches!(head, Err(HeadError::Malformed(_))));
        let (head, _) = take("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", false);
        assert!(matches!(head, Err(HeadError::Malformed(_))));
        let (head, _) = take("SSH-2.0-OpenSSH\r\n\r\n", false);
        assert!(matches!(head, Err(HeadError::Malformed(_))));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
        let (head, _) = take(&format!("{ok}{many}\r\n"), false);
        assert_eq!(head.unwrap_err(), HeadError::TooLarge);
        let endless = format!("{ok}x-long: {}", "v".repeat(MAX_HEAD));
        let (head, _) = take(&endless, false);
        assert_eq!(head.unwrap_err(), HeadError::TooLarge);
    }
}
