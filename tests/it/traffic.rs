//! Real traffic end to end: backstop scrapes a real `prometheus_client`
//! app (both formats), counts its requests through resets, new and
//! vanished series, odd values and broken scrapes, and judges them.

use crate::common::exporter::Exporter;
use crate::common::{Daemon, get};
use backstop::Event;
use backstop::probe::{Outcome, Reason};
use serde_json::Value;
use std::time::Duration;

const CONFIG: &str = r#"
service: checkout
targets:
  - name: app-metrics
    url: "{app}/metrics"
    interval: 300ms
    timeout: 250ms
    scrape: true
traffic:
  - name: api
    preset: http-requests-total
    match: '{path=~"/api/.*"}'
  - name: odd
    requests: odd_requests_total
    errors: 'odd_requests_total{code=~"5.."}'
  - name: only-inf
    requests: http_requests_total
    latency: only_inf_seconds
rules:
  - name: api-errors
    when: { error_rate: { target: api, above: "5%", window: 1m, min_samples: 20 } }
    do: []
"#;

async fn status(d: &Daemon) -> Value {
    let (code, body) = get(&d.admin("/status")).await;
    assert_eq!(code, 200);
    serde_json::from_str(&body).unwrap()
}

fn traffic<'v>(v: &'v Value, name: &str) -> &'v Value {
    v["traffic"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no traffic {name} in {v}"))
}

/// The 5-minute window of traffic `name`.
fn window<'v>(v: &'v Value, name: &str) -> &'v Value {
    &traffic(v, name)["windows"][0]
}

/// Poll /status until `done` holds (10 s at most), and return it.
async fn until(d: &Daemon, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = status(d).await;
        if done(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {what} within 10 s; /status traffic: {:#}",
            v["traffic"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn requests(v: &Value, name: &str) -> (u64, u64) {
    let w = window(v, name);
    (
        w["requests"].as_u64().unwrap(),
        w["errors"].as_u64().unwrap(),
    )
}

fn failed_with(want: Reason) -> impl FnMut(&Event) -> bool {
    move |e| {
        matches!(e, Event::Probe { target, outcome: Outcome::Failure { reason, .. }, .. }
            if target == "app-metrics" && *reason == want)
    }
}

#[tokio::test]
async fn a_real_exporter_is_counted_through_resets_new_and_vanished_series() {
    let app = Exporter::start().await;
    // Counts from before backstop started are the baseline, not traffic.
    app.serve("/api/orders", 200, 1000, 0.01).await;
    let d = Daemon::start(&CONFIG.replace("{app}", &app.url(""))).await;
    until(&d, "a baseline scrape", |v| {
        traffic(v, "api")["scrapes"].as_u64() >= Some(1)
    })
    .await;
    let v = status(&d).await;
    assert_eq!(requests(&v, "api"), (0, 0));
    assert_eq!(window(&v, "api")["no_traffic"], true);
    // OpenMetrics was asked for, and prometheus_client answered with it.
    assert_eq!(traffic(&v, "api")["last_scrape"]["ok"], true);
    assert_eq!(traffic(&v, "api")["last_scrape"]["format"], "openmetrics");

    app.serve("/api/orders", 200, 100, 0.03).await;
    let v = until(&d, "100 requests", |v| requests(v, "api") == (100, 0)).await;
    let p50 = window(&v, "api")["p50_seconds"].as_f64().unwrap();
    // All 100 in the 0.01–0.05 bucket... and histogram_quantile
    // interpolates from the bucket's lower bound, 0 for the first.
    assert!((p50 - 0.025).abs() < 1e-9, "{p50}");

    // The first 503s: a series the app never had; all of it counts.
    app.serve("/api/orders", 503, 10, 0.2).await;
    let v = until(&d, "the new 503 series", |v| {
        requests(v, "api") == (110, 10)
    })
    .await;
    // Counted and judged: 9.1 % seen, but a young window of one burst is
    // not yet evidence of the full minute (see the README, "How a new pod
    // decides"), so the rule waits rather than fires or clears.
    let rule = &v["rules"][0];
    assert_eq!(rule["state"], "ok", "{rule}");
    assert_eq!(rule["breached"], serde_json::Value::Null, "{rule}");
    let summary = rule["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(
            "api: 10 of 110 requests failed (9.1 %) in the last 1m, limit 5 %; young window, 110 of "
        ),
        "{summary}"
    );

    // The 503 series vanishes: nothing added, nothing taken away.
    app.remove("/api/orders", 503).await;
    app.serve("/api/orders", 200, 5, 0.01).await;
    until(&d, "5 more after the vanished series", |v| {
        requests(v, "api") == (115, 10)
    })
    .await;

    // The app restarts: its counters start again from zero.
    app.mode("reset").await;
    app.serve("/api/orders", 200, 7, 0.01).await;
    until(&d, "7 more after the counter reset", |v| {
        requests(v, "api") == (122, 10)
    })
    .await;

    // Text 0.0.4 whatever the Accept header says: read just the same.
    app.mode("text-only").await;
    app.serve("/api/orders", 200, 3, 0.01).await;
    let v = until(&d, "3 more in text format", |v| {
        requests(v, "api") == (125, 10)
    })
    .await;
    assert_eq!(traffic(&v, "api")["last_scrape"]["format"], "text");

    // The page a person reads: one row per entry and window.
    let (code, html) = get(&d.admin("/")).await;
    assert_eq!(code, 200);
    assert!(
        html.contains("<h2>Traffic (the app's own requests)</h2>"),
        "{html}"
    );
    assert!(html.contains("<td>10 of 125 (8.0 %)</td>"), "{html}");
    // odd has seen no request: it says so rather than 0 % or 100 %.
    assert!(
        html.contains("<td>odd</td><td>5m</td><td>0.00</td><td>no traffic</td>"),
        "{html}"
    );
    d.shutdown().await;
}

#[tokio::test]
async fn odd_values_and_broken_scrapes_fail_cleanly() {
    let app = Exporter::start().await;
    let mut d = Daemon::start(&CONFIG.replace("{app}", &app.url(""))).await;
    until(&d, "a baseline scrape", |v| {
        traffic(v, "api")["scrapes"].as_u64() >= Some(1)
    })
    .await;

    // A NaN counter breaks OpenMetrics: the whole scrape is refused, as
    // the specification asks.
    app.mode("nan").await;
    d.wait_for(
        "a NaN counter refused",
        Duration::from_secs(5),
        failed_with(Reason::Unparsable),
    )
    .await;
    let v = status(&d).await;
    let detail = v["targets"][0]["last_probe"]["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.starts_with("the OpenMetrics body does not parse: line ")
            && detail.contains("is NaN, but a counter's total must be a number"),
        "{detail}"
    );
    // Text 0.0.4 allows NaN and +Inf: those series are skipped, the
    // others count.
    app.mode("nan-text").await;
    app.serve("/api/orders", 200, 4, 0.01).await;
    let v = until(&d, "4 requests beside NaN and +Inf", |v| {
        requests(v, "api") == (4, 0)
    })
    .await;
    assert_eq!(requests(&v, "odd"), (0, 0));
    assert_eq!(traffic(&v, "odd")["last_scrape"]["ok"], true);

    // A histogram with only +Inf: requests counted, no percentile.
    app.mode("inf-only").await;
    app.serve("/api/orders", 200, 6, 0.01).await;
    let v = until(&d, "6 more", |v| requests(v, "api") == (10, 0)).await;
    until(&d, "the +Inf bucket", |v| {
        traffic(v, "only-inf")["scrapes"].as_u64() >= Some(2)
    })
    .await;
    assert!(window(&v, "only-inf")["p95_seconds"].is_null(), "{v:#}");

    // Not UTF-8: a failed scrape, with the line and what is wrong there.
    app.mode("binary").await;
    d.wait_for(
        "an unparsable scrape",
        Duration::from_secs(5),
        failed_with(Reason::Unparsable),
    )
    .await;
    let v = status(&d).await;
    let detail = v["targets"][0]["last_probe"]["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("is not UTF-8"), "{detail}");
    assert!(detail.contains("line "), "{detail}");
    let last = &traffic(&v, "api")["last_scrape"];
    assert_eq!(last["ok"], false);

    // 20 MB: read up to the cap and refused.
    app.mode("huge").await;
    d.wait_for(
        "a truncated scrape",
        Duration::from_secs(5),
        failed_with(Reason::Truncated),
    )
    .await;

    // Slower than the timeout.
    app.mode("slow").await;
    d.wait_for(
        "a scrape timeout",
        Duration::from_secs(5),
        failed_with(Reason::Timeout),
    )
    .await;

    // Back to normal: what was served meanwhile is counted at once.
    app.serve("/api/orders", 500, 2, 0.01).await;
    app.mode("normal").await;
    until(&d, "the catch-up", |v| requests(v, "api") == (12, 2)).await;
    let m = d.metrics().await;
    for line in [
        "backstop_traffic_scrapes_total{result=\"scrape_failed\",traffic=\"api\"}",
        "backstop_traffic_requests_total{traffic=\"api\"} 12",
        "backstop_traffic_errors_total{traffic=\"api\"} 2",
        "backstop_probes_total{reason=\"unparsable\"",
    ] {
        assert!(m.contains(line), "no {line} in\n{m}");
    }
    d.shutdown().await;
}
