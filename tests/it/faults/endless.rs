//! B: a receiver (or anything on the way) answers with a body that never
//! ends. backstop reads a few KiB of it, drops the connection, judges the
//! answer on its status, and says in the record that the answer was cut;
//! the real daemon's memory stays small meanwhile.

use super::{DEDUP_KEY, config};
use crate::common::fake_pagerduty::FakePagerDuty;
use crate::common::faulty::{Panics, RawAnswer, RawReceiver};
use crate::common::harness::*;
use backstop::Event;
use backstop::demo::app::{Behaviour, SampleApp};
use std::io::Write;
use std::time::Duration;
use tokio::time::Instant;

/// What the record says of an answer cut at the cap.
const CUT: &str = "its answer was longer than 8 KiB and was cut there, the rest not read";

/// Far more than the cap and the socket buffers between the two ends; far
/// less than what a receiver streams in one timeout to a client that reads on.
const WRITTEN_AT_MOST: u64 = 32 << 20;

/// The receiver streamed its body to a client that stopped reading at once.
fn assert_cut_off(receiver: &RawReceiver) {
    let written = receiver.written();
    assert!(
        written < WRITTEN_AT_MOST,
        "the receiver wrote {} MiB: its body was read on",
        written >> 20
    );
}

#[tokio::test]
async fn b_webhook_answers_an_endless_body() {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let deployer = RawReceiver::start(|_| RawAnswer::Endless(200)).await;
    let extra = format!(
        "rollback:\n  webhook: {{ url: \"{}\", timeout: 2s }}\n",
        deployer.url("/rollback")
    );
    let mut d = Daemon::start(&config(&app, "rollback", &extra)).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    let mark = d.mark().await;
    app.set(Behaviour::Status(500));
    let e = d
        .wait_for(
            "the rollback outcome",
            Duration::from_secs(5),
            action("rollback"),
        )
        .await;
    let Event::Action(r) = e else { unreachable!() };
    // The 200 says the deployer took it; the record says the rest.
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    assert!(r.detail.contains("(HTTP 200)"), "{}", r.detail);
    assert!(r.detail.ends_with(CUT), "{}", r.detail);
    assert_eq!(deployer.requests().len(), 1, "taken once, not sent again");
    assert_cut_off(&deployer);
    d.assert_on_schedule(&mark).await;
    d.assert_serving().await;
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.shutdown().await;
}

#[tokio::test]
async fn b_pagerduty_answers_an_endless_body() {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let pd = RawReceiver::start(|_| RawAnswer::Endless(202)).await;
    let mut key = tempfile::NamedTempFile::new().unwrap();
    writeln!(key, "0123456789abcdef0123456789abcdef").unwrap();
    let extra = format!(
        "page:\n  pagerduty: {{ routing_key_file: \"{}\", url: \"{}\", timeout: 2s }}\n",
        key.path().display(),
        pd.url("/v2/enqueue")
    );
    let mut d = Daemon::start(&config(&app, "page", &extra)).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    app.set(Behaviour::Status(500));
    let e = d
        .wait_for("the trigger", Duration::from_secs(5), page("triggered"))
        .await;
    let Event::Action(r) = e else { unreachable!() };
    assert_eq!(
        r.detail,
        format!("PagerDuty took the trigger ({DEDUP_KEY}); {CUT}")
    );
    let requests = pd.requests();
    assert_eq!(
        requests.len(),
        1,
        "taken once, not sent again: {requests:#?}"
    );
    assert_eq!(requests[0].body["event_action"], "trigger");
    assert_cut_off(&pd);
    let text = d.metrics().await;
    let delivered = |result| {
        sum(
            &text,
            "backstop_page_deliveries_total",
            &[("receiver", "pagerduty"), ("result", result)],
        )
    };
    assert_eq!((delivered("ok"), delivered("failed")), (1.0, 0.0));
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.shutdown().await;
}

#[tokio::test]
async fn b_alertmanager_answers_an_endless_body() {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let am = RawReceiver::start(|_| RawAnswer::Endless(200)).await;
    let extra = format!(
        "page:\n  alertmanager: {{ url: \"{}\", timeout: 2s, resend_interval: 10m }}\n",
        am.url("/")
    );
    let mut d = Daemon::start(&config(&app, "page", &extra)).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    app.set(Behaviour::Status(500));
    let e = d
        .wait_for(
            "the firing alert",
            Duration::from_secs(5),
            page("triggered"),
        )
        .await;
    let Event::Action(r) = e else { unreachable!() };
    assert_eq!(
        r.detail,
        format!("firing alert sent to 1 of 1 Alertmanager(s); {CUT}")
    );
    let requests = am.requests();
    assert_eq!(
        requests.len(),
        1,
        "taken once, not sent again: {requests:#?}"
    );
    assert_eq!(requests[0].path, "/api/v2/alerts");
    assert_cut_off(&am);
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.shutdown().await;
}

#[tokio::test]
async fn b_grafana_answers_an_endless_body() {
    let panics = Panics::watch();
    let app = SampleApp::start("v1").await.unwrap();
    let grafana = RawReceiver::start(|_| RawAnswer::Endless(200)).await;
    // A page rule leaves marks; PagerDuty takes its page.
    let pd = FakePagerDuty::start().await;
    let mut key = tempfile::NamedTempFile::new().unwrap();
    writeln!(key, "{}", pd.routing_key).unwrap();
    let extra = format!(
        "page:\n  pagerduty: {{ routing_key_file: \"{}\", url: \"{}\" }}\nannotate:\n  grafana: {{ url: \"{}\" }}\n",
        key.path().display(),
        pd.url,
        grafana.url("/")
    );
    let mut d = Daemon::start(&config(&app, "page", &extra)).await;
    d.wait_for("a healthy probe", Duration::from_secs(3), probe_succeeded)
        .await;
    app.set(Behaviour::Status(500));
    d.wait_for("the trigger", Duration::from_secs(5), page("triggered"))
        .await;
    d.wait_metrics("the mark taken", Duration::from_secs(3), |text| {
        sum(
            text,
            "backstop_page_deliveries_total",
            &[("receiver", "grafana"), ("result", "ok")],
        ) == 1.0
    })
    .await;
    let requests = grafana.requests();
    assert_eq!(
        requests.len(),
        1,
        "taken once, not sent again: {requests:#?}"
    );
    assert_eq!(requests[0].path, "/api/annotations");
    assert_cut_off(&grafana);
    assert_eq!(Panics::watch(), panics, "the daemon panicked");
    d.shutdown().await;
}

/// Peak resident memory (VmHWM) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// The real daemon, with every receiver (webhook, PagerDuty, Alertmanager,
/// Grafana) streaming an endless body for longer than its timeout, stays
/// small. Its peak resident memory is printed (`--nocapture`).
#[tokio::test]
async fn b_the_daemon_stays_small_while_every_receiver_streams_forever() {
    /// Stop the run well before a daemon that reads on hurts the machine.
    const GIVE_UP_KIB: u64 = 512 << 10;
    const WANT_BELOW_KIB: u64 = 64 << 10;
    let app = SampleApp::start("v1").await.unwrap();
    let receivers = [
        RawReceiver::start(|_| RawAnswer::Endless(200)).await,
        RawReceiver::start(|_| RawAnswer::Endless(202)).await,
        RawReceiver::start(|_| RawAnswer::Endless(200)).await,
        RawReceiver::start(|_| RawAnswer::Endless(200)).await,
    ];
    let [webhook, pd, am, grafana] = &receivers;
    let mut key = tempfile::NamedTempFile::new().unwrap();
    writeln!(key, "0123456789abcdef0123456789abcdef").unwrap();
    let mut yaml = tempfile::NamedTempFile::new().unwrap();
    write!(
        yaml,
        r#"
service: checkout
listen: 127.0.0.1:0
targets:
  - {{ name: health, url: "{}", interval: 100ms }}
rules:
  - {{ name: health-down, when: {{ consecutive_failures: 1, target: health }}, do: [rollback, page] }}
rollback:
  webhook: {{ url: "{}", timeout: 3s }}
page:
  pagerduty: {{ routing_key_file: "{}", url: "{}", timeout: 3s }}
  alertmanager: {{ url: "{}", timeout: 3s }}
annotate:
  grafana: {{ url: "{}" }}
"#,
        app.url("/health"),
        webhook.url("/rollback"),
        key.path().display(),
        pd.url("/v2/enqueue"),
        am.url("/"),
        grafana.url("/"),
    )
    .unwrap();
    app.set(Behaviour::Status(500));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_backstop"))
        .args(["run", "--revision", "v2", "--config"])
        .arg(yaml.path())
        .env("RUST_LOG", "error")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = Instant::now();
    let mut peak = 0;
    let mut all_answered: Option<Instant> = None;
    // Every receiver answered, then longer than the longest timeout (the
    // webhook's 3 s, Grafana's 5 s) for the bodies to stream.
    let outcome = loop {
        peak = peak.max(peak_rss_kib(pid));
        if peak > GIVE_UP_KIB {
            break Err(format!(
                "peak RSS passed {} MiB {:.1} s after the start; stopped",
                GIVE_UP_KIB >> 10,
                started.elapsed().as_secs_f64()
            ));
        }
        match all_answered {
            Some(at) if at.elapsed() > Duration::from_secs(6) => break Ok(()),
            Some(_) => {}
            None if receivers.iter().all(|r| !r.requests().is_empty()) => {
                all_answered = Some(Instant::now());
            }
            None if started.elapsed() > Duration::from_secs(10) => {
                let got: Vec<usize> = receivers.iter().map(|r| r.requests().len()).collect();
                break Err(format!("not every receiver was called: {got:?}"));
            }
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "peak RSS (VmHWM) of backstop with four endless answers: {:.1} MiB",
        peak as f64 / 1024.0
    );
    outcome.unwrap();
    assert!(
        peak < WANT_BELOW_KIB,
        "peak RSS {} KiB, want below {} KiB",
        peak,
        WANT_BELOW_KIB
    );
    for r in &receivers {
        assert_cut_off(r);
    }
}
