//! Traffic in the engine, in paused time: scrapes of a fake app's counters
//! in, rule states and decisions out.

use crate::engine::{DecisionKind, Engine, Scope, Telemetry};
use crate::probe::{Outcome, Reason, Sample, Scraped};
use crate::rules::State;
use crate::traffic::Format;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, advance};

const S: Duration = Duration::from_secs(1);

const API: &str = "  - { name: api, preset: http-requests-total }\n";

/// A probe target (0), a scrape target (1) and traffic `api` (source 2).
fn engine(extra: &str) -> Engine {
    engine_with(API, extra)
}

/// The same with the given `traffic` entries.
fn engine_with(traffic: &str, extra: &str) -> Engine {
    let yaml = format!(
        r#"
service: checkout
targets:
  - {{ name: health, url: "http://127.0.0.1:1/health", interval: 1s }}
  - {{ name: app-metrics, url: "http://127.0.0.1:1/metrics", interval: 1s, scrape: true }}
traffic:
{traffic}rollback: {{ webhook: {{ url: "http://127.0.0.1:1/rollback" }} }}
{extra}
"#
    );
    let c = Arc::new(crate::config::for_tests(&yaml));
    Engine::new(c, Telemetry::detached(), Instant::now())
}

/// The app's counters: cumulative requests, errors and latency buckets
/// (≤ 0.1 s, ≤ 0.5 s, all).
#[derive(Default, Clone, Copy)]
struct App {
    ok: u64,
    failed: u64,
    fast: u64,
    medium: u64,
}

impl App {
    /// `n` more requests, `bad` of them failed; `fast` within 0.1 s, the
    /// rest within 0.5 s.
    fn serve(&mut self, n: u64, bad: u64, fast: u64) {
        self.ok += n - bad;
        self.failed += bad;
        self.fast += fast;
        self.medium += n - fast;
    }

    fn body(&self) -> String {
        let all = self.ok + self.failed;
        format!(
            "# TYPE http_requests_total counter\n\
             http_requests_total{{code=\"200\"}} {}\n\
             http_requests_total{{code=\"500\"}} {}\n\
             # TYPE http_request_duration_seconds histogram\n\
             http_request_duration_seconds_bucket{{le=\"0.1\"}} {}\n\
             http_request_duration_seconds_bucket{{le=\"0.5\"}} {}\n\
             http_request_duration_seconds_bucket{{le=\"+Inf\"}} {all}\n\
             http_request_duration_seconds_count {all}\n",
            self.ok,
            self.failed,
            self.fast,
            self.fast + self.medium
        )
    }
}

fn scrape(body: &str) -> Sample {
    Sample {
        generation: 0,
        target: 1,
        at: Instant::now(),
        latency: Duration::from_millis(3),
        outcome: Outcome::Success { status: 200 },
        counted: true,
        scraped: Some(Scraped {
            format: Format::Text,
            body: body.as_bytes().into(),
        }),
    }
}

fn failed_scrape() -> Sample {
    Sample {
        outcome: Outcome::Failure {
            reason: Reason::Unparsable,
            detail: "the Prometheus text body does not parse: line 3, column 1: …".into(),
        },
        scraped: None,
        ..scrape("")
    }
}

/// Serve `requests` a second (`errors` failing, `fast` within 0.1 s) and
/// scrape each second until a rule fires; the seconds it took. A young
/// window fires only once the evidence bounds the full window's ratio past
/// the limit (see `crate::slo`), which takes more than one scrape.
async fn until_fired(e: &mut Engine, app: &mut App, per_second: (u64, u64, u64)) -> u64 {
    for second in 1..=60 {
        advance(S).await;
        app.serve(per_second.0, per_second.1, per_second.2);
        let s = scrape_in(e, &app.body());
        if step(e, s) == vec![DecisionKind::Fired] {
            return second;
        }
    }
    panic!("nothing fired in 60 s");
}

/// Scrape once and assess what the scrape concerns.
fn step(e: &mut Engine, s: Sample) -> Vec<DecisionKind> {
    let t = e.record(&s).expect("current generation");
    e.evaluate(Instant::now(), Scope::Target(t))
        .iter()
        .map(|d| d.kind)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn error_rate_on_traffic_counts_requests_and_fires_with_their_evidence() {
    let mut e = engine(
        r#"rules:
  - name: api-errors
    when: { error_rate: { target: api, above: "5%", window: 2m, min_samples: 100 } }
    do: [rollback]"#,
    );
    let mut app = App::default();
    // The baseline: counts already in the app (a previous pod's) are not new.
    app.serve(10_000, 5_000, 10_000);
    assert!(step(&mut e, scrape(&app.body())).is_empty());
    let status = e.status(Instant::now());
    assert_eq!(status.traffic[0].windows[0].requests, 0);
    assert!(status.traffic[0].windows[0].no_traffic);
    // 50 requests a second, 8 % failing: a young window, judged on the
    // bound of its ratio, fires well before it is full.
    let fired = until_fired(&mut e, &mut app, (50, 4, 50)).await;
    assert!((3..=45).contains(&fired), "fired after {fired} s");
    let status = e.status(Instant::now());
    let rule = &status.rules[0];
    assert_eq!(rule.state, State::Firing);
    let (n, bad) = (50 * fired, 4 * fired);
    let summary = rule.summary.as_deref().unwrap();
    assert!(
        summary.starts_with(&format!(
            "api: {bad} of {n} requests failed (8.0 %) in the last 2m, limit 5 %; young window, {n} of "
        )),
        "{summary}"
    );
    let w = &status.traffic[0]
        .windows
        .iter()
        .find(|w| w.window_seconds == 120.0)
        .unwrap();
    assert_eq!((w.requests, w.errors), (n, bad));
    assert_eq!(status.traffic[0].series, 6);
}

#[tokio::test(start_paused = true)]
async fn a_window_without_requests_neither_fires_nor_resolves() {
    let mut e = engine(
        r#"rules:
  - name: api-errors
    when: { error_rate: { target: api, above: "5%", window: 1m, min_samples: 10 } }
    do: [rollback]"#,
    );
    let mut app = App::default();
    step(&mut e, scrape(&app.body()));
    until_fired(&mut e, &mut app, (20, 10, 20)).await;
    // The app goes quiet: after the window slides past the failures there
    // is no data, which is not a recovery.
    for _ in 0..70 {
        advance(S).await;
        assert!(step(&mut e, scrape(&app.body())).is_empty());
    }
    let status = e.status(Instant::now());
    assert_eq!(status.rules[0].state, State::Firing);
    assert_eq!(status.rules[0].breached, None);
    assert_eq!(
        status.rules[0].summary.as_deref(),
        Some("api: no traffic in the last 1m")
    );
    // Requests again, all good: now it resolves.
    advance(S).await;
    app.serve(20, 0, 20);
    assert_eq!(
        step(&mut e, scrape(&app.body())),
        vec![DecisionKind::Resolved]
    );
}

#[tokio::test(start_paused = true)]
async fn latency_rules_interpolate_in_the_apps_buckets() {
    let mut e = engine(
        r#"rules:
  - name: api-p95
    when: { latency: { target: api, percentile: 95, above: 200ms, window: 1m, min_samples: 10 } }
    do: [rollback]"#,
    );
    let mut app = App::default();
    step(&mut e, scrape(&app.body()));
    advance(S).await;
    // 100 requests: 90 within 0.1 s, 10 within 0.5 s. Rank 95 is half way
    // through the 0.1–0.5 bucket: 0.3 s, as histogram_quantile says.
    app.serve(100, 0, 90);
    assert_eq!(step(&mut e, scrape(&app.body())), vec![DecisionKind::Fired]);
    let status = e.status(Instant::now());
    assert_eq!(
        status.rules[0].summary.as_deref(),
        Some("api: p95 of 100 requests 300 ms in the last 1m, limit 200 ms")
    );
    let w = &status.traffic[0].windows[0];
    assert!((w.p95_seconds.unwrap() - 0.3).abs() < 1e-9, "{w:?}");
    // p50: rank 50 of the 90 in the first bucket, from 0.
    assert!(
        (w.p50_seconds.unwrap() - 0.1 * 50.0 / 90.0).abs() < 1e-9,
        "{w:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn burn_rate_over_a_traffic_slo_uses_requests() {
    let mut e = engine(
        r#"slos:
  - { name: availability, objective: 99, targets: [api] }
  - { name: fast, objective: 90, latency_threshold: 100ms, targets: [api] }
rules:
  - name: burn
    when: { burn_rate: { slo: availability, short: 1m, long: 5m, factor: 10, min_samples: 50 } }
    do: [rollback]"#,
    );
    let mut app = App::default();
    step(&mut e, scrape(&app.body()));
    advance(S).await;
    // 20 % failing against a 1 % budget: a burn rate of 20.
    let fired = until_fired(&mut e, &mut app, (100, 20, 80)).await;
    let status = e.status(Instant::now());
    let fast = &status.slos[1].windows[0];
    // Latency SLO good = requests within the 0.1 s bound, exactly.
    assert_eq!((fast.good, fast.total), (80 * fired, 100 * fired));
    assert!(status.traffic[0].problems.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_latency_threshold_that_is_not_a_bound_is_reported_and_never_judged() {
    let mut e = engine(
        r#"slos:
  - { name: fast, objective: 90, latency_threshold: 200ms, targets: [api] }
rules:
  - name: burn
    when: { burn_rate: { slo: fast, short: 1m, long: 5m, factor: 2, min_samples: 1 } }
    do: [rollback]"#,
    );
    let mut app = App::default();
    step(&mut e, scrape(&app.body()));
    let status = e.status(Instant::now());
    assert_eq!(
        status.traffic[0].problems,
        vec![
            "SLO \"fast\" is never judged: its latency_threshold 200ms is not a bucket bound of \
             api's latency histogram (bounds in seconds: 0.1, 0.5), so its good requests cannot \
             be counted exactly; use one of those bounds"
                .to_owned()
        ]
    );
    advance(S).await;
    // Everything slow: it would fire if it were judged.
    app.serve(100, 0, 0);
    assert!(step(&mut e, scrape(&app.body())).is_empty());
    let status = e.status(Instant::now());
    assert_eq!(status.rules[0].breached, None);
    assert_eq!(status.slos[0].windows[0].total, 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_scrape_adds_nothing_and_the_next_one_catches_up() {
    let mut e = engine(
        r#"rules:
  - name: api-errors
    when: { error_rate: { target: api, above: "50%", window: 1m, min_samples: 1 } }
    do: [rollback]"#,
    );
    let mut app = App::default();
    step(&mut e, scrape(&app.body()));
    advance(S).await;
    app.serve(10, 0, 10);
    step(&mut e, failed_scrape());
    let status = e.status(Instant::now());
    assert_eq!(status.traffic[0].windows[0].requests, 0);
    let last = serde_json::to_value(&status.traffic[0]).unwrap()["last_scrape"].clone();
    assert_eq!(last["ok"], false);
    assert!(
        last["detail"]
            .as_str()
            .unwrap()
            .starts_with("scrape of app-metrics failed: the Prometheus text body does not parse"),
        "{last}"
    );
    advance(S).await;
    app.serve(10, 0, 10);
    step(&mut e, scrape(&app.body()));
    let status = e.status(Instant::now());
    assert_eq!(status.traffic[0].windows[0].requests, 20);
    // The probe target's rules are not concerned: probes are never mixed in.
    assert_eq!(status.targets[1].good, 2);
}

/// `old`'s successor with `traffic` entries and `extra`.
fn reload(old: Engine, traffic: &str, extra: &str) -> (Engine, crate::engine::Carried) {
    let new = engine_with(traffic, extra);
    let diff = crate::config::ConfigDiff::new(&old.config, &new.config);
    let generation = old.generation() + 1;
    old.reload(new.config.clone(), &diff, generation, Instant::now())
}

/// A scrape of the current generation's `app-metrics`.
fn scrape_in(e: &Engine, body: &str) -> Sample {
    Sample {
        generation: e.generation(),
        ..scrape(body)
    }
}

fn api(e: &Engine) -> u64 {
    let status = e.status(Instant::now());
    let api = status.traffic.iter().find(|t| t.name == "api").unwrap();
    api.windows[0].requests
}

#[tokio::test(start_paused = true)]
async fn traffic_carries_over_a_reload_by_name_and_starts_afresh_when_changed() {
    const RULE: &str = r#"rules:
  - name: api-errors
    when: { error_rate: { target: api, above: "5%", window: 1m, min_samples: 10 } }
    do: [rollback]"#;
    let mut e = engine(RULE);
    let mut app = App::default();
    step(&mut e, scrape(&app.body()));
    let fired = until_fired(&mut e, &mut app, (20, 10, 20)).await;

    // Another entry inserted before api: api moves, but it is the same.
    let two = format!("  - {{ name: web, requests: http_requests_total }}\n{API}");
    let (mut e, carried) = reload(e, &two, RULE);
    assert_eq!(carried.rules_kept(), 1);
    advance(S).await;
    app.serve(20, 0, 20);
    // Not a new baseline: these 20 count, and the rule is still the one
    // that fired (no second Fired).
    let s = scrape_in(&e, &app.body());
    assert!(step(&mut e, s).is_empty());
    assert_eq!(api(&e), 20 * fired + 20);
    assert_eq!(e.status(Instant::now()).rules[0].state, State::Firing);

    // api narrowed: a changed entry starts afresh, and so does its rule.
    let narrowed = "  - { name: web, requests: http_requests_total }\n  \
         - { name: api, preset: http-requests-total, match: '{code!=\"404\"}' }\n";
    let (mut e, carried) = reload(e, narrowed, RULE);
    assert_eq!(carried.rules_kept(), 0);
    assert_eq!(carried.dropped.len(), 1);
    advance(S).await;
    app.serve(20, 0, 20);
    let s = scrape_in(&e, &app.body());
    assert!(step(&mut e, s).is_empty());
    assert_eq!(
        api(&e),
        0,
        "the first scrape after the change is a baseline"
    );
}

#[tokio::test(start_paused = true)]
async fn an_entry_matching_too_many_series_is_refused_with_a_clear_error() {
    let mut e = engine("");
    let many = crate::traffic::MAX_SERIES + 1;
    let mut body = String::from("# TYPE http_requests_total counter\n");
    for i in 0..many {
        body.push_str(&format!(
            "http_requests_total{{code=\"200\",id=\"{i}\"}} 1\n"
        ));
    }
    step(&mut e, scrape(&body));
    let status = e.status(Instant::now());
    let last = status.traffic[0].last_scrape.as_ref().unwrap();
    assert!(!last.ok);
    assert_eq!(
        last.detail.as_deref(),
        Some(
            "10001 series match this traffic entry's selectors; at most 10000 are kept, so \
             narrow the selectors (match) or drop labels in the app"
        )
    );
    assert_eq!(status.traffic[0].series, 0);
}
