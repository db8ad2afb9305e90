//! `--serve ADDR`: the built binary serves the dashboard and the observer's
//! endpoints while its scenario runs, and still exits 0 with its report.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The longest a step may take on a loaded machine.
const BOUND: Duration = Duration::from_secs(30);

/// `GET path` over HTTP/1.1: (status line, body).
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect_timeout(&addr, BOUND).expect("connects");
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("a response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head");
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

#[test]
fn the_dashboard_is_served_while_a_scenario_runs() {
    let mut demo = Command::new(env!("CARGO_BIN_EXE_candado-demo"))
        .args(["--scenario", "calm", "--time-scale", "0.5"])
        .args(["--serve", "127.0.0.1:0", "--report", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the demo starts");
    // The address chosen for port 0, from the demo's stderr.
    let stderr = demo.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("dashboard: http://") {
                let _ = tx.send(url.trim_end_matches('/').to_owned());
            }
        }
    });
    let addr: SocketAddr = match rx.recv_timeout(BOUND) {
        Ok(addr) => addr.parse().expect("an address"),
        Err(_) => {
            let _ = demo.kill();
            panic!("the demo did not say where it serves within {BOUND:?}");
        }
    };

    let (status, page) = get(addr, "/");
    assert!(status.contains("200"), "{status}");
    assert!(page.contains("Candado"), "{page}");
    let (status, pools) = get(addr, "/api/pools");
    assert!(status.contains("200"), "{status}");
    assert!(pools.contains(r#""name":"demo""#), "{pools}");
    let (status, tree) = get(addr, "/api/tree");
    assert!(status.contains("200"), "{status}");
    assert!(tree.contains(r#""path":"demo""#), "{tree}");
    let (status, _) = get(addr, "/metrics");
    assert!(status.contains("200"), "{status}");

    let mut report = String::new();
    demo.stdout
        .take()
        .unwrap()
        .read_to_string(&mut report)
        .unwrap();
    let status = demo.wait().expect("the demo ends");
    assert!(status.success(), "{status}: {report}");
    let report: serde_json::Value = serde_json::from_str(&report).expect("a JSON report");
    assert_eq!(report["lost"], 0);
}
