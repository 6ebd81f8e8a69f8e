//! Valid files: values, defaults, `${VAR}` expansion, secrets, `load`.

use std::net::SocketAddr;
use std::time::Duration;

use super::{EXAMPLE, MINIMAL, env, errors, ok};
use crate::config::{
    Action, Condition, DEFAULT_LISTEN, DEFAULT_STATUS_WINDOW, HeaderValue, Redirects,
    RollbackBackend, load, parse,
};

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn example_parses_with_defaults_filled_in() {
    let c = ok(EXAMPLE);
    assert_eq!(c.service, "checkout");
    assert_eq!(
        c.listen,
        DEFAULT_LISTEN.parse::<SocketAddr>().expect("valid default")
    );

    let [health, analytics, ready] = &c.targets[..] else {
        panic!("three targets expected: {:?}", c.targets)
    };
    assert_eq!(health.url.as_str(), "http://127.0.0.1:8080/health");
    assert_eq!(
        (health.interval, health.timeout, health.warmup),
        (secs(1), ms(800), secs(10))
    );
    assert_eq!(
        health.headers.get("Authorization").map(HeaderValue::expose),
        Some("Bearer t0ken")
    );
    assert_eq!(health.expect.status, vec![200]);
    assert_eq!(health.expect.body_contains.as_deref(), Some("ok"));
    assert_eq!(
        health.expect.json.get("status"),
        Some(&serde_json::json!("ok"))
    );
    assert_eq!(health.expect.max_latency, Some(Duration::from_millis(700)));
    assert_eq!(health.follow_redirects, Redirects::SameOrigin);
    // timeout defaults to min(interval, 2s); method is stored upper case.
    assert_eq!(
        (analytics.timeout, analytics.method.as_str()),
        (secs(2), "POST")
    );
    assert_eq!(
        (ready.timeout, ready.warmup, ready.method.as_str()),
        (ms(1500), Duration::ZERO, "GET")
    );
    assert!(ready.expect.status.is_empty() && ready.headers.is_empty());

    let objectives: Vec<f64> = c.slos.iter().map(|s| s.objective).collect();
    assert_eq!(objectives, vec![0.999, 0.95, 0.995]);
    assert_eq!(c.slos[0].targets, vec![0]);
    assert_eq!(c.slos[1].latency_threshold, Some(ms(200)));
    assert_eq!(c.slos[2].targets, vec![0, 1, 2], "default: all targets");

    let conditions: Vec<&Condition> = c.rules.iter().map(|r| &r.when).collect();
    assert_eq!(
        conditions,
        vec![
            &Condition::ConsecutiveFailures {
                target: 0,
                count: 3
            },
            &Condition::BurnRate {
                slo: 0,
                short: secs(60),
                long: secs(300),
                factor: 14.4,
                min_samples: 70
            },
            &Condition::ErrorRate {
                target: None,
                above: 0.05,
                window: secs(600),
                min_samples: 21
            },
            &Condition::Latency {
                target: 1,
                percentile: 95.0,
                above: ms(200),
                window: secs(300),
                min_samples: 20,
            },
        ]
    );
    assert_eq!(c.rules[0].actions, vec![Action::Rollback]);
    assert_eq!(c.rules[2].actions, vec![], "no `do`: observe only");
    assert_eq!(
        (c.rules[0].for_, c.rules[3].for_),
        (Duration::ZERO, secs(60))
    );

    let Some(RollbackBackend::Webhook(hook)) = &c.rollback.backend else {
        panic!("webhook expected: {:?}", c.rollback)
    };
    assert_eq!(hook.url.as_str(), "http://deployer/rollback");
    assert_eq!(hook.timeout, secs(5));
    assert_eq!(
        hook.headers.get("X-Team").map(HeaderValue::expose),
        Some("checkout")
    );
    assert_eq!(
        (c.rollback.bake, c.rollback.cooldown, c.rollback.dry_run),
        (secs(1800), secs(600), false)
    );
    assert_eq!(c.longest_window(), secs(600));
}

#[test]
fn minimal_file_gets_every_default() {
    let c = ok(MINIMAL);
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    let t = &c.targets[0];
    assert_eq!(
        (t.interval, t.timeout, t.warmup, t.method.as_str()),
        (secs(5), secs(2), Duration::ZERO, "GET")
    );
    assert_eq!(t.follow_redirects, Redirects::None);
    assert!(c.slos.is_empty() && c.rules.is_empty());
    assert_eq!(c.rollback.backend, None);
    assert_eq!(
        (c.rollback.bake, c.rollback.cooldown, c.rollback.dry_run),
        (secs(1800), secs(600), false)
    );
    assert_eq!(c.longest_window(), DEFAULT_STATUS_WINDOW);
}

#[test]
fn min_samples_defaults_follow_the_thresholds() {
    let rule = |when: &str| {
        let yaml = format!(
            "{MINIMAL}slos: [{{name: a, objective: 99.9}}, {{name: b, objective: 99}}]\n\
             rules: [{{name: r, when: {when}}}]\n"
        );
        ok(&yaml).rules[0].when.clone()
    };
    let samples = |c: Condition| match c {
        Condition::ErrorRate { min_samples, .. }
        | Condition::BurnRate { min_samples, .. }
        | Condition::Latency { min_samples, .. } => min_samples,
        other => panic!("no min_samples in {other:?}"),
    };
    assert_eq!(samples(rule("{error_rate: {above: 5}}")), 21);
    assert_eq!(samples(rule("{error_rate: {above: \"1%\"}}")), 101);
    assert_eq!(
        samples(rule("{error_rate: {above: 50%}}")),
        10,
        "never below 10"
    );
    assert_eq!(samples(rule("{error_rate: {above: 5, min_samples: 3}}")), 3);
    assert_eq!(samples(rule("{burn_rate: {slo: a, factor: 14.4}}")), 70);
    assert_eq!(samples(rule("{burn_rate: {slo: b, factor: 6}}")), 17);
    assert_eq!(samples(rule("{burn_rate: {slo: b, factor: 50}}")), 10);
    assert_eq!(samples(rule("{latency: {target: health, above: 1s}}")), 20);
    assert_eq!(
        samples(rule(
            "{latency: {target: health, above: 1s, percentile: 99}}"
        )),
        100
    );
    assert_eq!(
        samples(rule(
            "{latency: {target: health, above: 1s, percentile: 99.9}}"
        )),
        1000
    );
    assert_eq!(samples(rule("{latency: {above: 1s}, target: health}")), 20);
    assert_eq!(
        samples(rule(
            "{error_rate: {above: 5, target: health}, target: health}"
        )),
        21
    );
}

#[test]
fn env_variables_defaults_and_escapes_expand() {
    let yaml = r#"
service: ${SERVICE:-checkout}
targets:
  - name: health
    url: http://127.0.0.1:${PORT:-8080}/health
    interval: ${INTERVAL:-2s}
    headers: { Authorization: "Bearer ${APP_TOKEN}", X-Literal: "$${NOT_EXPANDED}" }
"#;
    let c = ok(yaml);
    assert_eq!(c.service, "checkout");
    let t = &c.targets[0];
    assert_eq!(t.url.as_str(), "http://127.0.0.1:8081/health");
    assert_eq!(t.interval, secs(2));
    assert_eq!(t.headers["Authorization"].expose(), "Bearer t0ken");
    assert_eq!(t.headers["X-Literal"].expose(), "${NOT_EXPANDED}");
    // Only strings hold variables, so booleans and numbers may come from the
    // environment too.
    let yaml = format!("{MINIMAL}rollback: {{dry_run: \"${{DRY:-true}}\"}}\n");
    assert!(ok(&yaml).rollback.dry_run);
}

#[test]
fn unset_variable_is_one_error_at_its_path() {
    let yaml = format!(
        "{MINIMAL}    headers: {{ X-Token: \"${{MISSING_TOKEN}}\" }}\n    interval: ${{MISSING_INTERVAL}}\n"
    );
    assert_eq!(
        errors(&yaml),
        vec![
            "targets[0].headers.X-Token: environment variable MISSING_TOKEN is not set",
            "targets[0].interval: environment variable MISSING_INTERVAL is not set",
        ]
    );
}

/// A file in a fresh temporary directory, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("backstop-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn header_files_become_redacted_secrets() {
    let token = TempFile::new("token", "  hunter2-secret\n");
    let yaml = format!(
        "{MINIMAL}    header_files: {{ Authorization: {path} }}\n\
         rollback:\n  webhook:\n    url: https://deployer.example/rollback\n    header_files: {{ X-Key: {path} }}\n",
        path = token.path()
    );
    let c = ok(&yaml);
    let header = &c.targets[0].headers["Authorization"];
    assert!(matches!(header, HeaderValue::Secret(_)));
    assert_eq!(header.expose(), "hunter2-secret");
    let Some(RollbackBackend::Webhook(hook)) = &c.rollback.backend else {
        panic!("webhook expected")
    };
    assert_eq!(hook.headers["X-Key"].expose(), "hunter2-secret");
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("hunter2"),
        "secret in Debug output: {debug}"
    );
    assert!(debug.contains("<redacted>"));
}

#[test]
fn header_file_problems_name_the_file_but_never_its_contents() {
    let empty = TempFile::new("empty", "\n");
    let multi = TempFile::new("multi", "line1-secret\nline2-secret\n");
    let yaml = format!(
        "{MINIMAL}    header_files: {{ A: {}, B: {}, C: /nonexistent/backstop/key }}\n",
        empty.path(),
        multi.path()
    );
    let all = errors(&yaml);
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_eq!(
        all[0],
        format!("targets[0].header_files.A: file {} is empty", empty.path())
    );
    assert!(all[1].starts_with("targets[0].header_files.B: the file contains a line break"));
    assert!(
        all[2].starts_with("targets[0].header_files.C: cannot read /nonexistent/backstop/key: "),
        "{}",
        all[2]
    );
    assert!(all.iter().all(|e| !e.contains("secret")), "{all:#?}");
}

#[test]
fn load_reads_a_file_and_names_it_when_it_cannot() {
    let file = TempFile::new("backstop.yaml", MINIMAL);
    let config = load(file.0.as_path()).expect("valid file");
    assert_eq!(config.service, "checkout");

    let missing = std::path::Path::new("/nonexistent/backstop.yaml");
    let errors = load(missing).expect_err("missing file");
    assert_eq!(errors.0.len(), 1);
    let message = errors.to_string();
    assert!(
        message.starts_with("cannot read configuration file /nonexistent/backstop.yaml: "),
        "{message}"
    );
}

#[test]
fn parse_uses_only_the_given_environment() {
    // `parse` must not fall back to the process environment.
    let no_env = |_: &str| None;
    let yaml = format!("{MINIMAL}listen: ${{PATH}}\n");
    let errors = parse(&yaml, &no_env).expect_err("PATH is unset here");
    assert_eq!(errors.0[0].message, "environment variable PATH is not set");
    assert_eq!(env("PATH"), None);
}
