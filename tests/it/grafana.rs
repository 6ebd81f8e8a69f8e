//! Grafana annotations against a strict fake of `POST /api/annotations`:
//! it wants the bearer token and a well-formed body (text, string tags,
//! epoch milliseconds), as Grafana does. A rollback and a page rule's
//! firing and resolving each leave a mark.

use crate::common;
use crate::common::Daemon;
use backstop::demo::app::Behaviour;
use backstop::telemetry::Event;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "glsa_backstopTestToken_0123456789";

type Marks = Arc<Mutex<Vec<Value>>>;

async fn fake_grafana() -> (String, Marks) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let marks: Marks = Arc::default();
    let m = marks.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let m = m.clone();
            let svc = hyper::service::service_fn(move |req| {
                let m = m.clone();
                async move { Ok::<_, std::convert::Infallible>(annotate(&m, req).await) }
            });
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (url, marks)
}

async fn annotate(
    marks: &Mutex<Vec<Value>>,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let reply = |code: StatusCode, v: Value| {
        let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
        *r.status_mut() = code;
        r
    };
    if req.method() != hyper::Method::POST || req.uri().path() != "/api/annotations" {
        return reply(StatusCode::NOT_FOUND, json!({"message": "Not found"}));
    }
    let auth = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {TOKEN}") {
        return reply(StatusCode::UNAUTHORIZED, json!({"message": "Unauthorized"}));
    }
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"message": "bad request data"}),
        );
    };
    let tags_ok = v["tags"]
        .as_array()
        .is_some_and(|t| t.iter().all(Value::is_string));
    if v["text"].as_str().is_none_or(str::is_empty) || !tags_ok || !v["time"].is_u64() {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"message": "bad request data"}),
        );
    }
    let mut m = marks.lock().unwrap();
    m.push(v);
    reply(
        StatusCode::OK,
        json!({"id": m.len(), "message": "Annotation added"}),
    )
}

#[tokio::test]
async fn rollbacks_and_page_incidents_are_marked_on_grafana() {
    backstop::init_tls();
    let (grafana, marks) = fake_grafana().await;
    let mut token = tempfile::NamedTempFile::new().unwrap();
    writeln!(token, "{TOKEN}").unwrap();
    // A page rule needs a receiver; an unreachable Alertmanager is enough here.
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
  alertmanager: {{ url: "http://127.0.0.1:9/" }}
annotate:
  grafana: {{ url: "{grafana}", token_file: "{}" }}
"#,
        token.path().display()
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
    while marks.lock().unwrap().len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "marks: {:#?}",
            marks.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let marks = marks.lock().unwrap().clone();
    let texts: Vec<&str> = marks.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert!(
        texts.iter().any(|t| t.contains("rule health-down fired")),
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
