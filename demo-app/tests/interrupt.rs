//! Ctrl-C on the real demo binary: the first SIGINT drains and prints a
//! report that balances, with exit status 130; a second one exits 130 at
//! once, without waiting for the drain. Bounded waits only.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use candado_demo::{Report, FORCED};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Generous: these wait for events, not for time to pass.
const PATIENCE: Duration = Duration::from_secs(120);

struct Demo {
    child: Child,
    stderr: Receiver<String>,
    seen: Vec<String>,
}

impl Demo {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_candado-demo"))
            .args(args)
            .env("RUST_LOG", "candado_demo=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the demo binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            stderr: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `text`.
    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        panic!("no `{text}` on stderr; saw: {:#?}", self.seen);
    }

    fn interrupt(&self) {
        let pid = i32::try_from(self.child.id()).expect("a pid");
        kill(Pid::from_raw(pid), Signal::SIGINT).expect("SIGINT sent");
    }

    /// Waits for the exit; its status, stdout and the rest of stderr.
    fn finish(mut self) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the demo did not exit; stderr: {:#?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_string(&mut stdout).expect("stdout");
        }
        let mut stderr = self.seen.join("\n");
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            stderr.push('\n');
            stderr.push_str(&line);
        }
        (status, stdout, stderr)
    }
}

fn scenario_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("candado-demo-int-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("scenario file written");
    path
}

#[test]
fn ctrl_c_drains_prints_a_balanced_report_and_exits_130() {
    let mut demo = Demo::start(&[
        "--scenario",
        "calm",
        "--report",
        "json",
        "--log-format",
        "json",
    ]);
    // A status line: the pool is up and tasks are flowing.
    demo.wait_for("done of");
    demo.interrupt();
    let (status, stdout, stderr) = demo.finish();
    assert_eq!(status.code(), Some(130), "stderr: {stderr}");
    let report: Report = serde_json::from_str(stdout.trim()).expect("one JSON report");
    assert_eq!(report.interrupted_by.as_deref(), Some("SIGINT"));
    assert!(report.submitted > 0, "{report:?}");
    assert_eq!(
        report.submitted,
        report.completed + report.dead_lettered + report.returned,
        "accepted = completed + dead-lettered + handed back: {report:?}"
    );
    assert_eq!(report.lost, 0, "{report:?}");
    assert!(report.books_agree, "{report:?}");
}

#[test]
fn a_second_ctrl_c_exits_130_without_waiting_for_the_drain() {
    // Every task is slow (alive, reporting progress) for its whole 10-minute
    // timeout: a drain would take that long.
    let path = scenario_file(
        "slow.toml",
        "name = \"slow\"\nduration = \"60s\"\nrate = 20\ntask_timeout = \"10m\"\n\
         drain_deadline = \"10m\"\n[faults]\nslow = 1.0\n",
    );
    let path = path.to_str().expect("utf-8 temp path").to_owned();
    let mut demo = Demo::start(&[
        "--scenario-file",
        &path,
        "--report",
        "json",
        "--log-format",
        "json",
    ]);
    demo.wait_for("done of");
    demo.interrupt();
    // The first is handled (it is logged) before the second is sent: two
    // signals close together may arrive as one.
    demo.wait_for("interrupted: draining");
    demo.interrupt();
    let (status, stdout, stderr) = demo.finish();
    let _ = std::fs::remove_file(&path);
    assert_eq!(status.code(), Some(130), "stderr: {stderr}");
    assert!(stderr.contains(FORCED), "stderr: {stderr}");
    assert!(stdout.trim().is_empty(), "no report: {stdout}");
}
