//! The built binary refuses bad scenario files, and faults no in-process
//! worker survives, with exit status 2 and a message naming the field.

use std::path::PathBuf;
use std::process::{Command, Output};

fn scenario_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("candado-demo-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("scenario file written");
    path
}

fn demo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_candado-demo"))
        .args(args)
        .output()
        .expect("the demo binary runs")
}

fn assert_refused(file: &str, text: &str, extra: &[&str], field: &str) {
    let path = scenario_file(file, text);
    let path = path.to_str().expect("utf-8 temp path");
    let mut args = vec!["--scenario-file", path, "--report", "json"];
    args.extend_from_slice(extra);
    let out = demo(&args);
    let _ = std::fs::remove_file(path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("`{field}`")),
        "stderr names `{field}`: {stderr}"
    );
    assert!(out.stdout.is_empty(), "no report for a refused scenario");
}

#[test]
fn a_huge_leak_is_refused_with_status_2() {
    assert_refused("leak.toml", "leak_mib = 102400\n", &[], "leak_mib");
}

#[test]
fn an_outage_past_the_clock_is_refused_when_scaled() {
    let text = "[outage]\nstart = \"18446744073709551615s\"\nlength = \"1s\"\n";
    assert_refused("outage.toml", text, &["--time-scale", "2"], "outage.start");
}

#[test]
fn a_million_workers_are_refused() {
    let text = "workers = 1000000\nmax_workers = 1000000\n";
    assert_refused("workers.toml", text, &[], "workers");
}

#[test]
fn process_faults_in_the_demo_s_process_are_refused_with_status_2() {
    let out = demo(&["--scenario", "process-faults", "--report", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    for needed in ["--isolation process", "faults.spin", "faults.abort"] {
        assert!(stderr.contains(needed), "stderr names {needed}: {stderr}");
    }
    assert!(out.stdout.is_empty(), "no report for a refused scenario");
}

#[test]
fn cluster_without_a_store_is_refused_with_status_2() {
    let out = demo(&["--scenario", "cluster", "--report", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("--store"), "stderr names --store: {stderr}");
    assert!(out.stdout.is_empty(), "no report for a refused scenario");
}

#[test]
fn cluster_with_serve_is_refused_with_status_2_before_connecting() {
    // Port 1 has no server: the refusal must come before any connection.
    let out = demo(&[
        "--scenario",
        "cluster",
        "--store",
        "postgres://postgres@127.0.0.1:1/none",
        "--serve",
        "127.0.0.1:0",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("--serve"), "stderr names --serve: {stderr}");
    assert!(out.stdout.is_empty(), "no report for a refused scenario");
}
