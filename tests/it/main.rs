//! The integration tests: one binary, so the crate and its dependencies are
//! linked once rather than once per file (linkerd2-proxy's
//! `linkerd/app/integration` does the same). Each module is one subject;
//! `common` holds the harness and every fake neighbour.
//!
//! libtest starts tests in name order, as many at a time as there are
//! cores: a test that runs for minutes should sort early, so that it does
//! not start last and hold up the end of the run.

mod common;

mod admin;
mod alertmanager;
mod bundles;
mod cli;
mod daemon;
mod examples;
mod fake_kube;
mod faults;
mod grafana;
mod kubernetes;
mod otlp;
mod pagerduty;
mod prometheus;
mod reload;
mod secrets;
mod soak;
mod tls;
