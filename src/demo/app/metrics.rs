//! The sample app counts its own requests the way most services do, with a
//! Prometheus client library (the `prometheus` crate here): a counter of
//! requests by method, route and status code, and a latency histogram by
//! method and route, served on `/metrics` as text format 0.0.4. This is
//! what backstop's traffic entries read in the demo.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use std::time::Duration;

/// Latency buckets, in seconds: a latency SLO's threshold must be one of them.
pub const BUCKETS: [f64; 9] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5];

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
}

/// The route a path belongs to: a closed set, so a scan of random paths
/// cannot grow the series without bound.
pub fn route(path: &str) -> &'static str {
    match path {
        "/health" => "/health",
        "/ready" => "/ready",
        "/api/orders" => "/api/orders",
        p if p.starts_with("/api/v1/analytics/") => "/api/v1/analytics/:report",
        _ => "other",
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "Requests served, by method, route and status code.",
            ),
            &["method", "path", "code"],
        )
        .expect("a valid counter definition");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer a request, by method and route.",
            )
            .buckets(BUCKETS.to_vec()),
            &["method", "path"],
        )
        .expect("a valid histogram definition");
        registry
            .register(Box::new(requests.clone()))
            .expect("registered once");
        registry
            .register(Box::new(duration.clone()))
            .expect("registered once");
        Metrics {
            registry,
            requests,
            duration,
        }
    }

    pub fn observe(&self, method: &str, path: &str, code: u16, took: Duration) {
        let route = route(path);
        self.requests
            .with_label_values(&[method, route, &code.to_string()])
            .inc();
        self.duration
            .with_label_values(&[method, route])
            .observe(took.as_secs_f64());
    }

    /// The exposition, and its content type.
    pub fn render(&self) -> (String, &'static str) {
        let mut out = Vec::new();
        let encoder = TextEncoder::new();
        // Encoding into a Vec cannot fail for these metric kinds.
        let _ = encoder.encode(&self.registry.gather(), &mut out);
        (
            String::from_utf8_lossy(&out).into_owned(),
            "text/plain; version=0.0.4; charset=utf-8",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::{Format, parse};

    #[test]
    fn what_the_app_serves_parses_and_counts_by_route() {
        let m = Metrics::new();
        m.observe("POST", "/api/orders", 201, Duration::from_millis(12));
        m.observe("POST", "/api/orders", 500, Duration::from_millis(30));
        m.observe("GET", "/wp-login.php", 404, Duration::from_millis(1));
        let (text, _) = m.render();
        assert!(
            text.contains(
                "http_requests_total{code=\"500\",method=\"POST\",path=\"/api/orders\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("path=\"other\""), "{text}");
        assert!(
            text.contains("http_request_duration_seconds_bucket{method=\"POST\",path=\"/api/orders\",le=\"0.025\"} 1"),
            "{text}"
        );
        parse(text.as_bytes(), Format::Text).expect("backstop's parser reads it");
    }
}
