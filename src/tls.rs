//! TLS for outbound calls: rustls, the system's roots through the platform
//! verifier, plus the CAs of `tls.ca_file`. There is no switch that turns
//! verification off.

use crate::config::Tls;

/// Install the process-wide TLS crypto provider (ring). Must run before any
/// HTTP client is built; harmless to call more than once.
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `builder`, trusting what `tls` says.
pub fn trust(builder: reqwest::ClientBuilder, tls: &Tls) -> Result<reqwest::ClientBuilder, String> {
    init();
    let Some(bundle) = &tls.ca_bundle else {
        return Ok(builder);
    };
    let certs = reqwest::Certificate::from_pem_bundle(&bundle.pem)
        .map_err(|e| format!("tls.ca_file: {}: {e}", bundle.path))?;
    Ok(if tls.system_roots {
        builder.tls_certs_merge(certs)
    } else {
        builder.tls_certs_only(certs)
    })
}
