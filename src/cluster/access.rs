//! What backstop may do in the cluster: the API calls it makes (`ACCESS`,
//! the list the Role in k8s/components/backstop grants, no more), the
//! start-up check that the service account may make them, and page-only
//! mode: why backstop cannot roll back, said once and kept for `/status`.

use super::{ClusterError, Connection, Identity};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use serde::Serialize;

/// One permission backstop needs in its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub verb: &'static str,
    /// "" for the core group.
    pub group: &'static str,
    pub resource: &'static str,
    /// Only the guarded Deployment (the Role's `resourceNames`).
    pub named: bool,
}

const fn need(verb: &'static str, group: &'static str, resource: &'static str) -> Need {
    Need {
        verb,
        group,
        resource,
        named: false,
    }
}

/// Every call backstop makes to roll back and explain it: the pod and its
/// ReplicaSet (who am I), the revision's pods (restart counts), every
/// ReplicaSet of the Deployment (the revision to go back to), the
/// Deployment (read, then one JSON patch) and core/v1 Events.
pub const ACCESS: [Need; 7] = [
    Need {
        named: true,
        ..need("get", "apps", "deployments")
    },
    Need {
        named: true,
        ..need("patch", "apps", "deployments")
    },
    need("get", "apps", "replicasets"),
    need("list", "apps", "replicasets"),
    need("get", "", "pods"),
    need("list", "", "pods"),
    need("create", "", "events"),
];

impl Identity {
    /// Ask the API server whether this service account may do everything
    /// in `ACCESS`; the first refusal names the missing verb and resource.
    pub async fn check_permissions(&self, ctx: &Connection) -> Result<(), ClusterError> {
        let reviews: Api<SelfSubjectAccessReview> = Api::all(ctx.client.clone());
        for n in ACCESS {
            let name = n.named.then(|| self.deployment.clone());
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(self.namespace.clone()),
                        verb: Some(n.verb.into()),
                        group: Some(n.group.into()),
                        resource: Some(n.resource.into()),
                        name: name.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let answer = reviews
                .create(&PostParams::default(), &review)
                .await
                .map_err(super::api_error(
                    "checking permissions (SelfSubjectAccessReview)",
                ))?;
            if !answer.status.is_some_and(|s| s.allowed) {
                let full = if n.group.is_empty() {
                    n.resource.to_string()
                } else {
                    format!("{}.{}", n.resource, n.group)
                };
                return Err(ClusterError::Forbidden {
                    verb: n.verb.into(),
                    resource: full,
                    name: name.map(|n| format!(" {n:?}")).unwrap_or_default(),
                    namespace: self.namespace.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Why backstop cannot roll back, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// No pod identity or no client (not in a pod, no downward API).
    NotInPod,
    /// The service account lacks a permission.
    Forbidden,
    /// The API server did not answer (in time).
    Unreachable,
    /// The cluster is not what the configuration says (another Deployment,
    /// a pod without a ReplicaSet, ...).
    Setup,
}

impl Cause {
    pub fn metric_label(self) -> &'static str {
        match self {
            Cause::NotInPod => "not_in_pod",
            Cause::Forbidden => "forbidden",
            Cause::Unreachable => "unreachable",
            Cause::Setup => "setup",
        }
    }
}

/// Page-only mode: `rollback.kubernetes` is configured but backstop cannot
/// roll back. It keeps probing and paging instead of exiting, since a
/// sidecar that exits (or is not ready) takes the app's pod with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageOnly {
    pub cause: Cause,
    /// What is wrong and what to fix, for the person reading `/status`.
    pub message: String,
}

impl PageOnly {
    pub fn new(cause: Cause, problem: impl std::fmt::Display) -> PageOnly {
        PageOnly {
            cause,
            message: format!(
                "page-only mode: automatic rollback is off because {problem}; \
                 rules still page. backstop tries again every 30 s once it is fixed"
            ),
        }
    }

    /// The page-only mode a failure to find or check this pod leads to.
    pub fn from_error(e: &ClusterError) -> PageOnly {
        let cause = match e {
            ClusterError::Forbidden { .. } => Cause::Forbidden,
            ClusterError::Setup(m) if m.contains("forbidden") => Cause::Forbidden,
            ClusterError::Api { source, .. } => match source {
                kube::Error::Api(s) if s.code == 403 || s.code == 401 => Cause::Forbidden,
                kube::Error::Api(s) if s.code < 500 && s.code != 429 => Cause::Setup,
                _ => Cause::Unreachable,
            },
            ClusterError::Setup(_) => Cause::Setup,
        };
        PageOnly::new(cause, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::rbac::v1::Role;
    use std::collections::BTreeSet;

    /// (verb, group, resource, named) as a Role grants them.
    type Grant = (String, String, String, bool);

    fn grants(role: &Role) -> BTreeSet<Grant> {
        let mut out = BTreeSet::new();
        for rule in role.rules.iter().flatten() {
            let named = rule.resource_names.as_ref().is_some_and(|n| !n.is_empty());
            for group in rule.api_groups.iter().flatten() {
                for resource in rule.resources.iter().flatten() {
                    for verb in &rule.verbs {
                        out.insert((verb.clone(), group.clone(), resource.clone(), named));
                    }
                }
            }
        }
        out
    }

    fn role(path: &str) -> Role {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    }

    /// The Role grants what the start-up review asks for, nothing more:
    /// a verb the code never uses is a right an attacker could use, and
    /// one it needs but lacks is page-only mode in every cluster.
    #[test]
    fn the_role_grants_exactly_what_the_access_review_asks_for() {
        let granted = grants(&role("k8s/components/backstop/role.yaml"));
        let needed: BTreeSet<Grant> = ACCESS
            .iter()
            .map(|n| (n.verb.into(), n.group.into(), n.resource.into(), n.named))
            .collect();
        let extra: Vec<_> = granted.difference(&needed).collect();
        let missing: Vec<_> = needed.difference(&granted).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "role.yaml grants more than the code uses: {extra:?}; and lacks: {missing:?}"
        );
    }

    #[test]
    fn each_failure_has_its_cause_and_says_what_to_fix() {
        let forbidden = ClusterError::Forbidden {
            verb: "patch".into(),
            resource: "deployments.apps".into(),
            name: " \"checkout\"".into(),
            namespace: "shop".into(),
        };
        let p = PageOnly::from_error(&forbidden);
        assert_eq!(p.cause, Cause::Forbidden);
        assert!(
            p.message.starts_with(
                "page-only mode: automatic rollback is off because the service account may not \
                 patch deployments.apps \"checkout\" in namespace shop"
            ),
            "{}",
            p.message
        );
        let setup = ClusterError::Setup("pod shop/x is not controlled by a ReplicaSet".into());
        assert_eq!(PageOnly::from_error(&setup).cause, Cause::Setup);
    }
}
