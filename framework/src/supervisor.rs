//! The supervisor actor: starts children from specs, watches their exits and
//! restarts them by its strategy, within its intensity, with backoff.
//!
//! Supervisors always run on the runtime's control thread. All their work is
//! message handling and timers, never child code.

mod admin;
mod child;
mod handle;
mod health;
mod messages;
mod plan;
mod stop;
mod table;

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use actix::{Actor, AsyncContext, Context, Running};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::event::EventKind;
use crate::info::SupervisorInfo;
use crate::intensity::RestartWindow;
use crate::link::{ChildLink, Incarnation, Wiring};
use crate::parent::{ErasedAddr, Parent};
use crate::runtime::Shared;
use crate::start_batch::Starts;
use crate::{ExitReason, HealthStatus, SupervisorError, SupervisorSpec};

use health::Health;

use child::State;
pub use handle::SupervisorRef;
use plan::Plan;
use table::ChildTable;

/// Who waits for the initial start of a supervisor.
pub(crate) enum InitReply {
    /// [`Runtime::start`](crate::Runtime::start).
    Root(oneshot::Sender<Result<SupervisorRef, SupervisorError>>),
    /// The parent supervisor.
    Parent(Incarnation),
}

#[derive(Debug, Clone, PartialEq)]
enum Lifecycle {
    Initializing,
    Running,
    /// Stopping every child in reverse start order before exiting.
    ShuttingDown(ExitReason),
    /// All children down; the actor exits with this reason.
    Finished(ExitReason),
}

pub(crate) struct Supervisor {
    path: Arc<str>,
    /// Strategy and knobs; its `children` were moved into `children` at start.
    spec: SupervisorSpec,
    shared: Arc<Shared>,
    /// Children by key; keys grow with start order, so iteration is start order.
    children: ChildTable,
    ids: HashMap<Arc<str>, u64>,
    next_key: u64,
    plans: BTreeMap<u64, Plan>,
    next_plan: u64,
    window: RestartWindow,
    rng: SmallRng,
    /// Link to the parent supervisor; `None` for a root.
    link: Option<ChildLink>,
    init: Option<InitReply>,
    lifecycle: Lifecycle,
    ticks: u64,
    health: Health,
    exit: watch::Sender<Option<ExitReason>>,
    me: Option<SupervisorRef>,
    /// This supervisor as its children's incarnations see it: made once,
    /// shared by every incarnation it starts.
    as_parent: Arc<dyn Parent>,
    /// Worker starts not yet sent to their threads (sent in batches at the
    /// end of each plan step).
    starts: Starts,
}

impl Supervisor {
    /// Creates a supervisor on the current (control) arbiter.
    pub(crate) fn launch(
        mut spec: SupervisorSpec,
        path: Arc<str>,
        shared: Arc<Shared>,
        parent: Option<(ChildLink, Wiring)>,
        init: InitReply,
    ) {
        let rng = match shared.seed {
            Some(seed) => {
                let mut hasher = DefaultHasher::new();
                path.hash(&mut hasher);
                SmallRng::seed_from_u64(seed ^ hasher.finish())
            }
            None => rand::make_rng(),
        };
        let initial = std::mem::take(&mut spec.children);
        Supervisor::create(move |ctx| {
            let link = parent.map(|(link, wiring)| {
                wiring.attach(ctx);
                link
            });
            let health = Health::new(&spec);
            let mut supervisor = Supervisor {
                path,
                health,
                spec,
                shared,
                children: ChildTable::default(),
                ids: HashMap::new(),
                next_key: 0,
                plans: BTreeMap::new(),
                next_plan: 0,
                window: RestartWindow::default(),
                rng,
                link,
                init: Some(init),
                lifecycle: Lifecycle::Initializing,
                ticks: 0,
                exit: watch::channel(None).0,
                me: None,
                as_parent: Arc::new(ctx.address()),
                starts: Starts::default(),
            };
            // Room for the initial children at once: no table grows, and
            // rehashes, one child at a time.
            supervisor.children.reserve(initial.len());
            supervisor.ids.reserve(initial.len());
            supervisor.health.reserve(initial.len());
            let keys = initial
                .into_iter()
                .map(|c| supervisor.insert_child(c))
                .collect();
            supervisor.new_plan(plan::Purpose::Init, keys);
            supervisor
        });
    }

    fn emit(&self, kind: EventKind) {
        self.shared.bus.emit(&self.path, kind);
    }

    fn accepts_requests(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Initializing | Lifecycle::Running)
    }

    fn info(&self, now: Instant) -> SupervisorInfo {
        SupervisorInfo {
            path: self.path.to_string(),
            strategy: self.spec.strategy,
            ticks: self.ticks,
            restarts_in_period: self.window.count(),
            health: self
                .children
                .values()
                .map(|c| c.health.status)
                .max()
                .unwrap_or(HealthStatus::Healthy),
            children: self.children.values().map(|c| c.info(now)).collect(),
        }
    }

    fn lookup(&self, id: &str) -> Result<Box<dyn std::any::Any + Send>, SupervisorError> {
        let child = self
            .ids
            .get(id)
            .and_then(|key| self.children.get(key))
            .ok_or_else(|| SupervisorError::UnknownChild {
                supervisor: self.path.to_string(),
                id: id.to_owned(),
            })?;
        match &child.state {
            State::Running { addr, .. } => Ok(addr.clone_any()),
            _ => Err(SupervisorError::NotRunning {
                id: id.to_owned(),
                state: format!("{:?}", child.status()).to_lowercase(),
            }),
        }
    }

    /// Housekeeping: forget old restarts and reset the backoff of children
    /// that have been stable for the window.
    fn on_tick(&mut self, ctx: &mut Context<Self>) {
        self.ticks += 1;
        let now = Instant::now();
        self.window.prune(now, self.spec.intensity.period);
        let window = self.spec.backoff.stability_window;
        for child in self.children.values_mut() {
            if let State::Running { since, .. } = &child.state {
                if child.backoff.attempt() > 0 && now.duration_since(*since) >= window {
                    child.backoff.reset();
                }
            }
        }
        self.health_tick(ctx);
    }

    /// Answers whoever waits for this supervisor's initial start.
    fn reply_init(&mut self, result: Result<(), String>) {
        let Some(init) = self.init.take() else { return };
        match init {
            InitReply::Root(tx) => {
                let result = match (result, self.me.clone()) {
                    (Ok(()), Some(me)) => Ok(me),
                    (Ok(()), None) => Err(SupervisorError::Stopped(self.path.to_string())),
                    (Err(reason), _) => Err(SupervisorError::StartFailed {
                        id: self.path.to_string(),
                        reason,
                    }),
                };
                let _ = tx.send(result);
            }
            InitReply::Parent(ack) => {
                let result = match (result, self.me.clone()) {
                    (Ok(()), Some(me)) => Ok(Some(Box::new(me) as Box<dyn ErasedAddr>)),
                    (Ok(()), None) => Err("supervisor stopped during start".to_owned()),
                    (Err(reason), _) => Err(reason),
                };
                ack.report_start(result);
            }
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.me = Some(SupervisorRef::new(
            ctx.address(),
            self.path.clone(),
            self.exit.subscribe(),
        ));
        // Periods from users' durations: actix's interval catches up on
        // missed ticks one period at a time, so a sub-millisecond one spins.
        let tick = crate::clock::period(self.spec.tick);
        ctx.run_interval(tick, |act, ctx| act.on_tick(ctx));
        if let Some(ping) = self.health.wants.ping {
            ctx.run_interval(crate::clock::period(ping), |act, ctx| {
                act.ping_children(ctx)
            });
        }
        let init = self.plans.keys().next().copied();
        if let Some(id) = init {
            self.advance(id, ctx);
        }
    }

    fn stopping(&mut self, ctx: &mut Context<Self>) -> Running {
        if tokio::runtime::Handle::try_current().is_err() || self.shared.torn_down() {
            // The thread is being torn down, or the runtime was dropped
            // without `Runtime::shutdown`: no timer can be set, so no ordered
            // shutdown. Stop now; the children's control lines close with us
            // and their own threads are going down too.
            tracing::debug!(supervisor = %self.path, "torn down without shutdown");
            return Running::Stop;
        }
        // Killed by the parent (or orphaned): every child is killed at once,
        // and the supervisor exits when they are down, so its exit report
        // means its whole subtree is gone. Otherwise an ordered shutdown.
        let killed = self.link.as_ref().is_some_and(ChildLink::kill_requested);
        let reason = if killed {
            ExitReason::Killed
        } else {
            ExitReason::Shutdown
        };
        self.begin_shutdown(reason, ctx);
        if killed {
            self.kill_children(ctx);
        }
        match self.lifecycle {
            Lifecycle::Finished(_) => Running::Stop,
            _ => Running::Continue,
        }
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        let reason = match &self.lifecycle {
            Lifecycle::Finished(reason) => reason.clone(),
            // Torn down with its thread: the children notice the closed
            // control channels and are killed.
            _ => ExitReason::Killed,
        };
        self.reply_init(Err(reason.to_string()));
        if matches!(reason, ExitReason::Escalated { .. }) {
            match &self.link {
                Some(link) => {
                    link.set_reason(reason.clone());
                    self.emit(EventKind::Escalated {
                        reason: reason.clone(),
                    });
                }
                None => self.emit(EventKind::Fatal {
                    reason: reason.clone(),
                }),
            }
        } else if let (Some(link), ExitReason::StartFailed(_)) = (&self.link, &reason) {
            link.set_reason(reason.clone());
        }
        self.emit(EventKind::SupervisorStopped {
            reason: reason.clone(),
        });
        self.exit.send_replace(Some(reason));
    }
}
