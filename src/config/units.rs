//! Quantities: durations, percentages and numbers, and the rounding rules
//! used to derive defaults from them. Each reader records a problem naming
//! the bad value and returns None, so validation goes on.

use std::time::Duration;

use serde_json::Value;

use super::error::Problems;
use super::values::describe;

/// Longest duration accepted anywhere; longer ones are surely typos and could
/// overflow clock arithmetic downstream.
pub(super) const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Whether a duration may be zero.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Zero {
    Allowed,
    Forbidden,
}

/// A duration as messages show it: `3s`, `1m 30s`, `500ms`.
pub(super) fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A duration like `500ms`, `5s`, `1h30m`; a bare number is refused because
/// its unit would be a guess.
pub(super) fn duration(
    p: &mut Problems,
    path: &str,
    value: &Value,
    zero: Zero,
) -> Option<Duration> {
    let parsed = match value {
        Value::String(s) => super::duration::parse(s.trim()),
        Value::Number(n) => Err(super::duration::no_unit(&n.to_string())),
        other => Err(format!(
            "expected a duration like \"5s\", got {}",
            describe(other)
        )),
    };
    let checked = parsed.and_then(|d| {
        if d.is_zero() && zero == Zero::Forbidden {
            Err("must be greater than 0, got 0s".to_owned())
        } else if d > MAX_DURATION {
            Err(format!("{} is longer than 365 days", describe(value)))
        } else {
            Ok(d)
        }
    });
    checked.map_err(|m| p.add(path, m)).ok()
}

/// An optional duration with a default.
pub(super) fn duration_or(
    p: &mut Problems,
    path: &str,
    value: &Option<Value>,
    default: Duration,
    zero: Zero,
) -> Option<Duration> {
    match value {
        Some(v) => duration(p, path, v, zero),
        None => Some(default),
    }
}

/// A percentage: `99.9`, `"99.9"` or `"5%"`. Range checks are the caller's.
pub(super) fn percent(p: &mut Problems, path: &str, value: &Value) -> Option<f64> {
    let parsed = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let s = s.trim();
            s.strip_suffix('%')
                .unwrap_or(s)
                .trim_end()
                .parse::<f64>()
                .ok()
        }
        _ => None,
    };
    let finite = parsed.filter(|x| x.is_finite());
    if finite.is_none() {
        p.add(
            path,
            format!(
                "expected a percentage like 99.9 or \"5%\", got {}",
                describe(value)
            ),
        );
    }
    finite
}

/// A number with a fraction allowed (`14.4`), given as a number or as text
/// (which is what `${VAR}` produces).
pub(super) fn number(p: &mut Problems, path: &str, value: &Value) -> Option<f64> {
    let parsed = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let finite = parsed.filter(|x| x.is_finite());
    if finite.is_none() {
        p.add(path, format!("expected a number, got {}", describe(value)));
    }
    finite
}

/// A whole number within `min..=max`, given as a number or as text.
pub(super) fn whole(
    p: &mut Problems,
    path: &str,
    value: &Value,
    min: u64,
    max: u64,
) -> Option<u64> {
    let parsed: Option<i128> = match value {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            // `3.0` is a whole number too, and so is `1e30`: clamped, it is
            // still out of every range, on the same side.
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0)
                    .map(|f| f.clamp(-1e30, 1e30) as i128)
            }),
        Value::String(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    };
    let Some(n) = parsed else {
        p.add(
            path,
            format!("expected a whole number, got {}", describe(value)),
        );
        return None;
    };
    let in_range = u64::try_from(n).ok().filter(|n| (min..=max).contains(n));
    if in_range.is_none() {
        let below = n < i128::from(min);
        // A float is shown as written, not as its clamped value.
        let n = match value {
            Value::Number(f) if f.is_f64() => f.to_string(),
            _ => n.to_string(),
        };
        let message = if max != u64::MAX && max != u64::from(u32::MAX) {
            format!("must be between {min} and {max}, got {n}")
        } else if below {
            format!("must be at least {min}, got {n}")
        } else {
            format!("must be at most {max}, got {n}")
        };
        p.add(path, message);
    }
    in_range
}

/// `true` or `false` (also as text, which is what `${VAR}` produces).
pub(super) fn boolean(p: &mut Problems, path: &str, value: &Value) -> Option<bool> {
    let parsed = match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    };
    if parsed.is_none() {
        p.add(
            path,
            format!("expected true or false, got {}", describe(value)),
        );
    }
    parsed
}

/// A number for messages: at most six decimals, no trailing zeros.
pub(super) fn decimal(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Percent → fraction, rounded to 12 decimals so that 99.9 becomes exactly
/// the f64 nearest 0.999 (not 0.9990000000000001) in metrics and `/status`.
pub(super) fn fraction(percent: f64) -> f64 {
    (percent / 100.0 * 1e12).round() / 1e12
}

/// Ceil and floor that forgive binary rounding (100 / (100 - 99.9) is
/// 1000.0000000000568, which must count as 1000).
pub(super) fn ceil_tolerant(x: f64) -> f64 {
    (x * (1.0 - 1e-12)).ceil()
}

pub(super) fn floor_tolerant(x: f64) -> f64 {
    (x * (1.0 + 1e-12)).floor()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::config::error::check as one;

    fn dur(v: Value, zero: Zero) -> Result<Duration, String> {
        one(|p| duration(p, "x", &v, zero))
    }

    #[test]
    fn durations() {
        let s = Duration::from_secs;
        assert_eq!(
            dur(json!("500ms"), Zero::Forbidden),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(dur(json!("1h30m"), Zero::Forbidden), Ok(s(5400)));
        assert_eq!(dur(json!(" 5m "), Zero::Forbidden), Ok(s(300)));
        assert_eq!(dur(json!("0s"), Zero::Allowed), Ok(Duration::ZERO));
        assert_eq!(
            dur(json!(5), Zero::Forbidden),
            Err(r#"5 has no unit; write e.g. "5s""#.to_owned())
        );
        assert_eq!(
            dur(json!("1.5"), Zero::Forbidden),
            Err(r#"1.5 has no unit; write e.g. "1.5s""#.to_owned())
        );
        assert_eq!(
            dur(json!("0ms"), Zero::Forbidden),
            Err("must be greater than 0, got 0s".to_owned())
        );
        assert_eq!(
            dur(json!("fast"), Zero::Forbidden),
            Err(r#""fast" is not a duration; write e.g. "500ms", "5s" or "1h30m""#.to_owned())
        );
        assert!(dur(json!("-5s"), Zero::Allowed).is_err());
        assert_eq!(
            dur(json!("1.5s"), Zero::Forbidden),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(dur(json!("1m 30s"), Zero::Forbidden), Ok(s(90)));
        assert_eq!(dur(json!("2d"), Zero::Forbidden), Ok(s(2 * 86_400)));
        assert_eq!(
            dur(json!("0.25ms"), Zero::Forbidden),
            Ok(Duration::from_micros(250))
        );
        assert!(dur(json!("2y"), Zero::Allowed).is_err());
        assert!(
            dur(json!("366d"), Zero::Allowed)
                .unwrap_err()
                .contains("longer than 365 days")
        );
        assert!(dur(json!("99999999999999999999h"), Zero::Allowed).is_err());
        assert!(dur(json!(true), Zero::Allowed).is_err());
        assert!(dur(json!(["5s"]), Zero::Allowed).is_err());
        assert_eq!(show(s(90)), "1m 30s");
    }

    #[test]
    fn percentages_with_and_without_sign() {
        let pct = |v: Value| one(|p| percent(p, "x", &v));
        assert_eq!(pct(json!(99.9)), Ok(99.9));
        assert_eq!(pct(json!(95)), Ok(95.0));
        assert_eq!(pct(json!("5%")), Ok(5.0));
        assert_eq!(pct(json!(" 99.9 % ")), Ok(99.9));
        assert_eq!(pct(json!("99.9")), Ok(99.9));
        assert!(pct(json!("five")).is_err());
        assert!(pct(json!("inf%")).is_err());
        assert!(pct(json!("NaN")).is_err());
        assert!(pct(json!(null)).is_err());
    }

    #[test]
    fn whole_numbers_and_booleans() {
        let int = |v: Value| one(|p| whole(p, "x", &v, 1, u64::MAX));
        assert_eq!(int(json!(3)), Ok(3));
        assert_eq!(int(json!(3.0)), Ok(3));
        assert_eq!(int(json!("30")), Ok(30));
        assert_eq!(int(json!(0)), Err("must be at least 1, got 0".to_owned()));
        assert_eq!(int(json!(-2)), Err("must be at least 1, got -2".to_owned()));
        assert_eq!(
            int(json!(1.5)),
            Err("expected a whole number, got 1.5".to_owned())
        );
        // Too large for the type: the message names the upper bound.
        assert_eq!(
            int(json!("99999999999999999999")),
            Err("must be at most 18446744073709551615, got 99999999999999999999".to_owned())
        );
        assert_eq!(
            int(json!(1e23)),
            Err("must be at most 18446744073709551615, got 1e+23".to_owned())
        );
        assert_eq!(
            one(|p| whole(p, "x", &json!(-1e40), 0, u64::from(u32::MAX))),
            Err("must be at least 0, got -1e+40".to_owned())
        );
        let status = one(|p| whole(p, "x", &json!(600), 100, 599));
        assert_eq!(
            status,
            Err("must be between 100 and 599, got 600".to_owned())
        );
        assert_eq!(one(|p| boolean(p, "x", &json!("TRUE"))), Ok(true));
        assert!(one(|p| boolean(p, "x", &json!("yes"))).is_err());
    }

    #[test]
    fn tolerant_rounding() {
        assert_eq!(ceil_tolerant(100.0 / (100.0 - 99.9)), 1000.0);
        assert_eq!(ceil_tolerant(20.0), 20.0);
        assert_eq!(ceil_tolerant(20.5), 21.0);
        assert_eq!(floor_tolerant(1.0 / 0.05), 20.0);
        assert_eq!(floor_tolerant(69.4), 69.0);
        assert_eq!(fraction(99.9), 0.999);
        assert_eq!(fraction(5.0), 0.05);
        assert_eq!(fraction(99.95), 0.9995);
    }
}
