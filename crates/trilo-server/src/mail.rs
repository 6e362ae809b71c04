//! The mail trilo sends (password reset links): appended to a file (the demo, tests, or
//! a host whose mail is picked up from there), or handed to an SMTP relay on the local
//! network (plain SMTP; for TLS and authentication, relay through a local MTA). Off when
//! neither is configured: the pages then say that reset by mail is not available.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Where mail goes.
#[derive(Clone, Debug)]
pub enum Mailer {
    Off,
    /// Every message appended to this file (created 0600).
    File {
        path: PathBuf,
        from: String,
    },
    /// `host:port` of an SMTP relay.
    Smtp {
        relay: String,
        from: String,
    },
}

/// One message, plain text.
#[derive(Debug)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// An SMTP conversation that takes longer than this has failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

impl Mailer {
    pub fn is_on(&self) -> bool {
        !matches!(self, Mailer::Off)
    }

    pub async fn send(&self, mail: &Mail) -> anyhow::Result<()> {
        // A header value with a line break would let it add headers of its own.
        for value in [&mail.to, &mail.subject] {
            if value.contains(['\r', '\n']) {
                bail!("a mail header holds a line break");
            }
        }
        match self {
            Mailer::Off => bail!("no mail is configured ([mail] smtp_relay or file)"),
            Mailer::File { path, from } => append(path, &message(from, mail)),
            Mailer::Smtp { relay, from } => {
                tokio::time::timeout(SMTP_TIMEOUT, smtp(relay, from, mail))
                    .await
                    .context("the SMTP relay did not answer in time")?
            }
        }
    }
}

/// The message as RFC 5322 text with CRLF line ends.
fn message(from: &str, mail: &Mail) -> String {
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let mut text = format!(
        "From: trilo <{from}>\r\nTo: <{}>\r\nSubject: {}\r\nDate: {date}\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        mail.to, mail.subject
    );
    for line in mail.body.lines() {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text
}

fn append(path: &PathBuf, message: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(message.as_bytes())?;
    file.write_all(b"\r\n")?;
    Ok(())
}

/// EHLO, MAIL, RCPT, DATA (dot-stuffed), QUIT: each reply must be the expected class.
async fn smtp(relay: &str, from: &str, mail: &Mail) -> anyhow::Result<()> {
    let stream = TcpStream::connect(relay)
        .await
        .with_context(|| format!("connecting to the SMTP relay {relay}"))?;
    let (read, mut write) = stream.into_split();
    let mut replies = BufReader::new(read).lines();
    expect(&mut replies, 220).await?;
    for (command, code) in [
        ("EHLO trilo".to_owned(), 250),
        (format!("MAIL FROM:<{from}>"), 250),
        (format!("RCPT TO:<{}>", mail.to), 250),
        ("DATA".to_owned(), 354),
    ] {
        write.write_all(format!("{command}\r\n").as_bytes()).await?;
        expect(&mut replies, code).await?;
    }
    let mut data = String::new();
    for line in message(from, mail).split("\r\n") {
        // RFC 5321 §4.5.2: a line starting with a dot gets one more.
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
        data.push_str("\r\n");
    }
    data.push_str(".\r\n");
    write.write_all(data.as_bytes()).await?;
    expect(&mut replies, 250).await?;
    write.write_all(b"QUIT\r\n").await?;
    Ok(())
}

/// Reads one reply (all its `NNN-` lines and the final `NNN `) and checks its code.
async fn expect(
    replies: &mut tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    code: u16,
) -> anyhow::Result<()> {
    loop {
        let line = replies
            .next_line()
            .await?
            .context("the SMTP relay closed the connection")?;
        let got: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        if got != code {
            bail!("the SMTP relay answered {line:?} where {code} was expected");
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}
