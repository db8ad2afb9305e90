//! A task handler whose tasks say what they do.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{Blame, TaskContext, TaskHandler};

/// What a test task does.
#[derive(Debug, Clone)]
pub enum Job {
    /// Logs `tag` when it starts, works `ms` of (virtual) time, returns `tag`.
    Work {
        /// Milliseconds of work.
        ms: u64,
        /// Logged at the start and returned.
        tag: u64,
    },
    /// Always fails.
    Fail,
    /// Fails its first `n` attempts.
    FailTimes(u32),
    /// Panics inside the task.
    Panic,
    /// On its first attempt, panics in the handler itself, killing the
    /// worker actor; later attempts succeed (returning 99).
    CrashWorker,
    /// Fails until the flag is set.
    Until(Arc<AtomicBool>),
    /// Never finishes and never reports progress.
    Hang,
    /// Fails with an error the handler blames on the worker.
    BreakWorker,
    /// Hangs on its first attempt (no progress), returns 7 after.
    HangOnce,
    /// Panics in the handler itself on every attempt: kills its worker.
    CrashAlways,
}

impl PartialEq for Job {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Job::Work { ms: a, tag: t }, Job::Work { ms: b, tag: u }) => a == b && t == u,
            (Job::FailTimes(a), Job::FailTimes(b)) => a == b,
            (Job::Until(a), Job::Until(b)) => Arc::ptr_eq(a, b),
            (Job::Fail, Job::Fail)
            | (Job::Panic, Job::Panic)
            | (Job::CrashWorker, Job::CrashWorker)
            | (Job::Hang, Job::Hang)
            | (Job::BreakWorker, Job::BreakWorker)
            | (Job::HangOnce, Job::HangOnce)
            | (Job::CrashAlways, Job::CrashAlways) => true,
            _ => false,
        }
    }
}

/// A [`Job::Work`] of `ms` milliseconds returning `tag`.
pub fn work(ms: u64, tag: u64) -> Job {
    Job::Work { ms, tag }
}

/// Runs [`Job`]s; logs the tags of [`Job::Work`] in start order. Errors
/// starting with `worker:` are blamed on the worker.
#[derive(Debug, Clone, Default)]
pub struct ScriptedHandler {
    /// Tags of the `Work` jobs, in the order they started.
    pub log: Arc<Mutex<Vec<u64>>>,
}

impl TaskHandler for ScriptedHandler {
    type Task = Job;
    type Output = u64;
    type Error = String;

    fn handle(
        &mut self,
        job: Job,
        ctx: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        if matches!(job, Job::CrashWorker) && ctx.attempt() == 1 || matches!(job, Job::CrashAlways)
        {
            panic!("the worker itself crashes");
        }
        let log = self.log.clone();
        async move {
            match job {
                Job::Work { ms, tag } => {
                    log.lock().unwrap_or_else(|p| p.into_inner()).push(tag);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(tag)
                }
                Job::Fail => Err("always fails".into()),
                Job::FailTimes(n) if ctx.attempt() <= n => {
                    Err(format!("attempt {} fails", ctx.attempt()))
                }
                Job::FailTimes(_) => Ok(0),
                Job::Panic => panic!("the task panics"),
                Job::Until(flag) if flag.load(Ordering::SeqCst) => Ok(1),
                Job::Until(_) => Err("not yet".into()),
                Job::CrashWorker => Ok(99),
                Job::CrashAlways => Err("the worker crashed before this".into()),
                Job::Hang => std::future::pending().await,
                Job::BreakWorker => Err("worker: its connection is broken".into()),
                Job::HangOnce if ctx.attempt() == 1 => std::future::pending().await,
                Job::HangOnce => Ok(7),
            }
        }
    }

    fn blame(&self, error: &String) -> Blame {
        if error.starts_with("worker:") {
            Blame::Worker
        } else {
            Blame::Task
        }
    }
}
