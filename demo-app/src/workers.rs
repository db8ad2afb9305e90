//! The demo's workers: an engine that sometimes panics, and a worker that
//! crashes on start until it has failed a given number of times.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use actix::{Actor, Context, Handler, Message};
use candado::ChildLink;

/// One unit of work; the engine panics on it if `poison` is set.
#[derive(Message)]
#[rtype(result = "u64")]
pub(crate) struct Work {
    pub(crate) poison: bool,
}

/// A prediction engine: answers work with a running total, panics on poison.
pub(crate) struct Engine {
    pub(crate) link: ChildLink,
    pub(crate) done: u64,
}

impl Actor for Engine {
    type Context = Context<Self>;
}

impl Handler<Work> for Engine {
    type Result = u64;

    fn handle(&mut self, work: Work, _: &mut Context<Self>) -> u64 {
        if work.poison {
            panic!("engine `{}` hit a poisoned input", self.link.id());
        }
        self.done += 1;
        self.done
    }
}

/// Panics in `started()` for its first `failures` incarnations: a flapping child.
pub(crate) struct Flappy {
    pub(crate) failures_left: Arc<AtomicU32>,
}

impl Actor for Flappy {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        let left = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if left.is_ok() {
            panic!("flappy cannot reach its backend");
        }
    }
}
