//! A real Prometheus (Debian package `prometheus`) scrapes a running
//! backstop; the test reads backstop's series back through Prometheus's
//! HTTP API and checks their labels.

use crate::common::Daemon;
use crate::common::prometheus::Prometheus;
use backstop::demo::app::Behaviour;
use std::time::Duration;

const CONFIG: &str = r#"
service: checkout
targets:
  - name: health
    url: "{app}/health"
    interval: 250ms
  - name: analytics-executive
    url: "{app}/api/v1/analytics/executive"
    interval: 250ms
    expect: { json: { "data.kpis.0.name": revenue } }
slos:
  - name: availability
    objective: 99.9
rules:
  - name: fast-burn
    when: { burn_rate: { slo: availability, short: 1m, long: 5m, factor: 14.4, min_samples: 5 } }
  - name: health-down
    when: { consecutive_failures: 3, target: health }
"#;

fn label<'a>(series: &'a serde_json::Value, name: &str) -> &'a str {
    series["metric"][name].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_backstop_series_with_their_labels() {
    let s = Daemon::with_app(CONFIG).await;
    let prom = Prometheus::start(&[s.running.addr], None).await;
    let within = Duration::from_secs(30);

    let up = prom.wait("up{job=\"backstop\"} == 1", true, within).await;
    assert_eq!(label(&up[0], "instance"), s.running.addr.to_string());

    // Let some probes fail so failure series exist too.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.app().set(Behaviour::Status(503));
    prom.wait(
        "backstop_probes_total{result=\"failure\",reason=\"status\",target=\"health\"} > 0",
        true,
        within,
    )
    .await;

    let build = prom.wait("backstop_build_info", true, within).await;
    assert_eq!(label(&build[0], "service"), "checkout");
    assert_eq!(label(&build[0], "version"), env!("CARGO_PKG_VERSION"));

    let ok = prom
        .wait("backstop_probes_total{result=\"success\"}", true, within)
        .await;
    let mut targets: Vec<&str> = ok.iter().map(|s| label(s, "target")).collect();
    targets.sort();
    assert_eq!(targets, ["analytics-executive", "health"]);

    prom.wait("backstop_target_up{target=\"health\"} == 0", true, within)
        .await;
    prom.wait(
        "backstop_target_up{target=\"analytics-executive\"} == 0",
        true,
        within,
    )
    .await;
    for rule in ["fast-burn", "health-down"] {
        let q = format!("backstop_rule_state{{rule=\"{rule}\",state=\"firing\"}} == 1");
        prom.wait(&q, true, within).await;
    }
    let states = prom
        .instant("backstop_rule_state{rule=\"health-down\"}")
        .await
        .expect("the query runs");
    let mut states: Vec<&str> = states.iter().map(|s| label(s, "state")).collect();
    states.sort();
    assert_eq!(states, ["firing", "ok", "pending"]);

    let sli = prom
        .wait("backstop_slo_sli_ratio{slo=\"availability\"}", true, within)
        .await;
    let mut windows: Vec<&str> = sli.iter().map(|s| label(s, "window")).collect();
    windows.sort();
    assert_eq!(windows, ["1m", "5m"]);
    prom.wait(
        "backstop_slo_burn_rate{slo=\"availability\",window=\"1m\"} > 14.4",
        true,
        within,
    )
    .await;
    prom.wait(
        "backstop_revision_info{revision=\"v2\",service=\"checkout\"}",
        true,
        within,
    )
    .await;

    let p95 = prom
        .wait(
            "histogram_quantile(0.95, sum by (le) (rate(backstop_probe_duration_seconds_bucket{target=\"health\"}[1m])))", true, within)
        .await;
    let v: f64 = p95[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(v > 0.0 && v < 1.0, "p95 {v}");
    s.shutdown().await;
}
