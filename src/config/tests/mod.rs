//! End-to-end tests of `parse` and `load`: valid files with their defaults,
//! every kind of mistake with its exact path and message, and mangled input.

mod fuzz;
mod invalid;
mod rules;
mod security;
mod traffic;
mod valid;
mod warnings;

use super::{Config, parse};

/// The README's running example without the sections that need the
/// environment (Kubernetes rollback, restarts, paging, annotations, OTLP),
/// plus a few defaults to fill in.
const EXAMPLE: &str = r#"
service: checkout
listen: 0.0.0.0:9464
targets:
  - name: health
    url: http://127.0.0.1:8080/health
    interval: 1s
    timeout: 800ms
    warmup: 10s
    method: GET
    headers: { Authorization: "Bearer ${APP_TOKEN}" }
    follow_redirects: same-origin
    expect:
      status: [200]
      body_contains: "ok"
      json: { "status": "ok" }
      max_latency: 700ms
  - name: analytics-executive
    url: http://127.0.0.1:8080/api/v1/analytics/executive
    interval: 10s
    method: post
  - name: ready
    url: http://127.0.0.1:8080/ready
    interval: 1500ms
slos:
  - name: availability
    objective: 99.9
    targets: [health]
  - name: analytics-latency
    objective: 95
    latency_threshold: 200ms
    targets: [analytics-executive]
  - name: overall
    objective: "99.5%"
rules:
  - name: health-down
    when: { consecutive_failures: 3, target: health }
    do: [rollback]
  - name: fast-burn
    when: { burn_rate: { slo: availability, short: 1m, long: 5m, factor: 14.4 } }
    do: [rollback]
  - name: error-rate
    when: { error_rate: { above: "5%", window: 10m } }
  - name: slow-analytics
    when: { latency: { target: analytics-executive, percentile: 95, above: 200ms, window: 5m } }
    for: 1m
    do: []
rollback:
  webhook: { url: "http://deployer/rollback", headers: { X-Team: checkout } }
  bake: 30m
  cooldown: 10m
  dry_run: false
"#;

/// A small valid file to start mistakes from.
const MINIMAL: &str =
    "service: checkout\ntargets:\n  - name: health\n    url: http://127.0.0.1:8080/health\n";

fn env(name: &str) -> Option<String> {
    match name {
        "APP_TOKEN" => Some("t0ken".to_owned()),
        "PORT" => Some("8081".to_owned()),
        _ => None,
    }
}

fn ok(yaml: &str) -> Config {
    match parse(yaml, &env) {
        Ok(config) => config,
        Err(errors) => panic!("expected a valid configuration, got:\n{errors}"),
    }
}

/// Every error as `path: message`, in the order returned.
fn errors(yaml: &str) -> Vec<String> {
    match parse(yaml, &env) {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

/// The errors of MINIMAL with `extra` appended.
fn errors_with(extra: &str) -> Vec<String> {
    errors(&format!("{MINIMAL}{extra}"))
}

/// Asserts that exactly one error came back, and returns it.
fn only_error(yaml: &str) -> String {
    let mut all = errors(yaml);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.remove(0)
}
