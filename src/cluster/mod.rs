//! Who am I, in Kubernetes: from the downward API (`POD_NAME`,
//! `POD_NAMESPACE`) to the pod, its ReplicaSet and that ReplicaSet's
//! Deployment; the current revision and its age; a start-up check that the
//! service account may do what backstop needs; restart counts of the
//! revision's pods. Everything the rest of backstop needs from the cluster
//! except the rollback write itself (which lives in `act`).

mod access;
mod connect;
pub mod events;
mod restarts;
mod revision;

pub use access::{ACCESS, Cause, Need, PageOnly};
pub use connect::with_token_file;
pub use restarts::{RestartWatcher, Restarts};
pub use revision::{ROLLED_BACK_AT, ROLLED_BACK_FROM, became_current, replicaset_revision};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::api::{Api, ListParams};
use std::time::{Duration, SystemTime};

/// The annotation the Deployment controller keeps the revision in.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The label the Deployment controller adds to tell a revision's pods apart.
pub const TEMPLATE_HASH: &str = "pod-template-hash";

/// Where backstop runs: enough to find itself in the cluster.
#[derive(Clone)]
pub struct Connection {
    pub client: kube::Client,
    pub namespace: String,
    pub pod: String,
}

/// The Deployment revision this pod belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub namespace: String,
    pub pod: String,
    pub replicaset: String,
    pub deployment: String,
    pub deployment_uid: String,
    /// `deployment.kubernetes.io/revision` of the ReplicaSet.
    pub revision: i64,
    /// The ReplicaSet's `pod-template-hash`.
    pub template_hash: String,
    /// Label selector (`k=v,...`) of this revision's pods.
    pub pod_selector: String,
    /// How long ago this revision became the Deployment's current one (see
    /// `became_current`): its age for `bake`.
    pub age: Duration,
}

/// Why backstop cannot find or act on itself; every message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    Setup(String),
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "the service account may not {verb} {resource}{name} in namespace {namespace}; \
         grant it in the Role (see k8s/components/backstop/role.yaml)"
    )]
    Forbidden {
        verb: String,
        resource: String,
        name: String,
        namespace: String,
    },
}

fn api_error(what: impl Into<String>) -> impl FnOnce(kube::Error) -> ClusterError {
    let what = what.into();
    move |source| match &source {
        kube::Error::Api(s) if s.code == 403 => ClusterError::Setup(format!(
            "{what}: forbidden ({}); grant the service account access (see k8s/components/backstop/role.yaml)",
            s.message
        )),
        _ => ClusterError::Api { what, source },
    }
}

/// The controller reference of an object, if any.
pub fn controller(refs: Option<&Vec<OwnerReference>>) -> Option<&OwnerReference> {
    refs?.iter().find(|r| r.controller == Some(true))
}

/// `deployment.kubernetes.io/revision` of an object, if it has a valid one.
pub fn revision_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<i64> {
    meta.annotations.as_ref()?.get(REVISION)?.parse().ok()
}

/// A label selector in the `labelSelector` query syntax.
pub fn selector_string(sel: &LabelSelector) -> String {
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

impl Identity {
    /// Follow pod → ReplicaSet → Deployment. `deployment`/`namespace` from
    /// the configuration, when given, must match what owns this pod.
    pub async fn discover(
        ctx: &Connection,
        deployment: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<Identity, ClusterError> {
        let ns = ctx.namespace.as_str();
        if let Some(want) = namespace
            && want != ns
        {
            return Err(ClusterError::Setup(format!(
                "rollback.kubernetes.namespace is {want:?} but this pod runs in {ns:?}; \
                 backstop can only roll back the Deployment that runs it"
            )));
        }
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
        let pod = pods
            .get(&ctx.pod)
            .await
            .map_err(api_error(format!("reading this pod {ns}/{}", ctx.pod)))?;
        let rs_ref = controller(pod.metadata.owner_references.as_ref())
            .filter(|r| r.kind == "ReplicaSet")
            .ok_or_else(|| {
                ClusterError::Setup(format!(
                    "pod {ns}/{} is not controlled by a ReplicaSet, so it is not part of a Deployment",
                    ctx.pod
                ))
            })?;
        let replicasets: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), ns);
        let rs = replicasets
            .get(&rs_ref.name)
            .await
            .map_err(api_error(format!(
                "reading ReplicaSet {ns}/{}",
                rs_ref.name
            )))?;
        let owner = controller(rs.metadata.owner_references.as_ref())
            .filter(|r| r.kind == "Deployment")
            .ok_or_else(|| {
                ClusterError::Setup(format!(
                    "ReplicaSet {ns}/{} is not controlled by a Deployment",
                    rs_ref.name
                ))
            })?;
        if let Some(want) = deployment
            && want != owner.name
        {
            return Err(ClusterError::Setup(format!(
                "rollback.kubernetes.deployment is {want:?}, but this pod belongs to Deployment {:?} \
                 (through ReplicaSet {:?}); name the right one or leave it out",
                owner.name, rs_ref.name
            )));
        }
        let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
        let d = deployments
            .get(&owner.name)
            .await
            .map_err(api_error(format!("reading Deployment {ns}/{}", owner.name)))?;
        let revision = revision_of(&rs.metadata).ok_or_else(|| {
            ClusterError::Setup(format!(
                "ReplicaSet {ns}/{} has no {REVISION} annotation",
                rs_ref.name
            ))
        })?;
        let template_hash = rs
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(TEMPLATE_HASH))
            .cloned()
            .unwrap_or_default();
        let pod_selector = rs
            .spec
            .as_ref()
            .map(|s| selector_string(&s.selector))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ClusterError::Setup(format!("ReplicaSet {ns}/{} has no selector", rs_ref.name))
            })?;
        let siblings = d
            .spec
            .as_ref()
            .map(|s| selector_string(&s.selector))
            .unwrap_or_default();
        let all = replicasets
            .list(&ListParams::default().labels(&siblings))
            .await
            .map_err(api_error(format!(
                "listing the ReplicaSets of Deployment {ns}/{}",
                owner.name
            )))?;
        let age = became_current(&d, &rs, &all.items)
            .map(|since| SystemTime::now().duration_since(since).unwrap_or_default())
            .unwrap_or_default();
        Ok(Identity {
            namespace: ns.to_string(),
            pod: ctx.pod.clone(),
            replicaset: rs_ref.name.clone(),
            deployment: owner.name.clone(),
            deployment_uid: d.metadata.uid.unwrap_or_default(),
            revision,
            template_hash,
            pod_selector,
            age,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_in_query_syntax() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "checkout", "tier": "web"},
            "matchExpressions": [
                {"key": "track", "operator": "In", "values": ["stable", "canary"]},
                {"key": "legacy", "operator": "DoesNotExist"},
                {"key": "owner", "operator": "Exists"},
                {"key": "env", "operator": "NotIn", "values": ["dev"]}
            ]
        }))
        .unwrap();
        assert_eq!(
            selector_string(&sel),
            "app=checkout,tier=web,track in (stable,canary),!legacy,owner,env notin (dev)"
        );
    }
}
