//! Outbound TLS: an HTTPS target whose certificate comes from a private CA
//! fails with reason `tls` until `tls.ca_file` names that CA; verification
//! cannot be switched off, only widened to more CAs.

use crate::common::Daemon;
use backstop::probe::{Outcome, Reason};
use backstop::telemetry::Event;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// A private CA and an HTTPS server on 127.0.0.1 with a certificate it signed.
struct Https {
    url: String,
    ca_pem: String,
}

async fn https_server() -> Https {
    backstop::init_tls();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "backstop test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

    let chain = vec![leaf.der().clone()];
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust us aborts the handshake: fine.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                        Bytes::from_static(b"ok"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Https {
        url: format!("https://{addr}/health"),
        ca_pem: ca_cert.pem(),
    }
}

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
    let server = https_server().await;
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
    let server = https_server().await;
    let other = https_server().await;
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
