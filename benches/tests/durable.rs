//! The `compare` binary's durable section: without PostgreSQL, asking for
//! it fails with a message saying how to get it; with PostgreSQL
//! installed, it runs end to end in a quick pass (skipped otherwise,
//! unless `CANDADO_REQUIRE_POSTGRES` is set).

mod compare_run;

use std::process::Command;

use compare_run::quick_pass_prints;

#[test]
fn the_durable_section_without_postgresql_says_how_to_get_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_compare"))
        .args(["--quick", "--only", "durable"])
        .env("CANDADO_PG_BIN", "/nonexistent")
        .output()
        .expect("compare runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it should fail:\n{stderr}");
    for hint in ["--pg-url", "apt-get install postgresql", "CANDADO_PG_BIN"] {
        assert!(stderr.contains(hint), "no {hint:?} in:\n{stderr}");
    }
}

#[test]
fn the_durable_section_runs_in_a_quick_pass() {
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().any(|v| v.path().join("bin/initdb").exists()))
        .unwrap_or(false);
    if !installed {
        assert!(
            std::env::var_os("CANDADO_REQUIRE_POSTGRES").is_none(),
            "PostgreSQL is required (CANDADO_REQUIRE_POSTGRES is set) but not installed"
        );
        eprintln!("skipped: PostgreSQL is not installed");
        return;
    }
    quick_pass_prints(
        "durable",
        &[
            "## Durable queue on PostgreSQL",
            "| 1 × 4 |",
            "| 3 × 4 |",
            "| candado (lease expiry, any node's rescue) |",
            "| apalis-postgres (worker heartbeat, re-enqueue of orphans) |",
            "fsync=off",
        ],
    );
}
