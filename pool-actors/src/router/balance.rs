//! Work moving between the routers of one pool. A pool has a router per
//! worker thread (see `routers.rs`), each over the workers of its thread, so
//! a task submitted on a thread usually runs, settles and is answered there,
//! and no router's books cross between cores.
//!
//! A router with a free worker takes ready tasks from a sibling that is
//! *behind*: more plain tasks wait there than its workers in service take
//! in one round of batches, or it has no worker in service at all, or its
//! attempts are not quick and a task waits there with every worker busy
//! (see [`behind`]). A sibling whose queue its own quick workers will empty
//! soon is left alone: under a steady load each thread's submitters refill their
//! own router as fast as its workers empty it, and taking from it would
//! only send tasks and replies across threads. A sibling's plain task that
//! ranks above all of the router's own is taken whatever the sibling's
//! queue (priority holds across routers). A router that is behind, with a
//! sibling that has room, wakes that sibling, which takes the tasks.
//!
//! In a graceful drain, a router left holding nothing ends its part of the
//! drain only once its siblings hold no ready task it could take (a router
//! with no task of its own takes any plain task, which ranks above none):
//! its workers help the pool's drain instead of idling while the deadline
//! runs (see [`SharedRouter::finish_or_linger`]).
//!
//! Each router publishes what it holds and whether it has room, then looks
//! at its siblings; the sibling does the same in the other order, so of two
//! at once, one sees the other. A look that finds a sibling's lock taken
//! leaves the move to whoever holds it, and the clock's tick looks again.

use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::shared::{Public, Sibling};
use super::{Router, SharedRouter};
use crate::messages::ADDRESSED;
use crate::store::{Moving, Ready, TaskStore};
use crate::TaskHandler;

/// The most ready tasks a router takes from a sibling at once, per free
/// worker: a worker that runs short tasks in batches finds its next batch
/// at home.
const TAKE_PER_WORKER: usize = 16;

/// No plain task waits (published in place of a priority).
pub(super) const NO_PRIORITY: u16 = u16::MAX;

/// Whether the router that published `public` is behind (see the module
/// docs). Its intake's flag is read last: it is the router's own hot line.
fn behind(public: &Public) -> bool {
    let serving = public.serving.load(Ordering::SeqCst);
    let plain = public.plain.load(Ordering::SeqCst);
    let pending = || public.pending.load(Ordering::SeqCst);
    if serving == 0 {
        return plain > 0 || public.other.load(Ordering::SeqCst) > 0 || pending();
    }
    if plain > serving.saturating_mul(TAKE_PER_WORKER) {
        return true;
    }
    // Longer attempts: a task waiting for a busy worker may wait long,
    // queued or still in the intake (where submitters leave tasks while
    // every worker is busy).
    !public.quick.load(Ordering::SeqCst)
        && !public.room.load(Ordering::SeqCst)
        && (plain > 0 || pending())
}

/// What a router's free workers can run: any plain task, and tasks asking
/// for one of `capabilities`.
pub(super) struct Takes {
    capabilities: Vec<String>,
}

impl Takes {
    fn accepts(&self, capability: Option<&str>) -> bool {
        capability.is_none_or(|c| self.capabilities.iter().any(|own| own == c))
    }
}

impl<H: TaskHandler, S: TaskStore<H>> Router<H, S> {
    /// Whether the router that published `public` holds ready tasks that
    /// need a capability, and this router's free workers have some (worked
    /// out into `takes` once, when first needed).
    fn could_take_other(&self, public: &Public, takes: &mut Option<Takes>) -> bool {
        public.other.load(Ordering::SeqCst) > 0
            && !takes
                .get_or_insert_with(|| self.takes())
                .capabilities
                .is_empty()
    }

    /// What its free workers can run, besides plain tasks: their
    /// capabilities (their own addresses left out: a task addressed to a
    /// worker never waits in another router).
    fn takes(&self) -> Takes {
        let mut capabilities = Vec::new();
        for key in self.free.iter() {
            if let Some(slot) = self.slot(key) {
                for c in &slot.capabilities {
                    if !c.starts_with(ADDRESSED) && !capabilities.contains(c) {
                        capabilities.push(c.clone());
                    }
                }
            }
        }
        Takes { capabilities }
    }

    /// How many ready tasks it would take from a sibling.
    fn appetite(&self) -> usize {
        self.free.len().saturating_mul(TAKE_PER_WORKER).max(1)
    }

    /// Up to `max` of its best ready tasks that `takes` accepts, out of its
    /// books, for a sibling; at most half of what waits (at least one), so
    /// that work spreads instead of moving back and forth.
    pub(super) fn give_away(&mut self, takes: &Takes, max: usize) -> Vec<Moving<H>> {
        let half = self.store.ready().div_ceil(2);
        let mut out = Vec::new();
        while out.len() < max.min(half) {
            let mut below = None;
            let mut found = None;
            while let Some(Ready {
                id,
                capability,
                rank,
            }) = self.store.next_ready(below)
            {
                below = Some(rank);
                if takes.accepts(capability.as_deref()) {
                    found = Some(id);
                    break;
                }
            }
            let Some(id) = found else {
                break;
            };
            self.forget_expiry(id);
            let Some(moving) = self.store.take_ready(id) else {
                break;
            };
            self.stats.moved_out += 1;
            out.push(moving);
        }
        if !out.is_empty() {
            self.check_finished();
        }
        out
    }

    /// Takes in ready tasks from a sibling, each in its place in the queue.
    pub(super) fn take_in(&mut self, moved: Vec<Moving<H>>) {
        let now = self.now;
        for moving in moved {
            let (id, submitted_at, ttl) = (moving.id(), moving.submitted_at(), moving.ttl());
            self.store.put(moving, now);
            if let Some(ttl) = ttl {
                self.note_expiry(id, submitted_at, ttl);
            }
            self.stats.moved_in += 1;
        }
    }

    /// The best priority among its plain ready tasks, as published.
    pub(super) fn best_plain(&self) -> u16 {
        self.store.plain_ready().1.map_or(NO_PRIORITY, u16::from)
    }
}

impl<H: TaskHandler, S: TaskStore<H>> SharedRouter<H, S> {
    /// Publishes what it holds and whether it has room, for its siblings
    /// (each written only when it changes: siblings read them often).
    pub(super) fn publish(&self, router: &Router<H, S>) {
        let shared = &*self.shared.public;
        let room = router.has_room();
        if shared.room.load(Ordering::Relaxed) != room {
            shared.room.store(room, Ordering::SeqCst);
        }
        if self.shared.siblings.get().is_none() {
            return;
        }
        if shared.quick.load(Ordering::Relaxed) != router.quick {
            shared.quick.store(router.quick, Ordering::SeqCst);
        }
        for (cell, value) in [
            (&shared.workers, router.live),
            (&shared.serving, router.serving.len()),
        ] {
            if cell.load(Ordering::Relaxed) != value {
                cell.store(value, Ordering::SeqCst);
            }
        }
        let (plain, best) = router.store.plain_ready();
        let other = router.store.ready() - plain;
        let best = best.map_or(NO_PRIORITY, u16::from);
        for (cell, value) in [(&*shared.plain, plain), (&shared.other, other)] {
            if cell.load(Ordering::Relaxed) != value {
                cell.store(value, Ordering::SeqCst);
            }
        }
        if shared.best.load(Ordering::Relaxed) != best {
            shared.best.store(best, Ordering::SeqCst);
        }
    }

    /// With a free worker: takes ready tasks from a sibling that has some
    /// its free workers can run (with `better_only`, only from one whose
    /// best plain task ranks above its own). Siblings already asked in this
    /// call (`asked`, a bit each) are not asked again. Whether it took any.
    pub(super) fn take_from_siblings(
        &self,
        router: &mut Router<H, S>,
        asked: &mut u64,
        better_only: bool,
    ) -> bool {
        let Some(siblings) = self.shared.siblings.get() else {
            return false;
        };
        if !router.has_room() {
            return false;
        }
        let own_best = router.best_plain();
        let mut takes = None;
        for (index, sibling) in siblings.iter().enumerate() {
            let bit = 1u64 << (index % 64);
            if *asked & bit != 0 {
                continue;
            }
            let public = &sibling.public;
            let wanted = if better_only {
                // `best` is NO_PRIORITY when no plain task waits there; it
                // changes less often than the count, so it alone is read.
                public.best.load(Ordering::SeqCst) < own_best
            } else {
                behind(public) || router.could_take_other(public, &mut takes)
            };
            if !wanted {
                continue;
            }
            *asked |= bit;
            let Some(sibling) = sibling.router() else {
                continue;
            };
            let Some(guard) = sibling.try_lock() else {
                continue;
            };
            let takes = takes.get_or_insert_with(|| router.takes());
            let max = router.appetite();
            let now = router.now;
            let moved = sibling.locked(guard, now, None, |s| s.give_away(takes, max));
            sibling.after_unlock_once();
            if !moved.is_empty() {
                router.take_in(moved);
                return true;
            }
        }
        false
    }

    /// At the end of a call: a router that a graceful drain left holding no
    /// task ends its drain, unless a sibling still holds a ready task its
    /// free workers could take (one whose lock was taken when it looked):
    /// then it lingers, and its siblings poke it as they unlock (see
    /// [`balance`](Self::balance)), so its workers help the pool's drain
    /// instead of idling while the pool's deadline runs.
    pub(super) fn finish_or_linger(&self, router: &mut Router<H, S>) {
        let Some(siblings) = self.shared.siblings.get() else {
            return;
        };
        let linger = router.drained() && router.has_room() && {
            let mut takes = None;
            siblings.iter().any(|sibling| {
                let public = &sibling.public;
                public.plain.load(Ordering::SeqCst) > 0
                    || public.pending.load(Ordering::SeqCst)
                    || router.could_take_other(public, &mut takes)
            })
        };
        if !linger {
            router.finish_drain();
        }
        let public = &self.shared.public;
        if public.lingering.load(Ordering::Relaxed) != linger {
            public.lingering.store(linger, Ordering::SeqCst);
        }
    }

    /// After letting go of the lock, once: behind, with no room, wakes a
    /// sibling that has room (it takes the tasks, see
    /// [`take_from_siblings`](Self::take_from_siblings)); with room, looks
    /// whether a sibling fell behind since, and takes its tasks.
    pub(super) fn balance(&self) {
        let Some(siblings) = self.shared.siblings.get() else {
            return;
        };
        let shared = &self.shared;
        if shared.gauges.closed.load(Ordering::Relaxed) {
            // A drained sibling waits for the tasks it could take.
            for sibling in siblings {
                if sibling.public.lingering.load(Ordering::SeqCst) {
                    if let Some(sibling) = sibling.router() {
                        sibling.poke();
                    }
                }
            }
        }
        if shared.public.room.load(Ordering::SeqCst) {
            if siblings.iter().any(|sibling| behind(&sibling.public)) {
                self.poke();
            }
        } else if behind(&shared.public) {
            let idle = siblings
                .iter()
                .filter(|s| s.public.room.load(Ordering::SeqCst))
                .find_map(Sibling::router);
            if let Some(idle) = idle {
                idle.poke();
            }
        }
    }

    /// Takes the lock if nobody holds it and runs an empty call, whose end
    /// dispatches and takes from siblings; if somebody holds it, they do.
    fn poke(&self) {
        let now = Instant::now();
        if let Some(router) = self.try_lock() {
            self.locked(router, now, None, |_| ());
            self.after_unlock_once();
        }
    }
}
