//! A throwaway PostgreSQL for one `compare` run, started the way the
//! durable store's tests start theirs: `initdb` in a temporary folder (as
//! the `postgres` account when run as root: the server refuses root),
//! `pg_ctl` on a free loopback port with a private socket folder, stopped
//! and removed when dropped. Both frameworks connect to it over TCP on
//! 127.0.0.1, with the same server settings ([`SETTINGS`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

/// Where PostgreSQL's programs are, if not in `/usr/lib/postgresql/*/bin`.
pub const BIN: &str = "CANDADO_PG_BIN";

/// The server settings of the throwaway cluster (beyond PostgreSQL's
/// defaults): no waiting for the disk, as the store's tests run theirs. A
/// crash of this server could lose recent commits; it is for measuring.
pub const SETTINGS: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("max_connections", "200"),
];

/// A running throwaway cluster; stopped and removed on drop.
#[derive(Debug)]
pub struct Server {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    /// The server's major version, from its folder name.
    pub version: String,
}

/// The folder holding `initdb` and `pg_ctl`, if PostgreSQL is installed.
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

/// How to get PostgreSQL, for the error when it is missing.
pub fn missing() -> String {
    format!(
        "the durable section needs PostgreSQL: pass --pg-url postgres://… (a scratch database: \
         compare deletes its own queue's rows), or install the server (`apt-get install \
         postgresql`; or set {BIN} to the folder holding initdb and pg_ctl) and compare starts \
         a throwaway one"
    )
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

impl Server {
    /// Starts a cluster with [`SETTINGS`] and creates database `bench`.
    pub fn start() -> anyhow::Result<Self> {
        let bin = find_bin().with_context(missing)?;
        let version = bin
            .parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .unwrap_or("?")
            .to_owned();
        let dir = std::env::temp_dir().join(format!("candado-bench-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sock"))?;
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir))?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("no free loopback port")?
            .port();
        let server = Self {
            dir,
            bin,
            port,
            as_postgres,
            version,
        };
        let data = server.dir.join("data");
        server.pg(
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
            server.port,
            path(&server.dir.join("sock"))?
        );
        for (name, value) in SETTINGS {
            options.push_str(&format!(" -c {name}={value}"));
        }
        let log = server.dir.join("log");
        server.pg(
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
        server.pg(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &server.port.to_string(),
                "-U",
                "postgres",
                "-q",
                "-c",
                "CREATE DATABASE bench",
            ],
        )?;
        Ok(server)
    }

    /// The URL of its database `bench`, over TCP on the loopback.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/bench", self.port)
    }

    fn pg(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
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

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(data) = path(&self.dir.join("data")) {
            let _ = self.pg("pg_ctl", &["-D", data, "-m", "immediate", "-w", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("a non-UTF-8 temporary path")
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let out = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
