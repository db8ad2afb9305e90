//! Circuit breakers as a supervisor strategy, and their shared registry.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{BreakerConfig, BreakerSnapshot, BreakerState, CircuitBreaker};
use crate::{Decisions, HealthStrategy, Signal, SpecError, Verdict};

/// Knobs of [`BreakerStrategy`]: one config for the per-child breakers, one
/// for the per-dependency breakers.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BreakerStrategyConfig {
    /// Breakers fed by a child's own task outcomes.
    pub child: BreakerConfig,
    /// Breakers fed by outcomes that name a dependency.
    pub dependency: BreakerConfig,
}

/// Every breaker of a [`BreakerStrategy`], saved together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakersSnapshot {
    /// Per-child breakers by child id.
    pub children: BTreeMap<String, BreakerSnapshot>,
    /// Per-dependency breakers by dependency name.
    pub dependencies: BTreeMap<String, BreakerSnapshot>,
}

#[derive(Debug)]
struct Registry {
    config: BreakerStrategyConfig,
    children: BTreeMap<String, CircuitBreaker>,
    dependencies: BTreeMap<String, CircuitBreaker>,
    opened: u64,
}

impl Registry {
    fn record_outcome(
        &mut self,
        child: &str,
        dependency: Option<&str>,
        now: Instant,
        success: bool,
    ) {
        match dependency {
            Some(dependency) => {
                self.record(true, dependency, now, success);
                // A success through a dependency shows the child works too; a
                // failure is the dependency's, but it still ends a probe the
                // child's half-open breaker let through.
                if success {
                    self.record(false, child, now, true);
                } else if let Some(breaker) = self.children.get_mut(child) {
                    breaker.release_probe(now);
                }
            }
            None => {
                self.record(false, child, now, success);
            }
        }
    }

    fn entry(&mut self, dependency: bool, name: &str) -> &mut CircuitBreaker {
        let (map, config) = if dependency {
            (&mut self.dependencies, self.config.dependency)
        } else {
            (&mut self.children, self.config.child)
        };
        map.entry(name.to_owned()).or_insert_with(|| {
            CircuitBreaker::new(config).expect("config validated when the registry was built")
        })
    }

    fn record(
        &mut self,
        dependency: bool,
        name: &str,
        now: Instant,
        success: bool,
    ) -> BreakerState {
        let breaker = self.entry(dependency, name);
        let before = breaker.state(now);
        breaker.record(now, success);
        let after = breaker.state(now);
        if before != after {
            let kind = if dependency { "dependency" } else { "child" };
            tracing::warn!(
                breaker = name,
                kind,
                ?before,
                ?after,
                "breaker changed state"
            );
            if after == BreakerState::Open {
                self.opened += 1;
            }
        }
        after
    }
}

/// A shared handle to the breakers of a [`BreakerStrategy`]: the application
/// (or a router) asks it whether a dependency may be called, reports
/// outcomes, and saves or restores every breaker. Clones share the breakers,
/// across restarts of the supervisor too.
///
/// ```
/// use candado::{BreakerStrategy, BreakerStrategyConfig};
/// # actix::System::new().block_on(async {
/// let strategy = BreakerStrategy::new(BreakerStrategyConfig::default()).unwrap();
/// let breakers = strategy.breakers();
/// for _ in 0..5 {
///     breakers.record_dependency("payments", false);
/// }
/// assert!(!breakers.allow_dependency("payments"));
/// let saved = serde_json::to_string(&breakers.snapshot()).unwrap();
/// # assert!(saved.contains("payments"));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Breakers {
    inner: Arc<Mutex<Registry>>,
}

impl Breakers {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call through `dependency` may go ahead now.
    pub fn allow_dependency(&self, dependency: &str) -> bool {
        self.lock().entry(true, dependency).allow(Instant::now())
    }

    /// Reports the outcome of a call through `dependency`; returns the breaker's state.
    pub fn record_dependency(&self, dependency: &str, success: bool) -> BreakerState {
        self.lock()
            .record(true, dependency, Instant::now(), success)
    }

    /// Whether work may be routed to `child` now (counts a probe when half-open).
    pub fn allow_child(&self, child: &str) -> bool {
        self.lock().entry(false, child).allow(Instant::now())
    }

    /// State of the breaker of `dependency`, if it has one.
    pub fn dependency_state(&self, dependency: &str) -> Option<BreakerState> {
        let now = Instant::now();
        self.lock()
            .dependencies
            .get_mut(dependency)
            .map(|b| b.state(now))
    }

    /// When the open breaker of `dependency` goes half-open (`None` if it is not open).
    pub fn dependency_open_until(&self, dependency: &str) -> Option<Instant> {
        let now = Instant::now();
        let mut registry = self.lock();
        let breaker = registry.dependencies.get_mut(dependency)?;
        breaker.state(now);
        breaker.open_until()
    }

    /// Records the outcome of a call `child` made, through `dependency` if
    /// it names one, exactly as the strategy does for a
    /// [`Signal::Outcome`]: for whoever sees outcomes first-hand (a router)
    /// and would rather not send each one to the supervisor. Routing reacts
    /// at once; the child's health verdict follows on the supervisor's tick.
    pub fn record_outcome(&self, child: &str, dependency: Option<&str>, success: bool) {
        self.record_outcome_at(child, dependency, success, Instant::now());
    }

    /// [`record_outcome`](Self::record_outcome) at `now`, a time the caller
    /// has already read (a router settling many outcomes per clock read).
    pub fn record_outcome_at(
        &self,
        child: &str,
        dependency: Option<&str>,
        success: bool,
        now: Instant,
    ) {
        self.lock().record_outcome(child, dependency, now, success);
    }

    /// Gives back a probe of `child`'s half-open breaker that
    /// [`allow_child`](Self::allow_child) granted but no work used.
    pub fn release_child(&self, child: &str) {
        if let Some(breaker) = self.lock().children.get_mut(child) {
            breaker.release_probe(Instant::now());
        }
    }

    /// State of the breaker of `child`, if it has one.
    pub fn child_state(&self, child: &str) -> Option<BreakerState> {
        self.child_state_at(child, Instant::now())
    }

    /// [`child_state`](Self::child_state) at `now`, a time the caller has
    /// already read.
    pub fn child_state_at(&self, child: &str, now: Instant) -> Option<BreakerState> {
        self.lock().children.get_mut(child).map(|b| b.state(now))
    }

    /// How many times any breaker opened.
    pub fn opened_total(&self) -> u64 {
        self.lock().opened
    }

    /// Saves every breaker (open ones keep their remaining cooldown).
    pub fn snapshot(&self) -> BreakersSnapshot {
        let now = Instant::now();
        let mut registry = self.lock();
        let save = |map: &mut BTreeMap<String, CircuitBreaker>| {
            map.iter_mut()
                .map(|(name, b)| (name.clone(), b.snapshot(now)))
                .collect()
        };
        BreakersSnapshot {
            children: save(&mut registry.children),
            dependencies: save(&mut registry.dependencies),
        }
    }

    /// Replaces every breaker with the saved ones.
    pub fn restore(&self, saved: &BreakersSnapshot) -> Result<(), SpecError> {
        let now = Instant::now();
        let mut registry = self.lock();
        let config = registry.config;
        let load = |saved: &BTreeMap<String, BreakerSnapshot>, config| {
            saved
                .iter()
                .map(|(name, s)| Ok((name.clone(), CircuitBreaker::restore(config, s, now)?)))
                .collect::<Result<BTreeMap<_, _>, SpecError>>()
        };
        registry.children = load(&saved.children, config.child)?;
        registry.dependencies = load(&saved.dependencies, config.dependency)?;
        Ok(())
    }

    fn child_verdict(&self, child: &str, now: Instant) -> Verdict {
        let mut registry = self.lock();
        let Some(breaker) = registry.children.get_mut(child) else {
            return Verdict::Healthy;
        };
        match breaker.state(now) {
            BreakerState::Closed => Verdict::Healthy,
            BreakerState::HalfOpen => Verdict::Degraded {
                reason: "breaker half-open: probing".into(),
            },
            BreakerState::Open => Verdict::Isolate {
                until: breaker.open_until().unwrap_or(now),
                reason: format!("breaker open (opening #{})", breaker.opens()),
            },
        }
    }
}

/// Circuit breakers per child and per named dependency, from task outcomes
/// ([`Signal::Outcome`], reported with
/// [`ChildLink::report_outcome`](crate::ChildLink::report_outcome)).
///
/// A child whose breaker is open is isolated (no work is routed to it) until
/// its cooldown ends; half-open it is degraded while probes run. Dependency
/// breakers do not judge children: whoever routes work asks
/// [`Breakers::allow_dependency`]. An outcome through a dependency counts for
/// the child only when it succeeded; a failed one frees the probe it held on
/// the child's half-open breaker.
#[derive(Debug, Clone)]
pub struct BreakerStrategy {
    breakers: Breakers,
    /// Children up now, with the verdict last handed out about each.
    children: HashMap<String, Verdict>,
}

impl BreakerStrategy {
    /// A breaker strategy with `config`, if its knobs are valid.
    pub fn new(config: BreakerStrategyConfig) -> Result<Self, SpecError> {
        config.child.validate()?;
        config.dependency.validate()?;
        Ok(Self {
            breakers: Breakers {
                inner: Arc::new(Mutex::new(Registry {
                    config,
                    children: BTreeMap::new(),
                    dependencies: BTreeMap::new(),
                    opened: 0,
                })),
            },
            children: HashMap::new(),
        })
    }

    /// The shared handle to its breakers.
    pub fn breakers(&self) -> Breakers {
        self.breakers.clone()
    }

    /// Hands out the child's verdict if it changed.
    fn report(&mut self, now: Instant, child: &str, out: &mut Decisions) {
        let verdict = self.breakers.child_verdict(child, now);
        if let Some(last) = self.children.get_mut(child) {
            if *last != verdict {
                *last = verdict.clone();
                out.set(child, verdict);
            }
        }
    }
}

impl HealthStrategy for BreakerStrategy {
    fn name(&self) -> &str {
        "breaker"
    }

    fn on_signal(&mut self, now: Instant, child: &str, signal: &Signal, out: &mut Decisions) {
        match signal {
            Signal::Started { .. } => {
                let verdict = self.breakers.child_verdict(child, now);
                self.children.insert(child.to_owned(), verdict.clone());
                out.set(child, verdict);
            }
            Signal::Exited { .. } => {
                self.children.remove(child);
            }
            Signal::Outcome {
                dependency,
                success,
            } => {
                self.breakers
                    .lock()
                    .record_outcome(child, dependency.as_deref(), now, *success);
                self.report(now, child, out);
            }
            _ => {}
        }
    }

    fn on_tick(&mut self, now: Instant, out: &mut Decisions) {
        let children: Vec<String> = self.children.keys().cloned().collect();
        for child in children {
            self.report(now, &child, out);
        }
    }
}
