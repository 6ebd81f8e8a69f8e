//! Configuration reload: on SIGHUP and when the file changes, a new
//! configuration replaces the running one in place, keeping what still holds.

use super::*;
use crate::act::Reconfigure;
use crate::config::ConfigErrors;
use std::path::{Path, PathBuf};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::MissedTickBehavior;
use watch::{Found, Reader, Trigger};

mod watch;

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
    /// Apply a new configuration without losing what still holds: windows
    /// of unchanged targets, states of unchanged rules, the rollback guard,
    /// a pause, open incidents. Returns false when it equals the current one.
    /// On error nothing changed.
    pub async fn reload(&mut self, config: Config) -> Result<bool, ReloadError> {
        let live = &mut self.live;
        if config == *live.config {
            return Ok(false);
        }
        if config.listen != live.config.listen {
            return Err(ReloadError::Listen(live.config.listen, config.listen));
        }
        let config = Arc::new(config);
        // Everything that can fail, before anything stops.
        let cluster = match (&config.rollback.backend, &live.cluster) {
            (Some(RollbackBackend::Kubernetes(_)), Some(c)) => Some(c.clone()),
            (Some(RollbackBackend::Kubernetes(_)), None) => {
                identify(&config, &live.options).await?.1
            }
            _ => None,
        };
        let prober = Prober::new(&config.tls).map_err(StartError::Setup)?;
        let watcher = restart_watcher(&config, &live.options, cluster.as_ref());
        let backend = Backend::from_config(&config, cluster.clone()).map_err(StartError::Setup)?;
        let same_receivers = config.service == live.config.service
            && config.page == live.config.page
            && config.grafana == live.config.grafana
            && config.tls == live.config.tls;
        let receivers_stop = self.stop.child_token();
        let receivers = if same_receivers {
            None
        } else {
            let ctx = ReceiverContext {
                config: &config,
                revision: &live.revision,
                options: &live.options,
                addr: self.addr,
                telemetry: &self.telemetry,
                actions: &live.actions,
            };
            Some(build_receivers(&ctx)?)
        };

        // Probing stops; every sample it made is queued before the engine
        // switches, so none is read against the wrong target.
        live.probes_stop.cancel();
        while live.probes.join_next().await.is_some() {}
        let (reply, carried) = oneshot::channel();
        live.engine
            .send((config.clone(), reply))
            .await
            .map_err(|_| ReloadError::Stopped)?;
        let (carried, dropped) = carried.await.map_err(|_| ReloadError::Stopped)?;

        let receivers = receivers.map(|(receivers, runs)| {
            for run in runs {
                self.tasks.spawn(run(receivers_stop.clone()));
            }
            receivers
        });
        // Old receivers end once the actions stage lets go of them and they
        // have handed on what they hold.
        let replaced_receivers = receivers.is_some();
        let reconfigure = Reconfigure {
            config: config.clone(),
            backend,
            receivers,
            dropped: dropped.clone(),
        };
        let (reply, applied) = oneshot::channel();
        live.commands
            .send(Command::Reconfigure(Box::new(reconfigure), reply))
            .await
            .map_err(|_| ReloadError::Stopped)?;
        applied.await.map_err(|_| ReloadError::Stopped)?;
        if replaced_receivers {
            live.receivers_stop = receivers_stop;
        }

        live.probes_stop = self.stop.child_token();
        probe::spawn_all(
            &config,
            &prober,
            &live.samples,
            &self.telemetry,
            &live.probes_stop,
            &mut live.probes,
        )
        .map_err(StartError::Setup)?;
        if let Some(w) = watcher {
            live.probes
                .spawn(w.run(live.restarts.clone(), live.probes_stop.clone()));
        }
        live.shared.set_config(config.clone());
        live.cluster = cluster;
        live.config = config;
        tracing::info!(
            targets = live.config.targets.len(),
            rules = live.config.rules.len(),
            targets_kept = carried.targets,
            rules_kept = carried.rules,
            incidents_resolved = dropped.len(),
            receivers_replaced = replaced_receivers,
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
        Ok(true) => running.telemetry.config_reload("applied"),
        Ok(false) => {
            running.telemetry.config_reload("unchanged");
            tracing::info!(file, trigger = why, "configuration unchanged");
        }
        Err(ReloadError::Invalid(errors)) => {
            running.telemetry.config_reload("rejected");
            for e in &errors.0 {
                tracing::error!(
                    file,
                    trigger = why,
                    field = e.path.as_str(),
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
            running.telemetry.config_reload("rejected");
            tracing::error!(file, trigger = why, error = %e, "configuration reload rejected; the running one stays");
        }
    }
}
