//! Who this pod is in the cluster (`rollback.kubernetes`), found once at
//! start and again on a reload that still lacks it. A failure is never a
//! reason to exit: the sidecar then runs in page-only mode, says so in a
//! log line, a metric, an Event on the Deployment (when it knows which)
//! and `/status`, and keeps probing and paging.

use super::{InCluster, Options, Telemetry};
use crate::act::Revision;
use crate::cluster::{self, Cause, PageOnly, events};
use crate::config::{Config, RollbackBackend};
use tokio::time::Instant;

/// The revision to guard and what backstop found about itself. `known`:
/// the page-only mode already announced, which is not announced again.
pub(super) async fn identify(
    config: &Config,
    options: &Options,
    telemetry: &Telemetry,
    known: Option<&PageOnly>,
) -> (Revision, InCluster) {
    let now = Instant::now();
    let outside = Revision {
        id: options.revision.clone(),
        since: now,
    };
    let Some(RollbackBackend::Kubernetes(k)) = &config.rollback.backend else {
        return (outside, InCluster::default());
    };
    let Some(ctx) = options.kubernetes.clone() else {
        let why = options.not_in_pod.clone().unwrap_or_else(|| {
            "POD_NAME and POD_NAMESPACE are not set (the downward API; see \
             k8s/components/backstop)"
                .into()
        });
        let p = PageOnly::new(
            Cause::NotInPod,
            format!("backstop has no connection to the Kubernetes API: {why}"),
        );
        return (outside, page_only(telemetry, p, None, known).await);
    };
    // The in-cluster client never gives up on an API server that does not
    // answer; start-up must not wait for it.
    let unreachable = || {
        PageOnly::new(
            Cause::Unreachable,
            format!(
                "the Kubernetes API server did not answer within {} \
                 (rollback.kubernetes.timeout)",
                humantime::format_duration(k.timeout)
            ),
        )
    };
    let discovered = tokio::time::timeout(
        k.timeout,
        cluster::Identity::discover(&ctx, k.deployment.as_deref(), k.namespace.as_deref()),
    )
    .await;
    let id = match discovered {
        Ok(Ok(id)) => id,
        Ok(Err(e)) => {
            return (
                outside,
                page_only(telemetry, PageOnly::from_error(&e), None, known).await,
            );
        }
        Err(_) => {
            return (
                outside,
                page_only(telemetry, unreachable(), None, known).await,
            );
        }
    };
    tracing::info!(
        deployment = id.deployment.as_str(),
        replicaset = id.replicaset.as_str(),
        revision = id.revision,
        age_seconds = id.age.as_secs(),
        "guarding this pod's Deployment revision"
    );
    let revision = Revision {
        id: id.revision.to_string(),
        since: now.checked_sub(id.age).unwrap_or(now),
    };
    let checked = tokio::time::timeout(k.timeout, id.check_permissions(&ctx)).await;
    let refused = match checked {
        Ok(Ok(())) => {
            telemetry.page_only(None);
            let cluster = Some((ctx, id));
            return (
                revision,
                InCluster {
                    cluster,
                    page_only: None,
                },
            );
        }
        Ok(Err(e)) => PageOnly::from_error(&e),
        Err(_) => unreachable(),
    };
    let found = page_only(telemetry, refused, Some((&ctx, &id)), known).await;
    (revision, found)
}

/// Say it everywhere a person looks, once (not again on each retry while
/// it stays the same): a log line, the metric, and an Event on the
/// Deployment when backstop knows which (best effort: the missing
/// permission may be that one).
async fn page_only(
    telemetry: &Telemetry,
    p: PageOnly,
    on: Option<(&cluster::Connection, &cluster::Identity)>,
    known: Option<&PageOnly>,
) -> InCluster {
    telemetry.page_only(Some(p.cause));
    let found = InCluster {
        cluster: None,
        page_only: Some(p.clone()),
    };
    if known == Some(&p) {
        return found;
    }
    tracing::error!(cause = p.cause.metric_label(), "{}", p.message);
    if let Some((ctx, id)) = on {
        let event = events::record(ctx, id, "BackstopPageOnly", "Warning", &p.message);
        // Bounded like every other call: the API server may be the problem.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), event).await;
    }
    found
}
