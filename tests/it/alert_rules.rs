//! `backstop alert-rules`: the generated files in `alerts/` are what the
//! command prints today (so they never drift from the code), and a
//! configuration error exits 2.

use std::path::Path;
use std::process::Command;

fn alert_rules(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_backstop"))
        .arg("alert-rules")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("backstop runs")
}

fn assert_generated(args: &[&str], file: &str) {
    let out = alert_rules(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "{file} is stale: regenerate it with `backstop alert-rules {}` > {file}",
        args.join(" ")
    );
}

#[test]
fn the_bundled_slo_alerts_are_generated() {
    assert_generated(
        &["--all-services", "alerts/slo.yaml"],
        "alerts/backstop-slo.rules.yml",
    );
}

#[test]
fn the_99_percent_test_rules_are_generated() {
    assert_generated(
        &["alerts/tests/slo-99.yaml"],
        "alerts/tests/slo-99.rules.yml",
    );
}

#[test]
fn an_invalid_configuration_exits_2() {
    let out = alert_rules(&["Cargo.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}
