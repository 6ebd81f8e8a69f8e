//! The process's telemetry, put together: one registry every stage
//! registers its metrics in, one event stream every stage emits into (what
//! the demo and tests read), and the daemon's own metrics (build,
//! revision, configuration reloads).

use crate::act::{self, Acted, ActionRecord};
use crate::engine::{self, Transitioned};
use crate::probe::{self, Outcome, Probed};
use crate::rules::{Evidence, State};
use crate::server;
use crate::telemetry::{Emitter, Registry};
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec};
use std::time::Duration;
use tokio::sync::broadcast;

/// Something backstop observed or did, for subscribers (demo, tests).
#[derive(Debug, Clone)]
pub enum Event {
    Probe {
        target: String,
        outcome: Outcome,
        latency: Duration,
        counted: bool,
    },
    Transition {
        rule: String,
        from: State,
        to: State,
        evidence: Evidence,
    },
    RollbackStarted {
        rule: String,
        revision: String,
    },
    Action(ActionRecord),
}

impl From<Probed> for Event {
    fn from(p: Probed) -> Event {
        Event::Probe {
            target: p.target,
            outcome: p.outcome,
            latency: p.latency,
            counted: p.counted,
        }
    }
}

impl From<Transitioned> for Event {
    fn from(t: Transitioned) -> Event {
        Event::Transition {
            rule: t.rule,
            from: t.from,
            to: t.to,
            evidence: t.evidence,
        }
    }
}

impl From<Acted> for Event {
    fn from(a: Acted) -> Event {
        match a {
            Acted::RollbackStarted { rule, revision } => Event::RollbackStarted { rule, revision },
            Acted::Action(r) => Event::Action(r),
        }
    }
}

/// Every stage's telemetry over one registry and one event stream; cheap
/// to clone.
#[derive(Clone)]
pub struct Telemetry {
    pub registry: Registry,
    events: broadcast::Sender<Event>,
    pub probe: probe::Telemetry,
    pub engine: engine::Telemetry,
    pub act: act::Telemetry,
    pub server: server::Telemetry,
    revision_info: IntGaugeVec,
    revision_unnamed: IntGauge,
    config_reloads: IntCounterVec,
    config_last_reload_successful: IntGauge,
    page_only: IntGaugeVec,
}

impl Telemetry {
    pub fn new(service: &str) -> Telemetry {
        let registry = Registry::new();
        let (events, _) = broadcast::channel(1024);
        let build_info = registry.gauge(
            "backstop_build_info",
            "Build information; always 1.",
            &["version", "service"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), service])
            .set(1);
        let telemetry = Telemetry {
            probe: probe::Telemetry::register(&registry, Emitter::to(events.clone(), Event::from)),
            engine: engine::Telemetry::register(
                &registry,
                Emitter::to(events.clone(), Event::from),
            ),
            act: act::Telemetry::register(&registry, Emitter::to(events.clone(), Event::from)),
            server: server::Telemetry::register(&registry),
            revision_info: registry.gauge(
                "backstop_revision_info",
                "The revision backstop guards; always 1.",
                &["service", "revision"],
            ),
            revision_unnamed: registry.gauge1(
                "backstop_revision_unnamed",
                "1 when backstop runs outside Kubernetes without --revision: every release looks the same to bake and to the rollback webhook.",
            ),
            config_reloads: registry.counter(
                "backstop_config_reloads_total",
                "Configuration reloads (SIGHUP or the file changing) by result: applied, unchanged, rejected (the running configuration stays).",
                &["result"],
            ),
            config_last_reload_successful: registry.gauge1(
                "backstop_config_last_reload_successful",
                "0 when the last configuration reload was rejected: the file on disk is not what runs.",
            ),
            page_only: registry.gauge(
                "backstop_rollback_page_only",
                "1 when rollback.kubernetes cannot roll back and backstop only pages, by cause \
                 (not_in_pod, forbidden, unreachable, setup); /status says what to fix.",
                &["cause"],
            ),
            registry,
            events,
        };
        // Present from the start, so "paused" can be told from "no data".
        telemetry.act.actions_paused(service, false);
        telemetry.config_last_reload_successful.set(1);
        telemetry
    }

    /// Receive every event from now on. A slow subscriber loses the oldest
    /// events (it sees `Lagged`), never slows backstop down.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The revision guarded; `named`: false when nobody named it.
    pub fn revision(&self, service: &str, revision: &str, named: bool) {
        self.revision_info
            .with_label_values(&[service, revision])
            .set(1);
        self.revision_unnamed.set(i64::from(!named));
    }

    /// Page-only mode began (`Some`, why) or does not hold (`None`).
    pub fn page_only(&self, cause: Option<crate::cluster::Cause>) {
        use crate::cluster::Cause;
        for c in [
            Cause::NotInPod,
            Cause::Forbidden,
            Cause::Unreachable,
            Cause::Setup,
        ] {
            self.page_only
                .with_label_values(&[c.metric_label()])
                .set(i64::from(cause == Some(c)));
        }
    }

    /// A configuration reload ended.
    pub fn config_reload(&self, result: super::ReloadResult) {
        self.config_reloads
            .with_label_values(&[result.metric_label()])
            .inc();
        self.config_last_reload_successful
            .set(i64::from(result != super::ReloadResult::Rejected));
    }
}
