//! The admin API: read-only endpoints open, mutating ones behind the bearer
//! token of `admin.token_file`; manual rollback once per revision; a pause
//! holds automatic rollbacks and pages, which follow when it ends if the
//! rule still fires; bad requests, oversized ones and floods are refused,
//! and no flood of requests or connections reaches the kubelet's
//! endpoints, the right token, or the descriptors probes need.

use crate::common;
mod connections;
mod descriptors;

use crate::common::fake_pagerduty::FakePagerDuty;
use crate::common::{Daemon, get, metric};
use backstop::Event;
use backstop::demo::app::Behaviour;
use std::io::Write;
use std::time::Duration;

const TOKEN: &str = "a-long-enough-admin-token-0123456789";

struct Admin {
    s: Daemon,
    pd: FakePagerDuty,
    _files: Vec<tempfile::NamedTempFile>,
}

async fn setup(with_token: bool) -> Admin {
    backstop::init_tls();
    let pd = FakePagerDuty::start().await;
    let mut key = tempfile::NamedTempFile::new().unwrap();
    writeln!(key, "{}", pd.routing_key).unwrap();
    let mut token = tempfile::NamedTempFile::new().unwrap();
    writeln!(token, "{TOKEN}").unwrap();
    let admin = if with_token {
        format!("admin: {{ token_file: \"{}\" }}\n", token.path().display())
    } else {
        String::new()
    };
    let yaml = format!(
        r#"
service: checkout
targets:
  - name: health
    url: "{{app}}/health"
    interval: 100ms
rules:
  - name: health-down
    when: {{ consecutive_failures: 3, target: health }}
    do: [rollback, page]
rollback:
  webhook: {{ url: "{{app}}/admin/rollback" }}
page:
  pagerduty: {{ routing_key_file: "{}", url: "{}" }}
{admin}"#,
        key.path().display(),
        pd.url
    );
    let s = Daemon::with_app(&yaml).await;
    // v2 is the release under guard; v1 is what a rollback goes back to.
    s.app().deploy("v2", Behaviour::Healthy);
    Admin {
        s,
        pd,
        _files: vec![key, token],
    }
}

async fn post(s: &Daemon, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(s.admin(path))
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let code = resp.status().as_u16();
    (code, resp.text().await.unwrap())
}

async fn status(s: &Daemon) -> serde_json::Value {
    let (code, body) = get(&s.admin("/status")).await;
    assert_eq!(code, 200);
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn without_a_token_file_the_mutating_endpoints_are_off() {
    let a = setup(false).await;
    let (code, body) = post(&a.s, "/api/v1/rollback", Some(TOKEN), "").await;
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("admin.token_file"), "{body}");
    assert_eq!(get(&a.s.admin("/status")).await.0, 200);
    assert!(a.s.app().rollbacks().is_empty());
    a.s.shutdown().await;
}

#[tokio::test]
async fn manual_rollback_needs_the_token_and_happens_once() {
    let mut a = setup(true).await;
    let resp = reqwest::Client::new()
        .post(a.s.admin("/api/v1/rollback"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer realm=\"backstop\""
    );
    let (code, _) = post(&a.s, "/api/v1/rollback", Some("not-the-token"), "").await;
    assert_eq!(code, 401);
    let near = &TOKEN[..TOKEN.len() - 1];
    assert_eq!(post(&a.s, "/api/v1/rollback", Some(near), "").await.0, 401);
    assert!(a.s.app().rollbacks().is_empty(), "a refused request acted");

    let (code, body) = post(
        &a.s,
        "/api/v1/rollback",
        Some(TOKEN),
        r#"{"reason": "checkout totals wrong since v2"}"#,
    )
    .await;
    assert_eq!(code, 202, "{body}");
    assert!(
        body.contains("rolling back revision v2 through webhook"),
        "{body}"
    );
    a.s.wait_for(
        "the manual rollback",
        Duration::from_secs(5),
        |e| matches!(e, Event::Action(r) if r.rule == "manual" && r.outcome == "succeeded"),
    )
    .await;
    let calls = a.s.app().rollbacks();
    assert_eq!(calls.len(), 1);

    let (code, body) = post(&a.s, "/api/v1/rollback", Some(TOKEN), "").await;
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("already rolled back"), "{body}");
    assert_eq!(a.s.app().rollbacks().len(), 1);

    let st = status(&a.s).await;
    let manual = st["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "manual")
        .expect("the manual rollback is in /status");
    assert_eq!(manual["evidence"]["kind"], "manual");
    assert_eq!(
        manual["evidence"]["reason"],
        "checkout totals wrong since v2"
    );
    let (_, text) = get(&a.s.admin("/metrics")).await;
    let series = |code: u16| {
        format!("backstop_admin_requests_total{{code=\"{code}\",endpoint=\"/api/v1/rollback\"}}")
    };
    assert_eq!(metric(&text, &series(401)), Some(3.0));
    assert_eq!(metric(&text, &series(202)), Some(1.0));
    assert_eq!(metric(&text, &series(409)), Some(1.0));
    a.s.shutdown().await;
}

#[tokio::test]
async fn a_pause_holds_rollback_and_page_until_it_ends() {
    let mut a = setup(true).await;
    let (code, body) = post(
        &a.s,
        "/api/v1/pause",
        Some(TOKEN),
        r#"{"duration": "1h", "reason": "database migration"}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let st = status(&a.s).await;
    assert_eq!(st["maintenance"]["reason"], "database migration");
    let (_, text) = get(&a.s.admin("/metrics")).await;
    assert_eq!(
        metric(&text, "backstop_actions_paused{service=\"checkout\"}"),
        Some(1.0)
    );

    a.s.app().set(Behaviour::Status(500));
    a.s.wait_for("the rule to fire", Duration::from_secs(5), |e| {
        matches!(e, Event::Action(r) if r.action == "page" && r.outcome == "prevented: maintenance")
    })
    .await;
    // Several reminders pass while paused: nothing leaves the process.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(a.s.app().rollbacks().is_empty());
    assert!(a.pd.accepted().is_empty());
    let st = status(&a.s).await;
    let held = st["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "prevented: maintenance")
        .count();
    assert_eq!(
        held, 2,
        "one rollback and one page held, reported once: {st:#}"
    );

    let (code, body) = post(&a.s, "/api/v1/resume", Some(TOKEN), "").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("database migration"), "{body}");
    a.s.wait_for(
        "the rollback after the pause",
        Duration::from_secs(5),
        |e| matches!(e, Event::Action(r) if r.action == "rollback" && r.outcome == "succeeded"),
    )
    .await;
    common::wait_until("the held page", Duration::from_secs(5), || {
        !a.pd.accepted().is_empty()
    })
    .await;
    assert_eq!(a.s.app().rollbacks().len(), 1);
    let events = a.pd.accepted();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["event_action"], "trigger");
    a.s.shutdown().await;
}

#[tokio::test]
async fn a_rule_that_resolves_during_a_pause_pages_nothing() {
    let mut a = setup(true).await;
    let (code, _) = post(
        &a.s,
        "/api/v1/pause",
        Some(TOKEN),
        r#"{"duration": "700ms"}"#,
    )
    .await;
    assert_eq!(code, 200);
    a.s.app().set(Behaviour::Status(500));
    a.s.wait_for(
        "the held page",
        Duration::from_secs(5),
        |e| matches!(e, Event::Action(r) if r.outcome == "prevented: maintenance"),
    )
    .await;
    a.s.app().set(Behaviour::Healthy);
    a.s.wait_for(
        "the rule to resolve",
        Duration::from_secs(5),
        |e| matches!(e, Event::Transition { to, .. } if to.as_str() == "ok"),
    )
    .await;
    // The pause ends on its own; the rule is ok by then.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(status(&a.s).await["maintenance"], serde_json::Value::Null);
    assert!(a.pd.accepted().is_empty(), "{:#?}", a.pd.accepted());
    assert!(a.s.app().rollbacks().is_empty());
    a.s.shutdown().await;
}

#[tokio::test]
async fn bad_requests_are_refused_with_a_reason() {
    let a = setup(true).await;
    let s = &a.s;
    for (path, body, code, says) in [
        (
            "/api/v1/pause",
            r#"{"duration": "25h"}"#,
            400,
            "at most 24h",
        ),
        ("/api/v1/pause", r#"{"duration": "soon"}"#, 400, "duration:"),
        (
            "/api/v1/pause",
            r#"{"for": "1h"}"#,
            400,
            "unknown field `for`",
        ),
        ("/api/v1/rollback", "not json", 400, "JSON object"),
        ("/api/v1/resume", r#"{"x": 1}"#, 400, "unknown field"),
    ] {
        let (got, text) = post(s, path, Some(TOKEN), body).await;
        assert_eq!(got, code, "{path} {body}: {text}");
        assert!(text.contains(says), "{path} {body}: {text}");
    }
    let big = format!(r#"{{"reason": "{}"}}"#, "x".repeat(20 * 1024));
    let (code, text) = post(s, "/api/v1/rollback", Some(TOKEN), &big).await;
    assert_eq!(code, 413, "{text}");
    assert!(s.app().rollbacks().is_empty());

    let (code, _) = get(&s.admin("/api/v1/rollback")).await;
    assert_eq!(code, 405);
    let resp = reqwest::Client::new()
        .delete(s.admin("/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);

    let mut req = reqwest::Client::new().get(s.admin("/healthz"));
    for i in 0..100 {
        req = req.header(format!("x-filler-{i}"), "1");
    }
    assert_eq!(req.send().await.unwrap().status(), 431);
    a.s.shutdown().await;
}

#[tokio::test]
async fn only_wrong_tokens_count_toward_the_lock_out() {
    let a = setup(true).await;
    let mut codes = Vec::new();
    for _ in 0..12 {
        codes.push(
            post(&a.s, "/api/v1/resume", Some("wrong-token-guess"), "")
                .await
                .0,
        );
    }
    assert_eq!(&codes[..10], &[401; 10]);
    assert_eq!(&codes[10..], &[429, 429]);
    // Behind a port-forward everyone is 127.0.0.1: someone else's guesses
    // must not lock the operator out.
    let (code, body) = post(&a.s, "/api/v1/resume", Some(TOKEN), "").await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = post(&a.s, "/api/v1/pause", Some(TOKEN), r#"{"duration": "5m"}"#).await;
    assert_eq!(code, 200, "{body}");
    // Wrong tokens stay locked out; reads are budgeted separately.
    assert_eq!(post(&a.s, "/api/v1/resume", None, "").await.0, 429);
    assert_eq!(get(&a.s.admin("/healthz")).await.0, 200);
    assert_eq!(get(&a.s.admin("/status")).await.0, 200);
    a.s.shutdown().await;
}

#[tokio::test]
async fn liveness_and_readiness_answer_while_scrapes_flood_from_the_same_address() {
    let a = setup(false).await;
    for _ in 0..100 {
        if get(&a.s.admin("/readyz")).await.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // 600 scrapes, eight at a time on keep-alive connections, while the
    // "kubelet" (same address) asks /healthz and /readyz every 20 ms.
    let scraper = reqwest::Client::new();
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, url) = (scraper.clone(), a.s.admin("/metrics"));
        flood.spawn(async move {
            let mut codes = Vec::new();
            for _ in 0..75 {
                codes.push(http.get(&url).send().await.unwrap().status().as_u16());
            }
            codes
        });
    }
    let mut kubelet = Vec::new();
    while !flood.is_empty() {
        tokio::select! {
            Some(done) = flood.join_next() => {
                let codes = done.unwrap();
                kubelet.push(("scrapes 429", codes.iter().filter(|c| **c == 429).count() as u16));
            }
            _ = tokio::time::sleep(Duration::from_millis(20)) => {
                kubelet.push(("/healthz", get(&a.s.admin("/healthz")).await.0));
                kubelet.push(("/readyz", get(&a.s.admin("/readyz")).await.0));
            }
        }
    }
    let limited: u16 = kubelet
        .iter()
        .filter(|(what, _)| *what == "scrapes 429")
        .map(|(_, n)| n)
        .sum();
    assert!(limited > 0, "the flood never reached the read budget");
    let probes: Vec<_> = kubelet.iter().filter(|(w, _)| w.starts_with('/')).collect();
    assert!(!probes.is_empty());
    assert!(probes.iter().all(|(_, code)| *code == 200), "{probes:?}");
    // Right after the flood the read budget is (nearly) spent; liveness
    // does not draw on it.
    for _ in 0..5 {
        assert_eq!(get(&a.s.admin("/healthz")).await.0, 200);
    }
    println!(
        "600 scrapes: {limited} answered 429; {} liveness and readiness checks meanwhile, all 200",
        probes.len()
    );
    a.s.shutdown().await;
}
