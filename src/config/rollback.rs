//! The `rollback` section: the guards, and the Kubernetes or webhook
//! backend, each checked with its path.

use std::time::Duration;

use serde_json::Value;

use super::error::{self, Problems};
use super::raw::{self, RawKubernetes, RawRollback, RawWebhook};
use super::types::{GitOps, Kubernetes, Rollback, RollbackBackend, Webhook};
use super::units::{self, Zero};
use super::validate::{DEFAULT_CONTAINER, DEFAULT_WEBHOOK_TIMEOUT};
use super::{targets, values};

const DEFAULT_BAKE: Duration = Duration::from_secs(30 * 60);
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(10 * 60);
const DEFAULT_KUBERNETES_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn rollback(p: &mut Problems, raw: &Option<RawRollback>) -> Option<Rollback> {
    let none = RawRollback::default();
    let r = raw.as_ref().unwrap_or(&none);
    raw::check_unknown(p, "rollback", r);
    let kubernetes = r.kubernetes.as_ref().map(|k| kubernetes(p, k));
    let webhook = r.webhook.as_ref().map(|w| webhook(p, w));
    if r.kubernetes.is_some() && r.webhook.is_some() {
        p.add("rollback", "set either kubernetes or webhook, not both");
    }
    let bake = units::duration_or(p, "rollback.bake", &r.bake, DEFAULT_BAKE, Zero::Forbidden);
    let cooldown = units::duration_or(
        p,
        "rollback.cooldown",
        &r.cooldown,
        DEFAULT_COOLDOWN,
        Zero::Allowed,
    );
    let dry_run = match &r.dry_run {
        Some(v) => units::boolean(p, "rollback.dry_run", v),
        None => Some(false),
    };
    let backend = match (webhook, kubernetes) {
        (Some(w), _) => Some(RollbackBackend::Webhook(w?)),
        (None, Some(k)) => Some(RollbackBackend::Kubernetes(k?)),
        (None, None) => None,
    };
    Some(Rollback {
        backend,
        bake: bake?,
        cooldown: cooldown?,
        dry_run: dry_run?,
    })
}

fn kubernetes(p: &mut Problems, k: &RawKubernetes) -> Option<Kubernetes> {
    let path = "rollback.kubernetes";
    raw::check_unknown(p, path, k);
    let mut ok = true;
    // Kubernetes object names are DNS subdomains: lower-case alphanumerics,
    // '-' and '.', starting and ending alphanumeric, at most 253 characters.
    let mut name = |field: &str, v: &Option<Value>| {
        let path = error::key(path, field);
        let got = values::text(p, &path, v.as_ref()?)?;
        let dns = !got.is_empty()
            && got.len() <= 253
            && got
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.'))
            && got.starts_with(|c: char| c.is_ascii_alphanumeric())
            && got.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !dns {
            p.add(
                &path,
                format!(
                    "{} is not a Kubernetes object name (lower-case letters, digits, '-' and '.')",
                    values::quote(got)
                ),
            );
            ok = false;
            return None;
        }
        Some(got.to_owned())
    };
    let deployment = name("deployment", &k.deployment);
    let namespace = name("namespace", &k.namespace);
    let argocd_namespace = name("argocd_namespace", &k.argocd_namespace);
    let timeout = units::duration_or(
        p,
        &error::key(path, "timeout"),
        &k.timeout,
        DEFAULT_KUBERNETES_TIMEOUT,
        Zero::Forbidden,
    );
    let container = match &k.container {
        Some(v) => values::container_name(p, &error::key(path, "container"), v),
        None => Some(DEFAULT_CONTAINER.to_owned()),
    };
    let token_file = k.token_file.as_ref().and_then(|v| {
        let path = error::key(path, "token_file");
        let file = values::text(p, &path, v)?;
        match values::secret_file(p, &path, v) {
            None => {
                ok = false;
                None
            }
            // The client sends the file as it is: a newline would make
            // every request's Authorization header invalid.
            Some(_) if std::fs::read(file).is_ok_and(|b| b.trim_ascii().len() != b.len()) => {
                p.add(
                    &path,
                    format!(
                        "the token in {file} has spaces or a newline around it, which would be \
                         sent as part of the token; mount the Secret's `token` key as it is"
                    ),
                );
                ok = false;
                None
            }
            Some(_) => Some(std::path::PathBuf::from(file)),
        }
    });
    let gitops = match &k.gitops {
        None => Some(GitOps::default()),
        Some(v) => {
            let path = error::key(path, "gitops");
            values::text(p, &path, v).and_then(|s| match s {
                "suspend" => Some(GitOps::Suspend),
                "page" => Some(GitOps::Page),
                "ignore" => Some(GitOps::Ignore),
                other => {
                    p.add(
                        &path,
                        format!(
                            "{} is not one of suspend, page, ignore",
                            values::quote(other)
                        ),
                    );
                    None
                }
            })
        }
    };
    ok.then_some(Kubernetes {
        deployment,
        namespace,
        timeout: timeout?,
        container: container?,
        token_file,
        gitops: gitops?,
        argocd_namespace: argocd_namespace.unwrap_or_else(|| "argocd".into()),
    })
}

fn webhook(p: &mut Problems, w: &RawWebhook) -> Option<Webhook> {
    let path = "rollback.webhook";
    raw::check_unknown(p, path, w);
    let url_path = error::key(path, "url");
    let url =
        values::required(p, &url_path, &w.url).and_then(|v| values::http_url(p, &url_path, v));
    let headers = targets::headers(p, path, &w.headers, &w.header_files);
    let timeout = units::duration_or(
        p,
        &error::key(path, "timeout"),
        &w.timeout,
        DEFAULT_WEBHOOK_TIMEOUT,
        Zero::Forbidden,
    );
    Some(Webhook {
        url: url?,
        headers: headers?,
        timeout: timeout?,
    })
}
