//! Configuration reload: in process, what still holds carries over (windows,
//! rule states, the rollback guard, open incidents); through the binary,
//! SIGHUP and a changed file load a new configuration, and an invalid one
//! is logged with its paths while the old one keeps running.

use crate::common::fake_pagerduty::FakePagerDuty;
use crate::common::process::{self, spawn_on_free_port};
use crate::common::{Daemon, get, metric, wait_until};
use backstop::Event;
use backstop::demo::app::Behaviour;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

fn config(pd: &FakePagerDuty, key: &std::path::Path, failures: u32, extra_target: bool) -> String {
    let extra = if extra_target {
        "  - name: ready\n    url: \"{app}/health\"\n    interval: 100ms\n"
    } else {
        ""
    };
    format!(
        r#"
service: checkout
targets:
  - name: health
    url: "{{app}}/health"
    interval: 100ms
{extra}rules:
  - name: health-down
    when: {{ consecutive_failures: {failures}, target: health }}
    do: [rollback, page]
rollback:
  webhook: {{ url: "{{app}}/admin/rollback" }}
page:
  pagerduty: {{ routing_key_file: "{}", url: "{}" }}
"#,
        key.display(),
        pd.url
    )
}

fn parse(yaml: &str, app: &str) -> backstop::config::Config {
    backstop::config::parse(&yaml.replace("{app}", app), &|_| None).unwrap()
}

async fn status(admin: &str) -> serde_json::Value {
    serde_json::from_str(&get(&format!("{admin}/status")).await.1).unwrap()
}

#[tokio::test]
async fn a_reload_keeps_the_guard_the_rule_state_and_the_incident() {
    backstop::init_tls();
    let pd = FakePagerDuty::start().await;
    let mut key = tempfile::NamedTempFile::new().unwrap();
    writeln!(key, "{}", pd.routing_key).unwrap();
    let mut s = Daemon::with_app(&config(&pd, key.path(), 3, false)).await;
    s.app().deploy("v2", Behaviour::Status(500));
    s.wait_for(
        "the rollback",
        Duration::from_secs(5),
        |e| matches!(e, Event::Action(r) if r.action == "rollback" && r.outcome == "succeeded"),
    )
    .await;
    // The trigger, then the same incident updated with the rollback's outcome.
    wait_until("the trigger and its update", Duration::from_secs(5), || {
        pd.accepted().len() == 2
    })
    .await;
    // The old release is bad too: the rule keeps firing.
    s.app().set(Behaviour::Status(500));
    let app = s.app().url("");
    let admin = s.admin("");

    // A target added: the rule and its target carry over.
    let applied = s
        .running
        .reload(parse(&config(&pd, key.path(), 3, true), &app))
        .await
        .unwrap();
    assert!(applied);
    let st = status(&admin).await;
    assert_eq!(st["targets"].as_array().unwrap().len(), 2, "{st:#}");
    assert_eq!(st["rules"][0]["state"], "firing", "{st:#}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(s.app().rollbacks().len(), 1, "rolled back twice");
    assert_eq!(pd.accepted().len(), 2, "{:#?}", pd.accepted());
    // The same file again is no change.
    let same = parse(&config(&pd, key.path(), 3, true), &app);
    assert!(!s.running.reload(same).await.unwrap());

    // The rule changed: the old rule's episode ends, the new rule fires on
    // its own terms; the revision is never rolled back twice.
    s.running
        .reload(parse(&config(&pd, key.path(), 5, true), &app))
        .await
        .unwrap();
    // The old rule's episode ends (after a rollback its incident is left
    // open for a person, so no resolve goes out) ...
    s.wait_for(
        "the old rule's incident settled",
        Duration::from_secs(5),
        |e| matches!(e, Event::Action(r) if r.action == "page" && r.outcome == "left_open"),
    )
    .await;
    // ... and the new rule opens its own (the same dedup key: the same incident).
    wait_until("the new rule's trigger", Duration::from_secs(5), || {
        pd.accepted().len() == 3
    })
    .await;
    let summaries: Vec<_> = pd
        .accepted()
        .iter()
        .map(|e| (e["event_action"].clone(), e["payload"]["summary"].clone()))
        .collect();
    assert_eq!(summaries[2].0, "trigger");
    assert!(
        summaries[2]
            .1
            .as_str()
            .unwrap()
            .contains("limit 5 in a row"),
        "{summaries:#?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.app().rollbacks().len(), 1);

    // The admin address cannot move without a restart.
    let mut moved = parse(&config(&pd, key.path(), 5, true), &app);
    moved.listen = "127.0.0.1:1".parse().unwrap();
    let err = s.running.reload(moved).await.unwrap_err();
    assert!(err.to_string().starts_with("listen: "), "{err}");
    assert_eq!(status(&admin).await["targets"].as_array().unwrap().len(), 2);
    s.shutdown().await;
}

/// The binary, reloading from its file.
#[tokio::test]
async fn sighup_and_file_changes_reload_and_invalid_files_are_rejected() {
    backstop::init_tls();
    let app = backstop::demo::app::SampleApp::start("v1").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backstop.yaml");
    let yaml = |port: u16, targets: usize| {
        let mut y = format!("service: checkout\nlisten: 127.0.0.1:{port}\ntargets:\n");
        for i in 0..targets {
            y.push_str(&format!(
                "  - {{ name: t{i}, url: \"{}\", interval: 200ms }}\n",
                app.url("/health")
            ));
        }
        y
    };
    let log = dir.path().join("log");
    let (mut child, port) = spawn_on_free_port(&log, "backstop started", |port| {
        std::fs::write(&file, yaml(port, 1)).unwrap();
        let mut cmd = process::backstop();
        cmd.args(["run", "--watch-interval", "200ms", "--config"])
            .arg(&file)
            .stdout(Stdio::null());
        cmd
    })
    .await;
    let admin = format!("http://127.0.0.1:{port}");
    let targets = |st: &serde_json::Value| st["targets"].as_array().map_or(0, Vec::len);
    let mut st = serde_json::Value::Null;
    for _ in 0..100 {
        if let Ok(resp) = reqwest::get(format!("{admin}/status")).await {
            st = resp.json().await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(targets(&st), 1);

    // A changed file is picked up on its own.
    std::fs::write(&file, yaml(port, 2)).unwrap();
    let mut seen = 0;
    for _ in 0..50 {
        seen = targets(&status(&admin).await);
        if seen == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 2, "the file change was not loaded");

    // An invalid file: rejected, logged with its path, the old one stays.
    let invalid = format!(
        "{}rules: [{{ name: down, when: {{ consecutive_failures: 0, target: t0 }} }}]\n",
        yaml(port, 3)
    );
    std::fs::write(&file, invalid).unwrap();
    child.signal("HUP");
    let mut rejected = None;
    for _ in 0..50 {
        let (_, text) = get(&format!("{admin}/metrics")).await;
        rejected = metric(&text, "backstop_config_reloads_total{result=\"rejected\"}");
        if rejected.is_some() {
            assert_eq!(
                metric(&text, "backstop_config_last_reload_successful"),
                Some(0.0)
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        rejected.is_some_and(|n| n >= 1.0),
        "no rejected reload counted"
    );
    assert_eq!(targets(&status(&admin).await), 2);

    // SIGHUP with a valid file applies it.
    std::fs::write(&file, yaml(port, 3)).unwrap();
    child.signal("HUP");
    let mut seen = 0;
    for _ in 0..50 {
        seen = targets(&status(&admin).await);
        if seen == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 3, "SIGHUP did not reload");

    child.signal("TERM");
    assert_eq!(child.wait(), Some(0));
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("configuration reload rejected")
            && log.contains("rules[0].when.consecutive_failures"),
        "the rejected reload's problem is not in the log:\n{log}"
    );
    assert!(log.contains("configuration reloaded"), "{log}");
}

/// An outage, and meanwhile a reload that changes only another target: the
/// app's probe keeps its schedule and warm-up (it had already succeeded),
/// so its failures keep counting and the rule fires after its five
/// failures, not after a fresh warm-up.
#[tokio::test]
async fn an_unrelated_reload_during_an_outage_does_not_blind_the_rule() {
    let yaml = |other: &str| {
        format!(
            r#"
service: checkout
targets:
  - {{ name: health, url: "{{app}}/health", interval: 200ms, warmup: 30s }}
  - {{ name: other, url: "{{app}}/health", interval: {other}, warmup: 30s }}
rules:
  - {{ name: health-down, when: {{ consecutive_failures: 5, target: health }}, do: [rollback] }}
rollback:
  webhook: {{ url: "{{app}}/admin/rollback" }}
"#
        )
    };
    let mut s = Daemon::with_app(&yaml("1s")).await;
    s.wait_for(
        "health's first success",
        Duration::from_secs(5),
        |e| matches!(e, Event::Probe { target, outcome, .. } if target == "health" && outcome.is_success()),
    )
    .await;
    s.app().deploy("v2", Behaviour::Status(500));
    let down = tokio::time::Instant::now();
    let changed = parse(&yaml("2s"), &s.app().url(""));
    assert!(s.running.reload(changed).await.unwrap());
    s.wait_for(
        "the rollback",
        Duration::from_secs(10),
        |e| matches!(e, Event::Action(r) if r.action == "rollback" && r.outcome == "succeeded"),
    )
    .await;
    let took = down.elapsed();
    println!(
        "outage + unrelated reload: rolled back {took:?} after the app went down (5 × 200 ms interval)"
    );
    // Five failures at 200 ms, plus the probe that was under way; a
    // warm-up restarted by the reload would hold it back for 30 s.
    assert!(took < Duration::from_millis(2500), "{took:?}");
    let st = status(&s.admin("")).await;
    assert_eq!(st["targets"][0]["name"], "health");
    assert!(st["targets"][0]["probes"].as_u64().unwrap() >= 5, "{st:#}");
    s.shutdown().await;
}
