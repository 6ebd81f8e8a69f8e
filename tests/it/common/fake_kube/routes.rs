//! Which request is which: the paths the fake serves, the query parameters
//! it understands, and GET/LIST. Anything else is answered the way the real
//! server answers what it cannot serve, and marked unexpected.

use super::selector::Selector;
use super::status::ApiError;
use super::store::Kind;
use super::{Recorded, State, create, custom, patch};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The fake's answer to one request.
pub struct Reply {
    pub code: u16,
    pub body: Value,
    pub unexpected: Option<String>,
    /// `Warning` headers, as the server sends for dropped unknown fields.
    pub warnings: Vec<String>,
}

impl Reply {
    pub fn ok(code: u16, body: Value) -> Reply {
        Reply {
            code,
            body,
            unexpected: None,
            warnings: Vec::new(),
        }
    }

    /// A legitimate API error: the request was understood and refused.
    pub fn error(e: ApiError) -> Reply {
        Reply::ok(e.code, e.body())
    }

    /// A request the fake does not understand; the test will hear of it.
    pub fn unexpected(e: ApiError, why: impl Into<String>) -> Reply {
        Reply {
            unexpected: Some(why.into()),
            ..Reply::error(e)
        }
    }
}

enum Route {
    Collection(Kind, String),
    Item(Kind, String, String),
    AccessReview,
}

fn route(path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let (group, ns, rest) = match segments.as_slice() {
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
        ] => {
            return Some(Route::AccessReview);
        }
        ["api", "v1", "namespaces", ns, rest @ ..] => (("", "v1"), *ns, rest),
        ["apis", group, version, "namespaces", ns, rest @ ..] => ((*group, *version), *ns, rest),
        _ => return None,
    };
    let named = |s: &str| !s.is_empty();
    let kind = |plural| Kind::from_plural(group.0, group.1, plural);
    match rest {
        [plural] if named(ns) => Some(Route::Collection(kind(plural)?, ns.to_string())),
        [plural, name] if named(ns) && named(name) => {
            Some(Route::Item(kind(plural)?, ns.to_string(), name.to_string()))
        }
        _ => None,
    }
}

/// The operations the fake implements; anything else is unexpected.
enum Endpoint {
    Get(Kind, String, String),
    List(Kind, String),
    PatchDeployment(String, String),
    PatchCustom(Kind, String, String),
    CreateEvent(Kind, String),
    AccessReview,
}

impl Endpoint {
    fn of(method: &str, path: &str) -> Option<Endpoint> {
        use Kind::*;
        Some(match (method, route(path)?) {
            ("GET", Route::Item(k @ (Pod | ReplicaSet | Deployment), ns, name)) => {
                Endpoint::Get(k, ns, name)
            }
            ("GET", Route::Item(k, ns, name)) if k.custom() => Endpoint::Get(k, ns, name),
            ("PATCH", Route::Item(k, ns, name)) if k.custom() => Endpoint::PatchCustom(k, ns, name),
            ("GET", Route::Collection(k @ (Pod | ReplicaSet | Deployment), ns)) => {
                Endpoint::List(k, ns)
            }
            ("PATCH", Route::Item(Deployment, ns, name)) => Endpoint::PatchDeployment(ns, name),
            ("POST", Route::Collection(k @ (Event | EventV1), ns)) => Endpoint::CreateEvent(k, ns),
            ("POST", Route::AccessReview) => Endpoint::AccessReview,
            _ => return None,
        })
    }

    /// Query parameters the fake honours (or may safely ignore) here. Any
    /// other one changes the meaning of the request (`fieldSelector`,
    /// `limit`, `dryRun`, ...), so it is refused rather than ignored.
    fn parameters(&self) -> &'static [&'static str] {
        match self {
            Endpoint::Get(..) => &["resourceVersion"],
            Endpoint::List(..) => &[
                "labelSelector",
                "resourceVersion",
                "resourceVersionMatch",
                "timeoutSeconds",
            ],
            _ => &["fieldManager", "fieldValidation"],
        }
    }
}

pub fn handle(state: &mut State, req: &Recorded) -> Reply {
    let query: Vec<(String, String)> = url::form_urlencoded::parse(req.query.as_bytes())
        .into_owned()
        .collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if matches!(param("watch"), Some("true" | "1")) {
        return Reply::unexpected(
            ApiError::new(400, "watch is not supported by the fake API server"),
            "a watch; backstop is meant to poll with one list per interval",
        );
    }
    let Some(endpoint) = Endpoint::of(&req.method, &req.path) else {
        return Reply::unexpected(
            ApiError::no_such_path(),
            format!("the fake does not serve {} {}", req.method, req.path),
        );
    };
    if let Some((k, _)) = query
        .iter()
        .find(|(k, _)| !endpoint.parameters().contains(&k.as_str()))
    {
        return Reply::unexpected(
            ApiError::new(
                400,
                format!("query parameter {k:?} is not supported by the fake API server"),
            ),
            format!("query parameter {k:?}, which the fake does not implement"),
        );
    }
    let validation = match param("fieldValidation") {
        None | Some("" | "Warn") => Validation::Warn,
        Some("Strict") => Validation::Strict,
        Some("Ignore") => Validation::Ignore,
        Some(other) => {
            return Reply::error(ApiError::new(
                400,
                format!(
                    "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
                ),
            ));
        }
    };
    match endpoint {
        Endpoint::Get(kind, ns, name) => get(state, kind, &ns, &name),
        Endpoint::List(kind, ns) => list(state, kind, &ns, param("labelSelector").unwrap_or("")),
        Endpoint::PatchDeployment(ns, name) => {
            patch::deployment(state, req, &ns, &name, validation)
        }
        Endpoint::PatchCustom(kind, ns, name) => custom::patch(state, req, kind, &ns, &name),
        Endpoint::CreateEvent(kind, ns) => create::event(state, req, kind, &ns, validation),
        Endpoint::AccessReview => create::access_review(state, req, validation),
    }
}

/// What to do with fields the target type does not have, as the real
/// server's `fieldValidation` parameter says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    Strict,
    Warn,
    Ignore,
}

fn get(state: &State, kind: Kind, ns: &str, name: &str) -> Reply {
    match state.store.get_json(kind, ns, name) {
        Some(object) => Reply::ok(200, object.clone()),
        None => Reply::error(ApiError::not_found(kind, name)),
    }
}

fn list(state: &State, kind: Kind, ns: &str, selector: &str) -> Reply {
    let selector = match Selector::parse(selector) {
        Ok(s) => s,
        Err(e) => {
            return Reply::error(ApiError::new(
                400,
                format!("unable to parse requirement: {e}"),
            ));
        }
    };
    let items = state
        .store
        .list_json(kind, ns, |object| selector.matches(&labels(object)));
    Reply::ok(
        200,
        json!({
            "apiVersion": kind.api_version(),
            "kind": format!("{}List", kind.kind()),
            "metadata": {"resourceVersion": state.store.resource_version()},
            "items": items,
        }),
    )
}

fn labels(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Dotted paths of fields in `sent` that do not survive a round trip
/// through the typed object `kept`: the fields the real server would call
/// unknown.
pub fn unknown_fields(sent: &Value, kept: &Value) -> Vec<String> {
    fn walk(sent: &Value, kept: &Value, at: &str, out: &mut Vec<String>) {
        match (sent, kept) {
            (Value::Object(s), Value::Object(k)) => {
                for (key, value) in s {
                    let here = if at.is_empty() {
                        key.clone()
                    } else {
                        format!("{at}.{key}")
                    };
                    match k.get(key) {
                        Some(kv) => walk(value, kv, &here, out),
                        None if value.is_null() => {}
                        None => out.push(here),
                    }
                }
            }
            (Value::Array(s), Value::Array(k)) => {
                for (i, (sv, kv)) in s.iter().zip(k).enumerate() {
                    walk(sv, kv, &format!("{at}[{i}]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(sent, kept, "", &mut out);
    out
}
