//! The admin server (hyper): `/metrics` for Prometheus, `/healthz` and
//! `/readyz` for the kubelet, `/status` (JSON) and `/` (a small HTML page)
//! for the person on call, all open and read-only; and the token-guarded
//! `POST /api/v1/...` endpoints (see `api`). Every peer is rate-limited;
//! header counts, header sizes and bodies are capped.

mod api;
mod html;

use crate::act::{ActionLog, ActionRecord, Command, Maintenance, Revision};
use crate::config::Config;
use crate::engine::EngineStatus;
use crate::telemetry::Telemetry;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Asks the engine for a status snapshot.
pub type StatusRequests = mpsc::Sender<oneshot::Sender<EngineStatus>>;

/// What the handlers read.
pub struct Shared {
    /// Replaced when the configuration is reloaded.
    config: RwLock<Arc<Config>>,
    telemetry: Telemetry,
    status: StatusRequests,
    actions: ActionLog,
    revision: Revision,
    /// Where the mutating endpoints send their requests.
    commands: mpsc::Sender<Command>,
    /// The current pause of automatic actions.
    maintenance: watch::Receiver<Option<Maintenance>>,
    limits: api::Limits,
}

impl Shared {
    pub fn new(
        config: Arc<Config>,
        telemetry: Telemetry,
        status: StatusRequests,
        actions: ActionLog,
        revision: Revision,
        commands: mpsc::Sender<Command>,
        maintenance: watch::Receiver<Option<Maintenance>>,
    ) -> Shared {
        Shared {
            config: RwLock::new(config),
            telemetry,
            status,
            actions,
            revision,
            commands,
            maintenance,
            limits: api::Limits::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_config(&self, config: Arc<Config>) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
    }
}

/// Most request headers (HTTP/1) and bytes of headers (both versions).
const MAX_HEADERS: usize = 64;
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// A client gets this long to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve until `stop`, then let open requests finish within `grace`.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: CancellationToken,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEADER_BYTES.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(32);
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, peer.ip()),
                Err(e) => {
                    // Out of file descriptors and the like: pause, do not spin.
                    tracing::warn!(error = %e, "admin server accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        let service = hyper::service::service_fn(move |req| {
            let shared = shared.clone();
            async move { Ok::<_, std::convert::Infallible>(route(&shared, peer, req).await) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(graceful.watch(conn));
    }
    drop(listener);
    let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
}

type Reply = Response<Full<Bytes>>;

async fn route(shared: &Shared, peer: IpAddr, req: Request<Incoming>) -> Reply {
    let path = req.uri().path();
    let endpoint = api::ENDPOINTS.iter().find(|e| **e == path).copied();
    let reply = if !shared.limits.allow(peer, endpoint.is_some()) {
        api::too_many()
    } else if endpoint.is_some() {
        if req.method() == Method::POST {
            api::handle(shared, peer, req).await
        } else {
            let mut reply = text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n");
            reply
                .headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static("POST"));
            reply
        }
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut reply = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD are allowed here\n",
        );
        reply
            .headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        reply
    } else {
        read_only(shared, path).await
    };
    if let Some(endpoint) = endpoint {
        shared
            .telemetry
            .admin_request(endpoint, reply.status().as_u16());
    }
    reply
}

async fn read_only(shared: &Shared, path: &str) -> Reply {
    match path {
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            shared.telemetry.metrics.encode(),
        ),
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match snapshot(shared).await {
            Some(s) if s.ready => text(StatusCode::OK, "ready\n"),
            Some(_) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: waiting for the first probe of every target\n",
            ),
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: engine stopped\n",
            ),
        },
        "/status" => match status(shared).await {
            Some(s) => reply(
                StatusCode::OK,
                "application/json",
                serde_json::to_string_pretty(&s)
                    .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
            ),
            None => text(StatusCode::SERVICE_UNAVAILABLE, "engine stopped\n"),
        },
        "/" => match status(shared).await {
            Some(s) => reply(StatusCode::OK, "text/html; charset=utf-8", html::page(&s)),
            None => text(StatusCode::SERVICE_UNAVAILABLE, "engine stopped\n"),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /status, /metrics, /healthz, /readyz, POST /api/v1/{rollback,pause,resume}\n",
        ),
    }
}

async fn snapshot(shared: &Shared) -> Option<EngineStatus> {
    let (tx, rx) = oneshot::channel();
    shared.status.send(tx).await.ok()?;
    tokio::time::timeout(Duration::from_secs(2), rx)
        .await
        .ok()?
        .ok()
}

/// The whole `/status` document.
#[derive(Serialize)]
pub struct Status {
    pub service: String,
    pub version: &'static str,
    pub revision: RevisionStatus,
    pub rollback: RollbackStatus,
    /// Automatic rollbacks and pages are paused until then (None: not paused).
    pub maintenance: Option<Maintenance>,
    #[serde(flatten)]
    pub engine: EngineStatus,
    /// Latest action outcomes, newest last.
    pub actions: Vec<ActionRecord>,
}

#[derive(Serialize)]
pub struct RevisionStatus {
    pub id: String,
    pub age_seconds: f64,
}

#[derive(Serialize)]
pub struct RollbackStatus {
    pub backend: Option<&'static str>,
    pub dry_run: bool,
    pub bake_seconds: f64,
    pub cooldown_seconds: f64,
}

async fn status(shared: &Shared) -> Option<Status> {
    let engine = snapshot(shared).await?;
    let config = shared.config();
    let rb = &config.rollback;
    Some(Status {
        service: config.service.clone(),
        version: env!("CARGO_PKG_VERSION"),
        revision: RevisionStatus {
            id: shared.revision.id.clone(),
            age_seconds: Instant::now()
                .saturating_duration_since(shared.revision.since)
                .as_secs_f64(),
        },
        rollback: RollbackStatus {
            backend: rb.backend.as_ref().map(|b| match b {
                crate::config::RollbackBackend::Webhook(_) => "webhook",
                crate::config::RollbackBackend::Kubernetes(_) => "kubernetes",
            }),
            dry_run: rb.dry_run,
            bake_seconds: rb.bake.as_secs_f64(),
            cooldown_seconds: rb.cooldown.as_secs_f64(),
        },
        maintenance: shared.maintenance.borrow().clone(),
        engine,
        actions: shared.actions.latest(),
    })
}

fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
    reply(status, "application/json", value.to_string())
}

fn text(status: StatusCode, body: &'static str) -> Reply {
    reply(status, "text/plain; charset=utf-8", body.to_string())
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Reply {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
