//! A plain HTTP/1.1 client over a TcpStream, bounded waits, and a test tree.
#![allow(dead_code, unreachable_pub)]

pub mod chores;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use actix::{Actor, Context, Handler, Message};
use candado::BackoffConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest any step of a test may take on a loaded machine.
pub const BOUND: Duration = Duration::from_secs(20);

/// `future`, or a panic naming `what` after [`BOUND`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(BOUND, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: no answer within {BOUND:?}"),
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header lines, lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
}

/// Splits a head into status and headers.
fn parse_head(head: &str) -> (u16, Vec<(String, String)>) {
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers)
}

/// `GET path`, read to the end.
pub async fn get(addr: SocketAddr, path: &str) -> Response {
    send(addr, &request(path)).await
}

/// `POST path` with no body and these extra header lines (`Name: value`).
pub async fn post(addr: SocketAddr, path: &str, headers: &[&str]) -> Response {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    for line in headers {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    send(addr, &head).await
}

/// Sends a request and reads the response to the end.
async fn send(addr: SocketAddr, request: &str) -> Response {
    let what = request.lines().next().unwrap_or_default().to_owned();
    within(&what, async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        let raw = String::from_utf8(raw).expect("utf-8");
        let (head, body) = raw.split_once("\r\n\r\n").expect("a head");
        let (status, headers) = parse_head(head);
        assert_ne!(
            headers
                .iter()
                .find(|(n, _)| n == "transfer-encoding")
                .map(|(_, v)| v.as_str()),
            Some("chunked"),
            "sized bodies only"
        );
        Response {
            status,
            headers,
            body: body.to_owned(),
        }
    })
    .await
}

/// A client of a server-sent event stream.
pub struct EventClient {
    stream: TcpStream,
    /// Bytes read and not yet split into lines.
    pending: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl EventClient {
    /// Opens `path` and reads the head.
    pub async fn open(addr: SocketAddr, path: &str) -> Self {
        within("opening the event stream", async {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.write_all(request(path).as_bytes()).await.unwrap();
            let mut client = EventClient {
                stream,
                pending: String::new(),
                status: 0,
                headers: Vec::new(),
            };
            while !client.pending.contains("\r\n\r\n") {
                client.read_more().await;
            }
            let (head, rest) = client.pending.split_once("\r\n\r\n").unwrap();
            let (status, headers) = parse_head(head);
            (client.status, client.headers) = (status, headers);
            client.pending = rest.to_owned();
            client
        })
        .await
    }

    async fn read_more(&mut self) {
        let mut buf = [0u8; 4096];
        let n = self.stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "the event stream closed");
        self.pending
            .push_str(std::str::from_utf8(&buf[..n]).expect("utf-8"));
    }

    /// The next complete line (chunk-size lines of the chunked encoding
    /// included: callers look for `data:` and `event:` lines).
    async fn next_line(&mut self) -> String {
        loop {
            if let Some((line, rest)) = self.pending.split_once('\n') {
                let line = line.trim_end_matches('\r').to_owned();
                self.pending = rest.to_owned();
                return line;
            }
            self.read_more().await;
        }
    }

    /// The next `data:` line's JSON, with the `event:` name before it, if any.
    pub async fn next_message(&mut self) -> (Option<String>, serde_json::Value) {
        let mut name = None;
        loop {
            let line = self.next_line().await;
            if let Some(event) = line.strip_prefix("event: ") {
                name = Some(event.to_owned());
            } else if let Some(data) = line.strip_prefix("data: ") {
                return (name, serde_json::from_str(data).expect("JSON data"));
            }
        }
    }

    /// The first event that satisfies `predicate`, within [`BOUND`].
    pub async fn wait_for(
        &mut self,
        mut predicate: impl FnMut(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        within("an event on the stream", async {
            loop {
                let (name, data) = self.next_message().await;
                if name.is_none() && predicate(&data) {
                    return data;
                }
            }
        })
        .await
    }
}

/// Restarts at once.
pub fn no_backoff() -> BackoffConfig {
    BackoffConfig {
        base: Duration::ZERO,
        cap: Duration::ZERO,
        ..BackoffConfig::default()
    }
}

/// A worker that panics on [`Boom`].
pub struct Flaky;

impl Actor for Flaky {
    type Context = Context<Self>;
}

/// Makes a [`Flaky`] panic.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Boom;

impl Handler<Boom> for Flaky {
    type Result = ();

    fn handle(&mut self, _: Boom, _: &mut Context<Self>) {
        panic!("boom");
    }
}

/// The sample line `line` of an OpenMetrics text, or a panic showing it.
pub fn assert_line(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "`{line}` is not in the scrape:\n{text}"
    );
}
