//! The public strategy trait.

use std::time::Duration;

use tokio::time::Instant;

use super::{Signal, Verdict};

/// What a strategy needs its supervisor to arrange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wants {
    /// Children send a [`Signal::Heartbeat`] on this interval (the shortest
    /// interval any strategy wants is used).
    pub heartbeat: Option<Duration>,
    /// The supervisor pings every running child on this interval.
    pub ping: Option<Duration>,
    /// The supervisor probes the worker threads on every tick and retires a
    /// thread that leaves a probe unanswered this long (its children are
    /// restarted elsewhere; a replacement thread is started).
    pub thread_watch: Option<Duration>,
}

/// Verdicts a strategy hands back from one call.
#[derive(Debug, Default)]
pub struct Decisions {
    items: Vec<(String, Verdict)>,
}

impl Decisions {
    /// Records this strategy's current verdict about `child`. Only changes
    /// matter: repeating the standing verdict is harmless.
    pub fn set(&mut self, child: impl Into<String>, verdict: Verdict) {
        self.items.push((child.into(), verdict));
    }

    /// The recorded verdicts, in order.
    pub fn iter(&self) -> impl Iterator<Item = &(String, Verdict)> {
        self.items.iter()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn drain(&mut self) -> std::vec::Drain<'_, (String, Verdict)> {
        self.items.drain(..)
    }
}

/// A supervisor strategy: a pure decision over its children's signals and a clock.
///
/// Strategies run on the control thread: they must not block. They hold no
/// reference to actors; the supervisor does the acting. Everything the
/// built-in strategies ([`Liveness`](crate::Liveness),
/// [`MemoryGuard`](crate::MemoryGuard), [`BreakerStrategy`](crate::BreakerStrategy))
/// use is public, so applications can write their own the same way.
///
/// ```
/// use std::time::Duration;
/// use candado::{Decisions, HealthCause, HealthStrategy, Signal, Verdict};
/// use tokio::time::Instant;
///
/// /// Restarts a child after it reported 3 failed tasks in a row.
/// #[derive(Clone, Default)]
/// struct ThreeStrikes {
///     strikes: std::collections::HashMap<String, u32>,
/// }
///
/// impl HealthStrategy for ThreeStrikes {
///     fn name(&self) -> &str {
///         "three-strikes"
///     }
///     fn on_signal(&mut self, _now: Instant, child: &str, signal: &Signal, out: &mut Decisions) {
///         match signal {
///             Signal::Outcome { success: false, .. } => {
///                 let n = self.strikes.entry(child.to_owned()).or_default();
///                 *n += 1;
///                 if *n >= 3 {
///                     let reason = format!("{n} failures in a row");
///                     out.set(child, Verdict::Restart { cause: HealthCause::Other, reason });
///                 }
///             }
///             Signal::Outcome { success: true, .. } | Signal::Started { .. } => {
///                 self.strikes.remove(child);
///                 out.set(child, Verdict::Healthy);
///             }
///             _ => {}
///         }
///     }
///     fn on_tick(&mut self, _now: Instant, _out: &mut Decisions) {}
/// }
///
/// let spec = candado::SupervisorSpec::new("root").health(ThreeStrikes::default());
/// assert!(spec.validate().is_ok());
/// ```
pub trait HealthStrategy: Send + 'static {
    /// A short name, used in events and alerts.
    fn name(&self) -> &str;

    /// Heartbeats and pings this strategy relies on.
    fn wants(&self) -> Wants {
        Wants::default()
    }

    /// Reacts to a signal from (or about) `child`.
    fn on_signal(&mut self, now: Instant, child: &str, signal: &Signal, out: &mut Decisions);

    /// Reacts to the supervisor's periodic tick (timeouts, samples, windows).
    fn on_tick(&mut self, now: Instant, out: &mut Decisions);

    /// A hint: about `additional` more children are about to start (a
    /// supervisor's initial children). A strategy that keeps state per child
    /// may reserve room for them at once instead of growing one by one. The
    /// default does nothing.
    fn reserve(&mut self, additional: usize) {
        let _ = additional;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trait_is_object_safe() {
        struct Nop;
        impl HealthStrategy for Nop {
            fn name(&self) -> &str {
                "nop"
            }
            fn on_signal(&mut self, _: Instant, _: &str, _: &Signal, _: &mut Decisions) {}
            fn on_tick(&mut self, _: Instant, _: &mut Decisions) {}
        }
        let mut boxed: Vec<Box<dyn HealthStrategy>> = vec![Box::new(Nop)];
        boxed[0].reserve(10);
        assert_eq!(boxed[0].name(), "nop");
        assert_eq!(boxed[0].wants(), Wants::default());
    }
}
