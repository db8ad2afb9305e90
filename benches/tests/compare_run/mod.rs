//! What the tests of the `compare` binary share: a quick pass of one
//! section, checked for what it must print.

use std::process::Command;

/// Runs `compare --quick --only <section>` and asserts that it succeeds
/// and prints each of `lines`.
pub(crate) fn quick_pass_prints(section: &str, lines: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_compare"))
        .args(["--quick", "--only", section])
        .output()
        .expect("compare runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "compare failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in lines {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
}
