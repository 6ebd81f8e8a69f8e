//! A strict fake of PagerDuty's Events API v2 (`POST /v2/enqueue`): it
//! accepts what the real service accepts (202 with the dedup key) and
//! refuses what it refuses (400 "invalid event" with the reasons): a
//! missing or unknown routing key, a bad `event_action`, a trigger without
//! summary/source/severity, a summary over 1024 characters, a body over
//! 512 KB. Tests can plan faults (5xx, 429 with or without `Retry-After`,
//! a request never answered) or take it off the network, and read the `Authorization`
//! header each request came with.

use super::faulty::{Fault, Faults, Port, Reply, body, fault_status, json_reply, serve_http};
use hyper::{Request, StatusCode};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    /// Events taken (202), in order.
    accepted: Vec<Value>,
    /// Every request body and the status it got (0: never answered).
    seen: Vec<(u16, Value)>,
    /// Every answered request's `Authorization` header (empty when it had none).
    authorizations: Vec<String>,
}

pub struct FakePagerDuty {
    pub url: String,
    pub routing_key: String,
    state: Arc<Mutex<State>>,
    faults: Arc<Faults>,
    port: Port,
}

impl FakePagerDuty {
    pub async fn start() -> FakePagerDuty {
        FakePagerDuty::start_with_key("0123456789abcdef0123456789abcdef").await
    }

    /// A fake that takes this routing key (and no other).
    pub async fn start_with_key(routing_key: &str) -> FakePagerDuty {
        let state = Arc::new(Mutex::new(State::default()));
        let faults = Arc::new(Faults::default());
        let routing_key = routing_key.to_string();
        let (s, f, key) = (state.clone(), faults.clone(), routing_key.clone());
        let port = Port::start(move |stream| {
            let (s, f, key) = (s.clone(), f.clone(), key.clone());
            serve_http(stream, move |req| {
                let (s, f, key) = (s.clone(), f.clone(), key.clone());
                async move { handle(&s, &f, &key, req).await }
            })
        })
        .await;
        FakePagerDuty {
            url: format!("http://{}/v2/enqueue", port.addr()),
            routing_key,
            state,
            faults,
            port,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn accepted(&self) -> Vec<Value> {
        self.lock().accepted.clone()
    }

    pub fn seen(&self) -> Vec<(u16, Value)> {
        self.lock().seen.clone()
    }

    pub fn authorizations(&self) -> Vec<String> {
        self.lock().authorizations.clone()
    }

    /// What the events taken did to the incident of `dedup_key`, as
    /// PagerDuty sees it: a trigger opens it unless it is open (then it is
    /// deduplicated into it), a resolve closes it if it is open.
    pub fn incident(&self, dedup_key: &str) -> Vec<&'static str> {
        let mut open = false;
        let mut changes = Vec::new();
        for e in self
            .accepted()
            .iter()
            .filter(|e| e["dedup_key"] == dedup_key)
        {
            match (e["event_action"].as_str(), open) {
                (Some("trigger"), false) => changes.push("opened"),
                (Some("resolve"), true) => changes.push("resolved"),
                _ => continue,
            }
            open = !open;
        }
        changes
    }

    /// Answer these statuses, one per request, before accepting again.
    pub fn fail_next(&self, statuses: &[u16]) {
        let faults: Vec<Fault> = statuses.iter().map(|&s| Fault::Status(s)).collect();
        self.faults.plan(&faults);
    }

    /// Answer the next requests with these faults, one each.
    pub fn plan(&self, faults: &[Fault]) {
        self.faults.plan(faults);
    }

    /// Off the network: connections are refused.
    pub async fn down(&self) {
        self.port.down().await;
    }

    pub async fn up(&self) {
        self.port.up().await;
    }
}

const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

async fn handle(
    state: &Mutex<State>,
    faults: &Faults,
    key: &str,
    req: Request<hyper::body::Incoming>,
) -> Reply {
    if req.method() != hyper::Method::POST || req.uri().path() != "/v2/enqueue" {
        return reply(StatusCode::NOT_FOUND, json!({"status": "not found"}));
    }
    let authorization = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let json_ct = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("application/json"));
    let body = body(req).await;
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let fault = faults.take();
    if fault == Some(Fault::Hang) {
        state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seen
            .push((0, parsed));
        return std::future::pending().await;
    }
    let mut errors = Vec::new();
    if !json_ct {
        errors.push("Content-Type must be application/json".to_string());
    }
    if body.len() > 512 * 1024 {
        errors.push("event is larger than 512 KB".into());
    }
    if parsed["routing_key"] != key {
        errors.push("Invalid routing key".into());
    }
    let action = parsed["event_action"].as_str().unwrap_or("");
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        errors.push(
            "'event_action' is invalid (must be one of trigger, acknowledge or resolve)".into(),
        );
    }
    if action != "trigger" && parsed["dedup_key"].as_str().is_none_or(str::is_empty) {
        errors.push("'dedup_key' is required for acknowledge and resolve".into());
    }
    if parsed["dedup_key"].as_str().is_some_and(|k| k.len() > 255) {
        errors.push("'dedup_key' is longer than 255 characters".into());
    }
    if action == "trigger" {
        let p = &parsed["payload"];
        match p["summary"].as_str() {
            None | Some("") => errors.push("'payload.summary' is missing or blank".into()),
            Some(s) if s.chars().count() > 1024 => {
                errors.push("'payload.summary' is longer than 1024".into())
            }
            Some(_) => {}
        }
        if p["source"].as_str().is_none_or(str::is_empty) {
            errors.push("'payload.source' is missing or blank".into());
        }
        if !p["severity"]
            .as_str()
            .is_some_and(|s| SEVERITIES.contains(&s))
        {
            errors.push(
                "'payload.severity' is invalid (must be one of critical, error, warning or info)"
                    .into(),
            );
        }
        if let Some(t) = p["timestamp"].as_str()
            && humantime::parse_rfc3339_weak(
                t.trim_end_matches('Z').split('.').next().unwrap_or(""),
            )
            .is_err()
        {
            errors.push("'payload.timestamp' is not ISO 8601".into());
        }
    }
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    let mut retry_after = None;
    let (status, answer) = if let Some(f) = fault {
        let (code, after) = fault_status(f);
        retry_after = after;
        (
            StatusCode::from_u16(code).unwrap(),
            json!({"status": "throttled or failing", "message": "injected by the test"}),
        )
    } else if errors.is_empty() {
        s.accepted.push(parsed.clone());
        let dedup = parsed["dedup_key"].clone();
        (
            StatusCode::ACCEPTED,
            json!({"status": "success", "message": "Event processed", "dedup_key": dedup}),
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors}),
        )
    };
    s.seen.push((status.as_u16(), parsed));
    s.authorizations.push(authorization);
    json_reply(status.as_u16(), &answer, retry_after)
}

fn reply(status: StatusCode, v: Value) -> Reply {
    json_reply(status.as_u16(), &v, None)
}
