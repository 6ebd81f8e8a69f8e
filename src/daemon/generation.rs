//! One configuration generation: everything a loaded configuration needs
//! (the probe client, the rollback backend, the receivers that changed),
//! built before anything starts, so that a failure changes nothing. Start
//! builds generation 0 and spawns it; a reload builds the next one against
//! the running configuration's diff and hands it over.

use super::Telemetry;
use super::{StartError, status_url};
use crate::act::{
    ActionLog, Backend, Receivers, Revision, alertmanager, grafana, notifier, pagerduty,
};
use crate::cluster::{self, RestartWatcher};
use crate::config::{Config, ReceiverChanges, RollbackBackend};
use crate::probe::{Prober, Probes, Request};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A receiver's loop, to be started with its stop token.
pub(super) type ReceiverRun = Box<dyn FnOnce(CancellationToken) -> BoxFuture + Send>;
type BoxFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// What every generation is built from: the process, not the file.
pub(super) struct Env<'a> {
    pub options: &'a super::Options,
    pub addr: SocketAddr,
    pub telemetry: &'a Telemetry,
    pub actions: &'a ActionLog,
    pub revision: &'a Revision,
}

/// What backstop found out about itself in the cluster
/// (`rollback.kubernetes`): who it is, or why it can only page.
#[derive(Clone, Default)]
pub(super) struct InCluster {
    pub cluster: Option<(cluster::Connection, cluster::Identity)>,
    pub page_only: Option<cluster::PageOnly>,
}

/// Everything one configuration needs, built and not yet running.
pub(super) struct Generation {
    pub number: u64,
    pub config: Arc<Config>,
    pub cluster: Option<(cluster::Connection, cluster::Identity)>,
    /// Why `rollback.kubernetes` cannot roll back, if it cannot.
    pub page_only: Option<cluster::PageOnly>,
    /// Every target's request, in order.
    pub requests: Vec<Request>,
    pub prober: Prober,
    pub backend: Option<Backend>,
    /// The receivers `built` names, and their loops.
    pub receivers: Receivers,
    pub receiver_runs: Vec<ReceiverRun>,
    pub built: ReceiverChanges,
}

impl Generation {
    /// Build generation `number` of `config`. Only the receivers `build`
    /// names are made (a reload keeps the others running).
    pub fn build(
        number: u64,
        config: Arc<Config>,
        found: InCluster,
        build: ReceiverChanges,
        env: &Env,
    ) -> Result<Generation, StartError> {
        let InCluster { cluster, page_only } = found;
        let requests = Probes::requests(&config)?;
        let prober = Prober::new(&config.tls)?;
        let backend = Backend::from_config(&config, cluster.clone(), page_only.as_ref())?;
        let (receivers, receiver_runs) = build_receivers(&config, build, env)?;
        Ok(Generation {
            number,
            config,
            cluster,
            page_only,
            requests,
            prober,
            backend,
            receivers,
            receiver_runs,
            built: build,
        })
    }

    /// The restart-count poll this generation needs, if any.
    pub fn restart_watcher(&self, options: &super::Options) -> Option<RestartWatcher> {
        let (ctx, id) = self.cluster.as_ref()?;
        let window = self.config.restarts_window()?;
        let Some(RollbackBackend::Kubernetes(k)) = &self.config.rollback.backend else {
            return None;
        };
        Some(RestartWatcher::new(
            ctx.client.clone(),
            &id.namespace,
            &id.pod_selector,
            options.restart_poll,
            window,
            &k.container,
        ))
    }
}

/// Build the configured receivers among `which` (Alertmanager, PagerDuty,
/// Slack, the notification webhook, Grafana) and the loops that run them;
/// nothing runs yet.
fn build_receivers(
    config: &Config,
    which: ReceiverChanges,
    env: &Env,
) -> Result<(Receivers, Vec<ReceiverRun>), StartError> {
    let namespace = env.options.kubernetes.as_ref().map(|k| k.namespace.clone());
    let mut receivers = Receivers::default();
    let mut runs: Vec<ReceiverRun> = Vec::new();
    if let Some(am) = config
        .page
        .alertmanager
        .as_ref()
        .filter(|_| which.alertmanager)
    {
        let context = alertmanager::AlertLabels {
            service: config.service.clone(),
            revision: env.revision.id.clone(),
            namespace: namespace.clone(),
            generator_url: status_url(env.addr),
        };
        let pager = alertmanager::AlertSender::new(
            am.clone(),
            &config.tls,
            context,
            env.telemetry.act.clone(),
            env.actions.clone(),
        )?;
        receivers.alertmanager = Some(queue(&mut runs, |rx, stop| pager.run(rx, stop)));
    }
    if let Some(g) = config.grafana.as_ref().filter(|_| which.grafana) {
        let annotator = grafana::Annotator::new(
            g.clone(),
            &config.tls,
            &config.service,
            &env.revision.id,
            env.telemetry.act.clone(),
        )?;
        receivers.grafana = Some(queue(&mut runs, |rx, stop| annotator.run(rx, stop)));
    }
    if let Some(pd) = config.page.pagerduty.as_ref().filter(|_| which.pagerduty) {
        let context = pagerduty::EventSource {
            service: config.service.clone(),
            revision: env.revision.id.clone(),
            namespace,
            source: env
                .options
                .kubernetes
                .as_ref()
                .map(|k| k.pod.clone())
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| config.service.clone()),
            status_url: status_url(env.addr),
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
        let pager = pagerduty::EventSender::new(
            pd.clone(),
            &config.tls,
            context,
            env.telemetry.act.clone(),
            env.actions.clone(),
        )?;
        receivers.pagerduty = Some(queue(&mut runs, |rx, stop| pager.run(rx, stop)));
    }
    let notify_source = || notifier::NotifySource {
        status_url: status_url(env.addr),
    };
    if let Some(slack) = config.page.slack.as_ref().filter(|_| which.slack) {
        let (telemetry, log) = (env.telemetry.act.clone(), env.actions.clone());
        let n = notifier::Notifier::slack(slack, &config.tls, notify_source(), telemetry, log)?;
        receivers.slack = Some(queue(&mut runs, |rx, stop| n.run(rx, stop)));
    }
    if let Some(hook) = config.page.webhook.as_ref().filter(|_| which.webhook) {
        let (telemetry, log) = (env.telemetry.act.clone(), env.actions.clone());
        let n = notifier::Notifier::webhook(hook, &config.tls, notify_source(), telemetry, log)?;
        receivers.webhook = Some(queue(&mut runs, |rx, stop| n.run(rx, stop)));
    }
    Ok((receivers, runs))
}

/// A receiver's queue: the sender for the actions stage, and its loop
/// (reading the other end) added to `runs`.
fn queue<T, F, Fut>(runs: &mut Vec<ReceiverRun>, run: F) -> mpsc::Sender<T>
where
    T: Send + 'static,
    F: FnOnce(mpsc::Receiver<T>, CancellationToken) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    runs.push(Box::new(move |stop| Box::pin(run(rx, stop))));
    tx
}
