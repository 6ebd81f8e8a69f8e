//! Kubernetes Events on the Deployment: why backstop rolled it back, why
//! it would not, or why it cannot (page-only mode). Best effort: a failed Event is logged, never retried in a
//! way that delays the rollback report.

use super::{Connection, Identity};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, PostParams};

/// The API limits an Event's message to 1 KiB.
const MAX_MESSAGE: usize = 1024;

pub async fn record(ctx: &Connection, id: &Identity, reason: &str, kind: &str, message: &str) {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let mut message = message.to_string();
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE - 3;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str("...");
    }
    let event = Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}.backstop-", id.deployment)),
            namespace: Some(id.namespace.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some("Deployment".into()),
            name: Some(id.deployment.clone()),
            namespace: Some(id.namespace.clone()),
            uid: Some(id.deployment_uid.clone()),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(message),
        type_: Some(kind.into()),
        source: Some(EventSource {
            component: Some("backstop".into()),
            host: None,
        }),
        reporting_component: Some("backstop".into()),
        reporting_instance: Some(id.pod.clone()),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        ..Default::default()
    };
    let events: Api<Event> = Api::namespaced(ctx.client.clone(), &id.namespace);
    if let Err(e) = events.create(&PostParams::default(), &event).await {
        tracing::warn!(error = %e, reason, "could not record a Kubernetes Event on the Deployment");
    }
}
