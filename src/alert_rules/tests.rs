use super::*;

#[test]
fn budgets_print_as_written() {
    assert_eq!(error_budget(0.999), 0.001);
    assert_eq!(error_budget(0.99), 0.01);
    assert_eq!(error_budget(0.9999), 0.0001);
    assert_eq!(error_budget(0.95), 0.05);
    assert_eq!(format!("{}", error_budget(0.999)), "0.001");
}

#[test]
fn thresholds_follow_the_objective() {
    let ratios = |objective| WINDOWS.map(|w| w.error_ratio_threshold(objective));
    assert_eq!(ratios(0.999), [0.0144, 0.006, 0.003, 0.001]);
    assert_eq!(ratios(0.99), [0.144, 0.06, 0.03, 0.01]);
    // At 90 % a 14.4x burn would need 144 % of probes to fail.
    assert_eq!(ratios(0.9), [1.44, 0.6, 0.3, 0.1]);
}

#[test]
fn budget_spent_matches_the_workbook() {
    let spent = WINDOWS.map(|w| w.budget_spent_percent());
    assert_eq!(spent, [2.0, 5.0, 10.0, 10.0]);
}

#[test]
fn le_matches_both_spellings_of_whole_bounds() {
    assert_eq!(le_matcher(0.2), "le=\"0.2\"");
    assert_eq!(le_matcher(1.0), "le=~\"1|1\\\\.0\"");
}

#[test]
fn the_duration_buckets_are_read_from_the_metric() {
    let b = duration_buckets();
    assert!(b.contains(&0.2) && b.contains(&1.0), "{b:?}");
}

#[test]
fn names_are_escaped_for_regex_and_promql() {
    assert_eq!(regex_escape("a.b|c"), "a\\.b\\|c");
    assert_eq!(promql_escape("a\\.b\""), "a\\\\.b\\\"");
    assert_eq!(quote("it's"), "'it''s'");
}

fn config(slos: &str) -> Config {
    let yaml = format!(
        "service: checkout\n\
             targets:\n\
             \x20 - {{ name: health, url: http://127.0.0.1:8080/health }}\n\
             \x20 - {{ name: analytics, url: http://127.0.0.1:8080/a }}\n\
             slos:\n{slos}"
    );
    crate::config::parse(&yaml, &|_| None).expect("valid test configuration")
}

#[test]
fn every_window_of_every_slo_is_recorded_and_alerted() {
    let c = config(
        "  - { name: availability, objective: 99.9 }\n\
             \x20 - { name: fast, objective: 99, latency_threshold: 200ms, targets: [analytics] }\n",
    );
    let out = generate(&c, Options::default());
    assert_eq!(out.matches("- record:").count(), 14, "{out}");
    assert_eq!(out.matches("- alert:").count(), 8, "{out}");
    assert!(out.contains("/ 0.001 > 14.4"), "{out}");
    assert!(out.contains("/ 0.01 > 14.4"), "{out}");
    assert!(out.contains("target=~\"analytics\", result=\"success\", le=\"0.2\""));
    assert!(out.contains("backstop_build_info{service=\"checkout\"}[3d]"));
    // All targets: no target matcher.
    assert!(out.contains("backstop_probes_total{result=\"failure\"}[5m]"));
}

#[test]
fn a_latency_threshold_between_buckets_is_left_out_with_the_reason() {
    let c = config("  - { name: slow, objective: 99, latency_threshold: 150ms }\n");
    let out = generate(&c, Options::default());
    assert!(out.contains("# SLO \"slow\" is left out"), "{out}");
    assert!(out.contains("no bucket bound at 0.15 s"), "{out}");
    assert!(out.contains("groups: []"), "{out}");
}

#[test]
fn a_traffic_slo_is_left_out_with_the_reason() {
    let yaml = "service: checkout\ntargets:\n  - { name: m, url: http://127.0.0.1/metrics, scrape: true }\n\
                    traffic:\n  - { name: api, preset: otel-http }\n\
                    slos:\n  - { name: a, objective: 99, targets: [api] }\n  - { name: p, objective: 99 }\n";
    let c = crate::config::parse(yaml, &|_| None).expect("valid test configuration");
    let out = generate(&c, Options::default());
    assert!(out.contains("# SLO \"a\" is left out"), "{out}");
    assert!(out.contains("traffic api"), "{out}");
    // The probe SLO beside it is still there.
    assert!(out.contains("slo=\"p\""), "{out}");
}

#[test]
fn an_impossible_window_is_left_out() {
    let c = config("  - { name: lax, objective: 90 }\n");
    let out = generate(&c, Options::default());
    assert_eq!(out.matches("- alert:").count(), 3, "{out}");
    assert!(out.contains("page 1h/5m: left out"), "{out}");
}

#[test]
fn all_services_drops_the_service_matcher() {
    let c = config("  - { name: availability, objective: 99.9 }\n");
    let out = generate(
        &c,
        Options {
            all_services: true,
            ..Options::default()
        },
    );
    assert!(out.contains("backstop_build_info[5m]"), "{out}");
    assert!(!out.contains("service=\"checkout\""), "{out}");
}

#[test]
fn a_prometheus_rule_holds_the_same_groups() {
    let c = config("  - { name: availability, objective: 99.9 }\n");
    let plain = generate(&c, Options::default());
    let wrapped = generate(
        &c,
        Options {
            prometheus_rule: true,
            ..Options::default()
        },
    );
    let plain: serde_json::Value = serde_saphyr::from_str(&plain).unwrap();
    let wrapped: serde_json::Value = serde_saphyr::from_str(&wrapped).unwrap();
    assert_eq!(wrapped["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(wrapped["kind"], "PrometheusRule");
    assert_eq!(wrapped["metadata"]["name"], "backstop-slo-checkout");
    assert_eq!(wrapped["spec"]["groups"], plain["groups"]);
}
