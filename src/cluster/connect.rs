//! The API client's credentials: the pod's service-account token by
//! default, or `rollback.kubernetes.token_file`, a token mounted into the
//! sidecar only (from a dedicated ServiceAccount's token Secret), so the
//! app keeps its own service account and gets no rights.

use kube::config::AuthInfo;
use std::path::Path;

/// `config` authenticating with the token in `token_file` instead of its
/// own credentials, when one is given. The client re-reads the file at
/// least once a minute, so a rotated token is picked up without a restart.
pub fn with_token_file(mut config: kube::Config, token_file: Option<&Path>) -> kube::Config {
    if let Some(file) = token_file {
        // Only this token: no client certificate or exec plugin from a
        // kubeconfig may speak for backstop instead.
        config.auth_info = AuthInfo {
            token_file: Some(file.display().to_string()),
            ..AuthInfo::default()
        };
    }
    config
}
