//! Dynamic supervisors (OTP's `simple_one_for_one`, Elixir's
//! `DynamicSupervisor`): one template, children started at run time with
//! arguments.
//!
//! A dynamic supervisor *is* an ordinary [`Supervisor`](crate::SupervisorRef)
//! under the hood, with the one-for-one strategy and no static children, so
//! restarts, intensity, backoff, health strategies, events, ordered shutdown
//! and escalation are the framework's own machinery, unchanged. What this
//! module adds:
//! - [`DynamicSpec`]: the template (a factory taking arguments, the restart
//!   type and shutdown policy of every child, `max_children`) and the
//!   supervisor's knobs;
//! - [`DynamicSupervisor`]: the handle — `start_child(args)`,
//!   `terminate_child(id)`, `which_children`, `count_children`;
//! - the count of children (`slots.rs`): a slot is taken before a start and
//!   held by the child's spec inside the supervisor, so it is freed exactly
//!   when the supervisor forgets the child (a temporary child's exit, a
//!   transient child's normal exit, `terminate_child`, a failed start, the
//!   supervisor's own end). Counting is one atomic read and `max_children`
//!   one compare-and-swap: no message, no walk over the children.

mod error;
mod handle;
mod slots;
mod spec;

pub use error::DynamicError;
pub use handle::{DynamicChild, DynamicSupervisor};
pub use spec::DynamicSpec;
