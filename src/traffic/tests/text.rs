//! Text 0.0.4 read as Prometheus reads it: what it accepts (whitespace
//! anywhere, comments, optional commas), what it makes of it, and what it
//! refuses, with the line and column an on-call engineer needs.

use std::borrow::Cow;

use crate::traffic::{ErrorKind, Exposition, Format, MetricType, ParseError, Role, parse};

fn ok(body: &str) -> Exposition<'_> {
    parse(body.as_bytes(), Format::Text).unwrap_or_else(|e| panic!("{e}\n{body}"))
}

fn err(body: &str) -> ParseError {
    match parse(body.as_bytes(), Format::Text) {
        Ok(x) => panic!("accepted: {x:?}\n{body}"),
        Err(e) => e,
    }
}

/// (name, labels as `k=v` joined by `,`, value) of every sample.
fn flat<'e>(x: &'e Exposition<'_>) -> Vec<(&'e str, String, f64)> {
    x.samples()
        .iter()
        .map(|s| {
            let labels: Vec<String> = x
                .labels(s)
                .iter()
                .map(|l| format!("{}={}", l.name, l.value))
                .collect();
            (s.name, labels.join(","), s.value)
        })
        .collect()
}

#[test]
fn reads_what_prometheus_reads() {
    let body = "# HELP go_gc_duration_seconds GC pauses.\n\
        #\tTYPE go_gc_duration_seconds summary\n\
        go_gc_duration_seconds{quantile=\"0\"} 4.9351e-05\n\
        go_gc_duration_seconds{quantile=\"0.25\",} 7.4e-05\n\
        go_gc_duration_seconds{ quantile = \"0.5\" , a = \"b\" } 8.3e-05\n\
        go_gc_duration_seconds { quantile=\"0.9\" a=\"b\" } 9e-05\n\
        go_gc_duration_seconds_sum 1.5\n\
        go_gc_duration_seconds_count 99\n\
        \n\
        # a comment, and one that looks like metadata:\n\
        # HELPER not metadata\n\
        #\n\
        some:aggregate:rate5m{a_b=\"c\"}\t1\n\
        \t  go_goroutines 33  \t123123  \n\
        # HELP nohelp\n\
        _starts_with_underscore{_label=\"x\"} 1\n";
    let x = ok(body);
    assert_eq!(
        flat(&x),
        [
            ("go_gc_duration_seconds", "quantile=0".into(), 4.9351e-05),
            ("go_gc_duration_seconds", "quantile=0.25".into(), 7.4e-05),
            ("go_gc_duration_seconds", "quantile=0.5,a=b".into(), 8.3e-05),
            ("go_gc_duration_seconds", "quantile=0.9,a=b".into(), 9e-05),
            ("go_gc_duration_seconds_sum", String::new(), 1.5),
            ("go_gc_duration_seconds_count", String::new(), 99.0),
            ("some:aggregate:rate5m", "a_b=c".into(), 1.0),
            ("go_goroutines", String::new(), 33.0),
            ("_starts_with_underscore", "_label=x".into(), 1.0),
        ]
    );
    let summary = &x.families()[0];
    assert_eq!(
        (summary.name, summary.kind),
        ("go_gc_duration_seconds", MetricType::Summary)
    );
    assert_eq!(summary.help.as_deref(), Some("GC pauses."));
    let roles: Vec<Role> = x.samples_of(summary).iter().map(|s| s.role).collect();
    assert_eq!(
        roles,
        [
            Role::Quantile,
            Role::Quantile,
            Role::Quantile,
            Role::Quantile,
            Role::Sum,
            Role::Count
        ]
    );
    // A sample whose name no metadata announced is a family of its own.
    let names: Vec<(&str, MetricType)> = x.families().iter().map(|f| (f.name, f.kind)).collect();
    assert_eq!(
        names,
        [
            ("go_gc_duration_seconds", MetricType::Summary),
            ("some:aggregate:rate5m", MetricType::Unknown),
            ("go_goroutines", MetricType::Unknown),
            ("nohelp", MetricType::Unknown),
            ("_starts_with_underscore", MetricType::Unknown),
        ]
    );
    assert_eq!(x.families()[3].help, None);
    assert_eq!(x.samples()[7].timestamp, Some(123.123));
    assert_eq!(x.samples()[0].timestamp, None);
}

#[test]
fn types_roles_and_histogram_bounds() {
    let body = "# TYPE http_requests_total counter\n\
        http_requests_total{code=\"200\"} 1027 1395066363000\n\
        # TYPE latency_seconds histogram\n\
        latency_seconds_bucket{le=\"0.1\"} 3\n\
        latency_seconds_bucket{le=\"1e0\"} 5\n\
        latency_seconds_bucket{le=\"+Inf\"} 6\n\
        latency_seconds_bucket{le=\"fast\"} 6\n\
        latency_seconds_sum 2.5\n\
        latency_seconds_count 6\n\
        # TYPE temperature untyped\n\
        temperature NaN\n\
        # TYPE up gauge\n\
        up{a=\"x\"} +Inf\n\
        up{a=\"y\"} -Inf\n\
        up{a=\"z\"} -0.5e-3\n";
    let x = ok(body);
    let kinds: Vec<MetricType> = x.families().iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [
            MetricType::Counter,
            MetricType::Histogram,
            MetricType::Unknown,
            MetricType::Gauge
        ]
    );
    let s = x.samples();
    assert_eq!(
        (s[0].role, s[0].value, s[0].timestamp),
        (Role::Total, 1027.0, Some(1_395_066_363.0))
    );
    let les: Vec<Option<f64>> = s[1..5].iter().map(|s| s.le).collect();
    // Prometheus accepts a bucket whose `le` is not a number; it has none.
    assert_eq!(les, [Some(0.1), Some(1.0), Some(f64::INFINITY), None]);
    assert_eq!([s[5].role, s[6].role], [Role::Sum, Role::Count]);
    assert!(s[7].value.is_nan());
    assert_eq!(s[7].role, Role::Value);
    assert_eq!(
        [s[8].value, s[9].value, s[10].value],
        [f64::INFINITY, f64::NEG_INFINITY, -0.0005]
    );
    assert_eq!(x.family_of(&s[3]).name, "latency_seconds");
}

#[test]
fn a_counter_family_named_the_openmetrics_way() {
    let x = ok("# TYPE jobs counter\njobs_total 3\njobs_created 1.7e9\n");
    let roles: Vec<(&str, Role)> = x.samples().iter().map(|s| (s.name, s.role)).collect();
    assert_eq!(
        roles,
        [("jobs_total", Role::Total), ("jobs_created", Role::Created)]
    );
    assert_eq!(x.families().len(), 1);
}

#[test]
fn escapes_in_label_values_and_help() {
    let body = "# HELP a Quote \\\" stays, backslash \\\\ and newline \\n do not.\n\
        a{v=\"q\\\"b\\\\n\\nx\\y\",plain=\"no escapes\"} 1\n";
    let x = ok(body);
    assert_eq!(
        x.families()[0].help.as_deref(),
        Some("Quote \\\" stays, backslash \\ and newline \n do not.")
    );
    let labels = x.labels(&x.samples()[0]);
    assert_eq!(labels[0].value, "q\"b\\n\nx\\y");
    // Borrowed from the body when there is nothing to unescape.
    assert!(matches!(labels[1].value, Cow::Borrowed("no escapes")));
}

#[test]
fn errors_say_where_and_what() {
    let cases: &[(&str, usize, usize, &str)] = &[
        ("a 1\nb{c=\"d} 2\n", 2, 5, "no closing quote"),
        (
            "a{b=\"c\"} 1 2 3\n",
            1,
            14,
            "expected a timestamp (integer milliseconds) or the end of the line",
        ),
        (
            "ok 1\n\nbad true\n",
            3,
            5,
            "the value `true` is not a number",
        ),
        ("a 0x1p-3\n", 1, 3, "not a number"),
        ("a 1_000\n", 1, 3, "not a number"),
        ("a 1 -5\n", 1, 5, "found `-5`"),
        ("a 1 1.5\n", 1, 6, "found `.5`"),
        ("a 1 99999999999999999999\n", 1, 5, "out of range"),
        ("a 1e999\n", 1, 3, "not a number"),
        ("a\n", 1, 2, "expected a value after `a`"),
        (
            "a{b=\"1\",b=\"2\"} 1\n",
            1,
            1,
            "the label `b` appears twice",
        ),
        ("a{=\"x\"} 1\n", 1, 3, "expected a label name"),
        ("a{b=c} 1\n", 1, 5, "double-quoted"),
        ("a{b \"c\"} 1\n", 1, 5, "expected `=`"),
        ("{a=\"b\"} 1\n", 1, 1, "must start with its metric name"),
        ("# TYPE a bogus\n", 1, 10, "unknown metric type `bogus`"),
        ("# TYPE a gauge \n", 1, 10, "unknown metric type `gauge `"),
        ("# HELP 1a x\n", 1, 8, "expected a metric name after # HELP"),
        ("a 1\r\n", 1, 3, "carriage return"),
    ];
    for &(body, line, column, what) in cases {
        let e = err(body);
        assert_eq!((e.line, e.column), (line, column), "{body:?}: {e}");
        assert!(e.message.contains(what), "{body:?}: {e}");
    }
    assert_eq!(err("a 1\nb{c=\"d} 2\n").kind, ErrorKind::Syntax);
    assert_eq!(err("a{b=\"1\",b=\"2\"} 1\n").kind.metric_label(), "content");
}

#[test]
fn a_body_that_is_not_utf8_names_the_line() {
    let e = parse(b"a 1\nb{c=\"ok\"} 2\nc{d=\"caf\xe9\"} 3\n", Format::Text).unwrap_err();
    assert_eq!((e.kind, e.line, e.column), (ErrorKind::Encoding, 3, 9));
    assert!(e.message.contains("0xe9 is not UTF-8"), "{e}");
    let e = parse("\u{feff}a 1\n".as_bytes(), Format::Text).unwrap_err();
    assert!(e.message.contains("byte order mark"), "{e}");
}

#[test]
fn empty_and_comment_only_bodies_have_no_samples() {
    assert!(ok("").samples().is_empty());
    assert!(ok("\n\n# just a comment\n   \n").families().is_empty());
}

#[test]
fn content_type_picks_the_format() {
    assert_eq!(
        Format::from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        Format::OpenMetrics
    );
    assert_eq!(
        Format::from_content_type("text/plain; version=0.0.4; charset=utf-8"),
        Format::Text
    );
    assert_eq!(Format::from_content_type(""), Format::Text);
}
