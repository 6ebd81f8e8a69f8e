//! A ReplicaSet's revision the way `kubectl rollout undo` reads it, and when
//! a revision became the Deployment's current one (its age for `bake`).

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::time::SystemTime;

use super::{REVISION, controller};

/// When backstop rolled the Deployment back (RFC 3339), and from which
/// revision: written by the rollback (act::kube), read here for the age of
/// the revision that rollback made current.
pub const ROLLED_BACK_AT: &str = "backstop.dev/rolled-back-at";
pub const ROLLED_BACK_FROM: &str = "backstop.dev/rolled-back-from-revision";

/// A ReplicaSet's revision as kubectl reads it: no annotation is revision 0
/// (an adopted ReplicaSet, which `kubectl rollout undo` can roll back to);
/// an annotation that is not a number is None (kubectl skips it).
pub fn replicaset_revision(meta: &ObjectMeta) -> Option<i64> {
    match meta.annotations.as_ref().and_then(|a| a.get(REVISION)) {
        None => Some(0),
        Some(v) => v.parse().ok(),
    }
}

/// When `ours` became `deployment`'s current revision, as closely as the
/// API objects prove it, given every ReplicaSet matching its selector.
///
/// Nothing records that moment itself, and a rollback reuses an old
/// ReplicaSet, so its creation time can be days before the rollout that
/// made it current. What is recorded are times it cannot have become
/// current before: its own creation; the creation of the revision it
/// replaced (the Deployment's ReplicaSet with the next lower revision,
/// which existed, and was current, before ours took over); and, when
/// backstop's own rollback replaced that revision, the rollback's time.
/// The latest of these is exact for a new ReplicaSet and for backstop's
/// rollbacks, and otherwise errs towards older, the side on which `bake`
/// pages rather than rolls back. (The Progressing condition is no better:
/// a scale-up refreshes its lastUpdateTime, which would make a revision
/// that proved itself for days look new.)
pub fn became_current(
    deployment: &Deployment,
    ours: &ReplicaSet,
    all: &[ReplicaSet],
) -> Option<SystemTime> {
    let created = |rs: &ReplicaSet| {
        rs.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| SystemTime::from(t.0))
    };
    let our_revision = replicaset_revision(&ours.metadata)?;
    let uid = deployment.metadata.uid.as_deref();
    let replaced = all
        .iter()
        .filter(|rs| rs.metadata.uid != ours.metadata.uid)
        .filter(|rs| {
            controller(rs.metadata.owner_references.as_ref())
                .is_some_and(|c| Some(c.uid.as_str()) == uid)
        })
        .filter_map(|rs| Some((replicaset_revision(&rs.metadata)?, rs)))
        .filter(|(revision, _)| *revision < our_revision)
        .max_by_key(|(revision, _)| *revision);
    let annotations = deployment.metadata.annotations.as_ref();
    let rolled_back = replaced.and_then(|(revision, _)| {
        let annotations = annotations?;
        let from: i64 = annotations.get(ROLLED_BACK_FROM)?.parse().ok()?;
        let at = annotations.get(ROLLED_BACK_AT)?;
        (from == revision)
            .then(|| humantime::parse_rfc3339_weak(at).ok())
            .flatten()
    });
    [
        created(ours),
        replaced.and_then(|(_, rs)| created(rs)),
        rolled_back,
    ]
    .into_iter()
    .flatten()
    .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    const DAY: u64 = 86_400;

    fn at(seconds_ago: u64) -> SystemTime {
        SystemTime::now() - Duration::from_secs(seconds_ago)
    }

    fn rfc3339(t: SystemTime) -> String {
        humantime::format_rfc3339_millis(t).to_string()
    }

    fn rs(name: &str, revision: Option<&str>, created: SystemTime, owner: &str) -> ReplicaSet {
        let mut annotations = json!({});
        if let Some(r) = revision {
            annotations[REVISION] = json!(r);
        }
        serde_json::from_value(json!({"metadata": {
            "name": name, "uid": name, "annotations": annotations,
            "creationTimestamp": rfc3339(created),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                 "name": "checkout", "uid": owner, "controller": true}]
        }}))
        .unwrap()
    }

    fn deployment(annotations: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({"metadata": {
            "name": "checkout", "uid": "d1", "annotations": annotations
        }}))
        .unwrap()
    }

    /// Less than a second apart (the timestamps are written to the second).
    fn close(a: Option<SystemTime>, b: SystemTime) -> bool {
        a.is_some_and(|a| {
            let gap = a.duration_since(b).unwrap_or_else(|e| e.duration());
            gap < Duration::from_secs(1)
        })
    }

    #[test]
    fn revisions_read_like_kubectl() {
        let meta = |r: Option<&str>| rs("x", r, at(0), "d1").metadata;
        assert_eq!(replicaset_revision(&meta(None)), Some(0));
        assert_eq!(replicaset_revision(&meta(Some("7"))), Some(7));
        assert_eq!(replicaset_revision(&meta(Some("seven"))), None);
    }

    #[test]
    fn a_new_replicaset_became_current_when_it_was_created() {
        let ours = rs("v3", Some("3"), at(300), "d1");
        let all = [rs("v2", Some("2"), at(2 * DAY), "d1"), ours.clone()];
        let since = became_current(&deployment(json!({})), &ours, &all);
        assert!(close(since, at(300)), "{since:?}");
    }

    /// kubectl rollout undo from v2 (created a minute ago) back to v1's
    /// ReplicaSet (created two days ago), now revision 3: it is as young as
    /// the revision it replaced, not two days old.
    #[test]
    fn a_reused_replicaset_is_no_older_than_the_revision_it_replaced() {
        let ours = rs("v1", Some("3"), at(2 * DAY), "d1");
        let all = [
            ours.clone(),
            rs("v2", Some("2"), at(60), "d1"),
            // Another Deployment's newer ReplicaSet proves nothing here.
            rs("canary", Some("2"), at(5), "someone-else"),
        ];
        let since = became_current(&deployment(json!({})), &ours, &all);
        assert!(close(since, at(60)), "{since:?}");
    }

    /// backstop's own rollback recorded its time: that is the moment.
    #[test]
    fn backstops_rollback_time_is_exact() {
        let ours = rs("v1", Some("3"), at(2 * DAY), "d1");
        let all = [ours.clone(), rs("v2", Some("2"), at(600), "d1")];
        let rolled = deployment(json!({
            ROLLED_BACK_FROM: "2", ROLLED_BACK_AT: rfc3339(at(30))
        }));
        assert!(close(became_current(&rolled, &ours, &all), at(30)));
        // A record about another revision says nothing about this one.
        let other = deployment(json!({
            ROLLED_BACK_FROM: "1", ROLLED_BACK_AT: rfc3339(at(30))
        }));
        assert!(close(became_current(&other, &ours, &all), at(600)));
    }

    /// An adopted ReplicaSet without the annotation is revision 0, and
    /// still the one ours replaced.
    #[test]
    fn an_unannotated_replicaset_counts_as_revision_0() {
        let ours = rs("v1", Some("1"), at(DAY), "d1");
        let all = [ours.clone(), rs("adopted", None, at(120), "d1")];
        assert!(close(
            became_current(&deployment(json!({})), &ours, &all),
            at(120)
        ));
    }
}
