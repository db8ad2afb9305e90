//! The dashboard at `/`: its page and assets (embedded in the binary), and
//! the JSON it reads besides `/api/tree`: `/api/pools`,
//! `/api/dead-letters`, and the replay of a dead letter.

use actix_web::http::header::{HeaderMap, CACHE_CONTROL, HOST, ORIGIN};
use actix_web::{web, HttpRequest, HttpResponse};
use candado_pool::{PoolError, TaskId};
use serde::Serialize;

use crate::{ObserveError, Observer, PoolDeadLetters, PoolView};

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/dashboard.js");
const STYLE: &str = include_str!("assets/dashboard.css");

/// Adds the dashboard's routes.
pub(super) fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(index))
        .route("/dashboard.js", web::get().to(script))
        .route("/dashboard.css", web::get().to(style))
        .route("/api/pools", web::get().to(pools))
        .route("/api/dead-letters", web::get().to(dead_letters))
        .route(
            "/api/pools/{pool}/dead-letters/{id}/replay",
            web::post().to(replay),
        );
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(body)
}

async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX)
}

async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

/// The body of `/api/pools`.
#[derive(Serialize)]
struct Pools {
    pools: Vec<PoolView>,
}

async fn pools(observer: web::Data<Observer>) -> HttpResponse {
    let pools = observer.pools().await;
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(Pools { pools })
}

/// The body of `/api/dead-letters`.
#[derive(Serialize)]
struct DeadLetters {
    pools: Vec<PoolDeadLetters>,
}

async fn dead_letters(observer: web::Data<Observer>) -> HttpResponse {
    let pools = observer.dead_letters().await;
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(DeadLetters { pools })
}

/// The body of a replay's answer.
#[derive(Serialize)]
#[serde(untagged)]
enum Replayed {
    Done {
        pool: String,
        replayed: TaskId,
        task: TaskId,
    },
    Refused {
        error: String,
    },
}

async fn replay(
    observer: web::Data<Observer>,
    request: HttpRequest,
    path: web::Path<(String, TaskId)>,
) -> HttpResponse {
    let (pool, id) = path.into_inner();
    if !same_origin(request.headers()) {
        let error = "a replay must come from the dashboard's own origin".to_owned();
        return HttpResponse::Forbidden().json(Replayed::Refused { error });
    }
    match observer.replay(&pool, id).await {
        Ok(task) => {
            tracing::info!(
                pool,
                dead = id,
                task,
                "dead letter replayed from the dashboard"
            );
            HttpResponse::Ok().json(Replayed::Done {
                pool,
                replayed: id,
                task,
            })
        }
        Err(error) => {
            let mut response = match &error {
                ObserveError::UnknownPool(_)
                | ObserveError::Pool {
                    source: PoolError::UnknownDeadTask(_),
                    ..
                } => HttpResponse::NotFound(),
                ObserveError::Pool {
                    source: PoolError::UnknownCapability(_),
                    ..
                } => HttpResponse::Conflict(),
                _ => HttpResponse::ServiceUnavailable(),
            };
            response.json(Replayed::Refused {
                error: error.to_string(),
            })
        }
    }
}

/// Whether a state-changing request may be served: a browser names the
/// page's origin in `Origin`, which must be this server's (so another site
/// open in the same browser cannot replay); a client that sends no
/// `Origin` (curl, scripts) is not a browser page, and is served.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let origin = origin.to_str().ok().and_then(|o| o.split_once("://"));
    match (origin, host) {
        (Some((_, origin_host)), Some(host)) => origin_host.eq_ignore_ascii_case(host),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(actix_web::http::header::HeaderName, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_replay_from_another_origin_is_refused_and_one_without_origin_served() {
        let host = (HOST, "127.0.0.1:9464");
        assert!(same_origin(&headers(std::slice::from_ref(&host))));
        assert!(same_origin(&headers(&[
            host.clone(),
            (ORIGIN, "http://127.0.0.1:9464")
        ])));
        assert!(!same_origin(&headers(&[
            host.clone(),
            (ORIGIN, "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[host, (ORIGIN, "null")])));
        assert!(!same_origin(&headers(&[(ORIGIN, "http://127.0.0.1:9464")])));
    }
}
