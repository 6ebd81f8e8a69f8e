//! A real instrumented app: `tests/it/exporter/app.py`, on the
//! `prometheus_client` library from PyPI (in a venv under target/, made by
//! `scripts/exporter-venv`, which this runs: it does nothing when the venv
//! is there). The test drives its counters and its misbehaviour over HTTP.

use super::get;
use super::process::{Process, spawn_on_free_port};
use std::path::Path;
use std::process::Command;

pub struct Exporter {
    base: String,
    _process: Process,
    _dir: tempfile::TempDir,
}

impl Exporter {
    pub async fn start() -> Exporter {
        backstop::init_tls();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new(root.join("scripts/exporter-venv"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run scripts/exporter-venv: {e}"));
        assert!(
            out.status.success(),
            "scripts/exporter-venv failed (it needs python3 with venv, and PyPI):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let python = root.join(String::from_utf8(out.stdout).unwrap().trim());
        let app = root.join("tests/it/exporter/app.py");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let (process, port) = spawn_on_free_port(&log, "listening on", |port| {
            let mut cmd = Command::new(&python);
            cmd.arg(&app).arg(port.to_string());
            cmd
        })
        .await;
        Exporter {
            base: format!("http://127.0.0.1:{port}"),
            _process: process,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Count `n` requests of `path` answered with `code`, taking `seconds`.
    pub async fn serve(&self, path: &str, code: u16, n: u32, seconds: f64) {
        let url = self.url(&format!(
            "/serve?path={path}&code={code}&n={n}&seconds={seconds}"
        ));
        assert_eq!(get(&url).await.0, 200);
    }

    /// Drop the series of `path` and `code`.
    pub async fn remove(&self, path: &str, code: u16) {
        let url = self.url(&format!("/remove?path={path}&code={code}"));
        assert_eq!(get(&url).await.0, 200);
    }

    /// `normal`, `reset` (new counters from zero), `nan` (NaN and +Inf
    /// counters), `nan-text` (the same in text 0.0.4), `inf-only`,
    /// `huge` (a 20 MB body), `slow` (2 s), `binary` (not UTF-8),
    /// `text-only` (text 0.0.4 whatever is asked).
    pub async fn mode(&self, name: &str) {
        assert_eq!(get(&self.url(&format!("/mode?name={name}"))).await.0, 200);
    }
}
