//! Circuit breakers as a supervisor strategy, and their shared registry.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
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

/// One child's breaker; locked after the registry, never before it.
type Cell = Arc<Mutex<CircuitBreaker>>;

fn lock_cell(cell: &Mutex<CircuitBreaker>) -> MutexGuard<'_, CircuitBreaker> {
    cell.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug)]
struct Registry {
    config: BreakerStrategyConfig,
    children: BTreeMap<String, Cell>,
    dependencies: BTreeMap<String, CircuitBreaker>,
}

impl Registry {
    fn child(&mut self, name: &str) -> &Cell {
        let config = self.config.child;
        self.children.entry(name.to_owned()).or_insert_with(|| {
            Arc::new(Mutex::new(
                CircuitBreaker::new(config).expect("config validated when the registry was built"),
            ))
        })
    }

    fn dependency(&mut self, name: &str) -> &mut CircuitBreaker {
        let config = self.config.dependency;
        self.dependencies.entry(name.to_owned()).or_insert_with(|| {
            CircuitBreaker::new(config).expect("config validated when the registry was built")
        })
    }
}

#[derive(Debug)]
struct Shared {
    registry: Mutex<Registry>,
    /// How many times any breaker opened.
    opened: AtomicU64,
}

impl Shared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `success` on `breaker` (named `name`, of `kind`), logging a
    /// change of state; returns the state.
    fn record(
        &self,
        breaker: &mut CircuitBreaker,
        kind: &'static str,
        name: &str,
        now: Instant,
        success: bool,
    ) -> BreakerState {
        let before = breaker.state(now);
        breaker.record(now, success);
        let after = breaker.state(now);
        if before != after {
            tracing::warn!(
                breaker = name,
                kind,
                ?before,
                ?after,
                "breaker changed state"
            );
            if after == BreakerState::Open {
                self.opened.fetch_add(1, Ordering::Relaxed);
            }
        }
        after
    }

    fn record_dependency(&self, dependency: &str, now: Instant, success: bool) -> BreakerState {
        let mut registry = self.registry();
        self.record(
            registry.dependency(dependency),
            "dependency",
            dependency,
            now,
            success,
        )
    }

    /// An outcome of a call `child` made, through `dependency` if it names
    /// one: a success through a dependency shows the child works too; a
    /// failure is the dependency's, but it still ends a probe the child's
    /// half-open breaker let through.
    fn record_outcome(
        &self,
        name: &str,
        child: &Mutex<CircuitBreaker>,
        dependency: Option<&str>,
        now: Instant,
        success: bool,
    ) {
        if let Some(dependency) = dependency {
            self.record_dependency(dependency, now, success);
            if !success {
                lock_cell(child).release_probe(now);
                return;
            }
        }
        self.record(&mut lock_cell(child), "child", name, now, success);
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
    inner: Arc<Shared>,
}

impl Breakers {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.inner.registry()
    }

    /// `child`'s breaker (created closed if it has none).
    fn cell(&self, child: &str) -> Cell {
        self.lock().child(child).clone()
    }

    /// `child`'s breaker, if it has one.
    fn existing_cell(&self, child: &str) -> Option<Cell> {
        self.lock().children.get(child).cloned()
    }

    /// A handle to `child`'s breaker (created closed if it has none), for
    /// whoever consults it on every task: no lookup by name per call.
    ///
    /// ```
    /// use candado::{BreakerState, BreakerStrategy, BreakerStrategyConfig};
    /// # actix::System::new().block_on(async {
    /// let breakers = BreakerStrategy::new(BreakerStrategyConfig::default())
    ///     .unwrap()
    ///     .breakers();
    /// let worker = breakers.child("worker-0");
    /// let now = tokio::time::Instant::now();
    /// for _ in 0..5 {
    ///     worker.record_outcome_at(None, false, now);
    /// }
    /// assert_eq!(worker.state_at(now), BreakerState::Open);
    /// assert_eq!(breakers.child_state("worker-0"), Some(BreakerState::Open));
    /// # });
    /// ```
    pub fn child(&self, child: &str) -> ChildBreaker {
        ChildBreaker {
            name: child.into(),
            cell: self.cell(child),
            shared: self.inner.clone(),
        }
    }

    /// Whether a call through `dependency` may go ahead now.
    pub fn allow_dependency(&self, dependency: &str) -> bool {
        self.lock().dependency(dependency).allow(Instant::now())
    }

    /// Reports the outcome of a call through `dependency`; returns the breaker's state.
    pub fn record_dependency(&self, dependency: &str, success: bool) -> BreakerState {
        self.inner
            .record_dependency(dependency, Instant::now(), success)
    }

    /// Whether work may be routed to `child` now (counts a probe when half-open).
    pub fn allow_child(&self, child: &str) -> bool {
        lock_cell(&self.cell(child)).allow(Instant::now())
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
        let cell = self.cell(child);
        self.inner
            .record_outcome(child, &cell, dependency, now, success);
    }

    /// Gives back a probe of `child`'s half-open breaker that
    /// [`allow_child`](Self::allow_child) granted but no work used.
    pub fn release_child(&self, child: &str) {
        if let Some(cell) = self.existing_cell(child) {
            lock_cell(&cell).release_probe(Instant::now());
        }
    }

    /// State of the breaker of `child`, if it has one.
    pub fn child_state(&self, child: &str) -> Option<BreakerState> {
        self.child_state_at(child, Instant::now())
    }

    /// [`child_state`](Self::child_state) at `now`, a time the caller has
    /// already read.
    pub fn child_state_at(&self, child: &str, now: Instant) -> Option<BreakerState> {
        let cell = self.existing_cell(child)?;
        let state = lock_cell(&cell).state(now);
        Some(state)
    }

    /// How many times any breaker opened.
    pub fn opened_total(&self) -> u64 {
        self.inner.opened.load(Ordering::Relaxed)
    }

    /// Saves every breaker (open ones keep their remaining cooldown).
    pub fn snapshot(&self) -> BreakersSnapshot {
        let now = Instant::now();
        let mut registry = self.lock();
        BreakersSnapshot {
            children: registry
                .children
                .iter()
                .map(|(name, cell)| (name.clone(), lock_cell(cell).snapshot(now)))
                .collect(),
            dependencies: registry
                .dependencies
                .iter_mut()
                .map(|(name, b)| (name.clone(), b.snapshot(now)))
                .collect(),
        }
    }

    /// Replaces every breaker with the saved ones. Children missing from
    /// `saved` start over closed. On error nothing changes.
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
        let mut children = load(&saved.children, config.child)?;
        registry.dependencies = load(&saved.dependencies, config.dependency)?;
        // Handles given out keep working: their breakers change in place.
        for (name, cell) in &registry.children {
            *lock_cell(cell) = match children.remove(name) {
                Some(restored) => restored,
                None => CircuitBreaker::new(config.child)
                    .expect("config validated when the registry was built"),
            };
        }
        for (name, restored) in children {
            registry
                .children
                .insert(name, Arc::new(Mutex::new(restored)));
        }
        Ok(())
    }

    fn child_verdict(&self, child: &str, now: Instant) -> Verdict {
        let Some(cell) = self.existing_cell(child) else {
            return Verdict::Healthy;
        };
        let mut breaker = lock_cell(&cell);
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

/// A handle to one child's breaker (see [`Breakers::child`]), shared with
/// the [`Breakers`] it came from: what it records, they see, and restoring
/// the [`Breakers`] changes it in place.
#[derive(Debug, Clone)]
pub struct ChildBreaker {
    name: Arc<str>,
    cell: Cell,
    shared: Arc<Shared>,
}

impl ChildBreaker {
    /// The breaker's state at `now`.
    pub fn state_at(&self, now: Instant) -> BreakerState {
        lock_cell(&self.cell).state(now)
    }

    /// If the breaker is open at `now`, when it goes half-open.
    pub fn open_until_at(&self, now: Instant) -> Option<Instant> {
        let mut breaker = lock_cell(&self.cell);
        breaker.state(now);
        breaker.open_until()
    }

    /// Whether work may be routed to the child at `now` (counts a probe
    /// when half-open).
    pub fn allow_at(&self, now: Instant) -> bool {
        lock_cell(&self.cell).allow(now)
    }

    /// Gives back a probe [`allow_at`](Self::allow_at) granted but no work used.
    pub fn release_probe_at(&self, now: Instant) {
        lock_cell(&self.cell).release_probe(now);
    }

    /// [`Breakers::record_outcome_at`] for this child.
    pub fn record_outcome_at(&self, dependency: Option<&str>, success: bool, now: Instant) {
        self.shared
            .record_outcome(&self.name, &self.cell, dependency, now, success);
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
                inner: Arc::new(Shared {
                    registry: Mutex::new(Registry {
                        config,
                        children: BTreeMap::new(),
                        dependencies: BTreeMap::new(),
                    }),
                    opened: AtomicU64::new(0),
                }),
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
                    .record_outcome_at(child, dependency.as_deref(), *success, now);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn breakers() -> Breakers {
        BreakerStrategy::new(BreakerStrategyConfig::default())
            .unwrap()
            .breakers()
    }

    #[test]
    fn a_child_handle_and_the_registry_see_the_same_breaker() {
        let breakers = breakers();
        let handle = breakers.child("w");
        let now = Instant::now();
        for _ in 0..4 {
            handle.record_outcome_at(None, false, now);
        }
        breakers.record_outcome_at("w", None, false, now);
        assert_eq!(handle.state_at(now), BreakerState::Open);
        assert_eq!(breakers.child_state_at("w", now), Some(BreakerState::Open));
        assert_eq!(breakers.opened_total(), 1);
        // A failure through a dependency is the dependency's, not the child's.
        let other = breakers.child("x");
        for _ in 0..5 {
            other.record_outcome_at(Some("db"), false, now);
        }
        assert_eq!(other.state_at(now), BreakerState::Closed);
        assert_eq!(breakers.dependency_state("db"), Some(BreakerState::Open));
        assert_eq!(breakers.opened_total(), 2);
    }

    #[test]
    fn a_child_handle_tells_until_when_its_breaker_is_open() {
        let breakers = breakers();
        let handle = breakers.child("w");
        let now = Instant::now();
        assert_eq!(handle.open_until_at(now), None);
        for _ in 0..5 {
            handle.record_outcome_at(None, false, now);
        }
        let until = handle.open_until_at(now).expect("open");
        assert!(until > now);
        assert_eq!(
            handle.open_until_at(until - Duration::from_millis(1)),
            Some(until)
        );
        // At the end of its cooldown it goes half-open: open no more.
        assert_eq!(handle.open_until_at(until), None);
        assert_eq!(handle.state_at(until), BreakerState::HalfOpen);
    }

    #[test]
    fn restoring_changes_the_breakers_behind_handles_in_place() {
        let breakers = breakers();
        let (open, kept) = (breakers.child("open"), breakers.child("kept"));
        let now = Instant::now();
        let saved = {
            for _ in 0..5 {
                kept.record_outcome_at(None, false, now);
            }
            let mut saved = breakers.snapshot();
            saved.children.remove("open");
            saved
        };
        for _ in 0..5 {
            open.record_outcome_at(None, false, now);
        }
        assert_eq!(open.state_at(now), BreakerState::Open);
        breakers.restore(&saved).unwrap();
        // Missing from the snapshot: starts over closed.
        assert_eq!(open.state_at(now), BreakerState::Closed);
        // Saved open: still open until its cooldown ends.
        assert_eq!(kept.state_at(now), BreakerState::Open);
        assert!(!kept.allow_at(now));
        assert!(kept.allow_at(now + Duration::from_secs(60)));
    }
}
