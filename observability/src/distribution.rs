//! Task latency and queue wait: how a distribution of durations is written.
//!
//! A pool reports each distribution twice: as percentiles over its recent
//! window ([`Percentiles`], in milliseconds), written as a gauge per
//! quantile in seconds named `*_recent_seconds` (OpenMetrics has a summary
//! type for this, which `prometheus-client` does not encode); and over its
//! whole life in fixed buckets ([`DurationBuckets`]), written as an
//! OpenMetrics histogram under the plain name
//! (`candado_pool_task_latency_seconds`), which Prometheus can aggregate
//! across pools and nodes and turn into rates.

use std::fmt;

use candado_pool::{DurationBuckets, Percentiles, BUCKET_BOUNDS_MS};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use crate::encode::{family_in, gauges, histograms, Family};

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
    /// The histogram's name (without the `_seconds` unit).
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    /// The histogram's help text.
    pub(crate) lifetime_help: &'static str,
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

/// A pool's lifetime buckets, as an OpenMetrics histogram in seconds.
#[derive(Debug)]
struct Buckets<'a>(&'a DurationBuckets);

impl EncodeMetric for Buckets<'_> {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> fmt::Result {
        let b = self.0;
        let bounds = BUCKET_BOUNDS_MS
            .iter()
            .map(|ms| ms / 1000.0)
            .chain([f64::INFINITY]);
        // Per-bucket counts; the encoder writes them cumulative.
        let buckets: Vec<(f64, u64)> = bounds
            .zip(b.counts.iter().copied().chain(std::iter::repeat(0)))
            .collect();
        encoder.encode_histogram::<NoLabelSet>(b.sum_ms / 1000.0, b.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Writes `figure`'s histogram for every (pool, lifetime buckets).
pub(crate) fn encode_buckets<'a>(
    encoder: &mut DescriptorEncoder<'_>,
    figure: Figure,
    series: impl IntoIterator<Item = (&'a str, &'a DurationBuckets)>,
) -> fmt::Result {
    let family: Family = family_in(figure.name, figure.lifetime_help, &Unit::Seconds);
    let samples = series
        .into_iter()
        .map(|(pool, buckets)| ([("pool", pool)], Buckets(buckets)));
    histograms(encoder, family, samples)
}
