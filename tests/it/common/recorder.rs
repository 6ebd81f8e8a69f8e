//! A receiver that records every request whole (path, every header, body)
//! and answers 200 with a small JSON body, or what the test says. It stands
//! in for a neighbour when a test checks only what the neighbour got (the
//! secrets test); how each must be called is what the strict fakes check.

use super::faulty::{Port, Reply, body, json_reply, serve_http};
use hyper::Request;
use hyper::body::Incoming;
use serde_json::json;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// One request the recorder received.
#[derive(Debug, Clone)]
pub struct Call {
    pub path: String,
    /// Every header line, names in lower case; a repeated header appears twice.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// What it was answered.
    pub status: u16,
}

impl Call {
    /// The values of every `name` header, in order.
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    fail_next: VecDeque<u16>,
    status: Option<u16>,
}

pub struct Recorder {
    port: Port,
    state: Arc<Mutex<State>>,
}

impl Recorder {
    pub async fn start() -> Recorder {
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        let port = Port::start(move |stream| {
            let s = s.clone();
            serve_http(stream, move |req| {
                let s = s.clone();
                async move { record(&s, req).await }
            })
        })
        .await;
        Recorder { port, state }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// This recorder's URL for `path`, with credentials in it.
    pub fn url(&self, user: &str, password: &str, path: &str) -> String {
        format!("http://{user}:{password}@{}{path}", self.port.addr())
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The calls answered 2xx.
    pub fn ok_calls(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| (200..300).contains(&c.status))
            .collect()
    }

    /// Answer the next calls with these statuses, one each.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.lock().fail_next.extend(statuses);
    }

    /// Answer every later call (after the planned failures) with `status`.
    pub fn answer(&self, status: u16) {
        self.lock().status = Some(status);
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

async fn record(state: &Mutex<State>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = body(req).await;
    let mut s = lock(state);
    let status = s.fail_next.pop_front().or(s.status).unwrap_or(200);
    s.calls.push(Call {
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
    });
    json_reply(status, &json!({"status": "ok", "id": 1}), None)
}
