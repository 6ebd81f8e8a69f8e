//! Helpers shared by the integration tests: start the sample app and the
//! whole daemon on 127.0.0.1:0, wait for events, fetch admin endpoints.
#![allow(dead_code)] // each test binary uses its own subset
pub mod fake_alertmanager;
pub mod fake_deployer;
pub mod fake_kube;
pub mod fake_pagerduty;
pub mod faulty;
pub mod harness;
pub mod prometheus;

use backstop::demo::app::SampleApp;
use backstop::telemetry::Event;
use std::time::Duration;
use tokio::sync::broadcast;

pub struct Setup {
    pub app: SampleApp,
    pub daemon: backstop::Running,
    pub events: broadcast::Receiver<Event>,
}

/// Start the sample app (serving v1) and backstop with `yaml`, where
/// `{app}` stands for the app's base URL.
pub async fn start(yaml: &str) -> Setup {
    backstop::init_tls();
    let app = SampleApp::start("v1").await.expect("sample app starts");
    let yaml = yaml.replace("{app}", &app.url(""));
    let config = backstop::config::parse(&yaml, &|_| None)
        .unwrap_or_else(|e| panic!("test config invalid:\n{e}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let daemon = backstop::start(config, listener, backstop::Options::new("v2"))
        .await
        .expect("daemon starts");
    let events = daemon.events();
    Setup {
        app,
        daemon,
        events,
    }
}

impl Setup {
    pub fn admin(&self, path: &str) -> String {
        format!("http://{}{path}", self.daemon.addr)
    }

    /// Wait (up to `within`) for an event matching `pred`; panic naming `what` otherwise.
    pub async fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> Event {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => panic!("no {what} within {within:?}"),
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(e)) => panic!("event stream ended while waiting for {what}: {e}"),
                Ok(Ok(e)) if pred(&e) => return e,
                Ok(Ok(_)) => {}
            }
        }
    }
}

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

/// A port nothing listens on right now, for servers that must be told one.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
