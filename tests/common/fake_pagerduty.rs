//! A strict fake of PagerDuty's Events API v2 (`POST /v2/enqueue`): it
//! accepts what the real service accepts (202 with the dedup key) and
//! refuses what it refuses (400 "invalid event" with the reasons): a
//! missing or unknown routing key, a bad `event_action`, a trigger without
//! summary/source/severity, a summary over 1024 characters, a body over
//! 512 KB. Tests can make it answer 429 or 500 first, and read the
//! `Authorization` header each request came with.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    /// Events taken (202), in order.
    accepted: Vec<Value>,
    /// Every request body and the status it got.
    seen: Vec<(u16, Value)>,
    /// Every request's `Authorization` header (empty when it had none).
    authorizations: Vec<String>,
    fail_next: VecDeque<u16>,
}

pub struct FakePagerDuty {
    pub url: String,
    pub routing_key: String,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakePagerDuty {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakePagerDuty {
    pub async fn start() -> FakePagerDuty {
        FakePagerDuty::start_with_key("0123456789abcdef0123456789abcdef").await
    }

    /// A fake that takes this routing key (and no other).
    pub async fn start_with_key(routing_key: &str) -> FakePagerDuty {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let routing_key = routing_key.to_string();
        let (s, key) = (state.clone(), routing_key.clone());
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (s, key) = (s.clone(), key.clone());
                let svc = hyper::service::service_fn(move |req| {
                    let (s, key) = (s.clone(), key.clone());
                    async move { Ok::<_, std::convert::Infallible>(handle(&s, &key, req).await) }
                });
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakePagerDuty {
            url: format!("http://{addr}/v2/enqueue"),
            routing_key,
            state,
            server,
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

    /// Answer these statuses, one per request, before accepting again.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.lock().fail_next.extend(statuses);
    }
}

const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

async fn handle(
    state: &Mutex<State>,
    key: &str,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    if req.method() != hyper::Method::POST || req.uri().path() != "/v2/enqueue" {
        return reply(StatusCode::NOT_FOUND, json!({"status": "not found"}));
    }
    let json_ct = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("application/json"));
    let authorization = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
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
    let (status, answer) = if let Some(code) = s.fail_next.pop_front() {
        let code = StatusCode::from_u16(code).unwrap();
        (
            code,
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
    reply(status, answer)
}

fn reply(status: StatusCode, v: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}
