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

#[test]
fn slack_and_webhook_urls_are_secrets_read_from_a_file_or_the_text() {
    let slack = temp_file(b"https://hooks.slack.com/services/T000/B000/s3cr3t-slack\n");
    let config = ok(&format!(
        "{MINIMAL}page:\n  slack: {{ webhook_url_file: {} }}\n  webhook: {{ url: \"https://hooks.example/notify?token=s3cr3t-hook\", header_files: {{ X-Token: {} }}, max_per_minute: 5 }}\n",
        slack.path().display(),
        slack.path().display(),
    ));
    let s = config.page.slack.as_ref().expect("slack");
    assert_eq!(
        s.url.expose().as_str(),
        "https://hooks.slack.com/services/T000/B000/s3cr3t-slack"
    );
    assert_eq!((s.max_per_minute, s.timeout.as_secs()), (20, 5));
    let w = config.page.webhook.as_ref().expect("webhook");
    assert_eq!(w.max_per_minute, 5);
    assert!(w.headers.contains_key("X-Token"));
    let shown = format!("{config:?}");
    assert!(!shown.contains("s3cr3t"), "a URL leaked: {shown}");
    assert!(
        shown.contains("https://hooks.slack.com/<redacted>"),
        "{shown}"
    );
}

#[test]
fn bad_slack_and_webhook_urls_are_named_by_path_and_never_shown() {
    let got = errors_with(
        "page:\n  slack: { webhook_url: \"hooks.slack.com/services/s3cr3t\" }\n  webhook: { url: \"ftp://s3cr3t@example\", url_file: /x }\n",
    );
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with("page.slack.webhook_url: is not an absolute URL"),
        "{got:?}"
    );
    assert_eq!(got[1], "page.webhook: give url_file or url, not both");
    let got = errors_with("page:\n  webhook: { url: \"ftp://s3cr3t@example/x\" }\n  slack: {}\n");
    assert!(
        got.iter().any(|e| e
            .starts_with("page.webhook.url: must be an http or https URL with a host, not ftp")),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|e| e == "page.slack: needs webhook_url_file (or webhook_url)"),
        "{got:?}"
    );
    assert!(
        got.iter().all(|e| !e.contains("s3cr3t")),
        "a URL leaked: {got:?}"
    );
}
