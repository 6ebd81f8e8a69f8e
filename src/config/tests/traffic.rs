//! `targets[].scrape` and `traffic[]`: presets, `match`, and every mistake
//! with its path; traffic names standing where target names can.

use super::{errors, ok, only_error};
use crate::config::Condition;

const BASE: &str = r#"
service: checkout
targets:
  - name: health
    url: http://127.0.0.1:8080/health
  - name: app-metrics
    url: http://127.0.0.1:8080/metrics
    scrape: true
"#;

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

#[test]
fn explicit_selectors_preset_and_match() {
    let c = ok(&with(
        r#"
traffic:
  - name: api
    from: app-metrics
    requests: 'http_requests_total{path=~"/api/.*"}'
    errors: 'http_requests_total{path=~"/api/.*", code=~"5.."}'
    latency: 'http_request_duration_seconds{path=~"/api/.*"}'
  - name: orders
    preset: otel-http
    match: '{http_route="/api/orders"}'
  - name: spring
    preset: micrometer
  - name: plain
    preset: http-requests-total
    match: '{job="x"}'
  - name: not-404
    preset: http-requests-total
    match: '{code!="404"}'
"#,
    ));
    assert!(c.targets[1].scrape && !c.targets[0].scrape);
    assert_eq!(c.traffic.len(), 5);
    // A match whose every matcher accepts "" narrows a named selector.
    assert_eq!(
        c.traffic[4].requests.to_string(),
        r#"http_requests_total{code!="404"}"#
    );
    assert_eq!(c.traffic[0].from, 1);
    assert_eq!(
        c.traffic[0].errors.as_ref().unwrap().to_string(),
        r#"http_requests_total{path=~"/api/.*", code=~"5.."}"#
    );
    // `from` defaults to the only scrape target; `match` narrows each selector.
    let orders = &c.traffic[1];
    assert_eq!(orders.from, 1);
    assert_eq!(
        orders.requests.to_string(),
        r#"http_server_request_duration_seconds_count{http_route="/api/orders"}"#
    );
    assert_eq!(
        orders.errors.as_ref().unwrap().to_string(),
        r#"http_server_request_duration_seconds_count{http_response_status_code=~"5..", http_route="/api/orders"}"#
    );
    assert_eq!(
        orders.latency.as_ref().unwrap().to_string(),
        r#"http_server_request_duration_seconds{http_route="/api/orders"}"#
    );
    assert_eq!(
        c.traffic[2].errors.as_ref().unwrap().to_string(),
        r#"http_server_requests_seconds_count{status=~"5.."}"#
    );
    assert_eq!(
        c.traffic[3].latency.as_ref().unwrap().to_string(),
        r#"http_request_duration_seconds{job="x"}"#
    );
}

#[test]
fn traffic_names_stand_where_target_names_can() {
    let c = ok(&with(
        r#"
traffic:
  - name: api
    preset: http-requests-total
slos:
  - name: availability
    objective: 99.9
    targets: [api]
  - name: api-latency
    objective: 95
    latency_threshold: 200ms
    targets: [api, health]
  - name: probes
    objective: 99
rules:
  - name: api-errors
    when: { error_rate: { target: api, above: "5%", window: 2m } }
  - name: api-p95
    when: { latency: { target: api, percentile: 95, above: 200ms, window: 1m } }
  - name: everything
    when: { error_rate: { above: "5%" } }
"#,
    ));
    // Sources: health 0, app-metrics 1, then api 2.
    assert_eq!(c.sources(), 3);
    assert_eq!(c.source_name(2), "api");
    assert_eq!(c.traffic_index(2), Some(0));
    assert_eq!(c.traffic_index(1), None);
    assert_eq!(c.slos[0].targets, vec![2]);
    assert_eq!(c.slos[1].targets, vec![2, 0]);
    // Without targets: every probe target, never traffic.
    assert_eq!(c.slos[2].targets, vec![0, 1]);
    assert!(matches!(
        c.rules[0].when,
        Condition::ErrorRate {
            target: Some(2),
            ..
        }
    ));
    assert!(matches!(
        c.rules[1].when,
        Condition::Latency { target: 2, .. }
    ));
    assert!(matches!(
        c.rules[2].when,
        Condition::ErrorRate { target: None, .. }
    ));
}

#[test]
fn selector_mistakes_have_paths() {
    let got = errors(&with(
        r#"
traffic:
  - name: a
    requests: 'http_requests_total'
  - name: b
    requests: 'http_requests_total{code=~"(5.."}'
    errors: '{code="500"}'
    latency: 'http_request_duration_seconds{'
"#,
    ));
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(
        got[0].starts_with(r#"traffic[1].requests: "http_requests_total{code=~\"(5..\"}" is not a PromQL selector: column "#)
            && got[0].contains("invalid regex"),
        "{}",
        got[0]
    );
    assert_eq!(
        got[1],
        r#"traffic[1].errors: "{code=\"500\"}" has no metric name; write it first, as in 'http_requests_total{...}'"#
    );
    assert!(
        got[2].starts_with("traffic[1].latency: \"http_request_duration_seconds{\" is not a PromQL selector: column 31"),
        "{}",
        got[2]
    );
}

#[test]
fn preset_mistakes() {
    assert_eq!(
        only_error(&with("traffic:\n  - name: a\n    preset: otel-htp\n")),
        r#"traffic[0].preset: no preset named "otel-htp" (known: otel-http, micrometer, http-requests-total); did you mean "otel-http"?"#
    );
    assert_eq!(
        only_error(&with(
            "traffic:\n  - name: a\n    preset: otel-http\n    errors: 'x_total'\n"
        )),
        "traffic[0].preset: a preset gives requests, errors and latency; remove errors or the preset (use match to narrow a preset)"
    );
    assert_eq!(
        only_error(&with(
            "traffic:\n  - name: a\n    preset: otel-http\n    match: 'x{a=\"b\"}'\n"
        )),
        r#"traffic[0].match: "x{a=\"b\"}" names a metric; match only adds label matchers, as in '{http_route=~"/api/.*"}'"#
    );
    assert_eq!(
        only_error(&with("traffic:\n  - name: a\n")),
        "traffic[0].requests: is required (a counter selector such as 'http_requests_total'), or use a preset: otel-http, micrometer, http-requests-total"
    );
}

#[test]
fn from_mistakes() {
    assert_eq!(
        only_error(&with(
            "traffic:\n  - name: a\n    from: app-metric\n    preset: micrometer\n"
        )),
        r#"traffic[0].from: no scrape target named "app-metric"; did you mean "app-metrics"?"#
    );
    assert_eq!(
        only_error(&with(
            "traffic:\n  - name: a\n    from: health\n    preset: micrometer\n"
        )),
        r#"traffic[0].from: targets[0] ("health") is probed, not scraped; set scrape: true on it"#
    );
    let none = "service: s\ntargets:\n  - name: h\n    url: http://127.0.0.1/h\ntraffic:\n  - name: a\n    preset: micrometer\n";
    assert_eq!(
        only_error(none),
        "traffic[0].from: no target has scrape: true; add one for the app's /metrics and name it here"
    );
    let two = format!(
        "{BASE}  - name: other\n    url: http://127.0.0.1:9000/metrics\n    scrape: true\ntraffic:\n  - name: a\n    preset: micrometer\n"
    );
    assert_eq!(
        only_error(&two),
        r#"traffic[0].from: is required when several targets are scraped (one of "app-metrics", "other")"#
    );
}

#[test]
fn names_clash_with_targets_and_each_other() {
    let got = errors(&with(
        "traffic:\n  - name: health\n    preset: micrometer\n  - name: a\n    preset: micrometer\n  - name: a\n    preset: otel-http\n",
    ));
    assert_eq!(
        got,
        vec![
            r#"traffic[0].name: "health" is already the name of targets[0]; rules and SLOs name targets and traffic alike, so names must differ"#,
            r#"traffic[2].name: "a" is already the name of traffic[1]"#,
        ]
    );
}

#[test]
fn rules_and_slos_need_what_they_read() {
    let got = errors(&with(
        r#"
traffic:
  - name: api
    requests: http_requests_total
slos:
  - name: availability
    objective: 99.9
    targets: [api]
  - name: fast
    objective: 95
    latency_threshold: 200ms
    targets: [health, api]
rules:
  - name: e
    when: { error_rate: { target: api, above: "5%" } }
  - name: l
    when: { latency: { above: 200ms }, target: api }
  - name: c
    when: { consecutive_failures: 3, target: api }
"#,
    ));
    assert_eq!(
        got,
        vec![
            r#"slos[0].targets[0]: traffic "api" has no errors selector, which an SLO (good = requests - errors) needs; add traffic[0].errors or a preset"#,
            r#"slos[1].targets[1]: traffic "api" has no latency selector, which a latency SLO (good = requests within latency_threshold) needs; add traffic[0].latency or a preset"#,
            r#"rules[0].when.error_rate.target: traffic "api" has no errors selector, which error_rate needs; add traffic[0].errors or a preset"#,
            r#"rules[1].when.target: traffic "api" has no latency selector, which a latency rule needs; add traffic[0].latency or a preset"#,
            r#"rules[2].when.target: "api" is a traffic entry; consecutive_failures counts probes in a row, so name a probe target (use error_rate for traffic)"#,
        ]
    );
}

#[test]
fn scrape_targets_take_no_body_expectations() {
    let yaml = "service: s\ntargets:\n  - name: m\n    url: http://127.0.0.1/metrics\n    scrape: yes\n    expect: { body_contains: ok }\n";
    let got = errors(yaml);
    assert!(got[0].starts_with("targets[0].scrape: "), "{got:#?}");
    let yaml = "service: s\ntargets:\n  - name: m\n    url: http://127.0.0.1/metrics\n    scrape: true\n    expect: { body_contains: ok }\n";
    assert_eq!(
        only_error(yaml),
        "targets[0].expect.body_contains: does not apply to a scrape target (its body is the metrics exposition)"
    );
}

#[test]
fn unknown_traffic_keys_are_named() {
    assert_eq!(
        only_error(&with(
            "traffic:\n  - name: a\n    preset: micrometer\n    mach: '{a=\"b\"}'\n"
        )),
        r#"traffic[0].mach: unknown field (expected one of: name, from, requests, errors, latency, preset, match); did you mean "match"?"#
    );
}
