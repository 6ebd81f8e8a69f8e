//! `PATCH` of a Deployment with an RFC 6902 JSON patch, checked the way the
//! API server checks it: a failing `test` op or a bad path is 422, a
//! resourceVersion in the patched object that is not the stored one is a
//! 409 conflict (that is how optimistic concurrency works with JSON patch),
//! and the result must still be a Deployment with the same identity.

use super::routes::{Reply, Validation, unknown_fields};
use super::selector::{Requirement, Selector};
use super::status::ApiError;
use super::store::{Kind, text};
use super::{Recorded, State};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{Value, json};

const JSON_PATCH: &str = "application/json-patch+json";

pub fn deployment(
    state: &mut State,
    req: &Recorded,
    ns: &str,
    name: &str,
    validation: Validation,
) -> Reply {
    // Media type parameters (`; charset=utf-8`) do not change the patch type.
    let media = req
        .content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .map(str::trim);
    if media != Some(JSON_PATCH) {
        let message = format!(
            "the body of the request was in an unknown format - accepted media types include: \
             {JSON_PATCH} (the only patch type the fake implements)"
        );
        let why = format!(
            "a patch of type {}, not {JSON_PATCH}",
            media.unwrap_or("(none)")
        );
        return Reply::unexpected(ApiError::new(415, message), why);
    }
    let operations: json_patch::Patch = match serde_json::from_str(&req.body) {
        Ok(p) => p,
        Err(e) => return Reply::error(ApiError::new(400, format!("error decoding patch: {e}"))),
    };
    // Another writer gets in between this client's read and its write.
    if let Some(hook) = state.on_patch.as_mut() {
        hook(&mut state.store);
    }
    let Some(stored) = state.store.get_json(Kind::Deployment, ns, name).cloned() else {
        return Reply::error(ApiError::not_found(Kind::Deployment, name));
    };
    let (mut result, unknown) = match apply(&stored, &operations, name) {
        Ok(applied) => applied,
        Err(e) => return Reply::error(e),
    };
    let mut reply = Reply::ok(200, Value::Null);
    if !unknown.is_empty() {
        match validation {
            Validation::Strict => {
                let causes: Vec<_> = unknown
                    .iter()
                    .map(|f| {
                        (
                            f.clone(),
                            "strict decoding error: unknown field".to_string(),
                        )
                    })
                    .collect();
                return Reply::error(ApiError::invalid(Kind::Deployment, name, &causes));
            }
            // The real server drops them with a warning; the fake does the
            // same but also reports it, since a client that patches a field
            // that does not exist has a bug that does nothing in production.
            Validation::Warn => {
                reply.warnings = unknown
                    .iter()
                    .map(|f| format!("unknown field {f:?}"))
                    .collect();
                reply.unexpected = Some(format!("a patch that sets unknown fields {unknown:?}"));
            }
            Validation::Ignore => {}
        }
    }
    finish_update(&stored, &mut result);
    reply.body = state.store.write_json(Kind::Deployment, result);
    state
        .patches
        .push(serde_json::from_str(&req.body).unwrap_or(Value::Null));
    reply
}

/// Apply the operations and check the outcome the way the server does, in
/// its order: the patch must apply (else 422), its resourceVersion must be
/// the stored one (else 409), and the result must be a valid Deployment
/// with the same identity (else 422). Returns the object as a Deployment
/// keeps it and the fields it dropped as unknown.
fn apply(
    stored: &Value,
    operations: &json_patch::Patch,
    name: &str,
) -> Result<(Value, Vec<String>), ApiError> {
    let kind = Kind::Deployment;
    let mut patched = stored.clone();
    // A patch that does not apply says nothing about the object, only why.
    json_patch::patch(&mut patched, operations).map_err(|e| ApiError::new(422, e.to_string()))?;
    let sent_version = text(&patched, "/metadata/resourceVersion");
    if !sent_version.is_empty() && sent_version != text(stored, "/metadata/resourceVersion") {
        return Err(ApiError::conflict(kind, name));
    }
    let mut causes = Vec::new();
    for (pointer, field) in [
        ("/metadata/name", "metadata.name"),
        ("/metadata/namespace", "metadata.namespace"),
        ("/metadata/uid", "metadata.uid"),
        ("/apiVersion", "apiVersion"),
        ("/kind", "kind"),
    ] {
        let (before, after) = (text(stored, pointer), text(&patched, pointer));
        if before != after {
            let message = format!("Invalid value: {after:?}: field is immutable (was {before:?})");
            causes.push((field.to_string(), message));
        }
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(kind, name, &causes));
    }
    let typed: Deployment = serde_json::from_value(patched.clone()).map_err(|e| {
        let message = format!("Invalid value: the patched object is not a Deployment: {e}");
        ApiError::invalid(kind, name, &[("patch".to_string(), message)])
    })?;
    let before: Deployment =
        serde_json::from_value(stored.clone()).expect("stored Deployments are valid");
    let causes = validate(&before, &typed);
    if !causes.is_empty() {
        return Err(ApiError::invalid(kind, name, &causes));
    }
    let kept = serde_json::to_value(&typed).expect("a Deployment serializes");
    let unknown = unknown_fields(&patched, &kept);
    Ok((kept, unknown))
}

/// What the server owns in an update: status cannot change through the main
/// resource, creationTimestamp and generation are kept, and generation moves
/// on when spec or annotations change (the Deployment strategy's rule,
/// since annotations are copied to ReplicaSets).
fn finish_update(stored: &Value, result: &mut Value) {
    match stored.get("status") {
        Some(s) => result["status"] = s.clone(),
        None => {
            if let Some(o) = result.as_object_mut() {
                o.remove("status");
            }
        }
    }
    result["metadata"]["creationTimestamp"] = stored["metadata"]["creationTimestamp"].clone();
    let generation = stored["metadata"]["generation"].as_i64().unwrap_or(1);
    // An empty map and no map are the same to the server's semantic equality.
    let annotations = |v: &Value| {
        v.pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty())
            .cloned()
    };
    let changed =
        stored.get("spec") != result.get("spec") || annotations(stored) != annotations(result);
    result["metadata"]["generation"] = json!(if changed { generation + 1 } else { generation });
}

/// The parts of the real Deployment validation a rollback can trip over.
/// Decoding alone is lenient (a removed required field decodes as empty),
/// so these are checked on the typed object, as the server does.
fn validate(before: &Deployment, after: &Deployment) -> Vec<(String, String)> {
    let mut causes = Vec::new();
    let mut cause = |field: &str, message: String| causes.push((field.to_string(), message));
    let Some(spec) = after.spec.as_ref() else {
        cause("spec", "Required value".into());
        return causes;
    };
    let selector = requirements(&spec.selector);
    if selector.0.is_empty() {
        cause("spec.selector", "Required value".into());
    } else if before.spec.as_ref().map(|s| &s.selector) != Some(&spec.selector) {
        // apps/v1 made the selector immutable.
        cause("spec.selector", "Invalid value: field is immutable".into());
    }
    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if !selector.0.is_empty() && !selector.matches(&template_labels) {
        cause(
            "spec.template.metadata.labels",
            format!(
                "Invalid value: {template_labels:?}: `selector` does not match template `labels`"
            ),
        );
    }
    if spec.replicas.is_some_and(|r| r < 0) {
        cause(
            "spec.replicas",
            "Invalid value: must be greater than or equal to 0".into(),
        );
    }
    let containers = spec
        .template
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    if containers.is_empty() {
        cause("spec.template.spec.containers", "Required value".into());
    }
    for (i, c) in containers.iter().enumerate() {
        if c.name.is_empty() {
            cause(
                &format!("spec.template.spec.containers[{i}].name"),
                "Required value".into(),
            );
        } else if containers[..i].iter().any(|o| o.name == c.name) {
            cause(
                &format!("spec.template.spec.containers[{i}].name"),
                format!("Duplicate value: {:?}", c.name),
            );
        }
        if c.image.as_deref().unwrap_or("").is_empty() {
            cause(
                &format!("spec.template.spec.containers[{i}].image"),
                "Required value".into(),
            );
        }
    }
    causes
}

fn requirements(selector: &LabelSelector) -> Selector {
    let mut all: Vec<Requirement> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| Requirement::Equals(k.clone(), v.clone()))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let (key, values) = (e.key.clone(), e.values.clone().unwrap_or_default());
        all.push(match e.operator.as_str() {
            "In" => Requirement::In(key, values),
            "NotIn" => Requirement::NotIn(key, values),
            "Exists" => Requirement::Exists(key),
            "DoesNotExist" => Requirement::DoesNotExist(key),
            // The real server refuses to store such a selector; selecting
            // nothing is the closest the fake can do without it.
            _ => Requirement::In(key, Vec::new()),
        });
    }
    Selector(all)
}
