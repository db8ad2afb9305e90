//! A throwaway PostgreSQL for tests and benchmarks (feature `test-util`).
//!
//! [`TestCluster::start`] runs `initdb` in a fresh temporary folder (as the
//! `postgres` account when run as root: the server refuses root), then
//! `pg_ctl` on a free loopback port with a private socket folder, without
//! waiting for the disk ([`SETTINGS`]: a crash could lose recent commits, so
//! it is for tests only). Dropping it (or [`TestCluster::stop`]) stops the
//! server at once and removes its files.
//!
//! Tests that need PostgreSQL should not fail where it is not installed:
//! [`TestCluster::start_or_skip`] prints why and returns `None`, unless
//! [`REQUIRE`] (`CANDADO_REQUIRE_POSTGRES=1`) is set, as in CI.
//!
//! ```no_run
//! use candado_postgres::testing::TestCluster;
//!
//! let Some(cluster) = TestCluster::start_or_skip("my store tests") else {
//!     return; // PostgreSQL is not installed here
//! };
//! cluster.create_database("t1").unwrap();
//! let url = cluster.url("t1"); // through the private socket
//! # let _ = url;
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use thiserror::Error;

/// Set (to anything) where PostgreSQL must be there, as in CI: a cluster
/// that cannot start fails the test instead of skipping it.
pub const REQUIRE: &str = "CANDADO_REQUIRE_POSTGRES";

/// Where PostgreSQL's programs are, if not in `/usr/lib/postgresql/*/bin`.
pub const BIN: &str = "CANDADO_PG_BIN";

/// The server settings of a test cluster beyond PostgreSQL's defaults: no
/// waiting for the disk, and room for many pools' connections.
pub const SETTINGS: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("max_connections", "200"),
];

/// Why a test cluster could not start or act.
#[derive(Debug, Error)]
pub enum TestClusterError {
    /// PostgreSQL's programs are not installed (or not where [`BIN`] says).
    #[error(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); install it \
         (`apt-get install postgresql`) or set {BIN} to the folder holding initdb and pg_ctl"
    )]
    NotInstalled,
    /// A file or socket operation failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A PostgreSQL program failed.
    #[error("{command} failed: {output}")]
    Command {
        /// The command line.
        command: String,
        /// Its status and output.
        output: String,
    },
    /// The temporary folder's path is not UTF-8.
    #[error("the temporary path {0:?} is not UTF-8")]
    Path(PathBuf),
    /// A statement on the running server failed.
    #[error("{0}")]
    Sql(#[from] tokio_postgres::Error),
}

/// A running throwaway PostgreSQL; stopped and removed on drop.
#[derive(Debug)]
pub struct TestCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    version: String,
}

/// The folder holding `initdb` and `pg_ctl` ([`BIN`], else the newest
/// `/usr/lib/postgresql/<major>/bin`), if PostgreSQL is installed.
pub fn find_bin() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os(BIN) {
        let bin = PathBuf::from(bin);
        return bin.join("initdb").exists().then_some(bin);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// A plain connection to `url`, for a test's own statements beside the
/// store's (inspecting rows, holding locks); its connection runs on a task
/// spawned on the current tokio runtime.
///
/// ```no_run
/// # async fn example(url: &str) -> Result<(), tokio_postgres::Error> {
/// let client = candado_postgres::testing::client(url).await?;
/// let row = client.query_one("SELECT count(*) FROM candado_tasks", &[]).await?;
/// # let _ = row;
/// # Ok(())
/// # }
/// ```
///
/// # Panics
/// Outside a tokio runtime (it spawns the connection's task).
pub async fn client(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

impl TestCluster {
    /// Starts a cluster with [`SETTINGS`], or says why it cannot.
    pub fn start() -> Result<Self, TestClusterError> {
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let bin = find_bin().ok_or(TestClusterError::NotInstalled)?;
        let version = bin
            .parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .unwrap_or("?")
            .to_owned();
        // One folder per cluster: several may run in one process.
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("candado-pg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sock"))?;
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir))?;
        }
        // A free loopback port, as the system hands one out.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let cluster = Self {
            dir,
            bin,
            port,
            as_postgres,
            version,
        };
        let data = cluster.dir.join("data");
        cluster.pg(
            "initdb",
            &[
                "-D",
                path(&data)?,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            cluster.port,
            path(&cluster.dir.join("sock"))?
        );
        for (name, value) in SETTINGS {
            options.push_str(&format!(" -c {name}={value}"));
        }
        let log = cluster.dir.join("log");
        cluster.pg(
            "pg_ctl",
            &[
                "-D",
                path(&data)?,
                "-l",
                path(&log)?,
                "-o",
                &options,
                "-w",
                "start",
            ],
        )?;
        Ok(cluster)
    }

    /// Starts a cluster; where that fails, prints why `what` is skipped and
    /// returns `None`, unless [`REQUIRE`] is set.
    ///
    /// # Panics
    /// If the cluster cannot start and [`REQUIRE`] is set: the test run
    /// must fail there.
    pub fn start_or_skip(what: &str) -> Option<Self> {
        match Self::start() {
            Ok(cluster) => Some(cluster),
            Err(why) if std::env::var_os(REQUIRE).is_none() => {
                tracing::warn!(%why, "{what} skipped: no PostgreSQL");
                eprintln!("{what} skipped: {why}. Set {REQUIRE}=1 to make this an error.");
                None
            }
            Err(why) => panic!("PostgreSQL is required ({REQUIRE} is set): {why}"),
        }
    }

    /// A connection string to database `db` through the private socket.
    pub fn url(&self, db: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={db}",
            self.dir.join("sock").display(),
            self.port
        )
    }

    /// A URL of database `db` over TCP on the loopback (for clients that
    /// take no socket folder).
    pub fn tcp_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's major version, from its folder name.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Creates database `name` (an SQL identifier chosen by the test).
    /// Blocking: call it outside async code.
    pub fn create_database(&self, name: &str) -> Result<(), TestClusterError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let url = self.url("postgres");
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            let connection = tokio::spawn(connection);
            let created = client
                .batch_execute(&format!(
                    "CREATE DATABASE \"{}\"",
                    name.replace('"', "\"\"")
                ))
                .await;
            drop(client);
            let _ = connection.await;
            created
        })?;
        Ok(())
    }

    /// Restarts the server, waiting until it accepts connections again. Its
    /// connections are cut. A fast stop, not an immediate one: this cluster
    /// runs without `fsync`, so a crash could forget commits.
    pub fn restart(&self) -> Result<(), TestClusterError> {
        let (data, log) = (self.dir.join("data"), self.dir.join("log"));
        // With no log file the new server would write to pg_ctl's output,
        // and waiting for that output would never end.
        self.pg(
            "pg_ctl",
            &[
                "-D",
                path(&data)?,
                "-l",
                path(&log)?,
                "-m",
                "fast",
                "-w",
                "restart",
            ],
        )
    }

    /// Stops the server at once and removes its files (also done on drop;
    /// stopping twice is harmless).
    pub fn stop(&self) {
        if let Ok(data) = path(&self.dir.join("data")) {
            let _ = self.pg("pg_ctl", &["-D", data, "-m", "immediate", "-w", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn pg(&self, program: &str, args: &[&str]) -> Result<(), TestClusterError> {
        let exe = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        command.args(args).current_dir(&self.dir);
        run(&mut command)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if self.dir.exists() {
            self.stop();
        }
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn path(p: &Path) -> Result<&str, TestClusterError> {
    p.to_str()
        .ok_or_else(|| TestClusterError::Path(p.to_owned()))
}

fn run(command: &mut Command) -> Result<(), TestClusterError> {
    let out = command.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(TestClusterError::Command {
            command: format!("{command:?}"),
            output: format!(
                "({}) {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}
