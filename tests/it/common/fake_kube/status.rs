//! Error answers as the API server writes them: a `Status` object with the
//! reason, message and details a client may branch on, so `kube::Error::Api`
//! carries exactly what it would carry against a real cluster.

use super::store::Kind;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason: reason_for(code),
            message: message.into(),
            details: None,
        }
    }

    fn about(mut self, kind: Kind, name: &str) -> ApiError {
        self.details = Some(json!({"name": name, "group": kind.group(), "kind": kind.plural()}));
        self
    }

    pub fn not_found(kind: Kind, name: &str) -> ApiError {
        ApiError::new(404, format!("{} \"{name}\" not found", kind.resource())).about(kind, name)
    }

    /// The optimistic-concurrency failure, word for word as the real server
    /// says it, since some clients match on it.
    pub fn conflict(kind: Kind, name: &str) -> ApiError {
        ApiError::new(
            409,
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                kind.resource()
            ),
        )
        .about(kind, name)
    }

    pub fn already_exists(kind: Kind, name: &str) -> ApiError {
        let mut e = ApiError::new(
            409,
            format!("{} \"{name}\" already exists", kind.resource()),
        )
        .about(kind, name);
        e.reason = "AlreadyExists";
        e
    }

    /// Validation failures (422), one cause per field, in the real format:
    /// `Deployment.apps "checkout" is invalid: metadata.name: Invalid value: ...`.
    pub fn invalid(kind: Kind, name: &str, causes: &[(String, String)]) -> ApiError {
        ApiError::invalid_of(kind.kind(), kind.group(), name, causes)
    }

    /// [`ApiError::invalid`] for a kind the store does not keep.
    pub fn invalid_of(
        kind: &str,
        group: &str,
        name: &str,
        causes: &[(String, String)],
    ) -> ApiError {
        let listed: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let joined = match listed.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let qualified = match group {
            "" => kind.to_string(),
            g => format!("{kind}.{g}"),
        };
        let causes: Vec<Value> = causes
            .iter()
            .map(|(f, m)| json!({"reason": "FieldValueInvalid", "message": m, "field": f}))
            .collect();
        let mut e = ApiError::new(422, format!("{qualified} \"{name}\" is invalid: {joined}"));
        e.details = Some(json!({"name": name, "group": group, "kind": kind, "causes": causes}));
        e
    }

    /// What the server says for a path it does not serve.
    pub fn no_such_path() -> ApiError {
        ApiError::new(404, "the server could not find the requested resource")
    }

    pub fn body(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            status["details"] = d.clone();
        }
        status
    }
}

/// The `reason` the real server pairs with each status code.
pub fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "",
    }
}
