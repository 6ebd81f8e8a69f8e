//! Wiring: starts the stages (probers → engine → actions) and the admin
//! server as tasks joined by channels, and stops them in order on shutdown:
//! probing stops at once, rollbacks in flight get a bounded grace period,
//! and everything is down within a second.

use crate::act::{
    ActionLog, Actor, Backend, Command, Receivers, Revision, alertmanager, grafana, pagerduty,
};
use crate::cluster::{self, RestartWatcher, Restarts};
use crate::config::{Config, RollbackBackend};
use crate::engine::{Carried, Decision, Dropped, Engine, Scope};
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

mod reload;
pub use reload::{ReloadError, run};

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
    /// Stops everything.
    stop: CancellationToken,
    tasks: JoinSet<()>,
    /// What a reload replaces or reconfigures.
    live: Live,
}

/// The parts of a running daemon a configuration reload touches.
struct Live {
    config: Arc<Config>,
    options: Options,
    revision: Revision,
    /// This pod in the cluster, once found (rollback.kubernetes).
    cluster: Option<(cluster::Context, cluster::Identity)>,
    /// Stops the probers and the restart watcher of this configuration.
    probes_stop: CancellationToken,
    probes: JoinSet<()>,
    samples: mpsc::Sender<Sample>,
    restarts: mpsc::Sender<Restarts>,
    engine: mpsc::Sender<EngineReload>,
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    actions: ActionLog,
    /// Stops the receivers of this configuration (new ones replace them).
    receivers_stop: CancellationToken,
}

/// A new configuration for the engine loop; the reply says what carried over.
type EngineReload = (Arc<Config>, oneshot::Sender<(Carried, Vec<Dropped>)>);

impl Running {
    /// Events from now on (probe results, rule transitions, actions).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.telemetry.subscribe()
    }

    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.live.config
    }

    /// Stop probing, let actions in flight finish (bounded), stop serving.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        while self.live.probes.join_next().await.is_some() {}
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
    let watcher = restart_watcher(&config, &options, cluster.as_ref());
    let backend = Backend::from_config(&config, cluster.clone()).map_err(StartError::Setup)?;
    let actions = ActionLog::default();
    let ctx = ReceiverContext {
        config: &config,
        revision: &revision,
        options: &options,
        addr,
        telemetry: &telemetry,
        actions: &actions,
    };
    let (receivers, receiver_runs) = build_receivers(&ctx)?;
    let stop = CancellationToken::new();
    let probes_stop = stop.child_token();
    let receivers_stop = stop.child_token();
    let mut tasks = JoinSet::new();
    let mut probes = JoinSet::new();

    let (sample_tx, sample_rx) = mpsc::channel::<Sample>(1024);
    let (restart_tx, restart_rx) = mpsc::channel::<Restarts>(16);
    let (decision_tx, decision_rx) = mpsc::channel::<Decision>(256);
    let (status_tx, status_rx) = mpsc::channel(16);
    let (engine_tx, engine_rx) = mpsc::channel(1);

    probe::spawn_all(
        &config,
        &prober,
        &sample_tx,
        &telemetry,
        &probes_stop,
        &mut probes,
    )
    .map_err(StartError::Setup)?;
    if let Some(w) = watcher {
        probes.spawn(w.run(restart_tx.clone(), probes_stop.clone()));
    }

    let engine = Engine::new(config.clone(), telemetry.clone(), now);
    let inputs = Inputs {
        samples: sample_rx,
        restarts: restart_rx,
        status: status_rx,
        reload: engine_rx,
    };
    tasks.spawn(engine_loop(engine, inputs, decision_tx, stop.clone()));

    for run in receiver_runs {
        tasks.spawn(run(receivers_stop.clone()));
    }
    let (command_tx, command_rx) = mpsc::channel(8);
    let actor = Actor::new(
        config.clone(),
        telemetry.clone(),
        backend,
        revision.clone(),
        actions.clone(),
    )
    .with_receivers(receivers)
    .with_commands(command_rx);
    let maintenance = actor.maintenance();
    tasks.spawn(actor.run(decision_rx, stop.clone(), ACTION_GRACE));

    let shared = Arc::new(Shared::new(
        config.clone(),
        telemetry.clone(),
        status_tx,
        actions.clone(),
        revision.clone(),
        command_tx.clone(),
        maintenance,
    ));
    tasks.spawn(server::serve(
        listener,
        shared.clone(),
        stop.clone(),
        SERVER_GRACE,
    ));

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
        live: Live {
            config,
            options,
            revision,
            cluster,
            probes_stop,
            probes,
            samples: sample_tx,
            restarts: restart_tx,
            engine: engine_tx,
            commands: command_tx,
            shared,
            actions,
            receivers_stop,
        },
    })
}

fn restart_watcher(
    config: &Config,
    options: &Options,
    cluster: Option<&(cluster::Context, cluster::Identity)>,
) -> Option<RestartWatcher> {
    let (ctx, id) = cluster?;
    let window = config.restarts_window()?;
    Some(RestartWatcher::new(
        ctx.client.clone(),
        &id.namespace,
        &id.pod_selector,
        options.restart_poll,
        window,
    ))
}

/// What the receivers are built from.
struct ReceiverContext<'a> {
    config: &'a Config,
    revision: &'a Revision,
    options: &'a Options,
    addr: SocketAddr,
    telemetry: &'a Telemetry,
    actions: &'a ActionLog,
}

/// A receiver's loop, to be started with its stop token.
type ReceiverRun = Box<dyn FnOnce(CancellationToken) -> BoxFuture + Send>;
type BoxFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Build every configured receiver (Alertmanager, PagerDuty, Grafana) and
/// the loops that run them; nothing runs yet, so a failure changes nothing.
fn build_receivers(ctx: &ReceiverContext) -> Result<(Receivers, Vec<ReceiverRun>), StartError> {
    let config = ctx.config;
    let namespace = ctx.options.kubernetes.as_ref().map(|k| k.namespace.clone());
    let mut receivers = Receivers::default();
    let mut runs: Vec<ReceiverRun> = Vec::new();
    if let Some(am) = &config.page.alertmanager {
        let pager_ctx = alertmanager::Context {
            service: config.service.clone(),
            revision: ctx.revision.id.clone(),
            namespace: namespace.clone(),
            generator_url: status_url(ctx.addr),
        };
        let pager = alertmanager::Pager::new(
            am.clone(),
            &config.tls,
            pager_ctx,
            ctx.telemetry.clone(),
            ctx.actions.clone(),
        )
        .map_err(StartError::Setup)?;
        let (tx, rx) = mpsc::channel(64);
        runs.push(Box::new(move |stop| Box::pin(pager.run(rx, stop))));
        receivers.pagers.push(tx);
    }
    if let Some(g) = &config.grafana {
        let annotator = grafana::Annotator::new(
            g.clone(),
            &config.tls,
            &config.service,
            &ctx.revision.id,
            ctx.telemetry.clone(),
        )
        .map_err(StartError::Setup)?;
        let (tx, rx) = mpsc::channel(64);
        runs.push(Box::new(move |stop| Box::pin(annotator.run(rx, stop))));
        receivers.annotator = Some(tx);
    }
    if let Some(pd) = &config.page.pagerduty {
        let pager_ctx = pagerduty::Context {
            service: config.service.clone(),
            revision: ctx.revision.id.clone(),
            namespace,
            source: ctx
                .options
                .kubernetes
                .as_ref()
                .map(|k| k.pod.clone())
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| config.service.clone()),
            status_url: status_url(ctx.addr),
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
            pager_ctx,
            ctx.telemetry.clone(),
            ctx.actions.clone(),
        )
        .map_err(StartError::Setup)?;
        let (tx, rx) = mpsc::channel(64);
        runs.push(Box::new(move |stop| Box::pin(pager.run(rx, stop))));
        receivers.pagers.push(tx);
    }
    Ok((receivers, runs))
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

/// What the engine reads.
struct Inputs {
    samples: mpsc::Receiver<Sample>,
    restarts: mpsc::Receiver<Restarts>,
    status: mpsc::Receiver<oneshot::Sender<crate::engine::EngineStatus>>,
    reload: mpsc::Receiver<EngineReload>,
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
            Some((config, reply)) = inputs.reload.recv() => {
                // The old probers have stopped: what they sent is queued.
                while let Ok(s) = inputs.samples.try_recv() {
                    engine.record(&s);
                }
                let (next, carried, dropped) = engine.reload(config, Instant::now());
                let _ = reply.send((carried, dropped));
                engine = next;
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
