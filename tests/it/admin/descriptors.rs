//! Issue 11's headline: the real binary under a 256-descriptor limit,
//! 500 idle admin connections from 100 addresses (half of them only an
//! HTTP/2 preface). Every probe opens a new connection (the app is asked
//! to close each one), so each needs a free descriptor at that moment: no
//! probe may fail, no rollback may start, and the server closes every idle
//! connection itself.

use super::connections::{H2_PREFACE, closed, connect_from};
use crate::common::fake_deployer::FakeDeployer;
use crate::common::harness::sum;
use crate::common::process::spawn_on_free_port;
use backstop::demo::app::SampleApp;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, sleep};

const LIMIT: usize = 256;
const CONNECTIONS: usize = 500;
const ADDRESSES: usize = 100;
const WITHIN: Duration = Duration::from_secs(15);

async fn try_get(http: &reqwest::Client, url: &str) -> Option<(u16, String)> {
    let resp = http.get(url).send().await.ok()?;
    let code = resp.status().as_u16();
    Some((code, resp.text().await.ok()?))
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_admin_connections_cannot_starve_probes_of_descriptors() {
    backstop::init_tls();
    let app = SampleApp::start("v2").await.unwrap();
    let deployer = FakeDeployer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backstop.yaml");
    let yaml = |port: u16| {
        format!(
            r#"
service: checkout
listen: 127.0.0.1:{port}
targets:
  - name: health
    url: "{}"
    interval: 500ms
    # A new connection per probe, as with an app that closes idle ones.
    headers: {{ Connection: close }}
rules:
  - name: health-down
    when: {{ consecutive_failures: 3, target: health }}
    do: [rollback]
rollback:
  webhook: {{ url: "{}" }}
"#,
            app.url("/health"),
            deployer.url()
        )
    };
    let log = dir.path().join("log");
    // Killed (by its id) when the test ends, passed or not.
    let (daemon, port) = spawn_on_free_port(&log, "backstop started", |port| {
        std::fs::write(&file, yaml(port)).unwrap();
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("ulimit -n {LIMIT} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_backstop"))
            .args(["run", "--revision", "v2", "--config"])
            .arg(&file)
            .stdout(Stdio::null());
        sh
    })
    .await;
    let pid = daemon.id();
    let admin = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let metrics = || async {
        let (code, text) = try_get(&http, &format!("{admin}/metrics"))
            .await
            .expect("/metrics answers");
        assert_eq!(code, 200);
        text
    };
    let probes =
        |text: &str, result: &str| sum(text, "backstop_probes_total", &[("result", result)]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some((200, text)) = try_get(&http, &format!("{admin}/metrics")).await
            && probes(&text, "success") >= 4.0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "backstop did not start probing:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        sleep(Duration::from_millis(100)).await;
    }
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    assert!(
        nofile.split_whitespace().nth(3) == Some("256"),
        "the limit is not in force: {nofile}"
    );
    let before = metrics().await;
    let at_rest = open_descriptors(pid);

    let peak = Arc::new(AtomicUsize::new(at_rest));
    let sampler = tokio::spawn({
        let peak = peak.clone();
        async move {
            loop {
                peak.fetch_max(open_descriptors(pid), Ordering::SeqCst);
                sleep(Duration::from_millis(5)).await;
            }
        }
    });

    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let attack = Instant::now();
    let mut watchers = tokio::task::JoinSet::new();
    for i in 0..CONNECTIONS {
        let from = Ipv4Addr::new(127, 0, 4, (i % ADDRESSES) as u8 + 1);
        let mut stream = connect_from(addr, from).await;
        let opened = Instant::now();
        if i % 2 == 1 {
            let _ = stream.write_all(H2_PREFACE).await;
        }
        watchers.spawn(async move { closed(&mut stream, opened, WITHIN).await });
    }
    let opening = attack.elapsed();
    let mut closed_in = Vec::new();
    while let Some(done) = watchers.join_next().await {
        closed_in.extend(done.unwrap());
    }
    let attack_took = attack.elapsed();
    // One more probe interval: a failure at the very end would show now.
    sleep(Duration::from_millis(600)).await;
    sampler.abort();
    let after = metrics().await;

    // Counts, as integers (an empty sum of f64 is -0).
    let count = |name: &str, want: &[(&str, &str)]| sum(&after, name, want) as u64;
    let failed = count("backstop_probes_total", &[("result", "failure")])
        - probes(&before, "failure") as u64;
    let succeeded = count("backstop_probes_total", &[("result", "success")])
        - probes(&before, "success") as u64;
    let rollbacks = count("backstop_rollbacks_total", &[]);
    let attempts = count("backstop_action_attempts_total", &[("action", "rollback")]);
    let slowest = closed_in.iter().max().copied().unwrap_or_default();
    let reason = |why: &str| {
        count(
            "backstop_admin_connections_closed_total",
            &[("reason", why)],
        )
    };
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let emfile = log_text.matches("Too many open files").count();
    println!(
        "for {CONNECTIONS} idle admin connections under a {LIMIT}-descriptor limit: \
         probes failed {failed} (want 0), connections closed {} of {CONNECTIONS} within {:.1} s \
         (slowest; opened in {:.2} s, all closed {:.1} s after the first opened)",
        closed_in.len(),
        slowest.as_secs_f64(),
        opening.as_secs_f64(),
        attack_took.as_secs_f64(),
    );
    println!(
        "probes succeeded meanwhile {succeeded}; rollbacks {rollbacks}, rollback attempts {attempts}, \
         deployer calls {}; descriptors at rest {at_rest}, peak {} of {LIMIT}; closed by the server: \
         evicted {}, no_request {}; refused {}; \"Too many open files\" in the log: {emfile}",
        deployer.calls().len(),
        peak.load(Ordering::SeqCst),
        reason("evicted"),
        reason("no_request"),
        count("backstop_admin_connections_rejected_total", &[]),
    );
    assert_eq!(failed, 0, "probes failed:\n{log_text}");
    assert!(succeeded >= 4, "probing stalled: {succeeded} probes");
    assert_eq!(closed_in.len(), CONNECTIONS, "connections left open");
    assert!(slowest <= WITHIN);
    assert!(deployer.calls().is_empty(), "{:?}", deployer.calls());
    assert_eq!(rollbacks + attempts, 0);
    assert!(peak.load(Ordering::SeqCst) < LIMIT);
    assert_eq!(emfile, 0, "{log_text}");
}
