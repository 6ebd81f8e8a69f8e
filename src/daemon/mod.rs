//! Wiring: starts the stages (probers → engine → actions) and the admin
//! server as tasks joined by channels, and stops them in order on shutdown:
//! probing stops at once, rollbacks in flight get a bounded grace period,
//! and everything is down within a second.

use crate::act::{ActionLog, Actor, Reconfigure, Revision, ToActor};
use crate::cluster::{self, Restarts};
use crate::config::{Config, ConfigDiff, ReceiverChanges, RollbackBackend};
use crate::engine::{Carried, Engine, Scope};
use crate::probe::{Probes, Sample};
use crate::server::{self, Shared};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

mod generation;
mod identify;
mod reload;
#[cfg(test)]
mod reload_props;
mod telemetry;
use generation::{Env, Generation, InCluster};
use identify::identify;
pub use reload::{ReloadError, ReloadResult, run};
pub use telemetry::{Event, Telemetry};

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
    #[error(transparent)]
    Client(#[from] crate::tls::ClientError),
    #[error("rollback: {0}")]
    Backend(#[from] crate::act::BackendError),
}

/// Everything about the process that is not in the configuration file.
#[derive(Clone)]
pub struct Options {
    /// The revision being guarded outside Kubernetes (`--revision` /
    /// `BACKSTOP_REVISION`); in a pod it comes from the ReplicaSet.
    pub revision: String,
    /// Whether someone named the revision (false: `Revision::UNNAMED`).
    pub revision_named: bool,
    /// Where this pod runs, when it runs in one (needed by `rollback.kubernetes`).
    pub kubernetes: Option<cluster::Connection>,
    /// Why there is no `kubernetes` connection, when `rollback.kubernetes`
    /// wanted one (shown in page-only mode).
    pub not_in_pod: Option<String>,
    /// How often the revision's pods are listed for restart counts.
    pub restart_poll: Duration,
    /// How often page-only mode tries to find the pod in the cluster again
    /// (`run`): an API server that was down at start comes back.
    pub page_only_retry: Duration,
}

impl Options {
    pub fn new(revision: impl Into<String>) -> Options {
        Options {
            revision: revision.into(),
            revision_named: true,
            kubernetes: None,
            not_in_pod: None,
            restart_poll: RESTART_POLL,
            page_only_retry: PAGE_ONLY_RETRY,
        }
    }

    /// No `--revision`: outside Kubernetes the revision is `Revision::UNNAMED`,
    /// and backstop says so loudly (see `Revision::UNNAMED_WARNING`).
    pub fn unnamed() -> Options {
        Options {
            revision_named: false,
            ..Options::new(Revision::UNNAMED)
        }
    }
}

/// Default interval of the restart-count poll: one list per interval.
pub const RESTART_POLL: Duration = Duration::from_secs(5);
/// Default interval between page-only mode's tries to find the pod again.
pub const PAGE_ONLY_RETRY: Duration = Duration::from_secs(30);

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
    generation: u64,
    config: Arc<Config>,
    options: Options,
    revision: Revision,
    /// This pod in the cluster, once found, or why it cannot roll back
    /// (rollback.kubernetes).
    found: InCluster,
    probes: Probes,
    /// The restart-count poll of this configuration, and what stops it.
    watcher: Option<CancellationToken>,
    restarts: mpsc::Sender<Restarts>,
    engine: mpsc::Sender<EngineReload>,
    shared: Arc<Shared>,
    actions: ActionLog,
}

/// A new configuration generation for the engine loop. The loop switches
/// the engine, then hands `actor` (completed with what carried over) to the
/// actions stage behind every decision of the old generation.
struct EngineReload {
    generation: u64,
    config: Arc<Config>,
    diff: ConfigDiff,
    actor: Box<Reconfigure>,
    /// What carried over, once the engine switched.
    carried: oneshot::Sender<Carried>,
    /// Once the actions stage applied it.
    applied: oneshot::Sender<()>,
}

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

    /// Why `rollback.kubernetes` cannot roll back, while it cannot.
    pub fn page_only(&self) -> Option<&cluster::PageOnly> {
        self.live.found.page_only.as_ref()
    }

    /// Stop probing, let actions in flight finish (bounded), stop serving.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.live.probes.shutdown().await;
        let mut tasks = self.tasks;
        while tasks.join_next().await.is_some() {}
    }

    fn env(&self) -> Env<'_> {
        Env {
            options: &self.live.options,
            addr: self.addr,
            telemetry: &self.telemetry,
            actions: &self.live.actions,
            revision: &self.live.revision,
        }
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
    let (revision, found) = identify(&config, &options, &telemetry, None).await;
    let named = found.cluster.is_some() || options.revision_named;
    if !named {
        tracing::warn!(
            revision = revision.id.as_str(),
            "{}",
            Revision::UNNAMED_WARNING
        );
    }
    telemetry.revision(&config.service, &revision.id, named);
    let actions = ActionLog::default();
    let env = Env {
        options: &options,
        addr,
        telemetry: &telemetry,
        actions: &actions,
        revision: &revision,
    };
    let built = Generation::build(0, config.clone(), found, ReceiverChanges::ALL, &env)?;
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();

    let (sample_tx, sample_rx) = mpsc::channel::<Sample>(1024);
    let (restart_tx, restart_rx) = mpsc::channel::<Restarts>(16);
    let (actor_tx, actor_rx) = mpsc::channel::<ToActor>(256);
    let (status_tx, status_rx) = mpsc::channel(16);
    let (engine_tx, engine_rx) = mpsc::channel(1);

    let watcher = spawn_watcher(&built, &options, &restart_tx, &stop, &mut tasks);
    let probes = Probes::start(
        &config,
        built.number,
        built.requests,
        built.prober,
        sample_tx,
        telemetry.probe.clone(),
        stop.child_token(),
    );

    let engine = Engine::new(config.clone(), telemetry.engine.clone(), now);
    let inputs = Inputs {
        samples: sample_rx,
        restarts: restart_rx,
        status: status_rx,
        reload: engine_rx,
    };
    tasks.spawn(engine_loop(engine, inputs, actor_tx, stop.clone()));

    for run in built.receiver_runs {
        tasks.spawn(run(stop.child_token()));
    }
    let (command_tx, command_rx) = mpsc::channel(8);
    let actor = Actor::new(
        config.clone(),
        telemetry.act.clone(),
        built.backend,
        revision.clone(),
        actions.clone(),
    )
    .with_receivers(built.receivers)
    .with_commands(command_rx);
    let maintenance = actor.maintenance();
    tasks.spawn(actor.run(actor_rx, stop.clone(), ACTION_GRACE));

    let shared = Arc::new(
        Shared::new(
            config.clone(),
            telemetry.server.clone(),
            status_tx,
            actions.clone(),
            revision.clone(),
            command_tx,
            maintenance,
        )
        .revision_named(named),
    );
    shared.set_page_only(built.page_only.clone());
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
            generation: built.number,
            config,
            options,
            revision,
            found: InCluster {
                cluster: built.cluster,
                page_only: built.page_only,
            },
            probes,
            watcher,
            restarts: restart_tx,
            engine: engine_tx,
            shared,
            actions,
        },
    })
}

/// Start the restart-count poll `built` needs, if any; returns its stop token.
fn spawn_watcher(
    built: &Generation,
    options: &Options,
    restarts: &mpsc::Sender<Restarts>,
    stop: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Option<CancellationToken> {
    let watcher = built.restart_watcher(options)?;
    let token = stop.child_token();
    tasks.spawn(watcher.run(restarts.clone(), token.clone()));
    Some(token)
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

/// What the engine reads.
struct Inputs {
    samples: mpsc::Receiver<Sample>,
    restarts: mpsc::Receiver<Restarts>,
    status: mpsc::Receiver<oneshot::Sender<crate::engine::EngineStatus>>,
    reload: mpsc::Receiver<EngineReload>,
}

/// The engine's loop: record samples and assess the affected rules at once
/// (rules reading many targets in batches); on the tick (or when a pending
/// rule's `for:` elapses) assess all rules.
async fn engine_loop(
    mut engine: Engine,
    mut inputs: Inputs,
    actor: mpsc::Sender<ToActor>,
    stop: CancellationToken,
) {
    let mut next_tick = Instant::now() + TICK;
    loop {
        let batch = engine.batch_due();
        let wake = [engine.next_deadline(), batch]
            .into_iter()
            .flatten()
            .fold(next_tick, Instant::min);
        let found = tokio::select! {
            _ = stop.cancelled() => return,
            Some(s) = inputs.samples.recv() => match engine.record(&s) {
                Some(target) => engine.evaluate(Instant::now(), Scope::Target(target)),
                // A target that changed in a reload: its old probe's last word.
                None => Vec::new(),
            },
            Some(r) = inputs.restarts.recv() => {
                engine.record_restarts(r);
                engine.evaluate(Instant::now(), Scope::Restarts)
            }
            Some(reply) = inputs.status.recv() => {
                let _ = reply.send(engine.status(Instant::now()));
                Vec::new()
            }
            Some(reload) = inputs.reload.recv() => {
                engine = switch(engine, reload, &actor).await;
                Vec::new()
            }
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                if now >= next_tick {
                    next_tick = now + TICK;
                    engine.publish_slos(now);
                    engine.roll_history(now);
                    engine.evaluate(now, Scope::Tick)
                } else if engine.next_deadline().is_some_and(|d| d <= now) {
                    engine.evaluate(now, Scope::Tick)
                } else {
                    engine.evaluate(now, Scope::Batch)
                }
            }
        };
        for d in found {
            if actor.send(ToActor::Decision(d)).await.is_err() {
                return;
            }
        }
    }
}

/// Move the engine to a new generation, and tell the actions stage behind
/// every decision of the old one.
async fn switch(engine: Engine, reload: EngineReload, actor: &mpsc::Sender<ToActor>) -> Engine {
    let EngineReload {
        generation,
        config,
        diff,
        actor: mut reconfigure,
        carried,
        applied,
    } = reload;
    let (next, kept) = engine.reload(config, &diff, generation, Instant::now());
    reconfigure.carried = kept.clone();
    let _ = carried.send(kept);
    // A closed channel means shutdown; the reload then waits on nothing.
    let _ = actor.send(ToActor::Reconfigure(reconfigure, applied)).await;
    next
}
