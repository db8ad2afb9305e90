//! A worker that is an OS process (`candado-process`): it answers calls
//! through a pipe; when it aborts (a fault no thread survives), the call
//! fails with the exit reason, and the supervisor reaps it and starts a
//! fresh process that answers the next call.
//!
//! Run: `cargo run -p candado-examples --bin process_worker`

use std::time::Duration;

use candado::{BackoffConfig, Runtime, SupervisorSpec};
use candado_process::{Call, CallError, Pid, ProcessChild, ProcessCommand, ProcessOptions};

fn main() -> anyhow::Result<()> {
    // Started as the worker, this serves calls and never returns.
    candado_process::run_if_worker("upper", |request, _progress| {
        if request == b"abort" {
            std::process::abort();
        }
        Ok(request.to_ascii_uppercase())
    });

    Runtime::builder().run(async |runtime| -> anyhow::Result<()> {
        let tree = SupervisorSpec::new("root")
            .backoff(BackoffConfig {
                base: Duration::from_millis(50),
                ..BackoffConfig::default()
            })
            .child(ProcessChild::spec(
                "upper",
                ProcessCommand::current_exe("upper")?,
                ProcessOptions::default(),
            ));
        let root = runtime.start(tree).await?;

        let worker = root.worker::<ProcessChild>("upper").await?;
        let pid = worker.send(Pid).await?;
        let answer = worker.send(Call(b"hello".to_vec())).await??;
        println!(
            "worker process {pid:?} answered {:?}",
            String::from_utf8_lossy(&answer)
        );

        match worker.send(Call(b"abort".to_vec())).await? {
            Err(CallError::Exited(reason)) => println!("the worker process aborted: {reason}"),
            other => anyhow::bail!("expected the worker to abort, got {other:?}"),
        }

        // Until the fresh process is up, the supervisor says it is restarting.
        for _ in 0..100 {
            if let Ok(worker) = root.worker::<ProcessChild>("upper").await {
                if let Ok(Ok(answer)) = worker.send(Call(b"again".to_vec())).await {
                    let pid = worker.send(Pid).await?;
                    println!(
                        "a fresh process {pid:?} answered {:?}",
                        String::from_utf8_lossy(&answer)
                    );
                    let info = root.children().await?;
                    println!("restarts of `upper`: {}", info[0].restarts);
                    root.shutdown().await;
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("no fresh worker process within 5 s")
    })?
}
