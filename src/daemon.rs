//! Wiring: starts the stages (probers → engine → actions) and the admin
//! server as tasks joined by channels, and stops them in order on shutdown:
//! probing stops at once, rollbacks in flight get a bounded grace period,
//! and everything is down within a second.

use crate::act::{ActionLog, Actor, Backend, Revision};
use crate::config::Config;
use crate::engine::{Decision, Engine};
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
}

/// Everything about the process that is not in the configuration file.
#[derive(Debug, Clone)]
pub struct Options {
    /// The revision being guarded (`--revision` / `BACKSTOP_REVISION`).
    pub revision: String,
}

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

/// Start every stage. Returns once the admin server is listening.
pub fn start(
    config: Config,
    listener: TcpListener,
    options: Options,
) -> Result<Running, StartError> {
    let addr = listener.local_addr().map_err(StartError::Listener)?;
    let config = Arc::new(config);
    let telemetry = Telemetry::new(&config.service);
    let now = Instant::now();
    let revision = Revision {
        id: options.revision,
        since: now,
    };
    telemetry.revision(&config.service, &revision.id);
    let prober =
        Prober::new().map_err(|e| StartError::Setup(format!("building the HTTP client: {e}")))?;
    let backend = Backend::from_config(&config).map_err(StartError::Setup)?;
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();

    let (sample_tx, sample_rx) = mpsc::channel::<Sample>(1024);
    let (decision_tx, decision_rx) = mpsc::channel::<Decision>(256);
    let (status_tx, status_rx) = mpsc::channel(16);
    let actions = ActionLog::default();

    probe::spawn_all(&config, &prober, &sample_tx, &telemetry, &stop, &mut tasks)
        .map_err(StartError::Setup)?;
    drop(sample_tx);

    let engine = Engine::new(config.clone(), telemetry.clone(), now);
    tasks.spawn(engine_loop(
        engine,
        sample_rx,
        decision_tx,
        status_rx,
        stop.clone(),
    ));

    let actor = Actor::new(
        config.clone(),
        telemetry.clone(),
        backend,
        revision.clone(),
        actions.clone(),
    );
    tasks.spawn(actor.run(decision_rx, stop.clone(), ACTION_GRACE));

    let shared = Arc::new(Shared {
        config: config.clone(),
        telemetry: telemetry.clone(),
        status: status_tx,
        actions,
        revision,
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

/// Run until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    options: Options,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), StartError> {
    let running = start(config, listener, options)?;
    shutdown.await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

/// The engine's loop: record samples and assess the affected rules at once;
/// on the tick (or when a pending rule's `for:` elapses) assess all rules.
async fn engine_loop(
    mut engine: Engine,
    mut samples: mpsc::Receiver<Sample>,
    decisions: mpsc::Sender<Decision>,
    mut status: mpsc::Receiver<oneshot::Sender<crate::engine::EngineStatus>>,
    stop: CancellationToken,
) {
    let mut next_tick = Instant::now() + TICK;
    loop {
        let wake = engine
            .next_deadline()
            .map_or(next_tick, |d| d.min(next_tick));
        let found = tokio::select! {
            _ = stop.cancelled() => return,
            Some(s) = samples.recv() => {
                engine.record(&s);
                engine.evaluate(Instant::now(), Some(s.target))
            }
            Some(reply) = status.recv() => {
                let _ = reply.send(engine.status(Instant::now()));
                Vec::new()
            }
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                if now >= next_tick {
                    next_tick = now + TICK;
                    engine.publish_slos(now);
                }
                engine.evaluate(now, None)
            }
        };
        for d in found {
            if decisions.send(d).await.is_err() {
                return;
            }
        }
    }
}
