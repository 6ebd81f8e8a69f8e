//! Logging: JSON lines when stderr is not a terminal (what log collectors
//! want), human-readable text on a terminal, level from `RUST_LOG`
//! (default `info`). With tracing configured, backstop's own spans also go
//! to OpenTelemetry (never those of its dependencies: the exporter's own
//! HTTP calls must not trace themselves).
//!
//! A JSON line carries a rule's evidence as a JSON object, not as a string
//! holding JSON (`json`), so a log pipeline can query `evidence.error_ratio`.

mod json;

use std::io::IsTerminal;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Install the global subscriber. Calling it twice is harmless (the second
/// call keeps the first subscriber).
pub fn init_logs(default_level: &str, tracer: Option<opentelemetry_sdk::trace::Tracer>) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = if std::io::stderr().is_terminal() {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json::JsonLines)
            .with_writer(std::io::stderr)
            .boxed()
    };
    let otel = tracer.map(|t| {
        tracing_opentelemetry::layer()
            .with_tracer(t)
            .with_filter(Targets::new().with_target("backstop", LevelFilter::INFO))
    });
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init();
}
