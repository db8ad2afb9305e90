//! The HTTP endpoints (feature `http`): an actix-web server on threads of
//! its own.
//!
//! | path | answers |
//! |---|---|
//! | `/metrics` | every metric, OpenMetrics text |
//! | `/healthz` | 200 `ok` when the control thread runs a task within the probe timeout, else 503 with why |
//! | `/readyz` | 200 or 503, with [`Readiness`](crate::Readiness) as JSON |
//! | `/api/tree` | `{"trees":[...]}`: each watched tree as a [`TreeSnapshot`](crate::TreeSnapshot) |
//! | `/api/events` | server-sent events: each runtime event as JSON in a `data:` line; `event: lagged` with `{"missed":n}` for a gap |
//! | `/` | the dashboard (`http/assets/`, embedded): tree, pools, dead letters, events |
//! | `/api/pools` | `{"pools":[...]}`: each watched pool as a [`PoolView`](crate::PoolView), with its recent history |
//! | `/api/dead-letters` | `{"pools":[...]}`: each pool's dead letters with their attempts ([`PoolDeadLetters`](crate::PoolDeadLetters)) |
//! | `POST /api/pools/{pool}/dead-letters/{id}/replay` | replays a dead task through the pool's own replay; 200 with its new id, 404, 403 (another origin) or 503 |

mod dashboard;
mod sse;

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

use actix_web::dev::ServerHandle;
use actix_web::http::header::{ContentType, CACHE_CONTROL};
use actix_web::{web, App, HttpResponse};
use serde::Serialize;

use crate::{ObserveError, Observer, TreeSnapshot};

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// HTTP worker threads: probes and scrapes are short, and event streams
/// are idle connections, so one is enough.
const WORKERS: usize = 1;

/// The running HTTP server of an [`Observer`]. It runs until
/// [`stop`](Self::stop) or until the actix `System` stops; dropping this
/// handle does not stop it.
#[derive(Debug)]
pub struct ObserveServer {
    addrs: Vec<SocketAddr>,
    handle: ServerHandle,
}

impl ObserveServer {
    /// The address it listens on (the port chosen, when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Every address it listens on.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stops the server; with `graceful`, open requests finish first
    /// (event streams are cut at once either way).
    pub async fn stop(self, graceful: bool) {
        self.handle.stop(graceful).await;
    }
}

impl Observer {
    /// Serves `/metrics`, `/healthz`, `/readyz`, `/api/tree`,
    /// `/api/events`, and the dashboard at `/` with the JSON it reads
    /// (`/api/pools`, `/api/dead-letters`, and replay), on `addr`. Must run
    /// inside an actix `System`.
    ///
    /// Where it runs: requests are handled on an HTTP worker thread of its
    /// own and accepted on actix-web's acceptor thread; the server's
    /// command loop runs on the observer's thread. None of it runs on the
    /// control thread or on the children's worker threads, so user load
    /// cannot stall it; a handler waits for the control thread only for
    /// the short round trips of a snapshot or probe, each bounded by the
    /// probe timeout. It does not listen for signals: stopping the
    /// application is the application's business.
    ///
    /// ```no_run
    /// # use candado::Runtime;
    /// # use candado_observe::Observer;
    /// # actix::System::new().block_on(async {
    /// # let runtime = Runtime::builder().build().unwrap();
    /// let observer = Observer::builder(&runtime).build().unwrap();
    /// let server = observer.serve("127.0.0.1:9464").unwrap();
    /// println!("scrape http://{}/metrics", server.local_addr());
    /// # });
    /// ```
    pub fn serve(
        &self,
        addr: impl ToSocketAddrs + fmt::Display,
    ) -> Result<ObserveServer, ObserveError> {
        let data = web::Data::new(self.clone());
        let server = actix_web::HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/metrics", web::get().to(metrics))
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .route("/api/tree", web::get().to(tree))
                .route("/api/events", web::get().to(sse::events))
                .configure(dashboard::routes)
        })
        .workers(WORKERS)
        .disable_signals()
        .shutdown_timeout(1);
        let bind_error = |source| ObserveError::Bind {
            addr: addr.to_string(),
            source,
        };
        let server = server.bind(&addr).map_err(bind_error)?;
        let addrs = server.addrs();
        let server = server.run();
        let handle = server.handle();
        self.inner.thread.spawn(async move {
            if let Err(error) = server.await {
                tracing::error!(%error, "the observer's HTTP server stopped");
            }
        });
        Ok(ObserveServer { addrs, handle })
    }
}

async fn metrics(observer: web::Data<Observer>) -> HttpResponse {
    let text = observer.render_metrics().await;
    HttpResponse::Ok()
        .content_type(OPENMETRICS)
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(text)
}

async fn healthz(observer: web::Data<Observer>) -> HttpResponse {
    match observer.health().await {
        Ok(()) => HttpResponse::Ok()
            .content_type(ContentType::plaintext())
            .body("ok\n"),
        Err(error) => HttpResponse::ServiceUnavailable()
            .content_type(ContentType::plaintext())
            .body(format!("{error}\n")),
    }
}

async fn readyz(observer: web::Data<Observer>) -> HttpResponse {
    let readiness = observer.readiness().await;
    let mut response = if readiness.ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response.json(readiness)
}

/// The body of `/api/tree`.
#[derive(Serialize)]
struct Trees {
    trees: Vec<TreeSnapshot>,
}

async fn tree(observer: web::Data<Observer>) -> HttpResponse {
    let trees = observer.trees().await;
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(Trees { trees })
}
