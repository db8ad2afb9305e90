//! The demo's task handler: runs a job, and the fault its first attempt
//! carries.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use candado_pool::{TaskContext, TaskHandler};

use super::{fatal, Dependency, Fault, Job, DEPENDENCY};
use crate::bounds::MIB;

/// Runs demo jobs. Holds the memory its leaking tasks left behind, so a
/// restart (a fresh handler) is what frees it.
#[derive(Debug)]
pub struct Engine {
    dependency: Arc<Dependency>,
    leaked: Vec<Vec<u8>>,
    leak_mib: u64,
}

impl Engine {
    /// A fresh engine (one per worker incarnation).
    pub fn new(dependency: Arc<Dependency>, leak_mib: u64) -> Self {
        Self {
            dependency,
            leaked: Vec::new(),
            leak_mib,
        }
    }

    /// `leak_mib` in bytes (saturating on a 32-bit target).
    fn leak_bytes(&self) -> usize {
        usize::try_from(self.leak_mib.saturating_mul(MIB)).unwrap_or(usize::MAX)
    }
}

impl TaskHandler for Engine {
    type Task = Job;
    type Output = u64;
    type Error = String;

    fn handle(
        &mut self,
        job: Job,
        mut ctx: TaskContext,
    ) -> impl Future<Output = Result<u64, String>> + 'static {
        let fault = if ctx.attempt() == 1 {
            job.fault()
        } else {
            Fault::None
        };
        if fault != Fault::None {
            // Inside the attempt's span: the line carries the task and attempt.
            tracing::info!(?fault, "injecting a fault");
        }
        match fault {
            Fault::Crash => panic!("worker crash injected by the demo"),
            Fault::Starve => {
                // An unchunked CPU loop: nothing else runs on this thread meanwhile.
                let until = std::time::Instant::now() + Duration::from_millis(2_500);
                let mut x = 0u64;
                while std::time::Instant::now() < until {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                std::hint::black_box(x);
            }
            Fault::Leak => {
                // Real memory (pages touched), and reported to the supervisor.
                // A leak the allocator refuses is skipped, not an abort.
                let bytes = self.leak_bytes();
                match fatal::touched(bytes) {
                    Some(leak) => self.leaked.push(leak),
                    None => tracing::warn!(bytes, "injected leak refused"),
                }
                let held: usize = self.leaked.iter().map(Vec::len).sum();
                ctx.report_memory(held as u64);
            }
            _ => {}
        }
        let dependency = self.dependency.clone();
        let leak_bytes = self.leak_bytes();
        async move {
            match fault {
                Fault::Panic => panic!("task panic injected by the demo"),
                Fault::Hang => std::future::pending::<()>().await,
                Fault::Slow => loop {
                    // Alive and reporting progress, just too slow.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    ctx.progress();
                },
                Fault::Spin => fatal::spin(),
                Fault::Abort => fatal::abort(),
                Fault::Forget => fatal::forget(leak_bytes, &ctx).await,
                Fault::Brake => fatal::brake(&ctx),
                Fault::Overflow => fatal::overflow(),
                Fault::None | Fault::Crash | Fault::Starve | Fault::Leak => {}
            }
            match job {
                Job::Predict { iterations, .. } => {
                    let mut acc = 0u64;
                    for i in 0..iterations {
                        acc = acc.wrapping_add(u64::from(i).wrapping_mul(2654435761) % 1009);
                        ctx.checkpoint().await;
                    }
                    Ok(acc)
                }
                Job::Fetch { .. } => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if dependency.is_down(SystemTime::now()) {
                        Err(format!("{DEPENDENCY} is down"))
                    } else {
                        Ok(1)
                    }
                }
            }
        }
    }
}
