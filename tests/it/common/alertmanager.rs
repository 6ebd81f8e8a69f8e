//! A real Alertmanager (Debian package `prometheus-alertmanager`) in a
//! temporary directory, delivering nowhere: tests read alerts back through
//! its API. Not clustered, so each one is an independent replica.

use super::process::{Process, spawn_on_free_port};
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct Alertmanager {
    pub base: String,
    _process: Process,
    _dir: tempfile::TempDir,
}

fn binary() -> &'static str {
    for name in ["prometheus-alertmanager", "alertmanager"] {
        if Command::new(name).arg("--version").output().is_ok() {
            return name;
        }
    }
    panic!(
        "no Alertmanager binary: install it with `apt-get install -y prometheus-alertmanager` (scripts/test does this)"
    )
}

impl Alertmanager {
    /// Start one and wait until it is ready.
    pub async fn start() -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        // Deliver nowhere: the test reads alerts back through the API.
        std::fs::write(
            &config,
            "route: { receiver: nowhere }\nreceivers: [ { name: nowhere } ]\n",
        )
        .unwrap();
        let binary = binary();
        let log = dir.path().join("log");
        let (process, port) = spawn_on_free_port(&log, "Listening on", |port| {
            let mut am = Command::new(binary);
            am.arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .stdout(Stdio::null());
            am
        })
        .await;
        let am = Alertmanager {
            base: format!("http://127.0.0.1:{port}"),
            _process: process,
            _dir: dir,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/-/ready", am.base)).await
                && r.status().is_success()
            {
                return am;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Alertmanager not ready within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The alert of `rule` as Alertmanager holds it, if it does.
    pub async fn alert(&self, rule: &str) -> Option<serde_json::Value> {
        let alerts: serde_json::Value = reqwest::get(format!("{}/api/v2/alerts", self.base))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        alerts
            .as_array()?
            .iter()
            .find(|a| a["labels"]["rule"] == rule)
            .cloned()
    }
}
