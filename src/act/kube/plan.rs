//! The rollback decision, as pure functions over the objects read from the
//! API: `kubectl rollout undo` semantics (previous revision's template,
//! kubectl's annotation rules, one JSON patch), plus backstop's guard
//! annotations written in the same patch under a resourceVersion
//! precondition, so that of N sidecars racing exactly one write succeeds.

use crate::act::Prevented;
use crate::cluster::{REVISION, TEMPLATE_HASH, controller, replicaset_revision, revision_of};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use std::collections::BTreeMap;

/// Annotations kubectl keeps from the Deployment instead of copying them
/// from the ReplicaSet (kubectl's `annotationsToSkip`).
pub const KEEP_FROM_DEPLOYMENT: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// Template hashes backstop rolled back from; never rolled back to again.
pub const BAD_TEMPLATES: &str = "backstop.dev/bad-templates";
pub const FROM_REVISION: &str = crate::cluster::ROLLED_BACK_FROM;
pub const TO_REVISION: &str = "backstop.dev/rolled-back-to-revision";
pub const AT: &str = crate::cluster::ROLLED_BACK_AT;
pub const RULE: &str = "backstop.dev/rolled-back-rule";
pub const BY: &str = "backstop.dev/rolled-back-by";
/// How many bad templates the Deployment remembers.
const KEEP_BAD: usize = 10;

/// Who decides and why, for the guard annotations.
pub struct Why<'a> {
    pub rule: &'a str,
    pub pod: &'a str,
    pub at: &'a str,
}

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Send this JSON patch (application/json-patch+json).
    Patch {
        patch: serde_json::Value,
        from: i64,
        to: i64,
        /// The ReplicaSet rolled back to.
        to_replicaset: String,
    },
    Refuse(Prevented, String),
}

fn annotations(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> BTreeMap<String, String> {
    meta.annotations.clone().unwrap_or_default()
}

fn hash_of(rs: &ReplicaSet) -> Option<&str> {
    rs.metadata
        .labels
        .as_ref()?
        .get(TEMPLATE_HASH)
        .map(String::as_str)
}

/// A template with the `pod-template-hash` label removed (kubectl's
/// `equalIgnoreHash` compares templates this way).
fn without_hash(t: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = t.clone();
    if let Some(meta) = t.metadata.as_mut()
        && let Some(labels) = meta.labels.as_mut()
    {
        labels.remove(TEMPLATE_HASH);
        if labels.is_empty() {
            meta.labels = None;
        }
    }
    t
}

fn template(rs: &ReplicaSet) -> Option<&PodTemplateSpec> {
    rs.spec.as_ref()?.template.as_ref()
}

/// Decide about rolling `deployment` back from the revision `ours` (the
/// ReplicaSet running this pod), given every ReplicaSet matching the
/// Deployment's selector.
pub fn plan(deployment: &Deployment, ours: &ReplicaSet, all: &[ReplicaSet], why: &Why) -> Plan {
    let name = deployment.metadata.name.as_deref().unwrap_or_default();
    let d_ann = annotations(&deployment.metadata);
    let bad: Vec<&str> = d_ann
        .get(BAD_TEMPLATES)
        .map(|s| s.split(',').filter(|h| !h.is_empty()).collect())
        .unwrap_or_default();
    let our_rev = revision_of(&ours.metadata).unwrap_or(0);
    let our_hash = hash_of(ours).unwrap_or_default();
    if bad.contains(&our_hash) {
        let by = d_ann.get(BY).map_or("another replica", String::as_str);
        let when = d_ann.get(AT).map_or("", String::as_str);
        return Plan::Refuse(
            Prevented::AlreadyRolledBack,
            format!("Deployment {name} was already rolled back from this revision by {by} {when}")
                .trim_end()
                .to_string(),
        );
    }
    let Some(spec) = deployment.spec.as_ref() else {
        return Plan::Refuse(
            Prevented::NotNewestRevision,
            format!("Deployment {name} has no spec"),
        );
    };
    if spec.paused == Some(true) {
        return Plan::Refuse(
            Prevented::Paused,
            format!(
                "Deployment {name} is paused; resume it (kubectl rollout resume) before it can be rolled back"
            ),
        );
    }
    let d_rev = revision_of(&deployment.metadata);
    let same_template =
        template(ours).is_some_and(|t| without_hash(t) == without_hash(&spec.template));
    if d_rev != Some(our_rev) || !same_template {
        return Plan::Refuse(
            Prevented::NotNewestRevision,
            format!(
                "this pod runs revision {our_rev} but Deployment {name} is at revision {}{}: someone rolled it forward or back already",
                d_rev.map_or("?".into(), |r| r.to_string()),
                if same_template {
                    ""
                } else {
                    " with another template"
                }
            ),
        );
    }
    let uid = deployment.metadata.uid.as_deref();
    let previous = all
        .iter()
        .filter(|rs| {
            controller(rs.metadata.owner_references.as_ref())
                .is_some_and(|c| Some(c.uid.as_str()) == uid)
        })
        // kubectl: no annotation is revision 0, a bad one is skipped.
        .filter_map(|rs| Some((replicaset_revision(&rs.metadata)?, rs)))
        .filter(|(rev, rs)| {
            *rev < our_rev && hash_of(rs).is_none_or(|h| h != our_hash && !bad.contains(&h))
        })
        .max_by_key(|(rev, _)| *rev);
    let Some((to_rev, target)) = previous else {
        let skipped = if bad.is_empty() {
            String::new()
        } else {
            " that was not rolled back from before".to_string()
        };
        return Plan::Refuse(
            Prevented::NoPreviousRevision,
            format!("Deployment {name} has no revision before {our_rev}{skipped} to roll back to"),
        );
    };
    let Some(target_template) = template(target) else {
        return Plan::Refuse(
            Prevented::NoPreviousRevision,
            format!("revision {to_rev} has no pod template"),
        );
    };
    let restored = without_hash(target_template);
    if restored == without_hash(&spec.template) {
        return Plan::Refuse(
            Prevented::TemplateUnchanged,
            format!("revision {to_rev}'s template is the current one already; nothing to undo"),
        );
    }
    // kubectl: keep these from the Deployment, copy every other annotation
    // from the ReplicaSet rolled back to.
    let mut ann: BTreeMap<String, String> = KEEP_FROM_DEPLOYMENT
        .iter()
        .filter_map(|k| Some((k.to_string(), d_ann.get(*k)?.clone())))
        .collect();
    for (k, v) in annotations(&target.metadata) {
        if !KEEP_FROM_DEPLOYMENT.contains(&k.as_str()) && !k.starts_with("backstop.dev/") {
            ann.insert(k, v);
        }
    }
    // backstop's own record, in the same write.
    let mut remembered: Vec<&str> = bad.clone();
    remembered.push(our_hash);
    let keep_from = remembered.len().saturating_sub(KEEP_BAD);
    ann.insert(BAD_TEMPLATES.into(), remembered[keep_from..].join(","));
    ann.insert(FROM_REVISION.into(), our_rev.to_string());
    ann.insert(TO_REVISION.into(), to_rev.to_string());
    ann.insert(AT.into(), why.at.to_string());
    ann.insert(RULE.into(), why.rule.to_string());
    ann.insert(BY.into(), why.pod.to_string());
    let patch = serde_json::json!([
        // A precondition: the write fails with 409 if the Deployment changed
        // since it was read (another sidecar won the race).
        { "op": "replace", "path": "/metadata/resourceVersion", "value": deployment.metadata.resource_version },
        { "op": "replace", "path": "/spec/template", "value": restored },
        { "op": "replace", "path": "/metadata/annotations", "value": ann },
    ]);
    Plan::Patch {
        patch,
        from: our_rev,
        to: to_rev,
        to_replicaset: target.metadata.name.clone().unwrap_or_default(),
    }
}
