//! A worker caught in `loop {}` is killed and replaced: the failure no
//! in-process actor survives. Run it with
//! `cargo run -p candado-process --example hung_worker`.
//!
//! The worker process uppercases what it is sent; sent `spin`, its handler
//! loops for ever without an await. Liveness sees no progress for a second,
//! the supervisor stops the process (SIGTERM, then SIGKILL if it is still
//! there after its shutdown timeout), reaps it and starts a fresh one, which
//! answers the next call.

use std::time::{Duration, Instant};

use candado::{HealLimit, Liveness, LivenessConfig, Runtime, ShutdownPolicy, SupervisorSpec};
use candado_process::{Call, CallError, Pid, ProcessChild, ProcessCommand, ProcessOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // In the worker process this serves calls and never returns.
    candado_process::run_if_worker("upper", |request, progress| {
        if request == b"spin" {
            #[allow(clippy::empty_loop)]
            loop {}
        }
        progress.report();
        Ok(request.to_ascii_uppercase())
    });

    actix::System::new().block_on(async {
        let runtime = Runtime::builder().build()?;
        let liveness = Liveness::new(LivenessConfig {
            progress_timeout: Some(Duration::from_secs(1)),
            ping_interval: None,
            ..LivenessConfig::default()
        })?;
        let tree = SupervisorSpec::new("root")
            .tick_interval(Duration::from_millis(100))
            .health(liveness)
            .heal_limit(HealLimit {
                min_gap: Duration::ZERO,
                ..HealLimit::default()
            })
            .child(
                ProcessChild::spec(
                    "upper",
                    ProcessCommand::current_exe("upper")?,
                    ProcessOptions::default(),
                )
                .shutdown(ShutdownPolicy::Timeout(Duration::from_millis(300))),
            );
        let root = runtime.start(tree).await?;

        let worker = root.worker::<ProcessChild>("upper").await?;
        let pid = worker.send(Pid).await?;
        let answer = worker.send(Call(b"hello".to_vec())).await?;
        println!(
            "worker pid {pid:?} answered {:?}",
            answer.map(String::from_utf8)
        );

        let started = Instant::now();
        match worker.send(Call(b"spin".to_vec())).await? {
            Err(CallError::Exited(reason)) => println!(
                "the spinning worker was killed after {:.1} s: {reason}",
                started.elapsed().as_secs_f64()
            ),
            other => println!("unexpected: {other:?}"),
        }

        // The supervisor has started a fresh process; ask it.
        let mut tries = 0;
        let fresh = loop {
            tries += 1;
            if tries > 200 {
                return Err("no replacement within 10 s".into());
            }
            // Until it is up, the supervisor says the child is restarting.
            if let Ok(worker) = root.worker::<ProcessChild>("upper").await {
                if let Ok(answer @ Ok(_)) = worker.send(Call(b"again".to_vec())).await {
                    break (worker.send(Pid).await?, answer);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        println!(
            "its replacement, pid {:?}, answered {:?} {:.1} s after the spin began",
            fresh.0,
            fresh.1.map(String::from_utf8),
            started.elapsed().as_secs_f64()
        );
        runtime.shutdown().await;
        Ok(())
    })
}
