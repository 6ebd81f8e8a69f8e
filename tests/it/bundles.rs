//! The bundled dashboards and alert rules against real data: two backstop
//! sidecars (one rolls a bad release back, the other fails to and then
//! holds a rollback back, and goes away) are scraped by a real Prometheus
//! that also evaluates alerts/*.rules.yml. Every PromQL expression in
//! dashboards/*.json and alerts/*.rules.yml must parse and return data,
//! except those in NO_DATA, which must still parse and evaluate.

mod queries;

use crate::common::Daemon;
use crate::common::exporter::Exporter;
use crate::common::prometheus::{Prometheus, series_with_data, unix_now};
use backstop::demo::app::Behaviour;
use queries::Query;
use std::path::Path;
use std::time::Duration;

/// checkout: two healthy targets in its SLOs and a third the sample app
/// does not serve (404 throughout). A bad release makes the burn-rate rule
/// roll back through the sample app's webhook.
const CHECKOUT: &str = r#"
service: checkout
targets:
  - name: health
    url: "{app}/health"
    interval: 250ms
  - name: analytics-executive
    url: "{app}/api/v1/analytics/executive"
    interval: 250ms
    expect: { json: { "data.kpis.0.name": revenue } }
  - name: analytics-quarterly
    url: "{app}/api/v1/analytics/quarterly"
    interval: 250ms
  - name: app-metrics
    url: "{exporter}/metrics"
    interval: 250ms
    scrape: true
traffic:
  - name: api
    preset: http-requests-total
    match: '{path=~"/api/.*"}'
slos:
  - name: availability
    objective: 99.9
    targets: [health, analytics-executive]
  - name: analytics-latency
    objective: 95
    latency_threshold: 200ms
    targets: [analytics-executive]
rules:
  - name: fast-burn
    when: { burn_rate: { slo: availability, short: 1m, long: 5m, factor: 14.4, min_samples: 5 } }
    do: [rollback]
  - name: slow-analytics
    when: { latency: { target: analytics-executive, percentile: 95, above: 200ms, window: 1m } }
  - name: quarterly-down
    when: { consecutive_failures: 3, target: analytics-quarterly }
rollback:
  webhook: { url: "{app}/admin/rollback" }
"#;

/// payments: its only target fails from the start. The webhook refuses the
/// rollback (409: the sample app has no earlier version), so it fails; once
/// the revision is older than `bake` the rule's reminders are held back as
/// `baked`. Its pages go to an Alertmanager that is not there, so incident
/// delivery fails too.
const PAYMENTS: &str = r#"
service: payments
targets:
  - name: health
    url: "{app}/health"
    interval: 250ms
slos:
  - name: availability
    objective: 99.9
rules:
  - name: health-down
    when: { consecutive_failures: 3, target: health }
    do: [rollback, page]
rollback:
  webhook: { url: "{app}/admin/rollback" }
  bake: 6s
page:
  alertmanager: { url: "http://127.0.0.1:9/", resend_interval: 1s }
"#;

/// How an allow-listed expression is still checked.
enum Check {
    /// It must parse and evaluate; no data expected.
    Parses,
    /// An alert whose condition is false here: what it compares with its
    /// threshold (the expression without the final `> number`) must have data.
    ThresholdNotReached,
}

/// Expressions that cannot return data in this test, and why.
struct NoData {
    file: &'static str,
    /// The start of the query's place (see `queries::Query::place`).
    place: &'static str,
    why: &'static str,
    check: Check,
}

const NO_DATA: &[NoData] = &[
    // The sidecar dashboard's resource panels read cAdvisor's metrics,
    // which only a kubelet exports: there is no Kubernetes here.
    NoData {
        file: "dashboards/backstop-sidecar.json",
        place: "panel \"CPU by pod\"",
        why: "cAdvisor (container_cpu_usage_seconds_total): needs Kubernetes",
        check: Check::Parses,
    },
    NoData {
        file: "dashboards/backstop-sidecar.json",
        place: "panel \"CPU throttling by pod\"",
        why: "cAdvisor (container_cpu_cfs_*periods_total): needs Kubernetes",
        check: Check::Parses,
    },
    NoData {
        file: "dashboards/backstop-sidecar.json",
        place: "panel \"Memory (working set) by pod\"",
        why: "cAdvisor (container_memory_working_set_bytes): needs Kubernetes",
        check: Check::Parses,
    },
    // Probes here start well under 0.5 s late; the p99 itself has data.
    NoData {
        file: "alerts/backstop.rules.yml",
        place: "alert BackstopProbeScheduleLag",
        why: "false by design: probes start on time; its p99 must have data",
        check: Check::ThresholdNotReached,
    },
];

fn allowed(q: &Query) -> Option<&'static NoData> {
    NO_DATA
        .iter()
        .find(|a| a.file == q.file && q.place.starts_with(a.place))
}

/// Prometheus's window functions need two samples and more: with a 1 s
/// scrape, this much history covers every range the queries use once
/// shortened (1m, 15s, 5m) well enough to have them.
const MIN_HISTORY: Duration = Duration::from_secs(15);
const WITHIN: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_and_alert_query_parses_and_returns_data() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Read the bundles first: a broken file fails before anything starts.
    let queries = queries::all(root);

    // The traffic row reads a real prometheus_client app's requests.
    let exporter = Exporter::start().await;
    let checkout = Daemon::with_app(&CHECKOUT.replace("{exporter}", &exporter.url(""))).await;
    let payments = Daemon::with_app(PAYMENTS).await;
    payments.app().set(Behaviour::Status(503));
    let prom = Prometheus::start(
        &[checkout.running.addr, payments.running.addr],
        Some(&root.join("alerts").join("*.rules.yml")),
    )
    .await;
    let start = unix_now();
    let (c, p) = (checkout.running.addr, payments.running.addr);
    prom.wait("count(up{job=\"backstop\"} == 1) == 2", true, WITHIN)
        .await;

    // A few healthy scrapes of checkout, then a bad release it rolls back.
    for _ in 0..4 {
        exporter.serve("/api/orders", 200, 50, 0.03).await;
        exporter.serve("/api/orders", 503, 2, 0.3).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    checkout.app().deploy("v2", Behaviour::Status(500));
    for q in [
        format!("backstop_rollbacks_total{{instance=\"{c}\",result=\"succeeded\"}}"),
        format!("backstop_rollbacks_total{{instance=\"{p}\",result=\"failed\"}}"),
        format!("backstop_rollbacks_prevented_total{{instance=\"{p}\",reason=\"baked\"}}"),
    ] {
        prom.wait(&q, true, WITHIN).await;
    }
    assert_eq!(checkout.app().version(), "v1", "checkout was rolled back");

    // payments' sidecar goes away: its series go stale, which is what
    // BackstopSidecarAbsent looks for.
    payments.shutdown().await;
    prom.wait("backstop_build_info{service=\"payments\"}", false, WITHIN)
        .await;
    let history = Duration::from_secs_f64(unix_now() - start);
    tokio::time::sleep(MIN_HISTORY.saturating_sub(history) + Duration::from_secs(3)).await;

    rules_are_loaded_and_healthy(&prom).await;
    // Each query runs over the whole test, one point a second, as Grafana
    // runs a panel over its time range: an expression about an event (a
    // rollback, a sidecar going away) has data around that event only.
    let end = unix_now();
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for q in &queries {
        let row = match run(&prom, q, start, end).await {
            Ok(row) => row,
            Err(e) => {
                failures.push(format!("{} {}: {e}\n    {}", q.file, q.place, q.expr));
                Row {
                    series: 0,
                    result: "FAIL",
                    note: e,
                }
            }
        };
        table.push((q, row));
    }
    print_table(&table);

    for a in NO_DATA {
        assert!(
            queries
                .iter()
                .any(|q| q.file == a.file && q.place.starts_with(a.place)),
            "NO_DATA lists {} {}, which has no such query any more",
            a.file,
            a.place
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries failed:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
    checkout.shutdown().await;
}

/// A line of the table.
struct Row {
    /// Series with data.
    series: usize,
    /// ok, allowed (in NO_DATA) or FAIL.
    result: &'static str,
    note: String,
}

/// Run `q` over the test's time range; Err says why it fails the test.
async fn run(prom: &Prometheus, q: &Query, start: f64, end: f64) -> Result<Row, String> {
    let result = prom
        .range(&q.expr, start, end)
        .await
        .map_err(|e| format!("Prometheus rejects it: {e}"))?;
    let series = series_with_data(&result);
    // For a variable: how many values it would offer.
    let note = q.label.as_ref().map(|label| {
        let mut values: Vec<&str> = result
            .iter()
            .filter_map(|s| s["metric"][label].as_str())
            .collect();
        values.sort();
        values.dedup();
        format!("{} value(s) of {label}", values.len())
    });
    let Some(allowed) = allowed(q) else {
        if series == 0 {
            return Err("no data".to_string());
        }
        let note = note.unwrap_or_default();
        return Ok(Row {
            series,
            result: "ok",
            note,
        });
    };
    let mut note = allowed.why.to_string();
    if let Check::ThresholdNotReached = allowed.check {
        let compared = queries::without_threshold(&q.expr)
            .ok_or("NO_DATA says it ends with `> number`; it does not")?;
        let result = prom
            .range(compared, start, end)
            .await
            .map_err(|e| format!("without its threshold, Prometheus rejects it: {e}"))?;
        match series_with_data(&result) {
            0 => return Err("no data, even without its threshold".to_string()),
            n => note.push_str(&format!(" ({n} series without the threshold)")),
        }
    }
    Ok(Row {
        series,
        result: "allowed",
        note,
    })
}

/// Prometheus loaded every group of alerts/*.rules.yml, and has evaluated
/// every rule without an error (a `group_left` that finds two matches, for
/// example, only shows here).
async fn rules_are_loaded_and_healthy(prom: &Prometheus) {
    let groups = prom.rule_groups().await;
    let mut names: Vec<&str> = groups.iter().filter_map(|g| g["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["backstop", "backstop-recording", "backstop-slo"]);
    for g in &groups {
        for r in g["rules"].as_array().into_iter().flatten() {
            assert_eq!(
                r["health"], "ok",
                "rule {} of group {} in {}: {}",
                r["name"], g["name"], g["file"], r["lastError"]
            );
        }
    }
}

/// One entry per query, grouped by file: series with data, result and
/// place, then the expression on one line (shortened).
fn print_table(rows: &[(&Query, Row)]) {
    let mut file = "";
    for (q, row) in rows {
        if q.file != file {
            file = &q.file;
            println!(
                "\n== {file}\n{:>6}  {:<7}  place / expression",
                "series", "result"
            );
        }
        let note = if row.note.is_empty() {
            String::new()
        } else {
            format!("  [{}]", row.note)
        };
        let expr = q.expr.split_whitespace().collect::<Vec<_>>().join(" ");
        println!("{:>6}  {:<7}  {}{note}", row.series, row.result, q.place);
        println!("{:17}{}", "", shorten(&expr, 100));
    }
    println!();
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
