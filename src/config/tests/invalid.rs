//! Mistakes outside the rules: each comes back with its path and the bad
//! value, all of them at once, in document order.

use super::{MINIMAL, errors, errors_with, only_error};
use crate::config::{GitOps, Kubernetes, RollbackBackend};

#[test]
fn three_mistakes_give_exactly_three_errors() {
    let yaml = r#"
service: checkout
targets:
  - name: health
    url: http://127.0.0.1:8080/health
  - name: ready
    url: http://127.0.0.1:8080/ready
    interval: 1s
    timeout: 3s
slos:
  - name: availability
    objective: 100
rules:
  - name: fast-burn
    when: { burn_rate: { slo: avail, factor: 14.4 } }
"#;
    assert_eq!(
        errors(yaml),
        vec![
            "targets[1].timeout: 3s is longer than interval 1s",
            "slos[0].objective: must be between 0% and 100% (both excluded), got 100%",
            r#"rules[0].when.burn_rate.slo: no SLO named "avail""#,
        ]
    );
}

#[test]
fn errors_come_in_document_order() {
    // Keys out of the contract's order, and a problem in each.
    let yaml = r#"
rules:
  - when: { consecutive_failures: 0, target: "bad name" }
    name: r
zzz: 1
targets:
  - url: http://127.0.0.1/health
    timeout: 0s
    name: "bad name"
service: checkout
"#;
    assert_eq!(
        errors(yaml),
        vec![
            "rules[0].when.consecutive_failures: must be at least 1, got 0",
            "zzz: unknown field (expected one of: service, listen, targets, slos, rules, rollback, page, annotate, otlp, admin, tls, traffic)",
            "targets[0].timeout: must be greater than 0, got 0s",
            r#"targets[0].name: "bad name" is not a valid name (use letters, digits, ".", "_" and "-")"#,
        ]
    );
}

#[test]
fn unknown_keys_at_every_depth_with_suggestions() {
    let yaml = r#"
servce: checkout
targets:
  - name: health
    url: http://127.0.0.1:8080/health
    intervall: 1s
    expect: { staus: 200 }
rollback:
  webhook: { url: "http://deployer", timout: 1s }
  colour: blue
"#;
    assert_eq!(
        errors(yaml),
        vec![
            "service: is required",
            r#"servce: unknown field (expected one of: service, listen, targets, slos, rules, rollback, page, annotate, otlp, admin, tls, traffic); did you mean "service"?"#,
            r#"targets[0].intervall: unknown field (expected one of: name, url, interval, timeout, warmup, method, headers, header_files, follow_redirects, expect, scrape); did you mean "interval"?"#,
            r#"targets[0].expect.staus: unknown field (expected one of: status, body_contains, json, max_latency); did you mean "status"?"#,
            r#"rollback.webhook.timout: unknown field (expected one of: url, headers, header_files, timeout); did you mean "timeout"?"#,
            "rollback.colour: unknown field (expected one of: kubernetes, webhook, bake, cooldown, dry_run)",
        ]
    );
    let burn = errors_with(
        "slos: [{name: a, objective: 99}]\nrules: [{name: r, when: {burn_rate: {slo: a, factor: 2, facter: 2}}}]\n",
    );
    assert_eq!(
        burn,
        vec![
            r#"rules[0].when.burn_rate.facter: unknown field (expected one of: slo, short, long, factor, min_samples); did you mean "factor"?"#
        ]
    );
}

#[test]
fn bad_yaml_keeps_line_and_column() {
    let e = only_error("service: checkout\ntargets: [\n  {name: a\n");
    assert!(e.starts_with("invalid YAML: "), "{e}");
    assert!(e.contains("line "), "{e}");
    let e = only_error("service: a\nservice: b\n");
    assert!(e.contains("duplicate mapping key: service"), "{e}");
}

#[test]
fn wrong_structure_has_a_path() {
    assert_eq!(
        only_error("service: x\ntargets: { name: health }\n"),
        "targets: invalid type: map, expected a sequence"
    );
    assert_eq!(
        only_error(&format!("{MINIMAL}    expect: [200]\n")),
        "targets[0].expect: invalid type: sequence, expected a map of expectations"
    );
    assert_eq!(
        only_error("- service\n- targets\n"),
        "invalid type: sequence, expected a map of configuration sections"
    );
}

#[test]
fn empty_file_says_what_is_required() {
    assert_eq!(
        errors("# nothing yet\n"),
        vec![
            "service: is required",
            "targets: is required (list at least one endpoint to probe)",
        ]
    );
    assert_eq!(
        only_error("service: x\ntargets: []\n"),
        "targets: must list at least one target"
    );
}

#[test]
fn durations_need_a_unit_a_positive_value_and_a_known_format() {
    let target = |field: &str| errors(&format!("{MINIMAL}    {field}\n"));
    assert_eq!(
        target("interval: 5"),
        vec![r#"targets[0].interval: 5 has no unit; write e.g. "5s""#]
    );
    assert_eq!(
        target("interval: 0s"),
        vec!["targets[0].interval: must be greater than 0, got 0s"]
    );
    assert_eq!(
        target("interval: soon"),
        vec![
            r#"targets[0].interval: "soon" is not a duration; write e.g. "500ms", "5s" or "1h30m""#
        ]
    );
    assert_eq!(
        target("interval: [5s]"),
        vec![r#"targets[0].interval: expected a duration like "5s", got a list"#]
    );
    let fine = super::ok(&format!(
        "{MINIMAL}    interval: 1h30m\n    timeout: 1m 30s\n    warmup: 0s\n"
    ));
    assert_eq!(fine.targets[0].timeout, std::time::Duration::from_secs(90));
}

/// `1ns` is not a unit backstop takes; `1ms` is mostly `1m` mistyped. Both
/// are refused, with the likely unit suggested.
#[test]
fn interval_and_timeout_have_floors_and_suggest_the_unit() {
    let target = |fields: &str| errors(&format!("{MINIMAL}    {fields}\n"));
    assert_eq!(
        target("interval: 1ns"),
        vec![
            r#"targets[0].interval: "1ns" is not a duration: nothing shorter than a millisecond is accepted; did you mean "1s"? (units: ms, s, m, h, d)"#
        ]
    );
    assert_eq!(
        target("interval: 1ms"),
        vec!["targets[0].interval: 1ms is below the 100ms floor; did you mean 1m?"]
    );
    assert_eq!(
        target("interval: 99ms"),
        vec!["targets[0].interval: 99ms is below the 100ms floor; did you mean 99m?"]
    );
    // The suggestion must fit below the interval: 1m would not.
    assert_eq!(
        target("interval: 5s\n    timeout: 1ms"),
        vec!["targets[0].timeout: 1ms is below the 10ms floor; did you mean 1s?"]
    );
    assert_eq!(
        target("interval: 500ms\n    timeout: 2ms"),
        vec!["targets[0].timeout: 2ms is below the 10ms floor"]
    );
    assert_eq!(
        target("interval: 50ms 40ms"),
        vec!["targets[0].interval: 50ms 40ms is below the 100ms floor"]
    );
    let fine = super::ok(&format!(
        "{MINIMAL}    interval: 100ms\n    timeout: 10ms\n"
    ));
    assert_eq!(
        (fine.targets[0].interval, fine.targets[0].timeout),
        (
            std::time::Duration::from_millis(100),
            std::time::Duration::from_millis(10)
        )
    );
}

#[test]
fn follow_redirects_is_none_or_same_origin() {
    let target = |value: &str| errors(&format!("{MINIMAL}    follow_redirects: {value}\n"));
    assert_eq!(
        target("same_origin"),
        vec![
            r#"targets[0].follow_redirects: "same_origin" is not one of none, same-origin; did you mean "same-origin"?"#
        ]
    );
    assert_eq!(
        target("always"),
        vec![r#"targets[0].follow_redirects: "always" is not one of none, same-origin"#]
    );
    assert_eq!(
        target("true"),
        vec!["targets[0].follow_redirects: expected one of none, same-origin, got true"]
    );
}

#[test]
fn percentages_and_objectives() {
    let slo = |objective: &str| {
        let yaml = format!("{MINIMAL}slos: [{{name: a, objective: {objective}}}]\n");
        super::parse(&yaml, &super::env).map(|c| c.slos[0].objective)
    };
    assert_eq!(slo("99.9").ok(), Some(0.999));
    assert_eq!(slo("\"99.9%\"").ok(), Some(0.999));
    assert_eq!(slo("99.5%").ok(), Some(0.995));
    let errors = |objective: &str| slo(objective).expect_err("invalid").to_string();
    assert_eq!(
        errors("0"),
        "slos[0].objective: must be between 0% and 100% (both excluded), got 0%"
    );
    assert_eq!(
        errors("high"),
        r#"slos[0].objective: expected a percentage like 99.9 or "5%", got "high""#
    );
    assert_eq!(errors("~"), "slos[0].objective: is required");
    assert!(
        errors("99.99999999999999").contains("both excluded"),
        "rounds to 100%"
    );
}

#[test]
fn duplicate_names_point_at_the_first_one() {
    let yaml = format!(
        "{MINIMAL}  - name: health\n    url: http://127.0.0.1/again\n\
         slos: [{{name: a, objective: 99}}, {{name: a, objective: 98}}]\n\
         rules: [{{name: r, when: {{consecutive_failures: 1, target: health}}}}, \
                 {{name: r, when: {{consecutive_failures: 2, target: health}}}}]\n"
    );
    assert_eq!(
        errors(&yaml),
        vec![
            r#"targets[1].name: "health" is already the name of targets[0]"#,
            r#"slos[1].name: "a" is already the name of slos[0]"#,
            r#"rules[1].name: "r" is already the name of rules[0]"#,
        ]
    );
}

#[test]
fn targets_urls_methods_headers_and_expectations() {
    let yaml = r#"
service: "check out"
listen: localhost:9464
targets:
  - name: a
    url: ftp://127.0.0.1/x
    method: FETCH
    headers: { "Bad Header": x, X-Num: 5, x-dup: a, X-Dup: b }
    expect:
      status: [200, 99, "abc"]
      body_contains: ""
      json: { "a..b": 1, "ok.path": 2 }
      max_latency: 0s
  - name: b
    url: /relative
    timeout: 6s
"#;
    assert_eq!(
        errors(yaml),
        vec![
            r#"service: "check out" is not a valid name (use letters, digits, ".", "_" and "-")"#,
            r#"listen: "localhost:9464" is not an IP address and port like 0.0.0.0:9464"#,
            r#"targets[0].url: "ftp://127.0.0.1/x" must use http or https, not ftp"#,
            r#"targets[0].method: "FETCH" is not a supported method (one of: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)"#,
            r#"targets[0].headers["Bad Header"]: "Bad Header" is not a valid HTTP header name"#,
            "targets[0].headers.X-Num: expected text, got a number (not shown: it may be a secret); quote it",
            "targets[0].headers.x-dup: header x-dup is also set as headers.X-Dup (header names are case-insensitive)",
            "targets[0].expect.status[1]: must be between 100 and 599, got 99",
            r#"targets[0].expect.status[2]: expected a whole number, got "abc""#,
            r#"targets[0].expect.body_contains: must not be empty (every body contains "")"#,
            r#"targets[0].expect.json["a..b"]: "a..b" is not a dotted path like "data.items.0.id""#,
            "targets[0].expect.max_latency: must be greater than 0, got 0s",
            "targets[1].url: \"/relative\" is not an absolute URL: relative URL without a base",
            "targets[1].timeout: 6s is longer than interval 5s",
        ]
    );
    let long = "x".repeat(64);
    assert_eq!(
        only_error(&format!(
            "service: {long}\ntargets: [{{name: a, url: \"http://a\"}}]\n"
        )),
        format!(
            "service: \"{}\"… is 64 characters long; at most 63 are allowed",
            &long[..60]
        )
    );
}

#[test]
fn a_header_in_both_maps_is_an_error() {
    assert_eq!(
        errors_with_target(
            "headers: { Authorization: x }\n    header_files: { authorization: /etc/hostname }"
        ),
        vec![
            "targets[0].header_files.authorization: header authorization is also set as headers.Authorization (header names are case-insensitive)"
        ]
    );
}

fn errors_with_target(fields: &str) -> Vec<String> {
    errors(&format!("{MINIMAL}    {fields}\n"))
}

#[test]
fn rollback_backends() {
    let k8s = |extra: &str| {
        crate::config::parse(
            &format!("{MINIMAL}rollback: {{ kubernetes: {extra} }}\n"),
            &|_| None,
        )
        .map(|c| c.rollback.backend)
    };
    assert_eq!(
        k8s("{ deployment: checkout }").unwrap(),
        Some(RollbackBackend::Kubernetes(Kubernetes {
            deployment: Some("checkout".into()),
            namespace: None,
            timeout: std::time::Duration::from_secs(10),
            container: "backstop".into(),
            token_file: None,
            gitops: GitOps::Suspend,
            argocd_namespace: "argocd".into(),
        }))
    );
    // Everything is optional: the Deployment is found through the pod's owners.
    assert_eq!(
        k8s("{}").unwrap(),
        Some(RollbackBackend::Kubernetes(Kubernetes {
            deployment: None,
            namespace: None,
            timeout: std::time::Duration::from_secs(10),
            container: "backstop".into(),
            token_file: None,
            gitops: GitOps::Suspend,
            argocd_namespace: "argocd".into(),
        }))
    );
    assert_eq!(
        errors_with("rollback: { kubernetes: { deployment: Checkout_1 } }\n"),
        vec![
            r#"rollback.kubernetes.deployment: "Checkout_1" is not a Kubernetes object name (lower-case letters, digits, '-' and '.')"#
        ]
    );
    assert_eq!(
        errors_with(
            "rollback:\n  kubernetes: { deployment: checkout, namspace: x }\n  webhook: { url: \"http://d\" }\n  bake: 0s\n  cooldown: 0s\n  dry_run: yes\n"
        ),
        vec![
            "rollback: set either kubernetes or webhook, not both",
            r#"rollback.kubernetes.namspace: unknown field (expected one of: deployment, namespace, timeout, container, token_file, gitops, argocd_namespace); did you mean "namespace"?"#,
            "rollback.bake: must be greater than 0, got 0s",
            r#"rollback.dry_run: expected true or false, got "yes""#,
        ]
    );
    assert_eq!(
        errors_with("rollback: { webhook: { timeout: 1s } }\n"),
        vec!["rollback.webhook.url: is required"]
    );
    let bounded = k8s("{ timeout: 500ms }").unwrap();
    assert!(
        matches!(bounded, Some(RollbackBackend::Kubernetes(k)) if k.timeout == std::time::Duration::from_millis(500))
    );
    assert_eq!(
        errors_with("rollback: { kubernetes: { timeout: 0s } }\n"),
        vec!["rollback.kubernetes.timeout: must be greater than 0, got 0s"]
    );
    let gitops = |v: &str| match k8s(&format!("{{ gitops: {v} }}")) {
        Ok(Some(RollbackBackend::Kubernetes(k))) => k.gitops,
        other => panic!("{other:?}"),
    };
    assert_eq!(gitops("page"), GitOps::Page);
    assert_eq!(gitops("ignore"), GitOps::Ignore);
    assert_eq!(gitops("suspend"), GitOps::Suspend);
    match k8s("{ argocd_namespace: openshift-gitops }") {
        Ok(Some(RollbackBackend::Kubernetes(k))) => {
            assert_eq!(k.argocd_namespace, "openshift-gitops")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        errors_with("rollback: { kubernetes: { gitops: pause } }\n"),
        vec![r#"rollback.kubernetes.gitops: "pause" is not one of suspend, page, ignore"#]
    );
}

#[test]
fn rollback_token_file_is_read_and_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("token");
    std::fs::write(&good, "eyJhbGciOiJSUzI1NiJ9.payload.signature").unwrap();
    let config = crate::config::parse(
        &format!(
            "{MINIMAL}rollback: {{ kubernetes: {{ token_file: {} }} }}\n",
            good.display()
        ),
        &|_| None,
    )
    .unwrap();
    match config.rollback.backend {
        Some(RollbackBackend::Kubernetes(k)) => assert_eq!(k.token_file, Some(good)),
        other => panic!("{other:?}"),
    }
    let newline = dir.path().join("newline");
    std::fs::write(&newline, "abc.def.ghi\n").unwrap();
    let got = errors_with(&format!(
        "rollback: {{ kubernetes: {{ token_file: {} }} }}\n",
        newline.display()
    ));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(&format!(
            "rollback.kubernetes.token_file: the token in {} has spaces or a newline around it",
            newline.display()
        )),
        "{got:?}"
    );
    let got =
        errors_with("rollback: { kubernetes: { token_file: /nonexistent/backstop/token } }\n");
    assert!(
        got[0].starts_with(
            "rollback.kubernetes.token_file: cannot read /nonexistent/backstop/token: No such file"
        ),
        "{got:?}"
    );
    let got = errors_with(&format!(
        "rollback: {{ kubernetes: {{ token_file: {} }} }}\n",
        dir.path().display()
    ));
    assert!(
        got[0].ends_with("it is a directory, not a regular file"),
        "{got:?}"
    );
}

#[test]
fn pagerduty_timeout() {
    let pd = |extra: &str| {
        format!(
            "page: {{ pagerduty: {{ routing_key: 0123456789abcdef0123456789abcdef{extra} }} }}\n"
        )
    };
    let parsed = |extra: &str| {
        crate::config::parse(&format!("{MINIMAL}{}", pd(extra)), &|_| None)
            .map(|c| c.page.pagerduty.unwrap().timeout)
    };
    assert_eq!(parsed("").unwrap(), std::time::Duration::from_secs(10));
    assert_eq!(
        parsed(", timeout: 2s").unwrap(),
        std::time::Duration::from_secs(2)
    );
    assert_eq!(
        errors_with(&pd(", timeout: 0s")),
        vec!["page.pagerduty.timeout: must be greater than 0, got 0s"]
    );
}

#[test]
fn receiver_sections_are_checked_in_full() {
    let yaml = format!(
        "{MINIMAL}page:\n  pagerduty: {{ routing_key_file: /etc/backstop/pd, url: https://events.pagerduty.com/v2/enqueue }}\n  \
         alertmanager: {{ url: http://alertmanager:9093 }}\n\
         annotate: {{ grafana: {{ url: http://grafana:3000, token_file: /etc/backstop/grafana, tokn: x }} }}\n\
         otlp: {{ endpoint: http://otel-collector:4317 }}\n"
    );
    assert_eq!(
        errors(&yaml),
        vec![
            "page.pagerduty.routing_key_file: cannot read /etc/backstop/pd: No such file or directory (os error 2)",
            "annotate.grafana.token_file: cannot read /etc/backstop/grafana: No such file or directory (os error 2)",
            r#"annotate.grafana.tokn: unknown field (expected one of: url, token_file, max_per_minute)"#,
        ]
    );
}

#[test]
fn alertmanager_receivers() {
    let page = |section: &str| {
        crate::config::parse(
            &format!("{MINIMAL}page: {{ alertmanager: {section} }}\n"),
            &|_| None,
        )
        .map(|c| c.page.alertmanager.unwrap())
    };
    let one = page("{ url: \"http://am:9093\" }").unwrap();
    assert_eq!(one.urls.len(), 1);
    assert_eq!(one.resend, std::time::Duration::from_secs(60));
    let pair = page("{ url: [\"http://am-0:9093\", \"http://am-1:9093\"], resend_interval: 30s }")
        .unwrap();
    assert_eq!(pair.urls.len(), 2);
    assert_eq!(pair.resend, std::time::Duration::from_secs(30));
    assert_eq!(
        errors_with(
            "page: { alertmanager: { url: [\"http://am-0:9093\", \"am-1\"], resend_interval: 0s } }\n"
        ),
        vec![
            r#"page.alertmanager.url[1]: "am-1" is not an absolute URL: relative URL without a base"#,
            "page.alertmanager.resend_interval: must be greater than 0, got 0s",
        ]
    );
}

#[test]
fn json_paths_with_brackets_are_refused_with_a_hint() {
    let yaml = format!(
        "{MINIMAL}    expect:\n      json: {{ \"data.items[0].id\": 1, \"[\": 2, \"data.items.0.id\": 3 }}\n"
    );
    assert_eq!(
        errors(&yaml),
        vec![
            r#"targets[0].expect.json["data.items[0].id"]: "data.items[0].id" has brackets; write array indexes as numbers, like "data.items.0.id""#,
            r#"targets[0].expect.json["["]: "[" has brackets; write array indexes as numbers, like "data.items.0.id""#,
        ]
    );
}

#[test]
fn non_finite_numbers_are_errors_at_their_field_and_the_rest_is_checked() {
    let yaml = format!(
        "{MINIMAL}    interval: 0s\nslos:\n  - name: a\n    objective: 1e400\n  - name: b\n    objective: .nan\n"
    );
    assert_eq!(
        errors(&yaml),
        vec![
            "targets[0].interval: must be greater than 0, got 0s",
            "slos[0].objective: .inf is not a finite number (quote it if it is text; \
             numbers beyond ±1.8e308 are infinite)",
            "slos[1].objective: .nan is not a finite number (quote it if it is text)",
        ]
    );
}

#[test]
fn latency_thresholds_must_be_below_the_timeout() {
    let all = errors(
        r#"
service: checkout
targets:
  - { name: slow, url: "http://127.0.0.1:1/slow", interval: 2s, timeout: 1s, expect: { max_latency: 2s } }
  - { name: fast, url: "http://127.0.0.1:1/fast", interval: 2s, timeout: 1s, expect: { max_latency: 999ms } }
slos:
  - { name: speed, objective: 95, latency_threshold: 1s, targets: [fast, slow] }
  - { name: fine, objective: 95, latency_threshold: 900ms }
rules:
  - { name: p95, when: { latency: { target: slow, above: 1s } } }
  - { name: p99, when: { latency: { target: fast, percentile: 99, above: 900ms } } }
"#,
    );
    let why = "a probe is cut off at its timeout and counts at the time it took";
    assert_eq!(
        all,
        vec![
            format!(
                "targets[0].expect.max_latency: 2s is not below this target's timeout 1s: {why}, \
                 so no answer is ever slower and this could never fail a probe; lower it below 1s or raise timeout"
            ),
            format!(
                "slos[0].latency_threshold: 1s is not below the timeout 1s of target \"fast\": {why}, \
                 so every answer would be fast enough and the SLO would measure only availability; lower it below 1s"
            ),
            format!(
                "rules[0].when.latency.above: 1s is not below the timeout 1s of target \"slow\": {why}, \
                 so no percentile can ever be above it and the rule could never fire; lower it below 1s"
            ),
        ]
    );
}
