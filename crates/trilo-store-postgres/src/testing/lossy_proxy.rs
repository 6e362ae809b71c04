//! A TCP proxy in front of the test server that can lose the answer to a statement, as a
//! network failure or a failover at the worst moment would. Armed with
//! [`LossyProxy::lose_the_next_answer`], it passes on the next statement a client runs (the
//! first `Bind` message it sees), lets the server answer it in full, so that the statement
//! has run and its transaction committed, and then closes that client's connection without
//! passing any of the answer on. [`LossyProxy::lose_the_next_commit_answer`] does the same
//! to the next `COMMIT` (a simple query), and [`LossyProxy::lose_the_next_commit`] keeps
//! that `COMMIT` from the server and closes only the client's side: the server's backend
//! then waits, in its transaction, for a client that is gone, as after a connection broken
//! without a word.
//!
//! The server's side of each connection is read as protocol messages (type byte, length),
//! so "in full" means up to the `ReadyForQuery` that follows the commit. Connections through
//! the proxy must not ask for TLS (`sslmode=disable`): the server's one-byte answer to that
//! request is not a message.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The protocol's `Bind` message: a statement about to run.
const BIND: u8 = b'B';
/// A simple `Query` message, as a transaction's `COMMIT` is sent.
const QUERY: u8 = b'Q';
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
    /// What the next loss is ([`Loss`]), or none armed.
    armed: AtomicU8,
    lost: AtomicUsize,
    /// The server's side of connections whose client is gone: kept open, so their
    /// backends wait.
    stranded: Mutex<Vec<OwnedWriteHalf>>,
}

/// What an armed proxy does to the message it waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Loss {
    /// Passes the next statement on and loses its answer.
    StatementAnswer = 1,
    /// Passes the next `COMMIT` on and loses its answer.
    CommitAnswer = 2,
    /// Keeps the next `COMMIT` from the server and closes only the client's side.
    Commit = 3,
}

impl Loss {
    /// The loss `code` (as stored in `Shared::armed`) names; `None` for none armed.
    fn armed(code: u8) -> Option<Loss> {
        [Loss::StatementAnswer, Loss::CommitAnswer, Loss::Commit]
            .into_iter()
            .find(|loss| *loss as u8 == code)
    }

    /// Whether `chunk`, the start of what a client sent, is what this loss waits for.
    fn waits_for(self, chunk: &[u8]) -> bool {
        match self {
            Loss::StatementAnswer => chunk.first() == Some(&BIND),
            Loss::CommitAnswer | Loss::Commit => is_commit(chunk),
        }
    }
}

/// A simple query that commits (sqlx sends a transaction's `COMMIT` so).
fn is_commit(chunk: &[u8]) -> bool {
    chunk.first() == Some(&QUERY)
        && chunk
            .get(5..)
            .is_some_and(|text| text.to_ascii_uppercase().starts_with(b"COMMIT"))
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
        self.arm(Loss::StatementAnswer);
    }

    /// Loses the answer to the next `COMMIT` any client sends; the server commits.
    pub fn lose_the_next_commit_answer(&self) {
        self.arm(Loss::CommitAnswer);
    }

    /// Keeps the next `COMMIT` any client sends from the server, and closes that client's
    /// connection while the server's side stays open (see the module's comment).
    pub fn lose_the_next_commit(&self) {
        self.arm(Loss::Commit);
    }

    fn arm(&self, loss: Loss) {
        self.shared.armed.store(loss as u8, Ordering::SeqCst);
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
        let fate = Arc::new(ConnectionFate::default());
        tokio::spawn(to_server(
            client_read,
            server_write,
            Arc::clone(&shared),
            Arc::clone(&fate),
        ));
        tokio::spawn(to_client(
            server_read,
            client_write,
            Arc::clone(&shared),
            fate,
        ));
    }
}

/// What is to become of one connection through the proxy.
#[derive(Default)]
struct ConnectionFate {
    /// Its next answer is to be lost.
    doomed: AtomicBool,
    /// Its client's side is to be closed now.
    hang_up: Notify,
}

/// Passes the client's bytes on; the message an armed loss waits for dooms the connection.
async fn to_server(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    shared: Arc<Shared>,
    fate: Arc<ConnectionFate>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let chunk = &buffer[..read];
        let armed = Loss::armed(shared.armed.load(Ordering::SeqCst));
        if let Some(loss) = armed.filter(|loss| loss.waits_for(chunk))
            && shared
                .armed
                .compare_exchange(loss as u8, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            if loss == Loss::Commit {
                shared.lost.fetch_add(1, Ordering::SeqCst);
                fate.hang_up.notify_one();
                if let Ok(mut stranded) = shared.stranded.lock() {
                    stranded.push(to);
                }
                return;
            }
            fate.doomed.store(true, Ordering::SeqCst);
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
    fate: Arc<ConnectionFate>,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            },
            () = fate.hang_up.notified() => {
                let _ = to.shutdown().await;
                return;
            }
        };
        pending.extend_from_slice(&buffer[..read]);
        while let Some(length) = whole_message(&pending) {
            let message: Vec<u8> = pending.drain(..length).collect();
            if fate.doomed.load(Ordering::SeqCst) {
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
    use super::{Loss, whole_message};

    #[test]
    fn a_commit_is_told_from_other_statements() {
        let query = |text: &str| {
            let mut message = vec![b'Q', 0, 0, 0, 0];
            message.extend_from_slice(text.as_bytes());
            message.push(0);
            message
        };
        assert!(Loss::Commit.waits_for(&query("COMMIT")));
        assert!(Loss::CommitAnswer.waits_for(&query("commit")));
        assert!(!Loss::Commit.waits_for(&query("BEGIN")));
        assert!(!Loss::Commit.waits_for(&[b'B', 0, 0, 0, 4]));
        assert!(Loss::StatementAnswer.waits_for(&[b'B', 0, 0, 0, 4]));
        assert!(!Loss::StatementAnswer.waits_for(&query("COMMIT")));
    }

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
