//! Configuration reload: on SIGHUP and when the file changes, a new
//! configuration replaces the running one in place, keeping what still holds.

use super::*;
use crate::config::ConfigErrors;
use std::path::{Path, PathBuf};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::MissedTickBehavior;
use watch::{Found, Reader, Trigger};

mod watch;

/// How a configuration reload ended: the `result` label of
/// `backstop_config_reloads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    Applied,
    Unchanged,
    /// Invalid or not appliable: the running configuration stays.
    Rejected,
}

impl ReloadResult {
    pub fn metric_label(self) -> &'static str {
        match self {
            ReloadResult::Applied => "applied",
            ReloadResult::Unchanged => "unchanged",
            ReloadResult::Rejected => "rejected",
        }
    }
}

/// Why a new configuration was not applied (the old one keeps running).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Invalid(#[from] ConfigErrors),
    #[error("listen: changing the admin address ({0} → {1}) needs a restart")]
    Listen(SocketAddr, SocketAddr),
    #[error("{0}")]
    Start(#[from] StartError),
    #[error("the daemon is shutting down")]
    Stopped,
}

impl Running {
    /// Apply a new configuration without losing what still holds: the
    /// probes, windows and states of targets and rules that did not change
    /// (by name, see `ConfigDiff`), the rollback guard, a pause, open
    /// incidents, receivers whose settings did not change. Returns false
    /// when it equals the current one, unless backstop runs in page-only
    /// mode: then the same configuration is a new try to find the pod in
    /// the cluster. On error nothing changed.
    pub async fn reload(&mut self, config: Config) -> Result<bool, ReloadError> {
        let same = config == *self.live.config;
        if same && self.live.found.page_only.is_none() {
            return Ok(false);
        }
        if config.listen != self.live.config.listen {
            return Err(ReloadError::Listen(self.live.config.listen, config.listen));
        }
        let config = Arc::new(config);
        let diff = ConfigDiff::new(&self.live.config, &config);
        // Everything that can fail, before anything changes.
        let found = match (&config.rollback.backend, &self.live.found.cluster) {
            (Some(RollbackBackend::Kubernetes(_)), Some(_)) => self.live.found.clone(),
            // Not found yet (page-only mode): a reload is the way to try again.
            (Some(RollbackBackend::Kubernetes(_)), None) => {
                let known = self.live.found.page_only.as_ref();
                identify(&config, &self.live.options, &self.telemetry, known)
                    .await
                    .1
            }
            _ => {
                self.telemetry.page_only(None);
                InCluster::default()
            }
        };
        if same && found.page_only.is_some() {
            // Still page-only: nothing to rebuild, only what /status says.
            self.live.shared.set_page_only(found.page_only.clone());
            self.live.found = found;
            return Ok(false);
        }
        let number = self.live.generation + 1;
        let built = Generation::build(number, config.clone(), found, diff.receivers, &self.env())?;
        // The restart poll carries on unless what it watches changed.
        let new_watcher = self.live.config.restarts_window() != config.restarts_window()
            || self.live.found.cluster.is_some() != built.cluster.is_some();
        let watcher = new_watcher
            .then(|| built.restart_watcher(&self.live.options))
            .flatten();

        let Generation {
            cluster,
            page_only,
            requests,
            prober,
            backend,
            receivers,
            receiver_runs,
            built: changes,
            ..
        } = built;
        let reconfigure = Reconfigure {
            generation: number,
            config: config.clone(),
            backend,
            receivers,
            changes,
            carried: Carried::default(),
        };
        let (carried_tx, carried) = oneshot::channel();
        let (applied_tx, applied) = oneshot::channel();
        let reload = EngineReload {
            generation: number,
            config: config.clone(),
            diff: diff.clone(),
            actor: Box::new(reconfigure),
            carried: carried_tx,
            applied: applied_tx,
        };
        let live = &mut self.live;
        live.engine
            .send(reload)
            .await
            .map_err(|_| ReloadError::Stopped)?;
        let carried = carried.await.map_err(|_| ReloadError::Stopped)?;
        for run in receiver_runs {
            self.tasks.spawn(run(self.stop.child_token()));
        }
        applied.await.map_err(|_| ReloadError::Stopped)?;

        // The engine reads the new generation: probes move to it.
        live.probes.apply(&config, &diff, number, requests, prober);
        if new_watcher {
            if let Some(old) = live.watcher.take() {
                old.cancel();
            }
            if let Some(w) = watcher {
                let token = self.stop.child_token();
                self.tasks
                    .spawn(w.run(live.restarts.clone(), token.clone()));
                live.watcher = Some(token);
            }
        }
        live.shared.set_page_only(page_only.clone());
        live.found = InCluster { cluster, page_only };
        live.generation = number;
        live.shared.set_config(config.clone());
        live.config = config;
        tracing::info!(
            generation = number,
            targets = live.config.targets.len(),
            rules = live.config.rules.len(),
            targets_kept = carried.targets_kept(),
            rules_kept = carried.rules_kept(),
            incidents_resolved = carried.dropped.len(),
            receivers_replaced = changes.any(),
            "configuration reloaded"
        );
        Ok(true)
    }
}

/// Run until `shutdown` completes. With `config_file`, a new configuration
/// is read from it on SIGHUP and whenever its contents change (a mounted
/// ConfigMap is swapped, not edited, so the contents are compared, checked
/// every `watch`); an invalid one is logged and the old one kept. The file
/// is read on the blocking pool, so a read that hangs (a FIFO, a hung
/// network filesystem) never holds up shutdown.
pub async fn run(
    config: Config,
    listener: TcpListener,
    options: Options,
    shutdown: impl std::future::Future<Output = ()>,
    config_file: Option<(PathBuf, Duration)>,
) -> Result<(), StartError> {
    // Before starting: a change made while starting is then seen, and a
    // SIGHUP while starting reloads instead of ending the process.
    let mut reader = config_file.as_ref().map(|(p, _)| {
        let mut reader = Reader::new(p.clone());
        reader.start(Trigger::Start, None);
        reader
    });
    let mut hangup = match config_file.as_ref().map(|_| signal(SignalKind::hangup())) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reloading only when the file changes");
            None
        }
        None => None,
    };
    let mut running = start(config, listener, options).await?;
    let mut shutdown = std::pin::pin!(shutdown);
    let (Some((path, watch)), Some(reader)) = (config_file, reader.as_mut()) else {
        shutdown.await;
        tracing::info!("shutting down");
        running.shutdown().await;
        return Ok(());
    };
    let mut seen: Option<Vec<u8>> = None;
    let mut poll = tokio::time::interval(watch);
    poll.set_missed_tick_behavior(MissedTickBehavior::Skip);
    poll.reset();
    let mut retry = tokio::time::interval(running.live.options.page_only_retry);
    retry.set_missed_tick_behavior(MissedTickBehavior::Delay);
    retry.reset();
    loop {
        tokio::select! {
            // Shutdown first: nothing here may hold it up.
            biased;
            _ = &mut shutdown => break,
            read = reader.finished() => {
                // A poll that could not read keeps what it saw before.
                if read.trigger != Trigger::Poll || read.bytes.is_some() {
                    seen = read.bytes;
                }
                match read.found {
                    Found::Unchanged => {}
                    Found::Unreadable(e) => tracing::debug!(error = %e, file = %path.display(), "configuration file unreadable for now"),
                    Found::Loaded(loaded) => reload_from(&mut running, &path, read.trigger.why(), loaded).await,
                }
                reader.resume(seen.as_ref());
            }
            Some(()) = async { match &mut hangup { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                reader.start(Trigger::Hangup, seen.as_ref());
            }
            _ = poll.tick() => reader.start(Trigger::Poll, seen.as_ref()),
            // Page-only mode: the same configuration, another try.
            _ = retry.tick(), if running.page_only().is_some() => {
                let config = (*running.live.config).clone();
                match running.reload(config).await {
                    Ok(_) if running.page_only().is_none() => {
                        tracing::info!("found this pod in the cluster again: automatic rollback is on");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "page-only mode: trying again later"),
                }
            }
        }
    }
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

/// Apply the configuration loaded from `path`; on any problem log every one
/// of them and keep the running configuration.
async fn reload_from(
    running: &mut Running,
    path: &Path,
    why: &'static str,
    loaded: Result<Box<Config>, ConfigErrors>,
) {
    let result = match loaded {
        Ok(config) => running.reload(*config).await,
        Err(errors) => Err(ReloadError::Invalid(errors)),
    };
    let file = path.display().to_string();
    match result {
        Ok(true) => running.telemetry.config_reload(ReloadResult::Applied),
        Ok(false) => {
            running.telemetry.config_reload(ReloadResult::Unchanged);
            tracing::info!(file, trigger = why, "configuration unchanged");
        }
        Err(ReloadError::Invalid(errors)) => {
            running.telemetry.config_reload(ReloadResult::Rejected);
            for e in &errors.0 {
                tracing::error!(
                    file,
                    trigger = why,
                    field = e.path.as_str(),
                    at = e.named.as_deref().unwrap_or(&e.path),
                    problem = e.message.as_str(),
                    "configuration reload rejected"
                );
            }
            tracing::error!(
                file,
                problems = errors.0.len(),
                "new configuration invalid; the running one stays"
            );
        }
        Err(e) => {
            running.telemetry.config_reload(ReloadResult::Rejected);
            tracing::error!(file, trigger = why, error = %e, "configuration reload rejected; the running one stays");
        }
    }
}
