//! A throwaway PostgreSQL for one `compare` run: the one the durable
//! store's tests start (`candado_postgres::testing`): `initdb` in a
//! temporary folder (as the `postgres` account when run as root), `pg_ctl`
//! on a free loopback port with a private socket folder, [`SETTINGS`],
//! stopped and removed when dropped. Both frameworks connect to it over TCP
//! on 127.0.0.1.

pub use candado_postgres::testing::{find_bin, TestCluster as Server, BIN, SETTINGS};

/// How to get PostgreSQL, for the error when it is missing.
pub fn missing() -> String {
    format!(
        "the durable section needs PostgreSQL: pass --pg-url postgres://… (a scratch database: \
         compare deletes its own queue's rows), or install the server (`apt-get install \
         postgresql`; or set {BIN} to the folder holding initdb and pg_ctl) and compare starts \
         a throwaway one"
    )
}

/// Starts a throwaway server with a database `bench`; returns its URL over
/// TCP on the loopback and the server (stopped and removed when dropped).
pub fn start_bench() -> anyhow::Result<(String, Server)> {
    let server = Server::start()?;
    server.create_database("bench")?;
    Ok((server.tcp_url("bench"), server))
}
