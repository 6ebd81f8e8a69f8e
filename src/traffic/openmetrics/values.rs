//! OpenMetrics rules about one sample on its own: its value fits its role
//! (counts are whole and not negative, an info is 1, a state 0 or 1), and
//! it has the labels its role needs (`le`, `quantile`, the state) and no
//! others of those.

use crate::traffic::exposition::{Label, MetricType, Role, find_label};
use crate::traffic::lex::om_real;

/// Checks one sample on its own; returns a bucket's `le`.
pub(super) fn check_sample(
    kind: MetricType,
    family: &str,
    name: &str,
    role: Role,
    value: f64,
    labels: &[Label<'_>],
    exemplar: bool,
) -> Result<Option<f64>, String> {
    if exemplar && !matches!(role, Role::Total | Role::Bucket) {
        return Err(format!(
            "`{name}` has an exemplar; only counter totals and histogram buckets may"
        ));
    }
    let histogram = matches!(kind, MetricType::Histogram | MetricType::GaugeHistogram);
    if histogram && role != Role::Bucket && find_label(labels, "le").is_some() {
        return Err(format!(
            "`{name}` has an `le` label; only the buckets of a histogram may"
        ));
    }
    if kind == MetricType::Summary
        && role != Role::Quantile
        && find_label(labels, "quantile").is_some()
    {
        return Err(format!(
            "`{name}` has a `quantile` label; only a summary's quantiles may"
        ));
    }
    let what = match role {
        Role::Total => "a counter's total",
        Role::Count | Role::GaugeCount => "a count",
        Role::Sum => "a sum",
        Role::Bucket => "a bucket count",
        _ => "",
    };
    if matches!(
        role,
        Role::Total | Role::Count | Role::GaugeCount | Role::Sum | Role::Bucket
    ) && (value.is_nan() || value < 0.0)
    {
        return Err(format!(
            "`{name}` is {value}, but {what} must be a number no less than 0"
        ));
    }
    if matches!(role, Role::Count | Role::GaugeCount | Role::Bucket) && value.fract() != 0.0 {
        return Err(format!(
            "`{name}` is {value}, but {what} must be a whole number"
        ));
    }
    match role {
        Role::GaugeSum if value.is_nan() => Err(format!(
            "`{name}` is NaN, but a gauge histogram's sum must be a number"
        )),
        Role::Bucket => match find_label(labels, "le") {
            None => Err(format!("the bucket `{name}` has no `le` label")),
            Some("+Inf") => Ok(Some(f64::INFINITY)),
            Some(le) => match om_real(le) {
                Some(le) => Ok(Some(le)),
                None => Err(format!(
                    "the bucket `{name}` has le=\"{le}\", which is not a number (the top bucket is \"+Inf\")"
                )),
            },
        },
        Role::Quantile => {
            let Some(q) = find_label(labels, "quantile") else {
                return Err(format!("the summary's `{name}` needs a `quantile` label"));
            };
            if !om_real(q).is_some_and(|q| (0.0..=1.0).contains(&q)) {
                return Err(format!(
                    "`{name}` has quantile=\"{q}\"; a quantile is a number from 0 to 1"
                ));
            }
            if value < 0.0 {
                return Err(format!(
                    "the quantile `{name}` is {value}; quantiles must not be negative"
                ));
            }
            Ok(None)
        }
        Role::Info if value != 1.0 => Err(format!(
            "the info `{name}` is {value}; an info sample is always 1"
        )),
        Role::Value if kind == MetricType::StateSet => {
            if find_label(labels, family).is_none() {
                return Err(format!(
                    "the stateset `{name}` needs a label named `{family}` for its state"
                ));
            }
            if value != 0.0 && value != 1.0 {
                return Err(format!(
                    "the state of `{name}` is {value}; a state is 0 or 1"
                ));
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}
