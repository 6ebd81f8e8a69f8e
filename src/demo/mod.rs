//! `backstop demo`: the first thing a new user runs. It starts the sample
//! app on loopback, deploys a bad "v2", starts backstop guarding it with a
//! webhook rollback pointed at the app, and prints what happens as it
//! happens. Nothing about the decision is scripted: the probes are real
//! HTTP, the rules and the rollback are the same code as in production.

pub mod app;
mod load;

use crate::daemon::Event;
use crate::rules::State;
use anyhow::{Context, bail};
use app::{Behaviour, SampleApp};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

/// The demo gives up (and fails) if the story has not ended by then.
const DEADLINE: Duration = Duration::from_secs(45);
/// v2's database pool: healthy for about this many requests.
const POOL: u32 = 12;

/// The demo's configuration, in the same YAML a user writes.
fn config_yaml(app: &str) -> String {
    format!(
        r#"
service: checkout
listen: 127.0.0.1:0
targets:
  - name: health
    url: {app}/health
    interval: 500ms
    timeout: 400ms
    expect: {{ status: [200], json: {{ status: ok }} }}
  - name: analytics-executive
    url: {app}/api/v1/analytics/executive
    interval: 500ms
    timeout: 400ms
    expect: {{ json: {{ "data.kpis.0.name": revenue }}, max_latency: 300ms }}
slos:
  - name: availability
    objective: 99.9
  - name: analytics-latency
    objective: 95
    latency_threshold: 200ms
    targets: [analytics-executive]
rules:
  - name: health-down
    when: {{ consecutive_failures: 3, target: health }}
    for: 1s
    do: [rollback]
  - name: analytics-errors
    when: {{ error_rate: {{ above: "20%", window: 1m, target: analytics-executive }} }}
    for: 2s
    do: [rollback]
rollback:
  webhook: {{ url: {app}/admin/rollback }}
  bake: 30m
  cooldown: 10m
"#
    )
}

pub async fn run() -> anyhow::Result<()> {
    let app = SampleApp::start("v1")
        .await
        .context("starting the sample app")?;
    let yaml = config_yaml(&app.url(""));
    let config = crate::config::parse(&yaml, &|_| None)
        .map_err(|e| anyhow::anyhow!("the demo's own configuration is invalid:\n{e}"))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .context("binding the admin server")?;
    let admin = listener.local_addr()?;

    println!("backstop demo: a bad release caught and rolled back, over real HTTP on 127.0.0.1\n");
    println!(
        "  sample app  {} (service \"checkout\": /health, /api/v1/analytics/executive)",
        app.url("")
    );
    println!("  backstop    http://{admin}/status  (and /metrics)");
    println!("  rules       health-down: health fails 3 times in a row, for 1s → rollback");
    println!(
        "              analytics-errors: analytics error rate above 20% over 1m, for 2s → rollback"
    );
    println!(
        "  rollback    webhook POST {}\n",
        app.url("/admin/rollback")
    );

    let t0 = Instant::now();
    let say =
        |who: &str, what: &str| println!("{:>6.2}s  {who:<9} {what}", t0.elapsed().as_secs_f64());
    say("app", "serving v1, healthy");
    app.deploy("v2", Behaviour::PoolLeak { pool: POOL });
    say(
        "deploy",
        &format!("v2 rolled out (it leaks a database connection per request; pool of {POOL})"),
    );
    let running = crate::start(config, listener, crate::Options::new("v2")).await?;
    say("backstop", "started, guarding revision v2");

    let mut events = running.events();
    let mut versions = app.versions();
    let mut story = Story {
        t0,
        first_failure: None,
        rolled_back_at: None,
        not_ok: Vec::new(),
        fired_any: false,
        last_ok: Default::default(),
    };
    let deadline = tokio::time::sleep(DEADLINE);
    tokio::pin!(deadline);
    while !story.done() {
        tokio::select! {
            _ = &mut deadline => {
                running.shutdown().await;
                bail!("the demo did not finish within {DEADLINE:?}; this is a bug, please report it");
            }
            changed = versions.changed() => {
                if changed.is_ok() {
                    let v = versions.borrow_and_update().clone();
                    say("app", &format!("now serving {v} again (the webhook rolled it back)"));
                    story.rolled_back_at = Some(t0.elapsed());
                }
            }
            e = events.recv() => match e {
                Ok(event) => story.show(&event, &say),
                Err(RecvError::Lagged(n)) => say("demo", &format!("({n} events skipped)")),
                Err(RecvError::Closed) => break,
            }
        }
    }
    let status = fetch_status(admin).await;
    running.shutdown().await;
    println!();
    story.summary();
    if let Some(s) = status {
        println!("\n/status said, just before exit:\n{s}");
    }
    Ok(())
}

/// What the demo has seen so far, and how it prints it.
struct Story {
    t0: Instant,
    first_failure: Option<Duration>,
    rolled_back_at: Option<Duration>,
    /// Rules pending or firing now; the story ends when none is.
    not_ok: Vec<String>,
    fired_any: bool,
    last_ok: std::collections::HashMap<String, bool>,
}

impl Story {
    fn done(&self) -> bool {
        self.rolled_back_at.is_some() && self.fired_any && self.not_ok.is_empty()
    }

    fn show(&mut self, e: &Event, say: &impl Fn(&str, &str)) {
        match e {
            Event::Probe {
                target,
                outcome,
                latency,
                ..
            } => {
                let ok = outcome.is_success();
                let changed = self.last_ok.insert(target.clone(), ok) != Some(ok);
                match outcome {
                    crate::probe::Outcome::Success { status } if changed => say(
                        "probe",
                        &format!(
                            "{target} ok ({status}, {:.1} ms)",
                            latency.as_secs_f64() * 1e3
                        ),
                    ),
                    crate::probe::Outcome::Failure { reason, detail } => {
                        if self.first_failure.is_none() {
                            self.first_failure = Some(self.t0.elapsed());
                        }
                        say(
                            "probe",
                            &format!("{target} FAILED [{}] {detail}", reason.metric_label()),
                        )
                    }
                    _ => {}
                }
            }
            Event::Transition {
                rule,
                from,
                to,
                evidence,
            } => {
                let word = match (from, to) {
                    (State::Firing, State::Ok) => "resolved",
                    (_, State::Ok) => "cleared",
                    (_, State::Pending) => "PENDING",
                    (_, State::Firing) => "FIRING",
                };
                self.fired_any |= *to == State::Firing;
                self.not_ok.retain(|r| r != rule);
                if *to != State::Ok {
                    self.not_ok.push(rule.clone());
                }
                say("rule", &format!("{rule} {word}: {evidence}"));
            }
            Event::RollbackStarted { rule, revision } => say(
                "rollback",
                &format!("{rule} asks the webhook to roll back revision {revision}"),
            ),
            Event::Action(r) => say(r.action, &format!("{}: {}", r.outcome, r.detail)),
        }
    }

    fn summary(&self) {
        match (self.first_failure, self.rolled_back_at) {
            (Some(f), Some(r)) => println!(
                "v2 started failing {:.1}s after the deploy; backstop rolled it back {:.1}s later, and every rule is ok again.",
                f.as_secs_f64(),
                r.saturating_sub(f).as_secs_f64()
            ),
            _ => println!("the story ended without a failure or a rollback."),
        }
        println!(
            "In a cluster the same rules drive a Deployment rollback; see README.md for a real configuration."
        );
    }
}

/// `/status`'s rules and actions, compact, fetched over HTTP like a person would.
async fn fetch_status(admin: std::net::SocketAddr) -> Option<String> {
    let body: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{admin}/status"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let mut out = String::new();
    for r in body["rules"].as_array()? {
        out.push_str(&format!(
            "  rule {:<17} {:<8} {}\n",
            r["name"].as_str()?,
            r["state"].as_str()?,
            r["summary"].as_str().unwrap_or("")
        ));
    }
    for a in body["actions"].as_array()? {
        out.push_str(&format!(
            "  action {} {} → {}: {}\n",
            a["rule"].as_str()?,
            a["action"].as_str()?,
            a["outcome"].as_str()?,
            a["detail"].as_str()?
        ));
    }
    Some(out)
}
