//! A real Prometheus (Debian package `prometheus`) in a temporary
//! directory: it scrapes the given backstop sidecars every second, loads
//! `alerts/*.rules.yml` and evaluates them every second, and answers PromQL
//! through its HTTP API.

use super::process::{Process, spawn_on_free_port};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct Prometheus {
    base: String,
    _process: Process,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Start Prometheus scraping `targets` (job `backstop`), with the rule
    /// files matching `rule_files` (a glob) if given; it listens when this
    /// returns.
    pub async fn start(targets: &[SocketAddr], rule_files: Option<&Path>) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        std::fs::write(
            &config,
            format!(
                "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
                 rule_files: [{}]\n\
                 scrape_configs:\n  - job_name: backstop\n    static_configs: [{{ targets: [{}] }}]\n",
                rule_files.map(|f| format!("'{}'", f.display())).unwrap_or_default(),
                targets.join(", ")
            ),
        )
        .unwrap();
        if Command::new("prometheus")
            .arg("--version")
            .output()
            .is_err()
        {
            panic!(
                "cannot run `prometheus`: install it with `apt-get install -y prometheus` (scripts/test does this)"
            );
        }
        let log = dir.path().join("log");
        let (process, port) = spawn_on_free_port(&log, "Listening on", |port| {
            let mut prometheus = Command::new("prometheus");
            prometheus
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null());
            prometheus
        })
        .await;
        Prometheus {
            base: format!("http://127.0.0.1:{port}"),
            _process: process,
            _dir: dir,
        }
    }

    /// GET an API path; `Err` carries Prometheus's own error message.
    async fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let mut url = url::Url::parse(&format!("{}{path}", self.base)).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        let resp = reqwest::get(url)
            .await
            .map_err(|e| format!("Prometheus unreachable: {e}"))?;
        let body: Value = resp
            .json()
            .await
            .map_err(|e| format!("Prometheus answered something that is not JSON: {e}"))?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!(
                "{}: {}",
                body["errorType"].as_str().unwrap_or("error"),
                body["error"].as_str().unwrap_or("(no message)")
            ))
        }
    }

    /// The series of an instant query at the current time.
    pub async fn instant(&self, q: &str) -> Result<Vec<Value>, String> {
        let data = self.api("/api/v1/query", &[("query", q)]).await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// The series of a range query from `start` to now (Unix seconds),
    /// one point a second, as Grafana runs a panel's query.
    pub async fn range(&self, q: &str, start: f64, end: f64) -> Result<Vec<Value>, String> {
        let (start, end) = (format!("{start:.3}"), format!("{end:.3}"));
        let params = [
            ("query", q),
            ("start", &start),
            ("end", &end),
            ("step", "1"),
        ];
        let data = self.api("/api/v1/query_range", &params).await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// Every rule group Prometheus loaded, with each rule's health.
    pub async fn rule_groups(&self) -> Vec<Value> {
        let data = self.api("/api/v1/rules", &[]).await.unwrap();
        data["groups"].as_array().cloned().unwrap_or_default()
    }

    /// Poll until the instant query `q` returns at least one series (or,
    /// with `present` false, none), for up to `within`; returns them.
    pub async fn wait(&self, q: &str, present: bool, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match self.instant(q).await {
                Ok(r) if r.is_empty() != present => return r,
                _ => {}
            }
            let what = if present { "something" } else { "nothing" };
            assert!(
                tokio::time::Instant::now() < deadline,
                "Prometheus did not return {what} for {q} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// How many series have at least one value that is a number (NaN, which
/// a panel shows as nothing, does not count).
pub fn series_with_data(result: &[Value]) -> usize {
    let has_number = |s: &Value| {
        let points: Vec<&Value> = match s["values"].as_array() {
            Some(range) => range.iter().collect(),
            None => vec![&s["value"]],
        };
        points
            .iter()
            .any(|p| p[1].as_str().is_some_and(|v| v != "NaN"))
    };
    result.iter().filter(|s| has_number(s)).count()
}

/// Seconds since the Unix epoch, as Prometheus's API takes them.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
