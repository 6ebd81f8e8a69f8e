//! What the admin server tells: admin API requests by endpoint and code,
//! open connections and those it refused or closed; and the exposition of
//! the whole registry for `/metrics`.

use crate::telemetry::Registry;
use prometheus::{IntCounterVec, IntGauge};

/// The admin server's metrics; cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    registry: Registry,
    admin_requests: IntCounterVec,
    connections: IntGauge,
    rejected: IntCounterVec,
    closed: IntCounterVec,
}

impl Telemetry {
    /// Registers the server's metrics in `registry`, which `/metrics` shows whole.
    pub fn register(registry: &Registry) -> Telemetry {
        Telemetry {
            registry: registry.clone(),
            admin_requests: registry.counter(
                "backstop_admin_requests_total",
                "Admin API requests by endpoint and HTTP status code (401/403: refused tokens, 429: rate limited).",
                &["endpoint", "code"],
            ),
            connections: registry.gauge1(
                "backstop_admin_connections",
                "Open connections to the admin server.",
            ),
            rejected: registry.counter(
                "backstop_admin_connections_rejected_total",
                "Admin connections refused at once because every connection under a cap (per_peer, total) was busy.",
                &["reason"],
            ),
            closed: registry.counter(
                "backstop_admin_connections_closed_total",
                "Admin connections the server closed: no_request (no request head within 5 s of connecting), idle (no request for 10 s), evicted (idle, and a newcomer over a cap took its place).",
                &["reason"],
            ),
        }
    }

    /// Metrics of their own (tests).
    pub fn detached() -> Telemetry {
        Telemetry::register(&Registry::new())
    }

    /// The Prometheus text exposition of every metric of the process.
    pub fn encode(&self) -> String {
        self.registry.encode()
    }

    /// One admin API request; `endpoint` is a known path or "other".
    pub fn admin_request(&self, endpoint: &str, code: u16) {
        self.admin_requests
            .with_label_values(&[endpoint, &code.to_string()])
            .inc();
    }

    /// Admin connections open now.
    pub fn admin_connections(&self, open: usize) {
        self.connections
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    /// An admin connection refused at accept; `reason` is the cap.
    pub fn admin_connection_refused(&self, reason: &str) {
        self.rejected.with_label_values(&[reason]).inc();
    }

    /// An admin connection the server closed; `reason` says why.
    pub fn admin_connection_closed(&self, reason: &str) {
        self.closed.with_label_values(&[reason]).inc();
    }
}
