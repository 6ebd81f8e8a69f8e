//! `admin` (the bearer token for the admin API's mutating endpoints) and
//! `tls` (which CAs outbound HTTPS trusts). Both files are read here, when
//! the configuration loads, so a missing or unusable file is reported with
//! its path before anything starts.

use super::error::{self, Problems};
use super::raw::{self, RawAdmin, RawTls};
use super::types::{Admin, CaBundle, Tls};
use super::{units, values};

/// Shortest admin token accepted: a guessable token would make the rate
/// limit the only defence of the rollback endpoint.
const MIN_TOKEN_LEN: usize = 16;
/// Largest CA bundle read (the Debian system bundle is about 200 KiB).
const MAX_CA_BYTES: u64 = 4 * 1024 * 1024;

pub(super) fn admin(p: &mut Problems, raw: &Option<RawAdmin>) -> Option<Admin> {
    let Some(admin) = raw else {
        return Some(Admin::default());
    };
    raw::check_unknown(p, "admin", admin);
    let Some(file) = &admin.token_file else {
        return Some(Admin::default());
    };
    let path = error::key("admin", "token_file");
    let token = values::secret_file(p, &path, file)?;
    let len = token.expose().chars().count();
    if len < MIN_TOKEN_LEN {
        p.add(
            &path,
            format!(
                "the token is {len} characters long; use at least {MIN_TOKEN_LEN} \
                 (for example the output of `openssl rand -hex 32`)"
            ),
        );
        return None;
    }
    Some(Admin { token: Some(token) })
}

pub(super) fn tls(p: &mut Problems, raw: &Option<RawTls>) -> Option<Tls> {
    let Some(tls) = raw else {
        return Some(Tls::default());
    };
    raw::check_unknown(p, "tls", tls);
    let system_roots = match &tls.system_roots {
        None => Some(true),
        Some(v) => units::boolean(p, "tls.system_roots", v),
    };
    let ca_bundle = match &tls.ca_file {
        None => Some(None),
        Some(v) => ca_bundle(p, "tls.ca_file", v).map(Some),
    };
    let (ca_bundle, system_roots) = (ca_bundle?, system_roots?);
    if ca_bundle.is_none() && !system_roots {
        p.add(
            "tls.system_roots",
            "false leaves no certificate authority to trust; set tls.ca_file as well",
        );
        return None;
    }
    Some(Tls {
        ca_bundle,
        system_roots,
    })
}

fn ca_bundle(p: &mut Problems, path: &str, value: &serde_json::Value) -> Option<CaBundle> {
    let file = values::text(p, path, value)?;
    if file.is_empty() {
        p.add(path, "must name a file");
        return None;
    }
    if p.skip_file(path, file) {
        return None;
    }
    let pem = match read_limited(file) {
        Ok(pem) => pem,
        Err(e) => {
            p.add(path, format!("cannot read {file}: {e}"));
            return None;
        }
    };
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Some(CaBundle {
            path: file.to_string(),
            certificates: certs.len(),
            pem,
        }),
        Ok(_) => {
            p.add(
                path,
                format!("{file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
            );
            None
        }
        Err(e) => {
            p.add(path, format!("{file} is not a PEM certificate bundle: {e}"));
            None
        }
    }
}

fn read_limited(file: &str) -> Result<Vec<u8>, String> {
    super::file::read(std::path::Path::new(file), MAX_CA_BYTES).map_err(|e| match e {
        super::file::ReadError::TooLarge(_) => format!("{e}, which is too big for a CA bundle"),
        e => e.to_string(),
    })
}
