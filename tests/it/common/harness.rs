//! The one harness: the whole daemon on 127.0.0.1:0 (with the sample app
//! in front of it, if asked), its event stream, its admin endpoints and
//! `/metrics` read back as numbers, and the checks the fault matrix shares
//! (the probe schedule, the admin endpoints, the page queue's bound).

use backstop::Event;
use backstop::act::ActionRecord;
use backstop::demo::app::SampleApp;
use backstop::probe::Outcome;
use backstop::rules::State;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::{Instant, sleep};

/// The rule and target the fault matrix's configurations name, and the
/// target whose schedule `assert_on_schedule` checks.
pub const RULE: &str = "health-down";
pub const TARGET: &str = "health";

/// The whole daemon and its event stream.
pub struct Daemon {
    /// backstop itself: its address, events, telemetry, reload, shutdown.
    pub running: backstop::Running,
    /// The sample app `{app}` stood for (`with_app`).
    app: Option<SampleApp>,
    events: broadcast::Receiver<Event>,
    /// How often `TARGET` is probed, if the configuration has it.
    interval: Option<Duration>,
    /// Every action outcome seen while waiting for events.
    pub actions: Vec<ActionRecord>,
    /// One client for the admin endpoints, built before the daemon starts:
    /// building one costs the test's thread (and so the daemon's)
    /// milliseconds of TLS setup, which would show as probe schedule lag.
    /// It lets an idle connection go well before the server closes it
    /// (`IDLE_TIMEOUT` in src/server/conn.rs, 10 s), so no request goes
    /// out on a connection the server is closing at that moment.
    pub http: reqwest::Client,
}

/// Probes counted so far, and when.
pub struct Mark {
    at: Instant,
    probes: f64,
}

impl Daemon {
    /// backstop with `yaml`, guarding revision "v2".
    pub async fn start(yaml: &str) -> Daemon {
        Self::start_with(yaml, backstop::Options::new("v2")).await
    }

    pub async fn start_with(yaml: &str, options: backstop::Options) -> Daemon {
        Self::try_start(yaml, options)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// For a configuration or a start that may be refused: the reason.
    pub async fn try_start(yaml: &str, options: backstop::Options) -> Result<Daemon, String> {
        backstop::init_tls();
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .expect("a plain HTTP client");
        let config = backstop::config::parse(yaml, &|_| None)
            .map_err(|e| format!("test config invalid:\n{e}"))?;
        let interval = config
            .targets
            .iter()
            .find(|t| t.name == TARGET)
            .map(|t| t.interval);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = backstop::start(config, listener, options)
            .await
            .map_err(|e| format!("daemon did not start: {e}"))?;
        // Nothing from here on yields: on a current-thread runtime no probe
        // has run yet when the test gets the daemon, and tests rely on it.
        let events = running.events();
        Ok(Daemon {
            running,
            app: None,
            events,
            interval,
            actions: Vec::new(),
            http,
        })
    }

    /// The sample app (serving v1), and backstop with `yaml`, where `{app}`
    /// stands for the app's base URL.
    pub async fn with_app(yaml: &str) -> Daemon {
        backstop::init_tls();
        let app = SampleApp::start("v1").await.expect("sample app starts");
        let mut d = Self::start(&yaml.replace("{app}", &app.url(""))).await;
        d.app = Some(app);
        d
    }

    /// The sample app of `with_app`.
    pub fn app(&self) -> &SampleApp {
        self.app
            .as_ref()
            .expect("a daemon started with_app has a sample app")
    }

    /// The admin server's URL for `path`.
    pub fn admin(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.addr)
    }

    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }

    /// Wait (up to `within`) for an event matching `pred`; panic naming
    /// `what` otherwise, or if the test fell so far behind that events
    /// were dropped.
    pub async fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> Event {
        let deadline = Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => panic!("no {what} within {within:?}"),
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    panic!("missed {n} events while waiting for {what}")
                }
                Ok(Err(e)) => panic!("event stream ended while waiting for {what}: {e}"),
                Ok(Ok(e)) => {
                    if let Event::Action(r) = &e {
                        self.actions.push(r.clone());
                    }
                    if pred(&e) {
                        return e;
                    }
                }
            }
        }
    }

    pub async fn metrics(&self) -> String {
        let (code, text) = get(&self.http, &self.admin("/metrics")).await;
        assert_eq!(code, 200, "/metrics");
        text
    }

    /// Wait until the metrics say `done`.
    pub async fn wait_metrics(&self, what: &str, within: Duration, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + within;
        while !done(&self.metrics().await) {
            assert!(Instant::now() < deadline, "no {what} within {within:?}");
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until `action` has failed `n` attempts in a retryable way.
    pub async fn wait_failed_attempts(&self, action: &str, n: f64) {
        let what = format!("{n} failed {action} attempts");
        self.wait_metrics(&what, Duration::from_secs(5), |text| {
            sum(
                text,
                "backstop_action_attempts_total",
                &[("action", action), ("outcome", "retryable")],
            ) >= n
        })
        .await;
    }

    pub async fn mark(&self) -> Mark {
        let probes = sum(
            &self.metrics().await,
            "backstop_probes_total",
            &[("target", TARGET)],
        );
        Mark {
            at: Instant::now(),
            probes,
        }
    }

    /// Since `since`, probes started once per interval (within a tolerance
    /// for the probes in flight at either end), and no probe ever started
    /// more than one interval after its tick. A stalled or drifting
    /// schedule fails both.
    pub async fn assert_on_schedule(&self, since: &Mark) {
        let text = self.metrics().await;
        let interval = self
            .interval
            .unwrap_or_else(|| panic!("the configuration has no target {TARGET}"));
        let elapsed = since.at.elapsed();
        let probes = sum(&text, "backstop_probes_total", &[("target", TARGET)]) - since.probes;
        let expected = elapsed.as_secs_f64() / interval.as_secs_f64();
        let slack = (expected * 0.2).max(2.0);
        assert!(
            (probes - expected).abs() <= slack,
            "{probes} probes in {elapsed:?}, expected {expected:.1} ± {slack:.1}"
        );
        let lag = "backstop_probe_schedule_lag_seconds";
        let all = sum(&text, &format!("{lag}_count"), &[("target", TARGET)]);
        let within = |le: &str| {
            sum(
                &text,
                &format!("{lag}_bucket"),
                &[("target", TARGET), ("le", le)],
            )
        };
        let late = all - within(&interval.as_secs_f64().to_string());
        assert!(all > 0.0, "no schedule lag observed");
        assert_eq!(
            late, 0.0,
            "{late} of {all} probes started more than one interval late:\n{text}"
        );
    }

    /// The kubelet's and the person's endpoints still answer.
    pub async fn assert_serving(&self) {
        assert_eq!(
            get(&self.http, &self.admin("/healthz")).await.0,
            200,
            "/healthz"
        );
        let (code, body) = get(&self.http, &self.admin("/status")).await;
        assert_eq!(code, 200, "/status: {body}");
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status["targets"][0]["name"], TARGET);
    }

    /// Rule transitions into `to`, per the metrics.
    pub async fn transitions(&self, to: &str) -> f64 {
        sum(
            &self.metrics().await,
            "backstop_rule_transitions_total",
            &[("rule", RULE), ("to", to)],
        )
    }
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, String) {
    let resp = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The sum of a metric's series whose labels include `want`.
pub fn sum(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    series(text, name)
        .into_iter()
        .filter(|(labels, _)| {
            want.iter()
                .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
        .sum()
}

/// Every series of a metric in the text format, with its labels.
pub fn series(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            let labels = labels
                .split(',')
                .filter_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    Some((k.to_string(), v.trim_matches('"').to_string()))
                })
                .collect();
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

pub fn probe_failed(target: &str) -> impl FnMut(&Event) -> bool {
    move |e| matches!(e, Event::Probe { target: t, outcome: Outcome::Failure { .. }, .. } if t == target)
}

pub fn probe_succeeded(e: &Event) -> bool {
    matches!(e, Event::Probe { target, outcome: Outcome::Success { .. }, .. } if target == TARGET)
}

pub fn rule_went(to: State) -> impl FnMut(&Event) -> bool {
    move |e| matches!(e, Event::Transition { rule, to: t, .. } if rule == RULE && *t == to)
}

pub fn action(action: &'static str) -> impl FnMut(&Event) -> bool {
    move |e| matches!(e, Event::Action(r) if r.action == action)
}

pub fn page(outcome: &'static str) -> impl FnMut(&Event) -> bool {
    move |e| matches!(e, Event::Action(r) if r.action == "page" && r.outcome == outcome)
}

/// The largest `backstop_page_queue_length` of a receiver, sampled every
/// 20 ms from `/metrics` while it lives.
pub struct QueueWatch {
    max: Arc<AtomicI64>,
    task: tokio::task::JoinHandle<()>,
}

impl QueueWatch {
    pub fn start(d: &Daemon, receiver: &'static str) -> QueueWatch {
        let max = Arc::new(AtomicI64::new(-1));
        let (m, url, http) = (max.clone(), d.admin("/metrics"), d.http.clone());
        let task = tokio::spawn(async move {
            loop {
                let (_, text) = get(&http, &url).await;
                let length = sum(
                    &text,
                    "backstop_page_queue_length",
                    &[("receiver", receiver)],
                );
                m.fetch_max(length as i64, Ordering::SeqCst);
                sleep(Duration::from_millis(20)).await;
            }
        });
        QueueWatch { max, task }
    }

    /// The largest length seen; -1 if the gauge never appeared.
    pub fn max(&self) -> i64 {
        self.max.load(Ordering::SeqCst)
    }
}

impl Drop for QueueWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
