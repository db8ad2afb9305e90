//! Health strategies: pure decisions a supervisor applies to its children.
//!
//! A [`HealthStrategy`] sees every [`Signal`] from the supervisor's children
//! (start, exit, heartbeat, pong, progress, task outcome) and a periodic tick,
//! and answers with a [`Verdict`] per child. The supervisor keeps the
//! machinery: it combines the verdicts of all its strategies (most severe
//! wins), restarts within the [heal limit](HealLimit), isolates, stops or
//! escalates, and publishes every change as an event.
//!
//! # Order
//! Strategies are consulted in the order they were added to the
//! [`SupervisorSpec`](crate::SupervisorSpec), for every signal and every tick.
//! Order does not change the outcome — the combined verdict is the most severe
//! one — but it is the order in which their verdict-change events appear.

mod heal_limit;
mod signal;
mod strategy;
mod verdict;

pub use heal_limit::HealLimit;
pub(crate) use heal_limit::{HealRefusal, HealWindow};
pub use signal::{Metrics, Signal};
pub use strategy::{Decisions, HealthStrategy, Wants};
pub use verdict::{HealthStatus, Verdict, VerdictKind};
