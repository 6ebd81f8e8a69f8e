//! Telemetry plumbing that every stage uses and that depends on none of
//! them: the shared Prometheus registry (with the constructors stages
//! register their metrics through), the event bus stages emit into, log
//! setup and the OTLP exporter.
//!
//! Each stage owns its metrics and its events (`probe::Telemetry`,
//! `engine::Telemetry`, `act::Telemetry`, `server::Telemetry`,
//! `daemon::Telemetry`): one method per event logs, counts and emits it,
//! so the log line, the metric and the event stream cannot drift apart.

mod logs;
pub mod otlp;

pub use logs::init_logs;

use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    TextEncoder,
};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Seconds buckets for probe and action durations: 1 ms .. 30 s.
pub const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 3.0, 5.0, 10.0,
    30.0,
];

/// The registry every metric of one process goes into; cheap to clone.
/// Label values stay bounded (names from the configuration, results and
/// reasons from small fixed sets), never URLs.
#[derive(Clone)]
pub struct Registry(prometheus::Registry);

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry(
            prometheus::Registry::new_custom(None, None)
                .expect("static registry options are valid"),
        )
    }

    fn add<C: Collector + Clone + 'static>(&self, c: C) -> C {
        self.0
            .register(Box::new(c.clone()))
            .expect("metric names are unique and valid");
        c
    }

    pub fn counter(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
    }

    pub fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
    }

    /// A gauge without labels.
    pub fn gauge1(&self, name: &str, help: &str) -> IntGauge {
        self.add(IntGauge::new(name, help).expect("valid metric"))
    }

    /// A gauge of fractional values.
    pub fn gauge_f(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        self.add(GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
    }

    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: &[f64],
    ) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.add(HistogramVec::new(opts, labels).expect("valid metric"))
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.0.gather(), &mut out)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// Where a stage's events go: into a broadcast channel of the process's
/// event type, wrapped on the way (the stage never names that type), or
/// nowhere. Building the event is skipped while nobody listens.
pub struct Emitter<E>(Option<Arc<dyn Sink<E>>>);

impl<E> Clone for Emitter<E> {
    fn clone(&self) -> Self {
        Emitter(self.0.clone())
    }
}

trait Sink<E>: Send + Sync {
    fn listening(&self) -> bool;
    fn send(&self, event: E);
}

struct Wrapped<T, F> {
    to: broadcast::Sender<T>,
    wrap: F,
}

impl<E, T, F> Sink<E> for Wrapped<T, F>
where
    T: Send,
    F: Fn(E) -> T + Send + Sync,
{
    fn listening(&self) -> bool {
        self.to.receiver_count() > 0
    }
    fn send(&self, event: E) {
        // A slow subscriber loses the oldest events (it sees `Lagged`);
        // none makes backstop wait.
        let _ = self.to.send((self.wrap)(event));
    }
}

impl<E: 'static> Emitter<E> {
    /// Events go nowhere.
    pub fn none() -> Emitter<E> {
        Emitter(None)
    }

    /// Events go to `to`, each wrapped by `wrap`.
    pub fn to<T: Send + 'static>(
        to: broadcast::Sender<T>,
        wrap: impl Fn(E) -> T + Send + Sync + 'static,
    ) -> Emitter<E> {
        Emitter(Some(Arc::new(Wrapped { to, wrap })))
    }

    /// Emit the event `make` builds, if anyone listens.
    pub fn emit(&self, make: impl FnOnce() -> E) {
        if let Some(sink) = &self.0
            && sink.listening()
        {
            sink.send(make());
        }
    }
}

/// Milliseconds with two decimals, for log fields.
pub fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_what_was_registered() {
        let r = Registry::new();
        let c = r.counter("backstop_things_total", "Things.", &["kind"]);
        c.with_label_values(&["a"]).inc();
        assert!(r.encode().contains("backstop_things_total{kind=\"a\"} 1"));
    }

    #[test]
    fn events_are_wrapped_and_built_only_for_listeners() {
        let (tx, mut rx) = broadcast::channel::<String>(4);
        let emitter = Emitter::to(tx.clone(), |n: u32| format!("event {n}"));
        emitter.emit(|| 1);
        assert_eq!(rx.try_recv().unwrap(), "event 1");
        drop(rx);
        emitter.emit(|| unreachable!("nobody listens"));
        Emitter::<u32>::none().emit(|| unreachable!("goes nowhere"));
    }
}
