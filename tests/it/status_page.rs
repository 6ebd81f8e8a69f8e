//! The status page as the on-call engineer sees it: loaded in a real
//! headless Chromium (Debian's, installed by `scripts/test`) from a running
//! daemon after a rollback. The rendered DOM must open with what happened,
//! show the SLO's budget, the failing target's reason, and draw the charts
//! inline. A screenshot is saved as `target/status-page.png`.

use crate::common::Daemon;
use crate::common::fake_pagerduty::FakePagerDuty;
use crate::common::harness::page;
use backstop::demo::app::Behaviour;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("no chromium on PATH: scripts/test installs Debian's `chromium` package");
}

/// Run headless Chromium on `url` with `args`; its standard output.
fn headless(url: &str, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 DOM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_rollback_the_page_says_so_first_and_draws_the_last_minutes() {
    backstop::init_tls();
    let pd = FakePagerDuty::start().await;
    let mut key = tempfile::NamedTempFile::new().unwrap();
    writeln!(key, "{}", pd.routing_key).unwrap();
    let yaml = format!(
        r#"
service: checkout
targets:
  - name: health
    url: "{{app}}/health"
    interval: 100ms
slos:
  - name: availability
    objective: 99
    targets: [health]
rules:
  - name: health-down
    when: {{ consecutive_failures: 5, target: health }}
    do: [rollback, page]
rollback:
  webhook: {{ url: "{{app}}/admin/rollback" }}
page:
  pagerduty: {{ routing_key_file: "{}", url: "{}" }}
"#,
        key.path().display(),
        pd.url
    );
    let mut s = Daemon::with_app(&yaml).await;
    // Healthy for one chart step, then a bad release the webhook rolls back.
    tokio::time::sleep(Duration::from_secs(11)).await;
    s.app().deploy("v2", Behaviour::Status(500));
    s.wait_for(
        "the incident left open",
        Duration::from_secs(10),
        page("left_open"),
    )
    .await;
    // Let the step with the failures close, so the charts show them.
    tokio::time::sleep(Duration::from_secs(11)).await;

    let url = s.admin("/");
    let dom = tokio::task::spawn_blocking({
        let url = url.clone();
        move || headless(&url, &["--dump-dom"])
    })
    .await
    .unwrap();

    let headline = element(&dom, "id=\"headline\"");
    assert!(
        headline.contains("class=\"headline rolled_back\""),
        "{headline}"
    );
    assert!(
        headline.contains("v2 was rolled back at ")
            && headline
                .contains(" UTC by health-down: webhook accepted the rollback of revision v2")
            && headline.contains("The incident stays open for a person"),
        "{headline}"
    );
    // The headline comes before every table.
    assert!(dom.find("id=\"headline\"") < dom.find("<table"), "{dom}");

    // The SLO with its budget, and its burn-rate chart.
    assert!(dom.contains(">availability</td>"), "the SLO's row: {dom}");
    assert!(dom.contains("99 %"), "objective as configured: {dom}");
    // The target's last failure, with its reason.
    assert!(
        dom.contains("<b>status</b>") && dom.contains("500"),
        "the failure's reason: {dom}"
    );
    // Three charts (burn rate, error ratio, p95), each with drawn points;
    // the error-ratio chart saw the failures.
    let charts: Vec<&str> = dom.split("<svg class=\"chart\"").skip(1).collect();
    assert_eq!(charts.len(), 3, "{dom}");
    for c in &charts {
        assert!(c.contains("<polyline points=\""), "an empty chart: {c}");
    }
    let ratio = charts
        .iter()
        .find(|c| c.contains("health error ratio"))
        .expect("the error-ratio chart");
    let raised = ratio
        .split("points=\"")
        .skip(1)
        .flat_map(|p| p.split('"').next().unwrap().split(' '))
        .filter_map(|xy| xy.split(',').nth(1)?.parse::<f64>().ok())
        .any(|y| y < 38.0);
    assert!(raised, "the failures show above the baseline: {ratio}");
    // No outside asset: nothing is loaded from anywhere.
    for needle in ["<script", "src=\"http", "href=\"http", "@import", "url("] {
        assert!(!dom.contains(needle), "outside asset {needle:?} in {dom}");
    }

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/")
        .join("status-page.png");
    let arg = format!("--screenshot={}", shot.display());
    tokio::task::spawn_blocking(move || headless(&url, &[&arg, "--window-size=1400,900"]))
        .await
        .unwrap();
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        png.len()
    );
    s.shutdown().await;
}

/// The start tag containing `attr`, and everything up to the next tag's end.
fn element<'a>(dom: &'a str, attr: &str) -> &'a str {
    let at = dom
        .find(attr)
        .unwrap_or_else(|| panic!("no {attr} in {dom}"));
    let start = dom[..at].rfind('<').unwrap();
    let end = dom[at..].find("</").map_or(dom.len(), |e| at + e);
    &dom[start..end]
}
