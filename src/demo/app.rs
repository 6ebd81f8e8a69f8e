//! A small sample service for the demo and the integration tests: the
//! running example's `/health` and analytics endpoints, a deploy/rollback
//! webhook, and behaviours a test can switch (healthy, failing, slow,
//! hanging, wrong body, refusing connections, leaking its DB pool).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How a version of the app answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    Healthy,
    /// Every request answers this status.
    Status(u16),
    /// Healthy answers, this much later.
    Slow(Duration),
    /// Accepts and reads the request, never answers.
    Hang,
    /// 200 with a body that is not what the probes expect.
    WrongBody,
    /// Leaks one database connection per request: healthy until the pool of
    /// this size runs dry, then 503 on /health and 500 elsewhere.
    PoolLeak {
        pool: u32,
    },
}

/// A rollback request the app received on its webhook.
#[derive(Debug, Clone)]
pub struct RollbackCall {
    pub at: Instant,
    pub body: serde_json::Value,
}

#[derive(Debug)]
struct State {
    version: String,
    behaviour: Behaviour,
    previous: Option<(String, Behaviour)>,
    leaked: u32,
    rollbacks: Vec<RollbackCall>,
    refusing: bool,
    /// Statuses the rollback webhook answers before it accepts one.
    webhook_failures: std::collections::VecDeque<u16>,
}

/// A running sample app; dropping it stops it.
pub struct SampleApp {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    version_tx: watch::Sender<String>,
    server: Mutex<Option<JoinSet<()>>>,
}

impl SampleApp {
    /// Start serving `version` on 127.0.0.1 (port chosen by the OS).
    pub async fn start(version: &str) -> std::io::Result<SampleApp> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            version: version.to_string(),
            behaviour: Behaviour::Healthy,
            previous: None,
            leaked: 0,
            rollbacks: Vec::new(),
            refusing: false,
            webhook_failures: Default::default(),
        }));
        let (version_tx, _) = watch::channel(version.to_string());
        let app = SampleApp {
            addr,
            state,
            version_tx,
            server: Mutex::new(None),
        };
        app.serve(listener);
        Ok(app)
    }

    fn serve(&self, listener: TcpListener) {
        let mut set = JoinSet::new();
        let state = self.state.clone();
        let version_tx = self.version_tx.clone();
        set.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                let version_tx = version_tx.clone();
                let svc = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    let version_tx = version_tx.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(handle(&state, &version_tx, req).await)
                    }
                });
                conns.spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        *self.server.lock().unwrap_or_else(|p| p.into_inner()) = Some(set);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Roll out a new version; the current one is kept for rollback.
    pub fn deploy(&self, version: &str, behaviour: Behaviour) {
        let mut s = self.state();
        let old = (s.version.clone(), s.behaviour.clone());
        s.previous = Some(old);
        s.version = version.to_string();
        s.behaviour = behaviour;
        s.leaked = 0;
        drop(s);
        self.version_tx.send_replace(version.to_string());
    }

    /// Change how the current version behaves.
    pub fn set(&self, behaviour: Behaviour) {
        let mut s = self.state();
        s.behaviour = behaviour;
        s.leaked = 0;
    }

    /// Make the rollback webhook answer these statuses, one per call,
    /// before it accepts a rollback again.
    pub fn fail_webhook(&self, statuses: &[u16]) {
        self.state().webhook_failures = statuses.iter().copied().collect();
    }

    /// Close the port (connections are refused) or open it again.
    pub async fn refuse(&self, refuse: bool) -> std::io::Result<()> {
        if refuse {
            self.state().refusing = true;
            // Dropping the set aborts the accept loop and every connection.
            self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
        } else if self.state().refusing {
            let listener = TcpListener::bind(self.addr).await?;
            self.state().refusing = false;
            self.serve(listener);
        }
        Ok(())
    }

    pub fn version(&self) -> String {
        self.state().version.clone()
    }

    /// Notified on every version change (deploy or rollback).
    pub fn versions(&self) -> watch::Receiver<String> {
        self.version_tx.subscribe()
    }

    pub fn rollbacks(&self) -> Vec<RollbackCall> {
        self.state().rollbacks.clone()
    }
}

type Reply = Response<Full<Bytes>>;

async fn handle(
    state: &Mutex<State>,
    version_tx: &watch::Sender<String>,
    req: Request<Incoming>,
) -> Reply {
    let path = req.uri().path().to_string();
    if path == "/admin/rollback" {
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return rollback(state, version_tx, &body);
    }
    let (version, behaviour, exhausted) = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        let exhausted = match s.behaviour {
            Behaviour::PoolLeak { pool } => {
                s.leaked = s.leaked.saturating_add(1);
                s.leaked > pool
            }
            _ => false,
        };
        (s.version.clone(), s.behaviour.clone(), exhausted)
    };
    let health = path == "/health" || path == "/ready";
    match behaviour {
        Behaviour::Hang => return std::future::pending::<Reply>().await,
        Behaviour::Slow(d) => tokio::time::sleep(d).await,
        Behaviour::Status(code) => {
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return json(
                code,
                serde_json::json!({"status": "error", "version": version}),
            );
        }
        Behaviour::WrongBody => {
            return reply(
                StatusCode::OK,
                "text/html",
                "<html>maintenance</html>".into(),
            );
        }
        Behaviour::PoolLeak { .. } if exhausted => {
            let body = serde_json::json!({"status": "degraded", "version": version, "checks": {"database": "connection pool exhausted"}});
            let code = if health {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            return json(code, body);
        }
        Behaviour::Healthy | Behaviour::PoolLeak { .. } => {}
    }
    if health {
        return json(
            StatusCode::OK,
            serde_json::json!({"status": "ok", "version": version}),
        );
    }
    match path.strip_prefix("/api/v1/analytics/") {
        Some(report @ ("executive" | "operations" | "financial" | "performance")) => json(
            StatusCode::OK,
            serde_json::json!({
                "report": report,
                "version": version,
                "data": {"kpis": [{"name": "revenue", "value": 1_250_000}, {"name": "orders", "value": 8_431}]}
            }),
        ),
        _ => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "not found"}),
        ),
    }
}

fn rollback(state: &Mutex<State>, version_tx: &watch::Sender<String>, body: &[u8]) -> Reply {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    let parsed: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": format!("body is not JSON: {e}")}),
            );
        }
    };
    s.rollbacks.push(RollbackCall {
        at: Instant::now(),
        body: parsed,
    });
    if let Some(code) = s.webhook_failures.pop_front() {
        let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return json(code, serde_json::json!({"error": "deployer unavailable"}));
    }
    let Some((version, behaviour)) = s.previous.take() else {
        return json(
            StatusCode::CONFLICT,
            serde_json::json!({"error": "no previous version to roll back to"}),
        );
    };
    let from = std::mem::replace(&mut s.version, version.clone());
    s.behaviour = behaviour;
    s.leaked = 0;
    drop(s);
    version_tx.send_replace(version.clone());
    json(
        StatusCode::OK,
        serde_json::json!({"rolled_back_from": from, "now_serving": version}),
    )
}

fn json(status: StatusCode, v: serde_json::Value) -> Reply {
    reply(status, "application/json", v.to_string())
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}
