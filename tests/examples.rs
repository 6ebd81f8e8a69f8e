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

#[test]
fn kubernetes_sidecar_configuration_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/k8s/sidecar-webhook.yaml");
    let manifest = std::fs::read_to_string(path).unwrap();
    // The ConfigMap's `backstop.yaml` block: the indented lines after its key.
    let start = manifest.find("backstop.yaml: |\n").unwrap() + "backstop.yaml: |\n".len();
    let yaml: String = manifest[start..]
        .lines()
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .map(|l| format!("{}\n", l.get(4..).unwrap_or("")))
        .collect();
    let mut token = tempfile::NamedTempFile::new().unwrap();
    token.write_all(b"Bearer t0ken\n").unwrap();
    let yaml = yaml.replace(
        "/etc/backstop-secrets/deployer-token",
        token.path().to_str().unwrap(),
    );
    let config = backstop::config::parse(&yaml, &env)
        .unwrap_or_else(|e| panic!("{path} config invalid:\n{e}"));
    assert_eq!(config.rules.len(), 4);
}
