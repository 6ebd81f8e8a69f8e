use super::*;
use crate::slo::evaluate;

fn config() -> Config {
    crate::config::for_tests(
        r#"
service: checkout
targets:
  - { name: health, url: "http://127.0.0.1:8080/health", interval: 1s }
  - { name: orders, url: "http://127.0.0.1:8080/api/orders?x=1", interval: 1s }
slos:
  - { name: availability, objective: 99.9 }
"#,
    )
}

#[test]
fn an_error_rate_reads_as_counts_of_an_endpoint_against_its_limit() {
    let e = Evidence::ErrorRate {
        target: Some("orders".into()),
        window_seconds: 60.0,
        good: 471,
        bad: 41,
        young: None,
        error_ratio: Some(41.0 / 512.0),
        above: 0.05,
        min_samples: 30,
        traffic: false,
    };
    let fact = Fact::of(&config(), &e);
    assert_eq!(
        fact.to_string(),
        "/api/orders failing, 41 of 512 probes failed in 1m (8 %), limit 5 %"
    );
    let done = RollbackNote::Done {
        outcome: ActionOutcome::Succeeded,
        detail: "webhook accepted".into(),
        to: None,
    };
    assert_eq!(
        headline("checkout", "v2", &[("errors", &fact)], Some(&done)),
        "checkout v2: /api/orders failing, 41 of 512 probes failed in 1m (8 %), limit 5 %; \
         rolled back; needs a person"
    );
    // When the backend says what runs now, the summary names it.
    let to_v1 = RollbackNote::Done {
        outcome: ActionOutcome::Succeeded,
        detail: "webhook accepted".into(),
        to: Some("v1".into()),
    };
    assert_eq!(
        headline("checkout", "v2", &[("errors", &fact)], Some(&to_v1)),
        "checkout v2: /api/orders failing, 41 of 512 probes failed in 1m (8 %), limit 5 %; \
         rolled back to v1; needs a person"
    );
}

#[test]
fn more_rules_are_named_after_the_first_and_the_action_comes_last() {
    let c = config();
    let down = Fact::of(
        &c,
        &Evidence::ConsecutiveFailures {
            target: "health".into(),
            failures: 3,
            threshold: 3,
            last_failure: Some("HTTP 500".into()),
        },
    );
    let mut spread = crate::window::Spread::default();
    spread.add_batch(900, 1000);
    let w = evaluate(&spread, 0, 0.999, Duration::from_secs(60));
    let burn = Fact::of(
        &c,
        &Evidence::BurnRate {
            slo: "availability".into(),
            objective: 0.999,
            factor: 14.4,
            short: w,
            long: w,
            min_samples: 1,
        },
    );
    assert_eq!(
        burn.to_string(),
        "/health, /api/orders failing, 100 of 1000 probes failed in 1m, so SLO availability \
         burns its error budget 100× as fast as it may, limit 14.4×"
    );
    let line = headline(
        "checkout",
        "v2",
        &[("health-down", &down), ("fast-burn", &burn)],
        Some(&RollbackNote::Started),
    );
    assert_eq!(
        line,
        "checkout v2: /health failing, 3 failed probes in a row (last: HTTP 500), limit 3 in a \
         row; also fast-burn; rolling back"
    );
    assert!(
        headline("checkout", "v2", &[("health-down", &down)], None)
            .ends_with("; paging only, no rollback")
    );
    let held = RollbackNote::Prevented {
        reason: Prevented::Baked,
        detail: String::new(),
    };
    assert!(
        headline("checkout", "v2", &[], Some(&held)).ends_with("not rolled back: older than bake")
    );
}

#[test]
fn latency_and_restarts_read_in_their_units() {
    let c = config();
    let slow = Fact::of(
        &c,
        &Evidence::Latency {
            target: "orders".into(),
            percentile: 95.0,
            value_seconds: Some(2.5),
            above_seconds: 1.0,
            window_seconds: 300.0,
            samples: 120,
            young: None,
            min_samples: 10,
            traffic: false,
        },
    );
    assert_eq!(
        slow.to_string(),
        "/api/orders slow, p95 2.5 s in 5m (120 probes), limit 1 s"
    );
    let restarts = Fact::of(
        &c,
        &Evidence::Restarts {
            window_seconds: 600.0,
            restarts: Some(4),
            above: 3,
            containers: "checkout".into(),
        },
    );
    assert_eq!(
        restarts.to_string(),
        "pods restarting, 4 container restarts (checkout) in 10m, limit 3"
    );
}

#[test]
fn numbers_drop_only_meaningless_zeros() {
    assert_eq!(percent(0.05), "5 %");
    assert_eq!(percent(0.1), "10 %");
    assert_eq!(percent(0.125), "12.5 %");
    assert_eq!(percent(0.001), "0.1 %");
    assert_eq!(percent(0.0001), "0.01 %");
    assert_eq!(percent(1.0), "100 %");
    assert_eq!(times(14.4), "14.4×");
    assert_eq!(times(100.0), "100×");
    assert_eq!(seconds(0.2), "200 ms");
    assert_eq!(seconds(10.0), "10 s");
    assert_eq!(seconds(1.2), "1.2 s");
}

#[test]
fn traffic_counts_requests_not_probes() {
    let c = crate::config::for_tests(
        r#"
service: checkout
targets:
  - { name: metrics, url: "http://127.0.0.1:8080/metrics", scrape: true }
traffic:
  - { name: orders, preset: http-requests-total }
"#,
    );
    let e = Evidence::ErrorRate {
        target: Some("orders".into()),
        window_seconds: 120.0,
        good: 901,
        bad: 78,
        young: None,
        error_ratio: Some(78.0 / 979.0),
        above: 0.05,
        min_samples: 100,
        traffic: true,
    };
    assert_eq!(
        Fact::of(&c, &e).to_string(),
        "orders failing, 78 of 979 requests failed in 2m (8 %), limit 5 %"
    );
}

#[test]
fn a_young_window_says_the_time_its_counts_cover() {
    let c = config();
    let e = Evidence::ErrorRate {
        target: Some("orders".into()),
        window_seconds: 120.0,
        good: 471,
        bad: 41,
        young: Some(crate::slo::Young {
            seen: 512,
            expected: 2926,
            confidence: 0.99,
            error_ratio_at_least: 0.06,
            burn_rate_at_least: None,
        }),
        error_ratio: Some(41.0 / 512.0),
        above: 0.05,
        min_samples: 30,
        traffic: false,
    };
    assert_eq!(
        Fact::of(&c, &e).to_string(),
        "/api/orders failing, 41 of 512 probes failed in 21s (8 %), limit 5 %"
    );
}
