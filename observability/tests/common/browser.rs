//! Headless Chromium driven through a chromedriver of our own: found on
//! the PATH, started on a free port, and killed with every browser process
//! it started when the [`Browser`] goes (a failing test included).

#![allow(dead_code, unreachable_pub)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::json;

/// Set to 1 to make a missing browser a failure rather than a skip.
pub const REQUIRE: &str = "CANDADO_REQUIRE_BROWSER";

/// How to get a browser, said when there is none.
pub const HOW: &str = "install it with `apt-get install -y chromium chromium-driver` \
     (Debian), or set CANDADO_REQUIRE_BROWSER=1 to make its absence a failure";

/// Chromium's flags: headless, and what running as root in a container on
/// a closed network needs.
const ARGS: [&str; 7] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--window-size=1440,1200",
    "--hide-scrollbars",
];

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// chromedriver and a Chromium binary, or what is missing.
pub fn find() -> Result<(PathBuf, PathBuf), String> {
    let driver = on_path(&["chromedriver"]).ok_or("no `chromedriver` on the PATH")?;
    let chromium = on_path(&["chromium", "chromium-browser", "google-chrome"])
        .ok_or("no `chromium` on the PATH")?;
    Ok((driver, chromium))
}

/// `None` (with a message on stderr) when there is no browser and none is
/// required; a panic when one is required (CANDADO_REQUIRE_BROWSER=1).
pub fn find_or_skip(test: &str) -> Option<(PathBuf, PathBuf)> {
    match find() {
        Ok(found) => Some(found),
        Err(missing) if std::env::var(REQUIRE).as_deref() == Ok("1") => {
            panic!("{test}: {missing}, and {REQUIRE}=1 requires a browser")
        }
        Err(missing) => {
            // Straight to stderr, past the test harness's capture: a skip
            // must be seen.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skipped {test}: {missing}; {HOW}");
            None
        }
    }
}

/// A chromedriver process in a process group of its own.
struct Driver {
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and every Chromium process it started.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// A browser session. Dropping it kills chromedriver and Chromium;
/// [`close`](Self::close) ends the session politely first.
pub struct Browser {
    pub client: Client,
    driver: Driver,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless session.
    pub async fn start(driver: &Path, chromium: &Path, bound: Duration) -> Browser {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver { child };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + bound;
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver listens within {bound:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium, "args": ARGS }),
        );
        let client = tokio::time::timeout(
            bound,
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&format!("http://{addr}")),
        )
        .await
        .expect("a browser session within the bound")
        .expect("a browser session");
        Browser { client, driver }
    }

    /// Ends the session (Chromium quits), then chromedriver.
    pub async fn close(self) {
        let Browser { client, driver } = self;
        let _ = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
        drop(driver);
    }
}
