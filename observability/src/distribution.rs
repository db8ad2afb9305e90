//! Task latency and queue wait: how a distribution of durations is written.
//!
//! Today a pool reports each distribution as percentiles over its most
//! recent tasks ([`Percentiles`], in milliseconds), so that is what is
//! written: a gauge per quantile, in seconds, named `*_recent_seconds`
//! (OpenMetrics has a summary type for this, which `prometheus-client` does
//! not encode). When the pool keeps histograms, a [`Distribution`] variant
//! carrying their buckets is added here and written as an OpenMetrics
//! histogram under the plain name (`candado_pool_task_latency_seconds`);
//! the callers do not change.

use std::fmt;

use candado_pool::Percentiles;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use crate::encode::{family_in, gauges, Family};

/// A distribution of durations as a pool reports it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Distribution {
    /// Percentiles over the most recent tasks.
    Recent(Percentiles),
}

/// Which distribution: its help text, and the name of its percentile
/// form (without the `_seconds` unit), e.g. `pool_task_latency_recent`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Figure {
    pub(crate) recent_name: &'static str,
    pub(crate) help: &'static str,
}

/// Writes `figure` for every (pool, distribution).
pub(crate) fn encode<'a>(
    encoder: &mut DescriptorEncoder<'_>,
    figure: Figure,
    series: impl IntoIterator<Item = (&'a str, Distribution)>,
) -> fmt::Result {
    let recent: Family = family_in(figure.recent_name, figure.help, &Unit::Seconds);
    let samples = series.into_iter().flat_map(|(pool, distribution)| {
        let Distribution::Recent(p) = distribution;
        [
            ("0.5", p.p50),
            ("0.9", p.p90),
            ("0.99", p.p99),
            ("1", p.max),
        ]
        .into_iter()
        .map(move |(quantile, ms)| ([("pool", pool), ("quantile", quantile)], ms / 1000.0))
    });
    gauges(encoder, recent, samples)
}
