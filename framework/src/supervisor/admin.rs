//! Child administration as in OTP: terminate, restart, delete and count
//! children at run time, and the rules that close a restart or an automatic
//! shutdown (significant children).
//!
//! Each operation answers at once when the child's state decides it (OTP's
//! `{error, running}`, `{error, restarting}`, `{error, not_found}`), and
//! otherwise runs as a plan (`plan.rs`), so it is sequenced with restarts
//! and never overlaps an incarnation.

use actix::Context;

use super::child::State;
use super::messages::Reply;
use super::plan::Purpose;
use super::Supervisor;
use crate::event::EventKind;
use crate::info::ChildCount;
use crate::supervisor_spec::{validate_significance, AutoShutdown};
use crate::{ChildKind, ChildSpec, ExitReason, Restart, SupervisorError};

impl Supervisor {
    fn unknown(&self, id: &str) -> SupervisorError {
        SupervisorError::UnknownChild {
            supervisor: self.path.to_string(),
            id: id.to_owned(),
        }
    }

    /// Whether `spec` may be added now: a valid spec, significant only as
    /// OTP allows, and an id not taken (saying whether the child holding
    /// it runs or only its spec is kept).
    pub(super) fn check_addable(&self, spec: &ChildSpec) -> Result<(), SupervisorError> {
        if !self.accepts_requests() {
            return Err(SupervisorError::Stopped(self.path.to_string()));
        }
        crate::supervisor_spec::validate_child(spec)?;
        validate_significance(spec, &self.path, self.spec.auto_shutdown)?;
        if let Some(child) = self.ids.get(spec.id()).and_then(|k| self.children.get(k)) {
            let (supervisor, id) = (self.path.to_string(), spec.id().to_owned());
            return Err(if child.is_alive() {
                SupervisorError::AlreadyStarted { supervisor, id }
            } else {
                SupervisorError::AlreadyPresent { supervisor, id }
            });
        }
        Ok(())
    }

    /// The key of child `id` if it is not running and nothing acts on it:
    /// the state `restart_child` and `delete_child` need.
    fn stopped_child(&self, id: &str) -> Result<u64, SupervisorError> {
        if !self.accepts_requests() {
            return Err(SupervisorError::Stopped(self.path.to_string()));
        }
        let key = *self.ids.get(id).ok_or_else(|| self.unknown(id))?;
        let child = &self.children[&key];
        let (supervisor, id) = (self.path.to_string(), id.to_owned());
        match child.plan.and_then(|p| self.plans.get(&p)) {
            Some(plan) if matches!(plan.purpose, Purpose::Restart { .. }) => {
                Err(SupervisorError::Restarting { supervisor, id })
            }
            _ if child.is_alive() => Err(SupervisorError::Running { supervisor, id }),
            Some(plan) => Err(SupervisorError::Busy {
                supervisor,
                id,
                operation: plan.purpose.name(),
            }),
            None => Ok(key),
        }
    }

    /// Stops child `id` within its shutdown policy and keeps its spec
    /// (a temporary child's is dropped, as in OTP). Not a failure: no
    /// restart, no intensity, no automatic shutdown.
    pub(super) fn terminate_child(&mut self, id: &str, reply: Reply<()>, ctx: &mut Context<Self>) {
        if !self.accepts_requests() {
            let _ = reply.send(Err(SupervisorError::Stopped(self.path.to_string())));
            return;
        }
        let Some(&key) = self.ids.get(id) else {
            let _ = reply.send(Err(self.unknown(id)));
            return;
        };
        let child = &self.children[&key];
        let owner = child.plan;
        match owner.and_then(|p| self.plans.get(&p)) {
            // The termination takes the child over; the restart skips it.
            Some(plan) if matches!(plan.purpose, Purpose::Restart { .. }) => {}
            Some(plan) => {
                let _ = reply.send(Err(SupervisorError::Busy {
                    supervisor: self.path.to_string(),
                    id: id.to_owned(),
                    operation: plan.purpose.name(),
                }));
                return;
            }
            // Already down and not coming back: nothing to stop (OTP: ok).
            None if !child.is_alive() => {
                let _ = reply.send(Ok(()));
                return;
            }
            None => {}
        }
        let plan = self.new_plan(Purpose::Terminate(reply), vec![key]);
        self.advance(plan, ctx);
        if let Some(owner) = owner {
            self.advance(owner, ctx);
        }
    }

    /// The children of a finished termination are down: stopped, their
    /// specs kept, except a temporary child's.
    pub(super) fn terminated(&mut self, members: &[u64]) {
        for &key in members {
            let Some(child) = self.children.get_mut(&key) else {
                continue;
            };
            if child.spec.restart == Restart::Temporary {
                self.delete_child(key);
            } else if matches!(child.state, State::Idle) {
                child.state = State::Stopped;
            }
        }
    }

    /// Starts a terminated (or ignored, or stopped for good) child again.
    /// It does not count toward the intensity: it is an order, not a failure.
    pub(super) fn restart_child(&mut self, id: &str, reply: Reply<()>, ctx: &mut Context<Self>) {
        let key = match self.stopped_child(id) {
            Ok(key) => key,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if let Some(child) = self.children.get_mut(&key) {
            child.state = State::Idle;
        }
        let plan = self.new_plan(Purpose::Start(reply), vec![key]);
        self.advance(plan, ctx);
    }

    /// Forgets a child that is not running.
    pub(super) fn delete_stopped_child(&mut self, id: &str) -> Result<(), SupervisorError> {
        let key = self.stopped_child(id)?;
        self.delete_child(key);
        Ok(())
    }

    /// OTP's `count_children`.
    pub(super) fn count_children(&self) -> ChildCount {
        let mut count = ChildCount::default();
        for child in self.children.values() {
            count.specs += 1;
            count.active += usize::from(child.is_running());
            match child.spec.kind() {
                ChildKind::Supervisor => count.supervisors += 1,
                ChildKind::Worker => count.workers += 1,
            }
        }
        count
    }

    /// A group restart (one-for-all, rest-for-one) is over: every member is
    /// up again, or declined to start.
    pub(super) fn group_restarted(&self, child: &str, members: &[u64]) {
        if self.spec.strategy == crate::Strategy::OneForOne {
            return;
        }
        let members = members
            .iter()
            .filter_map(|k| self.children.get(k))
            .map(|c| c.id().to_string())
            .collect();
        self.emit(EventKind::GroupRestarted {
            child: child.to_owned(),
            members,
        });
    }

    /// Significant child `id` exited for good by itself: shut down if the
    /// supervisor's `auto_shutdown` says so.
    pub(super) fn significant_exited(&mut self, id: &str, ctx: &mut Context<Self>) {
        match self.spec.auto_shutdown {
            AutoShutdown::Never => return,
            AutoShutdown::AnySignificant => {}
            AutoShutdown::AllSignificant => {
                // Another significant child is up, or will be again.
                let others = self
                    .children
                    .values()
                    .any(|c| c.spec.significant && (c.is_alive() || c.plan.is_some()));
                if others {
                    return;
                }
            }
        }
        self.emit(EventKind::AutoShutdownTriggered {
            child: id.to_owned(),
        });
        self.begin_shutdown(ExitReason::Shutdown, ctx);
    }
}

impl Purpose {
    /// What the plan does, for [`SupervisorError::Busy`].
    pub(super) fn name(&self) -> &'static str {
        match self {
            Purpose::Init => "initial start",
            Purpose::Add { .. } => "add",
            Purpose::Remove(_) => "removal",
            Purpose::Terminate(_) => "termination",
            Purpose::Start(_) => "restart_child",
            Purpose::Restart { .. } => "restart",
            Purpose::Shutdown => "shutdown",
            Purpose::Halt => "stop ordered by a strategy",
        }
    }
}
