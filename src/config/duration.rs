//! Durations as the configuration writes them: `500ms`, `1.5s`, `1h30m`,
//! with the units ms, s, m, h and d only, and a hint when another unit was
//! meant (`5M`, `10sec`, `2w`).

use std::time::Duration;

use super::values::quote;

/// The units a duration takes, longest first so that `ms` is not read as `m`.
const UNITS: [(&str, u128); 5] = [
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3600 * 1_000_000_000),
    ("d", 86_400 * 1_000_000_000),
];

/// Units people write that mean something else here, and what to write
/// instead (None: no unit of that size is accepted).
const LOOKALIKES: &[(&str, Option<&str>, &str)] = &[
    ("M", Some("m"), "M is not minutes (nor months)"),
    ("S", Some("s"), "units are lower case"),
    ("H", Some("h"), "units are lower case"),
    ("D", Some("d"), "units are lower case"),
    ("MS", Some("ms"), "units are lower case"),
    ("Ms", Some("ms"), "units are lower case"),
    ("mS", Some("ms"), "units are lower case"),
    ("sec", Some("s"), "write seconds as s"),
    ("secs", Some("s"), "write seconds as s"),
    ("second", Some("s"), "write seconds as s"),
    ("seconds", Some("s"), "write seconds as s"),
    ("min", Some("m"), "write minutes as m"),
    ("mins", Some("m"), "write minutes as m"),
    ("minute", Some("m"), "write minutes as m"),
    ("minutes", Some("m"), "write minutes as m"),
    ("hr", Some("h"), "write hours as h"),
    ("hrs", Some("h"), "write hours as h"),
    ("hour", Some("h"), "write hours as h"),
    ("hours", Some("h"), "write hours as h"),
    ("day", Some("d"), "write days as d"),
    ("days", Some("d"), "write days as d"),
    ("msec", Some("ms"), "write milliseconds as ms"),
    ("msecs", Some("ms"), "write milliseconds as ms"),
    ("millis", Some("ms"), "write milliseconds as ms"),
    (
        "ns",
        Some("s"),
        "nothing shorter than a millisecond is accepted",
    ),
    (
        "us",
        Some("s"),
        "nothing shorter than a millisecond is accepted",
    ),
    (
        "µs",
        Some("s"),
        "nothing shorter than a millisecond is accepted",
    ),
    (
        "w",
        None,
        "weeks are not accepted; write days, like \"14d\"",
    ),
    (
        "y",
        None,
        "years are not accepted; write days, like \"365d\"",
    ),
];

/// A duration: one or more `<number><unit>` (`500ms`, `1.5s`, `1h30m`,
/// `1m 30s`) with the units `ms`, `s`, `m`, `h`, `d` and nothing else, so
/// that `5M` (months elsewhere) or `2w` cannot slip through with a meaning
/// nobody intended.
pub(super) fn parse(s: &str) -> Result<Duration, String> {
    let numeric = !s.is_empty()
        && s.chars().any(|c| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-');
    if numeric {
        return Err(no_unit(s));
    }
    let not_a_duration = || {
        format!(
            "{} is not a duration; write e.g. \"500ms\", \"5s\" or \"1h30m\"",
            quote(s)
        )
    };
    let parts = split_duration(s).ok_or_else(not_a_duration)?;
    let mut nanos: u128 = 0;
    for (number, unit) in &parts {
        let Some(&(_, size)) = UNITS.iter().find(|(u, _)| u == unit) else {
            return Err(unknown_unit(s, &parts, unit));
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = whole.parse().map_err(|_| not_a_duration())?;
        let scale = 10u128.checked_pow(u32::try_from(fraction.len()).unwrap_or(u32::MAX));
        let part = match (scale, fraction) {
            (_, "") => whole.checked_mul(size),
            (Some(scale), f) => {
                let f: u128 = f.parse().map_err(|_| not_a_duration())?;
                whole
                    .checked_mul(size)
                    .and_then(|w| w.checked_add(f.checked_mul(size)? / scale))
            }
            (None, _) => None,
        };
        nanos = part
            .and_then(|p| nanos.checked_add(p))
            .ok_or_else(|| format!("{} is longer than 365 days", quote(s)))?;
    }
    let secs = u64::try_from(nanos / 1_000_000_000)
        .map_err(|_| format!("{} is longer than 365 days", quote(s)))?;
    let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, sub))
}

/// `1h30m` → [("1", "h"), ("30", "m")]; spaces between parts (and
/// before a unit) are allowed.
/// None when the text is not numbers each followed by letters.
fn split_duration(s: &str) -> Option<Vec<(&str, &str)>> {
    let mut parts = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_end);
        let tail = tail.trim_start();
        let unit_end = tail
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let digits = number.chars().filter(char::is_ascii_digit).count();
        if digits == 0 || number.matches('.').count() > 1 || unit.is_empty() {
            return None;
        }
        parts.push((number, unit));
        rest = tail.trim_start();
    }
    (!parts.is_empty()).then_some(parts)
}

/// The message for a unit this reader does not take, with the spelling it
/// probably meant: `"5M" is not a duration: M is not minutes (nor months);
/// did you mean "5m"?`.
fn unknown_unit(s: &str, parts: &[(&str, &str)], unit: &str) -> String {
    let (replacement, why) = match LOOKALIKES.iter().find(|(l, _, _)| *l == unit) {
        Some((_, replacement, why)) => (*replacement, (*why).to_owned()),
        None => (None, format!("{unit:?} is not a unit")),
    };
    let hint = replacement.map(|r| {
        let fixed: Vec<String> = parts
            .iter()
            .map(|(n, u)| {
                if *u == unit {
                    format!("{n}{r}")
                } else {
                    format!("{n}{u}")
                }
            })
            .collect();
        format!("; did you mean \"{}\"?", fixed.join(""))
    });
    format!(
        "{} is not a duration: {why}{} (units: ms, s, m, h, d)",
        quote(s),
        hint.unwrap_or_default()
    )
}

pub(super) fn no_unit(number: &str) -> String {
    format!("{number} has no unit; write e.g. \"{number}s\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only ms, s, m, h and d: `5M` is months to humantime and minutes to
    /// whoever wrote it; every other unit is refused with what to write.
    #[test]
    fn durations_take_five_units_and_hint_at_the_intended_one() {
        let err = |text: &str| parse(text).unwrap_err();
        let units = " (units: ms, s, m, h, d)";
        assert_eq!(
            err("5M"),
            format!(
                r#""5M" is not a duration: M is not minutes (nor months); did you mean "5m"?{units}"#
            )
        );
        assert_eq!(
            err("1h30M"),
            format!(
                r#""1h30M" is not a duration: M is not minutes (nor months); did you mean "1h30m"?{units}"#
            )
        );
        assert_eq!(
            err("10sec"),
            format!(r#""10sec" is not a duration: write seconds as s; did you mean "10s"?{units}"#)
        );
        assert_eq!(
            err("5 minutes"),
            format!(
                r#""5 minutes" is not a duration: write minutes as m; did you mean "5m"?{units}"#
            )
        );
        assert_eq!(
            err("2w"),
            format!(
                r#""2w" is not a duration: weeks are not accepted; write days, like "14d"{units}"#
            )
        );
        assert_eq!(
            err("1y"),
            format!(
                r#""1y" is not a duration: years are not accepted; write days, like "365d"{units}"#
            )
        );
        assert_eq!(
            err("5ns"),
            format!(
                r#""5ns" is not a duration: nothing shorter than a millisecond is accepted; did you mean "5s"?{units}"#
            )
        );
        assert_eq!(
            err("5x"),
            format!(r#""5x" is not a duration: "x" is not a unit{units}"#)
        );
        assert!(err("1..5s").contains("is not a duration"));
        assert!(err("s").contains("is not a duration"));
    }
}
