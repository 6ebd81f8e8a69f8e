//! `PATCH` of a custom resource (Argo CD Application, Flux Kustomization
//! or HelmRelease) with an RFC 6902 JSON patch, checked as the API server
//! checks one: the patch must apply (else 422), a resourceVersion in the
//! result that is not the stored one is a 409 conflict, identity fields
//! are immutable, and the fields backstop writes must keep their schema's
//! type (`spec.suspend` a boolean, `spec.syncPolicy` an object).

use super::routes::Reply;
use super::status::ApiError;
use super::store::{Kind, text};
use super::{Recorded, State};
use serde_json::{Value, json};

const JSON_PATCH: &str = "application/json-patch+json";

pub fn patch(state: &mut State, req: &Recorded, kind: Kind, ns: &str, name: &str) -> Reply {
    let media = req
        .content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .map(str::trim);
    if media != Some(JSON_PATCH) {
        let why = format!(
            "a patch of type {}, not {JSON_PATCH}",
            media.unwrap_or("(none)")
        );
        let message = format!("the fake implements only {JSON_PATCH} for custom resources");
        return Reply::unexpected(ApiError::new(415, message), why);
    }
    let operations: json_patch::Patch = match serde_json::from_str(&req.body) {
        Ok(p) => p,
        Err(e) => return Reply::error(ApiError::new(400, format!("error decoding patch: {e}"))),
    };
    if let Some(hook) = state.on_patch.as_mut() {
        hook(&mut state.store);
    }
    let Some(stored) = state.store.get_json(kind, ns, name).cloned() else {
        return Reply::error(ApiError::not_found(kind, name));
    };
    let mut patched = stored.clone();
    if let Err(e) = json_patch::patch(&mut patched, &operations) {
        return Reply::error(ApiError::new(422, e.to_string()));
    }
    let sent = text(&patched, "/metadata/resourceVersion");
    if !sent.is_empty() && sent != text(&stored, "/metadata/resourceVersion") {
        return Reply::error(ApiError::conflict(kind, name));
    }
    let mut causes = Vec::new();
    for (pointer, field) in [
        ("/metadata/name", "metadata.name"),
        ("/metadata/namespace", "metadata.namespace"),
        ("/metadata/uid", "metadata.uid"),
        ("/apiVersion", "apiVersion"),
        ("/kind", "kind"),
    ] {
        if text(&stored, pointer) != text(&patched, pointer) {
            causes.push((
                field.to_string(),
                "Invalid value: field is immutable".to_string(),
            ));
        }
    }
    let typed = |pointer: &str, ok: fn(&Value) -> bool, what: &str, causes: &mut Vec<_>| {
        if let Some(v) = patched.pointer(pointer)
            && !ok(v)
        {
            causes.push((
                pointer.trim_start_matches('/').replace('/', "."),
                format!("Invalid value: {v}: must be {what}"),
            ));
        }
    };
    typed("/spec/suspend", Value::is_boolean, "a boolean", &mut causes);
    typed(
        "/spec/syncPolicy",
        Value::is_object,
        "an object",
        &mut causes,
    );
    typed(
        "/spec/syncPolicy/automated",
        Value::is_object,
        "an object",
        &mut causes,
    );
    if !causes.is_empty() {
        return Reply::error(ApiError::invalid(kind, name, &causes));
    }
    if stored.get("spec") != patched.get("spec") {
        let generation = stored["metadata"]["generation"].as_i64().unwrap_or(1);
        patched["metadata"]["generation"] = json!(generation + 1);
    }
    let body = state.store.write_json(kind, patched);
    state
        .patches
        .push(serde_json::from_str(&req.body).unwrap_or(Value::Null));
    Reply::ok(200, body)
}
