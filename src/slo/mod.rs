//! SLO arithmetic on good/total counts: SLI, error ratio, burn rate and
//! remaining error budget, and how a young window is judged. Pure functions
//! with no state; the counts come from [`crate::window`] (`Spread`s, whose
//! good is "good" for availability and "good within" for latency).
//!
//! Objectives are fractions in (0, 1) here (`0.999`); configuration speaks in
//! percent (`99.9`) and converts before calling.
//!
//! # Young windows
//! A window younger than its span (a new pod) has seen part of what a full
//! window will hold. It is judged on a lower bound of the error ratio the
//! full window will show: the failures already seen, plus the events still
//! to come at the lowest error rate the evidence supports with 99 %
//! confidence (one-sided), or at none while the evidence says too little
//! about how failures spread in time: fewer than ten failures, fewer than
//! three batches of 10 s, or fewer than 200 events a batch (probes, a few
//! a second, never extrapolate). That rate is the Wilson score lower bound of
//! the ratio seen, over an effective number of events: failures that come
//! together within one 10 s batch may share one cause, so when batches
//! differ more than independent events would, the events count as fewer
//! (the design effect of cluster sampling), and the bound takes Student's
//! t for the number of batches instead of the normal quantile, as that
//! spread is itself estimated from few batches. A sustained failure
//! spreads over every batch and is caught as soon as its count makes it
//! plain; a burst fills one or two batches and weighs what it will weigh
//! in the full window. A full window is judged on its plain ratio.

use std::time::Duration;

use serde::Serialize;

use crate::window::Spread;

/// Fraction of good events, `None` when there were none at all.
///
/// `good` above `total` is a caller bug; it is clamped to `total`.
pub fn sli(good: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| good.min(total) as f64 / total as f64)
}

/// Fraction of bad events (`1 - sli`), `None` when there were none at all.
///
/// Computed as `bad / total` rather than `1 - sli`: `1 - 999/1000` is
/// `0.0010000000000000009`, `1/1000` is the closest double to 0.001.
pub fn error_ratio(good: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| (total - good.min(total)) as f64 / total as f64)
}

/// How fast the error budget burns: `error_ratio / (1 - objective)`.
///
/// 1.0 spends exactly the budget over the SLO period; 14.4 spends a 30-day
/// budget's 2 % in one hour. With an objective of 1 (no budget at all) any
/// error burns infinitely fast and no error burns nothing.
pub fn burn_rate(error_ratio: f64, objective: f64) -> f64 {
    let budget = 1.0 - objective;
    if budget > 0.0 {
        error_ratio / budget
    } else if error_ratio > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

/// Fraction of the error budget left if the whole SLO period went like this
/// window: `1 - burn_rate`. Not clamped: a negative value says by how much
/// the budget is overspent (-1.0 means spent twice over), which a clamp at
/// zero would hide.
pub fn budget_remaining(error_ratio: f64, objective: f64) -> f64 {
    1.0 - burn_rate(error_ratio, objective)
}

/// The one-sided confidence of the bound a young window is judged on.
pub const CONFIDENCE: f64 = 0.99;

/// How a young window is judged: the lower bound of the error ratio its
/// full window will show.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Young {
    /// Events seen so far.
    pub seen: u64,
    /// Events a full window is expected to hold.
    pub expected: u64,
    /// The one-sided confidence of the bounds.
    pub confidence: f64,
    /// The full window's error ratio will be at least this.
    pub error_ratio_at_least: f64,
    /// For an SLO: the burn rate that ratio means.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burn_rate_at_least: Option<f64>,
}

impl Young {
    /// The words every surface uses for a young window, e.g. "young window,
    /// 2300 of 30000 expected requests seen".
    pub fn seen_of(&self, unit: &str) -> String {
        format!(
            "young window, {} of {} expected {unit} seen",
            self.seen, self.expected
        )
    }

    /// "at least X at 99% confidence".
    pub fn at_least(value: String) -> String {
        format!("at least {value} at {:.0}% confidence", CONFIDENCE * 100.0)
    }
}

/// The error ratio of a window, and for a young one (`missing` > 0: events
/// a full window would hold beyond those seen) its lower bound over the
/// full window. `None` for a window without events.
pub fn judge(spread: &Spread, missing: u64) -> (Option<f64>, Option<Young>) {
    let ratio = error_ratio(spread.good, spread.total);
    let young = (ratio.is_some() && missing > 0).then(|| {
        let rate = error_rate_at_least(spread);
        let expected = spread.total.saturating_add(missing);
        Young {
            seen: spread.total,
            expected,
            confidence: CONFIDENCE,
            error_ratio_at_least: (spread.bad() as f64 + rate * missing as f64) / expected as f64,
            burn_rate_at_least: None,
        }
    });
    (ratio, young)
}

/// Below this many failures their spread in time says too little: the
/// rate is not bounded (taken as 0), and a young window is judged on the
/// failures seen alone, as if every event still to come were good.
pub const MIN_FAILURES: u64 = 10;

/// A failure is extrapolated only once seen over this many 10 s batches
/// (weighed as equal ones, see `Spread::effective_batches`): over one or
/// two, a burst that is over looks like a trend that goes on.
pub const MIN_BATCHES: u64 = 3;

/// Batches must hold this many events on average (20 a second) for a
/// burst to stand out from its neighbours: with a few probes a second, a
/// 5 s outage of every target in a new pod looked like a trend.
pub const MIN_BATCH_EVENTS: u64 = 200;

/// The error rate that the events of `spread` show at least, at
/// [`CONFIDENCE`] (see the module docs). 0 with fewer than
/// [`MIN_FAILURES`] failures or [`MIN_BATCHES`] batches, or batches
/// smaller than [`MIN_BATCH_EVENTS`].
pub fn error_rate_at_least(spread: &Spread) -> f64 {
    let bad = spread.bad();
    let per_batch = spread.total / spread.batches.max(1);
    if bad < MIN_FAILURES
        || spread.effective_batches() < MIN_BATCHES
        || per_batch < MIN_BATCH_EVENTS
    {
        return 0.0;
    }
    let n = spread.total as f64;
    let p = bad as f64 / n;
    let k = spread.batches as f64;
    // Variance of the ratio as independent events (known once the ratio
    // is: the normal quantile), and as k batches (estimated from them:
    // Student's t with k - 1 degrees of freedom). The larger one counts.
    let independent = p * (1.0 - p) / n;
    let batched = k / (k - 1.0) * spread.residuals() / (n * n);
    if batched > independent && independent > 0.0 {
        wilson_lower(
            p,
            n * independent / batched,
            t99(spread.effective_batches() - 1),
        )
    } else {
        wilson_lower(p, n, Z99)
    }
}

/// The normal quantile of a one-sided 99 % bound.
const Z99: f64 = 2.326_348;

/// Lower end of the Wilson score interval for a ratio `p` over `n` events
/// with quantile `z`.
fn wilson_lower(p: f64, n: f64, z: f64) -> f64 {
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let margin = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - margin) / (1.0 + z2 / n)).max(0.0)
}

/// Student's t quantile for a one-sided 99 % bound with `df` degrees of
/// freedom: a table to 30, then the Cornish-Fisher expansion around the
/// normal quantile (within 0.001 of the exact value past 30).
fn t99(df: u64) -> f64 {
    // 2.718 is t at 11 degrees of freedom, not e.
    #[allow(clippy::approx_constant)]
    const TABLE: [f64; 30] = [
        31.821, 6.965, 4.541, 3.747, 3.365, 3.143, 2.998, 2.896, 2.821, 2.764, 2.718, 2.681, 2.650,
        2.624, 2.602, 2.583, 2.567, 2.552, 2.539, 2.528, 2.518, 2.508, 2.500, 2.492, 2.485, 2.479,
        2.473, 2.467, 2.462, 2.457,
    ];
    const Z: f64 = Z99;
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df as usize - 1],
        _ => {
            let v = df as f64;
            let (z3, z5) = (Z.powi(3), Z.powi(5));
            Z + (z3 + Z) / (4.0 * v) + (5.0 * z5 + 16.0 * z3 + 3.0 * Z) / (96.0 * v * v)
        }
    }
}

/// Everything `/status`, the metrics and the rules show for one SLO over
/// one window, from [`evaluate`]. The ratios are `None` when the window
/// holds no events; they are what was seen. A young window also carries
/// the bound it is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SloWindow {
    /// Length of the window the counts cover.
    pub window_seconds: f64,
    /// Events that met the objective's definition of good.
    pub good: u64,
    /// All events.
    pub total: u64,
    /// `good / total`.
    pub sli: Option<f64>,
    /// `1 - sli`.
    pub error_ratio: Option<f64>,
    /// `error_ratio / (1 - objective)`.
    pub burn_rate: Option<f64>,
    /// `1 - burn_rate`; negative when overspent.
    pub budget_remaining: Option<f64>,
    /// Set while the window is younger than its span: judged on this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub young: Option<Young>,
}

impl SloWindow {
    /// The burn rate the rules judge: the lower bound for a young window,
    /// the burn rate seen for a full one.
    pub fn judged_burn_rate(&self) -> Option<f64> {
        match self.young {
            Some(y) => y.burn_rate_at_least,
            None => self.burn_rate,
        }
    }
}

/// Evaluates one SLO (`objective` as a fraction, e.g. `0.999`) over one
/// window; `missing` as for [`judge`]. The one function behind every SLO
/// number backstop shows or acts on.
pub fn evaluate(spread: &Spread, missing: u64, objective: f64, window: Duration) -> SloWindow {
    let (error_ratio, young) = judge(spread, missing);
    let (good, total) = (spread.good, spread.total);
    SloWindow {
        window_seconds: window.as_secs_f64(),
        good,
        total,
        sli: sli(good, total),
        error_ratio,
        burn_rate: error_ratio.map(|e| burn_rate(e, objective)),
        budget_remaining: error_ratio.map(|e| budget_remaining(e, objective)),
        young: young.map(|y| Young {
            burn_rate_at_least: Some(burn_rate(y.error_ratio_at_least, objective)),
            ..y
        }),
    }
}

#[cfg(test)]
mod tests;
