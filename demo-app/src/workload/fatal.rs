//! Faults no in-process worker survives: each one costs its process, so the
//! demo injects them only with `--isolation process` (see
//! [`Faults::process_only`](crate::Faults::process_only)). In a worker
//! process, the pool kills, measures and replaces what they break.

use std::time::Duration;

use candado_pool::TaskContext;

/// Brakes in a row before a braking task (`faults.brake`) gives up and its
/// process exits 42.
pub const BRAKES: u32 = 5;

/// The pause of one brake.
const BRAKE_PAUSE: Duration = Duration::from_millis(40);

/// A leak is written this much at a time, the task yielding in between.
const LEAK_CHUNK: usize = 16 << 20;

/// `loop {}` with no await: the thread is never given back. Only the
/// task's timeout can end it, by killing the process.
pub(crate) fn spin() -> ! {
    #[allow(clippy::empty_loop)]
    loop {}
}

/// `std::process::abort()`: SIGABRT, no unwinding, no destructor runs.
pub(crate) fn abort() -> ! {
    std::process::abort()
}

/// Leaks `bytes` of touched memory for good (`std::mem::forget`): nothing
/// owns it any more, so no restart of a handler returns it; only the
/// process's end does. A leak the allocator refuses is skipped.
///
/// Written [`LEAK_CHUNK`] at a time, yielding in between: touching
/// hundreds of MiB takes a busy machine longer than a short task timeout,
/// and a task that yields is cancelled at its timeout (its process lives
/// on, holding what it leaked so far) instead of costing its process a
/// timeout kill, so the memory strategy is what ends the process.
pub(crate) async fn forget(bytes: usize, ctx: &TaskContext) {
    let mut left = bytes;
    while left > 0 {
        let n = left.min(LEAK_CHUNK);
        match touched(n) {
            Some(block) => std::mem::forget(block),
            None => return tracing::warn!(bytes = n, "injected leak refused"),
        }
        left -= n;
        ctx.progress();
        tokio::task::yield_now().await;
    }
}

/// Memory pressure the process cannot relieve: it brakes (pauses its
/// thread, reports progress, checks again) [`BRAKES`] times in a row, then
/// asks for a fresh process by exiting with code 42
/// (`candado_process::brake()`), as seed 004's workers do after 10
/// consecutive brakes. The pauses block the thread, as a brake does, so
/// no task timeout cancels the brakes before the exit.
pub(crate) fn brake(ctx: &TaskContext) -> ! {
    for n in 1..=BRAKES {
        eprintln!("memory brake {n} of {BRAKES}");
        std::thread::sleep(BRAKE_PAUSE);
        ctx.progress();
    }
    candado_process::brake()
}

/// Unbounded recursion: the thread's stack overflows, and Rust's runtime
/// aborts the process (SIGABRT, "has overflowed its stack" on stderr).
pub(crate) fn overflow() {
    std::hint::black_box(recurse(0));
}

/// Each frame keeps a buffer alive across the call, so the recursion is
/// neither a loop nor folded away by the optimiser.
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(std::hint::black_box(frame)[63])
}

/// `bytes` of memory with every page written, so it is resident (counted
/// in RSS), not just reserved; `None` if the allocator refuses. Written a
/// slice at a time, which stays fast in a debug build.
pub(crate) fn touched(bytes: usize) -> Option<Vec<u8>> {
    let mut block = Vec::new();
    block.try_reserve_exact(bytes).ok()?;
    let chunk = [1u8; 64 * 1024];
    while block.len() < bytes {
        let n = (bytes - block.len()).min(chunk.len());
        block.extend_from_slice(&chunk[..n]);
    }
    Some(block)
}
