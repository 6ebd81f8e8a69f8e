//! Rule evaluation: the cost of re-assessing every rule that reads one
//! target after a sample, on windows filled with 10 minutes of history.
//! Target: ≤ 2 µs for all rules of one target.

use backstop::engine::Telemetry;
use backstop::engine::{Engine, Scope};
use backstop::probe::{Outcome, Reason, Sample};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const CONFIG: &str = r#"
service: checkout
targets:
  - { name: health, url: "http://127.0.0.1:8080/health", interval: 1s }
  - { name: analytics-executive, url: "http://127.0.0.1:8080/api/v1/analytics/executive", interval: 1s }
slos:
  - { name: availability, objective: 99.9 }
  - { name: analytics-latency, objective: 95, latency_threshold: 200ms, targets: [analytics-executive] }
rules:
  - name: health-down
    when: { consecutive_failures: 3, target: analytics-executive }
  - name: fast-burn
    when: { burn_rate: { slo: availability, short: 1m, long: 5m, factor: 14.4 } }
  - name: latency-burn
    when: { burn_rate: { slo: analytics-latency, short: 1m, long: 5m, factor: 14.4 } }
  - name: error-rate
    when: { error_rate: { above: "5%", window: 10m } }
  - name: slow-analytics
    when: { latency: { target: analytics-executive, percentile: 95, above: 200ms, window: 5m } }
    for: 1m
"#;

fn sample(target: usize, at: Instant, i: u64) -> Sample {
    let outcome = if i.is_multiple_of(97) {
        Outcome::Failure {
            reason: Reason::Status,
            detail: "status 500".into(),
        }
    } else {
        Outcome::Success { status: 200 }
    };
    Sample {
        generation: 0,
        target,
        at,
        latency: Duration::from_micros(20_000 + (i * 7919) % 180_000),
        outcome,
        counted: true,
        scraped: None,
    }
}

fn bench(c: &mut Criterion) {
    backstop::init_tls();
    let config =
        Arc::new(backstop::config::parse(CONFIG, &|_| None).expect("bench config is valid"));
    let start = Instant::now();
    let mut engine = Engine::new(config.clone(), Telemetry::detached(), start);
    let mut now = start;
    for i in 0..600 {
        now = start + Duration::from_secs(i);
        engine.record(&sample(0, now, i));
        engine.record(&sample(1, now, i));
    }
    c.bench_function("evaluate/rules_of_one_target", |b| {
        b.iter(|| black_box(engine.evaluate(black_box(now), Scope::Target(1))))
    });
    c.bench_function("evaluate/all_rules_tick", |b| {
        b.iter(|| black_box(engine.evaluate(black_box(now), Scope::Tick)))
    });
    c.bench_function("engine/record", |b| {
        let s = sample(1, now, 1);
        b.iter(|| engine.record(black_box(&s)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
