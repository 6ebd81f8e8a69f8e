//! Paging through a real Alertmanager (Debian `prometheus-alertmanager`),
//! two of them as an HA pair: backstop's alerts are read back through
//! `GET /api/v2/alerts` while the rule fires (and are re-sent with a later
//! `endsAt`), and seen resolved after.

use crate::common;
use crate::common::Daemon;
use crate::common::alertmanager::Alertmanager;
use crate::common::harness::page;
use backstop::demo::app::Behaviour;
use std::time::{Duration, SystemTime};

fn time(v: &serde_json::Value) -> SystemTime {
    humantime::parse_rfc3339_weak(
        v.as_str()
            .expect("a timestamp")
            .trim_end_matches('Z')
            .split('.')
            .next()
            .unwrap(),
    )
    .expect("an RFC 3339 timestamp")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_both_alertmanagers_and_resolve() {
    backstop::init_tls();
    let (am1, am2) = (Alertmanager::start().await, Alertmanager::start().await);
    let yaml = format!(
        r#"
service: checkout
targets:
  - name: health
    url: "{{app}}/health"
    interval: 100ms
rules:
  - name: health-down
    when: {{ consecutive_failures: 3, target: health }}
    severity: warning
    do: [page]
page:
  alertmanager: {{ url: ["{}", "{}"], resend_interval: 1s }}
"#,
        am1.base, am2.base
    );
    let mut s = Daemon::with_app(&yaml).await;
    s.app().set(Behaviour::Status(500));
    s.wait_for("the page", Duration::from_secs(5), page("triggered"))
        .await;

    for am in [&am1, &am2] {
        let alert = am
            .alert("health-down")
            .await
            .expect("the alert reached every Alertmanager");
        assert_eq!(alert["labels"]["alertname"], "BackstopRuleFiring");
        assert_eq!(alert["labels"]["service"], "checkout");
        assert_eq!(alert["labels"]["severity"], "warning");
        assert_eq!(alert["labels"]["revision"], "v2");
        assert_eq!(alert["status"]["state"], "active");
        assert!(
            alert["annotations"]["summary"]
                .as_str()
                .unwrap()
                .starts_with("checkout v2: /health failing, 3 failed probes in a row")
        );
        assert!(
            alert["annotations"]["description"]
                .as_str()
                .unwrap()
                .contains("consecutive failures")
        );
        assert!(alert["generatorURL"].as_str().unwrap().ends_with("/status"));
        // Firing: it ends four re-send intervals ahead.
        let ahead = time(&alert["endsAt"])
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        assert!(
            ahead >= Duration::from_secs(2) && ahead <= Duration::from_secs(5),
            "endsAt {ahead:?} ahead"
        );
    }
    // Re-sent while firing: endsAt moves forward.
    let first = time(&am1.alert("health-down").await.unwrap()["endsAt"]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = time(&am1.alert("health-down").await.unwrap()["endsAt"]);
    assert!(
        later > first,
        "endsAt did not move: {first:?} then {later:?}"
    );

    s.app().set(Behaviour::Healthy);
    s.wait_for("the resolution", Duration::from_secs(5), page("resolved"))
        .await;
    for am in [&am1, &am2] {
        // Resolved: gone from the active list, or ending now.
        if let Some(alert) = am.alert("health-down").await {
            let ends = time(&alert["endsAt"]);
            assert!(ends <= SystemTime::now(), "still active: {alert}");
        }
    }
    let (_, metrics) = common::get(&s.admin("/metrics")).await;
    let ok = common::metric(
        &metrics,
        "backstop_page_deliveries_total{receiver=\"alertmanager\",result=\"ok\"}",
    )
    .unwrap();
    assert!(ok >= 4.0, "{ok} deliveries");
    s.shutdown().await;
}
