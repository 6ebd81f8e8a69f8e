//! The integration tests: one binary, so the crate and its dependencies are
//! linked once rather than once per file (linkerd2-proxy's
//! `linkerd/app/integration` does the same). Each module is one subject;
//! `common` holds the harness and every fake neighbour.
//!
//! libtest starts tests in name order, as many at a time as it has
//! threads (one per core unless `RUST_TEST_THREADS` says otherwise;
//! `scripts/test` gives four, since most of these tests wait on the clock).

mod common;

/// The real-time soak: three tests of two to three minutes, mostly
/// waiting. Named to sort first, so that it starts at once and the rest
/// runs beside it, rather than trailing everything.
mod a_soak;

mod admin;
mod alert_rules;
mod alertmanager;
mod bundles;
mod cli;
mod daemon;
mod examples;
mod fake_kube;
mod faults;
mod grafana;
mod k8s_component;
mod kubernetes;
mod notify;
mod otlp;
mod pagerduty;
mod prometheus;
mod reload;
mod secrets;
mod slow_endpoint;
mod status_page;
mod tls;
mod traffic;
mod verdict;
