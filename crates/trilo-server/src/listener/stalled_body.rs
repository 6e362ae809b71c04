//! A request body that fails when it stalls: no part of it for `timeout` while the
//! handler waits for one. Unlike tower-http's `TimeoutBody`, it says what its body says
//! of its end and size, so a handler (the gateway's above all) can tell a request without
//! a body from one whose body is still to come, and its timer runs only while the body
//! keeps the handler waiting.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error of a body that stalled.
#[derive(Debug, thiserror::Error)]
#[error("the request body stalled: nothing of it arrived for {0:?}")]
pub struct Stalled(Duration);

/// `body`, failing with [`Stalled`] after `timeout` without a frame.
#[derive(Debug)]
pub struct StallTimeout<B> {
    body: B,
    timeout: Duration,
    /// Armed while the body is awaited; kept across frames so a body allocates one timer.
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl<B> StallTimeout<B> {
    pub fn new(timeout: Duration, body: B) -> Self {
        Self {
            body,
            timeout,
            timer: None,
            armed: false,
        }
    }
}

impl<B> Body for StallTimeout<B>
where
    B: Body + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = B::Data;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, axum::BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            this.armed = false;
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        // The clock is read only when the wait begins, not on every poll while it lasts.
        let timer = match &mut this.timer {
            Some(timer) => {
                if !this.armed {
                    timer.as_mut().reset(Instant::now() + this.timeout);
                }
                timer
            }
            None => this
                .timer
                .insert(Box::pin(tokio::time::sleep(this.timeout))),
        };
        this.armed = true;
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Stalled(this.timeout).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use axum::body::Bytes;
    use http_body_util::{BodyExt, Empty, Full, StreamBody};

    use super::*;

    #[test]
    fn the_end_and_size_of_the_body_show_through() {
        let empty = StallTimeout::new(Duration::from_secs(1), Empty::<Bytes>::new());
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
        let full = StallTimeout::new(Duration::from_secs(1), Full::new(Bytes::from("abc")));
        assert!(!full.is_end_stream());
        assert_eq!(full.size_hint().exact(), Some(3));
    }

    #[tokio::test]
    async fn a_body_fails_after_the_timeout_without_a_frame_but_not_while_frames_come() {
        let timeout = Duration::from_millis(300);
        // A frame every 200 ms: each within the timeout, together longer than it.
        let slow = futures_util::stream::unfold(0, |sent| async move {
            (sent < 3).then_some(())?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            Some((
                Ok::<_, std::io::Error>(Frame::data(Bytes::from("x"))),
                sent + 1,
            ))
        });
        let body = StallTimeout::new(timeout, StreamBody::new(Box::pin(slow)));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "xxx");
        let stalled = futures_util::stream::pending::<Result<Frame<Bytes>, std::io::Error>>();
        let started = Instant::now();
        let error = StallTimeout::new(timeout, StreamBody::new(stalled))
            .collect()
            .await
            .unwrap_err();
        assert!(error.is::<Stalled>(), "{error}");
        assert!(started.elapsed() >= timeout);
    }
}
