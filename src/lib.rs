//! backstop: a sidecar that probes a service, keeps sliding windows of the
//! results, turns them into SLIs and burn rates, and undoes a bad release.
//!
//! # Layout
//! Data flows one way; each stage owns its state and the next reads it
//! through a small typed interface:
//!
//! ```text
//! config ─► probe ──Sample──► engine (window, slo, rules) ──Decision──► act
//!         (scrapes carry the app's /metrics body ─► traffic counting)
//!                 └──────── telemetry (metrics, logs, events) ◄─────────┘
//!                                         ▲ server reads
//! ```
//!
//! - [`config`]: the YAML contract, defaults, `${VAR}` expansion, validation.
//! - [`probe`]: HTTP probes on a schedule, expectations, failure reasons.
//! - [`traffic`]: the app's own metrics: exposition parsers, selectors,
//!   per-series counting, `histogram_quantile`.
//! - [`window`]: fixed-memory time-bucketed rings per target.
//! - [`slo`]: SLI, error ratio, burn rate, error budget.
//! - [`rules`]: condition kinds, evidence, the ok → pending → firing machine.
//! - [`engine`]: windows + rule states; samples (and scrapes, folded into
//!   traffic entries) in, decisions out.
//! - [`act`]: rollback (webhook) behind guards, retries, action records.
//! - [`alert_rules`]: Prometheus SLO recording rules and burn-rate alerts (`backstop alert-rules`).
//! - [`telemetry`]: Prometheus metrics, logs, the event stream.
//! - [`server`]: the admin HTTP server (`/metrics`, `/status`, ...).
//! - [`tls`]: which CAs outbound HTTPS trusts.
//! - [`redact`]: credentials in URLs kept out of what backstop shows.
//! - [`percent`]: percentages shown the way the configuration takes them.
//! - [`daemon`]: starts and stops the stages; [`demo`]: the built-in demo.
#![forbid(unsafe_code)]

pub mod act;
pub mod alert_rules;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod engine;
pub mod percent;
pub mod probe;
pub mod redact;
pub mod rules;
pub mod server;
pub mod slo;
pub mod telemetry;
#[cfg(test)]
mod test_support;
pub mod tls;
pub mod traffic;
pub mod window;

pub use daemon::{Event, Options, Running, run, start};

pub use tls::init as init_tls;
