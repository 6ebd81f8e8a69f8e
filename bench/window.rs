//! Cost of recording a probe result and of the queries the evaluator makes,
//! on a 10 m window. Criterion cannot run in paused tokio time, so instants
//! are `Instant::now()` plus offsets.

use std::hint::black_box;
use std::time::Duration;

use backstop::window::Window;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::time::Instant;

const HORIZON: Duration = Duration::from_secs(600);
const THRESHOLD: Duration = Duration::from_millis(200);

/// Latencies cycled through, so the histogram index varies as in real use.
fn latency(i: u64) -> Duration {
    Duration::from_micros(20_000 + (i * 7919) % 400_000)
}

/// A 10 m window filled at one sample per second for 20 minutes (every
/// ring has wrapped), and the instant of its last sample.
fn filled() -> (Window, Instant) {
    let start = Instant::now();
    let mut w = Window::new(HORIZON, &[THRESHOLD], start);
    let mut at = start;
    for i in 0..1200 {
        at = start + Duration::from_secs(i);
        w.record(at, !i.is_multiple_of(50), latency(i));
    }
    (w, at)
}

fn record(c: &mut Criterion) {
    let mut g = c.benchmark_group("record");
    // Many probes land in the same second: no slot is reset.
    g.bench_function("same_second", |b| {
        let (mut w, at) = filled();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            w.record(black_box(at), !i.is_multiple_of(50), latency(i));
        });
    });
    // One probe per second: every record starts a new 1 s slot (zeroing
    // its histogram) and every tenth a new 10 s slot — the usual case.
    g.bench_function("new_second", |b| {
        let (mut w, mut at) = filled();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            at += Duration::from_secs(1);
            w.record(black_box(at), !i.is_multiple_of(50), latency(i));
        });
    });
    g.finish();
}

fn queries(c: &mut Criterion) {
    let (w, now) = filled();
    let mut g = c.benchmark_group("query");
    g.bench_function("counts_60s", |b| {
        b.iter(|| w.counts(black_box(Duration::from_secs(60)), now))
    });
    g.bench_function("counts_10m", |b| {
        b.iter(|| w.counts(black_box(HORIZON), now))
    });
    g.bench_function("good_within_5m", |b| {
        b.iter(|| w.good_within(black_box(Duration::from_secs(300)), now, 0))
    });
    g.bench_function("stats_5m_p95", |b| {
        b.iter(|| {
            let stats = w.stats(black_box(Duration::from_secs(300)), now);
            stats.latency.percentile(95.0)
        })
    });
    g.finish();
}

criterion_group!(benches, record, queries);
criterion_main!(benches);
