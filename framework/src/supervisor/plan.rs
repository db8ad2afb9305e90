//! Restart plans: the sequencing machinery of a supervisor.
//!
//! Every change to the set of running children is a *plan* over some members:
//! 1. **Stopping** — members still up are stopped one at a time, highest start
//!    order first, each given its shutdown timeout;
//! 2. **Waiting** — for a restart, the backoff delay;
//! 3. **Starting** — members are started one at a time in start order, each
//!    only after the previous one acknowledged (or, with
//!    `SupervisorSpec::concurrent_start`, all at once, the plan then waiting
//!    for every acknowledgement).
//!
//! A plan re-evaluates its members' states each time one of them reports, so
//! a new incarnation can never overlap the previous one. When a failure hits a
//! child that another restart plan already owns, the plans merge.

use std::sync::Arc;
use std::time::Duration;

use actix::{ActorContext, AsyncContext, Context};
use tokio::time::Instant;

use super::child::{Child, State};
use super::messages::{Added, Reply};
use super::{Lifecycle, Supervisor};
use crate::child_spec::ChildBody;
use crate::event::EventKind;
use crate::link::{self, Incarnation};
use crate::parent::{ChildExited, ChildStarted};
use crate::start_batch::StartJob;
use crate::{
    ChildSpec, ExitReason, Placement, Restart, RestartCause, Signal, Strategy, SupervisorError,
};

pub(super) enum Purpose {
    /// The supervisor's initial children.
    Init,
    /// A child added at run time; answered with its address if asked.
    Add {
        reply: Reply<Added>,
        with_addr: bool,
    },
    /// A child removed at run time.
    Remove(Reply<()>),
    /// A child stopped at run time, its spec kept (`terminate_child`).
    Terminate(Reply<()>),
    /// A stopped child started again at run time (`restart_child`).
    Start(Reply<()>),
    /// Answer to the failure of `child`.
    Restart { delay: Duration, child: Arc<str> },
    /// Every child, before the supervisor exits.
    Shutdown,
    /// Stop a child and leave it stopped (a strategy's `Stop` verdict).
    Halt,
}

enum Phase {
    /// `members[..cursor]` may still be up.
    Stopping {
        cursor: usize,
    },
    Waiting,
    /// Index into `members` of the next child to start, and (concurrent
    /// starts) of the first member whose acknowledgement may be missing.
    Starting(usize, usize),
}

pub(super) struct Plan {
    pub(super) purpose: Purpose,
    /// Child keys in start order.
    members: Vec<u64>,
    phase: Phase,
}

impl Supervisor {
    pub(super) fn insert_child(&mut self, spec: ChildSpec) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        self.ids.insert(spec.id.clone(), key);
        self.children.insert(key, Child::new(spec));
        key
    }

    pub(super) fn delete_child(&mut self, key: u64) {
        if let Some(child) = self.children.remove(&key) {
            self.ids.remove(child.id());
        }
    }

    pub(super) fn new_plan(&mut self, purpose: Purpose, mut members: Vec<u64>) -> u64 {
        members.sort_unstable();
        members.dedup();
        let id = self.next_plan;
        self.next_plan += 1;
        for key in &members {
            if let Some(child) = self.children.get_mut(key) {
                child.plan = Some(id);
            }
        }
        let phase = match purpose {
            Purpose::Init | Purpose::Add { .. } | Purpose::Start(_) => Phase::Starting(0, 0),
            _ => Phase::Stopping {
                cursor: members.len(),
            },
        };
        self.plans.insert(
            id,
            Plan {
                purpose,
                members,
                phase,
            },
        );
        id
    }

    /// Moves plan `id` forward as far as its members' states allow, then
    /// sends the worker starts it asked for to their threads, in batches
    /// (`start_batch.rs`).
    ///
    /// Each phase walks `members` with a cursor, so a plan over n children
    /// costs O(n) in total, not per step. Members another plan has taken over
    /// (`child.plan != Some(id)`) are skipped.
    pub(super) fn advance(&mut self, id: u64, ctx: &mut Context<Self>) {
        self.step(id, ctx);
        self.starts.flush();
    }

    fn step(&mut self, id: u64, ctx: &mut Context<Self>) {
        loop {
            let Some(plan) = self.plans.get_mut(&id) else {
                return;
            };
            match plan.phase {
                Phase::Waiting => return,
                Phase::Stopping { cursor } => {
                    // Newest first: members above the cursor are down.
                    if let Some(&key) = cursor.checked_sub(1).and_then(|i| plan.members.get(i)) {
                        match self.children.get(&key) {
                            Some(c) if c.plan == Some(id) => match c.state {
                                State::Starting { .. } | State::Stopping { .. } => return,
                                State::Running { .. } => return self.request_stop(key, ctx),
                                State::Idle | State::Stopped => {}
                            },
                            _ => {}
                        }
                        plan.phase = Phase::Stopping { cursor: cursor - 1 };
                        continue;
                    }
                    match plan.purpose {
                        // No backoff (`BackoffConfig::none`): start at once,
                        // without a timer.
                        Purpose::Restart { delay, .. } if delay.is_zero() => {
                            plan.phase = Phase::Starting(0, 0);
                        }
                        Purpose::Restart { delay, .. } => {
                            plan.phase = Phase::Waiting;
                            ctx.run_later(delay, move |act, ctx| act.delay_elapsed(id, ctx));
                            return;
                        }
                        Purpose::Init | Purpose::Add { .. } | Purpose::Start(_) => {
                            plan.phase = Phase::Starting(0, 0)
                        }
                        Purpose::Remove(_)
                        | Purpose::Shutdown
                        | Purpose::Halt
                        | Purpose::Terminate(_) => return self.finish(id, ctx),
                    }
                }
                Phase::Starting(index, mut acked) => {
                    let starting =
                        |c: &Child| c.plan == Some(id) && matches!(c.state, State::Starting { .. });
                    let concurrent = self.spec.concurrent_start;
                    if !concurrent {
                        // One start at a time: wait for the previous member's acknowledgement.
                        let previous = index.checked_sub(1).and_then(|i| plan.members.get(i));
                        if previous
                            .and_then(|k| self.children.get(k))
                            .is_some_and(starting)
                        {
                            return;
                        }
                    }
                    let Some(&key) = plan.members.get(index) else {
                        // Every member asked to start: wait for all acknowledgements
                        // (the cursor keeps the whole wait linear).
                        while let Some(k) = plan.members.get(acked) {
                            if self.children.get(k).is_some_and(starting) {
                                plan.phase = Phase::Starting(index, acked);
                                return;
                            }
                            acked += 1;
                        }
                        return self.finish(id, ctx);
                    };
                    plan.phase = Phase::Starting(index + 1, acked);
                    let restarting = matches!(plan.purpose, Purpose::Restart { .. });
                    let Some(child) = self.children.get(&key) else {
                        continue;
                    };
                    if child.plan != Some(id) || !matches!(child.state, State::Idle) {
                        continue;
                    }
                    if restarting && child.spec.restart == Restart::Temporary {
                        // Stopped by a sibling's failure: never restarted.
                        self.delete_child(key);
                        continue;
                    }
                    if self.shared.torn_down() {
                        // The runtime was dropped: stop as a supervisor torn
                        // down with its thread does (see `stopping`).
                        ctx.stop();
                        return;
                    }
                    self.start_child(key);
                    if !concurrent {
                        return;
                    }
                }
            }
        }
    }

    fn delay_elapsed(&mut self, id: u64, ctx: &mut Context<Self>) {
        if let Some(plan) = self.plans.get_mut(&id) {
            if matches!(plan.phase, Phase::Waiting) {
                plan.phase = Phase::Starting(0, 0);
                self.advance(id, ctx);
            }
        }
    }

    fn finish(&mut self, id: u64, ctx: &mut Context<Self>) {
        let Some(plan) = self.plans.remove(&id) else {
            return;
        };
        for key in &plan.members {
            if let Some(child) = self.children.get_mut(key) {
                if child.plan == Some(id) {
                    child.plan = None;
                }
            }
        }
        match plan.purpose {
            Purpose::Init => {
                if self.lifecycle == Lifecycle::Initializing {
                    self.lifecycle = Lifecycle::Running;
                    self.reply_init(Ok(()));
                }
            }
            Purpose::Add { reply, with_addr } => {
                // The address of the child just added, read here rather than
                // by a second request.
                let addr = plan
                    .members
                    .first()
                    .and_then(|key| self.children.get(key))
                    .filter(|_| with_addr)
                    .and_then(|child| match &child.state {
                        State::Running { addr, .. } => Some(addr.clone_any()),
                        _ => None,
                    });
                let _ = reply.send(Ok(addr));
            }
            Purpose::Start(reply) => {
                let _ = reply.send(Ok(()));
            }
            Purpose::Terminate(reply) => {
                self.terminated(&plan.members);
                let _ = reply.send(Ok(()));
            }
            Purpose::Remove(reply) => {
                for key in plan.members {
                    self.delete_child(key);
                }
                let _ = reply.send(Ok(()));
            }
            Purpose::Restart { child, .. } => self.group_restarted(&child, &plan.members),
            Purpose::Halt => {
                for key in plan.members {
                    if let Some(child) = self.children.get_mut(&key) {
                        if matches!(child.state, State::Idle) {
                            child.state = State::Stopped;
                        }
                    }
                }
            }
            Purpose::Shutdown => {
                if let Lifecycle::ShuttingDown(reason) = &self.lifecycle {
                    self.lifecycle = Lifecycle::Finished(reason.clone());
                    ctx.stop();
                }
            }
        }
    }

    fn start_child(&mut self, key: u64) {
        let Some(child) = self.children.get_mut(&key) else {
            return;
        };
        child.incarnation += 1;
        child.ignored = false;
        // A span per restart: the new incarnation's start (its factory runs
        // inside it, on its thread) and the restart's own log line carry it.
        let span = match (&child.last_exit, child.incarnation > 1) {
            (Some(exit), true) => tracing::info_span!(
                "restart",
                supervisor = %self.path,
                child = %child.id(),
                incarnation = child.incarnation,
                reason = exit.cause().key(),
                exit = %exit,
            ),
            _ => tracing::Span::none(),
        };
        let _entered = span.enter();
        if !span.is_none() {
            tracing::info!("restarting child");
        }
        let incarnation = Incarnation::new(
            self.as_parent.clone(),
            key,
            child.id().clone(),
            child.incarnation,
        );
        child.pulse = Some((incarnation.pulse().clone(), 0));
        // A child with external heartbeats gets no timer: its silence is
        // what liveness must see.
        let heartbeat = self
            .health
            .wants
            .heartbeat
            .filter(|_| !child.spec.external_heartbeats);
        let (link, control, wiring) = link::wire(incarnation.clone(), heartbeat);
        let placement = match &child.spec.body {
            ChildBody::Worker(factory) => {
                let (placement, thread) = self.shared.place_worker();
                let job = StartJob {
                    factory: factory.clone(),
                    link,
                    wiring,
                    ack: incarnation,
                    span: tracing::Span::current(),
                };
                let index = match placement {
                    Placement::Worker(i) => i,
                    Placement::Control => usize::MAX,
                };
                self.starts.push(index, thread, job);
                placement
            }
            ChildBody::Supervisor(spec) => {
                let path = format!("{}/{}", self.path, child.id()).into();
                let spec = (**spec).clone();
                let init = super::InitReply::Parent(incarnation);
                let wiring = wiring.for_supervisor();
                Supervisor::launch(spec, path, self.shared.clone(), Some((link, wiring)), init);
                Placement::Control
            }
        };
        child.state = State::Starting { control, placement };
    }

    /// Records that the current incarnation of `key` is down and tells its plan.
    pub(super) fn child_down(&mut self, key: u64, reason: ExitReason, ctx: &mut Context<Self>) {
        self.record_exit(key, reason);
        if let Some(plan) = self.children.get(&key).and_then(|c| c.plan) {
            self.advance(plan, ctx);
        }
    }

    /// Records the exit of the current incarnation: last exit, event, and the
    /// strategies' `Exited` signal (their verdicts about it are void).
    fn record_exit(&mut self, key: u64, reason: ExitReason) {
        let Some(child) = self.children.get_mut(&key) else {
            return;
        };
        let reason = child.exit_override.take().unwrap_or(reason);
        child.last_exit = Some(reason.clone());
        let (id, number) = (child.id().to_string(), child.incarnation);
        self.emit(EventKind::ChildExited {
            child: id,
            incarnation: number,
            reason: reason.clone(),
        });
        self.notify_exit(key, &Signal::Exited { reason });
        self.forget_verdicts(key);
    }

    pub(super) fn on_child_started(&mut self, msg: ChildStarted, ctx: &mut Context<Self>) {
        let Some(child) = self.children.get_mut(&msg.key) else {
            return;
        };
        if child.incarnation != msg.incarnation {
            return;
        }
        let State::Starting { control, placement } =
            std::mem::replace(&mut child.state, State::Idle)
        else {
            return;
        };
        let plan = child.plan;
        let addr = match msg.result {
            Ok(Some(addr)) => addr,
            Ok(None) => {
                self.shared.release(placement);
                return self.start_ignored(msg.key, ctx);
            }
            Err(reason) => {
                self.shared.release(placement);
                return self.start_failed(msg.key, reason, ctx);
            }
        };
        child.state = State::Running {
            control,
            placement,
            addr,
            since: Instant::now(),
        };
        let (id, number) = (child.id().to_string(), child.incarnation);
        let mut restarted = false;
        if let Some(p) = plan.and_then(|p| self.plans.get(&p)) {
            if matches!(p.phase, Phase::Starting(..)) {
                child.plan = None;
                restarted = matches!(p.purpose, Purpose::Restart { .. });
            }
        }
        if restarted {
            child.restarts += 1;
        }
        let restarts = child.restarts;
        let cause = child
            .last_exit
            .as_ref()
            .map_or(RestartCause::Normal, ExitReason::cause);
        self.emit(EventKind::ChildStarted {
            child: id.clone(),
            incarnation: number,
            placement,
        });
        if restarted {
            self.emit(EventKind::ChildRestarted {
                child: id,
                incarnation: number,
                restarts,
                cause,
            });
        }
        self.dispatch(
            msg.key,
            &Signal::Started {
                incarnation: number,
            },
            ctx,
        );
        if let Some(plan) = plan {
            self.advance(plan, ctx);
        }
    }

    /// Its factory declined to start it (OTP's `ignore`): not running, spec
    /// kept (a temporary child's dropped), and its plan goes on.
    fn start_ignored(&mut self, key: u64, ctx: &mut Context<Self>) {
        let Some(child) = self.children.get_mut(&key) else {
            return;
        };
        child.ignored = true;
        child.state = State::Stopped;
        let plan = child.plan;
        if plan
            .and_then(|p| self.plans.get(&p))
            .is_some_and(|p| matches!(p.phase, Phase::Starting(..)))
        {
            child.plan = None;
        }
        let temporary = child.spec.restart == Restart::Temporary;
        let event = EventKind::ChildIgnored {
            child: child.id().to_string(),
            incarnation: child.incarnation,
        };
        self.emit(event);
        // A dynamic supervisor keeps no spec it does not run (OTP's
        // simple_one_for_one: an ignored start adds nothing).
        if temporary || self.spec.forget_stopped {
            self.delete_child(key);
        }
        if let Some(plan) = plan {
            self.advance(plan, ctx);
        }
    }

    fn start_failed(&mut self, key: u64, reason: String, ctx: &mut Context<Self>) {
        let Some(child) = self.children.get(&key) else {
            return;
        };
        let id = child.id().to_string();
        let plan = child.plan;
        let exit = ExitReason::StartFailed(reason.clone());
        match plan.and_then(|p| self.plans.get(&p)).map(|p| &p.purpose) {
            Some(Purpose::Init) => {
                // Detach the plan first, so recording the exit cannot advance it.
                if let Some(plan) = plan.and_then(|p| self.plans.remove(&p)) {
                    for key in plan.members {
                        if let Some(child) = self.children.get_mut(&key) {
                            child.plan = None;
                        }
                    }
                }
                self.child_down(key, exit.clone(), ctx);
                self.reply_init(Err(format!("child `{id}` failed to start: {reason}")));
                self.begin_shutdown(exit, ctx);
            }
            Some(Purpose::Start(_)) => {
                // `restart_child`: the child stays as it was, stopped.
                let Some(plan) = plan.and_then(|p| self.plans.remove(&p)) else {
                    return;
                };
                self.child_down(key, exit, ctx);
                if let Some(child) = self.children.get_mut(&key) {
                    child.plan = None;
                    child.state = State::Stopped;
                }
                if let Purpose::Start(reply) = plan.purpose {
                    let _ = reply.send(Err(SupervisorError::StartFailed { id, reason }));
                }
            }
            Some(Purpose::Add { .. }) => {
                let Some(plan) = plan.and_then(|p| self.plans.remove(&p)) else {
                    return;
                };
                self.child_down(key, exit, ctx);
                self.delete_child(key);
                if let Purpose::Add { reply, .. } = plan.purpose {
                    let _ = reply.send(Err(SupervisorError::StartFailed { id, reason }));
                }
            }
            _ => self.failure(key, exit, None, ctx),
        }
    }

    pub(super) fn on_child_exited(&mut self, msg: ChildExited, ctx: &mut Context<Self>) {
        let Some(child) = self.children.get_mut(&msg.key) else {
            return;
        };
        if child.incarnation != msg.incarnation {
            return;
        }
        match std::mem::replace(&mut child.state, State::Idle) {
            State::Stopping {
                deadline,
                placement,
                ..
            } => {
                if let Some(deadline) = deadline {
                    ctx.cancel_future(deadline);
                }
                self.shared.release(placement);
                self.child_down(msg.key, msg.reason, ctx);
            }
            State::Running {
                placement, since, ..
            } => {
                self.shared.release(placement);
                self.failure(msg.key, msg.reason, Some(since), ctx);
            }
            State::Starting { placement, .. } => {
                self.shared.release(placement);
                self.failure(msg.key, msg.reason, None, ctx);
            }
            // Already counted as down (killed after its timeout).
            state @ (State::Idle | State::Stopped) => child.state = state,
        }
    }

    /// An incarnation went down without being asked to.
    fn failure(
        &mut self,
        key: u64,
        reason: ExitReason,
        since: Option<Instant>,
        ctx: &mut Context<Self>,
    ) {
        let Some(child) = self.children.get(&key) else {
            return;
        };
        let owner = child.plan.and_then(|p| self.plans.get(&p));
        let restart_owned = owner.is_none_or(|p| matches!(p.purpose, Purpose::Restart { .. }));
        let wanted = match child.spec.restart {
            Restart::Permanent => true,
            Restart::Transient => reason.is_abnormal(),
            Restart::Temporary => false,
        };
        let live = matches!(self.lifecycle, Lifecycle::Initializing | Lifecycle::Running);
        if !(wanted && restart_owned && live) {
            let temporary = child.spec.restart == Restart::Temporary;
            let unowned = child.plan.is_none();
            let significant = child.spec.significant.then(|| child.id().clone());
            self.child_down(key, reason, ctx);
            if unowned && live && !wanted {
                if temporary || self.spec.forget_stopped {
                    self.delete_child(key);
                } else if let Some(child) = self.children.get_mut(&key) {
                    child.state = State::Stopped;
                }
                // Exited for good, by itself: OTP's auto_shutdown rule.
                if let Some(id) = significant {
                    self.significant_exited(&id, ctx);
                }
            }
            return;
        }
        if !self.window.admit(Instant::now(), self.spec.intensity) {
            let id = child.id().to_string();
            self.child_down(key, reason, ctx);
            return self.give_up(id, ctx);
        }
        self.record_exit(key, reason);
        self.schedule_restart(key, since, ctx);
    }

    /// The restart budget is spent: stop everything and escalate.
    pub(super) fn give_up(&mut self, child: String, ctx: &mut Context<Self>) {
        let restarts = self.window.count();
        self.emit(EventKind::GaveUp {
            child: child.clone(),
            restarts,
        });
        self.begin_shutdown(ExitReason::Escalated { child, restarts }, ctx);
    }

    /// Plans the restart of `key` (down already, or still running when a
    /// strategy ordered it) and of the siblings its strategy names, after the
    /// child's backoff delay.
    pub(super) fn schedule_restart(
        &mut self,
        key: u64,
        since: Option<Instant>,
        ctx: &mut Context<Self>,
    ) {
        let now = Instant::now();
        let backoff = self.spec.backoff;
        let Some(child) = self.children.get_mut(&key) else {
            return;
        };
        if since.is_some_and(|s| now.duration_since(s) >= backoff.stability_window) {
            child.backoff.reset();
        }
        let attempt = child.backoff.attempt();
        let mut delay = child.backoff.next_delay(&backoff, &mut self.rng);
        let id = child.id().to_string();

        // Who the strategy restarts, plus any restart plan those children are in.
        let mut members: Vec<u64> = match self.spec.strategy {
            Strategy::OneForOne => vec![key],
            Strategy::OneForAll => self.children.keys().collect(),
            Strategy::RestForOne => self.children.keys_from(key).collect(),
        };
        members.retain(|k| {
            let c = &self.children[k];
            *k == key
                || (!matches!(c.state, State::Stopped)
                    && c.plan
                        .and_then(|p| self.plans.get(&p))
                        .is_none_or(|p| matches!(p.purpose, Purpose::Restart { .. })))
        });
        let absorbed: Vec<u64> = members
            .iter()
            .filter_map(|k| self.children[k].plan)
            .collect();
        for plan_id in absorbed {
            if let Some(plan) = self.plans.remove(&plan_id) {
                if let Purpose::Restart { delay: d, .. } = plan.purpose {
                    delay = delay.max(d);
                }
                let owned = plan.members.into_iter().filter(|k| {
                    self.children
                        .get(k)
                        .is_some_and(|c| c.plan == Some(plan_id))
                });
                members.extend(owned.collect::<Vec<_>>());
            }
        }
        let cause = self.children[&key].id().clone();
        let plan = self.new_plan(
            Purpose::Restart {
                delay,
                child: cause,
            },
            members,
        );
        let names = self.plans[&plan]
            .members
            .iter()
            .map(|k| self.children[k].id().to_string())
            .collect();
        self.emit(EventKind::RestartScheduled {
            child: id,
            attempt,
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            members: names,
        });
        self.advance(plan, ctx);
    }

    /// Stops every child in reverse start order, then exits with `reason`.
    pub(super) fn begin_shutdown(&mut self, reason: ExitReason, ctx: &mut Context<Self>) {
        if !matches!(self.lifecycle, Lifecycle::Initializing | Lifecycle::Running) {
            return;
        }
        self.lifecycle = Lifecycle::ShuttingDown(reason);
        for (_, plan) in std::mem::take(&mut self.plans) {
            let stopped = || SupervisorError::Stopped(self.path.to_string());
            match plan.purpose {
                Purpose::Add { reply, .. } => {
                    let _ = reply.send(Err(stopped()));
                }
                Purpose::Remove(reply) | Purpose::Terminate(reply) | Purpose::Start(reply) => {
                    let _ = reply.send(Err(stopped()));
                }
                _ => {}
            }
        }
        let members = self.children.keys().collect();
        let plan = self.new_plan(Purpose::Shutdown, members);
        self.advance(plan, ctx);
    }

    pub(super) fn add_child(
        &mut self,
        spec: ChildSpec,
        with_addr: bool,
        reply: Reply<Added>,
        ctx: &mut Context<Self>,
    ) {
        let key = self.insert_child(spec);
        let plan = self.new_plan(Purpose::Add { reply, with_addr }, vec![key]);
        self.advance(plan, ctx);
    }

    pub(super) fn remove_child(&mut self, id: &str, reply: Reply<()>, ctx: &mut Context<Self>) {
        if !self.accepts_requests() {
            let _ = reply.send(Err(SupervisorError::Stopped(self.path.to_string())));
            return;
        }
        let Some(&key) = self.ids.get(id) else {
            let _ = reply.send(Err(SupervisorError::UnknownChild {
                supervisor: self.path.to_string(),
                id: id.to_owned(),
            }));
            return;
        };
        let owner = self.children[&key].plan;
        if let Some(owner) = owner {
            match self.plans.get_mut(&owner) {
                // The removal takes the child over; the restart plan skips it.
                Some(plan) if matches!(plan.purpose, Purpose::Restart { .. }) => {}
                _ => {
                    let state = format!("{:?}", self.children[&key].status()).to_lowercase();
                    let _ = reply.send(Err(SupervisorError::NotRunning {
                        id: id.to_owned(),
                        state,
                    }));
                    return;
                }
            }
        }
        let plan = self.new_plan(Purpose::Remove(reply), vec![key]);
        self.advance(plan, ctx);
        if let Some(owner) = owner {
            self.advance(owner, ctx);
        }
    }
}
