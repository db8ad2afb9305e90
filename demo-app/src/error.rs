//! Why a run could not happen, and what is wrong with a scenario.

use thiserror::Error;

/// Why a run could not happen.
#[derive(Debug, Error)]
pub enum DemoError {
    /// No built-in scenario has this name.
    #[error("unknown scenario `{name}`; built-in scenarios: {known}")]
    UnknownScenario {
        /// The name asked for.
        name: String,
        /// The built-in names.
        known: String,
    },
    /// The scenario file is not valid TOML for a scenario.
    #[error("malformed scenario file: {0}")]
    ScenarioFile(String),
    /// A scenario field is outside its bound.
    #[error(transparent)]
    InvalidScenario(#[from] ScenarioError),
    /// The runtime could not start.
    #[error(transparent)]
    Runtime(#[from] candado::RuntimeError),
    /// The pool could not start.
    #[error(transparent)]
    Pool(#[from] candado_pool::PoolError),
    /// The scenario injects faults that only a worker process survives
    /// ([`Faults::process_only`](crate::Faults::process_only)), and its
    /// workers would run in the demo's process.
    #[error(
        "scenario `{scenario}` injects faults no in-process worker survives ({}); run it with `--isolation process`",
        crate::isolation::why_process_only(faults)
    )]
    NeedsProcessIsolation {
        /// The scenario.
        scenario: String,
        /// The fields of those faults (`faults.spin`, ...).
        faults: Vec<&'static str>,
    },
    /// The dashboard (`--serve`) cannot be served.
    #[error("cannot serve the dashboard: {0}")]
    Serve(#[from] candado_observe::ObserveError),
    /// The worker processes of `--isolation process` cannot be set up.
    #[error("cannot set up worker processes: {0}")]
    Worker(String),
}

/// A scenario field outside its bound (see [`crate::bounds`]). Every variant
/// names the field as it is spelled in a scenario file.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ScenarioError {
    /// A field, or a combination of fields, is outside its documented bound.
    #[error("invalid scenario field `{field}` = {value}: {rule}")]
    OutOfBounds {
        /// The field (`outage.start`, `faults.leak`, ...).
        field: &'static str,
        /// Its value, as given.
        value: String,
        /// The bound it breaks, and why the bound exists.
        rule: &'static str,
    },
    /// A duration scaled by `--time-scale` leaves the range of a duration.
    #[error("invalid scenario field `{field}`: scaled by {factor} it is past the clock's range")]
    ScaledPastClock {
        /// The field.
        field: &'static str,
        /// The scale factor.
        factor: f64,
    },
    /// The scale factor itself is not a finite number above zero.
    #[error("invalid time scale {factor}: must be a finite number above 0")]
    Scale {
        /// The factor given.
        factor: f64,
    },
}

impl ScenarioError {
    /// The field at fault (`time_scale` for a bad factor).
    pub fn field(&self) -> &'static str {
        match self {
            ScenarioError::OutOfBounds { field, .. }
            | ScenarioError::ScaledPastClock { field, .. } => field,
            ScenarioError::Scale { .. } => "time_scale",
        }
    }
}
