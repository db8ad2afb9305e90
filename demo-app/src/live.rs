//! The live view: a redrawn block on a terminal, plain lines otherwise.

use std::io::Write;
use std::time::Duration;

use candado_pool::PoolMetrics;

use crate::workload::DEPENDENCY;

/// How the run shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveMode {
    /// Nothing (tests).
    Off,
    /// A block redrawn in place on stdout.
    Terminal,
    /// A status line on stderr every few seconds.
    Lines,
}

impl LiveMode {
    /// Refresh period.
    pub fn period(self) -> Duration {
        match self {
            LiveMode::Terminal => Duration::from_millis(250),
            _ => Duration::from_secs(2),
        }
    }
}

/// What the view shows besides the pool's metrics.
#[derive(Debug, Clone)]
pub(crate) struct Frame<'a> {
    pub(crate) scenario: &'a str,
    pub(crate) elapsed: Duration,
    /// Tasks the scenario submits in all ([`crate::Scenario::task_count`]).
    pub(crate) planned: u64,
    /// Of those, refused so far by backpressure (they will never be done).
    pub(crate) refused: u64,
    pub(crate) metrics: &'a PoolMetrics,
    pub(crate) dependency: &'a str,
    pub(crate) stuck_threads: usize,
}

fn restarts(m: &PoolMetrics) -> String {
    if m.performance.restarts_by_reason.is_empty() {
        return "none".into();
    }
    m.performance
        .restarts_by_reason
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn done(m: &PoolMetrics) -> u64 {
    m.tasks.completed + m.tasks.dead_lettered + m.tasks.returned
}

/// The tasks that will be done by the end: those planned, less those refused.
fn total(planned: u64, refused: u64) -> u64 {
    planned.saturating_sub(refused)
}

/// `done of total`, with the refused tasks named when there are any.
fn progress(done: u64, planned: u64, refused: u64) -> String {
    let total = total(planned, refused);
    if refused == 0 {
        format!("{done} done of {total}")
    } else {
        format!("{done} done of {total} ({refused} refused)")
    }
}

/// One status line (plain mode).
pub(crate) fn line(f: &Frame<'_>) -> String {
    let m = f.metrics;
    format!(
        "[{:>5.1}s] {}: {} | queue {} running {} | workers {} busy {} isolated {} | {DEPENDENCY} breaker {} | stuck threads {} | restarts {}",
        f.elapsed.as_secs_f64(),
        f.scenario,
        progress(done(m), f.planned, f.refused),
        m.tasks.queued,
        m.tasks.in_flight,
        m.workers.total,
        m.workers.busy,
        m.workers.isolated,
        f.dependency,
        f.stuck_threads,
        restarts(m),
    )
}

/// The terminal block: progress bar, workers, breakers, queue, restarts.
pub(crate) fn block(f: &Frame<'_>) -> Vec<String> {
    let m = f.metrics;
    let total = total(f.planned, f.refused).max(1);
    let ratio = (done(m) as f64 / total as f64).min(1.0);
    let width = 40;
    let filled = (ratio * width as f64) as usize;
    let bar = format!("{}{}", "#".repeat(filled), "-".repeat(width - filled));
    let workers = m
        .per_worker
        .iter()
        .map(|w| {
            let state = if w.draining {
                "draining"
            } else if w.isolated {
                "isolated"
            } else if w.in_flight > 0 {
                "busy"
            } else {
                "ready"
            };
            format!("{}#{} {state}", w.id, w.incarnation)
        })
        .collect::<Vec<_>>()
        .join("  ");
    vec![
        format!(
            "Candado demo: {}   t = {:.1}s",
            f.scenario,
            f.elapsed.as_secs_f64()
        ),
        format!(
            "[{bar}] {:>3.0}%  {}",
            ratio * 100.0,
            progress(done(m), f.planned, f.refused)
        ),
        format!(
            "queue {:<6} running {:<4} retries {:<5} dead {:<4} latency p50 {:.1} ms",
            m.tasks.queued,
            m.tasks.in_flight,
            m.tasks.retried,
            m.tasks.dead_lettered,
            m.performance.latency_ms.p50
        ),
        format!("workers  {workers}"),
        format!(
            "breakers {DEPENDENCY}: {}   workers isolated: {}   stuck threads: {}",
            f.dependency, m.workers.isolated, f.stuck_threads
        ),
        format!("restarts {}", restarts(m)),
    ]
}

/// Draws `lines` over the previous block of `previous` lines.
pub(crate) fn redraw(out: &mut impl Write, previous: usize, lines: &[String]) {
    if previous > 0 {
        let _ = write!(out, "\x1b[{previous}A");
    }
    for l in lines {
        let _ = writeln!(out, "\x1b[2K{l}");
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_the_planned_tasks_less_the_refused() {
        assert_eq!(progress(2_500, 3_000, 0), "2500 done of 3000");
        assert_eq!(progress(10, 3_000, 500), "10 done of 2500 (500 refused)");
        assert_eq!(total(3, 5), 0);
    }
}
