use super::{Counter, Deltas, TooManySeries};
use crate::traffic::{Format, Selector, parse};

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn counter() -> Counter {
    Counter::new(
        sel("http_requests_total"),
        Some(sel(r#"http_requests_total{code=~"5.."}"#)),
        Some(sel("http_request_duration_seconds")),
    )
}

fn fold(c: &mut Counter, body: &str) -> Option<Deltas> {
    let scrape = parse(body.as_bytes(), Format::Text).unwrap();
    Some(c.fold(&scrape).unwrap()).filter(|d| !d.baseline)
}

fn totals(d: &Option<Deltas>) -> (f64, f64) {
    let d = d.as_ref().expect("not a baseline");
    (d.requests, d.errors)
}

#[test]
fn the_first_scrape_is_a_baseline_then_increases_are_summed() {
    let mut c = counter();
    let body = |ok: u32, bad: u32| {
        format!(
            "http_requests_total{{code=\"200\"}} {ok}\nhttp_requests_total{{code=\"500\"}} {bad}\n"
        )
    };
    assert_eq!(fold(&mut c, &body(1000, 7)), None);
    assert_eq!(totals(&fold(&mut c, &body(1090, 17))), (100.0, 10.0));
    assert_eq!(totals(&fold(&mut c, &body(1090, 17))), (0.0, 0.0));
    assert_eq!(c.series(), 3);
}

#[test]
fn a_counter_that_goes_down_restarted_from_zero() {
    let mut c = counter();
    fold(&mut c, "http_requests_total{code=\"200\"} 500\n");
    // The app restarted and has served 30 since.
    assert_eq!(
        totals(&fold(&mut c, "http_requests_total{code=\"200\"} 30\n")),
        (30.0, 0.0)
    );
    assert_eq!(
        totals(&fold(&mut c, "http_requests_total{code=\"200\"} 45\n")),
        (15.0, 0.0)
    );
}

#[test]
fn a_changed_created_is_a_restart_even_when_the_value_grew() {
    let mut c = Counter::new(sel("http_requests_total"), None, None);
    let om = |v: u32, created: u32| {
        format!(
            "# TYPE http_requests counter\nhttp_requests_total {v}\nhttp_requests_created {created}\n# EOF\n"
        )
    };
    let mut f = |body: String| {
        let scrape = parse(body.as_bytes(), Format::OpenMetrics).unwrap();
        Some(c.fold(&scrape).unwrap())
            .filter(|d| !d.baseline)
            .map(|d| d.requests)
    };
    assert_eq!(f(om(100, 1000)), None);
    assert_eq!(f(om(110, 1000)), Some(10.0));
    // Restarted at 2000 and already past the old value: all 120 are new.
    assert_eq!(f(om(120, 2000)), Some(120.0));
}

#[test]
fn a_new_series_counts_in_full_and_a_vanished_one_adds_nothing() {
    let mut c = counter();
    fold(&mut c, "http_requests_total{code=\"200\"} 100\n");
    // The first 503s: a series that did not exist at the last scrape.
    let d = fold(
        &mut c,
        "http_requests_total{code=\"200\"} 150\nhttp_requests_total{code=\"503\"} 4\n",
    );
    assert_eq!(totals(&d), (54.0, 4.0));
    // The 503 series vanishes: nothing is added or taken away.
    assert_eq!(
        totals(&fold(&mut c, "http_requests_total{code=\"200\"} 160\n")),
        (10.0, 0.0)
    );
    assert_eq!(c.series(), 1);
    // Back again: it started from zero since the last scrape that saw it gone.
    let d = fold(
        &mut c,
        "http_requests_total{code=\"200\"} 160\nhttp_requests_total{code=\"503\"} 2\n",
    );
    assert_eq!(totals(&d), (2.0, 2.0));
}

#[test]
fn nan_and_infinite_values_are_skipped_without_poisoning_the_sums() {
    let mut c = counter();
    fold(
        &mut c,
        "http_requests_total{code=\"200\"} 100\nhttp_requests_total{code=\"500\"} 1\n",
    );
    let d = fold(
        &mut c,
        "http_requests_total{code=\"200\"} NaN\nhttp_requests_total{code=\"500\"} +Inf\n",
    );
    assert_eq!(totals(&d), (0.0, 0.0));
    // NaN as a request; +Inf as a request and as an error.
    assert_eq!(c.skipped(), 3);
    // Compared with the last good values, not restarted.
    let d = fold(
        &mut c,
        "http_requests_total{code=\"200\"} 110\nhttp_requests_total{code=\"500\"} 3\n",
    );
    assert_eq!(totals(&d), (12.0, 2.0));
    let d = fold(&mut c, "http_requests_total{code=\"200\"} -5\n");
    assert_eq!(totals(&d), (0.0, 0.0));
}

#[test]
fn bucket_increases_are_summed_by_bound() {
    let mut c = counter();
    let body = |a: [u32; 3], b: [u32; 3]| {
        format!(
            "# TYPE http_request_duration_seconds histogram\n\
             http_request_duration_seconds_bucket{{path=\"/a\",le=\"0.1\"}} {}\n\
             http_request_duration_seconds_bucket{{path=\"/a\",le=\"0.5\"}} {}\n\
             http_request_duration_seconds_bucket{{path=\"/a\",le=\"+Inf\"}} {}\n\
             http_request_duration_seconds_count{{path=\"/a\"}} {}\n\
             http_request_duration_seconds_bucket{{path=\"/b\",le=\"0.1\"}} {}\n\
             http_request_duration_seconds_bucket{{path=\"/b\",le=\"0.5\"}} {}\n\
             http_request_duration_seconds_bucket{{path=\"/b\",le=\"+Inf\"}} {}\n\
             http_request_duration_seconds_count{{path=\"/b\"}} {}\n",
            a[0], a[1], a[2], a[2], b[0], b[1], b[2], b[2]
        )
    };
    fold(&mut c, &body([1, 2, 3], [0, 0, 0]));
    let d = fold(&mut c, &body([11, 20, 23], [5, 9, 10])).unwrap();
    assert_eq!(
        d.buckets,
        vec![(0.1, 15.0), (0.5, 27.0), (f64::INFINITY, 30.0)]
    );
    // The _count series is not a bucket, and the selector names the family.
    assert_eq!(d.requests, 0.0);
}

#[test]
fn the_baseline_shows_the_bounds_with_nothing_added() {
    let mut c = counter();
    let scrape = parse(
        b"# TYPE http_request_duration_seconds histogram\n\
          http_request_duration_seconds_bucket{le=\"0.1\"} 7\n\
          http_request_duration_seconds_bucket{le=\"+Inf\"} 9\n\
          http_requests_total 40\n",
        Format::Text,
    )
    .unwrap();
    let d = c.fold(&scrape).unwrap();
    assert!(d.baseline);
    assert_eq!(d.buckets, vec![(0.1, 0.0), (f64::INFINITY, 0.0)]);
    assert_eq!((d.requests, d.errors), (0.0, 0.0));
}

#[test]
fn only_an_inf_bucket_is_kept_as_such() {
    let mut c = counter();
    let body = |n: u32| {
        format!(
            "# TYPE http_request_duration_seconds histogram\n\
             http_request_duration_seconds_bucket{{le=\"+Inf\"}} {n}\n\
             http_request_duration_seconds_count {n}\n"
        )
    };
    fold(&mut c, &body(5));
    let d = fold(&mut c, &body(9)).unwrap();
    assert_eq!(d.buckets, vec![(f64::INFINITY, 4.0)]);
}

#[test]
fn too_many_series_is_refused_and_leaves_the_state_alone() {
    let mut c = Counter::with_max_series(sel("http_requests_total"), None, None, 2);
    fold(
        &mut c,
        "http_requests_total{a=\"1\"} 1\nhttp_requests_total{a=\"2\"} 1\n",
    );
    let three = "http_requests_total{a=\"1\"} 5\nhttp_requests_total{a=\"2\"} 5\nhttp_requests_total{a=\"3\"} 5\n";
    let scrape = parse(three.as_bytes(), Format::Text).unwrap();
    assert_eq!(c.fold(&scrape), Err(TooManySeries { matched: 3, max: 2 }));
    assert_eq!(
        TooManySeries { matched: 3, max: 2 }.to_string(),
        "3 series match this traffic entry's selectors; at most 2 are kept, so narrow the \
         selectors (match) or drop labels in the app"
    );
    // The next good scrape is compared with the last one folded.
    let d = fold(
        &mut c,
        "http_requests_total{a=\"1\"} 3\nhttp_requests_total{a=\"2\"} 4\n",
    );
    assert_eq!(d.map(|d| d.requests), Some(5.0));
}

#[test]
fn errors_never_exceed_requests() {
    // Errors read from another metric than requests, racing it.
    let mut c = Counter::new(sel("req_total"), Some(sel("err_total")), None);
    fold(&mut c, "req_total 10\nerr_total 0\n");
    assert_eq!(
        totals(&fold(&mut c, "req_total 12\nerr_total 5\n")),
        (2.0, 2.0)
    );
}

mod properties {
    use super::sel;
    use crate::test_support::proptest_config;
    use crate::traffic::{Format, parse};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// One series at one scrape: absent, a value, or an odd value.
    #[derive(Debug, Clone)]
    enum Seen {
        Absent,
        Value(u32),
        Odd(&'static str),
    }

    fn seen() -> impl Strategy<Value = Seen> {
        prop_oneof![
            1 => Just(Seen::Absent),
            6 => (0u32..1000).prop_map(Seen::Value),
            1 => prop_oneof![Just("NaN"), Just("+Inf"), Just("-Inf"), Just("-3")].prop_map(Seen::Odd),
        ]
    }

    proptest! {
        #![proptest_config(proptest_config(256))]

        /// Against a model of the rules, written plainly: each series'
        /// increase is its value minus its last good value, or its whole
        /// value after a decrease or when it is new since the last scrape;
        /// odd values add nothing and keep the last good value; the
        /// baseline adds nothing. The sums agree, and are never negative.
        #[test]
        fn increases_follow_the_model(scrapes in prop::collection::vec(prop::collection::vec(seen(), 3), 1..12)) {
            let mut c = super::Counter::new(
                sel("http_requests_total"),
                Some(sel(r#"http_requests_total{code=~"5.."}"#)),
                None,
            );
            let codes = ["200", "500", "503"];
            let mut last: BTreeMap<usize, u32> = BTreeMap::new();
            for (i, scrape) in scrapes.iter().enumerate() {
                let mut body = String::new();
                for (s, v) in scrape.iter().enumerate() {
                    match v {
                        Seen::Absent => {}
                        Seen::Value(n) => body.push_str(&format!("http_requests_total{{code=\"{}\"}} {n}\n", codes[s])),
                        Seen::Odd(t) => body.push_str(&format!("http_requests_total{{code=\"{}\"}} {t}\n", codes[s])),
                    }
                }
                let exposition = parse(body.as_bytes(), Format::Text).unwrap();
                let d = c.fold(&exposition).unwrap();
                let mut want = [0f64; 3];
                for (s, v) in scrape.iter().enumerate() {
                    match v {
                        Seen::Absent => { last.remove(&s); }
                        Seen::Odd(_) => {}
                        Seen::Value(n) => {
                            let add = match last.get(&s) {
                                Some(&prev) if *n >= prev => n - prev,
                                _ => *n,
                            };
                            want[s] = f64::from(add);
                            last.insert(s, *n);
                        }
                    }
                }
                let (requests, errors) = if i == 0 {
                    (0.0, 0.0)
                } else {
                    (want.iter().sum::<f64>(), want[1] + want[2])
                };
                prop_assert!(d.requests >= 0.0 && d.errors >= 0.0);
                prop_assert_eq!(d.baseline, i == 0);
                prop_assert_eq!(d.requests, requests, "scrape {}: {}", i, body);
                prop_assert_eq!(d.errors, errors, "scrape {}: {}", i, body);
            }
        }
    }
}
