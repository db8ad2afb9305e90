//! How a supervisor restarts its children.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    AlertConfig, BackoffConfig, ChildSpec, HealLimit, HealthStrategy, Intensity, SpecError,
};

/// Builds a fresh instance of a health strategy for every (re)start of its supervisor.
#[derive(Clone)]
pub(crate) struct StrategyFactory {
    name: String,
    make: Arc<dyn Fn() -> Box<dyn HealthStrategy> + Send + Sync>,
}

impl StrategyFactory {
    pub(crate) fn build(&self) -> Box<dyn HealthStrategy> {
        (self.make)()
    }
}

impl fmt::Debug for StrategyFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Which children are restarted when one fails (OTP restart strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Only the failed child.
    #[default]
    OneForOne,
    /// Every child: all are stopped in reverse start order, then all are
    /// started again in start order.
    OneForAll,
    /// The failed child and every child started after it.
    RestForOne,
}

/// When a supervisor shuts itself down because significant children exited
/// (OTP's `auto_shutdown`; see [`ChildSpec::significant`]).
///
/// Only an exit for good counts: a transient child's normal exit, or any
/// exit of a temporary child. A restart does not, nor does stopping a child
/// with [`terminate_child`](crate::SupervisorRef::terminate_child) or
/// [`remove_child`](crate::SupervisorRef::remove_child), nor a temporary
/// child dropped by a sibling's group restart. The supervisor then stops its
/// other children in reverse start order and exits with
/// [`ExitReason::Shutdown`](crate::ExitReason::Shutdown), a normal exit, so a
/// transient parent leaves it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoShutdown {
    /// Never (the default); significant children are rejected.
    #[default]
    Never,
    /// As soon as any significant child exits for good.
    AnySignificant,
    /// When a significant child exits for good and no other significant
    /// child is left running (or starting, or about to restart).
    AllSignificant,
}

/// Default supervisor tick: 1 s.
pub const DEFAULT_TICK: Duration = Duration::from_secs(1);

/// Specification of a supervisor: its id, strategy, restart budget, backoff and
/// its initial children (in start order).
///
/// ```
/// use std::time::Duration;
/// use actix::{Actor, Context};
/// use candado::{ChildSpec, Strategy, SupervisorSpec};
///
/// #[derive(Default)]
/// struct Worker;
/// impl Actor for Worker {
///     type Context = Context<Self>;
/// }
///
/// let spec = SupervisorSpec::new("root")
///     .strategy(Strategy::RestForOne)
///     .intensity(3, Duration::from_secs(10))
///     .child(ChildSpec::worker("db", |_| Worker))
///     .child(ChildSpec::worker("api", |_| Worker));
/// assert!(spec.validate().is_ok());
///
/// let bad = SupervisorSpec::new("root").intensity(3, Duration::ZERO);
/// assert!(bad.validate().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct SupervisorSpec {
    pub(crate) id: Arc<str>,
    pub(crate) strategy: Strategy,
    pub(crate) intensity: Intensity,
    pub(crate) backoff: BackoffConfig,
    pub(crate) tick: Duration,
    pub(crate) children: Vec<ChildSpec>,
    pub(crate) health: Vec<StrategyFactory>,
    pub(crate) heal_limit: HealLimit,
    pub(crate) alerts: AlertConfig,
    pub(crate) concurrent_start: bool,
    pub(crate) auto_shutdown: AutoShutdown,
    /// A child that exits and is not restarted is forgotten, not kept as
    /// `Stopped` (a dynamic supervisor's children, as in OTP).
    pub(crate) forget_stopped: bool,
}

impl SupervisorSpec {
    /// A one-for-one supervisor with default intensity, backoff and tick and no children.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into().into(),
            strategy: Strategy::default(),
            intensity: Intensity::default(),
            backoff: BackoffConfig::default(),
            tick: DEFAULT_TICK,
            children: Vec::new(),
            health: Vec::new(),
            heal_limit: HealLimit::default(),
            alerts: AlertConfig::default(),
            concurrent_start: false,
            auto_shutdown: AutoShutdown::Never,
            forget_stopped: false,
        }
    }

    /// Sets when significant children's exits shut this supervisor down
    /// (default [`AutoShutdown::Never`]); see [`ChildSpec::significant`].
    pub fn auto_shutdown(mut self, auto_shutdown: AutoShutdown) -> Self {
        self.auto_shutdown = auto_shutdown;
        self
    }

    /// Starts the members of a start (initial, or after a group restart)
    /// all at once, instead of one at a time in start order (the default,
    /// as in OTP). Each worker thread still creates its children in start
    /// order, but a child may run before an earlier sibling on another
    /// thread has. Meant for many independent, alike children (a pool):
    /// 100,000 workers start in a fraction of a second instead of a
    /// cross-thread round trip each. Stops keep their order either way.
    ///
    /// ```
    /// let spec = candado::SupervisorSpec::new("pool").concurrent_start(true);
    /// # assert!(spec.validate().is_ok());
    /// ```
    pub fn concurrent_start(mut self, yes: bool) -> Self {
        self.concurrent_start = yes;
        self
    }

    /// Adds a health strategy (see [`HealthStrategy`]). Each start of this
    /// supervisor gets a fresh clone of `strategy`, so state never leaks from
    /// one incarnation of the supervisor to the next.
    pub fn health<S: HealthStrategy + Clone>(mut self, strategy: S) -> Self {
        let name = strategy.name().to_owned();
        let template = Mutex::new(strategy);
        self.health.push(StrategyFactory {
            name,
            make: Arc::new(move || {
                let strategy = template.lock().unwrap_or_else(|p| p.into_inner()).clone();
                Box::new(strategy)
            }),
        });
        self
    }

    /// Limits the restarts that health strategies order (heal-storm protection).
    pub fn heal_limit(mut self, limit: HealLimit) -> Self {
        self.heal_limit = limit;
        self
    }

    /// Sets the alert thresholds and cooldowns.
    pub fn alerts(mut self, alerts: AlertConfig) -> Self {
        self.alerts = alerts;
        self
    }

    /// Sets the restart strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Allows at most `max_restarts` restarts within `period`: after a crash,
    /// a failure, or an order of a health strategy alike. One more and the
    /// supervisor gives up and escalates.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.intensity = Intensity {
            max_restarts,
            period,
        };
        self
    }

    /// Sets the restart backoff.
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the housekeeping tick (restart window pruning, backoff stability
    /// resets, and the signal later strategies evaluate on).
    pub fn tick_interval(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// Appends a child; children start in the order they are added.
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }

    /// The supervisor's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Checks this supervisor and, recursively, every child supervisor.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_id(&self.id)?;
        if self.intensity.period.is_zero() {
            return Err(SpecError::ZeroPeriod {
                supervisor: self.id.to_string(),
            });
        }
        if self.tick.is_zero() {
            return Err(SpecError::ZeroTickInterval {
                supervisor: self.id.to_string(),
            });
        }
        self.backoff.validate()?;
        if self.heal_limit.period.is_zero() {
            return Err(SpecError::ZeroHealPeriod {
                supervisor: self.id.to_string(),
            });
        }
        let mut seen = HashSet::new();
        for child in &self.children {
            validate_child(child)?;
            validate_significance(child, &self.id, self.auto_shutdown)?;
            if !seen.insert(child.id()) {
                return Err(SpecError::DuplicateChildId {
                    supervisor: self.id.to_string(),
                    id: child.id().to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// Checks one child spec (and its subtree, for supervisors).
pub(crate) fn validate_child(child: &ChildSpec) -> Result<(), SpecError> {
    validate_id(child.id())?;
    match &child.body {
        crate::child_spec::ChildBody::Worker(_) => Ok(()),
        crate::child_spec::ChildBody::Supervisor(_) if child.external_heartbeats => Err(
            SpecError::ExternalHeartbeatsOnSupervisor(child.id().to_owned()),
        ),
        crate::child_spec::ChildBody::Supervisor(spec) => spec.validate(),
    }
}

/// OTP's rules for significant children: never permanent, and only under a
/// supervisor with an automatic shutdown.
pub(crate) fn validate_significance(
    child: &ChildSpec,
    supervisor: &str,
    auto_shutdown: AutoShutdown,
) -> Result<(), SpecError> {
    if !child.significant {
        return Ok(());
    }
    if child.restart == crate::Restart::Permanent {
        return Err(SpecError::SignificantPermanent(child.id().to_owned()));
    }
    if auto_shutdown == AutoShutdown::Never {
        return Err(SpecError::SignificantWithoutAutoShutdown {
            supervisor: supervisor.to_owned(),
            id: child.id().to_owned(),
        });
    }
    Ok(())
}

fn validate_id(id: &str) -> Result<(), SpecError> {
    if id.is_empty() {
        Err(SpecError::EmptyId)
    } else if id.contains('/') {
        Err(SpecError::InvalidId(id.to_owned()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::{Actor, Context};

    struct Nop;
    impl Actor for Nop {
        type Context = Context<Self>;
    }

    #[test]
    fn duplicate_ids_are_named() {
        let spec = SupervisorSpec::new("root")
            .child(ChildSpec::worker("a", |_| Nop))
            .child(ChildSpec::worker("a", |_| Nop));
        let err = spec.validate().unwrap_err();
        assert_eq!(
            err,
            SpecError::DuplicateChildId {
                supervisor: "root".into(),
                id: "a".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "supervisor `root` has two children with id `a`"
        );
    }

    #[test]
    fn nested_errors_are_found() {
        let inner = SupervisorSpec::new("inner").tick_interval(Duration::ZERO);
        let spec = SupervisorSpec::new("root").child(ChildSpec::supervisor(inner));
        assert_eq!(
            spec.validate(),
            Err(SpecError::ZeroTickInterval {
                supervisor: "inner".into()
            })
        );
    }

    #[test]
    fn significant_children_follow_the_otp_rules() {
        use crate::Restart;
        let job = || ChildSpec::worker("job", |_| Nop).significant(true);
        let any = SupervisorSpec::new("root").auto_shutdown(AutoShutdown::AnySignificant);
        assert_eq!(
            any.clone().child(job()).validate(),
            Err(SpecError::SignificantPermanent("job".into()))
        );
        assert_eq!(
            SupervisorSpec::new("root")
                .child(job().restart(Restart::Transient))
                .validate(),
            Err(SpecError::SignificantWithoutAutoShutdown {
                supervisor: "root".into(),
                id: "job".into()
            })
        );
        for restart in [Restart::Transient, Restart::Temporary] {
            assert_eq!(any.clone().child(job().restart(restart)).validate(), Ok(()));
        }
        // Not significant: any restart type under any auto_shutdown.
        assert_eq!(
            any.child(ChildSpec::worker("w", |_| Nop)).validate(),
            Ok(())
        );
    }

    #[test]
    fn bad_ids_are_rejected() {
        assert_eq!(SupervisorSpec::new("").validate(), Err(SpecError::EmptyId));
        let spec = SupervisorSpec::new("root").child(ChildSpec::worker("a/b", |_| Nop));
        assert_eq!(spec.validate(), Err(SpecError::InvalidId("a/b".into())));
    }
}
