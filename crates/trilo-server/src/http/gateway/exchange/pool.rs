//! Idle keep-alive connections to upstreams, per `host:port`: the newest is used first
//! (it is the least likely to have been closed), at most `max_idle` are kept per host,
//! and none longer than `idle_timeout`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::TcpStream;

/// A connection idle longer than this is checked for a close by the upstream before it
/// is used (one read); one idle for less is used as it is, since upstreams close idle
/// connections after seconds, and a call that finds its connection closed before any
/// answer is sent again when its method is idempotent.
pub(super) const CHECK_AFTER: Duration = Duration::from_secs(1);

/// The upstreams' idle connections.
#[derive(Debug)]
pub struct Pool {
    hosts: Mutex<HashMap<Box<str>, Arc<Host>>>,
    max_idle: usize,
    idle_timeout: Duration,
}

/// One upstream's idle connections, oldest first.
#[derive(Debug)]
pub struct Host {
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
    idle_timeout: Duration,
}

#[derive(Debug)]
struct Idle {
    stream: TcpStream,
    /// Empty; kept for its capacity.
    buffer: BytesMut,
    since: Instant,
}

impl Pool {
    pub fn new(max_idle: usize, idle_timeout: Duration) -> Self {
        Self {
            hosts: Mutex::new(HashMap::new()),
            max_idle,
            idle_timeout,
        }
    }

    /// The idle connections of `authority` (`host:port`).
    pub fn host(&self, authority: &str) -> Arc<Host> {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(host) = hosts.get(authority) {
            return Arc::clone(host);
        }
        let host = Arc::new(Host {
            idle: Mutex::new(Vec::new()),
            max_idle: self.max_idle,
            idle_timeout: self.idle_timeout,
        });
        hosts.insert(authority.into(), Arc::clone(&host));
        host
    }

    /// Closes every connection idle past the timeout.
    pub fn sweep(&self) {
        let hosts: Vec<Arc<Host>> = self
            .hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for host in hosts {
            drop(host.expired(Instant::now()));
        }
    }
}

/// Sweeps `pool` every half idle timeout until it is dropped.
pub async fn sweep_while_alive(pool: Weak<Pool>) {
    let Some(idle_timeout) = pool.upgrade().map(|pool| pool.idle_timeout) else {
        return;
    };
    let mut every = tokio::time::interval((idle_timeout / 2).max(Duration::from_secs(1)));
    every.tick().await;
    loop {
        every.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        pool.sweep();
    }
}

impl Host {
    /// The newest idle connection still open, if any.
    pub fn take(&self) -> Option<(TcpStream, BytesMut)> {
        let now = Instant::now();
        let mut closed = Vec::new();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let found = loop {
            let Some(newest) = idle.pop() else { break None };
            let idle_for = now.saturating_duration_since(newest.since);
            if idle_for >= self.idle_timeout {
                // The rest are older still.
                closed.append(&mut idle);
                closed.push(newest);
                break None;
            }
            if idle_for >= CHECK_AFTER && closed_while_idle(&newest.stream) {
                closed.push(newest);
                continue;
            }
            break Some((newest.stream, newest.buffer));
        };
        drop(idle);
        drop(closed);
        found
    }

    /// Keeps `stream` for the next call, unless the host has its fill (the oldest goes).
    pub fn put(&self, stream: TcpStream, buffer: BytesMut) {
        if self.max_idle == 0 {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest = (idle.len() >= self.max_idle).then(|| idle.remove(0));
        idle.push(Idle {
            stream,
            buffer,
            since: now,
        });
        drop(idle);
        drop(oldest);
    }

    /// Takes out the connections idle past the timeout (closed when the caller drops them,
    /// outside the lock).
    fn expired(&self, now: Instant) -> Vec<Idle> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = idle
            .iter()
            .position(|i| now.saturating_duration_since(i.since) < self.idle_timeout)
            .unwrap_or(idle.len());
        idle.drain(..fresh).collect()
    }

    #[cfg(test)]
    pub fn idle_count(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Whether an idle connection has something to read: the upstream's close (or bytes it
/// should not have sent), either way not a connection to send a request on.
fn closed_while_idle(stream: &TcpStream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    match stream.poll_read_ready(&mut cx) {
        Poll::Pending => false,
        Poll::Ready(Err(_)) => true,
        Poll::Ready(Ok(())) => {
            let mut probe = [0u8; 1];
            !matches!(stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        }
    }
}
