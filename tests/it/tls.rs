//! Outbound TLS: an HTTPS target whose certificate comes from a private CA
//! fails with reason `tls` until `tls.ca_file` names that CA; verification
//! cannot be switched off, only widened to more CAs.

use crate::common::Daemon;
use crate::common::https::HttpsApp;
use backstop::Event;
use backstop::probe::{Outcome, Reason};
use std::io::Write;
use std::time::Duration;

fn pem_file(pem: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(pem.as_bytes()).unwrap();
    file
}

/// The first probe result of the `secure` target.
async fn first_probe(tls: &str, url: &str) -> Outcome {
    let yaml = format!(
        "service: shop\nlisten: 127.0.0.1:0\n{tls}targets:\n  - name: secure\n    url: {url}\n    interval: 100ms\n"
    );
    let mut setup = Daemon::with_app(&yaml).await;
    let event = setup
        .wait_for(
            "a probe of the HTTPS target",
            Duration::from_secs(5),
            |e| matches!(e, Event::Probe { target, .. } if target == "secure"),
        )
        .await;
    setup.shutdown().await;
    match event {
        Event::Probe { outcome, .. } => outcome,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_private_ca_is_refused_until_configured() {
    let server = HttpsApp::start().await;
    match first_probe("", &server.url).await {
        Outcome::Failure { reason, detail } => {
            assert_eq!(reason, Reason::Tls, "{detail}");
            assert!(detail.to_lowercase().contains("certificate"), "{detail}");
        }
        other => panic!("an untrusted certificate was accepted: {other:?}"),
    }

    let ca = pem_file(&server.ca_pem);
    let tls = format!("tls: {{ ca_file: {} }}\n", ca.path().display());
    let outcome = first_probe(&tls, &server.url).await;
    assert_eq!(outcome, Outcome::Success { status: 200 });

    let only = format!(
        "tls: {{ ca_file: {}, system_roots: false }}\n",
        ca.path().display()
    );
    assert_eq!(
        first_probe(&only, &server.url).await,
        Outcome::Success { status: 200 }
    );
}

#[tokio::test]
async fn another_ca_does_not_widen_trust() {
    let server = HttpsApp::start().await;
    let other = HttpsApp::start().await;
    let wrong = pem_file(&other.ca_pem);
    let tls = format!(
        "tls: {{ ca_file: {}, system_roots: false }}\n",
        wrong.path().display()
    );
    match first_probe(&tls, &server.url).await {
        Outcome::Failure { reason, .. } => assert_eq!(reason, Reason::Tls),
        other => panic!("a certificate from another CA was accepted: {other:?}"),
    }
}
