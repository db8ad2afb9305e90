//! Test actors and a paused-time harness shared by the integration tests:
//! the public test kit (`candado::testkit`), plus what only these tests use.
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix::{Actor, Context};

pub use candado::testkit::{
    advance, drain, exits, find, restart_delays_ms, run_paused, settle, start_local, starts,
    BeginWork, Crash, Fail, Leak, MockChild as Echo, Outcome, Ping, Quit, ReportMemory, Starve,
};

/// A worker that spins its thread in a CPU loop from `started()` until released.
pub struct Spinner {
    pub release: Arc<AtomicBool>,
    pub entered: Arc<AtomicBool>,
}

impl Actor for Spinner {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        self.entered.store(true, Ordering::SeqCst);
        while !self.release.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
    }
}
