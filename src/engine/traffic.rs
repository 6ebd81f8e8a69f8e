//! Traffic entries inside the engine: each successful scrape of their
//! target is folded into request, error and bucket increases (see
//! `crate::traffic::Counter`) and recorded in windows, so the rules see a
//! traffic entry as a target whose samples are requests. Latency comes
//! from the app's own `le` buckets, kept exactly per bound in a second
//! window once the first scrape shows them; a latency SLO's threshold must
//! be one of those bounds, or the SLO is reported and never judged.

use crate::config::{Condition, Config, Traffic};
use crate::probe::Sample;
use crate::telemetry::Registry;
use crate::traffic::{Counter, Deltas, Exposition, histogram_quantile};
use crate::window::{Counts, Spread, Window};
use prometheus::{IntCounterVec, IntGaugeVec};
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;

/// One traffic entry's counter state and windows.
pub(super) struct TrafficState {
    counter: Counter,
    /// Requests: good = requests - errors, bad = errors.
    pub(super) window: Window,
    /// The latency histogram's cumulative bucket counts per bound, once
    /// the bounds are known (`bounds`, `+Inf` last when the app has it).
    latency: Option<Window>,
    bounds: Vec<f64>,
    horizon: Duration,
    pub(super) last: Option<LastScrape>,
    /// Scrapes folded, the baseline included.
    pub(super) scrapes: u64,
    /// When counting started (the baseline scrape): a window younger than
    /// that is judged on a bound (see `crate::slo`).
    since: Option<Instant>,
    /// What is wrong with how the configuration reads this entry (a latency
    /// threshold that is not a bucket bound), found at the first scrape
    /// with buckets.
    pub(super) problems: Vec<String>,
    /// Per SLO: which bound is its latency threshold. None: not known yet,
    /// or not a bound (then `problems` says so).
    pub(super) slo_bound: Vec<Option<usize>>,
}

/// The last scrape a traffic entry read, and what it added.
#[derive(Debug, Clone, Serialize)]
pub struct LastScrape {
    #[serde(skip)]
    pub(super) at: Instant,
    pub ok: bool,
    /// Why the scrape could not be counted.
    pub detail: Option<String>,
    pub requests: f64,
    pub errors: f64,
    /// The first scrape only sets the baseline.
    pub baseline: bool,
    /// The format the app answered in: `openmetrics` or `text`.
    pub format: Option<&'static str>,
}

impl TrafficState {
    pub(super) fn new(t: &Traffic, slos: usize, horizon: Duration, now: Instant) -> Self {
        TrafficState {
            counter: Counter::new(t.requests.clone(), t.errors.clone(), t.latency.clone()),
            window: Window::with_latency_spans(horizon, &[], &[], now),
            latency: None,
            bounds: Vec::new(),
            horizon,
            last: None,
            scrapes: 0,
            since: None,
            problems: Vec::new(),
            slo_bound: vec![None; slos],
        }
    }

    /// Series the last scrape matched.
    pub(super) fn series(&self) -> usize {
        self.counter.series()
    }

    /// A scrape of the entry's target: folded in when it parsed, noted as
    /// a failure otherwise. `scrape` is the parsed body, when there is one.
    pub(super) fn scraped(
        &mut self,
        config: &Config,
        source: usize,
        s: &Sample,
        scrape: Option<&Exposition<'_>>,
        metrics: &Metrics,
    ) {
        let name = config.source_name(source);
        let Some(scrape) = scrape else {
            let detail = match &s.outcome {
                crate::probe::Outcome::Failure { detail, .. } => detail.clone(),
                // Its body stayed behind while the last one was unread:
                // the next one read counts what it held.
                crate::probe::Outcome::Success { .. } => return,
            };
            let target = &config.targets[config.traffic[source - config.targets.len()].from];
            self.fail(
                s.at,
                format!("scrape of {} failed: {detail}", target.name),
                "scrape_failed",
                name,
                metrics,
            );
            return;
        };
        match self.counter.fold(scrape) {
            Ok(d) => {
                self.scrapes += 1;
                self.since.get_or_insert(s.at);
                metrics
                    .series
                    .with_label_values(&[name])
                    .set(self.series() as i64);
                metrics.scrapes.with_label_values(&[name, "ok"]).inc();
                if self.latency.is_none() && d.buckets.iter().any(|(le, _)| *le >= 0.0) {
                    self.learn_bounds(config, source, &d, s.at);
                    for p in &self.problems {
                        tracing::warn!(
                            traffic = name,
                            problem = p.as_str(),
                            "traffic misconfigured"
                        );
                    }
                    metrics
                        .problems
                        .with_label_values(&[name])
                        .set(self.problems.len() as i64);
                }
                self.record(s.at, &d);
                if !d.baseline {
                    metrics
                        .requests
                        .with_label_values(&[name])
                        .inc_by(d.requests as u64);
                    metrics
                        .errors
                        .with_label_values(&[name])
                        .inc_by(d.errors as u64);
                }
                self.last = Some(LastScrape {
                    at: s.at,
                    ok: true,
                    detail: None,
                    requests: d.requests,
                    errors: d.errors,
                    baseline: d.baseline,
                    format: s.scraped.as_ref().map(|b| match b.format {
                        crate::traffic::Format::OpenMetrics => "openmetrics",
                        crate::traffic::Format::Text => "text",
                    }),
                });
            }
            Err(e) => self.fail(s.at, e.to_string(), "too_many_series", name, metrics),
        }
    }

    fn fail(&mut self, at: Instant, detail: String, result: &str, name: &str, m: &Metrics) {
        tracing::warn!(
            traffic = name,
            detail = detail.as_str(),
            "traffic not counted"
        );
        m.scrapes.with_label_values(&[name, result]).inc();
        self.last = Some(LastScrape {
            at,
            ok: false,
            detail: Some(detail),
            requests: 0.0,
            errors: 0.0,
            baseline: false,
            format: None,
        });
    }

    /// The histogram's bounds, from the first scrape that has buckets; each
    /// latency SLO on this entry must name one of them.
    fn learn_bounds(&mut self, config: &Config, source: usize, d: &Deltas, now: Instant) {
        self.bounds = d
            .buckets
            .iter()
            .map(|(le, _)| *le)
            .filter(|le| *le >= 0.0)
            .collect();
        let thresholds: Vec<Duration> = self
            .bounds
            .iter()
            .map(|le| Duration::try_from_secs_f64(*le).unwrap_or(Duration::MAX))
            .collect();
        self.latency = Some(Window::with_latency_spans(
            self.horizon,
            &[],
            &thresholds,
            now,
        ));
        self.check_slos(config, source);
    }

    /// Which bound each latency SLO on this entry names; a threshold that
    /// is none of them is a problem, and that SLO is not judged.
    fn check_slos(&mut self, config: &Config, source: usize) {
        let name = config.source_name(source);
        self.problems.clear();
        self.slo_bound = vec![None; config.slos.len()];
        for (i, slo) in config.slos.iter().enumerate() {
            let Some(threshold) = slo.latency_threshold else {
                continue;
            };
            if !slo.targets.contains(&source) {
                continue;
            }
            let secs = threshold.as_secs_f64();
            let found = self
                .bounds
                .iter()
                .position(|b| b.is_finite() && (b - secs).abs() <= 1e-9 * secs.max(1.0));
            self.slo_bound[i] = found;
            if found.is_none() {
                let shown: Vec<String> = self
                    .bounds
                    .iter()
                    .filter(|b| b.is_finite())
                    .map(|b| format!("{b}"))
                    .collect();
                let shown = if shown.is_empty() {
                    "none but +Inf".to_owned()
                } else {
                    shown.join(", ")
                };
                self.problems.push(format!(
                    "SLO {:?} is never judged: its latency_threshold {} is not a bucket bound \
                     of {name}'s latency histogram (bounds in seconds: {shown}), so its good \
                     requests cannot be counted exactly; use one of those bounds",
                    slo.name,
                    humantime::format_duration(threshold),
                ));
            }
        }
    }

    fn record(&mut self, at: Instant, d: &Deltas) {
        if d.baseline {
            return;
        }
        let requests = d.requests.round().max(0.0) as u64;
        let errors = (d.errors.round().max(0.0) as u64).min(requests);
        if requests > 0 {
            self.window
                .record_counts(at, requests - errors, errors, &[]);
        }
        if let Some(w) = &mut self.latency {
            let within: Vec<u64> = self
                .bounds
                .iter()
                .map(|b| {
                    d.buckets
                        .iter()
                        .find(|(le, _)| le == b)
                        .map_or(0, |(_, n)| n.round().max(0.0) as u64)
                })
                .collect();
            let observed = within.last().copied().unwrap_or(0);
            if observed > 0 {
                w.record_counts(at, observed, 0, &within);
            }
        }
    }

    /// Requests over `span`.
    pub(super) fn counts(&self, span: Duration, now: Instant) -> Counts {
        self.window.counts(span, now)
    }

    /// Requests over `span` in batches, for judging a young window.
    pub(super) fn spread(&self, span: Duration, now: Instant) -> Spread {
        self.window.spread(span, now, None)
    }

    /// A latency SLO's requests in batches, good being within its
    /// threshold; None while the threshold is not a known bound.
    pub(super) fn within_spread(&self, slo: usize, span: Duration, now: Instant) -> Option<Spread> {
        let w = self.latency.as_ref()?;
        let i = self.slo_bound.get(slo).copied().flatten()?;
        Some(w.spread(span, now, Some(i)))
    }

    /// The requests a window of `span` still lacks while it is younger
    /// than counting: at the rate seen so far, what the part of the span
    /// before the baseline scrape would have held. 0 once the window is
    /// full, and while nothing was counted.
    pub(super) fn missing(&self, span: Duration, now: Instant) -> u64 {
        let Some(since) = self.since else {
            return 0;
        };
        let seen_for = now.saturating_duration_since(since);
        if seen_for >= span || seen_for.is_zero() {
            return 0;
        }
        let seen = self.window.counts(span, now).total() as f64;
        let rest = (span - seen_for).as_secs_f64() / seen_for.as_secs_f64();
        (seen * rest).round() as u64
    }

    /// The `percentile` of latency over `span` as `histogram_quantile`
    /// computes it from the buckets, and how many requests the buckets
    /// counted there.
    pub(super) fn percentile(
        &self,
        span: Duration,
        now: Instant,
        percentile: f64,
    ) -> (Option<Duration>, u64) {
        let Some(w) = &self.latency else {
            return (None, 0);
        };
        let buckets: Vec<(f64, f64)> = self
            .bounds
            .iter()
            .enumerate()
            .map(|(i, b)| (*b, w.good_within(span, now, i) as f64))
            .collect();
        let observed = w.counts(span, now).total();
        let q = histogram_quantile(percentile / 100.0, &buckets)
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(Duration::from_secs_f64);
        (q, observed)
    }

    /// Carry over the state of `old` (the same entry under the previous
    /// configuration) when its windows cover the same span; SLOs may have
    /// changed, so their thresholds are looked up again.
    pub(super) fn take_over(&mut self, old: TrafficState, config: &Config, source: usize) -> bool {
        if old.horizon != self.horizon {
            return false;
        }
        *self = old;
        self.check_slos(config, source);
        true
    }
}

impl super::Engine {
    /// `/status` of every traffic entry: per window its requests, error
    /// ratio and latency percentiles ("no traffic" when it counted none),
    /// and its last scrape.
    pub(super) fn traffic_status(&self, now: Instant) -> Vec<TrafficStatus> {
        let n = self.config.targets.len();
        self.config
            .traffic
            .iter()
            .zip(&self.traffic)
            .enumerate()
            .map(|(i, (t, state))| {
                let mut spans = vec![crate::config::DEFAULT_STATUS_WINDOW];
                spans.extend(self.config.rules.iter().filter_map(|r| match &r.when {
                    Condition::ErrorRate {
                        target: Some(s),
                        window,
                        ..
                    }
                    | Condition::Latency {
                        target: s, window, ..
                    } if *s == n + i => Some(*window),
                    _ => None,
                }));
                spans.sort();
                spans.dedup();
                TrafficStatus {
                    name: t.name.clone(),
                    from: self.config.targets[t.from].name.clone(),
                    series: state.series(),
                    scrapes: state.scrapes,
                    last_scrape_seconds_ago: state
                        .last
                        .as_ref()
                        .map(|l| now.saturating_duration_since(l.at).as_secs_f64()),
                    last_scrape: state.last.clone(),
                    problems: state.problems.clone(),
                    windows: spans
                        .iter()
                        .map(|&span| state.window_status(span, now))
                        .collect(),
                }
            })
            .collect()
    }
}

impl TrafficState {
    fn window_status(&self, span: Duration, now: Instant) -> TrafficWindow {
        let c = self.counts(span, now);
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
        let p = |q| secs(self.percentile(span, now, q).0);
        TrafficWindow {
            window_seconds: span.as_secs_f64(),
            no_traffic: c.total() == 0,
            requests: c.total(),
            errors: c.bad,
            requests_per_second: c.total() as f64 / span.as_secs_f64(),
            error_ratio: c.error_ratio(),
            p50_seconds: p(50.0),
            p95_seconds: p(95.0),
            p99_seconds: p(99.0),
        }
    }
}

/// One traffic entry in `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct TrafficStatus {
    pub name: String,
    /// The scrape target it reads.
    pub from: String,
    pub series: usize,
    pub scrapes: u64,
    pub last_scrape_seconds_ago: Option<f64>,
    pub last_scrape: Option<LastScrape>,
    /// Configuration problems found at the first scrape.
    pub problems: Vec<String>,
    pub windows: Vec<TrafficWindow>,
}

/// A traffic entry over one window. With no requests there is no error
/// ratio and no percentile: `no_traffic` says so.
#[derive(Debug, Clone, Serialize)]
pub struct TrafficWindow {
    pub window_seconds: f64,
    pub no_traffic: bool,
    pub requests: u64,
    pub errors: u64,
    pub requests_per_second: f64,
    pub error_ratio: Option<f64>,
    pub p50_seconds: Option<f64>,
    pub p95_seconds: Option<f64>,
    pub p99_seconds: Option<f64>,
}

/// The traffic metrics; labels are traffic names (from the configuration)
/// and small fixed sets.
#[derive(Clone)]
pub struct Metrics {
    requests: IntCounterVec,
    errors: IntCounterVec,
    scrapes: IntCounterVec,
    series: IntGaugeVec,
    problems: IntGaugeVec,
    pub(super) no_traffic: IntGaugeVec,
}

impl Metrics {
    pub fn register(registry: &Registry) -> Metrics {
        Metrics {
            requests: registry.counter(
                "backstop_traffic_requests_total",
                "Requests a traffic entry counted in the app's own metrics (after the baseline scrape).",
                &["traffic"],
            ),
            errors: registry.counter(
                "backstop_traffic_errors_total",
                "Failed requests a traffic entry counted in the app's own metrics.",
                &["traffic"],
            ),
            scrapes: registry.counter(
                "backstop_traffic_scrapes_total",
                "Scrapes read for a traffic entry, by result: ok, scrape_failed, too_many_series.",
                &["traffic", "result"],
            ),
            series: registry.gauge(
                "backstop_traffic_series",
                "Series of the app's metrics the traffic entry's selectors matched at the last scrape.",
                &["traffic"],
            ),
            problems: registry.gauge(
                "backstop_traffic_config_problems",
                "Configuration problems found at the first scrape (a latency threshold that is not a bucket bound).",
                &["traffic"],
            ),
            no_traffic: registry.gauge(
                "backstop_traffic_no_traffic",
                "1 when the traffic entry counted no request in the last 5 minutes: its SLIs have no data.",
                &["traffic"],
            ),
        }
    }
}

#[cfg(test)]
mod tests;
