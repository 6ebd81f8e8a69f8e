//! `backstop demo`: the first thing a new user runs. It starts the sample
//! app on loopback, deploys a bad "v2", starts backstop guarding it with a
//! webhook rollback and a PagerDuty receiver both pointed at the app, and
//! prints what happens as it happens: the failure, the rollback, and the
//! incident opened, updated with the rollback and left open for a person.
//! Nothing about the decision is scripted: the probes, the rollback and the
//! PagerDuty events are real HTTP, and the same code as in production.

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
    do: [rollback, page]
  - name: analytics-errors
    when: {{ error_rate: {{ above: "20%", window: 1m, target: analytics-executive }} }}
    for: 2s
    do: [rollback, page]
rollback:
  webhook: {{ url: {app}/admin/rollback }}
  bake: 30m
  cooldown: 10m
page:
  pagerduty: {{ routing_key: {key}, url: {app}/v2/enqueue }}
"#,
        key = app::pager::ROUTING_KEY
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
    println!("  rules       health-down: health fails 3 times in a row, for 1s → rollback, page");
    println!(
        "              analytics-errors: analytics error rate above 20% over 1m, for 2s → rollback, page"
    );
    println!("  rollback    webhook POST {}", app.url("/admin/rollback"));
    println!(
        "  pagerduty   Events API v2 POST {} (the sample app plays PagerDuty)\n",
        app.url("/v2/enqueue")
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
    let mut pages = app.pages_taken();
    let mut story = Story {
        t0,
        first_failure: None,
        rolled_back_at: None,
        not_ok: Vec::new(),
        fired_any: false,
        last_ok: Default::default(),
        pages_shown: 0,
        left_open: false,
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
            taken = pages.changed() => {
                if taken.is_ok() {
                    pages.borrow_and_update();
                    story.show_pages(&app.pages(), &say);
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
    /// PagerDuty events the app took that the timeline has shown.
    pages_shown: usize,
    /// backstop left the incident open for a person.
    left_open: bool,
}

impl Story {
    fn done(&self) -> bool {
        self.rolled_back_at.is_some() && self.fired_any && self.not_ok.is_empty() && self.left_open
    }

    /// The PagerDuty events the app took since the last call, as the
    /// incident's story: opened, updated, resolved.
    fn show_pages(&mut self, pages: &[serde_json::Value], say: &impl Fn(&str, &str)) {
        for (i, e) in pages.iter().enumerate().skip(self.pages_shown) {
            let opened = !pages[..i]
                .iter()
                .any(|p| p["dedup_key"] == e["dedup_key"] && p["event_action"] == "trigger");
            let what = match e["event_action"].as_str() {
                Some("trigger") if opened => "incident OPENED",
                Some("trigger") => "incident updated",
                Some("resolve") => "incident resolved",
                _ => "event",
            };
            let summary = e["payload"]["summary"].as_str().unwrap_or("");
            say("pagerduty", &format!("{what}: {summary}"));
        }
        self.pages_shown = pages.len();
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
            // The app, playing PagerDuty, shows what it took.
            Event::Action(r) if r.action == "page" && r.outcome == "triggered" => {}
            Event::Action(r) if r.outcome == "left_open" => {
                if !self.left_open {
                    say(
                        "pagerduty",
                        "incident LEFT OPEN: v2 was rolled back, so a person decides what next",
                    );
                }
                self.left_open = true;
            }
            Event::Action(r) => say(r.action, &format!("{}: {}", r.outcome, r.detail)),
        }
    }

    fn summary(&self) {
        match (self.first_failure, self.rolled_back_at) {
            (Some(f), Some(r)) => println!(
                "v2 started failing {:.1}s after the deploy; backstop rolled it back {:.1}s later, and every rule is ok again.\nThe PagerDuty incident was opened, updated with the rollback, and left open for a person ({} events, one incident).",
                f.as_secs_f64(),
                r.saturating_sub(f).as_secs_f64(),
                self.pages_shown
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
