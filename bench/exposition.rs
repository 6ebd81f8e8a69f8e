//! Cost of reading one scrape of an app's `/metrics`: ~100 KB, 1,000
//! series (request counters by method, code and path; a request-duration
//! histogram of 10 buckets + `+Inf` per method and path; gauges; HELP and
//! TYPE lines), generated here. It is parsed as Prometheus text 0.0.4 and
//! as OpenMetrics by backstop, and as text by `prometheus-parse` (the
//! crates.io parser with the licence backstop can ship), all in one run;
//! `scrape` adds what a scrape does next: the three selectors of a traffic
//! entry, summed; and what the engine does, parse once and fold into three
//! traffic entries (`traffic::Counter`, per-series state).

use std::fmt::Write;
use std::hint::black_box;

use backstop::traffic::{Counter, Format, Selector, parse};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
const CODES: [&str; 6] = ["200", "201", "304", "404", "500", "503"];
const PATHS: [&str; 10] = [
    "/api/v1/analytics/executive",
    "/api/v1/analytics/operations",
    "/api/v1/analytics/financial",
    "/api/v1/analytics/performance",
    "/api/v1/orders",
    "/api/v1/orders/{id}",
    "/api/v1/customers",
    "/health",
    "/ready",
    "/metrics",
];
const BUCKETS: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
];

/// The exposition, in OpenMetrics or in text 0.0.4.
fn exposition(openmetrics: bool) -> String {
    let mut b = String::new();
    let mut series = 0;
    let mut n = 7919u64;
    let mut next = |scale: u64| {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (n >> 33) % scale
    };
    let counter = if openmetrics {
        "http_requests"
    } else {
        "http_requests_total"
    };
    writeln!(
        b,
        "# HELP {counter} Requests served, by method, status code and route."
    )
    .unwrap();
    writeln!(b, "# TYPE {counter} counter").unwrap();
    for method in &METHODS[..4] {
        for code in CODES {
            for path in PATHS {
                let v = next(1_000_000);
                writeln!(
                    b,
                    "http_requests_total{{method=\"{method}\",code=\"{code}\",path=\"{path}\"}} {v}"
                )
                .unwrap();
                series += 1;
            }
        }
    }
    let h = "http_request_duration_seconds";
    writeln!(
        b,
        "# HELP {h} Time to answer a request, by method and route."
    )
    .unwrap();
    writeln!(b, "# TYPE {h} histogram").unwrap();
    if openmetrics {
        writeln!(b, "# UNIT {h} seconds").unwrap();
    }
    for method in METHODS {
        for path in PATHS {
            let mut count = 0;
            for le in BUCKETS {
                count += next(5_000);
                writeln!(
                    b,
                    "{h}_bucket{{method=\"{method}\",path=\"{path}\",le=\"{le}\"}} {count}"
                )
                .unwrap();
            }
            count += next(100);
            writeln!(
                b,
                "{h}_bucket{{method=\"{method}\",path=\"{path}\",le=\"+Inf\"}} {count}"
            )
            .unwrap();
            writeln!(
                b,
                "{h}_sum{{method=\"{method}\",path=\"{path}\"}} {}.{}",
                count / 7,
                next(1000)
            )
            .unwrap();
            writeln!(
                b,
                "{h}_count{{method=\"{method}\",path=\"{path}\"}} {count}"
            )
            .unwrap();
            series += 13;
        }
    }
    writeln!(b, "# HELP http_requests_in_flight Requests being served.").unwrap();
    writeln!(b, "# TYPE http_requests_in_flight gauge").unwrap();
    for method in METHODS {
        for path in PATHS {
            writeln!(
                b,
                "http_requests_in_flight{{method=\"{method}\",path=\"{path}\"}} {}",
                next(20)
            )
            .unwrap();
            series += 1;
        }
    }
    while series < 1000 {
        let name = format!("app_worker_queue_depth_{}", series % 60);
        writeln!(b, "# HELP {name} Jobs waiting in one worker queue.").unwrap();
        writeln!(b, "# TYPE {name} gauge").unwrap();
        writeln!(
            b,
            "{name}{{queue=\"jobs-{series}\",priority=\"normal\"}} {}",
            next(10_000)
        )
        .unwrap();
        series += 1;
    }
    if openmetrics {
        b.push_str("# EOF\n");
    }
    b
}

/// The body as `prometheus-parse` takes it: one owned `String` per line,
/// as its documentation shows.
fn lines(body: &str) -> impl Iterator<Item = std::io::Result<String>> + '_ {
    body.lines().map(|l| Ok(l.to_owned()))
}

fn parsers(c: &mut Criterion) {
    let text = exposition(false);
    let om = exposition(true);
    assert_eq!(
        parse(text.as_bytes(), Format::Text)
            .unwrap()
            .samples()
            .len(),
        1000
    );
    assert_eq!(
        parse(om.as_bytes(), Format::OpenMetrics)
            .unwrap()
            .samples()
            .len(),
        1000
    );
    // It folds each histogram's buckets into one sample.
    let theirs = prometheus_parse::Scrape::parse(lines(&text)).unwrap();
    assert!(theirs.samples.len() > 400);

    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("backstop_text", |b| {
        b.iter(|| parse(black_box(text.as_bytes()), Format::Text).unwrap())
    });
    g.bench_function("prometheus_parse_text", |b| {
        b.iter(|| prometheus_parse::Scrape::parse(lines(black_box(&text))).unwrap())
    });
    g.throughput(Throughput::Bytes(om.len() as u64));
    g.bench_function("backstop_openmetrics", |b| {
        b.iter(|| parse(black_box(om.as_bytes()), Format::OpenMetrics).unwrap())
    });
    g.finish();

    // A traffic entry's selectors (DESIGN.md), applied to every sample.
    let requests = Selector::parse(r#"http_requests_total{path=~"/api/.*"}"#).unwrap();
    let errors = Selector::parse(r#"http_requests_total{path=~"/api/.*", code=~"5.."}"#).unwrap();
    let latency =
        Selector::parse(r#"http_request_duration_seconds_bucket{path=~"/api/.*"}"#).unwrap();
    let mut g = c.benchmark_group("scrape");
    for (name, body, format) in [
        ("text", &text, Format::Text),
        ("openmetrics", &om, Format::OpenMetrics),
    ] {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(format!("parse_and_select_{name}"), |b| {
            b.iter(|| {
                let scrape = parse(black_box(body.as_bytes()), format).unwrap();
                let req: f64 = scrape.select(&requests).map(|s| s.value).sum();
                let err: f64 = scrape.select(&errors).map(|s| s.value).sum();
                let fast: f64 = scrape
                    .select(&latency)
                    .filter(|s| s.le.is_some_and(|le| le <= 0.2))
                    .map(|s| s.value)
                    .sum();
                (req, err, fast)
            })
        });
    }
    g.finish();

    // What the engine does per scrape: parse once, fold into three traffic
    // entries (per-series increases, summed; bucket increases by bound).
    let sel = |s: &str| Selector::parse(s).unwrap();
    let entries = || {
        [
            ("/api/.*", "/api/.*"),
            ("/api/v1/orders.*", "/api/v1/orders.*"),
            (".*", ".*"),
        ]
        .map(|(a, b)| {
            Counter::new(
                sel(&format!(r#"http_requests_total{{path=~"{a}"}}"#)),
                Some(sel(&format!(
                    r#"http_requests_total{{path=~"{b}", code=~"5.."}}"#
                ))),
                Some(sel(&format!(
                    r#"http_request_duration_seconds{{path=~"{a}"}}"#
                ))),
            )
        })
    };
    let mut g = c.benchmark_group("scrape");
    for (name, body, format) in [
        ("text", &text, Format::Text),
        ("openmetrics", &om, Format::OpenMetrics),
    ] {
        let mut counters = entries();
        let baseline = parse(body.as_bytes(), format).unwrap();
        for c in &mut counters {
            assert!(c.fold(&baseline).unwrap().baseline);
        }
        // 240 request series, 80 of them 5xx (errors), 550 buckets.
        assert_eq!(counters[2].series(), 240 + 80 + 5 * 10 * 11);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(format!("parse_and_fold_3_entries_{name}"), |b| {
            b.iter(|| {
                let scrape = parse(black_box(body.as_bytes()), format).unwrap();
                for c in &mut counters {
                    black_box(c.fold(&scrape).unwrap());
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, parsers);
criterion_main!(benches);
