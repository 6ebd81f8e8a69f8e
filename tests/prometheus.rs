//! A real Prometheus (Debian package `prometheus`) scrapes a running
//! backstop; the test reads backstop's series back through Prometheus's
//! HTTP API and checks their labels.

mod common;

use backstop::demo::app::Behaviour;
use std::process::{Child, Command, Stdio};
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

struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus(scrape: std::net::SocketAddr) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
             scrape_configs:\n  - job_name: backstop\n    static_configs: [{{ targets: ['{scrape}'] }}]\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run `prometheus` ({e}): install it with `apt-get install -y prometheus` (scripts/test does this)")
        });
    Prometheus {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

impl Prometheus {
    /// The result vector of an instant query (empty on any error so callers can poll).
    async fn query(&self, q: &str) -> Vec<serde_json::Value> {
        let mut url = url::Url::parse(&format!("{}/api/v1/query", self.base)).unwrap();
        url.query_pairs_mut().append_pair("query", q);
        let Ok(resp) = reqwest::get(url).await else {
            return Vec::new();
        };
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Poll until `q` returns at least one series, for up to `within`.
    async fn wait(&self, q: &str, within: Duration) -> Vec<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let r = self.query(q).await;
            if !r.is_empty() {
                return r;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Prometheus returned nothing for {q} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn label<'a>(series: &'a serde_json::Value, name: &str) -> &'a str {
    series["metric"][name].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_backstop_series_with_their_labels() {
    let s = common::start(CONFIG).await;
    let prom = start_prometheus(s.daemon.addr);
    let within = Duration::from_secs(30);

    let up = prom.wait("up{job=\"backstop\"} == 1", within).await;
    assert_eq!(label(&up[0], "instance"), s.daemon.addr.to_string());

    // Let some probes fail so failure series exist too.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.app.set(Behaviour::Status(503));
    prom.wait(
        "backstop_probes_total{result=\"failure\",reason=\"status\",target=\"health\"} > 0",
        within,
    )
    .await;

    let build = prom.wait("backstop_build_info", within).await;
    assert_eq!(label(&build[0], "service"), "checkout");
    assert_eq!(label(&build[0], "version"), env!("CARGO_PKG_VERSION"));

    let ok = prom
        .wait("backstop_probes_total{result=\"success\"}", within)
        .await;
    let mut targets: Vec<&str> = ok.iter().map(|s| label(s, "target")).collect();
    targets.sort();
    assert_eq!(targets, ["analytics-executive", "health"]);

    prom.wait("backstop_target_up{target=\"health\"} == 0", within)
        .await;
    prom.wait(
        "backstop_target_up{target=\"analytics-executive\"} == 0",
        within,
    )
    .await;
    for rule in ["fast-burn", "health-down"] {
        let q = format!("backstop_rule_state{{rule=\"{rule}\",state=\"firing\"}} == 1");
        prom.wait(&q, within).await;
    }
    let states = prom
        .query("backstop_rule_state{rule=\"health-down\"}")
        .await;
    let mut states: Vec<&str> = states.iter().map(|s| label(s, "state")).collect();
    states.sort();
    assert_eq!(states, ["firing", "ok", "pending"]);

    let sli = prom
        .wait("backstop_slo_sli_ratio{slo=\"availability\"}", within)
        .await;
    let mut windows: Vec<&str> = sli.iter().map(|s| label(s, "window")).collect();
    windows.sort();
    assert_eq!(windows, ["1m", "5m"]);
    prom.wait(
        "backstop_slo_burn_rate{slo=\"availability\",window=\"1m\"} > 14.4",
        within,
    )
    .await;
    prom.wait(
        "backstop_revision_info{revision=\"v2\",service=\"checkout\"}",
        within,
    )
    .await;

    let p95 = prom
        .wait(
            "histogram_quantile(0.95, sum by (le) (rate(backstop_probe_duration_seconds_bucket{target=\"health\"}[1m])))",
            within,
        )
        .await;
    let v: f64 = p95[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(v > 0.0 && v < 1.0, "p95 {v}");
    s.daemon.shutdown().await;
}
