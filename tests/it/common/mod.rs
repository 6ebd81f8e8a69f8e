//! What the integration tests share: the harness (`harness::Daemon`: the
//! whole daemon on 127.0.0.1:0, with the sample app if asked), every fake
//! neighbour, the real ones (Prometheus, Alertmanager), and small helpers.
pub mod alertmanager;
pub mod exporter;
pub mod fake_alertmanager;
pub mod fake_deployer;
pub mod fake_grafana;
pub mod fake_kube;
pub mod fake_pagerduty;
pub mod fake_slack;
pub mod faulty;
pub mod harness;
pub mod https;
pub mod otlp;
pub mod ports;
pub mod process;
pub mod prometheus;
pub mod recorder;

pub use harness::Daemon;

use std::time::Duration;

/// GET through one client for the whole test binary: building a client
/// (`reqwest::get` does, every call) blocks the test's thread, which is
/// also the daemon's, for tens of milliseconds and shows up as probe
/// schedule lag. No idle connections are kept, so no request depends on a
/// connection task of another test's runtime.
pub async fn get(url: &str) -> (u16, String) {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("a plain HTTP client")
    });
    let resp = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// The value of one series in Prometheus text format, if present.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Poll `done` every 20 ms until it holds; panic naming `what` after `within`.
pub async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {what} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
