//! Health strategies inside a supervisor: dispatch, combination, action.
//!
//! The supervisor feeds every signal and tick to each strategy, keeps each
//! strategy's standing verdict per child, and acts on the most severe one:
//! degraded and isolated only change the child's health; restart goes
//! through the heal limit; stop halts the child; escalate gives up.

use std::collections::HashMap;
use std::sync::Arc;

use actix::{AsyncContext, Context};
use tokio::time::Instant;

use super::child::State;
use super::plan::Purpose;
use super::Supervisor;
use crate::alert::Alerter;
use crate::event::EventKind;
use crate::health::{Decisions, HealRefusal, HealthStrategy, Signal, Verdict, VerdictKind, Wants};
use crate::link::{Control, PulseNews};
use crate::runtime::ThreadChange;
use crate::{AlertLevel, ExitReason, HealthCause, HealthStatus, SupervisorSpec};

/// One strategy and its standing verdicts (healthy verdicts are not stored).
struct Slot {
    name: Arc<str>,
    strategy: Box<dyn HealthStrategy>,
    verdicts: HashMap<u64, Verdict>,
}

/// A supervisor's strategies and what they need.
pub(super) struct Health {
    slots: Vec<Slot>,
    pub(super) wants: Wants,
    alerter: Alerter,
    next_ping: u64,
    /// The decisions buffer every dispatch reuses.
    scratch: Decisions,
}

impl Health {
    pub(super) fn new(spec: &SupervisorSpec) -> Self {
        let slots: Vec<Slot> = spec
            .health
            .iter()
            .map(|factory| {
                let strategy = factory.build();
                Slot {
                    name: strategy.name().into(),
                    strategy,
                    verdicts: HashMap::new(),
                }
            })
            .collect();
        let shortest = |f: fn(&Wants) -> Option<std::time::Duration>| {
            slots.iter().filter_map(|s| f(&s.strategy.wants())).min()
        };
        let wants = Wants {
            heartbeat: shortest(|w| w.heartbeat),
            ping: shortest(|w| w.ping),
            thread_watch: shortest(|w| w.thread_watch),
        };
        Self {
            slots,
            wants,
            alerter: Alerter::new(spec.alerts),
            next_ping: 0,
            scratch: Decisions::default(),
        }
    }
}

impl Health {
    /// Tells every strategy that about `additional` children are about to start.
    pub(super) fn reserve(&mut self, additional: usize) {
        for slot in &mut self.slots {
            slot.strategy.reserve(additional);
        }
    }
}

impl Supervisor {
    /// Feeds a signal about `key` to every strategy and acts on their answers.
    pub(super) fn dispatch(&mut self, key: u64, signal: &Signal, ctx: &mut Context<Self>) {
        self.dispatch_at(key, signal, Instant::now(), ctx);
    }

    /// [`dispatch`](Self::dispatch) of a signal observed at `now`.
    fn dispatch_at(&mut self, key: u64, signal: &Signal, now: Instant, ctx: &mut Context<Self>) {
        if self.health.slots.is_empty() {
            return;
        }
        let Some(id) = self.children.get(&key).map(|c| c.id().clone()) else {
            return;
        };
        for slot in 0..self.health.slots.len() {
            // One buffer for every dispatch: no allocation per signal.
            let mut out = std::mem::take(&mut self.health.scratch);
            self.health.slots[slot]
                .strategy
                .on_signal(now, &id, signal, &mut out);
            self.apply(slot, &mut out, Some((&id, key)), ctx);
            self.health.scratch = out;
        }
    }

    /// Ticks every strategy and repeats standing alerts.
    pub(super) fn health_tick(&mut self, ctx: &mut Context<Self>) {
        if self.health.slots.is_empty() {
            return;
        }
        let now = Instant::now();
        if let Some(stuck_after) = self.health.wants.thread_watch {
            for change in self.shared.probe_threads(now, stuck_after) {
                self.emit(match change {
                    ThreadChange::Stuck(placement) => EventKind::ThreadStuck { placement },
                    ThreadChange::Recovered(placement) => EventKind::ThreadRecovered { placement },
                    ThreadChange::Started(placement) => EventKind::ThreadStarted { placement },
                    ThreadChange::Draining(placement) => EventKind::ThreadDraining { placement },
                    ThreadChange::Stopped(placement) => EventKind::ThreadStopped { placement },
                });
            }
        }
        self.collect_pulses(ctx);
        for slot in 0..self.health.slots.len() {
            let mut out = Decisions::default();
            self.health.slots[slot].strategy.on_tick(now, &mut out);
            self.apply(slot, &mut out, None, ctx);
        }
        // Standing conditions count one alert occurrence per tick.
        let standing: Vec<_> = self
            .children
            .values_mut()
            .filter(|c| c.health.status != HealthStatus::Healthy || c.health.alerting)
            .map(|c| {
                c.health.alerting = c.health.status != HealthStatus::Healthy;
                (c.id().clone(), c.health.status, c.health.reason.clone())
            })
            .collect();
        for (id, status, reason) in standing {
            let degraded = format!("{}/{id}:degraded", self.path);
            let critical = format!("{}/{id}:heal-limit", self.path);
            let reason = reason.unwrap_or_default();
            match status {
                HealthStatus::Healthy => {
                    self.health.alerter.clear(&degraded);
                    self.health.alerter.clear(&critical);
                }
                HealthStatus::Degraded => {
                    self.health.alerter.clear(&critical);
                    let message = format!("`{id}` is degraded: {reason}");
                    self.alert(now, AlertLevel::Warning, &degraded, &message);
                }
                HealthStatus::Critical => {
                    let message =
                        format!("`{id}` needs a restart the heal limit forbids: {reason}");
                    self.alert(now, AlertLevel::Critical, &critical, &message);
                }
            }
        }
    }

    /// Delivers each running child's latest heartbeat and pong since the
    /// last tick, stamped with the times the child sent them.
    fn collect_pulses(&mut self, ctx: &mut Context<Self>) {
        let news: Vec<(u64, PulseNews)> = self
            .children
            .iter_mut()
            .filter(|(_, c)| c.is_running())
            .filter_map(|(key, c)| {
                let (pulse, seen) = c.pulse.as_mut()?;
                Some((key, pulse.collect(seen)?))
            })
            .collect();
        for (key, news) in news {
            // Work first: a strategy judging on a heartbeat must see the
            // work state collected with it, not the one of the last tick.
            match news.work {
                Some(Some(work)) => {
                    let label = work.label;
                    self.dispatch_at(key, &Signal::WorkStarted { label }, work.started, ctx);
                    self.dispatch_at(key, &Signal::Progress, work.progress, ctx);
                }
                Some(None) => self.dispatch(key, &Signal::WorkFinished, ctx),
                None => {}
            }
            if let Some((at, metrics)) = news.beat {
                self.dispatch_at(key, &Signal::Heartbeat(metrics), at, ctx);
            }
            if let Some((seq, at)) = news.pong {
                self.dispatch_at(key, &Signal::Pong { seq }, at, ctx);
            }
        }
    }

    fn alert(&mut self, now: Instant, level: AlertLevel, key: &str, message: &str) {
        if let Some(alert) = self.health.alerter.occur(now, level, key, message) {
            self.shared.alert_sink.deliver(&alert);
            self.emit(EventKind::Alert(alert));
        }
    }

    /// Pings every running child (for strategies that want pongs).
    pub(super) fn ping_children(&mut self, ctx: &mut Context<Self>) {
        let running: Vec<u64> = self
            .children
            .iter()
            .filter(|(_, c)| c.is_running())
            .map(|(k, _)| k)
            .collect();
        for key in running {
            self.health.next_ping += 1;
            let seq = self.health.next_ping;
            if let Some(State::Running { control, .. }) = self.children.get(&key).map(|c| &c.state)
            {
                control.send(Control::Ping(seq));
            }
            self.dispatch(key, &Signal::PingSent { seq }, ctx);
        }
    }

    /// Tells strategies that an incarnation exited. Their answers are
    /// dropped: verdicts about a child that is down are moot.
    pub(super) fn notify_exit(&mut self, key: u64, signal: &Signal) {
        let Some(id) = self.children.get(&key).map(|c| c.id().clone()) else {
            return;
        };
        let now = Instant::now();
        for slot in &mut self.health.slots {
            slot.strategy
                .on_signal(now, &id, signal, &mut Decisions::default());
        }
    }

    /// Forgets every verdict about an incarnation that is gone.
    pub(super) fn forget_verdicts(&mut self, key: u64) {
        for slot in &mut self.health.slots {
            slot.verdicts.remove(&key);
        }
        if let Some(child) = self.children.get_mut(&key) {
            child.health.status = HealthStatus::Healthy;
            child.health.reason = None;
            child.health.isolated_until = None;
            child.health.heal_at = None;
        }
    }

    /// Acts on a strategy's decisions; `known` is the child the signal was
    /// about (its id and key), whose key needs no lookup.
    fn apply(
        &mut self,
        slot: usize,
        out: &mut Decisions,
        known: Option<(&Arc<str>, u64)>,
        ctx: &mut Context<Self>,
    ) {
        for (id, verdict) in out.drain() {
            if verdict == Verdict::Healthy && self.health.slots[slot].verdicts.is_empty() {
                // Healthy verdicts are not stored: healthy already, no
                // change (every child's first verdict, at its start).
                continue;
            }
            let key = match known {
                Some((known_id, key)) if **known_id == *id => key,
                _ => match self.ids.get(id.as_str()) {
                    Some(&key) => key,
                    None => continue,
                },
            };
            if !self.children.get(&key).is_some_and(|c| c.is_running()) {
                // Verdicts about children that are not up are moot.
                continue;
            }
            let slot = &mut self.health.slots[slot];
            let previous = if verdict == Verdict::Healthy {
                match slot.verdicts.remove(&key) {
                    Some(previous) => Some(previous),
                    None => continue,
                }
            } else {
                slot.verdicts.insert(key, verdict.clone())
            };
            if previous.as_ref() == Some(&verdict) {
                continue;
            }
            // Only a new kind is news. A standing verdict whose text moves on
            // every tick (a brake number, a silence in seconds) updates the
            // snapshot silently: publishing it would flood the bus.
            let previous_kind = previous
                .as_ref()
                .map_or(VerdictKind::Healthy, Verdict::kind);
            if previous_kind != verdict.kind() {
                let strategy = slot.name.to_string();
                self.emit(EventKind::VerdictChanged {
                    strategy,
                    child: id,
                    verdict: verdict.kind(),
                    cause: verdict.cause(),
                    reason: verdict.reason().map(str::to_owned),
                });
            }
            self.reconcile(key, ctx);
        }
    }

    /// Acts on the most severe standing verdict about `key`.
    fn reconcile(&mut self, key: u64, ctx: &mut Context<Self>) {
        let worst = self
            .health
            .slots
            .iter()
            .filter_map(|s| s.verdicts.get(&key).map(|v| (s.name.clone(), v.clone())))
            .max_by_key(|(_, v)| v.kind());
        match worst {
            None | Some((_, Verdict::Healthy)) => {
                self.set_health(key, HealthStatus::Healthy, None, None)
            }
            Some((_, Verdict::Degraded { reason })) => {
                self.set_health(key, HealthStatus::Degraded, Some(reason), None)
            }
            Some((_, Verdict::Isolate { until, reason })) => {
                self.set_health(key, HealthStatus::Degraded, Some(reason), Some(until));
            }
            Some((strategy, Verdict::Restart { cause, reason })) => {
                self.heal(key, &strategy, cause, reason, ctx)
            }
            Some((strategy, Verdict::Stop { cause, reason })) => {
                if self.children.get(&key).is_some_and(|c| c.plan.is_none()) {
                    self.condemn(key, &strategy, cause, &reason);
                    let plan = self.new_plan(Purpose::Halt, vec![key]);
                    self.advance(plan, ctx);
                }
            }
            Some((strategy, Verdict::Escalate { reason })) => {
                let Some(id) = self.children.get(&key).map(|c| c.id().to_string()) else {
                    return;
                };
                tracing::error!(supervisor = %self.path, child = id, strategy = %strategy, reason, "strategy escalates");
                self.give_up(id, ctx);
            }
        }
    }

    fn set_health(
        &mut self,
        key: u64,
        status: HealthStatus,
        reason: Option<String>,
        isolated_until: Option<Instant>,
    ) {
        let Some(child) = self.children.get_mut(&key) else {
            return;
        };
        let h = &mut child.health;
        // Published only when the status or the isolation changes; a new
        // reason text or isolation end alone is in the snapshot, not news.
        let news = h.status != status || h.isolated_until.is_some() != isolated_until.is_some();
        h.status = status;
        h.reason = reason.clone();
        h.isolated_until = isolated_until;
        if !news {
            return;
        }
        let child = child.id().to_string();
        self.emit(EventKind::HealthChanged {
            child,
            status,
            isolated: isolated_until.is_some(),
            reason,
        });
    }

    /// The reason the next exit of `key` will carry.
    fn condemn(&mut self, key: u64, strategy: &str, cause: HealthCause, reason: &str) {
        if let Some(child) = self.children.get_mut(&key) {
            child.exit_override = Some(ExitReason::Unhealthy {
                strategy: strategy.to_owned(),
                cause,
                reason: reason.to_owned(),
            });
        }
    }

    /// The heal limit's refusal of a restart of `key` ends at `until`: acts
    /// on the verdicts standing then, whatever the tick (none need to change).
    fn heal_due(&mut self, key: u64, until: Instant, ctx: &mut Context<Self>) {
        let Some(child) = self.children.get_mut(&key) else {
            return;
        };
        // A later refusal, or an exit, replaced the deferral.
        if child.health.heal_at != Some(until) {
            return;
        }
        child.health.heal_at = None;
        self.reconcile(key, ctx);
    }

    /// Defers a restart of `key` the heal limit refused until `until`.
    fn defer_heal(&mut self, key: u64, until: Instant, ctx: &mut Context<Self>) {
        let Some(child) = self.children.get_mut(&key) else {
            return;
        };
        if child.health.heal_at.is_some_and(|due| due <= until) {
            // Already due then, or earlier (and asked again then): a standing
            // verdict asks on every tick, and a refusal whose end moves with
            // the clock (an empty window with `max` 0) would otherwise leave
            // one more timer per tick in the supervisor's context.
            return;
        }
        child.health.heal_at = Some(until);
        let wait = until.saturating_duration_since(Instant::now());
        ctx.run_later(wait, move |act, ctx| act.heal_due(key, until, ctx));
    }

    /// A strategy wants `key` restarted: restart it if the heal limit allows,
    /// otherwise isolate it until it does.
    fn heal(
        &mut self,
        key: u64,
        strategy: &str,
        cause: HealthCause,
        reason: String,
        ctx: &mut Context<Self>,
    ) {
        let now = Instant::now();
        let limit = self.spec.heal_limit;
        let Some(child) = self.children.get_mut(&key) else {
            return;
        };
        if child.plan.is_some() {
            return;
        }
        let since = match &child.state {
            State::Running { since, .. } => *since,
            _ => return,
        };
        match child.health.window.try_heal(now, limit) {
            Ok(()) => {
                let id = child.id().to_string();
                self.condemn(key, strategy, cause, &reason);
                // A strategy's restart is an abnormal exit like any other:
                // it counts against the intensity, as in OTP. The heal limit
                // above is an additional, per-child bound. Planned recycles
                // (age, tasks) cannot loop and do not count.
                if !cause.is_planned() && !self.window.admit(now, self.spec.intensity) {
                    tracing::error!(supervisor = %self.path, child = id, strategy, reason, "strategy restart exceeds the restart intensity");
                    return self.give_up(id, ctx);
                }
                let key_name = format!("{}/{id}:healed", self.path);
                self.alert(
                    now,
                    AlertLevel::Info,
                    &key_name,
                    &format!("`{id}` restarted by {strategy}: {reason}"),
                );
                self.schedule_restart(key, Some(since), ctx);
            }
            Err(HealRefusal::Gap(until)) => {
                self.defer_heal(key, until, ctx);
                let why = format!("restart by {strategy} deferred (heal gap): {reason}");
                self.set_health(key, HealthStatus::Degraded, Some(why), Some(until));
            }
            Err(HealRefusal::Budget(until)) => {
                self.defer_heal(key, until, ctx);
                let why = format!("heal limit reached; restart by {strategy} refused: {reason}");
                // The critical alert counts its occurrences on the ticks while this lasts.
                self.set_health(key, HealthStatus::Critical, Some(why), Some(until));
            }
        }
    }
}
