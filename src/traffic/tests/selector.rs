//! Selectors: the PromQL syntax they accept, Prometheus's matching
//! semantics, the regex shortcuts agreeing with the regex engine, and
//! errors that point at the column.

use std::borrow::Cow;

use proptest::prelude::*;
use regex::Regex;

use crate::traffic::{Label, MatchOp, Selector};

fn labels<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<Label<'a>> {
    pairs
        .iter()
        .map(|&(name, value)| Label {
            name,
            value: Cow::Borrowed(value),
        })
        .collect()
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn the_selectors_of_the_design() {
    let requests = sel(r#"http_requests_total{path=~"/api/.*"}"#);
    let errors = sel(r#"http_requests_total{path=~"/api/.*", code=~"5.."}"#);
    let api_500 = labels(&[("code", "500"), ("path", "/api/v1/x")]);
    let api_200 = labels(&[("code", "200"), ("path", "/api/v1/x")]);
    let health_503 = labels(&[("code", "503"), ("path", "/health")]);
    assert!(requests.matches("http_requests_total", &api_500));
    assert!(requests.matches("http_requests_total", &api_200));
    assert!(!requests.matches("http_requests_total", &health_503));
    assert!(!requests.matches("http_requests_created", &api_500));
    assert!(errors.matches("http_requests_total", &api_500));
    assert!(!errors.matches("http_requests_total", &api_200));
    // Anchored: "5.." is not "contains 5 and two more".
    assert!(!errors.matches(
        "http_requests_total",
        &labels(&[("code", "1500"), ("path", "/api/")])
    ));
    assert_eq!(requests.name(), Some("http_requests_total"));
}

#[test]
fn every_operator_and_a_missing_label() {
    let s = sel(r#"m{a="1", b!="2", c=~"x|y", d!~"z.*"}"#);
    let ops: Vec<MatchOp> = s.matchers().iter().map(|m| m.op()).collect();
    assert_eq!(
        ops,
        [
            MatchOp::Equal,
            MatchOp::NotEqual,
            MatchOp::Regex,
            MatchOp::NotRegex
        ]
    );
    assert!(s.matches("m", &labels(&[("a", "1"), ("c", "y"), ("d", "q")])));
    assert!(!s.matches("m", &labels(&[("a", "1"), ("b", "2"), ("c", "y")])));
    assert!(!s.matches("m", &labels(&[("a", "1"), ("c", "y"), ("d", "zz")])));
    // A missing label is "": `c` must be x or y, so it cannot be missing.
    assert!(!s.matches("m", &labels(&[("a", "1")])));
    assert!(sel(r#"m{gone=""}"#).matches("m", &[]));
    assert!(!sel(r#"m{gone!=""}"#).matches("m", &[]));
    assert!(sel(r#"m{gone=~".*"}"#).matches("m", &[]));
    assert!(!sel(r#"m{gone=~".+"}"#).matches("m", &[]));
}

#[test]
fn names_in_matchers_and_no_name() {
    let by_name = sel(r#"{__name__="up", job="a"}"#);
    assert_eq!(by_name.name(), Some("up"));
    assert!(by_name.matches("up", &labels(&[("job", "a")])));
    assert!(!by_name.matches("down", &labels(&[("job", "a")])));
    let name_re = sel(r#"{__name__=~"http_.*_total"}"#);
    assert_eq!(name_re.name(), None);
    assert!(name_re.matches("http_requests_total", &[]));
    assert!(!name_re.matches("grpc_requests_total", &[]));
    let any_metric = sel(r#"{http_route=~"/api/.*"}"#);
    assert!(any_metric.matches("whatever", &labels(&[("http_route", "/api/v1")])));
}

#[test]
fn strings_quotes_escapes_and_spacing() {
    let s = sel("  m { a = 'it\\'s' , b=`C:\\raw\\d+`, c=\"tab\\there\\u00e9\\x41\\101\", } ");
    let values: Vec<&str> = s.matchers().iter().map(|m| m.value()).collect();
    assert_eq!(values, ["it's", "C:\\raw\\d+", "tab\there\u{e9}AA"]);
    assert!(sel("m{}").matchers().is_empty());
    assert!(sel(r#"m{a=~"\\d+"}"#).matches("m", &labels(&[("a", "42")])));
}

#[test]
fn display_is_promql_that_parses_back() {
    for s in [
        r#"m{a="1", b!~"x|y"}"#,
        "m",
        r#"{c=~"a\\.b", d="q\"uote\nnl"}"#,
        r#"{__name__=~"a.*"}"#,
    ] {
        let parsed = sel(s);
        let shown = parsed.to_string();
        let again = sel(&shown);
        assert_eq!(again.to_string(), shown, "{s}");
        assert_eq!(again.name(), parsed.name());
    }
    assert_eq!(
        sel(r#"m{a = "1" ,b=~'x'}"#).to_string(),
        r#"m{a="1", b=~"x"}"#
    );
}

#[test]
fn a_preset_narrowed_by_match() {
    let preset = sel("http_server_request_duration_seconds_count");
    let narrowed = preset.and(&sel(r#"{http_route=~"/api/.*"}"#));
    assert_eq!(
        narrowed.to_string(),
        r#"http_server_request_duration_seconds_count{http_route=~"/api/.*"}"#
    );
    assert!(narrowed.matches(
        "http_server_request_duration_seconds_count",
        &labels(&[("http_route", "/api/x")])
    ));
    assert!(!narrowed.matches(
        "http_server_request_duration_seconds_count",
        &labels(&[("http_route", "/x")])
    ));
    // Two different names select nothing.
    assert!(!sel("a").and(&sel("b")).matches("a", &[]));
}

#[test]
fn errors_say_where_and_what() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 1, "empty selector"),
        ("m{", 3, "expected a label name or `}`"),
        (
            "m{a}",
            4,
            "expected `=`, `!=`, `=~` or `!~` after the label `a`",
        ),
        ("m{a==\"1\"}", 5, "expected a quoted string"),
        ("m{a=\"1\" b=\"2\"}", 9, "expected `,` or `}`"),
        ("m{a=\"1}", 5, "no closing \""),
        ("m{a=~\"(\"}", 6, "invalid regex"),
        ("m{a=~\"a)|(b\"}", 6, "invalid regex"),
        ("m{a=\"\\d\"}", 6, "unknown escape `\\d`"),
        ("m{a=\"\\x4\"}", 6, "invalid escape"),
        ("m{0a=\"1\"}", 3, "expected a label name"),
        ("m x", 3, "unexpected `x` after the selector"),
        ("m{__name__=\"x\"}", 3, "the metric name is given twice"),
        ("{a=~\".*\"}", 1, "does not match the empty string"),
        ("{a=\"\"}", 1, "does not match the empty string"),
        ("é{a=\"1\"}", 1, "unexpected `é`"),
    ];
    for &(input, column, what) in cases {
        let e = Selector::parse(input).unwrap_err();
        assert_eq!(e.column, column, "{input:?}: {e}");
        assert!(e.message.contains(what), "{input:?}: {e}");
    }
}

proptest! {
    /// The shortcuts for common regexes decide as `^(?s:RE)$` would.
    #[test]
    fn regex_shortcuts_agree_with_the_engine(
        pattern in "(\\.\\*|\\.\\+|[abc]{0,3}(\\.\\*)?|[abc]{1,2}(\\|[abc]{0,2}){0,3}|[abc.*+|]{0,6})",
        value in "[abc\n]{0,4}",
    ) {
        if let Ok(engine) = Regex::new(&format!("^(?s:{pattern})$")) {
            let s = Selector::parse(&format!("m{{l=~\"{pattern}\"}}")).unwrap();
            let l = labels(&[("l", &value)]);
            prop_assert_eq!(s.matches("m", &l), engine.is_match(&value), "pattern {:?}", pattern);
            let not = Selector::parse(&format!("m{{l!~\"{pattern}\"}}")).unwrap();
            prop_assert_eq!(not.matches("m", &l), !engine.is_match(&value));
        }
    }

    /// Any input ends in a selector or an error, never a panic.
    #[test]
    fn any_input_parses_or_errs(input in "\\PC{0,40}|[m{}=!~\"'`a-c,\\\\ ]{0,20}") {
        let _ = Selector::parse(&input);
    }
}
