//! OpenMetrics beyond the conformance suite: what a whole exposition turns
//! into, and rules the suite does not reach (metric identity ignores label
//! order, repeated points, interleaving far apart, truncated bodies).

use crate::traffic::{ErrorKind, Exposition, Format, MetricType, ParseError, Role, parse};

fn ok(body: &str) -> Exposition<'_> {
    parse(body.as_bytes(), Format::OpenMetrics).unwrap_or_else(|e| panic!("{e}\n{body}"))
}

fn err(body: &str) -> ParseError {
    match parse(body.as_bytes(), Format::OpenMetrics) {
        Ok(x) => panic!("accepted: {x:?}\n{body}"),
        Err(e) => e,
    }
}

#[test]
fn a_whole_exposition() {
    let body = "# TYPE http_requests counter\n\
        # HELP http_requests Requests by \\\"code\\\".\n\
        http_requests_total{code=\"200\"} 1027 # {trace_id=\"abc\"} 1 1.5\n\
        http_requests_created{code=\"200\"} 1.7e9\n\
        http_requests_total{code=\"503\"} 3\n\
        # TYPE http_request_duration_seconds histogram\n\
        # UNIT http_request_duration_seconds seconds\n\
        http_request_duration_seconds_bucket{le=\"0.1\",path=\"/a\"} 2\n\
        http_request_duration_seconds_bucket{path=\"/a\",le=\"0.2\"} 5\n\
        http_request_duration_seconds_bucket{path=\"/a\",le=\"+Inf\"} 6\n\
        http_request_duration_seconds_count{path=\"/a\"} 6\n\
        http_request_duration_seconds_sum{path=\"/a\"} 1.25\n\
        http_request_duration_seconds_created{path=\"/a\"} 1.7e9\n\
        # TYPE build info\n\
        build_info{version=\"1.2.3\"} 1\n\
        # TYPE state stateset\n\
        state{state=\"up\"} 1\n\
        state{state=\"down\"} 0\n\
        # TYPE queue gaugehistogram\n\
        queue_bucket{le=\"1\"} 1\n\
        queue_bucket{le=\"+Inf\"} 2\n\
        queue_gcount 2\n\
        queue_gsum 1.5\n\
        untyped_thing 42\n\
        # EOF\n";
    let x = ok(body);
    let families: Vec<(&str, MetricType, Option<&str>)> = x
        .families()
        .iter()
        .map(|f| (f.name, f.kind, f.unit))
        .collect();
    assert_eq!(
        families,
        [
            ("http_requests", MetricType::Counter, None),
            (
                "http_request_duration_seconds",
                MetricType::Histogram,
                Some("seconds")
            ),
            ("build", MetricType::Info, None),
            ("state", MetricType::StateSet, None),
            ("queue", MetricType::GaugeHistogram, None),
            ("untyped_thing", MetricType::Unknown, None),
        ]
    );
    assert_eq!(
        x.families()[0].help.as_deref(),
        Some("Requests by \"code\".")
    );
    let roles: Vec<(&str, Role)> = x.samples().iter().map(|s| (s.name, s.role)).collect();
    assert_eq!(
        roles[..3],
        [
            ("http_requests_total", Role::Total),
            ("http_requests_created", Role::Created),
            ("http_requests_total", Role::Total),
        ]
    );
    let h = x.samples_of(&x.families()[1]);
    let les: Vec<Option<f64>> = h.iter().map(|s| s.le).collect();
    assert_eq!(
        les,
        [Some(0.1), Some(0.2), Some(f64::INFINITY), None, None, None]
    );
    assert_eq!(
        h.iter().map(|s| s.role).collect::<Vec<_>>(),
        [
            Role::Bucket,
            Role::Bucket,
            Role::Bucket,
            Role::Count,
            Role::Sum,
            Role::Created
        ]
    );
    // The exemplar is checked, then dropped: it adds no labels.
    assert_eq!(x.labels(&x.samples()[0]).len(), 1);
    assert_eq!(x.label(&x.samples()[0], "code"), Some("200"));
    let q = x.samples_of(&x.families()[4]);
    assert_eq!(
        q.iter().map(|s| s.role).collect::<Vec<_>>(),
        [Role::Bucket, Role::Bucket, Role::GaugeCount, Role::GaugeSum]
    );
    assert_eq!(x.samples_of(&x.families()[2])[0].role, Role::Info);
}

#[test]
fn points_with_timestamps() {
    // The same metric at two times, and the same time twice (accepted, as
    // the suite's duplicate_timestamps cases want).
    let x = ok("# TYPE a histogram\n\
        a_bucket{le=\"1\"} 1 10\n\
        a_bucket{le=\"+Inf\"} 2 10\n\
        a_bucket{le=\"1\"} 2 20\n\
        a_bucket{le=\"+Inf\"} 3 20\n\
        a_bucket{le=\"1\"} 2 20\n\
        a_bucket{le=\"+Inf\"} 3 20\n\
        # EOF\n");
    assert_eq!(x.samples().len(), 6);
    assert_eq!(x.samples()[2].timestamp, Some(20.0));
    // Each point is checked on its own.
    let e = err("# TYPE a histogram\n\
        a_bucket{le=\"1\"} 1 10\n\
        a_bucket{le=\"+Inf\"} 2 10\n\
        a_bucket{le=\"1\"} 2 20\n\
        # EOF\n");
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("no bucket with le=\"+Inf\""), "{e}");
}

#[test]
fn a_metric_is_its_labels_in_any_order() {
    ok("# TYPE a summary\n\
        a{x=\"1\",y=\"2\",quantile=\"0.5\"} 1\n\
        a{quantile=\"0.9\",y=\"2\",x=\"1\"} 2\n\
        a_count{y=\"2\",x=\"1\"} 3\n\
        a_sum{x=\"1\",y=\"2\"} 4\n\
        # EOF\n");
    let e = err("# TYPE a gauge\n\
        a{x=\"1\",y=\"2\"} 1\n\
        a{x=\"2\",y=\"2\"} 1\n\
        a{y=\"2\",x=\"1\"} 1\n\
        # EOF\n");
    assert_eq!(e.line, 4);
    assert!(
        e.message
            .contains("appears again after other metrics of its family (first at line 2)"),
        "{e}"
    );
}

#[test]
fn duplicates_without_timestamps_are_refused() {
    for body in [
        "# TYPE a gauge\na 1\na 2\n# EOF\n",
        "# TYPE a summary\na{quantile=\"0.5\"} 1\na{quantile=\"0.50\"} 1\n# EOF\n",
        "# TYPE a stateset\na{a=\"x\"} 1\na{a=\"x\"} 0\n# EOF\n",
        "# TYPE a counter\na_total 1\na_total 2\n# EOF\n",
    ] {
        let e = err(body);
        assert_eq!((e.kind, e.line), (ErrorKind::Content, 3), "{body:?}: {e}");
        assert!(e.message.contains("appears twice"), "{body:?}: {e}");
    }
}

#[test]
fn a_cut_short_body_is_refused_whole() {
    let body = "# TYPE a counter\na_total 1\nb 2\n";
    let e = err(body);
    assert_eq!((e.kind, e.line), (ErrorKind::Content, 4));
    assert!(e.message.contains("no `# EOF`"), "{e}");
    let e = err("# TYPE a counter\na_total 1\nb 2");
    assert_eq!(e.line, 3, "{e}");
    let e = err("a 1\n# EOF\n\n");
    assert!(e.message.contains("text after `# EOF`"), "{e}");
}

#[test]
fn wrong_sample_names_are_explained() {
    let e = err("# TYPE a counter\na 1\n# EOF\n");
    assert!(
        e.message
            .contains("its samples are named a_total, a_created"),
        "{e}"
    );
    let e = err("# TYPE a counter\na_total 1\n# TYPE b gauge\nb 1\na_total 2\n# EOF\n");
    assert_eq!(e.line, 5);
    assert!(e.message.contains("the counter family `a` (line 1)"), "{e}");
}

#[test]
fn not_utf8_and_carriage_returns() {
    let e = parse(
        b"# TYPE a gauge\na{b=\"\xff\"} 1\n# EOF\n",
        Format::OpenMetrics,
    )
    .unwrap_err();
    assert_eq!((e.kind, e.line, e.column), (ErrorKind::Encoding, 2, 6));
    let e = err("a 1\r\n# EOF\n");
    assert!(e.message.contains("carriage return"), "{e}");
}

#[test]
fn a_label_value_may_hold_anything_escaped() {
    let x = ok("a{v=\"# {}, \\\" \\\\ \\n \u{0} é\"} 1\n# EOF");
    assert_eq!(x.labels(&x.samples()[0])[0].value, "# {}, \" \\ \n \u{0} é");
}
