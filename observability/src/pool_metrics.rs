//! The pools' families, from the scrape's pool snapshots.
//!
//! Task totals are counters read from the pool's own books
//! ([`TasksSection`](candado_pool::TasksSection)), so they are exact after
//! any event-bus lag; the rest are gauges.

use std::fmt;

use candado::BreakerState;
use candado_pool::{PoolMetrics, TasksSection, WorkersSection};
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use crate::distribution::{self, Distribution, Figure};
use crate::encode::{counters, family, family_in, flag, gauges, Family};
use crate::labels::{self, BREAKER_STATES};
use crate::snapshot::PoolReading;

/// A figure read from one section of a pool's snapshot.
struct Field<S, V> {
    family: Family,
    read: fn(&S) -> V,
}

/// Gauges of the workers section.
const WORKERS: [Field<WorkersSection, usize>; 6] = [
    Field {
        family: family("pool_workers", "Workers registered with the pool."),
        read: |w| w.total,
    },
    Field {
        family: family(
            "pool_workers_ready",
            "Workers registered, eligible and idle.",
        ),
        read: |w| w.ready,
    },
    Field {
        family: family("pool_workers_busy", "Workers running at least one task."),
        read: |w| w.busy,
    },
    Field {
        family: family(
            "pool_workers_unhealthy",
            "Workers in critical health (a restart is pending or refused).",
        ),
        read: |w| w.unhealthy,
    },
    Field {
        family: family(
            "pool_workers_isolated",
            "Workers isolated from new work (brake, open breaker, deferred restart) or draining.",
        ),
        read: |w| w.isolated,
    },
    Field {
        family: family(
            "pool_workers_ejected",
            "Workers out of service for an open breaker.",
        ),
        read: |w| w.ejected,
    },
];

/// Counters of the tasks section.
const TASK_TOTALS: [Field<TasksSection, u64>; 6] = [
    Field {
        family: family(
            "pool_tasks_submitted",
            "Tasks the pool accepted (replays included).",
        ),
        read: |t| t.submitted,
    },
    Field {
        family: family("pool_tasks_completed", "Tasks that finished successfully."),
        read: |t| t.completed,
    },
    Field {
        family: family(
            "pool_tasks_failed",
            "Failed attempts (a task may fail several times).",
        ),
        read: |t| t.failed,
    },
    Field {
        family: family(
            "pool_tasks_retried",
            "Retries scheduled after a failed attempt.",
        ),
        read: |t| t.retried,
    },
    Field {
        family: family(
            "pool_tasks_dead_lettered",
            "Tasks sent to the dead-letter store.",
        ),
        read: |t| t.dead_lettered,
    },
    Field {
        family: family(
            "pool_tasks_returned",
            "Tasks handed back unfinished at shutdown.",
        ),
        read: |t| t.returned,
    },
];

/// Gauges of the tasks section.
const TASK_GAUGES: [Field<TasksSection, u64>; 3] = [
    Field {
        family: family("pool_in_flight", "Tasks running on a worker now."),
        read: |t| t.in_flight,
    },
    Field {
        family: family(
            "pool_reserved",
            "Tasks handed to a busy worker in a batch, not started yet.",
        ),
        read: |t| t.reserved,
    },
    Field {
        family: family(
            "pool_retries_waiting",
            "Failed tasks waiting for their retry delay.",
        ),
        read: |t| {
            t.queued
                .saturating_sub(t.ready_by_priority.values().sum::<u64>())
        },
    },
];

/// Writes every pool family, for every pool that answered (the breakers
/// are read without a round trip, so they are written for every pool).
pub(crate) fn encode(pools: &[PoolReading], encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let answered: Vec<(&str, &PoolMetrics)> = pools
        .iter()
        .filter_map(|p| Some((p.name.as_str(), p.metrics.as_ref()?)))
        .collect();
    gauges(
        encoder,
        family("pool_up", "1 if the pool answered this scrape."),
        pools
            .iter()
            .map(|p| ([("pool", p.name.as_str())], flag(p.metrics.is_some()))),
    )?;
    gauges(
        encoder,
        family(
            "pool_ready",
            "1 if the pool can take work now: running, not failed, and a worker in service.",
        ),
        answered
            .iter()
            .map(|(pool, m)| ([("pool", *pool)], flag(m.health.ready))),
    )?;
    gauges(
        encoder,
        family("pool_size", "Workers the pool is sized for now."),
        answered
            .iter()
            .map(|(pool, m)| ([("pool", *pool)], m.pool.size)),
    )?;
    for field in WORKERS {
        let samples = answered
            .iter()
            .map(|(pool, m)| ([("pool", *pool)], (field.read)(&m.workers)));
        gauges(encoder, field.family, samples)?;
    }
    gauges(
        encoder,
        family(
            "pool_queue_depth",
            "Tasks ready to run, by current priority (0 runs first).",
        ),
        pools.iter().filter(|p| p.metrics.is_some()).flat_map(|p| {
            p.queue_depth.iter().map(|(priority, n)| {
                let labels = [("pool", p.name.clone()), ("priority", priority.to_string())];
                (labels, *n)
            })
        }),
    )?;
    for field in TASK_GAUGES {
        let samples = answered
            .iter()
            .map(|(pool, m)| ([("pool", *pool)], (field.read)(&m.tasks)));
        gauges(encoder, field.family, samples)?;
    }
    for field in TASK_TOTALS {
        let samples = answered
            .iter()
            .map(|(pool, m)| ([("pool", *pool)], (field.read)(&m.tasks)));
        counters(encoder, field.family, samples)?;
    }
    encode_performance(&answered, encoder)?;
    encode_breakers(pools, encoder)
}

fn encode_performance(
    answered: &[(&str, &PoolMetrics)],
    encoder: &mut DescriptorEncoder<'_>,
) -> fmt::Result {
    gauges(
        encoder,
        family(
            "pool_worker_reuse_ratio",
            "Share of attempts that ran on an already running worker (1 - worker starts / attempts).",
        ),
        answered
            .iter()
            .map(|(pool, m)| ([("pool", *pool)], m.performance.worker_reuse_rate)),
    )?;
    counters(
        encoder,
        family(
            "pool_worker_restarts",
            "Worker restarts by reason (panic, liveness, memory, age, tasks, ...).",
        ),
        answered.iter().flat_map(|(pool, m)| {
            m.performance
                .restarts_by_reason
                .iter()
                .map(move |(reason, n)| ([("pool", *pool), ("reason", reason.as_str())], *n))
        }),
    )?;
    let latency = Figure {
        recent_name: "pool_task_latency_recent",
        name: "pool_task_latency",
        help:
            "Submit-to-result time of completed tasks: percentiles over the last 50 to 60 seconds.",
        lifetime_help: "Submit-to-result time of every task completed since the pool started.",
    };
    let series = answered
        .iter()
        .map(|(pool, m)| (*pool, Distribution::Recent(m.performance.latency_ms)));
    distribution::encode(encoder, latency, series)?;
    let series = answered
        .iter()
        .map(|(pool, m)| (*pool, &m.performance.latency_buckets));
    distribution::encode_buckets(encoder, latency, series)?;
    let queue_wait = Figure {
        recent_name: "pool_queue_wait_recent",
        name: "pool_queue_wait",
        help: "Time tasks waited in the queue before dispatch: percentiles over the last 50 to 60 seconds.",
        lifetime_help: "Time every dispatched task waited in the queue since the pool started.",
    };
    let series = answered
        .iter()
        .map(|(pool, m)| (*pool, Distribution::Recent(m.performance.queue_wait_ms)));
    distribution::encode(encoder, queue_wait, series)?;
    let series = answered
        .iter()
        .map(|(pool, m)| (*pool, &m.performance.queue_wait_buckets));
    distribution::encode_buckets(encoder, queue_wait, series)?;
    gauges(
        encoder,
        family_in(
            "pool_worker_rss",
            "Resident set size of a pool's process worker (isolation = \"process\"), as last measured.",
            &Unit::Bytes,
        ),
        answered.iter().flat_map(|(pool, m)| {
            m.per_worker.iter().filter_map(move |w| {
                let labels = [("pool", *pool), ("worker", w.id.as_str())];
                w.rss_bytes.map(|bytes| (labels, bytes))
            })
        }),
    )
}

fn encode_breakers(pools: &[PoolReading], encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let with_breakers: Vec<_> = pools
        .iter()
        .filter_map(|p| Some((p.name.as_str(), p.breakers.as_ref()?)))
        .collect();
    counters(
        encoder,
        family(
            "pool_breaker_openings",
            "Times any breaker of the pool (a worker's or a dependency's) opened.",
        ),
        with_breakers
            .iter()
            .map(|(pool, (_, opened))| ([("pool", *pool)], *opened)),
    )?;
    encode_states(
        encoder,
        family(
            "pool_dependency_breaker_state",
            "1 for the current state of a dependency's breaker (closed, half_open, open), 0 for the others.",
        ),
        "dependency",
        with_breakers.iter().flat_map(|(pool, (b, _))| {
            b.dependencies
                .iter()
                .map(move |(name, s)| (*pool, name.as_str(), s.state))
        }),
    )?;
    encode_states(
        encoder,
        family(
            "pool_worker_breaker_state",
            "1 for the current state of a worker's breaker (closed, half_open, open), 0 for the others.",
        ),
        "worker",
        with_breakers.iter().flat_map(|(pool, (b, _))| {
            b.children
                .iter()
                .map(move |(name, s)| (*pool, name.as_str(), s.state))
        }),
    )
}

/// A state set: one sample per (pool, owner, possible state).
fn encode_states<'a>(
    encoder: &mut DescriptorEncoder<'_>,
    family: Family,
    owner: &'static str,
    breakers: impl Iterator<Item = (&'a str, &'a str, BreakerState)>,
) -> fmt::Result {
    let samples = breakers.flat_map(|(pool, name, current)| {
        BREAKER_STATES.into_iter().map(move |state| {
            let labels = [
                ("pool", pool),
                (owner, name),
                ("state", labels::breaker_state(state)),
            ];
            (labels, flag(state == current))
        })
    });
    gauges(encoder, family, samples)
}
