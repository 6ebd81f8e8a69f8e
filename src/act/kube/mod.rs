//! Rollback of the pod's own Deployment with `kubectl rollout undo`
//! semantics (see `plan`), retried by re-reading and re-deciding on 409,
//! with backoff on 5xx/429/timeouts (each attempt bounded by
//! `rollback.kubernetes.timeout`), never blindly on 403/404/422; each
//! rollback or refusal also leaves a Kubernetes Event on the Deployment so
//! `kubectl describe deployment` shows why.

pub mod gitops;
pub mod hold;
pub mod plan;

use super::retry::{self, Attempt, Backoff, RetryError};
use super::{Prevented, RollbackRequest, Rolled};
use crate::cluster::{Connection, Identity, events};
use crate::config::Kubernetes;
use gitops::Gate;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, ListParams, Patch, PatchParams};
use plan::{Plan, Why};
use std::sync::atomic::{AtomicBool, Ordering};

pub struct KubeBackend {
    ctx: Connection,
    identity: Identity,
    /// `timeout` bounds one read-decide-write round; `gitops` and
    /// `argocd_namespace` say what to do when Argo CD or Flux syncs the
    /// Deployment.
    config: Box<Kubernetes>,
    backoff: Backoff,
    /// The last answer was the cluster-wide pause: asked again every
    /// little while, it is said in an Event once, not every time.
    holding: AtomicBool,
}

impl KubeBackend {
    pub fn new(
        ctx: Connection,
        identity: Identity,
        config: Kubernetes,
        backoff: Backoff,
    ) -> KubeBackend {
        KubeBackend {
            ctx,
            identity,
            config: Box::new(config),
            backoff,
            holding: AtomicBool::new(false),
        }
    }

    pub async fn rollback(
        &self,
        req: &RollbackRequest,
        dry_run: bool,
        on_attempt: impl FnMut(&'static str),
    ) -> Result<Rolled, RetryError> {
        let result = retry::run(
            self.backoff,
            || async {
                // The in-cluster client has no read timeout: without this
                // bound an API server that stops answering would hold the
                // rollback in flight for good.
                match tokio::time::timeout(self.config.timeout, self.attempt(req, dry_run)).await {
                    Ok(Ok(outcome)) => Attempt::Done(outcome),
                    Ok(Err(e)) => classify(e),
                    Err(_) => Attempt::Retry {
                        error: format!(
                            "no answer from the API server within {}",
                            humantime::format_duration(self.config.timeout)
                        ),
                        after: None,
                    },
                }
            },
            on_attempt,
        )
        .await;
        let held = matches!(&result, Ok(Rolled::Refused(Prevented::Hold, _)));
        if self.holding.swap(held, Ordering::Relaxed) && held {
            return result;
        }
        let (reason, kind, message) = match &result {
            Ok(Rolled::Back { detail, .. }) => ("BackstopRollback", "Warning", detail.clone()),
            Ok(Rolled::DryRun(m)) => ("BackstopRollbackDryRun", "Normal", m.clone()),
            // The replica that did roll back has recorded it already.
            Ok(Rolled::Refused(super::Prevented::AlreadyRolledBack, _)) => return result,
            Ok(Rolled::Refused(why, m)) => (
                "BackstopRollbackRefused",
                "Warning",
                format!("{}: {m}", why.metric_label()),
            ),
            Err(e) => ("BackstopRollbackFailed", "Warning", e.to_string()),
        };
        let message = format!("{message}. Rule {}: {}", req.rule, req.reason);
        let event = events::record(&self.ctx, &self.identity, reason, kind, &message);
        if tokio::time::timeout(self.config.timeout, event)
            .await
            .is_err()
        {
            tracing::warn!(
                reason,
                "could not record a Kubernetes Event on the Deployment: no answer in time"
            );
        }
        result
    }

    /// One read-decide-write round.
    async fn attempt(&self, req: &RollbackRequest, dry_run: bool) -> Result<Rolled, kube::Error> {
        let ns = self.identity.namespace.as_str();
        let deployments: Api<Deployment> = Api::namespaced(self.ctx.client.clone(), ns);
        let replicasets: Api<ReplicaSet> = Api::namespaced(self.ctx.client.clone(), ns);
        let deployment = deployments.get(&self.identity.deployment).await?;
        // Read by every replica before it acts: the cluster-wide pause.
        if let Some(why) = hold::hold(&deployment, k8s_openapi::jiff::Timestamp::now()) {
            return Ok(Rolled::Refused(Prevented::Hold, why));
        }
        // Our ReplicaSet is read afresh: its revision changes when a rollout reuses it.
        let ours = replicasets.get(&self.identity.replicaset).await?;
        let selector = deployment
            .spec
            .as_ref()
            .map(|s| crate::cluster::selector_string(&s.selector))
            .unwrap_or_default();
        let all = replicasets
            .list(&ListParams::default().labels(&selector))
            .await?;
        let why = Why {
            rule: &req.rule,
            pod: &self.identity.pod,
            at: &req.fired_at,
        };
        match plan::plan(&deployment, &ours, &all.items, &why) {
            Plan::Refuse(prevented, detail) => Ok(Rolled::Refused(prevented, detail)),
            Plan::Patch {
                patch,
                from,
                to,
                to_replicaset,
            } => {
                let name = &self.identity.deployment;
                let what = format!(
                    "Deployment {ns}/{name} from revision {from} to revision {to} (ReplicaSet {to_replicaset})"
                );
                // In the same decision and before the undo: a rollback that
                // the owner's next sync reverts is worse than none.
                let gate =
                    gitops::before_rollback(&self.ctx.client, &self.config, &deployment, dry_run)
                        .await?;
                let note = match gate {
                    Gate::Refuse(why) => return Ok(Rolled::Refused(Prevented::GitOps, why)),
                    Gate::Clear(note) => note.map(|n| format!("; {n}")).unwrap_or_default(),
                };
                if dry_run {
                    return Ok(Rolled::DryRun(format!("would roll back {what}{note}")));
                }
                let patch: json_patch::Patch =
                    serde_json::from_value(patch).map_err(kube::Error::SerdeError)?;
                deployments
                    .patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
                    .await?;
                Ok(Rolled::Back {
                    detail: format!("rolled back {what}{note}"),
                    to: Some(format!("revision {to}")),
                })
            }
        }
    }
}

/// 409: someone wrote in between; re-read and re-decide. 429/5xx and
/// transport errors: back off and retry. Anything else will not pass by
/// repeating it.
fn classify(e: kube::Error) -> Attempt<Rolled> {
    match &e {
        kube::Error::Api(s) if s.code == 409 => Attempt::Retry {
            error: format!("conflict: {}", s.message),
            after: None,
        },
        kube::Error::Api(s) if s.code == 429 || s.code >= 500 => Attempt::Retry {
            error: format!("HTTP {}: {}", s.code, s.message),
            after: None,
        },
        kube::Error::Api(s) => {
            Attempt::Reject(format!("HTTP {} {}: {}", s.code, s.reason, s.message))
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => Attempt::Retry {
            error: e.to_string(),
            after: None,
        },
        _ => Attempt::Reject(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
