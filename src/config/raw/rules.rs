//! `rules[]` as written: a rule, its `when` map, and each kind of condition.

use serde::Deserialize;
use serde_json::Value;

use super::{Section, Unknown, present};

/// `rules[]`: a condition, how long it must hold, and what to do.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of rule settings")]
pub(in crate::config) struct RawRule {
    /// Unique name (letters, digits, `.`, `_`, `-`), the `rule` metric label. Required.
    pub name: Option<Value>,
    /// The condition: exactly one of `consecutive_failures`, `error_rate`,
    /// `burn_rate`, `latency`, `restarts`. Required.
    #[serde(default, deserialize_with = "present")]
    pub when: Option<RawWhen>,
    /// How long the condition must hold before the rule fires. Default `0s`.
    #[serde(rename = "for")]
    pub for_: Option<Value>,
    /// Actions when it fires: `rollback`, `page`. Default none (observe only).
    #[serde(rename = "do")]
    pub actions: Option<Value>,
    /// Incident severity: `critical`, `error`, `warning` or `info`. Default
    /// `critical` when the rule rolls back, `error` otherwise.
    pub severity: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(RawRule, ["name", "when", "for", "do", "severity"]);

/// `rules[].when`: exactly one condition, plus the target it watches.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map with one condition")]
pub(in crate::config) struct RawWhen {
    /// Fires after this many failed probes in a row (at least 1) of `target`.
    #[serde(default, deserialize_with = "present")]
    pub consecutive_failures: Option<Value>,
    /// Fires when the share of failed probes passes a threshold.
    #[serde(default, deserialize_with = "present")]
    pub error_rate: Option<RawErrorRate>,
    /// Fires when an SLO's error budget burns too fast over two windows.
    #[serde(default, deserialize_with = "present")]
    pub burn_rate: Option<RawBurnRate>,
    /// Fires when a latency percentile of one target passes a threshold.
    #[serde(default, deserialize_with = "present")]
    pub latency: Option<RawLatency>,
    /// Fires when the pods restart too often (needs Kubernetes).
    #[serde(default, deserialize_with = "present")]
    pub restarts: Option<RawRestarts>,
    /// Target name for `consecutive_failures` (required), `error_rate` and `latency`.
    pub target: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(
    RawWhen,
    [
        "consecutive_failures",
        "error_rate",
        "burn_rate",
        "latency",
        "restarts",
        "target"
    ]
);

/// `when.error_rate`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of error_rate settings")]
pub(in crate::config) struct RawErrorRate {
    /// Fires when more than this percent of probes fail (`"5%"`); above 0, at most 100. Required.
    pub above: Option<Value>,
    /// Span the rate is computed over. Default `5m`.
    pub window: Option<Value>,
    /// Fewest probes in the window before it can fire. Default
    /// max(10, floor(100 / above) + 1), so one failed probe never suffices.
    pub min_samples: Option<Value>,
    /// One target's rate; default all targets together.
    pub target: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(RawErrorRate, ["above", "window", "min_samples", "target"]);

/// `when.burn_rate`: multi-window burn rate of an SLO.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of burn_rate settings")]
pub(in crate::config) struct RawBurnRate {
    /// Name of the SLO. Required.
    pub slo: Option<Value>,
    /// The short window. Default `5m`; must be shorter than `long`.
    pub short: Option<Value>,
    /// The long window. Default `1h`.
    pub long: Option<Value>,
    /// Fires when both windows burn the error budget this many times faster
    /// than sustainable (e.g. 14.4). Required, above 0.
    pub factor: Option<Value>,
    /// Fewest probes in the long window before it can fire (the short one
    /// needs one). Default max(10, floor(1 / (factor × error budget)) + 1),
    /// so a single failed probe can never trip it.
    pub min_samples: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(
    RawBurnRate,
    ["slo", "short", "long", "factor", "min_samples"]
);

/// `when.latency`.
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of latency settings")]
pub(in crate::config) struct RawLatency {
    /// Target name (here or as `when.target`). Required.
    pub target: Option<Value>,
    /// Percentile, strictly between 0 and 100. Default 95.
    pub percentile: Option<Value>,
    /// Fires when the percentile is slower than this. Required.
    pub above: Option<Value>,
    /// Span the percentile is computed over. Default `5m`.
    pub window: Option<Value>,
    /// Fewest probes in the window before it can fire. Default
    /// max(10, ceil(100 / (100 - percentile))).
    pub min_samples: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(
    RawLatency,
    ["target", "percentile", "above", "window", "min_samples"]
);

/// `when.restarts` (needs `rollback.kubernetes`: it counts the revision's pods' restarts).
#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a map of restarts settings")]
pub(in crate::config) struct RawRestarts {
    /// Fires when the containers restarted more than this many times. Required.
    pub above: Option<Value>,
    /// Span the restarts are counted over. Default `10m`.
    pub window: Option<Value>,
    /// The containers whose restarts count, by name (`[app]`). Default every
    /// container but backstop's own (`rollback.kubernetes.container`).
    pub containers: Option<Value>,
    #[serde(flatten)]
    pub unknown: Unknown,
}
section!(RawRestarts, ["above", "window", "containers"]);
