//! A slow endpoint: answers take 2.5 s, probes give up after 1 s. Every
//! probe counts at the second it took, so the percentiles say 1 s and a
//! latency rule below the timeout fires and rolls back.

use crate::common::harness::*;
use backstop::Event;
use backstop::demo::app::Behaviour;
use backstop::probe::Outcome;
use backstop::rules::State;
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test]
async fn a_slow_endpoint_behind_a_shorter_timeout_is_rolled_back() {
    // The smallest valid latency rule for a 1 s timeout: `above: 1s`
    // could never be exceeded and check-config refuses it.
    let yaml = r#"
service: checkout
targets:
  - name: analytics-executive
    url: "{app}/api/v1/analytics/executive"
    interval: 1s
    timeout: 1s
rules:
  - name: slow-analytics
    when: { latency: { target: analytics-executive, above: 900ms } }
    do: [rollback]
rollback:
  webhook: { url: "{app}/admin/rollback" }
"#;
    let mut d = Daemon::with_app(yaml).await;
    let second = Duration::from_secs(1);
    d.wait_for("a healthy probe", 5 * second, |e| {
        matches!(
            e,
            Event::Probe {
                outcome: Outcome::Success { .. },
                ..
            }
        )
    })
    .await;
    d.app()
        .deploy("v2", Behaviour::Slow(Duration::from_millis(2500)));
    let fault = Instant::now();
    d.wait_for("the latency rule firing", 60 * second, |e| {
        matches!(
            e,
            Event::Transition {
                to: State::Firing,
                ..
            }
        )
    })
    .await;
    let fired = fault.elapsed();
    d.wait_for("the rollback", 10 * second, action("rollback"))
        .await;
    let rolled_back = fault.elapsed();
    eprintln!(
        "2.5 s answers, 1 s timeout, latency above 900ms: fired {fired:.1?} and rolled back \
         {rolled_back:.1?} after the fault"
    );
    assert_eq!(d.app().rollbacks().len(), 1);
    // Minimum samples (20 at p95) at one probe a second, then at once.
    assert!(rolled_back < 30 * second, "{rolled_back:?}");
    let status: serde_json::Value = serde_json::from_str(
        &reqwest::get(d.admin("/status"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let p95 = status["targets"][0]["p95_seconds"].as_f64().unwrap();
    assert!((0.95..=1.05).contains(&p95), "p95 {p95} s\n{status:#}");
    d.shutdown().await;
}
