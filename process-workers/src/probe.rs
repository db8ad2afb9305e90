//! A service's health probe: a TCP connect, an HTTP status, or a check
//! command, each bounded by a timeout.

use std::fmt;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::command::ProcessCommand;

/// The most of an HTTP answer read for its status line.
const MAX_STATUS_LINE: usize = 1024;

/// How a [`ServiceChild`](crate::ServiceChild) tells that its service is
/// healthy. Every check is bounded by the service's probe timeout.
///
/// ```no_run
/// use candado_process::{ProcessCommand, Probe};
/// let addr = "127.0.0.1:8080".parse().unwrap();
/// let tcp = Probe::Tcp(addr);
/// let http = Probe::http(addr, "/health"); // expects 200
/// let check = Probe::Command(ProcessCommand::new("pg_isready"));
/// # let _ = (tcp, http, check);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Probe {
    /// Healthy when a TCP connection to the address is accepted.
    Tcp(SocketAddr),
    /// Healthy when an HTTP/1.0 `GET path` answers `expect_status`.
    Http {
        /// Where the service listens.
        addr: SocketAddr,
        /// The path asked for, such as `/health`.
        path: String,
        /// The status a healthy service answers.
        expect_status: u16,
    },
    /// Healthy when the command exits 0. Past the timeout it is killed and
    /// reaped, and the probe failed.
    Command(ProcessCommand),
}

impl Probe {
    /// An HTTP probe expecting status 200.
    pub fn http(addr: SocketAddr, path: impl Into<String>) -> Self {
        Self::Http {
            addr,
            path: path.into(),
            expect_status: 200,
        }
    }

    /// Runs the check once: `Err` says why it failed.
    pub(crate) async fn check(&self, timeout: Duration) -> Result<(), String> {
        match self {
            Self::Tcp(addr) => bounded(timeout, async {
                TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
                Ok(())
            })
            .await
            .map(drop),
            Self::Http {
                addr,
                path,
                expect_status,
            } => {
                let status = bounded(timeout, http_status(*addr, path)).await?;
                if status == *expect_status {
                    Ok(())
                } else {
                    Err(format!("HTTP status {status}, expected {expect_status}"))
                }
            }
            Self::Command(command) => run_check(command, timeout).await,
        }
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "tcp {addr}"),
            Self::Http { addr, path, .. } => write!(f, "http {addr}{path}"),
            Self::Command(command) => write!(f, "command {}", command.program().display()),
        }
    }
}

async fn bounded<T>(
    timeout: Duration,
    check: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(timeout, check)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
}

/// A minimal HTTP/1.0 GET: the status code of the answer's status line.
async fn http_status(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 256];
    while !answer.contains(&b'\n') && answer.len() < MAX_STATUS_LINE {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    parse_status(&answer)
}

/// `HTTP/1.x NNN reason` to `NNN`.
fn parse_status(answer: &[u8]) -> Result<u16, String> {
    let line = answer.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    match (words.next(), words.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(status))) if version.starts_with("HTTP/") => Ok(status),
        _ => Err(format!("not an HTTP status line: {:?}", line.trim_end())),
    }
}

/// Runs a check command (no stdio); killed and reaped past `timeout`.
async fn run_check(command: &ProcessCommand, timeout: Duration) -> Result<(), String> {
    let mut child = command
        .to_tokio_with(Stdio::null(), Stdio::null(), Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot spawn {}: {e}", command.program().display()))?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("the check {status}")),
        Ok(Err(e)) => Err(format!("waiting for the check failed: {e}")),
        Err(_) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            Err(format!(
                "the check did not finish within {timeout:?}; killed"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse_or_fail() {
        assert_eq!(parse_status(b"HTTP/1.0 200 OK\r\n\r\n"), Ok(200));
        assert_eq!(parse_status(b"HTTP/1.1 503 Unavailable\r\n"), Ok(503));
        assert!(parse_status(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_status(b"").is_err());
    }

    #[tokio::test]
    async fn a_check_command_past_its_timeout_is_killed_and_fails() {
        let sleep = ProcessCommand::new("sleep").arg("10");
        let started = std::time::Instant::now();
        let result = Probe::Command(sleep)
            .check(Duration::from_millis(100))
            .await;
        assert!(result.unwrap_err().contains("killed"));
        assert!(started.elapsed() < Duration::from_secs(5));
        let ok = Probe::Command(ProcessCommand::new("true"));
        assert_eq!(ok.check(Duration::from_secs(5)).await, Ok(()));
        let fail = Probe::Command(ProcessCommand::new("false"));
        assert!(fail.check(Duration::from_secs(5)).await.is_err());
    }
}
