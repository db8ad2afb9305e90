//! `--serve ADDR`: the observer's dashboard and endpoints (`/`, `/metrics`,
//! `/healthz`, `/readyz`, `/api/...`) for the length of a run.

use std::net::SocketAddr;

use candado::Runtime;
use candado_observe::{ObserveServer, Observer};
use candado_pool::Pool;

use crate::workload::Engine;
use crate::DemoError;

/// The observer of a run and its HTTP server.
#[derive(Debug)]
pub(crate) struct Dashboard {
    server: ObserveServer,
    /// Kept for the run: its thread samples the pool's history.
    _observer: Observer,
}

impl Dashboard {
    /// Serves the dashboard of `pool` (and its worker tree) on `addr`, if
    /// asked to; says where on stderr.
    pub(crate) fn start(
        addr: Option<SocketAddr>,
        runtime: &Runtime,
        pool: &Pool<Engine>,
    ) -> Result<Option<Self>, DemoError> {
        let Some(addr) = addr else {
            return Ok(None);
        };
        let observer = Observer::builder(runtime).pool(pool).build()?;
        let server = observer.serve(addr)?;
        eprintln!("dashboard: http://{}/", server.local_addr());
        Ok(Some(Self {
            server,
            _observer: observer,
        }))
    }

    /// Stops serving (open event streams are cut).
    pub(crate) async fn stop(self) {
        self.server.stop(false).await;
    }
}
