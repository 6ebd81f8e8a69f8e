//! Rollbacks that stick under GitOps. Argo CD and Flux put the Git state
//! back within seconds of a rollback, and the bad release with it, so
//! before the undo (`rollback.kubernetes.gitops: suspend`) backstop stops
//! the owner's automatic sync: Flux's `spec.suspend: true`, or Argo CD's
//! `spec.syncPolicy.automated` removed (the rest kept). When it may not,
//! it does not roll back into a fight: it refuses, and the page says why.
//! Owners are read and written through `kube`'s dynamic API.

use crate::config::{GitOps, Kubernetes};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

pub const ARGO_TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";
pub const ARGO_INSTANCE: &str = "app.kubernetes.io/instance";
const FLUX_KUSTOMIZATION: &str = "kustomize.toolkit.fluxcd.io";
const FLUX_HELM: &str = "helm.toolkit.fluxcd.io";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ArgoApplication,
    FluxKustomization,
    FluxHelmRelease,
}

impl Kind {
    pub fn resource(self) -> ApiResource {
        let (group, version, kind, plural) = match self {
            Kind::ArgoApplication => ("argoproj.io", "v1alpha1", "Application", "applications"),
            Kind::FluxKustomization => {
                (FLUX_KUSTOMIZATION, "v1", "Kustomization", "kustomizations")
            }
            Kind::FluxHelmRelease => (FLUX_HELM, "v2", "HelmRelease", "helmreleases"),
        };
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }

    fn title(self) -> &'static str {
        match self {
            Kind::ArgoApplication => "Argo CD Application",
            Kind::FluxKustomization => "Flux Kustomization",
            Kind::FluxHelmRelease => "Flux HelmRelease",
        }
    }
}

/// Who syncs the Deployment from Git, as its labels and annotations say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    /// Only the `app.kubernetes.io/instance` label says so, which Helm
    /// charts set too: it is Argo CD's only if the Application exists.
    pub guessed: bool,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind.title(), self.namespace, self.name)
    }
}

/// The owner the Deployment's metadata names, if any; an Argo CD
/// Application named without a namespace is looked for in `argocd_namespace`.
pub fn owner(d: &Deployment, argocd_namespace: &str) -> Option<Owner> {
    let labels = d.metadata.labels.clone().unwrap_or_default();
    let annotations = d.metadata.annotations.clone().unwrap_or_default();
    for (group, kind) in [
        (FLUX_KUSTOMIZATION, Kind::FluxKustomization),
        (FLUX_HELM, Kind::FluxHelmRelease),
    ] {
        let name = labels.get(&format!("{group}/name"));
        let namespace = labels.get(&format!("{group}/namespace"));
        if let (Some(name), Some(namespace)) = (name, namespace) {
            let (name, namespace) = (name.clone(), namespace.clone());
            return Some(Owner {
                kind,
                namespace,
                name,
                guessed: false,
            });
        }
    }
    // `<app>:<group>/<kind>:<namespace>/<name>`; `<app>` is
    // `<namespace>_<name>` for Applications outside Argo CD's namespace.
    let argo = |app: &str, guessed| {
        let (namespace, name) = app.split_once('_').unwrap_or((argocd_namespace, app));
        Some(Owner {
            kind: Kind::ArgoApplication,
            namespace: namespace.to_string(),
            name: name.to_string(),
            guessed,
        })
    };
    if let Some(id) = annotations.get(ARGO_TRACKING_ID) {
        let app = id.split(':').next().unwrap_or_default();
        if !app.is_empty() {
            return argo(app, false);
        }
    }
    labels.get(ARGO_INSTANCE).and_then(|app| argo(app, true))
}

/// What GitOps allows before the undo.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Roll back; the note (what was suspended and how to resume it, or
    /// why nothing was) goes into the record, the Event and the page.
    Clear(Option<String>),
    /// Do not: the owner would undo it, and this says why.
    Refuse(String),
}

/// Decide, and with `suspend` stop the owner's sync, before `deployment`
/// is rolled back. A conflict (the owner changed between read and write,
/// a sync racing) comes back as the 409 error, which makes the caller
/// re-read everything and decide again.
pub async fn before_rollback(
    client: &kube::Client,
    config: &Kubernetes,
    deployment: &Deployment,
    dry_run: bool,
) -> Result<Gate, kube::Error> {
    let mode = config.gitops;
    if mode == GitOps::Ignore {
        return Ok(Gate::Clear(None));
    }
    let Some(owner) = owner(deployment, &config.argocd_namespace) else {
        return Ok(Gate::Clear(None));
    };
    let ns = deployment.metadata.namespace.as_deref().unwrap_or_default();
    let target = format!(
        "Deployment {ns}/{}",
        deployment.metadata.name.as_deref().unwrap_or_default()
    );
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &owner.namespace, &owner.kind.resource());
    let object = match api.get(&owner.name).await {
        Ok(o) => o,
        Err(kube::Error::Api(s)) if s.code == 404 && owner.guessed => return Ok(Gate::Clear(None)),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Ok(Gate::Clear(Some(format!(
                "{target} names {owner} as its owner, which does not exist: nothing to suspend"
            ))));
        }
        Err(kube::Error::Api(s)) if s.code == 403 => {
            return Ok(Gate::Refuse(format!(
                "{target} may be synced by {owner}, which backstop may not read ({}): not \
                 rolled back, since a sync would undo it. Grant get and patch on it (k8s/gitops-rbac) \
                 or set rollback.kubernetes.gitops to ignore",
                s.message
            )));
        }
        Err(e) => return Err(e),
    };
    let syncing = match owner.kind {
        Kind::ArgoApplication => object.data.pointer("/spec/syncPolicy/automated").is_some(),
        Kind::FluxKustomization | Kind::FluxHelmRelease => {
            object.data.pointer("/spec/suspend") != Some(&json!(true))
        }
    };
    let flux_resume =
        |what: &str| format!("flux resume {what} {} -n {}", owner.name, owner.namespace);
    if !syncing {
        let resume = match owner.kind {
            Kind::ArgoApplication => String::new(),
            Kind::FluxKustomization => format!(
                "; resume it once Git is fixed: {}",
                flux_resume("kustomization")
            ),
            Kind::FluxHelmRelease => format!(
                "; resume it once Git is fixed: {}",
                flux_resume("helmrelease")
            ),
        };
        return Ok(Gate::Clear(Some(format!(
            "{owner} manages {target} but does not sync it automatically now: nothing to suspend{resume}"
        ))));
    }
    if mode == GitOps::Page {
        return Ok(Gate::Refuse(format!(
            "{target} is synced from Git by {owner}, and rollback.kubernetes.gitops is page: \
             not rolled back. Fix or revert the release in Git"
        )));
    }
    if dry_run {
        return Ok(Gate::Clear(Some(format!("would suspend {owner} first"))));
    }
    let version = object.metadata.resource_version.clone();
    let (patch, resume) = match owner.kind {
        Kind::ArgoApplication => {
            let automated = object.data.pointer("/spec/syncPolicy/automated").cloned();
            let restore =
                json!({"spec": {"syncPolicy": {"automated": automated.unwrap_or(Value::Null)}}});
            (
                json!([
                    { "op": "replace", "path": "/metadata/resourceVersion", "value": version },
                    { "op": "remove", "path": "/spec/syncPolicy/automated" },
                ]),
                format!(
                    "kubectl -n {} patch applications.argoproj.io {} --type merge -p '{restore}'",
                    owner.namespace, owner.name
                ),
            )
        }
        Kind::FluxKustomization | Kind::FluxHelmRelease => {
            let what = if owner.kind == Kind::FluxKustomization {
                "kustomization"
            } else {
                "helmrelease"
            };
            (
                json!([
                    { "op": "replace", "path": "/metadata/resourceVersion", "value": version },
                    { "op": "add", "path": "/spec/suspend", "value": true },
                ]),
                flux_resume(what),
            )
        }
    };
    let patch: json_patch::Patch =
        serde_json::from_value(patch).map_err(kube::Error::SerdeError)?;
    match api
        .patch(
            &owner.name,
            &PatchParams::default(),
            &Patch::<()>::Json(patch),
        )
        .await
    {
        Ok(_) => Ok(Gate::Clear(Some(format!(
            "suspended {owner} first, so that its next sync does not undo the rollback; \
             once the release is fixed in Git, resume it: {resume}"
        )))),
        Err(kube::Error::Api(s)) if s.code == 403 => Ok(Gate::Refuse(format!(
            "{target} is synced from Git by {owner}, and backstop may not suspend it ({}): not \
             rolled back, since the next sync would undo it. Grant patch on it (k8s/gitops-rbac) \
             or set rollback.kubernetes.gitops to page",
            s.message
        ))),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Deployment {
        let map = |kv: &[(&str, &str)]| {
            Some(
                kv.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let mut d = Deployment::default();
        d.metadata.labels = map(labels);
        d.metadata.annotations = map(annotations);
        d
    }

    fn owned(kind: Kind, namespace: &str, name: &str, guessed: bool) -> Option<Owner> {
        Some(Owner {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            guessed,
        })
    }

    #[test]
    fn owners_are_read_from_labels_and_annotations() {
        let flux = deployment(
            &[
                ("kustomize.toolkit.fluxcd.io/name", "apps"),
                ("kustomize.toolkit.fluxcd.io/namespace", "flux-system"),
            ],
            &[],
        );
        assert_eq!(
            owner(&flux, "argocd"),
            owned(Kind::FluxKustomization, "flux-system", "apps", false)
        );
        let helm = deployment(
            &[
                ("helm.toolkit.fluxcd.io/name", "checkout"),
                ("helm.toolkit.fluxcd.io/namespace", "shop"),
            ],
            &[],
        );
        assert_eq!(
            owner(&helm, "argocd"),
            owned(Kind::FluxHelmRelease, "shop", "checkout", false)
        );
        let tracked = deployment(
            &[("app.kubernetes.io/instance", "other")],
            &[(ARGO_TRACKING_ID, "checkout:apps/Deployment:shop/checkout")],
        );
        assert_eq!(
            owner(&tracked, "argocd"),
            owned(Kind::ArgoApplication, "argocd", "checkout", false)
        );
        let anywhere = deployment(
            &[],
            &[(
                ARGO_TRACKING_ID,
                "team-a_checkout:apps/Deployment:shop/checkout",
            )],
        );
        assert_eq!(
            owner(&anywhere, "argocd"),
            owned(Kind::ArgoApplication, "team-a", "checkout", false)
        );
        let label = deployment(&[("app.kubernetes.io/instance", "checkout")], &[]);
        assert_eq!(
            owner(&label, "argocd"),
            owned(Kind::ArgoApplication, "argocd", "checkout", true)
        );
        assert_eq!(
            owner(&label, "openshift-gitops"),
            owned(Kind::ArgoApplication, "openshift-gitops", "checkout", true)
        );
        // Half a Flux pair is no owner.
        let half = deployment(&[("kustomize.toolkit.fluxcd.io/name", "apps")], &[]);
        assert_eq!(owner(&half, "argocd"), None);
    }
}
