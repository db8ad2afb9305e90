//! A throwaway PostgreSQL for one test run: `initdb` in a temporary folder,
//! `pg_ctl` on a free loopback port with a private socket folder (the
//! tests connect through the socket), stopped and removed at the end. PostgreSQL refuses to run as root: as root, the server runs as the
//! `postgres` account.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Set by CI: a machine without PostgreSQL fails instead of skipping.
pub(crate) const REQUIRE: &str = "CANDADO_REQUIRE_POSTGRES";
/// Where PostgreSQL's programs are, if not in a standard place.
pub(crate) const BIN: &str = "CANDADO_PG_BIN";

pub(crate) struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// The folder holding `initdb` and `pg_ctl`, if PostgreSQL is installed.
fn find_bin() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os(BIN) {
        return Some(PathBuf::from(bin));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    // The newest version: folders are named by major version.
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
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

impl Cluster {
    /// Starts a cluster, or says why it cannot (PostgreSQL missing).
    pub(crate) fn start() -> Result<Self, String> {
        let bin = find_bin().ok_or_else(|| {
            format!(
                "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); \
                 install it (`apt-get install postgresql`) or set {BIN} to its bin folder"
            )
        })?;
        let dir = std::env::temp_dir().join(format!("candado-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sock")).map_err(|e| e.to_string())?;
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir))?;
        }
        // A free loopback port, as the system hands one out.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?
            .port();
        let cluster = Self {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = cluster.dir.join("data");
        cluster.pg(
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            cluster.port,
            path(&cluster.dir.join("sock"))
        );
        let log = cluster.dir.join("log");
        cluster.pg(
            "pg_ctl",
            &[
                "-D",
                path(&data),
                "-l",
                path(&log),
                "-o",
                &options,
                "-w",
                "start",
            ],
        )?;
        Ok(cluster)
    }

    fn pg(&self, program: &str, args: &[&str]) -> Result<(), String> {
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

    /// A connection string to database `db`.
    pub(crate) fn url(&self, db: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={db}",
            path(&self.dir.join("sock")),
            self.port
        )
    }
}

impl Cluster {
    /// Restarts the server, waiting until it accepts connections again.
    /// Its connections are cut. A fast stop, not an immediate one: this
    /// cluster runs without `fsync` and `synchronous_commit` (for speed), so
    /// a crash could forget commits a real server would keep.
    pub(crate) fn restart(&self) -> Result<(), String> {
        let (data, log) = (self.dir.join("data"), self.dir.join("log"));
        // The log file matters: without one the new server would write to
        // pg_ctl's output, and waiting for that output would never end.
        self.pg(
            "pg_ctl",
            &[
                "-D",
                path(&data),
                "-l",
                path(&log),
                "-m",
                "fast",
                "-w",
                "restart",
            ],
        )
    }

    /// Stops the server and removes its files.
    pub(crate) fn stop(&self) {
        let data = self.dir.join("data");
        let _ = self.pg(
            "pg_ctl",
            &["-D", path(&data), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
