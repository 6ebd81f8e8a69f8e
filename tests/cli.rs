//! The `backstop` binary: exit codes, `check-config` output, signals.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn backstop() -> Command {
    Command::new(env!("CARGO_BIN_EXE_backstop"))
}

fn write_config(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

const VALID: &str = r#"
service: checkout
listen: 127.0.0.1:0
targets:
  - name: health
    url: http://127.0.0.1:9/health
    interval: 1s
slos:
  - name: availability
    objective: 99.9
rules:
  - name: fast-burn
    when: { burn_rate: { slo: availability, short: 1m, long: 5m, factor: 14.4 } }
"#;

#[test]
fn check_config_accepts_a_valid_file() {
    let f = write_config(VALID);
    let out = backstop()
        .arg("check-config")
        .arg(f.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid (1 targets, 1 SLOs, 1 rules)"));
}

#[test]
fn check_config_reports_every_mistake_with_its_path() {
    let bad = VALID
        .replace("interval: 1s", "interval: 1s\n    timeout: 3s")
        .replace("slo: availability,", "slo: avail,")
        .replace("objective: 99.9", "objective: 100");
    let f = write_config(&bad);
    let out = backstop()
        .arg("check-config")
        .arg(f.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 problem(s)"), "{err}");
    assert!(
        err.contains("targets[0].timeout: 3s is longer than interval 1s"),
        "{err}"
    );
    assert!(
        err.contains("rules[0].when.burn_rate.slo: no SLO named \"avail\""),
        "{err}"
    );
    assert!(err.contains("slos[0].objective"), "{err}");
}

#[test]
fn run_without_config_is_a_usage_error() {
    let out = backstop().env_remove("BACKSTOP_CONFIG").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));
}

#[test]
fn sigterm_stops_the_daemon_with_status_0_within_a_second() {
    let f = write_config(VALID);
    let mut child = backstop()
        .arg("run")
        .arg("--config")
        .arg(f.path())
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it says it started.
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&seen).contains("backstop started") {
        assert!(
            Instant::now() < deadline,
            "no start-up line: {}",
            String::from_utf8_lossy(&seen)
        );
        let mut buf = [0u8; 4096];
        let n = std::io::Read::read(&mut stderr, &mut buf).unwrap();
        assert!(
            n > 0,
            "backstop exited early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    let started = Instant::now();
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    let took = started.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(1), "took {took:?}");
    // Logs are JSON lines when stderr is not a terminal.
    let first = String::from_utf8_lossy(&seen);
    let line = first
        .lines()
        .find(|l| l.contains("backstop started"))
        .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
    assert_eq!(parsed["level"], "INFO");
}
