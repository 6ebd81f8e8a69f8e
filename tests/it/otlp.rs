//! Traces over OTLP: the backstop binary, pointed by the standard
//! `OTEL_EXPORTER_OTLP_*` variables at the fake collector (`common::otlp`),
//! exports a span per probe and per scrape (HTTP client attributes) and per rule
//! transition, over gRPC and over HTTP/protobuf, and flushes them on
//! SIGTERM.

use crate::common::otlp::{FakeCollector, Span};
use crate::common::process::{Process, backstop};
use backstop::demo::app::{Behaviour, SampleApp};
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

/// Run the binary against the sample app for a while with these env vars,
/// make the health target fail, then SIGTERM it.
async fn run_backstop(app: &SampleApp, env: &[(&str, &str)]) {
    let mut config = tempfile::NamedTempFile::new().unwrap();
    write!(
        config,
        "service: checkout\nlisten: 127.0.0.1:0\ntargets:\n  - {{ name: health, url: \"{}\", interval: 100ms }}\n\
         \x20 - {{ name: metrics, url: \"{}\", interval: 100ms, scrape: true }}\n\
         rules:\n  - {{ name: health-down, when: {{ consecutive_failures: 2, target: health }} }}\n",
        app.url("/health"),
        // A scrape target whose body (JSON) is no exposition.
        app.url("/health")
    )
    .unwrap();
    let mut cmd = backstop();
    cmd.args(["run", "--config"])
        .arg(config.path())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = Process::spawn(&mut cmd);
    tokio::time::sleep(Duration::from_millis(800)).await;
    app.set(Behaviour::Status(500));
    tokio::time::sleep(Duration::from_millis(800)).await;
    app.set(Behaviour::Healthy);
    child.signal("TERM");
    assert_eq!(child.wait(), Some(0));
}

fn check(collector: &FakeCollector, service: &str) {
    let spans = collector.get().spans.clone();
    let probes: Vec<_> = spans.iter().filter(|s| s.name == "GET health").collect();
    assert!(probes.len() >= 5, "probe spans: {spans:#?}");
    let attribute =
        |s: &&&Span, k: &str, v: &str| s.attributes.get(k).map(String::as_str) == Some(v);
    let ok = &probes
        .iter()
        .find(|s| attribute(s, "backstop.result", "success"))
        .unwrap()
        .attributes;
    assert_eq!(ok["http.request.method"], "GET");
    assert_eq!(ok["http.response.status_code"], "200");
    assert_eq!(ok["server.address"], "127.0.0.1");
    assert!(ok["url.full"].ends_with("/health"));
    assert_eq!(ok["service.name"], service);
    let failed = probes.iter().find(|s| attribute(s, "error.type", "status"));
    assert!(failed.is_some(), "no failed probe span");
    // A span per scrape too, saying why the body could not be read.
    let scrapes: Vec<_> = spans.iter().filter(|s| s.name == "GET metrics").collect();
    assert!(scrapes.len() >= 5, "scrape spans: {spans:#?}");
    assert!(
        scrapes
            .iter()
            .any(|s| attribute(&s, "error.type", "unparsable")),
        "{scrapes:#?}"
    );
    let firing = &spans
        .iter()
        .find(|s| s.name == "rule health-down firing")
        .expect("a transition span")
        .attributes;
    assert_eq!(firing["backstop.to"], "firing");
    assert!(firing["backstop.evidence"].contains("consecutive_failures"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_over_grpc_and_flushed_on_shutdown() {
    backstop::init_tls();
    let app = SampleApp::start("v1").await.unwrap();
    let collector = FakeCollector::grpc().await;
    let endpoint = collector.endpoint();
    run_backstop(&app, &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]).await;
    check(&collector, "backstop-checkout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_over_http_protobuf_honour_otel_variables() {
    backstop::init_tls();
    let app = SampleApp::start("v1").await.unwrap();
    let collector = FakeCollector::http().await;
    let endpoint = collector.endpoint();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_SERVICE_NAME", "checkout-sidecar"),
    ];
    run_backstop(&app, &env).await;
    check(&collector, "checkout-sidecar");
}
