//! Logging: JSON lines when stderr is not a terminal (what log collectors
//! want), human-readable text on a terminal, level from `RUST_LOG`
//! (default `info`).

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Install the global subscriber. Calling it twice is harmless (the second
/// call keeps the first subscriber).
pub fn init_logs(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::io::stderr().is_terminal() {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    };
}
