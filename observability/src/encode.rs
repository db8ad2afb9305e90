//! Writing snapshot figures as OpenMetrics families.
//!
//! Snapshot figures are encoded at each scrape from the values read then
//! (`ConstGauge`, `ConstCounter`): a series that is gone from the snapshot
//! is gone from the scrape, with nothing to reset. A family without a
//! sample is left out, as `prometheus-client` leaves out a registered
//! family that has none yet.

use std::fmt;

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, EncodeMetric,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

/// One metric family: its name (without prefix, unit or `_total`), help
/// text and unit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) unit: Option<&'static Unit>,
}

/// A family without a unit.
pub(crate) const fn family(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        help,
        unit: None,
    }
}

/// A family measured in `unit`.
pub(crate) const fn family_in(
    name: &'static str,
    help: &'static str,
    unit: &'static Unit,
) -> Family {
    Family {
        name,
        help,
        unit: Some(unit),
    }
}

/// Writes a gauge family with one sample per labelled value.
pub(crate) fn gauges<L, V>(
    encoder: &mut DescriptorEncoder<'_>,
    family: Family,
    samples: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result
where
    L: EncodeLabelSet,
    V: EncodeGaugeValue,
{
    let samples = samples.into_iter().map(|(l, v)| (l, ConstGauge::new(v)));
    write(encoder, family, MetricType::Gauge, samples)
}

/// Writes a counter family with one sample per labelled value.
pub(crate) fn counters<L, V>(
    encoder: &mut DescriptorEncoder<'_>,
    family: Family,
    samples: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result
where
    L: EncodeLabelSet,
    V: EncodeCounterValue,
{
    let samples = samples.into_iter().map(|(l, v)| (l, ConstCounter::new(v)));
    write(encoder, family, MetricType::Counter, samples)
}

/// Writes a histogram family with one labelled histogram each.
pub(crate) fn histograms<L, M>(
    encoder: &mut DescriptorEncoder<'_>,
    family: Family,
    samples: impl IntoIterator<Item = (L, M)>,
) -> fmt::Result
where
    L: EncodeLabelSet,
    M: EncodeMetric,
{
    write(encoder, family, MetricType::Histogram, samples.into_iter())
}

/// Writes a family of `kind` with one sample per labelled metric; none
/// leaves the family out.
fn write<L, M>(
    encoder: &mut DescriptorEncoder<'_>,
    family: Family,
    kind: MetricType,
    samples: impl Iterator<Item = (L, M)>,
) -> fmt::Result
where
    L: EncodeLabelSet,
    M: EncodeMetric,
{
    let mut samples = samples.peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(family.name, family.help, family.unit, kind)?;
    for (labels, sample) in samples {
        sample.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// 1 for the current state of a state set, 0 for the others.
pub(crate) fn flag(on: bool) -> i64 {
    i64::from(on)
}
