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
    /// The scenario runs several nodes on a durable queue, and no
    /// `--store` names one.
    #[error(
        "scenario `{scenario}` runs {nodes} nodes on a durable queue in PostgreSQL; name the database with `--store postgres://…` (see docs/durable.md)"
    )]
    NeedsStore {
        /// The scenario.
        scenario: String,
        /// Its `nodes`.
        nodes: usize,
    },
    /// The scenario runs several node processes, and their workers would
    /// be processes too.
    #[error(
        "scenario `{scenario}` runs node processes, whose workers run in-process; leave out `--isolation process`"
    )]
    NodesInProcess {
        /// The scenario.
        scenario: String,
    },
    /// `--serve` with several node processes: each node's pool lives in a
    /// process of its own, and the dashboard shows one process's tree.
    #[error(
        "scenario `{scenario}` runs its pools in node processes; `--serve` shows one process's pools, so leave it out (or serve a one-node scenario)"
    )]
    NodesNotServed {
        /// The scenario.
        scenario: String,
    },
    /// The durable store refused (`--store`).
    #[error(transparent)]
    Store(#[from] candado_postgres::StoreError),
    /// A node process of a durable run could not start, stop or report.
    #[error("node process: {0}")]
    Node(String),
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
