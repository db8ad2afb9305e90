//! Stopping one child: the stop order, its deadline, and kills.
//!
//! A stop asks the child to stop and sets its shutdown deadline; at the
//! deadline it is killed. A killed worker whose thread is blocked cannot be
//! killed from outside and is abandoned; a killed child supervisor kills its
//! own children and reports when they are down.

use std::time::Duration;

use actix::{AsyncContext, Context};

use super::child::State;
use super::Supervisor;
use crate::child_spec::ChildBody;
use crate::link::Control;
use crate::{ExitReason, ShutdownPolicy};

/// How long a killed worker's exit report is awaited before the worker is
/// abandoned (its thread is blocked). A kill lands at the worker's next poll:
/// microseconds on a thread that runs.
const KILL_GRACE: Duration = Duration::from_secs(1);

impl Supervisor {
    pub(super) fn request_stop(&mut self, key: u64, ctx: &mut Context<Self>) {
        let Some(child) = self.children.get_mut(&key) else {
            return;
        };
        let State::Running {
            control, placement, ..
        } = std::mem::replace(&mut child.state, State::Idle)
        else {
            return;
        };
        let number = child.incarnation;
        let deadline = match child.spec.shutdown {
            ShutdownPolicy::Timeout(timeout) => {
                let order = if timeout.is_zero() {
                    Control::Kill
                } else {
                    Control::Stop
                };
                control.send(order);
                Some(ctx.run_later(timeout, move |act, ctx| act.stop_deadline(key, number, ctx)))
            }
            ShutdownPolicy::Infinity => {
                control.send(Control::Stop);
                None
            }
        };
        child.state = State::Stopping {
            control,
            placement,
            deadline,
        };
    }

    /// Kills every child at once (this supervisor was killed or orphaned).
    /// Each is down when its exit report comes; a worker that sends none
    /// within [`KILL_GRACE`] (its thread is blocked) is abandoned. A child
    /// supervisor always reports: it kills its own children the same way.
    pub(super) fn kill_children(&mut self, ctx: &mut Context<Self>) {
        for (key, child) in self.children.iter_mut() {
            let worker = matches!(child.spec.body, ChildBody::Worker(_));
            let number = child.incarnation;
            child.state = match std::mem::replace(&mut child.state, State::Idle) {
                State::Running {
                    control, placement, ..
                }
                | State::Stopping {
                    control,
                    placement,
                    deadline: None,
                } => {
                    control.send(Control::Kill);
                    let deadline = worker.then(|| {
                        ctx.run_later(KILL_GRACE, move |act, ctx| {
                            act.stop_deadline(key, number, ctx)
                        })
                    });
                    State::Stopping {
                        control,
                        placement,
                        deadline,
                    }
                }
                State::Stopping {
                    control,
                    placement,
                    deadline: Some(deadline),
                } => {
                    // Already under a deadline: kill now, keep waiting
                    // for the report no longer than the grace.
                    ctx.cancel_future(deadline);
                    control.send(Control::Kill);
                    let deadline = ctx.run_later(KILL_GRACE, move |act, ctx| {
                        act.stop_deadline(key, number, ctx)
                    });
                    State::Stopping {
                        control,
                        placement,
                        deadline: Some(deadline),
                    }
                }
                State::Starting { control, placement } => {
                    // Killed as soon as its context first runs.
                    control.send(Control::Kill);
                    State::Starting { control, placement }
                }
                state @ (State::Idle | State::Stopped) => state,
            };
        }
    }

    /// The shutdown timeout passed: kill. A killed worker is down at once: a
    /// worker whose thread is blocked cannot be killed from outside, so it is
    /// abandoned and its late exit report is ignored. A killed child
    /// supervisor kills its subtree and reports when it is down (always, its
    /// own waits are bounded): it is down when that report comes, so no new
    /// incarnation starts beside its children.
    fn stop_deadline(&mut self, key: u64, number: u64, ctx: &mut Context<Self>) {
        let Some(child) = self.children.get_mut(&key) else {
            return;
        };
        if child.incarnation != number {
            return;
        }
        let State::Stopping {
            control, placement, ..
        } = std::mem::replace(&mut child.state, State::Idle)
        else {
            return;
        };
        control.send(Control::Kill);
        if matches!(child.spec.body, ChildBody::Supervisor(_)) {
            child.state = State::Stopping {
                control,
                placement,
                deadline: None,
            };
            return;
        }
        self.shared.release(placement);
        self.child_down(key, ExitReason::Killed, ctx);
    }
}
