//! Property 4 (backoff) and property 6 (breaker against a reference model).

mod common;

use std::time::Duration;

use candado::{Backoff, BackoffConfig, BackoffSteps, BreakerConfig, BreakerState, CircuitBreaker};
use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::time::Instant;

/// One step of a breaker's life.
#[derive(Debug, Clone, Copy)]
enum Op {
    Success,
    Failure,
    Allow,
    /// Gives back a probe that was let through but not used.
    Release,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Failure),
        2 => Just(Op::Success),
        2 => Just(Op::Allow),
        1 => Just(Op::Release),
        2 => (0u64..20_000).prop_map(Op::Advance),
    ]
}

/// A small, obviously-correct model of the breaker's documented behaviour.
#[derive(Debug)]
struct Model {
    cfg: BreakerConfig,
    state: BreakerState,
    opens: u32,
    failures: u32,
    probes: u32,
    successes: u32,
    until_ms: u64,
    probing_since_ms: u64,
    closed_since_ms: Option<u64>,
}

impl Model {
    fn new(cfg: BreakerConfig) -> Self {
        Self {
            cfg,
            state: BreakerState::Closed,
            opens: 0,
            failures: 0,
            probes: 0,
            successes: 0,
            until_ms: 0,
            probing_since_ms: 0,
            closed_since_ms: None,
        }
    }

    fn cooldown(&self) -> u64 {
        (self.cfg.cooldown_base.as_millis() as u64)
            .saturating_mul(1 << (self.opens.max(1) - 1).min(31))
            .min(self.cfg.cooldown_cap.as_millis() as u64)
    }

    fn tick(&mut self, now: u64) {
        if self.state == BreakerState::Open && now >= self.until_ms {
            self.state = BreakerState::HalfOpen;
            self.probes = 0;
            self.successes = 0;
            self.probing_since_ms = now;
        }
        // Unanswered probes are released after one cooldown.
        if self.state == BreakerState::HalfOpen
            && self.probes >= self.cfg.half_open_probes
            && now - self.probing_since_ms >= self.cooldown()
        {
            self.probes = 0;
            self.probing_since_ms = now;
        }
        let stable = self.cfg.stability_window.as_millis() as u64;
        if self.state == BreakerState::Closed
            && self.closed_since_ms.is_some_and(|t| now - t >= stable)
        {
            self.opens = 0;
        }
    }

    fn open(&mut self, now: u64) {
        self.opens += 1;
        self.until_ms = now + self.cooldown();
        self.state = BreakerState::Open;
        self.failures = 0;
    }

    fn record(&mut self, now: u64, ok: bool) {
        self.tick(now);
        match (self.state, ok) {
            (BreakerState::Closed, true) => self.failures = 0,
            (BreakerState::Closed, false) => {
                self.failures += 1;
                if self.failures >= self.cfg.failure_threshold {
                    self.open(now);
                }
            }
            (BreakerState::HalfOpen, true) => {
                self.successes += 1;
                if self.successes >= self.cfg.success_threshold {
                    self.state = BreakerState::Closed;
                    self.closed_since_ms = Some(now);
                    self.failures = 0;
                }
            }
            (BreakerState::HalfOpen, false) => self.open(now),
            (BreakerState::Open, _) => {}
        }
    }

    fn allow(&mut self, now: u64) -> bool {
        self.tick(now);
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen if self.probes < self.cfg.half_open_probes => {
                self.probes += 1;
                true
            }
            BreakerState::HalfOpen => false,
        }
    }

    fn release(&mut self, now: u64) {
        self.tick(now);
        if self.state == BreakerState::HalfOpen {
            self.probes = self.probes.saturating_sub(1);
        }
    }
}

fn breaker_config() -> impl Strategy<Value = BreakerConfig> {
    (
        1u32..6,
        1u32..4,
        0u32..3,
        100u64..5_000,
        1u64..8,
        1_000u64..60_000,
    )
        .prop_map(
            |(failure_threshold, success_threshold, extra_probes, base, cap_factor, stability)| {
                BreakerConfig {
                    failure_threshold,
                    success_threshold,
                    half_open_probes: success_threshold + extra_probes,
                    cooldown_base: Duration::from_millis(base),
                    cooldown_cap: Duration::from_millis(base * cap_factor),
                    stability_window: Duration::from_millis(stability),
                    ..BreakerConfig::default()
                }
            },
        )
}

proptest! {
    #![proptest_config(common::config(256))]

    /// Property 6: for any sequence of outcomes, permission checks and clock
    /// advances, the breaker agrees with the reference model.
    #[test]
    fn breaker_matches_the_reference_model(cfg in breaker_config(), ops in prop::collection::vec(op(), 1..120)) {
        let t0 = Instant::now();
        let mut real = CircuitBreaker::new(cfg).unwrap();
        let mut model = Model::new(cfg);
        let mut now = 0u64;
        for (i, op) in ops.iter().enumerate() {
            let at = t0 + Duration::from_millis(now);
            match *op {
                Op::Success => { real.record(at, true); model.record(now, true); }
                Op::Failure => { real.record(at, false); model.record(now, false); }
                Op::Release => { real.release_probe(at); model.release(now); }
                Op::Allow => prop_assert_eq!(real.allow(at), model.allow(now), "step {}: allow", i),
                Op::Advance(ms) => now += ms,
            }
            let at = t0 + Duration::from_millis(now);
            model.tick(now);
            prop_assert_eq!(real.state(at), model.state, "step {} ({:?}): state", i, op);
            prop_assert_eq!(real.opens(), model.opens, "step {}: opens", i);
        }
    }

    /// Property 4: successive restart delays of one child never shrink until
    /// the streak resets, and never exceed the cap.
    #[test]
    fn backoff_delays_never_shrink_nor_exceed_the_cap(
        base in 0u64..5_000,
        cap_factor in 1u64..64,
        jitter in 0.0f64..=1.0,
        seed in any::<u64>(),
        resets in prop::collection::vec(any::<bool>(), 1..60),
    ) {
        let cfg = BackoffConfig {
            base: Duration::from_millis(base),
            cap: Duration::from_millis(base * cap_factor),
            jitter,
            stability_window: Duration::from_secs(60),
            ..BackoffConfig::default()
        };
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut backoff = Backoff::new();
        let mut previous = Duration::ZERO;
        for (n, reset) in resets.into_iter().enumerate() {
            if reset {
                backoff.reset();
                previous = Duration::ZERO;
            }
            let delay = backoff.next_delay(&cfg, &mut rng);
            prop_assert!(delay >= previous, "step {}: {:?} shrank below {:?}", n, delay, previous);
            prop_assert!(delay <= cfg.cap, "step {}: {:?} above the cap", n, delay);
            previous = delay;
        }
    }

    /// Any multiplier of at least 1 (huge ones included) and any valid
    /// explicit schedule (`Duration::MAX` entries included) give delays that
    /// never shrink within a streak, never exceed the cap, follow the
    /// schedule exactly without jitter, and never panic.
    #[test]
    fn multipliers_and_schedules_never_shrink_overflow_nor_panic(
        base_ms in 0u64..10_000,
        cap in prop_oneof![Just(Duration::MAX), (0u64..u64::MAX).prop_map(Duration::from_nanos)],
        multiplier in prop_oneof![1.0f64..10.0, Just(1.0), Just(2.0), Just(1e300)],
        steps in prop::collection::vec(
            prop_oneof![Just(Duration::MAX), (0u64..u64::MAX).prop_map(Duration::from_nanos)],
            1..=BackoffSteps::MAX,
        ),
        use_steps in any::<bool>(),
        jitter in 0.0f64..=1.0,
        seed in any::<u64>(),
        attempts in 1usize..80,
    ) {
        let mut steps = steps;
        steps.sort();
        let schedule = BackoffSteps::new(&steps).expect("sorted, non-empty, short");
        let base = Duration::from_millis(base_ms);
        let cfg = BackoffConfig {
            base,
            cap: cap.max(base),
            jitter,
            multiplier,
            steps: use_steps.then_some(schedule),
            ..BackoffConfig::default()
        };
        prop_assert!(cfg.validate().is_ok());
        let exact = BackoffConfig { jitter: 0.0, ..cfg };
        let mut rng = SmallRng::seed_from_u64(seed);
        let (mut jittered, mut plain) = (Backoff::new(), Backoff::new());
        let mut previous = Duration::ZERO;
        for n in 0..attempts {
            let delay = jittered.next_delay(&cfg, &mut rng);
            prop_assert!(delay >= previous, "step {}: {:?} shrank below {:?}", n, delay, previous);
            prop_assert!(delay <= cfg.cap, "step {}: {:?} above the cap", n, delay);
            previous = delay;
            let raw = plain.next_delay(&exact, &mut rng);
            if use_steps {
                prop_assert_eq!(raw, steps[n.min(steps.len() - 1)].min(cfg.cap));
            }
        }
    }
}
