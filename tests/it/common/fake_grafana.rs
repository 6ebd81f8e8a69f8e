//! A strict fake of Grafana's `POST /api/annotations`: it wants the bearer
//! token it was started with and a well-formed body (text, string tags,
//! epoch milliseconds), as Grafana does, and keeps every mark it took.

use super::faulty::{Port, Reply, body, json_reply, serve_http};
use hyper::Request;
use hyper::body::Incoming;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

pub struct FakeGrafana {
    port: Port,
    marks: Arc<Mutex<Vec<Value>>>,
}

impl FakeGrafana {
    /// A Grafana that takes annotations with this service-account token.
    pub async fn start(token: &str) -> FakeGrafana {
        let marks = Arc::<Mutex<Vec<Value>>>::default();
        let (m, bearer) = (marks.clone(), format!("Bearer {token}"));
        let port = Port::start(move |stream| {
            let (m, bearer) = (m.clone(), bearer.clone());
            serve_http(stream, move |req| {
                let (m, bearer) = (m.clone(), bearer.clone());
                async move { annotate(&m, &bearer, req).await }
            })
        })
        .await;
        FakeGrafana { port, marks }
    }

    /// The base URL, as `annotate.grafana.url` takes it.
    pub fn url(&self) -> String {
        format!("http://{}/", self.port.addr())
    }

    /// The annotations taken, in order.
    pub fn marks(&self) -> Vec<Value> {
        self.marks.lock().unwrap().clone()
    }
}

async fn annotate(marks: &Mutex<Vec<Value>>, bearer: &str, req: Request<Incoming>) -> Reply {
    if req.method() != hyper::Method::POST || req.uri().path() != "/api/annotations" {
        return json_reply(404, &json!({"message": "Not found"}), None);
    }
    let auth = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != bearer {
        return json_reply(401, &json!({"message": "Unauthorized"}), None);
    }
    let bad = || json_reply(400, &json!({"message": "bad request data"}), None);
    let Ok(v) = serde_json::from_slice::<Value>(&body(req).await) else {
        return bad();
    };
    let tags_ok = v["tags"]
        .as_array()
        .is_some_and(|t| t.iter().all(Value::is_string));
    if v["text"].as_str().is_none_or(str::is_empty) || !tags_ok || !v["time"].is_u64() {
        return bad();
    }
    let mut m = marks.lock().unwrap();
    m.push(v);
    json_reply(
        200,
        &json!({"id": m.len(), "message": "Annotation added"}),
        None,
    )
}
