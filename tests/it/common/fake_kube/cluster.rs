//! A cluster as a real one looks after two rollouts of Deployment `checkout`
//! in namespace `shop` (1.41.0 → 1.42.0 → 1.43.0), with server defaults
//! filled in the way the API server stores them, plus a decoy: a canary
//! Deployment whose ReplicaSet carries `app=checkout` and a revision number
//! of its own. A client that picks ReplicaSets by label alone, not by
//! controller ownerReference, gets it wrong against this fixture.

use super::FakeKube;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use serde_json::{Value, json};

pub const NAMESPACE: &str = "shop";
pub const DEPLOYMENT: &str = "checkout";
const IMAGE: &str = "registry.example.com/checkout";
const SIDECAR_IMAGE: &str = "registry.example.com/backstop:0.1.0";

/// One rollout of `checkout`: its ReplicaSet and what it runs.
#[derive(Debug, Clone)]
#[allow(
    dead_code,
    reason = "describes the whole fixture; each test reads what it needs"
)]
pub struct Revision {
    pub number: i64,
    pub replicaset: String,
    pub uid: String,
    /// The `pod-template-hash` label value (the ReplicaSet name's suffix).
    pub hash: String,
    pub version: String,
    pub image: String,
}

/// Names and uids of what [`checkout_cluster`] created.
#[derive(Debug, Clone)]
#[allow(
    dead_code,
    reason = "describes the whole fixture; each test reads what it needs"
)]
pub struct Fixture {
    pub namespace: String,
    pub deployment: String,
    pub deployment_uid: String,
    /// Revisions 1, 2 and 3, in that order; 3 is live.
    pub revisions: Vec<Revision>,
    /// The decoy: labelled `app=checkout`, owned by `checkout-canary`.
    pub canary_deployment: String,
    pub canary_deployment_uid: String,
    pub canary_replicaset: String,
    /// The three running pods of revision 3.
    pub pods: Vec<String>,
    pub pod_uids: Vec<String>,
    /// The live containers: the application and the backstop sidecar.
    pub containers: [&'static str; 2],
}

impl Fixture {
    pub fn current(&self) -> &Revision {
        &self.revisions[2]
    }

    /// The selector of the live revision's pods, as a ReplicaSet has it.
    pub fn pod_selector(&self) -> String {
        format!("app=checkout,pod-template-hash={}", self.current().hash)
    }
}

fn ago(seconds: i64) -> Value {
    let t = Timestamp::now() - SignedDuration::from_secs(seconds);
    serde_json::to_value(Time(t)).expect("Time serializes")
}

fn typed<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("fixture objects are valid")
}

/// A pod template with the defaults the API server fills in.
fn template(version: &str, labels: Value) -> Value {
    let container = |name: &str, image: String, port: u16, port_name: &str| {
        json!({
            "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": port_name, "containerPort": port, "protocol": "TCP"}],
            "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File"
        })
    };
    json!({
        "metadata": {"labels": labels},
        "spec": {
            "containers": [
                container("checkout", format!("{IMAGE}:{version}"), 8080, "http"),
                container("backstop", SIDECAR_IMAGE.to_string(), 9464, "admin"),
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "checkout",
            "schedulerName": "default-scheduler",
            "securityContext": {}
        }
    })
}

fn owner(kind: &str, name: &str, uid: &str) -> Value {
    json!([{
        "apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid,
        "controller": true, "blockOwnerDeletion": true
    }])
}

/// What `kubectl apply` left in last-applied-configuration (with kubectl's
/// trailing newline): the client's manifest, not the stored object.
fn last_applied(version: &str) -> String {
    let manifest = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "annotations": {"kubernetes.io/change-cause": format!("deploy {version}"), "team": "payments"},
            "name": DEPLOYMENT, "namespace": NAMESPACE
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {
                "metadata": {"labels": {"app": "checkout"}},
                "spec": {"containers": [
                    {"name": "checkout", "image": format!("{IMAGE}:{version}"), "ports": [{"name": "http", "containerPort": 8080}]},
                    {"name": "backstop", "image": SIDECAR_IMAGE, "ports": [{"name": "admin", "containerPort": 9464}]}
                ]}
            }
        }
    });
    format!("{manifest}\n")
}

fn deployment(
    name: &str,
    selector: Value,
    revision: i64,
    version: &str,
    live_hash: &str,
) -> Deployment {
    let available = |r: &str, m: String| {
        json!({"status": "True", "reason": r, "message": m,
               "lastUpdateTime": ago(300), "lastTransitionTime": ago(300)})
    };
    let mut annotations = json!({"deployment.kubernetes.io/revision": revision.to_string()});
    if name == DEPLOYMENT {
        annotations["kubectl.kubernetes.io/last-applied-configuration"] =
            json!(last_applied(version));
        annotations["kubernetes.io/change-cause"] = json!(format!("deploy {version}"));
        annotations["team"] = json!("payments");
    }
    let mut conditions = [
        available(
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
        ),
        available(
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{name}-{live_hash}\" has successfully progressed."),
        ),
    ];
    conditions[0]["type"] = json!("Available");
    conditions[1]["type"] = json!("Progressing");
    typed(json!({
        "metadata": {
            "name": name, "namespace": NAMESPACE, "generation": revision,
            "creationTimestamp": ago(30 * 86_400),
            "labels": selector.clone(),
            "annotations": annotations
        },
        "spec": {
            "replicas": 3, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": selector.clone()},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": template(version, selector)
        },
        "status": {
            "observedGeneration": revision, "replicas": 3, "updatedReplicas": 3,
            "readyReplicas": 3, "availableReplicas": 3, "conditions": conditions
        }
    }))
}

struct Rs<'a> {
    deployment: &'a str,
    deployment_uid: &'a str,
    labels: Value,
    hash: &'a str,
    revision: i64,
    version: &'a str,
    replicas: i32,
    age: i64,
}

fn replicaset(rs: Rs<'_>) -> ReplicaSet {
    let mut labels = rs.labels;
    labels["pod-template-hash"] = json!(rs.hash);
    let mut status = json!({"replicas": rs.replicas, "observedGeneration": 1});
    if rs.replicas > 0 {
        for field in ["fullyLabeledReplicas", "readyReplicas", "availableReplicas"] {
            status[field] = json!(rs.replicas);
        }
    }
    typed(json!({
        "metadata": {
            "name": format!("{}-{}", rs.deployment, rs.hash), "namespace": NAMESPACE,
            "creationTimestamp": ago(rs.age),
            "labels": labels.clone(),
            "annotations": {
                "deployment.kubernetes.io/revision": rs.revision.to_string(),
                "deployment.kubernetes.io/desired-replicas": "3",
                "deployment.kubernetes.io/max-replicas": "4",
                "kubernetes.io/change-cause": format!("deploy {}", rs.version)
            },
            "ownerReferences": owner("Deployment", rs.deployment, rs.deployment_uid)
        },
        "spec": {
            "replicas": rs.replicas,
            "selector": {"matchLabels": labels.clone()},
            "template": template(rs.version, labels)
        },
        "status": status
    }))
}

fn pod(name: &str, revision: &Revision, ip: u8) -> Pod {
    let mut spec = template(&revision.version, json!({}))["spec"].clone();
    spec["nodeName"] = json!("node-1");
    let status = |container: &str, image: &str| {
        json!({
            "name": container, "image": image,
            "imageID": format!("{image}@sha256:{}", "0".repeat(64)),
            "containerID": format!("containerd://{name}-{container}"),
            "ready": true, "started": true, "restartCount": 0,
            "state": {"running": {"startedAt": ago(0)}}
        })
    };
    typed(json!({
        "metadata": {
            "name": name, "namespace": NAMESPACE,
            "generateName": format!("{}-", revision.replicaset),
            "labels": {"app": "checkout", "pod-template-hash": revision.hash},
            "ownerReferences": owner("ReplicaSet", &revision.replicaset, &revision.uid)
        },
        "spec": spec,
        "status": {
            "phase": "Running", "podIP": format!("10.0.0.{ip}"), "hostIP": "192.168.0.10",
            "startTime": ago(0), "qosClass": "BestEffort",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ago(0)}],
            // The kubelet reports containers sorted by name.
            "containerStatuses": [status("backstop", SIDECAR_IMAGE), status("checkout", &revision.image)]
        }
    }))
}

/// Build the cluster in `fake` and say what is where.
pub fn checkout_cluster(fake: &FakeKube) -> Fixture {
    let selector = json!({"app": "checkout"});
    let history = [
        (1, "7d9f8b6c5d", "1.41.0", 30 * 86_400),
        (2, "6c8d7f5b9a", "1.42.0", 2 * 86_400),
        (3, "5f7c9d8e4b", "1.43.0", 300),
    ];
    let live = history[2];
    let d = fake.put(deployment(
        DEPLOYMENT,
        selector.clone(),
        live.0,
        live.2,
        live.1,
    ));
    let deployment_uid = d.uid().expect("stored objects have uids");
    let revisions: Vec<Revision> = history
        .iter()
        .map(|&(number, hash, version, age)| {
            let rs = fake.put(replicaset(Rs {
                deployment: DEPLOYMENT,
                deployment_uid: &deployment_uid,
                labels: selector.clone(),
                hash,
                revision: number,
                version,
                replicas: if number == live.0 { 3 } else { 0 },
                age,
            }));
            Revision {
                number,
                replicaset: rs.name_any(),
                uid: rs.uid().expect("stored objects have uids"),
                hash: hash.to_string(),
                version: version.to_string(),
                image: format!("{IMAGE}:{version}"),
            }
        })
        .collect();

    let canary_labels = json!({"app": "checkout", "track": "canary"});
    let canary_hash = "6b7c8d9f5c";
    let canary = fake.put(deployment(
        "checkout-canary",
        canary_labels.clone(),
        2,
        "1.44.0-rc.1",
        canary_hash,
    ));
    let canary_uid = canary.uid().expect("stored objects have uids");
    let canary_rs = fake.put(replicaset(Rs {
        deployment: "checkout-canary",
        deployment_uid: &canary_uid,
        labels: canary_labels,
        hash: canary_hash,
        revision: 2,
        version: "1.44.0-rc.1",
        replicas: 1,
        age: 3600,
    }));

    let current = &revisions[2];
    let pods: Vec<Pod> = ["abcde", "fghij", "klmno"]
        .iter()
        .zip(11u8..)
        .map(|(suffix, ip)| {
            fake.put(pod(
                &format!("{}-{suffix}", current.replicaset),
                current,
                ip,
            ))
        })
        .collect();

    Fixture {
        namespace: NAMESPACE.to_string(),
        deployment: DEPLOYMENT.to_string(),
        deployment_uid,
        revisions,
        canary_deployment: canary.name_any(),
        canary_deployment_uid: canary_uid,
        canary_replicaset: canary_rs.name_any(),
        pods: pods.iter().map(ResourceExt::name_any).collect(),
        pod_uids: pods
            .iter()
            .map(|p| p.uid().expect("stored objects have uids"))
            .collect(),
        containers: ["checkout", "backstop"],
    }
}
