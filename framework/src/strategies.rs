//! The built-in health strategies. They use only the public
//! [`HealthStrategy`](crate::HealthStrategy) API.

mod breaker;
mod circuit;
mod liveness;
mod memory;
mod sampler;

pub use breaker::{
    BreakerStrategy, BreakerStrategyConfig, Breakers, BreakersSnapshot, ChildBreaker,
};
pub use circuit::{BreakerConfig, BreakerSnapshot, BreakerState, CircuitBreaker};
pub use liveness::{Liveness, LivenessConfig};
pub use memory::{MemoryConfig, MemoryGuard, VictimPolicy};
pub use sampler::{CgroupMemory, FixedSampler, MemorySample, MemorySampler, SystemSampler};

use std::time::Duration;

/// Renders a duration for verdict reasons, e.g. `10.0s`.
fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}
