//! The configurations users copy (README, examples/) must stay valid.

use std::io::Write;

fn env(name: &str) -> Option<String> {
    matches!(name, "APP_TOKEN" | "DEPLOYER_TOKEN").then(|| format!("test-{name}"))
}

#[test]
fn readme_configuration_is_valid() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("```yaml\n").expect("README has a yaml block") + "```yaml\n".len();
    let yaml = &readme[start..start + readme[start..].find("```").unwrap()];
    let mut token = tempfile::NamedTempFile::new().unwrap();
    token.write_all(b"Bearer s3cret\n").unwrap();
    let yaml = yaml.replace(
        "/etc/backstop/deployer-token",
        token.path().to_str().unwrap(),
    );
    let config = backstop::config::parse(&yaml, &env)
        .unwrap_or_else(|e| panic!("README config invalid:\n{e}"));
    assert_eq!(config.rules.len(), 3);
    assert!(
        !format!("{config:?}").contains("s3cret"),
        "a secret leaked into Debug output"
    );
}

#[test]
fn example_configuration_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/checkout.yaml");
    let yaml = std::fs::read_to_string(path).unwrap();
    let config =
        backstop::config::parse(&yaml, &env).unwrap_or_else(|e| panic!("{path} invalid:\n{e}"));
    assert_eq!(
        (config.targets.len(), config.slos.len(), config.rules.len()),
        (6, 2, 5)
    );
}

/// The `backstop.yaml` block of a ConfigMap in a manifest file.
fn configmap_config(path: &str) -> String {
    let manifest = std::fs::read_to_string(path).unwrap();
    let key = "backstop.yaml: |\n";
    let start = manifest
        .find(key)
        .unwrap_or_else(|| panic!("{path}: no backstop.yaml key"))
        + key.len();
    let indent = manifest[start..].len() - manifest[start..].trim_start_matches(' ').len();
    manifest[start..]
        .lines()
        .take_while(|l| l.starts_with(&" ".repeat(indent)) || l.is_empty())
        .map(|l| format!("{}\n", l.get(indent..).unwrap_or("")))
        .collect()
}

#[test]
fn kubernetes_sidecar_configuration_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/k8s/sidecar-webhook.yaml");
    let mut token = tempfile::NamedTempFile::new().unwrap();
    token.write_all(b"Bearer t0ken\n").unwrap();
    let yaml = configmap_config(path).replace(
        "/etc/backstop-secrets/deployer-token",
        token.path().to_str().unwrap(),
    );
    let config = backstop::config::parse(&yaml, &env)
        .unwrap_or_else(|e| panic!("{path} config invalid:\n{e}"));
    assert_eq!(config.rules.len(), 4);
}

#[test]
fn checkout_example_configuration_is_valid() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/k8s/examples/checkout/config/backstop.yaml"
    );
    let mut token = tempfile::NamedTempFile::new().unwrap();
    token.write_all(b"a.b.c").unwrap();
    let yaml = std::fs::read_to_string(path).unwrap().replace(
        "/var/run/secrets/backstop/token",
        token.path().to_str().unwrap(),
    );
    let config =
        backstop::config::parse(&yaml, &env).unwrap_or_else(|e| panic!("{path} invalid:\n{e}"));
    assert!(matches!(
        config.rollback.backend,
        Some(backstop::config::RollbackBackend::Kubernetes(_))
    ));
    assert!(
        config
            .rules
            .iter()
            .any(|r| matches!(r.when, backstop::config::Condition::Restarts { .. }))
    );
}
