//! A strict fake of Alertmanager's `POST /api/v2/alerts` (the real one is
//! exercised in the `alertmanager` tests; this one can fail on demand). It
//! refuses what Alertmanager refuses: a body that is not a JSON array of
//! alerts (415 without a JSON content type, 400 otherwise), an alert without
//! labels, an invalid label name, a time that is not RFC 3339, `endsAt`
//! before `startsAt`. Taken alerts are kept with whether they arrived
//! resolved (`endsAt` not in the future), which is how Alertmanager reads them.

use super::faulty::{Fault, Faults, Port, Reply, body, fault_status, json_reply, serve_http};
use hyper::Request;
use hyper::body::Incoming;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One alert Alertmanager took.
#[derive(Debug, Clone)]
pub struct Received {
    pub alert: Value,
    /// `endsAt` was not after the moment it arrived.
    pub resolved: bool,
}

#[derive(Default)]
struct State {
    /// Every post: the status answered (0: never answered) and the body.
    posts: Mutex<Vec<(u16, Value)>>,
    taken: Mutex<Vec<Received>>,
    faults: Faults,
}

pub struct FakeAlertmanager {
    port: Port,
    state: Arc<State>,
}

impl FakeAlertmanager {
    pub async fn start() -> FakeAlertmanager {
        let state = Arc::new(State::default());
        let s = state.clone();
        let port = Port::start(move |stream| {
            let s = s.clone();
            serve_http(stream, move |req| handle(s.clone(), req))
        })
        .await;
        FakeAlertmanager { port, state }
    }

    /// The base URL, as `page.alertmanager.url` takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.port.addr())
    }

    pub fn posts(&self) -> Vec<(u16, Value)> {
        lock(&self.state.posts).clone()
    }

    /// Alerts taken, in arrival order.
    pub fn taken(&self) -> Vec<Received> {
        lock(&self.state.taken).clone()
    }

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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Reply {
    if req.method() != hyper::Method::POST || req.uri().path() != "/api/v2/alerts" {
        return json_reply(404, &json!("not found"), None);
    }
    let json_ct = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let parsed: Value = serde_json::from_slice(&body(req).await).unwrap_or(Value::Null);
    let record = |status| lock(&state.posts).push((status, parsed.clone()));
    let fault = state.faults.take();
    if fault == Some(Fault::Hang) {
        record(0);
        return std::future::pending().await;
    }
    if !json_ct {
        record(415);
        return json_reply(415, &json!("unsupported media type"), None);
    }
    if let Err(e) = validate(&parsed) {
        record(400);
        return json_reply(400, &json!(e), None);
    }
    if let Some(f) = fault {
        let (status, after) = fault_status(f);
        record(status);
        return json_reply(status, &json!("injected by the test"), after);
    }
    let now = SystemTime::now();
    let mut taken = lock(&state.taken);
    for alert in parsed.as_array().into_iter().flatten() {
        let resolved = alert["endsAt"]
            .as_str()
            .and_then(|t| humantime::parse_rfc3339(t).ok())
            .is_some_and(|ends| ends <= now);
        taken.push(Received {
            alert: alert.clone(),
            resolved,
        });
    }
    drop(taken);
    record(200);
    json_reply(200, &Value::Null, None)
}

fn validate(body: &Value) -> Result<(), String> {
    let alerts = body.as_array().ok_or("body must be an array of alerts")?;
    for (i, a) in alerts.iter().enumerate() {
        let labels = a["labels"]
            .as_object()
            .filter(|l| !l.is_empty())
            .ok_or(format!("alerts[{i}]: at least one label pair required"))?;
        for (name, value) in labels {
            let valid = name
                .chars()
                .enumerate()
                .all(|(k, c)| c == '_' || c.is_ascii_alphabetic() || (k > 0 && c.is_ascii_digit()));
            if name.is_empty() || !valid || !value.is_string() {
                return Err(format!("alerts[{i}]: invalid label {name:?}"));
            }
        }
        let time = |key: &str| -> Result<Option<SystemTime>, String> {
            match &a[key] {
                Value::Null => Ok(None),
                Value::String(t) => humantime::parse_rfc3339(t)
                    .map(Some)
                    .map_err(|e| format!("alerts[{i}].{key}: {e}")),
                _ => Err(format!("alerts[{i}].{key}: not a string")),
            }
        };
        if let (Some(starts), Some(ends)) = (time("startsAt")?, time("endsAt")?)
            && ends < starts
        {
            return Err(format!(
                "alerts[{i}]: end time must not be before start time"
            ));
        }
        if let Some(ann) = a.get("annotations")
            && !ann
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string))
        {
            return Err(format!(
                "alerts[{i}].annotations: must map names to strings"
            ));
        }
    }
    Ok(())
}
