//! Warnings: valid values that are almost certainly meant otherwise, each at
//! its path with the item's name; and the offline check, which reads neither
//! variables nor files but lists them.

use super::{MINIMAL, env};
use crate::config::{Needed, check};

/// Every warning as `located` prints it; the file must be valid.
fn warnings(yaml: &str) -> Vec<String> {
    let checked = check(yaml, Some(&env));
    assert!(checked.errors.is_empty(), "{:#?}", checked.errors);
    assert!(checked.config.is_some());
    checked.warnings.iter().map(|w| w.located()).collect()
}

#[test]
fn an_objective_below_50_is_a_fraction_typed_for_a_percentage() {
    let yaml = format!(
        "{MINIMAL}slos:\n  - {{ name: availability, objective: 0.999 }}\n  - {{ name: loose, objective: 20 }}\n  - {{ name: fine, objective: 50 }}\n"
    );
    assert_eq!(
        warnings(&yaml),
        vec![
            r#"slos[0] "availability".objective: 0.999 means 0.999 % of probes must be good, which almost anything meets; objectives are percentages: for 99.9 % write 99.9"#,
            r#"slos[1] "loose".objective: 20 % lets 80 % of probes fail before the objective is missed; objectives are percentages (99.9 means 99.9 %)"#,
        ]
    );
}

#[test]
fn a_bare_above_below_1_is_a_percentage_not_a_fraction() {
    let rule = |above: &str| {
        warnings(&format!(
            "{MINIMAL}rules:\n  - name: errors\n    when: {{ error_rate: {{ above: {above} }} }}\n"
        ))
    };
    assert_eq!(
        rule("0.1"),
        vec![
            r#"rules[0] "errors".when.error_rate.above: 0.1 means 0.1 % of probes (1 in 1000), not 10 %: a bare number is a percentage; write "10%" if that is what you meant, or "0.1%" to keep it and silence this warning"#
        ]
    );
    assert_eq!(rule(r#""0.5""#).len(), 1, "text without % is bare too");
    assert!(rule(r#""0.1%""#).is_empty(), "the % sign says it is meant");
    assert!(rule("1").is_empty());
    assert!(rule("5").is_empty());
}

#[test]
fn a_window_longer_than_a_day_is_judged_on_far_less() {
    let yaml = format!(
        "{MINIMAL}slos:\n  - {{ name: a, objective: 99 }}\nrules:\n  - name: slow-burn\n    when: {{ burn_rate: {{ slo: a, short: 6h, long: 3d, factor: 1 }} }}\n  - name: day\n    when: {{ error_rate: {{ above: 5%, window: 1d }} }}\n"
    );
    assert_eq!(
        warnings(&yaml),
        vec![
            r#"rules[0] "slow-burn".when.burn_rate.long: 3days is longer than a day: backstop keeps its windows in memory and every new pod starts them empty, so this rule judges on far less than 3days; leave long windows to Prometheus (backstop alert-rules)"#
        ]
    );
}

#[test]
fn the_example_has_nothing_to_warn_about() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/checkout.yaml");
    let yaml = std::fs::read_to_string(path).expect("example");
    let env = |name: &str| Some(format!("test-{name}"));
    let checked = check(&yaml, Some(&env));
    assert!(checked.errors.is_empty(), "{:#?}", checked.errors);
    assert!(checked.warnings.is_empty(), "{:#?}", checked.warnings);
}

#[test]
fn errors_name_the_rule_or_target_they_are_in() {
    let yaml = format!(
        "{MINIMAL}rules:\n  - name: fast-burn\n    when: {{ burn_rate: {{ slo: avail, factor: 14.4 }} }}\n"
    );
    let checked = check(&yaml, Some(&env));
    let located: Vec<String> = checked.errors.iter().map(|e| e.located()).collect();
    assert_eq!(
        located,
        vec![r#"rules[0] "fast-burn".when.burn_rate.slo: no SLO named "avail""#]
    );
    // The machine path and the plain message stay as they were.
    assert_eq!(checked.errors[0].path, "rules[0].when.burn_rate.slo");
}

#[test]
fn offline_reads_no_variable_and_no_file_but_lists_them() {
    let yaml = r#"
service: checkout
targets:
  - name: api
    url: "http://${APP_HOST}/api"
    interval: ${INTERVAL:-2s}
    headers: { Authorization: "Bearer ${APP_TOKEN}" }
    header_files: { X-Key: /nonexistent/key }
  - name: other
    url: http://127.0.0.1/other
    headers: { Authorization: "Bearer ${APP_TOKEN}" }
page:
  pagerduty: { routing_key_file: /nonexistent/pagerduty-key }
"#;
    // The variables are set here: offline must not look.
    let everything = |name: &str| (name != "INTERVAL").then(|| format!("set-{name}"));
    let online = check(yaml, Some(&everything));
    assert_eq!(online.errors.len(), 2, "{:#?}", online.errors);
    let offline = check(yaml, None);
    assert!(offline.errors.is_empty(), "{:#?}", offline.errors);
    assert!(offline.config.is_none(), "not a configuration to run");
    let needed = |name: &str, at: &str| Needed {
        name: name.to_owned(),
        at: at.to_owned(),
    };
    assert_eq!(
        offline.variables,
        vec![
            needed("APP_HOST", r#"targets[0] "api".url"#),
            needed("APP_TOKEN", r#"targets[0] "api".headers.Authorization"#),
            needed("APP_TOKEN", r#"targets[1] "other".headers.Authorization"#),
        ]
    );
    assert_eq!(
        offline.files,
        vec![
            needed("/nonexistent/key", r#"targets[0] "api".header_files.X-Key"#),
            needed(
                "/nonexistent/pagerduty-key",
                "page.pagerduty.routing_key_file"
            ),
        ]
    );
    assert_eq!(offline.counts, [2, 0, 0]);
}

#[test]
fn offline_still_finds_everything_that_needs_no_environment() {
    let yaml = r#"
service: checkout
targets:
  - name: api
    url: "http://${APP_HOST}/api"
    interval: 5M
rules:
  - name: r
    when: { error_rate: { above: "${LIMIT}", window: 5m, target: apu } }
"#;
    let offline = check(yaml, None);
    let errors: Vec<String> = offline.errors.iter().map(|e| e.located()).collect();
    assert_eq!(
        errors,
        vec![
            r#"targets[0] "api".interval: "5M" is not a duration: M is not minutes (nor months); did you mean "5m"? (units: ms, s, m, h, d)"#,
            r#"rules[0] "r".when.error_rate.target: no target named "apu"; did you mean "api"?"#,
        ]
    );
}
