//! Wiring: starts the stages (probers → engine → actions) and the admin
//! server as tasks joined by channels, and stops them in order on shutdown:
//! probing stops at once, rollbacks in flight get a bounded grace period,
//! and everything is down within a second.

use crate::act::{ActionLog, Actor, Backend, Revision, alertmanager, grafana, pagerduty};
use crate::cluster::{self, RestartWatcher, Restarts};
use crate::config::{Config, RollbackBackend};
use crate::engine::{Decision, Engine, Scope};
use crate::probe::{self, Prober, Sample};
use crate::server::{self, Shared};
use crate::telemetry::{Event, Telemetry};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often rules are re-assessed without new samples (windows slide,
/// `for:` elapses) and SLO gauges refreshed.
const TICK: Duration = Duration::from_secs(1);
/// Time rollbacks in flight get to finish on shutdown.
const ACTION_GRACE: Duration = Duration::from_millis(700);
/// Time open admin requests get to finish on shutdown.
const SERVER_GRACE: Duration = Duration::from_millis(200);

/// Start-up failures (after configuration has been validated).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("admin listener: {0}")]
    Listener(#[source] std::io::Error),
    #[error("{0}")]
    Setup(String),
    #[error("Kubernetes: {0}")]
    Cluster(#[from] cluster::ClusterError),
}

/// Everything about the process that is not in the configuration file.
#[derive(Clone)]
pub struct Options {
    /// The revision being guarded outside Kubernetes (`--revision` /
    /// `BACKSTOP_REVISION`); in a pod it comes from the ReplicaSet.
    pub revision: String,
    /// Where this pod runs, when it runs in one (needed by `rollback.kubernetes`).
    pub kubernetes: Option<cluster::Context>,
    /// How often the revision's pods are listed for restart counts.
    pub restart_poll: Duration,
}

impl Options {
    pub fn new(revision: impl Into<String>) -> Options {
        Options {
            revision: revision.into(),
            kubernetes: None,
            restart_poll: RESTART_POLL,
        }
    }
}

/// Default interval of the restart-count poll: one list per interval.
pub const RESTART_POLL: Duration = Duration::from_secs(5);

/// A started daemon.
pub struct Running {
    pub addr: SocketAddr,
    telemetry: Telemetry,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl Running {
    /// Events from now on (probe results, rule transitions, actions).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.telemetry.subscribe()
    }

    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Stop probing, let actions in flight finish (bounded), stop serving.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Start every stage. Returns once the admin server is listening (in a pod,
/// after backstop has found its Deployment and checked its permissions).
pub async fn start(
    config: Config,
    listener: TcpListener,
    options: Options,
) -> Result<Running, StartError> {
    let addr = listener.local_addr().map_err(StartError::Listener)?;
    let config = Arc::new(config);
    let telemetry = Telemetry::new(&config.service);
    let now = Instant::now();
    let (revision, cluster) = identify(&config, &options).await?;
    telemetry.revision(&config.service, &revision.id);
    let prober = Prober::new(&config.tls).map_err(StartError::Setup)?;
    let restart_watch = cluster.as_ref().and_then(|(ctx, id)| {
        let window = config.restarts_window()?;
        Some(RestartWatcher::new(
            ctx.client.clone(),
            &id.namespace,
            &id.pod_selector,
            options.restart_poll,
            window,
        ))
    });
    let backend = Backend::from_config(&config, cluster).map_err(StartError::Setup)?;
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();

    let (sample_tx, sample_rx) = mpsc::channel::<Sample>(1024);
    let (restart_tx, restart_rx) = mpsc::channel::<Restarts>(16);
    let (decision_tx, decision_rx) = mpsc::channel::<Decision>(256);
    let (status_tx, status_rx) = mpsc::channel(16);
    let actions = ActionLog::default();

    probe::spawn_all(&config, &prober, &sample_tx, &telemetry, &stop, &mut tasks)
        .map_err(StartError::Setup)?;
    drop(sample_tx);
    if let Some(watcher) = restart_watch {
        tasks.spawn(watcher.run(restart_tx, stop.clone()));
    }

    let engine = Engine::new(config.clone(), telemetry.clone(), now);
    let inputs = Inputs {
        samples: sample_rx,
        restarts: restart_rx,
        status: status_rx,
    };
    tasks.spawn(engine_loop(engine, inputs, decision_tx, stop.clone()));

    let mut actor = Actor::new(
        config.clone(),
        telemetry.clone(),
        backend,
        revision.clone(),
        actions.clone(),
    );
    if let Some(am) = &config.page.alertmanager {
        let ctx = alertmanager::Context {
            service: config.service.clone(),
            revision: revision.id.clone(),
            namespace: options.kubernetes.as_ref().map(|k| k.namespace.clone()),
            generator_url: status_url(addr),
        };
        let pager = alertmanager::Pager::new(
            am.clone(),
            &config.tls,
            ctx,
            telemetry.clone(),
            actions.clone(),
        )
        .map_err(StartError::Setup)?;
        let (notice_tx, notice_rx) = mpsc::channel(64);
        tasks.spawn(pager.run(notice_rx, stop.clone()));
        actor = actor.with_pager(notice_tx);
    }
    if let Some(g) = &config.grafana {
        let annotator = grafana::Annotator::new(
            g.clone(),
            &config.tls,
            &config.service,
            &revision.id,
            telemetry.clone(),
        )
        .map_err(StartError::Setup)?;
        let (mark_tx, mark_rx) = mpsc::channel(64);
        tasks.spawn(annotator.run(mark_rx, stop.clone()));
        actor = actor.with_annotator(mark_tx);
    }
    if let Some(pd) = &config.page.pagerduty {
        let ctx = pagerduty::Context {
            service: config.service.clone(),
            revision: revision.id.clone(),
            namespace: options.kubernetes.as_ref().map(|k| k.namespace.clone()),
            source: options
                .kubernetes
                .as_ref()
                .map(|k| k.pod.clone())
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| config.service.clone()),
            status_url: status_url(addr),
            dashboard_url: config.grafana.as_ref().and_then(|g| {
                // A link for the person paged: without Grafana's credentials.
                let mut url = crate::redact::url(&g.url)
                    .join("d/backstop-overview")
                    .ok()?;
                url.query_pairs_mut()
                    .append_pair("var-service", &config.service);
                Some(url.to_string())
            }),
        };
        let pager = pagerduty::Pager::new(
            pd.clone(),
            &config.tls,
            ctx,
            telemetry.clone(),
            actions.clone(),
        )
        .map_err(StartError::Setup)?;
        let (notice_tx, notice_rx) = mpsc::channel(64);
        tasks.spawn(pager.run(notice_rx, stop.clone()));
        actor = actor.with_pager(notice_tx);
    }
    let (command_tx, command_rx) = mpsc::channel(8);
    let actor = actor.with_commands(command_rx);
    let maintenance = actor.maintenance();
    tasks.spawn(actor.run(decision_rx, stop.clone(), ACTION_GRACE));

    let shared = Arc::new(Shared {
        config: config.clone(),
        telemetry: telemetry.clone(),
        status: status_tx,
        actions,
        revision,
        commands: Some(command_tx),
        maintenance,
        limits: Default::default(),
    });
    tasks.spawn(server::serve(listener, shared, stop.clone(), SERVER_GRACE));

    tracing::info!(
        service = config.service.as_str(),
        %addr,
        targets = config.targets.len(),
        rules = config.rules.len(),
        "backstop started"
    );
    Ok(Running {
        addr,
        telemetry,
        stop,
        tasks,
    })
}

/// Where a person finds `/status`: the admin address, or this host's name
/// when it listens on every interface.
fn status_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
        format!("http://{host}:{}/status", addr.port())
    } else {
        format!("http://{addr}/status")
    }
}

/// The revision to guard and, in Kubernetes, who this pod is.
async fn identify(
    config: &Config,
    options: &Options,
) -> Result<(Revision, Option<(cluster::Context, cluster::Identity)>), StartError> {
    let now = Instant::now();
    let Some(RollbackBackend::Kubernetes(k)) = &config.rollback.backend else {
        let revision = Revision {
            id: options.revision.clone(),
            since: now,
        };
        return Ok((revision, None));
    };
    let ctx = options.kubernetes.clone().ok_or_else(|| {
        StartError::Setup(
            "rollback.kubernetes: backstop is not running in a pod; set POD_NAME and \
             POD_NAMESPACE from the downward API (see k8s/base/deployment.yaml)"
                .into(),
        )
    })?;
    let id =
        cluster::Identity::discover(&ctx, k.deployment.as_deref(), k.namespace.as_deref()).await?;
    id.check_permissions(&ctx).await?;
    tracing::info!(
        deployment = id.deployment.as_str(),
        replicaset = id.replicaset.as_str(),
        revision = id.revision,
        age_seconds = id.age.as_secs(),
        "guarding this pod's Deployment revision"
    );
    let since = now.checked_sub(id.age).unwrap_or(now);
    let revision = Revision {
        id: id.revision.to_string(),
        since,
    };
    Ok((revision, Some((ctx, id))))
}

/// Run until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    options: Options,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), StartError> {
    let running = start(config, listener, options).await?;
    shutdown.await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

/// What the engine reads.
struct Inputs {
    samples: mpsc::Receiver<Sample>,
    restarts: mpsc::Receiver<Restarts>,
    status: mpsc::Receiver<oneshot::Sender<crate::engine::EngineStatus>>,
}

/// The engine's loop: record samples and assess the affected rules at once;
/// on the tick (or when a pending rule's `for:` elapses) assess all rules.
async fn engine_loop(
    mut engine: Engine,
    mut inputs: Inputs,
    decisions: mpsc::Sender<Decision>,
    stop: CancellationToken,
) {
    let mut next_tick = Instant::now() + TICK;
    loop {
        let wake = engine
            .next_deadline()
            .map_or(next_tick, |d| d.min(next_tick));
        let found = tokio::select! {
            _ = stop.cancelled() => return,
            Some(s) = inputs.samples.recv() => {
                engine.record(&s);
                engine.evaluate(Instant::now(), Scope::Target(s.target))
            }
            Some(r) = inputs.restarts.recv() => {
                engine.record_restarts(r);
                engine.evaluate(Instant::now(), Scope::Restarts)
            }
            Some(reply) = inputs.status.recv() => {
                let _ = reply.send(engine.status(Instant::now()));
                Vec::new()
            }
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                if now >= next_tick {
                    next_tick = now + TICK;
                    engine.publish_slos(now);
                }
                engine.evaluate(now, Scope::Tick)
            }
        };
        for d in found {
            if decisions.send(d).await.is_err() {
                return;
            }
        }
    }
}
