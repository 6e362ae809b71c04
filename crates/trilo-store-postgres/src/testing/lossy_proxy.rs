//! A TCP proxy in front of the test server that can lose the answer to a statement, as a
//! network failure or a failover at the worst moment would: armed, it passes on the next
//! statement a client runs (the first `Bind` message it sees), lets the server answer it in
//! full, so that the statement has run and its transaction committed, and then closes that
//! client's connection without passing any of the answer on.
//!
//! The server's side of each connection is read as protocol messages (type byte, length),
//! so "in full" means up to the `ReadyForQuery` that follows the commit. Connections through
//! the proxy must not ask for TLS (`sslmode=disable`): the server's one-byte answer to that
//! request is not a message.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The protocol's `Bind` message: a statement about to run.
const BIND: u8 = b'B';
/// `ReadyForQuery`: the server has finished the statement, its commit included.
const READY_FOR_QUERY: u8 = b'Z';

/// See the module's comment. Dropping it stops accepting; open connections end with
/// their clients.
pub struct LossyProxy {
    /// `url` of the database, through the proxy.
    pub url: String,
    shared: Arc<Shared>,
    accepting: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    armed: AtomicBool,
    lost: AtomicUsize,
}

impl LossyProxy {
    /// A proxy on a free loopback port in front of the server `url` names.
    pub async fn start(url: &str) -> std::io::Result<LossyProxy> {
        let mut through = url::Url::parse(url).map_err(std::io::Error::other)?;
        let server = format!(
            "{}:{}",
            through.host_str().unwrap_or("127.0.0.1"),
            through.port().unwrap_or(5432)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        through
            .set_host(Some("127.0.0.1"))
            .map_err(std::io::Error::other)?;
        through
            .set_port(Some(address.port()))
            .map_err(|()| std::io::Error::other("no port in the database URL"))?;
        through.query_pairs_mut().append_pair("sslmode", "disable");
        let shared = Arc::new(Shared::default());
        let accepting = tokio::spawn(accept(listener, server, Arc::clone(&shared)));
        Ok(LossyProxy {
            url: through.to_string(),
            shared,
            accepting,
        })
    }

    /// Loses the answer to the next statement any client runs.
    pub fn lose_the_next_answer(&self) {
        self.shared.armed.store(true, Ordering::SeqCst);
    }

    /// How many answers were lost so far.
    pub fn answers_lost(&self) -> usize {
        self.shared.lost.load(Ordering::SeqCst)
    }
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept(listener: TcpListener, server: String, shared: Arc<Shared>) {
    while let Ok((client, _)) = listener.accept().await {
        let Ok(upstream) = TcpStream::connect(&server).await else {
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = upstream.into_split();
        let doomed = Arc::new(AtomicBool::new(false));
        tokio::spawn(to_server(
            client_read,
            server_write,
            Arc::clone(&shared),
            Arc::clone(&doomed),
        ));
        tokio::spawn(to_client(
            server_read,
            client_write,
            Arc::clone(&shared),
            doomed,
        ));
    }
}

/// Passes the client's bytes on; the first statement after arming dooms the connection.
async fn to_server(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    shared: Arc<Shared>,
    doomed: Arc<AtomicBool>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let chunk = &buffer[..read];
        if chunk.first() == Some(&BIND) && shared.armed.swap(false, Ordering::SeqCst) {
            doomed.store(true, Ordering::SeqCst);
        }
        if to.write_all(chunk).await.is_err() {
            return;
        }
    }
}

/// Passes the server's messages on, whole; on a doomed connection it reads the answer up
/// to its `ReadyForQuery` and then closes the client's side instead.
async fn to_client(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    shared: Arc<Shared>,
    doomed: Arc<AtomicBool>,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        pending.extend_from_slice(&buffer[..read]);
        while let Some(length) = whole_message(&pending) {
            let message: Vec<u8> = pending.drain(..length).collect();
            if doomed.load(Ordering::SeqCst) {
                if message[0] == READY_FOR_QUERY {
                    shared.lost.fetch_add(1, Ordering::SeqCst);
                    // Both halves drop here: the client sees its connection end.
                    let _ = to.shutdown().await;
                    return;
                }
                continue;
            }
            if to.write_all(&message).await.is_err() {
                return;
            }
        }
    }
}

/// The length of the whole message at the front of `bytes` (type byte, then a length that
/// counts itself), when it has all arrived.
fn whole_message(bytes: &[u8]) -> Option<usize> {
    let length: [u8; 4] = bytes.get(1..5)?.try_into().ok()?;
    let whole = 1 + usize::try_from(u32::from_be_bytes(length)).ok()?;
    (bytes.len() >= whole).then_some(whole)
}

#[cfg(test)]
mod tests {
    use super::whole_message;

    #[test]
    fn a_message_is_whole_once_its_stated_length_has_arrived() {
        let ready = [b'Z', 0, 0, 0, 5, b'I'];
        assert_eq!(whole_message(&ready), Some(6));
        assert_eq!(whole_message(&ready[..5]), None);
        assert_eq!(whole_message(&ready[..2]), None);
        let two = [b'C', 0, 0, 0, 4, b'Z', 0, 0, 0, 5, b'I'];
        assert_eq!(whole_message(&two), Some(5));
    }
}
