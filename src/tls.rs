//! TLS for outbound calls: rustls, the system's roots through the platform
//! verifier, plus the CAs of `tls.ca_file`. There is no switch that turns
//! verification off.

use crate::config::Tls;

/// Install the process-wide TLS crypto provider (ring). Must run before any
/// HTTP client is built; harmless to call more than once.
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Why an outbound HTTP client (or what it sends) could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("tls.ca_file: {path}: {source}")]
    CaBundle {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("building the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
    /// A configured header, method or URL the HTTP library refuses
    /// (validation should have caught it; the field says where).
    #[error("{field}: {problem}")]
    Invalid { field: String, problem: String },
}

impl ClientError {
    pub fn invalid(field: impl Into<String>, problem: impl std::fmt::Display) -> ClientError {
        ClientError::Invalid {
            field: field.into(),
            problem: problem.to_string(),
        }
    }
}

/// The client `builder` makes, trusting what `tls` says.
pub fn client(builder: reqwest::ClientBuilder, tls: &Tls) -> Result<reqwest::Client, ClientError> {
    init();
    let builder = match &tls.ca_bundle {
        None => builder,
        Some(bundle) => {
            let certs = reqwest::Certificate::from_pem_bundle(&bundle.pem).map_err(|source| {
                ClientError::CaBundle {
                    path: bundle.path.clone(),
                    source,
                }
            })?;
            if tls.system_roots {
                builder.tls_certs_merge(certs)
            } else {
                builder.tls_certs_only(certs)
            }
        }
    };
    builder.build().map_err(ClientError::Build)
}
