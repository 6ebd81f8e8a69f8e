//! A deployer's rollback webhook: takes backstop's `rollback.webhook` POST
//! (200) and records every call, with its `Idempotency-Key` and how it was
//! answered. Strict like a real deployer: a call without JSON, or whose
//! `Idempotency-Key` header and body disagree, gets a 400. Tests can plan
//! faults (5xx, 429, hanging) or take it off the network.

use super::faulty::{Fault, Faults, Port, Reply, body, fault_status, json_reply, serve_http};
use hyper::Request;
use hyper::body::Incoming;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// One call as the deployer saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub idempotency_key: Option<String>,
    pub body: Value,
    /// The status answered; 0 for a call it never answered (a hang).
    pub status: u16,
}

#[derive(Default)]
struct State {
    calls: Mutex<Vec<Call>>,
    faults: Faults,
}

pub struct FakeDeployer {
    port: Port,
    state: Arc<State>,
}

impl FakeDeployer {
    pub async fn start() -> FakeDeployer {
        let state = Arc::new(State::default());
        let s = state.clone();
        let port = Port::start(move |stream| {
            let s = s.clone();
            serve_http(stream, move |req| handle(s.clone(), req))
        })
        .await;
        FakeDeployer { port, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/rollback", self.port.addr())
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Answer the next calls with these faults, one each.
    pub fn plan(&self, faults: &[Fault]) {
        self.state.faults.plan(faults);
    }

    pub async fn down(&self) {
        self.port.down().await;
    }

    pub async fn up(&self) {
        self.port.up().await;
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Reply {
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let json_ct = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let post = req.method() == hyper::Method::POST && req.uri().path() == "/rollback";
    let parsed: Value = serde_json::from_slice(&body(req).await).unwrap_or(Value::Null);
    let fault = state.faults.take();
    let record = |status| {
        state
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Call {
                idempotency_key: key.clone(),
                body: parsed.clone(),
                status,
            })
    };
    if fault == Some(Fault::Hang) {
        record(0);
        return std::future::pending().await;
    }
    let (status, answer, after) = if !post {
        (404, json!({"error": "POST /rollback only"}), None)
    } else if !json_ct || !parsed.is_object() {
        (400, json!({"error": "expected a JSON object"}), None)
    } else if key.is_none() || parsed["idempotency_key"].as_str() != key.as_deref() {
        let error = "Idempotency-Key header missing or not the body's idempotency_key";
        (400, json!({ "error": error }), None)
    } else if let Some(f) = fault {
        let (status, after) = fault_status(f);
        (status, json!({"error": "deployer unavailable"}), after)
    } else {
        (200, json!({"accepted": parsed["revision"]}), None)
    };
    record(status);
    json_reply(status, &answer, after)
}
