//! `POST`s: core/v1 and events.k8s.io/v1 Events (validated like the real
//! server, a little stricter where a sloppy Event would be useless to a
//! person running `kubectl describe`), and SelfSubjectAccessReviews
//! answered from the test's deny list.

use super::routes::{Reply, Validation, unknown_fields};
use super::status::ApiError;
use super::store::{Kind, new_uid, now, text};
use super::{Recorded, State};
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

type Causes = Vec<(String, String)>;

/// Decode a POST body as `T`, checking apiVersion/kind and unknown fields.
/// Returns the object as the typed round trip keeps it, and any warnings.
fn decode<T: Serialize + DeserializeOwned>(
    req: &Recorded,
    api_version: &str,
    kind: &str,
    validation: Validation,
    check: impl FnOnce(&Value) -> Result<(), ApiError>,
) -> Result<(Value, Vec<String>), Reply> {
    let bad = |m: String| Reply::error(ApiError::new(400, m));
    let mut body: Value = match serde_json::from_str(&req.body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return Err(bad("the request body is not a JSON object".into())),
        Err(e) => return Err(bad(format!("couldn't decode the request body: {e}"))),
    };
    for (field, want) in [("apiVersion", api_version), ("kind", kind)] {
        let got = text(&body, &format!("/{field}"));
        if !got.is_empty() && got != want {
            return Err(bad(format!(
                "the {field} in the data ({got}) does not match the expected {field} ({want})"
            )));
        }
        body[field] = json!(want);
    }
    // Validation reads the raw body: fields the typed object requires would
    // otherwise fail decoding before they could be reported as 422.
    check(&body).map_err(Reply::error)?;
    let typed: T = serde_json::from_value(body.clone())
        .map_err(|e| bad(format!("couldn't decode the request body as {kind}: {e}")))?;
    let kept = serde_json::to_value(&typed).expect("k8s-openapi objects serialize");
    let unknown = unknown_fields(&body, &kept);
    if unknown.is_empty() || validation == Validation::Ignore {
        return Ok((kept, Vec::new()));
    }
    if validation == Validation::Strict {
        return Err(bad(format!(
            "strict decoding error: unknown field {:?}",
            unknown.join("\", \"")
        )));
    }
    Ok((
        kept,
        unknown
            .iter()
            .map(|f| format!("unknown field {f:?}"))
            .collect(),
    ))
}

pub fn event(
    state: &mut State,
    req: &Recorded,
    kind: Kind,
    ns: &str,
    validation: Validation,
) -> Reply {
    let check = |body: &Value| {
        let given = text(body, "/metadata/namespace");
        if !given.is_empty() && given != ns {
            return Err(ApiError::new(
                400,
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let causes = match kind {
            Kind::EventV1 => event_v1_causes(body, ns),
            _ => core_event_causes(body, ns),
        };
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(
                kind,
                text(body, "/metadata/name"),
                &causes,
            ))
        }
    };
    let decoded = match kind {
        Kind::EventV1 => decode::<k8s_openapi::api::events::v1::Event>(
            req,
            kind.api_version(),
            "Event",
            validation,
            check,
        ),
        _ => decode::<k8s_openapi::api::core::v1::Event>(
            req,
            kind.api_version(),
            "Event",
            validation,
            check,
        ),
    };
    let (mut object, warnings) = match decoded {
        Ok(d) => d,
        Err(reply) => return reply,
    };
    if !text(&object, "/metadata/resourceVersion").is_empty() {
        // The storage layer's answer, not a validation error.
        return Reply::error(ApiError::new(
            500,
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let mut name = text(&object, "/metadata/name").to_string();
    if name.is_empty() {
        let prefix = text(&object, "/metadata/generateName").to_string();
        name = loop {
            let candidate = format!("{prefix}{}", random_suffix());
            if state.store.get_json(kind, ns, &candidate).is_none() {
                break candidate;
            }
        };
    }
    if state.store.get_json(kind, ns, &name).is_some() {
        return Reply::error(ApiError::already_exists(kind, &name));
    }
    let meta = &mut object["metadata"];
    meta["name"] = json!(name);
    meta["namespace"] = json!(ns);
    meta["uid"] = json!(new_uid());
    meta["creationTimestamp"] = now();
    let saved = state.store.write_json(kind, object);
    Reply {
        unexpected: (!warnings.is_empty())
            .then(|| format!("an Event with unknown fields: {warnings:?}")),
        warnings,
        ..Reply::ok(201, saved)
    }
}

/// Five characters from the alphabet the real name generator uses (no
/// vowels, so no accidental words).
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn required(causes: &mut Causes, body: &Value, pointer: &str, field: &str) {
    if text(body, pointer).is_empty() {
        causes.push((field.to_string(), "Required value".to_string()));
    }
}

fn at_most(causes: &mut Causes, body: &Value, pointer: &str, field: &str, limit: usize) {
    if text(body, pointer).len() > limit {
        causes.push((
            field.to_string(),
            format!("Invalid value: \"\": can have at most {limit} characters"),
        ));
    }
}

fn name_causes(causes: &mut Causes, body: &Value) {
    if text(body, "/metadata/name").is_empty() && text(body, "/metadata/generateName").is_empty() {
        causes.push((
            "metadata.name".into(),
            "Required value: name or generateName is required".into(),
        ));
    }
}

/// The involved object's namespace must be the Event's, or empty only for
/// an Event in `default` (about a cluster-scoped object).
fn object_namespace(causes: &mut Causes, body: &Value, object: &str, ns: &str) {
    let theirs = text(body, &format!("/{object}/namespace"));
    if (theirs.is_empty() && ns != "default") || (!theirs.is_empty() && theirs != ns) {
        causes.push((
            format!("{object}.namespace"),
            format!("Invalid value: {theirs:?}: does not match event.namespace"),
        ));
    }
    for field in ["kind", "name"] {
        required(
            causes,
            body,
            &format!("/{object}/{field}"),
            &format!("{object}.{field}"),
        );
    }
}

fn event_type(causes: &mut Causes, body: &Value) {
    let t = text(body, "/type");
    if t != "Normal" && t != "Warning" {
        causes.push((
            "type".into(),
            format!("Unsupported value: {t:?}: supported values: \"Normal\", \"Warning\""),
        ));
    }
}

/// core/v1: the real legacy rules, plus reason, message and type always
/// required (the real server lets those through; nobody can read such an
/// Event).
fn core_event_causes(body: &Value, ns: &str) -> Causes {
    let mut causes = Vec::new();
    name_causes(&mut causes, body);
    object_namespace(&mut causes, body, "involvedObject", ns);
    required(&mut causes, body, "/reason", "reason");
    required(&mut causes, body, "/message", "message");
    event_type(&mut causes, body);
    at_most(&mut causes, body, "/reason", "reason", 128);
    if body.get("eventTime").is_some_and(|t| !t.is_null()) {
        // A "new-style" Event sent through the old API: the real server
        // then wants the reporting fields as well.
        required(
            &mut causes,
            body,
            "/reportingComponent",
            "reportingComponent",
        );
        required(&mut causes, body, "/reportingInstance", "reportingInstance");
        required(&mut causes, body, "/action", "action");
        at_most(
            &mut causes,
            body,
            "/reportingInstance",
            "reportingInstance",
            128,
        );
        at_most(&mut causes, body, "/action", "action", 128);
        at_most(&mut causes, body, "/message", "message", 1024);
    }
    causes
}

/// events.k8s.io/v1: the real strict rules.
fn event_v1_causes(body: &Value, ns: &str) -> Causes {
    let mut causes = Vec::new();
    name_causes(&mut causes, body);
    let name = text(body, "/metadata/name");
    if !name.is_empty() && !dns_subdomain(name) {
        causes.push((
            "metadata.name".into(),
            format!("Invalid value: {name:?}: must be a lowercase RFC 1123 subdomain"),
        ));
    }
    object_namespace(&mut causes, body, "regarding", ns);
    for field in [
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
        "eventTime",
    ] {
        required(&mut causes, body, &format!("/{field}"), field);
    }
    event_type(&mut causes, body);
    at_most(
        &mut causes,
        body,
        "/reportingInstance",
        "reportingInstance",
        128,
    );
    at_most(&mut causes, body, "/action", "action", 128);
    at_most(&mut causes, body, "/reason", "reason", 128);
    at_most(&mut causes, body, "/note", "note", 1024);
    for old in [
        "deprecatedFirstTimestamp",
        "deprecatedLastTimestamp",
        "deprecatedCount",
        "deprecatedSource",
    ] {
        if body.get(old).is_some_and(|v| !v.is_null()) {
            causes.push((
                old.to_string(),
                "Invalid value: \"\": needs to be unset".into(),
            ));
        }
    }
    causes
}

fn dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

pub fn access_review(state: &mut State, req: &Recorded, validation: Validation) -> Reply {
    let check = |body: &Value| {
        let has = |p: &str| body.pointer(p).is_some_and(|v| !v.is_null());
        if has("/spec/resourceAttributes") == has("/spec/nonResourceAttributes") {
            let cause = (
                "spec.resourceAttributes".to_string(),
                "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified".to_string(),
            );
            return Err(ApiError::invalid_of(
                "SelfSubjectAccessReview",
                "authorization.k8s.io",
                "",
                &[cause],
            ));
        }
        Ok(())
    };
    let (mut object, warnings) = match decode::<SelfSubjectAccessReview>(
        req,
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        validation,
        check,
    ) {
        Ok(d) => d,
        Err(reply) => return reply,
    };
    let attr = |f: &str| text(&object, &format!("/spec/resourceAttributes/{f}")).to_string();
    let resource = match attr("subresource").as_str() {
        "" => attr("resource"),
        sub => format!("{}/{sub}", attr("resource")),
    };
    let some_or_any = |want: &Option<String>, got: String| want.as_ref().is_none_or(|w| *w == got);
    let denied = state.denials.iter().find(|d| {
        (d.verb == "*" || d.verb == attr("verb"))
            && d.resource == resource
            && some_or_any(&d.group, attr("group"))
            && some_or_any(&d.namespace, attr("namespace"))
            && some_or_any(&d.name, attr("name"))
    });
    object["status"] = match denied {
        None => json!({"allowed": true}),
        Some(d) => json!({
            "allowed": false,
            "reason": format!("RBAC: the test denied {:?} on {:?}", d.verb, d.resource),
        }),
    };
    Reply {
        unexpected: (!warnings.is_empty())
            .then(|| format!("an access review with unknown fields: {warnings:?}")),
        warnings,
        ..Reply::ok(201, object)
    }
}
