//! Rule mistakes: conditions, references, thresholds that can never fire,
//! and actions this build cannot carry out.

use super::{MINIMAL, errors};

/// Errors of MINIMAL plus a second target `ready`, SLOs `availability`
/// (99.9) and `loose` (90), a webhook, and the given rules.
fn rule_errors(rules: &str) -> Vec<String> {
    errors(&format!(
        "{MINIMAL}  - name: ready\n    url: http://127.0.0.1:8080/ready\n\
         slos: [{{name: availability, objective: 99.9}}, {{name: loose, objective: 90}}]\n\
         rollback: {{ webhook: {{ url: \"http://deployer/rollback\" }} }}\n\
         rules:\n{rules}"
    ))
}

/// One rule `r` with the given `when` map.
fn when_errors(when: &str) -> Vec<String> {
    rule_errors(&format!("  - name: r\n    when: {when}\n"))
}

#[test]
fn exactly_one_condition() {
    let all = "consecutive_failures, error_rate, burn_rate, latency, restarts";
    assert_eq!(
        when_errors("{ target: health }"),
        vec![format!(
            "rules[0].when: needs exactly one condition (one of: {all}), found none"
        )]
    );
    assert_eq!(
        when_errors(
            "{ error_rate: { above: 5 }, latency: { above: 1s, percentile: 100 }, target: health }"
        ),
        vec![
            format!(
                "rules[0].when: needs exactly one condition (one of: {all}), found error_rate, latency"
            ),
            "rules[0].when.latency.percentile: must be between 0 and 100 (both excluded), got 100"
                .to_owned(),
        ]
    );
    assert_eq!(
        rule_errors("  - name: r\n"),
        vec!["rules[0].when: is required"]
    );
}

#[test]
fn target_references() {
    assert_eq!(
        when_errors("{ consecutive_failures: 3 }"),
        vec![
            "rules[0].when.target: is required with consecutive_failures (name the target to watch)"
        ]
    );
    assert_eq!(
        when_errors("{ consecutive_failures: 3, target: helth }"),
        vec![r#"rules[0].when.target: no target named "helth"; did you mean "health"?"#]
    );
    assert_eq!(
        when_errors("{ error_rate: { above: 5, target: health }, target: ready }"),
        vec![
            r#"rules[0].when.target: "ready" differs from error_rate.target "health"; give the target once"#
        ]
    );
    assert_eq!(
        when_errors("{ latency: { above: 1s } }"),
        vec!["rules[0].when.latency.target: is required (here or as when.target)"]
    );
    assert_eq!(
        when_errors("{ burn_rate: { slo: availability, factor: 2 }, target: health }"),
        vec![
            "rules[0].when.target: is not allowed with burn_rate (it watches the targets of its SLO)"
        ]
    );
    let slo = errors(&format!(
        "{MINIMAL}slos: [{{name: a, objective: 99, targets: [health, helth, health]}}, {{name: b, objective: 99, targets: []}}]\n"
    ));
    assert_eq!(
        slo,
        vec![
            r#"slos[0].targets[1]: no target named "helth"; did you mean "health"?"#,
            r#"slos[0].targets[2]: "health" is listed twice"#,
            "slos[1].targets: must name at least one target (leave it out for all targets)",
        ]
    );
}

#[test]
fn error_rate_thresholds() {
    assert_eq!(
        when_errors("{ error_rate: { above: 0 } }"),
        vec![
            "rules[0].when.error_rate.above: 0% would fire on any failure; use consecutive_failures"
        ]
    );
    assert_eq!(
        when_errors(r#"{ error_rate: { above: "150%", window: 0s, min_samples: 0 } }"#),
        vec![
            "rules[0].when.error_rate.above: must be between 0% and 100%, got 150%",
            "rules[0].when.error_rate.window: must be greater than 0, got 0s",
            "rules[0].when.error_rate.min_samples: must be at least 1, got 0",
        ]
    );
    assert_eq!(
        when_errors("{ error_rate: }"),
        vec!["rules[0].when.error_rate.above: is required"]
    );
}

#[test]
fn burn_rate_windows_slo_and_factor() {
    assert_eq!(
        when_errors("{ burn_rate: { slo: avail, short: 1h, long: 5m, factor: 0 } }"),
        vec![
            r#"rules[0].when.burn_rate.slo: no SLO named "avail""#,
            "rules[0].when.burn_rate.short: 1h is not shorter than long 5m",
            "rules[0].when.burn_rate.factor: must be greater than 0, got 0",
        ]
    );
    assert_eq!(
        when_errors("{ burn_rate: { slo: availability, short: 2h, factor: 2 } }"),
        vec!["rules[0].when.burn_rate.short: 2h is not shorter than long 1h"]
    );
    assert_eq!(
        when_errors("{ burn_rate: { slo: availability, short: 1h, long: 1h, factor: 2 } }"),
        vec!["rules[0].when.burn_rate.short: 1h is not shorter than long 1h"]
    );
    assert_eq!(
        when_errors("{ burn_rate: { slo: loose, factor: 14.4 } }"),
        vec![
            "rules[0].when.burn_rate.factor: burning 14.4 times the error budget of 10% (objective 90%) \
             needs 144% of probes to fail, which can never be exceeded; the rule could never fire"
        ]
    );
    assert_eq!(
        when_errors("{ burn_rate: { factor: \"fast\" } }"),
        vec![
            "rules[0].when.burn_rate.slo: is required",
            r#"rules[0].when.burn_rate.factor: expected a number, got "fast""#,
        ]
    );
}

#[test]
fn restarts_need_kubernetes() {
    let refused = "rules[0].when.restarts: needs rollback.kubernetes: restart counts come from the Kubernetes API";
    assert_eq!(
        when_errors("{ restarts: { above: 3, window: 10m } }"),
        vec![refused]
    );
    assert_eq!(
        when_errors("{ restarts: { above: -1, windw: 10m } }"),
        vec![
            refused.to_owned(),
            "rules[0].when.restarts.above: must be at least 0, got -1".to_owned(),
            r#"rules[0].when.restarts.windw: unknown field (expected one of: above, window, containers); did you mean "window"?"#.to_owned(),
        ]
    );
    let config = crate::config::parse(
        &format!(
            "{MINIMAL}rollback: {{ kubernetes: {{}} }}\nrules:\n  - {{ name: crashloop, when: {{ restarts: {{ above: 3 }} }}, do: [rollback] }}\n"
        ),
        &|_| None,
    )
    .unwrap();
    assert_eq!(
        config.rules[0].when,
        crate::config::Condition::Restarts {
            above: 3,
            window: std::time::Duration::from_secs(600),
            containers: crate::config::Containers::AllBut("backstop".into()),
        }
    );
}

/// The app's containers only: every one but backstop's own (named by
/// `rollback.kubernetes.container`, default `backstop`), or those named.
#[test]
fn restarts_count_the_apps_containers() {
    use crate::config::{Condition, Containers};
    let restarts = |kubernetes: &str, when: &str| {
        crate::config::parse(
            &format!(
                "{MINIMAL}rollback: {{ kubernetes: {kubernetes} }}
rules:
  - {{ name: crashloop, when: {{ restarts: {when} }} }}
"
            ),
            &|_| None,
        )
        .map(|c| c.rules[0].when.clone())
        .map_err(|e| e.to_string())
    };
    let containers = |c: Result<Condition, String>| match c {
        Ok(Condition::Restarts { containers, .. }) => Ok(containers),
        other => Err(format!("{other:?}")),
    };
    assert_eq!(
        containers(restarts("{ container: guard }", "{ above: 3 }")),
        Ok(Containers::AllBut("guard".into()))
    );
    assert_eq!(
        containers(restarts("{}", "{ above: 3, containers: [app, worker] }")),
        Ok(Containers::Only(vec!["app".into(), "worker".into()]))
    );
    assert_eq!(
        containers(restarts("{}", "{ above: 3, containers: app }")),
        Ok(Containers::Only(vec!["app".into()]))
    );
    assert_eq!(
        restarts("{ container: Guard }", "{ above: 3, containers: [app, app, \"a b\"] }"),
        Err([
            r#"rollback.kubernetes.container: "Guard" is not a container name (lower-case letters, digits and '-', at most 63)"#,
            r#"rules[0].when.restarts.containers[1]: "app" is listed twice"#,
            r#"rules[0].when.restarts.containers[2]: "a b" is not a container name (lower-case letters, digits and '-', at most 63)"#,
        ]
        .join("\n"))
    );
    assert!(
        restarts("{}", "{ above: 3, containers: [] }")
            .unwrap_err()
            .contains("must name at least one container")
    );
    let counts = Containers::AllBut("backstop".into());
    assert!(counts.counts("app") && !counts.counts("backstop"));
    assert_eq!(counts.describe(), "every container but backstop");
}

#[test]
fn actions_must_be_known_unique_and_supported() {
    let rule = |actions: &str| {
        rule_errors(&format!(
            "  - name: r\n    when: {{ consecutive_failures: 3, target: health }}\n    for: 0s\n    do: {actions}\n"
        ))
    };
    assert_eq!(
        rule("[rolback, rollback, rollback]"),
        vec![
            r#"rules[0].do[0]: unknown action "rolback" (valid: rollback, page); did you mean "rollback"?"#,
            r#"rules[0].do[2]: "rollback" is listed twice"#,
        ]
    );
    assert_eq!(
        rule("[page]"),
        vec![
            r#"rules[0].do[0]: "page" needs page.pagerduty, page.alertmanager, page.slack or page.webhook"#
        ]
    );
    let no_backend = errors(&format!(
        "{MINIMAL}rules: [{{name: r, when: {{consecutive_failures: 3, target: health}}, do: [rollback]}}]\n"
    ));
    assert_eq!(
        no_backend,
        vec![r#"rules[0].do[0]: "rollback" needs rollback.webhook (or rollback.kubernetes)"#]
    );
    assert_eq!(
        rule_errors(
            "  - name: r\n    when: { consecutive_failures: 3, target: health }\n    for: -1m\n"
        ),
        vec![r#"rules[0].for: "-1m" is not a duration; write e.g. "500ms", "5s" or "1h30m""#]
    );
}

#[test]
fn a_bad_action_does_not_hide_a_bad_severity() {
    assert_eq!(
        rule_errors(
            "  - name: r\n    when: { consecutive_failures: 3, target: health }\n    \
             do: [rolback]\n    severity: fatal\n"
        ),
        vec![
            r#"rules[0].do[0]: unknown action "rolback" (valid: rollback, page); did you mean "rollback"?"#,
            r#"rules[0].severity: "fatal" is not one of critical, error, warning, info"#,
        ]
    );
}
