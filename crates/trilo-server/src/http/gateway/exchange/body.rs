//! An upstream's response body, streamed off its connection as it arrives and decoded by
//! its framing (RFC 9112 §6, §7.1). Once the body has been read to its end, a connection
//! that may carry another exchange goes back to its pool; a body dropped earlier closes
//! it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};

use super::Conn;
use super::head::{Framing, MAX_HEAD};

/// The longest chunk-size line read (the size and any extensions).
const MAX_CHUNK_LINE: usize = 4096;

/// Where the body's reading stands.
#[derive(Debug)]
enum State {
    /// This many bytes are still to come.
    Length(u64),
    Chunked(Chunked),
    UntilClose,
    Done,
}

/// Where a chunked body's decoding stands.
#[derive(Debug)]
enum Chunked {
    /// A chunk-size line comes next.
    Size,
    /// This much of the current chunk's data is still to come.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer fields (dropped, as hyper drops them for HTTP/1.1) up to the blank line;
    /// `seen` bytes of them so far.
    Trailers { seen: usize },
}

/// What decoding the buffered bytes gave.
enum Step {
    Data(Bytes),
    NeedMore,
    End,
}

/// A response body read off its upstream connection.
#[derive(Debug)]
pub struct UpstreamBody {
    /// `None` once the body has ended or failed.
    conn: Option<Conn>,
    state: State,
    /// Whether the connection may go back to its pool at the body's end.
    reusable: bool,
}

impl UpstreamBody {
    pub(super) fn new(conn: Conn, framing: Framing, reusable: bool) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(length) => State::Length(length),
            Framing::Chunked => State::Chunked(Chunked::Size),
            Framing::UntilClose => State::UntilClose,
        };
        let mut body = Self {
            conn: Some(conn),
            state,
            reusable,
        };
        if matches!(body.state, State::Done) {
            body.finish();
        }
        body
    }

    /// Ends the body: its connection goes back to the pool when nothing is left over on
    /// it (bytes past the body's end would be an upstream's error, and the next answer's
    /// start), else it is closed.
    fn finish(&mut self) {
        self.state = State::Done;
        if let Some(conn) = self.conn.take()
            && self.reusable
            && conn.buffer.is_empty()
        {
            conn.release();
        }
    }

    fn fail(&mut self, error: io::Error) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        self.state = State::Done;
        self.conn = None;
        Poll::Ready(Some(Err(error)))
    }
}

impl hyper::body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let step = match &mut this.state {
                State::Done => Ok(Step::End),
                State::Length(remaining) => Ok(take_length(remaining, &mut conn.buffer)),
                State::Chunked(chunked) => decode_chunked(chunked, &mut conn.buffer),
                State::UntilClose if conn.buffer.is_empty() => Ok(Step::NeedMore),
                State::UntilClose => Ok(Step::Data(conn.buffer.split().freeze())),
            };
            match step {
                Err(error) => return this.fail(error),
                Ok(Step::Data(data)) => {
                    if matches!(this.state, State::Length(0)) {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Step::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Step::NeedMore) => match ready!(conn.poll_fill(cx)) {
                    Err(error) => return this.fail(error),
                    Ok(0) if matches!(this.state, State::UntilClose) => {
                        this.reusable = false;
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Ok(0) => {
                        return this.fail(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the product closed the connection mid-answer",
                        ));
                    }
                    Ok(_) => {}
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Done => SizeHint::with_exact(0),
            State::Length(remaining) => SizeHint::with_exact(remaining),
            _ => SizeHint::default(),
        }
    }
}

/// Up to `remaining` of the buffered bytes.
fn take_length(remaining: &mut u64, buffer: &mut BytesMut) -> Step {
    if buffer.is_empty() {
        return Step::NeedMore;
    }
    let available = u64::try_from(buffer.len()).unwrap_or(u64::MAX);
    let take = (*remaining).min(available);
    *remaining -= take;
    // `take` is at most `buffer.len()`, a usize.
    Step::Data(buffer.split_to(take as usize).freeze())
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the product's chunked answer is malformed: {what}"),
    )
}

/// Decodes as much of a chunked body as `buffer` holds, up to the next data.
fn decode_chunked(state: &mut Chunked, buffer: &mut BytesMut) -> io::Result<Step> {
    loop {
        match state {
            Chunked::Size => {
                let Some(line) = take_line(buffer, MAX_CHUNK_LINE)? else {
                    return Ok(Step::NeedMore);
                };
                let size = chunk_size(&line)?;
                *state = if size == 0 {
                    Chunked::Trailers { seen: 0 }
                } else {
                    Chunked::Data(size)
                };
            }
            Chunked::Data(remaining) => {
                let step = take_length(remaining, buffer);
                if *remaining == 0 {
                    *state = Chunked::DataEnd;
                }
                return Ok(step);
            }
            Chunked::DataEnd => {
                if buffer.len() < 2 {
                    return Ok(Step::NeedMore);
                }
                if &buffer[..2] != b"\r\n" {
                    return Err(invalid("no CRLF after a chunk's data"));
                }
                buffer.advance(2);
                *state = Chunked::Size;
            }
            Chunked::Trailers { seen } => {
                let Some(line) = take_line(buffer, MAX_HEAD.saturating_sub(*seen))? else {
                    return Ok(Step::NeedMore);
                };
                if line.is_empty() {
                    return Ok(Step::End);
                }
                *seen += line.len() + 2;
            }
        }
    }
}

/// The next line of `buffer` without its CRLF (or bare LF, RFC 9112 §2.2), or `None`
/// while it is incomplete; a line longer than `max` is an error.
fn take_line(buffer: &mut BytesMut, max: usize) -> io::Result<Option<BytesMut>> {
    let Some(end) = buffer.iter().take(max + 2).position(|byte| *byte == b'\n') else {
        if buffer.len() > max + 1 {
            return Err(invalid("a line is too long"));
        }
        return Ok(None);
    };
    let mut line = buffer.split_to(end + 1);
    line.truncate(end);
    if line.last() == Some(&b'\r') {
        line.truncate(end - 1);
    }
    Ok(Some(line))
}

/// A chunk-size line: hexadecimal digits, then optional whitespace and `;` extensions
/// (ignored).
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line
        .iter()
        .take_while(|byte| byte.is_ascii_hexdigit())
        .count();
    if digits == 0 || digits > 16 {
        return Err(invalid("a chunk size"));
    }
    let rest = line[digits..].trim_ascii_start();
    if !rest.is_empty() && rest[0] != b';' {
        return Err(invalid("a chunk size"));
    }
    let hex = std::str::from_utf8(&line[..digits]).map_err(|_| invalid("a chunk size"))?;
    u64::from_str_radix(hex, 16).map_err(|_| invalid("a chunk size"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Decodes `raw` fed in pieces of `piece` bytes: the data, whether it ended, and how
    /// many bytes were left in the buffer.
    fn decode_in_pieces(raw: &[u8], piece: usize) -> io::Result<(Vec<u8>, bool, usize)> {
        let mut state = Chunked::Size;
        let mut buffer = BytesMut::new();
        let mut data = Vec::new();
        let mut pieces = raw.chunks(piece);
        loop {
            match decode_chunked(&mut state, &mut buffer)? {
                Step::Data(bytes) => data.extend_from_slice(&bytes),
                Step::End => return Ok((data, true, buffer.len())),
                Step::NeedMore => match pieces.next() {
                    Some(next) => buffer.extend_from_slice(next),
                    None => return Ok((data, false, buffer.len())),
                },
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_reads_cut() {
        let raw = b"5\r\nhello\r\n7;name=value\r\n, world\r\n0\r\nx-trailer: t\r\n\r\n";
        for piece in [1, 2, 3, 7, raw.len()] {
            let (data, ended, left) = decode_in_pieces(raw, piece).unwrap();
            assert_eq!(data, b"hello, world", "pieces of {piece}");
            assert!(ended);
            assert_eq!(left, 0);
        }
        // Upper-case hex, bare LF line ends and whitespace before an extension.
        let (data, ended, _) = decode_in_pieces(b"A \t;x\nabcdefghij\r\n0\n\n", 4).unwrap();
        assert_eq!((data.as_slice(), ended), (&b"abcdefghij"[..], true));
        // Cut short: no end.
        let (data, ended, _) = decode_in_pieces(b"5\r\nhel", 2).unwrap();
        assert_eq!((data.as_slice(), ended), (&b"hel"[..], false));
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for raw in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5 5\r\nhello\r\n0\r\n\r\n",
            b"11111111111111111\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
        ] {
            let error = decode_in_pieces(raw, raw.len()).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{raw:?}");
        }
        let endless_size = vec![b'1'; MAX_CHUNK_LINE * 2];
        assert!(decode_in_pieces(&endless_size, 64).is_err());
        let mut endless_trailer = b"0\r\n".to_vec();
        endless_trailer.extend(std::iter::repeat_n(b't', MAX_HEAD + 8));
        assert!(decode_in_pieces(&endless_trailer, 4096).is_err());
    }

    #[test]
    fn a_length_takes_no_more_than_its_bytes() {
        let mut buffer = BytesMut::from(&b"abcdefNEXT"[..]);
        let mut remaining = 6;
        let Step::Data(data) = take_length(&mut remaining, &mut buffer) else {
            panic!("data expected");
        };
        assert_eq!(
            (&data[..], remaining, &buffer[..]),
            (&b"abcdef"[..], 0, &b"NEXT"[..])
        );
    }
}
