//! Grafana annotations against a strict fake of `POST /api/annotations`
//! (`common::fake_grafana`): a rollback and a page rule's firing and
//! resolving each leave a mark.

use crate::common;
use crate::common::Daemon;
use crate::common::fake_grafana::FakeGrafana;
use crate::common::ports::Closed;
use backstop::Event;
use backstop::demo::app::Behaviour;
use serde_json::json;
use std::io::Write;
use std::time::Duration;

const TOKEN: &str = "glsa_backstopTestToken_0123456789";

#[tokio::test]
async fn rollbacks_and_page_incidents_are_marked_on_grafana() {
    backstop::init_tls();
    let grafana = FakeGrafana::start(TOKEN).await;
    let mut token = tempfile::NamedTempFile::new().unwrap();
    writeln!(token, "{TOKEN}").unwrap();
    // A page rule needs a receiver; an unreachable Alertmanager is enough here.
    let nowhere = Closed::new();
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
  alertmanager: {{ url: "http://127.0.0.1:{nowhere}/" }}
annotate:
  grafana: {{ url: "{grafana}", token_file: "{}" }}
"#,
        token.path().display(),
        grafana = grafana.url(),
        nowhere = nowhere.port(),
    );
    let mut s = Daemon::with_app(&yaml).await;
    s.app().deploy("v2", Behaviour::Status(500));
    s.wait_for(
        "the rollback",
        Duration::from_secs(5),
        |e| matches!(e, Event::Action(r) if r.action == "rollback" && r.outcome == "succeeded"),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while grafana.marks().len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "marks: {:#?}",
            grafana.marks()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let marks = grafana.marks();
    let texts: Vec<&str> = marks.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("checkout v2: /health failing")),
        "{texts:#?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("webhook accepted the rollback of revision v2")),
        "{texts:#?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("rule health-down resolved")),
        "{texts:#?}"
    );
    for m in &marks {
        assert_eq!(
            m["tags"],
            json!([
                "backstop",
                "service:checkout",
                "rule:health-down",
                "revision:v2"
            ])
        );
    }
    let (_, status) = common::get(&s.admin("/status")).await;
    assert!(
        !status.contains(TOKEN),
        "the Grafana token leaked into /status"
    );
    s.shutdown().await;
}
