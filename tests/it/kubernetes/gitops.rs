//! Rollbacks that stick under GitOps: with `gitops: suspend` (the default)
//! the owner's automatic sync is stopped in the same decision and before
//! the undo (Flux: `spec.suspend`; Argo CD: `spec.syncPolicy.automated`
//! removed, the rest kept), and the record and the Event say how to resume
//! it; a refusal (403) means no rollback; `page` only pages. Owners are
//! custom resources the fake API server serves strictly.

use super::*;
use crate::common::fake_kube::Kind;
use serde_json::{Value, json};

/// The example configuration with `extra` added to `rollback.kubernetes`.
fn with_kubernetes(extra: &str) -> String {
    CONFIG.replace(
        "kubernetes: { deployment: checkout }",
        &format!("kubernetes: {{ deployment: checkout, {extra} }}"),
    )
}

/// A sidecar for the first pod under `yaml`, the app turned bad, and the
/// rollback's outcome.
async fn bad_release(fake: &FakeKube, app: &SampleApp, yaml: &str) -> (Daemon, ActionRecord) {
    let mut s = sidecar(fake, app, PODS[0], yaml).await.unwrap();
    app.set(Behaviour::Status(500));
    let r = rollback_outcome(&mut s).await;
    (s, r)
}

/// Stop the sidecar; the fake saw nothing it did not expect.
async fn done(s: Daemon, fake: &FakeKube) {
    s.shutdown().await;
    fake.assert_no_unexpected();
}

fn owned_by(fake: &FakeKube, labels: &[(&str, &str)], annotations: &[(&str, &str)]) {
    fake.modify(NS, "checkout", |d: &mut Deployment| {
        let l = d.metadata.labels.get_or_insert_default();
        for (k, v) in labels {
            l.insert(k.to_string(), v.to_string());
        }
        let a = d.metadata.annotations.get_or_insert_default();
        for (k, v) in annotations {
            a.insert(k.to_string(), v.to_string());
        }
    });
}

fn flux_labels(group: &str) -> [(String, String); 2] {
    [
        (format!("{group}/name"), "apps".to_string()),
        (format!("{group}/namespace"), "flux-system".to_string()),
    ]
}

fn owned_by_flux(fake: &FakeKube, group: &str) {
    let labels = flux_labels(group);
    let labels: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    owned_by(fake, &labels, &[]);
}

fn kustomization() -> Value {
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": "flux-system"},
        "spec": {
            "interval": "10m",
            "path": "./apps/production",
            "prune": true,
            "sourceRef": {"kind": "GitRepository", "name": "flux-system"}
        }
    })
}

fn application() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "checkout", "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://git.example.com/shop.git", "path": "checkout", "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": NS},
            "syncPolicy": {
                "automated": {"prune": true, "selfHeal": true},
                "syncOptions": ["CreateNamespace=true"]
            }
        }
    })
}

/// Paths of the PATCH requests that succeeded, in order.
fn patched(fake: &FakeKube) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.status == 200)
        .map(|r| r.path)
        .collect()
}

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop/deployments/checkout";
const KUSTOMIZATION: &str =
    "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/apps";

fn event_with(fake: &FakeKube, reason: &str) -> String {
    fake.events()
        .into_iter()
        .rev()
        .find(|e| e.reason.as_deref() == Some(reason))
        .and_then(|e| e.message)
        .unwrap_or_else(|| panic!("no {reason} Event"))
}

#[tokio::test]
async fn a_flux_kustomization_is_suspended_before_the_undo() {
    let (fake, app) = setup().await;
    owned_by_flux(&fake, "kustomize.toolkit.fluxcd.io");
    fake.put_custom(kustomization());
    let (s, r) = bad_release(&fake, &app, CONFIG).await;
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    assert!(
        r.detail.contains(
            "suspended Flux Kustomization flux-system/apps first, so that its next sync does not \
             undo the rollback; once the release is fixed in Git, resume it: \
             flux resume kustomization apps -n flux-system"
        ),
        "{}",
        r.detail
    );
    assert_eq!(patched(&fake), [KUSTOMIZATION, DEPLOYMENT]);
    let k = fake
        .get_custom(Kind::Kustomization, "flux-system", "apps")
        .unwrap();
    assert_eq!(k["spec"]["suspend"], true);
    assert_eq!(k["spec"]["path"], "./apps/production");
    let event = event_with(&fake, "BackstopRollback");
    assert!(
        event.contains("flux resume kustomization apps -n flux-system"),
        "{event}"
    );
    done(s, &fake).await;
}

#[tokio::test]
async fn a_flux_helmrelease_is_suspended_before_the_undo() {
    let (fake, app) = setup().await;
    owned_by_flux(&fake, "helm.toolkit.fluxcd.io");
    fake.put_custom(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "apps", "namespace": "flux-system"},
        "spec": {"interval": "5m", "chart": {"spec": {"chart": "checkout", "sourceRef": {"kind": "HelmRepository", "name": "shop"}}}}
    }));
    let (s, r) = bad_release(&fake, &app, CONFIG).await;
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    assert!(
        r.detail
            .contains("resume it: flux resume helmrelease apps -n flux-system"),
        "{}",
        r.detail
    );
    let h = fake
        .get_custom(Kind::HelmRelease, "flux-system", "apps")
        .unwrap();
    assert_eq!(h["spec"]["suspend"], true);
    done(s, &fake).await;
}

#[tokio::test]
async fn an_argo_cd_application_loses_only_its_automated_sync() {
    let (fake, app) = setup().await;
    owned_by(
        &fake,
        &[],
        &[(
            "argocd.argoproj.io/tracking-id",
            "checkout:apps/Deployment:shop/checkout",
        )],
    );
    fake.put_custom(application());
    let (s, r) = bad_release(&fake, &app, CONFIG).await;
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    let a = fake
        .get_custom(Kind::Application, "argocd", "checkout")
        .unwrap();
    assert_eq!(
        a["spec"]["syncPolicy"],
        json!({"syncOptions": ["CreateNamespace=true"]})
    );
    assert_eq!(a["spec"]["project"], "default");
    // The resume command puts back exactly what was removed.
    assert!(
        r.detail.contains(
            r#"resume it: kubectl -n argocd patch applications.argoproj.io checkout --type merge -p '{"spec":{"syncPolicy":{"automated":{"prune":true,"selfHeal":true}}}}'"#
        ),
        "{}",
        r.detail
    );
    done(s, &fake).await;
}

#[tokio::test]
async fn the_instance_label_means_argo_cd_only_when_the_application_exists() {
    // Helm charts set app.kubernetes.io/instance too: no Application, no owner.
    let (fake, app) = setup().await;
    owned_by(&fake, &[("app.kubernetes.io/instance", "checkout")], &[]);
    let (s, r) = bad_release(&fake, &app, CONFIG).await;
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    assert!(!r.detail.contains("Argo"), "{}", r.detail);
    assert_eq!(patched(&fake), [DEPLOYMENT]);
    done(s, &fake).await;

    let (fake, app) = setup().await;
    owned_by(&fake, &[("app.kubernetes.io/instance", "checkout")], &[]);
    fake.put_custom(application());
    let (s, r) = bad_release(&fake, &app, CONFIG).await;
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    assert!(
        r.detail
            .contains("suspended Argo CD Application argocd/checkout first"),
        "{}",
        r.detail
    );
    done(s, &fake).await;
}

#[tokio::test]
async fn an_application_outside_argocd_is_found_where_configured() {
    let (fake, app) = setup().await;
    owned_by(&fake, &[("app.kubernetes.io/instance", "checkout")], &[]);
    let mut application = application();
    application["metadata"]["namespace"] = json!("openshift-gitops");
    fake.put_custom(application);
    let yaml = with_kubernetes("argocd_namespace: openshift-gitops");
    let (s, r) = bad_release(&fake, &app, &yaml).await;
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    assert!(
        r.detail
            .contains("suspended Argo CD Application openshift-gitops/checkout first"),
        "{}",
        r.detail
    );
    let a = fake
        .get_custom(Kind::Application, "openshift-gitops", "checkout")
        .unwrap();
    assert!(a["spec"]["syncPolicy"].get("automated").is_none());
    done(s, &fake).await;
}

#[tokio::test]
async fn a_refused_suspend_means_no_rollback_into_a_fight() {
    let (fake, app) = setup().await;
    owned_by_flux(&fake, "kustomize.toolkit.fluxcd.io");
    fake.put_custom(kustomization());
    fake.fail_next("PATCH", "/kustomizations/apps", 403, 1);
    let (s, r) = bad_release(&fake, &app, CONFIG).await;
    assert_eq!(r.outcome, "prevented: gitops", "{}", r.detail);
    assert!(
        r.detail.starts_with(
            "Deployment shop/checkout is synced from Git by Flux Kustomization flux-system/apps, \
             and backstop may not suspend it"
        ),
        "{}",
        r.detail
    );
    assert!(r.detail.contains("not rolled back"), "{}", r.detail);
    assert!(patched(&fake).is_empty());
    assert_eq!(prevented(&s, "health-down", "gitops"), 1);
    let event = event_with(&fake, "BackstopRollbackRefused");
    assert!(event.contains("may not suspend it"), "{event}");
    done(s, &fake).await;
}

#[tokio::test]
async fn an_owner_that_does_not_exist_is_said_and_the_rollback_goes_ahead() {
    let (fake, app) = setup().await;
    owned_by_flux(&fake, "kustomize.toolkit.fluxcd.io");
    let (s, r) = bad_release(&fake, &app, CONFIG).await;
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    assert!(
        r.detail.contains(
            "Deployment shop/checkout names Flux Kustomization flux-system/apps as its owner, \
             which does not exist: nothing to suspend"
        ),
        "{}",
        r.detail
    );
    assert_eq!(patched(&fake), [DEPLOYMENT]);
    done(s, &fake).await;
}

#[tokio::test]
async fn a_sync_racing_the_suspend_is_re_read_and_retried() {
    let (fake, app) = setup().await;
    owned_by_flux(&fake, "kustomize.toolkit.fluxcd.io");
    fake.put_custom(kustomization());
    // Flux writes the Kustomization's status between backstop's read and
    // its first write, as a reconciliation does.
    let mut raced = false;
    fake.on_patch(move |store| {
        if raced {
            return;
        }
        raced = true;
        let mut k = store
            .get_json(Kind::Kustomization, "flux-system", "apps")
            .cloned()
            .unwrap();
        k["status"] = json!({"lastAppliedRevision": "main@sha1:0123abcd"});
        store.write_json(Kind::Kustomization, k);
    });
    let (s, r) = bad_release(&fake, &app, CONFIG).await;
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    let tries: Vec<u16> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path == KUSTOMIZATION)
        .map(|r| r.status)
        .collect();
    assert_eq!(tries, [409, 200]);
    let k = fake
        .get_custom(Kind::Kustomization, "flux-system", "apps")
        .unwrap();
    assert_eq!(k["spec"]["suspend"], true);
    assert_eq!(k["status"]["lastAppliedRevision"], "main@sha1:0123abcd");
    done(s, &fake).await;
}

#[tokio::test]
async fn gitops_page_only_pages() {
    let (fake, app) = setup().await;
    owned_by_flux(&fake, "kustomize.toolkit.fluxcd.io");
    fake.put_custom(kustomization());
    let yaml = with_kubernetes("gitops: page");
    let (s, r) = bad_release(&fake, &app, &yaml).await;
    assert_eq!(r.outcome, "prevented: gitops", "{}", r.detail);
    assert!(
        r.detail
            .contains("rollback.kubernetes.gitops is page: not rolled back"),
        "{}",
        r.detail
    );
    assert!(patched(&fake).is_empty());
    done(s, &fake).await;
}

#[tokio::test]
async fn gitops_ignore_rolls_back_without_looking() {
    let (fake, app) = setup().await;
    owned_by_flux(&fake, "kustomize.toolkit.fluxcd.io");
    fake.put_custom(kustomization());
    let yaml = with_kubernetes("gitops: ignore");
    let (s, r) = bad_release(&fake, &app, &yaml).await;
    assert_eq!(r.outcome, "succeeded", "{}", r.detail);
    assert_eq!(patched(&fake), [DEPLOYMENT]);
    assert!(!fake.requests().iter().any(|r| r.path.contains("fluxcd.io")));
    done(s, &fake).await;
}
