//! Probing: one task per target runs an HTTP request on the target's
//! interval (with a small random phase so targets do not fire in lockstep),
//! checks the answer against the target's expectations and sends a `Sample`
//! downstream. At most one probe per target is in flight: the per-probe
//! timeout never exceeds the interval, and a late tick is skipped, not queued.

mod expect;
mod http;
mod schedule;
mod telemetry;

pub use expect::{Body, MAX_BODY, check, json_path};
pub use http::{MAX_SCRAPE_BODY, SCRAPE_ACCEPT};
pub use http::{Prober, Request};
pub use schedule::{Place, Probes, Warmup};
pub use telemetry::{Change, Probed, Streak, Telemetry};

use std::time::Duration;
use tokio::time::Instant;

/// Why a probe failed: a small fixed set, used as the `reason` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Could not connect (refused, reset, DNS), or the answer was not HTTP.
    Connect,
    /// The TLS handshake failed: certificate not trusted, expired, or for
    /// another name.
    Tls,
    /// No complete answer within the timeout.
    Timeout,
    /// Status code not among the expected ones (a redirect not followed
    /// is judged as its 3xx).
    Status,
    /// Body does not contain the expected text (or could not be read).
    Body,
    /// A JSON path is missing or holds another value, or the body is not JSON.
    Json,
    /// The body is longer than the read cap (1 MiB), so an expectation on
    /// it could not be checked: the JSON was not parsed, or the text was not
    /// in the part read. For a scrape target: its metrics body is longer
    /// than 10 MiB, and none of it is counted.
    Truncated,
    /// Answered correctly but slower than `max_latency`.
    Latency,
    /// A scrape target's body is not a metrics exposition that parses (its
    /// detail says which line, and what is wrong there).
    Unparsable,
}

impl Reason {
    pub fn metric_label(self) -> &'static str {
        match self {
            Reason::Connect => "connect",
            Reason::Tls => "tls",
            Reason::Timeout => "timeout",
            Reason::Status => "status",
            Reason::Body => "body",
            Reason::Json => "json",
            Reason::Truncated => "truncated",
            Reason::Latency => "latency",
            Reason::Unparsable => "unparsable",
        }
    }
}

/// The result of one probe.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success { status: u16 },
    Failure { reason: Reason, detail: String },
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success { .. })
    }
}

/// One probe result, as it flows from a prober to the engine.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The configuration generation `target` indexes into.
    pub generation: u64,
    /// Index of the target in that generation's configuration.
    pub target: usize,
    /// When the probe started (monotonic clock).
    pub at: Instant,
    /// Request start to end of body (or to the timeout).
    pub latency: Duration,
    pub outcome: Outcome,
    /// False for a failure before the target's first success within its
    /// warm-up period: reported, but kept out of windows and rules.
    pub counted: bool,
    /// A scrape target's body, when it parsed: for its traffic entries.
    pub scraped: Option<Scraped>,
}

/// A scrape's body that parsed, passed on for the traffic entries to read.
#[derive(Clone)]
pub struct Scraped {
    pub format: crate::traffic::Format,
    pub body: std::sync::Arc<[u8]>,
}

impl std::fmt::Debug for Scraped {
    // The body may be megabytes: say how long it is, not what it says.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scraped({:?}, {} bytes)", self.format, self.body.len())
    }
}
