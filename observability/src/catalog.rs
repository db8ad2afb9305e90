//! The metric catalog of `docs/observability.md` against what a scrape
//! writes: a scrape in which every family has a sample names exactly the
//! metrics the page's tables list, with the types they give.

use std::collections::{BTreeMap, BTreeSet};

use candado::{
    Alert, AlertLevel, BreakerSnapshot, BreakerState, BreakersSnapshot, Event, EventKind,
    ExitReason, HealthStatus, Placement, RestartCause, VerdictKind,
};
use candado_pool::{
    DurationBuckets, HealthSection, Percentiles, PerformanceSection, PoolMetrics, PoolSection,
    TasksSection, WorkerStatus, WorkersSection,
};

use crate::events::EventCounters;
use crate::snapshot::{render, PoolReading, Snapshot, TreeReading};
use crate::test_support::{child, tree};

/// Counters that have seen one event of every counted kind.
fn busy_counters() -> EventCounters {
    let counters = EventCounters::default();
    let kinds = [
        EventKind::ChildExited {
            child: "w".into(),
            incarnation: 1,
            reason: ExitReason::Panic("boom".into()),
        },
        EventKind::ChildRestarted {
            child: "w".into(),
            incarnation: 2,
            restarts: 1,
            cause: RestartCause::Panic,
        },
        EventKind::VerdictChanged {
            strategy: "liveness".into(),
            child: "w".into(),
            verdict: VerdictKind::Restart,
            cause: None,
            reason: None,
        },
        EventKind::HealthChanged {
            child: "w".into(),
            status: HealthStatus::Critical,
            isolated: true,
            reason: None,
        },
        EventKind::Escalated {
            reason: ExitReason::Killed,
        },
        EventKind::Fatal {
            reason: ExitReason::Killed,
        },
        EventKind::ThreadStuck {
            placement: Placement::Worker(0),
        },
        EventKind::ThreadRecovered {
            placement: Placement::Worker(0),
        },
        EventKind::Alert(Alert {
            level: AlertLevel::Warning,
            key: "app/w:degraded".into(),
            message: "m".into(),
            occurrences: 5,
        }),
    ];
    for kind in kinds {
        counters.record(&Event {
            at_ms: 0,
            supervisor: "app".into(),
            kind,
        });
    }
    counters.lagged(1);
    counters
}

/// A snapshot with a sample in every family.
fn full_snapshot() -> Snapshot {
    let breaker = BreakerSnapshot {
        state: BreakerState::Closed,
        opens: 0,
        failures: 0,
        cooldown_remaining_ms: None,
        recent: Vec::new(),
    };
    let breakers = BreakersSnapshot {
        children: BTreeMap::from([("worker-0".into(), breaker.clone())]),
        dependencies: BTreeMap::from([("db".into(), breaker)]),
    };
    let metrics = PoolMetrics {
        pool: PoolSection {
            name: "jobs".into(),
            size: 1,
            uptime_ms: 1,
        },
        workers: WorkersSection::default(),
        tasks: TasksSection::default(),
        performance: PerformanceSection {
            restarts_by_reason: BTreeMap::from([("panic".into(), 1)]),
            latency_ms: Percentiles::default(),
            latency_buckets: DurationBuckets::empty(),
            queue_wait_buckets: DurationBuckets::empty(),
            ..PerformanceSection::default()
        },
        health: HealthSection {
            status: HealthStatus::Healthy,
            ready: true,
            failed: None,
            alerts: Vec::new(),
        },
        per_worker: vec![WorkerStatus {
            id: "worker-0".into(),
            incarnation: 1,
            in_flight: 0,
            reserved: 0,
            completed: 0,
            health: HealthStatus::Healthy,
            isolated: false,
            draining: false,
            capabilities: Vec::new(),
            pid: Some(42),
            rss_bytes: Some(1 << 20),
        }],
    };
    Snapshot {
        trees: vec![TreeReading {
            root: "app".into(),
            tree: Some(tree("app", vec![child("w", HealthStatus::Healthy)], vec![])),
        }],
        pools: vec![PoolReading {
            name: "jobs".into(),
            metrics: Some(metrics),
            queue_depth: BTreeMap::from([(10, 0)]),
            breakers: Some((breakers, 0)),
        }],
        memory: vec![("app".into(), "w".into(), 1)],
    }
}

/// (sample name, type) of every family in an OpenMetrics text.
fn rendered(text: &str) -> BTreeSet<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (name, kind) = l.split_once(' ').unwrap();
            let name = match kind {
                "counter" => format!("{name}_total"),
                _ => name.to_owned(),
            };
            (name, kind.to_owned())
        })
        .collect()
}

/// (name, type) of every row of the page's metric tables.
fn listed(page: &str) -> BTreeSet<(String, String)> {
    page.lines()
        .filter_map(|l| l.strip_prefix("| `candado_"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let name = cells[0].trim_end_matches('`');
            let name = name.split('{').next().unwrap();
            (format!("candado_{name}"), cells[1].to_owned())
        })
        .collect()
}

#[test]
fn every_metric_rendered_is_listed_in_this_page_and_every_listed_one_is_rendered() {
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/observability.md"),
    )
    .unwrap();
    let text = render(&busy_counters(), full_snapshot());
    let (rendered, listed) = (rendered(&text), listed(&page));
    assert!(rendered.len() > 40, "{rendered:?}");
    let unlisted: Vec<_> = rendered.difference(&listed).collect();
    let unrendered: Vec<_> = listed.difference(&rendered).collect();
    assert!(
        unlisted.is_empty() && unrendered.is_empty(),
        "rendered, not in docs/observability.md: {unlisted:?}\nlisted, not rendered: {unrendered:?}"
    );
}
