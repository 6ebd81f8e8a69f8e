//! A small sample service for the demo and the integration tests: the
//! running example's `/health` and analytics endpoints, a deploy/rollback
//! webhook, and behaviours a test can switch (healthy, failing, slow,
//! hanging, wrong body, refusing connections, leaking its DB pool, noisy
//! like a real service, failing a share of its orders). It counts its own
//! requests on `/metrics` like a real service (see [`metrics`]).

pub mod metrics;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub mod pager;

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
    /// Answers like a real service: jittered latency, now and then a slow
    /// query or an error, slower while cold.
    Noisy(Noise),
    /// `POST /api/orders` fails (500) for this share of orders, spread
    /// evenly (0.08: 2 of every 25); every other request is healthy, so
    /// probes of `/health` and the analytics stay green.
    FailingOrders {
        share: f64,
    },
}

/// How a `Noisy` app answers. Seeded: the same requests get the same
/// answers on every run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Noise {
    /// Fraction of requests answered 500.
    pub error_rate: f64,
    /// Median latency of the analytics endpoints; health answers from
    /// memory in a tenth of it.
    pub latency: Duration,
    /// Spread: σ of the latency's logarithm (0.5 puts p95 at 2.3× the median).
    pub jitter: f64,
    /// Fraction of analytics requests that are slow queries taking `spike`.
    pub spike_rate: f64,
    pub spike: Duration,
    /// A cold start: right after the behaviour is set answers take up to
    /// this much longer, half as much every `cold_half_life`.
    pub cold: Duration,
    pub cold_half_life: Duration,
    pub seed: u64,
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
    /// PagerDuty events taken on `/v2/enqueue`, in order.
    pages: Vec<serde_json::Value>,
    refusing: bool,
    /// Statuses the rollback webhook answers before it accepts one.
    webhook_failures: std::collections::VecDeque<u16>,
    /// When the behaviour was set, and the dice of a `Noisy` one.
    since: Instant,
    rng: StdRng,
    /// Orders taken since the behaviour was set.
    orders: u64,
}

/// A running sample app; dropping it stops it.
pub struct SampleApp {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    metrics: Arc<metrics::Metrics>,
    version_tx: watch::Sender<String>,
    /// How many PagerDuty events the app has taken.
    pages_tx: watch::Sender<usize>,
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
            pages: Vec::new(),
            refusing: false,
            webhook_failures: Default::default(),
            since: Instant::now(),
            rng: StdRng::seed_from_u64(0),
            orders: 0,
        }));
        let (version_tx, _) = watch::channel(version.to_string());
        let (pages_tx, _) = watch::channel(0);
        let app = SampleApp {
            addr,
            state,
            metrics: Arc::new(metrics::Metrics::new()),
            version_tx,
            pages_tx,
            server: Mutex::new(None),
        };
        app.serve(listener);
        Ok(app)
    }

    fn serve(&self, listener: TcpListener) {
        let mut set = JoinSet::new();
        let state = self.state.clone();
        let txs = (self.version_tx.clone(), self.pages_tx.clone());
        let metrics = self.metrics.clone();
        set.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                let txs = txs.clone();
                let metrics = metrics.clone();
                let svc = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    let txs = txs.clone();
                    let metrics = metrics.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            counted(&state, &txs, &metrics, req).await,
                        )
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
        s.switch(behaviour);
        drop(s);
        self.version_tx.send_replace(version.to_string());
    }

    /// Change how the current version behaves.
    pub fn set(&self, behaviour: Behaviour) {
        self.state().switch(behaviour);
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

    /// The PagerDuty events the app took on `/v2/enqueue`, in order.
    pub fn pages(&self) -> Vec<serde_json::Value> {
        self.state().pages.clone()
    }

    /// Notified with the count whenever the app takes a PagerDuty event.
    pub fn pages_taken(&self) -> watch::Receiver<usize> {
        self.pages_tx.subscribe()
    }
}

impl State {
    fn switch(&mut self, behaviour: Behaviour) {
        if let Behaviour::Noisy(n) = &behaviour {
            self.rng = StdRng::seed_from_u64(n.seed);
        }
        self.behaviour = behaviour;
        self.leaked = 0;
        self.orders = 0;
        self.since = Instant::now();
    }

    /// Take one order: whether it fails under `FailingOrders { share }`.
    /// Failures are spread evenly: the n-th order fails when n × share
    /// passes a whole number.
    fn take_order(&mut self) -> bool {
        self.orders += 1;
        match self.behaviour {
            Behaviour::FailingOrders { share } => {
                let share = share.clamp(0.0, 1.0);
                let n = self.orders as f64;
                (n * share).floor() > ((n - 1.0) * share).floor()
            }
            _ => false,
        }
    }

    /// A `Noisy` answer: how long it takes, and whether it is an error.
    fn roll(&mut self, n: &Noise, health: bool) -> (Duration, bool) {
        let error = self.rng.random_bool(n.error_rate.clamp(0.0, 1.0));
        let median = if health { n.latency / 10 } else { n.latency };
        let mut latency = if !health && self.rng.random_bool(n.spike_rate.clamp(0.0, 1.0)) {
            n.spike
        } else {
            // Box–Muller: a standard normal from two uniforms.
            let u1: f64 = 1.0 - self.rng.random::<f64>();
            let u2: f64 = self.rng.random();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            median.mul_f64((n.jitter * z).exp())
        };
        if !n.cold_half_life.is_zero() {
            let halvings = self.since.elapsed().as_secs_f64() / n.cold_half_life.as_secs_f64();
            latency += n.cold.mul_f64(0.5f64.powf(halvings));
        }
        (latency, error)
    }
}

type Reply = Response<Full<Bytes>>;

/// Serve one request and count it in the app's own metrics (all but
/// `/metrics`, the admin webhook and the PagerDuty stand-in, which are not
/// user traffic).
async fn counted(
    state: &Mutex<State>,
    txs: &(watch::Sender<String>, watch::Sender<usize>),
    metrics: &metrics::Metrics,
    req: Request<Incoming>,
) -> Reply {
    let path = req.uri().path().to_string();
    if path == "/metrics" {
        let (body, content_type) = metrics.render();
        return reply(StatusCode::OK, content_type, body);
    }
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let answer = handle(state, txs, req).await;
    // The admin webhook and the PagerDuty stand-in are not user traffic.
    if !path.starts_with("/admin/") && path != "/v2/enqueue" {
        metrics.observe(&method, &path, answer.status().as_u16(), started.elapsed());
    }
    answer
}

async fn handle(
    state: &Mutex<State>,
    (version_tx, pages_tx): &(watch::Sender<String>, watch::Sender<usize>),
    req: Request<Incoming>,
) -> Reply {
    let path = req.uri().path().to_string();
    if path == "/admin/rollback" || path == "/v2/enqueue" {
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if path == "/v2/enqueue" {
            return page(state, pages_tx, &body);
        }
        return rollback(state, version_tx, &body);
    }
    if path == "/api/orders" {
        return order(state, req.method());
    }
    let health = path == "/health" || path == "/ready";
    let (version, behaviour, exhausted, noisy) = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        let exhausted = match s.behaviour {
            Behaviour::PoolLeak { pool } => {
                s.leaked = s.leaked.saturating_add(1);
                s.leaked > pool
            }
            _ => false,
        };
        let noisy = match s.behaviour {
            Behaviour::Noisy(n) => Some(s.roll(&n, health)),
            _ => None,
        };
        (s.version.clone(), s.behaviour.clone(), exhausted, noisy)
    };
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
        Behaviour::Noisy(_) => {
            let (latency, error) = noisy.unwrap_or_default();
            tokio::time::sleep(latency).await;
            if error {
                return json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({"status": "error", "version": version}),
                );
            }
        }
        Behaviour::Healthy | Behaviour::PoolLeak { .. } | Behaviour::FailingOrders { .. } => {}
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

/// `POST /api/orders`: take an order (201), or fail it (500) as the
/// behaviour says.
fn order(state: &Mutex<State>, method: &hyper::Method) -> Reply {
    if method != hyper::Method::POST {
        return json(
            StatusCode::METHOD_NOT_ALLOWED,
            serde_json::json!({"error": "POST an order"}),
        );
    }
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    let failed = s.take_order();
    let (version, n) = (s.version.clone(), s.orders);
    drop(s);
    if failed {
        json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": "payment service call failed", "version": version}),
        )
    } else {
        json(
            StatusCode::CREATED,
            serde_json::json!({"order": n, "version": version}),
        )
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
    s.switch(behaviour);
    drop(s);
    version_tx.send_replace(version.clone());
    json(
        StatusCode::OK,
        serde_json::json!({"rolled_back_from": from, "now_serving": version}),
    )
}

/// A PagerDuty event: kept and counted if PagerDuty would take it.
fn page(state: &Mutex<State>, pages_tx: &watch::Sender<usize>, body: &[u8]) -> Reply {
    let event: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let (status, answer) = pager::answer(&event);
    if status == 202 {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.pages.push(event);
        let taken = s.pages.len();
        drop(s);
        pages_tx.send_replace(taken);
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    json(status, answer)
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

#[cfg(test)]
mod tests;
