//! The `backstop` binary: exit codes, `check-config` output, signals.

use crate::common::process::backstop;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
        err.contains(r#"targets[0] "health".timeout: 3s is longer than interval 1s"#),
        "{err}"
    );
    assert!(
        err.contains(r#"rules[0] "fast-burn".when.burn_rate.slo: no SLO named "avail""#),
        "{err}"
    );
    assert!(err.contains(r#"slos[0] "availability".objective"#), "{err}");
}

/// `check-config` finds its file where `run` does: `--config`, then
/// `BACKSTOP_CONFIG`; a positional file still works.
#[test]
fn check_config_takes_the_file_like_run() {
    let f = write_config(VALID);
    let flag = backstop()
        .env_remove("BACKSTOP_CONFIG")
        .args(["check-config", "--config"])
        .arg(f.path())
        .output()
        .unwrap();
    assert_eq!(flag.status.code(), Some(0), "{flag:?}");
    let env = backstop()
        .arg("check-config")
        .env("BACKSTOP_CONFIG", f.path())
        .output()
        .unwrap();
    assert_eq!(env.status.code(), Some(0), "{env:?}");
    assert!(String::from_utf8_lossy(&env.stdout).contains("valid (1 targets"));
    let none = backstop()
        .env_remove("BACKSTOP_CONFIG")
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("--config FILE or set BACKSTOP_CONFIG"));
}

/// Valid but almost certainly wrong: exit 0, each printed as a warning at
/// its path, naming the item it is in.
#[test]
fn check_config_warns_about_values_meant_otherwise() {
    let f = write_config(
        &VALID
            .replace("objective: 99.9", "objective: 0.999")
            .replace(
                "short: 1m, long: 5m, factor: 14.4",
                "short: 1m, long: 2d, factor: 1",
            ),
    );
    let out = backstop()
        .arg("check-config")
        .arg(f.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("valid (1 targets, 1 SLOs, 1 rules, 2 warnings)"),
        "{out:?}"
    );
    assert!(
        err.contains(r#"warning: slos[0] "availability".objective: 0.999 means 0.999 % of probes must be good"#),
        "{err}"
    );
    assert!(
        err.contains(
            r#"warning: rules[0] "fast-burn".when.burn_rate.long: 2days is longer than a day"#
        ),
        "{err}"
    );
}

/// The shipped example passes offline, as its own comment says, with no
/// variable set and no file read; what it would need is listed.
#[test]
fn check_config_offline_passes_the_shipped_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/checkout.yaml");
    let text = std::fs::read_to_string(example).unwrap();
    assert!(text.contains("backstop check-config --offline examples/checkout.yaml"));
    let out = backstop()
        .args(["check-config", "--offline", example])
        .env_remove("APP_TOKEN")
        .env_remove("DEPLOYER_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout.contains("valid offline (6 targets, 2 SLOs, 5 rules)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            r#"variable APP_TOKEN (at targets[2] "analytics-executive".headers.Authorization"#
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("variable DEPLOYER_TOKEN (at rollback.webhook.headers.Authorization)"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).is_empty(), "{out:?}");
    // Without --offline the same file needs its variables.
    let online = backstop()
        .args(["check-config", example])
        .env_remove("APP_TOKEN")
        .env_remove("DEPLOYER_TOKEN")
        .output()
        .unwrap();
    assert_eq!(online.status.code(), Some(2));
}

/// Offline, a missing secret file is listed, not an error; a bad unit is
/// an error with its hint either way.
#[test]
fn check_config_offline_lists_files_and_still_refuses_bad_units() {
    let with_file =
        format!("{VALID}page:\n  pagerduty: {{ routing_key_file: /nonexistent/pagerduty-key }}\n");
    let f = write_config(&with_file);
    let out = backstop()
        .args(["check-config", "--offline"])
        .arg(f.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("file /nonexistent/pagerduty-key (at page.pagerduty.routing_key_file)"),
        "{out:?}"
    );
    let f = write_config(&with_file.replace("interval: 1s", "interval: 5M"));
    let out = backstop()
        .args(["check-config", "--offline"])
        .arg(f.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(r#"targets[0] "health".interval: "5M" is not a duration: M is not minutes (nor months); did you mean "5m"?"#),
        "{err}"
    );
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
        .env_remove("BACKSTOP_REVISION")
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
    // No --revision outside Kubernetes: said loudly at start.
    let unnamed = first
        .lines()
        .find(|l| l.contains("no revision named"))
        .unwrap_or_else(|| panic!("no warning about the unnamed revision in:\n{first}"));
    let parsed: serde_json::Value = serde_json::from_str(unnamed).expect("JSON log line");
    assert_eq!(parsed["level"], "WARN");
}

/// The child, killed if the test ends before it does.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Child {
    /// Its exit status, or a failed test when it takes longer than `limit`.
    fn exits_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, name: &str) {
        let pid = self.0.id().to_string();
        let sent = Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(sent.success());
    }
}

/// `check-config FILE` on a file that is not one to read: it answers at
/// once with what the file is, instead of hanging (a FIFO) or reading
/// until memory runs out (`/dev/zero`).
fn check_config_refuses(file: &std::path::Path, problem: &str) {
    let started = Instant::now();
    let mut child = Child(
        backstop()
            .arg("check-config")
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let status = child.exits_within(Duration::from_secs(3));
    let took = started.elapsed();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    let expected = format!(
        "cannot read configuration file {}: {problem}",
        file.display()
    );
    assert!(err.contains(&expected), "{err}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

fn mkfifo(path: &std::path::Path) {
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
}

#[test]
fn check_config_refuses_a_fifo_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("backstop.yaml");
    mkfifo(&fifo);
    check_config_refuses(&fifo, "it is a FIFO, not a regular file");
}

#[test]
fn check_config_refuses_endless_and_oversized_files() {
    check_config_refuses(
        std::path::Path::new("/dev/zero"),
        "it is a character device, not a regular file",
    );
    let mut big = VALID.to_owned();
    while big.len() <= 1 << 20 {
        big.push_str("# padding padding padding padding padding padding padding\n");
    }
    let f = write_config(&big);
    check_config_refuses(f.path(), "it is larger than 1 MiB");
}

/// A FIFO swapped in as the configuration file (or a read that hangs for
/// any reason) is refused on SIGHUP and never holds up SIGTERM.
#[test]
fn a_fifo_swapped_in_as_the_config_does_not_hold_up_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backstop.yaml");
    std::fs::write(&file, VALID).unwrap();
    let log = dir.path().join("log");
    let mut child = Child(
        backstop()
            .args(["run", "--watch-interval", "100ms", "--config"])
            .arg(&file)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let logged = |text: &str, within: Duration| {
        let deadline = Instant::now() + within;
        loop {
            let seen = std::fs::read_to_string(&log).unwrap_or_default();
            if seen.contains(text) {
                return;
            }
            assert!(Instant::now() < deadline, "no {text:?} in:\n{seen}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    logged("backstop started", Duration::from_secs(10));
    std::fs::remove_file(&file).unwrap();
    mkfifo(&file);
    // Polls look at it, then SIGHUP asks for it.
    std::thread::sleep(Duration::from_millis(300));
    child.signal("-HUP");
    logged("it is a FIFO, not a regular file", Duration::from_secs(2));
    let started = Instant::now();
    child.signal("-TERM");
    let status = child.exits_within(Duration::from_secs(3));
    let took = started.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

/// `run` says at start what `check-config` would warn about.
#[test]
fn run_logs_configuration_warnings_at_start() {
    let f = write_config(
        &VALID
            .replace("objective: 99.9", "objective: 0.999")
            .replace("factor: 14.4", "factor: 1"),
    );
    let mut child = Child(
        backstop()
            .args(["run", "--revision", "v2", "--config"])
            .arg(f.path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = child.0.stderr.take().unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&seen).contains("backstop started") {
        assert!(Instant::now() < deadline, "no start-up line");
        let mut buf = [0u8; 4096];
        let n = std::io::Read::read(&mut stderr, &mut buf).unwrap();
        assert!(n > 0, "exited early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen);
    let line = text
        .lines()
        .find(|l| l.contains("0.999 means 0.999 %"))
        .unwrap_or_else(|| panic!("no warning in:\n{text}"));
    let parsed: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
    assert_eq!(parsed["level"], "WARN");
    assert_eq!(parsed["path"], r#"slos[0] "availability".objective"#);
    assert!(!text.contains("no revision named"), "--revision was given");
    child.signal("-TERM");
    assert_eq!(child.exits_within(Duration::from_secs(3)).code(), Some(0));
}

/// `backstop demo` tells the whole story, the incident side included: the
/// sample app, playing PagerDuty, shows one incident opened, updated with
/// the rollback and left open for a person. Its duration is printed.
#[test]
fn the_demo_catches_failing_orders_on_traffic_rolls_back_and_leaves_the_incident_open() {
    let started = std::time::Instant::now();
    let out = backstop().arg("demo").output().expect("backstop demo runs");
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at = |what: &str| {
        text.find(what)
            .unwrap_or_else(|| panic!("no {what:?} in:\n{text}"))
    };
    // Every probe passes: the app's own request counts catch v2.
    assert!(!text.contains("FAILED"), "{text}");
    let baseline = at("scrape    app-metrics read");
    let firing = at("rule      orders-errors FIRING: orders: ");
    assert!(baseline < firing, "{text}");
    let (opened, updated, left_open) = (
        at("pagerduty incident OPENED: checkout v2: orders failing, "),
        at("pagerduty incident updated: checkout v2: "),
        at("pagerduty incident LEFT OPEN"),
    );
    assert!(opened < updated && updated < left_open, "{text}");
    assert!(
        text[updated..]
            .lines()
            .next()
            .unwrap()
            .ends_with("rolled back to v1; needs a person"),
        "{text}"
    );
    assert!(!text.contains("incident resolved"), "{text}");
    assert!(
        text.contains("rule      orders-errors resolved: "),
        "v1's good orders clear the rule: {text}"
    );
    println!("backstop demo took {:.1} s", took.as_secs_f64());
}
