//! The admin server (hyper): `/metrics` for Prometheus, `/healthz` and
//! `/readyz` for the kubelet, `/status` (JSON) and `/` (a small HTML page)
//! for the person on call, all open and read-only; and the token-guarded
//! `POST /api/v1/...` endpoints (see `api`). Every peer is rate-limited;
//! header counts, header sizes and bodies are capped. Connections are
//! capped in all and per peer, within the descriptors left after the
//! probes' and actions' reserve (`fds`), and closed when they carry no
//! request for a few seconds (`conn`).

mod api;
mod conn;
mod fds;
mod headline;
mod html;
mod telemetry;
mod verdict;

pub use telemetry::Telemetry;

use crate::act::{ActionLog, ActionRecord, Command, Maintenance, Revision};
use crate::config::Config;
use crate::engine::EngineStatus;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde::Serialize;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
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
    /// Why rollback.kubernetes cannot roll back, if it cannot.
    page_only: RwLock<Option<crate::cluster::PageOnly>>,
    limits: api::Limits,
    /// Someone named the revision (false: `Revision::UNNAMED_WARNING` applies).
    revision_named: bool,
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
            page_only: RwLock::new(None),
            limits: api::Limits::default(),
            revision_named: true,
        }
    }

    /// Whether someone named the revision; `/` and `/status` warn when not.
    pub fn revision_named(mut self, named: bool) -> Shared {
        self.revision_named = named;
        self
    }

    /// Page-only mode began or ended (start-up, a reload).
    pub fn set_page_only(&self, page_only: Option<crate::cluster::PageOnly>) {
        *self.page_only.write().unwrap_or_else(|p| p.into_inner()) = page_only;
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
/// HTTP/2 pings its peer this often and closes the connection when a ping
/// is not answered within `PING_TIMEOUT`: a peer that vanished does not
/// hold streams open until the idle deadline.
const PING_INTERVAL: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection closed for idleness may finish what it was writing.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// At most one warning per this long about accept errors, and one about
/// refused connections: a flood must not become a flood of log lines.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Pause after a failed accept (out of descriptors and the like): no spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serve until `stop`, then let open requests finish within `grace`.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: CancellationToken,
    grace: Duration,
) {
    let fd_limit = fds::raise_soft_limit();
    let reserve = fds::reserve(&shared.config());
    let cap = fds::connection_cap(fd_limit, reserve);
    if fd_limit.is_some_and(|l| l < reserve + fds::MIN_CONNECTIONS as u64) {
        tracing::warn!(
            limit = fd_limit,
            reserve,
            "the file-descriptor limit is too low to keep room for probes and actions beside the admin server; raise `ulimit -n`"
        );
    }
    tracing::debug!(limit = fd_limit, reserve, cap, "admin connections capped");
    let builder = Arc::new(builder());
    let table = conn::Table::new(shared.telemetry.clone(), LOG_EVERY);
    let mut conns = JoinSet::new();
    let mut accept_errors = conn::Throttle::new(LOG_EVERY);
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            // Reap finished connections so the set stays small.
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, peer.ip()),
                Err(e) => {
                    if let Some(suppressed) = accept_errors.ready() {
                        tracing::warn!(error = %e, suppressed, "admin server accept failed (suppressed: failures not logged since the last line)");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        // The cap follows reloads (targets added or removed).
        let cap = fds::connection_cap(fd_limit, fds::reserve(&shared.config()));
        let Some((slot, victim)) = table.admit(peer, cap) else {
            // Refused (counted and logged): dropping the stream closes it.
            continue;
        };
        conns.spawn(connection(
            builder.clone(),
            stream,
            peer,
            shared.clone(),
            slot,
            stop.clone(),
            grace,
        ));
        if let Some(closed) = victim {
            // Admin sockets stay within the cap plus the newcomer: accept
            // nothing more until the evicted one is closed (microseconds).
            let _ = tokio::time::timeout(CLOSE_GRACE, closed).await;
        }
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(grace + CLOSE_GRACE, drain).await;
}

fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The connection's own deadlines (`conn`) govern, whatever the protocol.
        .header_read_timeout(None)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEADER_BYTES.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(PING_INTERVAL)
        .keep_alive_timeout(PING_TIMEOUT)
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(32);
    builder
}

/// Serve one connection until it ends, is closed for idleness (no request
/// head yet, whether or not the protocol was detected, or none for a
/// while), gives its place to a newcomer, or the server stops.
async fn connection(
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: TcpStream,
    peer: IpAddr,
    shared: Arc<Shared>,
    slot: conn::Slot,
    stop: CancellationToken,
    grace: Duration,
) {
    let activity = slot.activity.clone();
    let telemetry = shared.telemetry.clone();
    let service = hyper::service::service_fn(move |req| {
        // Busy from the complete request head until the answer is ready.
        let busy = activity.begin();
        let shared = shared.clone();
        async move {
            let reply = route(&shared, peer, req).await;
            drop(busy);
            Ok::<_, std::convert::Infallible>(reply)
        }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let wait = tokio::select! {
        biased;
        _ = conn.as_mut() => return,
        // Its place is taken: close now, the newcomer waits for it.
        _ = slot.evict.cancelled() => return,
        why = slot.activity.expired() => {
            telemetry.admin_connection_closed(why.metric_label());
            if why == conn::Closed::NoRequest {
                // Nothing was ever asked: nothing to finish.
                return;
            }
            CLOSE_GRACE
        }
        _ = stop.cancelled() => grace,
    };
    // Cancels protocol detection, closes an idle HTTP/1 connection, sends
    // HTTP/2 GOAWAY; whatever is still open after `wait` is dropped.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(wait, conn).await;
}

type Reply = Response<Full<Bytes>>;

async fn route(shared: &Shared, peer: IpAddr, req: Request<Incoming>) -> Reply {
    let path = req.uri().path();
    let endpoint = api::ENDPOINTS.iter().find(|e| **e == path).copied();
    let key = conn::peer_key(peer);
    let command = endpoint.is_some() && req.method() == Method::POST;
    let allowed = match path {
        "/healthz" => true,
        // The token decides which budget a command spends: `api::handle`.
        _ if command => true,
        "/readyz" => shared.limits.allow(key, api::Budget::Readiness),
        _ => shared.limits.allow(key, api::Budget::Read),
    };
    let reply = if !allowed {
        api::too_many()
    } else if endpoint.is_some() {
        if command {
            api::handle(shared, peer, key, req).await
        } else {
            let mut reply = text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n");
            reply
                .headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static("POST"));
            reply
        }
    } else if path == verdict::PATH {
        // Read-only, but Flagger's webhooks POST: both are answered.
        verdict::handle(shared, req.uri().query()).await
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
            shared.telemetry.encode(),
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
            "not found; try /status, /metrics, /healthz, /readyz, /api/v1/verdict, POST /api/v1/{rollback,pause,resume}\n",
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
    /// What matters now, in one sentence.
    pub headline: headline::Headline,
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
    /// False when nobody named the revision (no `--revision` outside Kubernetes).
    pub named: bool,
    /// What that means, for a person; None when it is named.
    pub warning: Option<&'static str>,
}

#[derive(Serialize)]
pub struct RollbackStatus {
    pub backend: Option<&'static str>,
    /// Set when backstop cannot roll back and only pages: why, and what to fix.
    pub page_only: Option<crate::cluster::PageOnly>,
    pub dry_run: bool,
    pub bake_seconds: f64,
    pub cooldown_seconds: f64,
}

async fn status(shared: &Shared) -> Option<Status> {
    let engine = snapshot(shared).await?;
    let config = shared.config();
    let rb = &config.rollback;
    let actions = shared.actions.latest();
    let maintenance = shared.maintenance.borrow().clone();
    Some(Status {
        headline: headline::of(&shared.revision.id, &engine, &actions, maintenance.as_ref()),
        service: config.service.clone(),
        version: env!("CARGO_PKG_VERSION"),
        revision: RevisionStatus {
            id: shared.revision.id.clone(),
            age_seconds: Instant::now()
                .saturating_duration_since(shared.revision.since)
                .as_secs_f64(),
            named: shared.revision_named,
            warning: (!shared.revision_named).then_some(Revision::UNNAMED_WARNING),
        },
        rollback: RollbackStatus {
            backend: rb.backend.as_ref().map(|b| match b {
                crate::config::RollbackBackend::Webhook(_) => "webhook",
                crate::config::RollbackBackend::Kubernetes(_) => "kubernetes",
            }),
            page_only: shared
                .page_only
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            dry_run: rb.dry_run,
            bake_seconds: rb.bake.as_secs_f64(),
            cooldown_seconds: rb.cooldown.as_secs_f64(),
        },
        maintenance,
        engine,
        actions,
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
