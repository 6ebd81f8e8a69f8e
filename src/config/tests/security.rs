//! `admin` and `tls`: files read at load, every problem with its path.

use super::{MINIMAL, errors_with, ok};

fn temp_file(contents: &[u8]) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), contents).expect("write temp file");
    file
}

fn ca_pem() -> String {
    rcgen::generate_simple_self_signed(vec!["test-ca".into()])
        .expect("certificate")
        .cert
        .pem()
}

#[test]
fn admin_and_tls_default_to_off_and_system_roots() {
    let config = ok(MINIMAL);
    assert_eq!(config.admin.token, None);
    assert!(config.tls.system_roots);
    assert_eq!(config.tls.ca_bundle, None);
}

#[test]
fn admin_token_is_read_trimmed_and_never_printed() {
    let token = temp_file(b"0123456789abcdef0123\n");
    let path = token.path().display();
    let config = ok(&format!("{MINIMAL}admin: {{ token_file: {path} }}\n"));
    let secret = config.admin.token.as_ref().expect("token");
    assert_eq!(secret.expose(), "0123456789abcdef0123");
    assert!(!format!("{config:?}").contains("0123456789abcdef"));
}

#[test]
fn short_missing_or_misplaced_admin_tokens_are_rejected_with_their_path() {
    let short = temp_file(b"hunter2\n");
    let got = errors_with(&format!(
        "admin: {{ token_file: {} }}\n",
        short.path().display()
    ));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("admin.token_file: the token is 7 characters long; use at least 16"),
        "{got:?}"
    );
    assert!(!got[0].contains("hunter2"), "the token leaked: {got:?}");

    let got = errors_with("admin: { token_file: /nonexistent/backstop-token }\n");
    assert!(
        got[0].starts_with("admin.token_file: cannot read /nonexistent/backstop-token"),
        "{got:?}"
    );
    let got = errors_with("admin: { token: abc }\n");
    assert!(got[0].starts_with("admin.token: unknown field"), "{got:?}");
}

#[test]
fn a_ca_bundle_is_read_and_counted() {
    let bundle = temp_file(format!("{}{}", ca_pem(), ca_pem()).as_bytes());
    let path = bundle.path().display().to_string();
    let config = ok(&format!("{MINIMAL}tls: {{ ca_file: {path} }}\n"));
    let ca = config.tls.ca_bundle.as_ref().expect("bundle");
    assert_eq!((ca.path.as_str(), ca.certificates), (path.as_str(), 2));
    assert!(config.tls.system_roots);

    let only = ok(&format!(
        "{MINIMAL}tls: {{ ca_file: {path}, system_roots: false }}\n"
    ));
    assert!(!only.tls.system_roots);
}

#[test]
fn unusable_tls_settings_say_what_and_where() {
    let junk = temp_file(b"not a certificate\n");
    let got = errors_with(&format!("tls: {{ ca_file: {} }}\n", junk.path().display()));
    assert!(
        got[0].starts_with("tls.ca_file: ") && got[0].contains("no PEM certificate"),
        "{got:?}"
    );
    let got = errors_with("tls: { ca_file: /nonexistent/ca.pem }\n");
    assert!(
        got[0].starts_with("tls.ca_file: cannot read /nonexistent/ca.pem"),
        "{got:?}"
    );
    let got = errors_with("tls: { system_roots: false }\n");
    assert_eq!(
        got,
        vec![
            "tls.system_roots: false leaves no certificate authority to trust; set tls.ca_file as well"
        ]
    );
    let got = errors_with("tls: { system_roots: maybe }\n");
    assert!(got[0].starts_with("tls.system_roots: "), "{got:?}");
    let got = errors_with("tls: { insecure_skip_verify: true }\n");
    assert!(
        got[0].starts_with("tls.insecure_skip_verify: unknown field"),
        "{got:?}"
    );
}
