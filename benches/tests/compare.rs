//! The `compare` binary's sections run end to end in a quick pass: in the
//! process section, Candado's worker processes and procspawn's, both this
//! binary re-run, serve side by side, and the section prints its tables and
//! targets; the supervision section measures plain, supervised and dynamic
//! children, each in a fresh process; the throughput and CPU sections put
//! Candado's README arrangement first and judge the targets on it.

mod compare_run;

use compare_run::quick_pass_prints;

#[test]
fn the_process_section_runs_in_a_quick_pass() {
    quick_pass_prints(
        "process",
        &[
            "## Process workers",
            "| candado process workers (`ProcessChild`, `Call`) |",
            "| candado pool, in-process workers (2 threads) |",
            "| procspawn pool (64 submitter threads) |",
            "| its handler spins in `loop {}` (heartbeats go on) |",
            "| the process is frozen (SIGSTOP; no heartbeat: silent, then SIGKILL at once) |",
            "| no-op throughput through 4 process workers ≥ 2× procspawn's pool |",
        ],
    );
}

#[test]
fn the_supervision_section_measures_dynamic_children_in_a_quick_pass() {
    quick_pass_prints(
        "supervision",
        &[
            "## Supervision cost",
            "| supervised, heartbeat 2 s | 2000 |",
            "| dynamic child (`start_child`, 1,024 in flight), no heartbeat | 2000 |",
        ],
    );
}

#[test]
fn the_throughput_and_cpu_sections_lead_with_the_readme_arrangement_in_a_quick_pass() {
    quick_pass_prints(
        "throughput,cpu",
        &[
            "| workers | submitters | tokio mpsc (floor) | actix | ractor factory | kameo pool | **candado pool** (README: `run`) |",
            "| 50 µs |",
            "| 500 µs |",
            "| README arrangement, 4 × 64: pool ≥ 1.5× kameo's pool and ≥ ractor's factory |",
            "| README arrangement, 4 × 64, 50 µs of CPU per request: pool ≥ 97% of the cores' limit |",
        ],
    );
}
