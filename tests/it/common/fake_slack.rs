//! Strict fakes of the two notification receivers beside the pager.
//!
//! `FakeSlack` answers like a Slack incoming webhook: `POST` to its secret
//! path only (else 404 `no_service`), a JSON body with `Content-Type:
//! application/json` (else 400 `invalid_payload`), a non-empty `text`
//! (else 400 `no_text`), well-formed `blocks` within Slack's limits (else
//! 400 `invalid_blocks`); 200 `ok` as plain text when taken.
//!
//! `FakeNotify` is a receiver of backstop's notification JSON: `POST` to
//! its path with JSON, the rollback webhook's fields and the incident's
//! (else 400 naming what is missing).
//!
//! Both can plan faults (5xx, 429, a request never answered) and keep
//! every message they took, and the headers each request came with.

use super::faulty::{Fault, Faults, Port, Reply, body, fault_status, json_reply, serve_http};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper::body::Incoming;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    /// Bodies taken (2xx), in order.
    taken: Vec<Value>,
    /// Every answered request: its status and the raw body.
    seen: Vec<(u16, String)>,
    /// Every request's headers, as (name, value) pairs.
    headers: Vec<Vec<(String, String)>>,
}

#[derive(Clone, Copy)]
enum Kind {
    Slack,
    Notify,
}

/// One fake receiver; `url()` is its full secret URL.
pub struct FakeReceiver {
    url: String,
    state: Arc<Mutex<State>>,
    faults: Arc<Faults>,
    _port: Port,
}

pub type FakeSlack = FakeReceiver;
pub type FakeNotify = FakeReceiver;

impl FakeReceiver {
    /// A Slack incoming webhook at `/services/T0/B0/<token>`.
    pub async fn slack(token: &str) -> FakeSlack {
        FakeReceiver::start(Kind::Slack, format!("/services/T0/B0/{token}")).await
    }

    /// A notification receiver at `path`.
    pub async fn notify(path: &str) -> FakeNotify {
        FakeReceiver::start(Kind::Notify, path.to_string()).await
    }

    async fn start(kind: Kind, path: String) -> FakeReceiver {
        let state = Arc::new(Mutex::new(State::default()));
        let faults = Arc::new(Faults::default());
        let (s, f, p) = (state.clone(), faults.clone(), path.clone());
        let port = Port::start(move |stream| {
            let (s, f, p) = (s.clone(), f.clone(), p.clone());
            serve_http(stream, move |req| {
                let (s, f, p) = (s.clone(), f.clone(), p.clone());
                async move { handle(kind, &s, &f, &p, req).await }
            })
        })
        .await;
        FakeReceiver {
            url: format!("http://{}{path}", port.addr()),
            state,
            faults,
            _port: port,
        }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bodies taken, in order.
    pub fn taken(&self) -> Vec<Value> {
        self.lock().taken.clone()
    }

    /// Every answered request's status and raw body.
    pub fn seen(&self) -> Vec<(u16, String)> {
        self.lock().seen.clone()
    }

    /// Values of header `name` over every request, in order.
    pub fn header(&self, name: &str) -> Vec<String> {
        self.lock()
            .headers
            .iter()
            .flat_map(|h| h.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()))
            .collect()
    }

    /// Answer the next requests with these faults, one each.
    pub fn plan(&self, faults: &[Fault]) {
        self.faults.plan(faults);
    }
}

fn text(status: u16, body: &'static str) -> Reply {
    let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).expect("a valid status");
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn handle(
    kind: Kind,
    state: &Mutex<State>,
    faults: &Faults,
    path: &str,
    req: Request<Incoming>,
) -> Reply {
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let right_place = req.method() == hyper::Method::POST && req.uri().path() == path;
    let json_ct = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let raw = body(req).await;
    let raw_text = String::from_utf8_lossy(&raw).to_string();
    let fault = faults.take();
    if fault == Some(Fault::Hang) {
        return std::future::pending().await;
    }
    let parsed: Option<Value> = serde_json::from_slice(&raw).ok();
    let (status, reply, taken) = if let Some(f) = fault {
        let (code, after) = fault_status(f);
        let answer = json!({"error": "injected by the test"});
        (code, json_reply(code, &answer, after), None)
    } else {
        match kind {
            Kind::Slack => slack(right_place, json_ct, parsed),
            Kind::Notify => notify(right_place, json_ct, parsed),
        }
    };
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    s.headers.push(headers);
    s.seen.push((status, raw_text));
    s.taken.extend(taken);
    reply
}

fn slack(right_place: bool, json_ct: bool, parsed: Option<Value>) -> (u16, Reply, Option<Value>) {
    if !right_place {
        return (404, text(404, "no_service"), None);
    }
    let Some(v) = parsed.filter(|_| json_ct) else {
        return (400, text(400, "invalid_payload"), None);
    };
    if v["text"].as_str().is_none_or(|t| t.trim().is_empty()) {
        return (400, text(400, "no_text"), None);
    }
    if !blocks_ok(&v["blocks"]) {
        return (400, text(400, "invalid_blocks"), None);
    }
    (200, text(200, "ok"), Some(v))
}

/// Slack's rules for the blocks backstop sends: at most 50, a known type,
/// mrkdwn or plain_text objects, a section's text within 3000 characters.
fn blocks_ok(blocks: &Value) -> bool {
    let Some(list) = blocks.as_array() else {
        return blocks.is_null();
    };
    let text_ok = |t: &Value, max: usize| {
        matches!(t["type"].as_str(), Some("mrkdwn" | "plain_text"))
            && t["text"]
                .as_str()
                .is_some_and(|s| !s.is_empty() && s.chars().count() <= max)
    };
    list.len() <= 50
        && list.iter().all(|b| match b["type"].as_str() {
            Some("section") => text_ok(&b["text"], 3000),
            Some("context") => b["elements"].as_array().is_some_and(|e| {
                !e.is_empty() && e.len() <= 10 && e.iter().all(|t| text_ok(t, 2000))
            }),
            Some("divider") => true,
            _ => false,
        })
}

/// The fields every notification carries.
const NOTIFY_FIELDS: [&str; 9] = [
    "service",
    "revision",
    "rule",
    "reason",
    "evidence",
    "fired_at",
    "idempotency_key",
    "event",
    "summary",
];

fn notify(right_place: bool, json_ct: bool, parsed: Option<Value>) -> (u16, Reply, Option<Value>) {
    if !right_place {
        return (
            404,
            json_reply(404, &json!({"error": "not found"}), None),
            None,
        );
    }
    let Some(v) = parsed.filter(|_| json_ct) else {
        let e = json!({"error": "a JSON body with Content-Type application/json is required"});
        return (400, json_reply(400, &e, None), None);
    };
    let missing: Vec<&str> = NOTIFY_FIELDS
        .iter()
        .copied()
        .filter(|f| v.get(*f).is_none_or(Value::is_null))
        .collect();
    if !missing.is_empty() {
        let e = json!({"error": "missing fields", "missing": missing});
        return (400, json_reply(400, &e, None), None);
    }
    (
        202,
        json_reply(202, &json!({"status": "accepted"}), None),
        Some(v),
    )
}
