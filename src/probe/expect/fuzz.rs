//! Property tests of the JSON expectations: any body against any paths ends
//! in a verdict, never a panic; a body that holds the expected value at the
//! path matches, however its numbers are spelled; the same body with any
//! other value there does not; a body that is not JSON fails with a reason.

use std::time::Duration;

use crate::test_support::proptest_config;
use proptest::prelude::*;
use serde_json::{Map, Value};

use super::{Body, check};
use crate::config::Expect;
use crate::probe::{Outcome, Reason};

const FAST: Duration = Duration::from_millis(1);

fn expect_json(path: &str, want: &Value) -> Expect {
    Expect {
        json: [(path.to_owned(), want.clone())].into(),
        ..Expect::default()
    }
}

/// Numbers at the edges of what JSON and f64 hold, and any others.
fn number() -> impl Strategy<Value = Value> {
    let edges = prop::sample::select(vec![
        Value::from(0.0),
        Value::from(-0.0),
        Value::from(f64::MAX),
        Value::from(f64::MIN),
        Value::from(f64::MIN_POSITIVE),
        Value::from(5e-324),
        Value::from(-5e-324),
        Value::from(9_007_199_254_740_992u64),
        Value::from(9_007_199_254_740_993u64),
        Value::from(u64::MAX),
        Value::from(i64::MIN),
    ]);
    prop_oneof![
        edges,
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
    ]
}

/// Object keys, with the characters a path gives meaning to.
fn key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9.\\[\\] é✓]{0,6}", "\\PC{0,6}"]
}

/// Any JSON value, up to a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        "\\PC{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// One step of a path: a key of an object, or an index into an array.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        // Any key a configuration accepts: no dot, not empty.
        "[^.]{1,6}".prop_map(Step::Key),
        (0usize..6).prop_map(Step::Index),
    ]
}

/// A document with `value` at the end of `steps`, and `filler` around it.
fn place(steps: &[Step], value: Value, filler: &Value) -> Value {
    steps.iter().rev().fold(value, |inner, step| match step {
        Step::Key(k) => {
            let mut map = Map::new();
            // Siblings before and after, so lookup is by name, not position.
            map.insert(format!("{k}_before"), filler.clone());
            map.insert(k.clone(), inner);
            map.insert(format!("~{k}"), filler.clone());
            Value::Object(map)
        }
        Step::Index(i) => {
            let mut items = vec![filler.clone(); i + 2];
            items[*i] = inner;
            Value::Array(items)
        }
    })
}

fn path_of(steps: &[Step]) -> String {
    let parts: Vec<String> = steps
        .iter()
        .map(|s| match s {
            Step::Key(k) => k.clone(),
            Step::Index(i) => i.to_string(),
        })
        .collect();
    parts.join(".")
}

/// Every whole number up to 2^53 spelled as a float (`3` → `3.0`), as
/// another JSON encoder may write it.
fn as_floats(value: Value) -> Value {
    match value {
        Value::Number(n) => match n.as_i64() {
            Some(i) if i.unsigned_abs() <= 1 << 53 => Value::from(i as f64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(as_floats).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, as_floats(v))).collect())
        }
        other => other,
    }
}

/// A value that differs from `want` by the matcher's own measure: another
/// kind, or the next number, or a longer string, list or map.
fn other_than(want: &Value) -> Value {
    match want {
        Value::Null => Value::Bool(false),
        Value::Bool(b) => Value::Bool(!b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u.wrapping_add(1))
            } else if let Some(i) = n.as_i64() {
                Value::from(i + 1)
            } else {
                let f = n.as_f64().unwrap_or_default();
                let next = if f == f64::MAX {
                    f.next_down()
                } else {
                    f.next_up()
                };
                Value::from(next)
            }
        }
        Value::String(s) => Value::String(format!("{s}x")),
        Value::Array(items) => {
            let mut items = items.clone();
            items.push(Value::Null);
            Value::Array(items)
        }
        Value::Object(map) => {
            let mut map = map.clone();
            map.insert("\u{0}added".to_owned(), Value::Null);
            Value::Object(map)
        }
    }
}

fn verdict(expect: &Expect, body: &[u8]) -> Outcome {
    check(expect, 200, Body::whole(body), FAST)
}

proptest! {
    // Bodies here are the largest documents this suite builds.
    #![proptest_config(proptest_config(128))]

    /// Any body, JSON or not, against any paths and values: a verdict,
    /// and a failure always says why.
    #[test]
    fn any_body_and_paths_end_in_a_verdict(
        body in prop_oneof![
            json().prop_map(|v| serde_json::to_vec(&v).expect("serialises")),
            prop::collection::vec(any::<u8>(), 0..200),
        ],
        paths in prop::collection::vec(("\\PC{0,16}", json()), 1..4),
    ) {
        let expect = Expect { json: paths.into_iter().collect(), ..Expect::default() };
        match verdict(&expect, &body) {
            Outcome::Success { status } => prop_assert_eq!(status, 200),
            Outcome::Failure { reason, detail } => {
                prop_assert_eq!(reason, Reason::Json);
                prop_assert!(!detail.is_empty());
            }
        }
    }
}

proptest! {
    #![proptest_config(proptest_config(256))]

    /// The expected value at its path matches, with whole numbers written
    /// either way; any other value there fails, naming the path.
    #[test]
    fn the_value_at_its_path_matches_and_no_other_does(
        steps in prop::collection::vec(step(), 1..6),
        want in json(),
        filler in json(),
        floats in any::<bool>(),
    ) {
        let path = path_of(&steps);
        let expect = expect_json(&path, &want);
        let spell = |v: Value| if floats { as_floats(v) } else { v };

        let body = serde_json::to_vec(&spell(place(&steps, want.clone(), &filler))).expect("serialises");
        let outcome = verdict(&expect, &body);
        prop_assert!(outcome.is_success(), "{:?} for {}", outcome, String::from_utf8_lossy(&body));

        let other = other_than(&want);
        let body = serde_json::to_vec(&spell(place(&steps, other, &filler))).expect("serialises");
        match verdict(&expect, &body) {
            Outcome::Failure { reason: Reason::Json, detail } => {
                prop_assert!(detail.starts_with(&format!("{path}: ")), "{}", detail);
            }
            outcome => prop_assert!(false, "{:?} for {}", outcome, String::from_utf8_lossy(&body)),
        }
    }

    /// A body that is not JSON is a failure that says so.
    #[test]
    fn a_body_that_is_not_json_fails_with_a_reason(
        body in prop::collection::vec(any::<u8>(), 0..200)
            .prop_filter("not JSON", |b| serde_json::from_slice::<Value>(b).is_err()),
    ) {
        let outcome = verdict(&expect_json("status", &Value::from("ok")), &body);
        match outcome {
            Outcome::Failure { reason: Reason::Json, detail } => {
                prop_assert!(detail.starts_with("body is not JSON: "), "{}", detail);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}

#[test]
fn huge_arrays_and_deep_documents() {
    let items: Vec<Value> = (0..100_000u64).map(Value::from).collect();
    let body = serde_json::to_vec(&serde_json::json!({ "items": items })).expect("serialises");
    let last = expect_json("items.99999", &Value::from(99_999));
    assert!(verdict(&last, &body).is_success());
    let past = verdict(&expect_json("items.100000", &Value::from(0)), &body);
    assert_eq!(
        past,
        Outcome::Failure {
            reason: Reason::Json,
            detail: "items.100000: missing".to_owned()
        }
    );

    // As deep as the JSON parser goes, and then deeper.
    let deep = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let path = vec!["0"; 100].join(".");
    assert!(verdict(&expect_json(&path, &Value::from(1)), deep(100).as_bytes()).is_success());
    match verdict(
        &expect_json(&path, &Value::from(1)),
        deep(100_000).as_bytes(),
    ) {
        Outcome::Failure {
            reason: Reason::Json,
            detail,
        } => assert!(detail.starts_with("body is not JSON: "), "{detail}"),
        other => panic!("{other:?}"),
    }
}
