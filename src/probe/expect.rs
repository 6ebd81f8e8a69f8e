//! Expectations on an answer: status, body text, JSON fields, latency. Pure
//! functions over what the HTTP layer read, so they are tested without a
//! network.

use super::{Outcome, Reason};
use crate::config::Expect;
use std::time::Duration;

/// What was read of a body: at most the cap, and whether there was more.
#[derive(Debug, Clone, Copy)]
pub struct Body<'a> {
    pub bytes: &'a [u8],
    /// The body went on past the cap; `bytes` is its first `MAX_BODY` bytes.
    pub truncated: bool,
}

impl<'a> Body<'a> {
    /// A body read whole.
    pub fn whole(bytes: &'a [u8]) -> Body<'a> {
        Body {
            bytes,
            truncated: false,
        }
    }
}

/// How much of a body is read, and what a cut is called in messages.
pub const MAX_BODY: usize = 1 << 20;
const CAP: &str = "1 MiB";

/// Judge one answer. Checks run cheapest first; the first failing one wins.
/// A body cut at the cap fails only a check that needs what was cut: JSON
/// always (a prefix is not the document), `body_contains` when the text is
/// not in the part read.
pub fn check(expect: &Expect, status: u16, body: Body<'_>, latency: Duration) -> Outcome {
    let status_ok = if expect.status.is_empty() {
        (200..300).contains(&status)
    } else {
        expect.status.contains(&status)
    };
    if !status_ok {
        let wanted = if expect.status.is_empty() {
            "2xx".to_string()
        } else {
            format!("{:?}", expect.status)
        };
        return failure(
            Reason::Status,
            format!("status {status}, expected {wanted}"),
        );
    }
    if let Some(needle) = &expect.body_contains
        && !contains(body.bytes, needle.as_bytes())
    {
        if body.truncated {
            return failure(
                Reason::Truncated,
                format!(
                    "body cut at {CAP}; body_contains not checked past it ({needle:?} is not in the first {CAP})"
                ),
            );
        }
        return failure(Reason::Body, format!("body does not contain {needle:?}"));
    }
    if !expect.json.is_empty() {
        if body.truncated {
            return failure(
                Reason::Truncated,
                format!("body cut at {CAP}; JSON not checked"),
            );
        }
        let doc: serde_json::Value = match serde_json::from_slice(body.bytes) {
            Ok(doc) => doc,
            Err(e) => return failure(Reason::Json, format!("body is not JSON: {e}")),
        };
        for (path, want) in &expect.json {
            match json_path(&doc, path) {
                None => return failure(Reason::Json, format!("{path}: missing")),
                Some(got) if !json_equal(got, want) => {
                    return failure(Reason::Json, format!("{path}: {got}, expected {want}"));
                }
                Some(_) => {}
            }
        }
    }
    if let Some(max) = expect.max_latency
        && latency > max
    {
        return failure(
            Reason::Latency,
            format!("took {latency:.1?}, more than max_latency {max:?}"),
        );
    }
    Outcome::Success { status }
}

fn failure(reason: Reason, detail: String) -> Outcome {
    Outcome::Failure { reason, detail }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Follow a dotted path (`data.items.0.id`): object keys by name, array
/// elements by index. An empty path is the document itself.
pub fn json_path<'a>(doc: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    if path.is_empty() {
        return Some(doc);
    }
    path.split('.').try_fold(doc, |node, key| match node {
        serde_json::Value::Object(map) => map.get(key),
        serde_json::Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// Equality where numbers compare by value (YAML `1` equals JSON `1.0`), in
/// lists and maps too.
fn json_equal(got: &serde_json::Value, want: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => match (whole(a), whole(b)) {
            // Exact: as f64, 2^53 + 1 would equal 2^53.
            (Some(a), Some(b)) => a == b,
            _ => a.as_f64() == b.as_f64(),
        },
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.get(k).is_some_and(|y| json_equal(x, y)))
        }
        _ => got == want,
    }
}

/// A number without a fraction, exactly; None for a fraction or a float
/// too large for the cast to be exact.
fn whole(n: &serde_json::Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e38)
                .map(|f| f as i128)
        })
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expect() -> Expect {
        Expect::default()
    }

    fn reason(o: Outcome) -> Option<Reason> {
        match o {
            Outcome::Success { .. } => None,
            Outcome::Failure { reason, .. } => Some(reason),
        }
    }

    const FAST: Duration = Duration::from_millis(5);

    #[test]
    fn default_status_is_any_2xx() {
        assert_eq!(reason(check(&expect(), 204, Body::whole(b""), FAST)), None);
        assert_eq!(
            reason(check(&expect(), 301, Body::whole(b""), FAST)),
            Some(Reason::Status)
        );
        assert_eq!(
            reason(check(&expect(), 500, Body::whole(b""), FAST)),
            Some(Reason::Status)
        );
    }

    #[test]
    fn explicit_status_list_replaces_default() {
        let e = Expect {
            status: vec![200, 404],
            ..expect()
        };
        assert_eq!(reason(check(&e, 404, Body::whole(b""), FAST)), None);
        assert_eq!(
            reason(check(&e, 201, Body::whole(b""), FAST)),
            Some(Reason::Status)
        );
    }

    #[test]
    fn body_contains() {
        let e = Expect {
            body_contains: Some("ok".into()),
            ..expect()
        };
        assert_eq!(
            reason(check(&e, 200, Body::whole(b"all ok here"), FAST)),
            None
        );
        assert_eq!(
            reason(check(&e, 200, Body::whole(b"degraded"), FAST)),
            Some(Reason::Body)
        );
    }

    #[test]
    fn json_paths_compare_values() {
        let mut e = expect();
        e.json.insert("status".into(), json!("ok"));
        e.json.insert("checks.1.up".into(), json!(true));
        e.json.insert("count".into(), json!(3));
        let good = br#"{"status":"ok","checks":[{"up":false},{"up":true}],"count":3.0}"#;
        assert_eq!(reason(check(&e, 200, Body::whole(good), FAST)), None);
        let bad = br#"{"status":"degraded","checks":[{"up":false},{"up":true}],"count":3}"#;
        let out = check(&e, 200, Body::whole(bad), FAST);
        assert_eq!(
            out,
            Outcome::Failure {
                reason: Reason::Json,
                detail: "status: \"degraded\", expected \"ok\"".into()
            }
        );
        assert_eq!(
            reason(check(&e, 200, Body::whole(b"<html>"), FAST)),
            Some(Reason::Json)
        );
        assert_eq!(
            reason(check(&e, 200, Body::whole(br#"{"status":"ok"}"#), FAST)),
            Some(Reason::Json)
        );
    }

    #[test]
    fn numbers_compare_exactly_and_at_any_depth() {
        let matches = |want: serde_json::Value, body: &str| {
            let mut e = expect();
            e.json.insert("x".into(), want);
            reason(check(&e, 200, Body::whole(body.as_bytes()), FAST)).is_none()
        };
        // Whole numbers written either way, inside lists and maps too.
        assert!(matches(json!(3), r#"{"x": 3.0}"#));
        assert!(matches(json!([1, {"n": 2}]), r#"{"x": [1.0, {"n": 2e0}]}"#));
        assert!(!matches(json!([1, 2]), r#"{"x": [1, 2, 3]}"#));
        assert!(!matches(json!({"a": 1}), r#"{"x": {"a": 1, "b": 2}}"#));
        // Past 2^53 an f64 cannot tell these apart; the matcher must.
        assert!(!matches(
            json!(9_007_199_254_740_993u64),
            r#"{"x": 9007199254740992}"#
        ));
        assert!(!matches(json!(u64::MAX), r#"{"x": 18446744073709551614}"#));
        assert!(matches(json!(-0.0), r#"{"x": 0}"#));
        // Seventeen significant digits parse to the same f64 as in YAML.
        assert!(matches(
            json!(-1.8353629641631959e-19),
            r#"{"x": -1.8353629641631959e-19}"#
        ));
        assert!(!matches(json!(0.1), r#"{"x": 0.10000000000000002}"#));
    }

    #[test]
    fn json_path_edge_cases() {
        let doc = json!({"a": {"b": [10, {"c": null}]}, "x.y": 1});
        assert_eq!(json_path(&doc, "a.b.0"), Some(&json!(10)));
        assert_eq!(json_path(&doc, "a.b.1.c"), Some(&json!(null)));
        assert_eq!(json_path(&doc, "a.b.2"), None);
        assert_eq!(json_path(&doc, "a.b.x"), None);
        assert_eq!(json_path(&doc, "a.b.0.z"), None);
        assert_eq!(json_path(&doc, ""), Some(&doc));
    }

    /// A 1 MiB prefix of a valid document is not JSON: saying "not JSON:
    /// EOF" would send people looking for a broken app.
    #[test]
    fn a_cut_body_fails_only_the_checks_that_need_what_was_cut() {
        let cut = |bytes: &'static [u8]| Body {
            bytes,
            truncated: true,
        };
        // Status only: the body is not needed.
        assert_eq!(reason(check(&expect(), 200, cut(b"{\"a\":"), FAST)), None);
        let mut e = expect();
        e.json.insert("status".into(), json!("ok"));
        // Even a prefix that parses is not the document.
        assert_eq!(
            check(&e, 200, cut(br#"{"status":"ok"}"#), FAST),
            Outcome::Failure {
                reason: Reason::Truncated,
                detail: "body cut at 1 MiB; JSON not checked".into()
            }
        );
        // A failed status is still the first word.
        assert_eq!(
            reason(check(&e, 503, cut(b"{"), FAST)),
            Some(Reason::Status)
        );
        let e = Expect {
            body_contains: Some("ok".into()),
            ..expect()
        };
        assert_eq!(reason(check(&e, 200, cut(b"all ok, and more"), FAST)), None);
        let Outcome::Failure { reason, detail } = check(&e, 200, cut(b"degraded..."), FAST) else {
            panic!("a cut body without the text passed");
        };
        assert_eq!(reason, Reason::Truncated);
        assert!(
            detail.starts_with("body cut at 1 MiB; body_contains not checked"),
            "{detail}"
        );
    }

    #[test]
    fn latency_is_checked_last() {
        let e = Expect {
            max_latency: Some(Duration::from_millis(100)),
            ..expect()
        };
        assert_eq!(
            reason(check(&e, 200, Body::whole(b""), Duration::from_millis(100))),
            None
        );
        assert_eq!(
            reason(check(&e, 200, Body::whole(b""), Duration::from_millis(101))),
            Some(Reason::Latency)
        );
        assert_eq!(
            reason(check(&e, 500, Body::whole(b""), Duration::from_secs(1))),
            Some(Reason::Status)
        );
    }
}
