//! Configuration: the YAML contract (see `raw`), `${VAR}` expansion, and
//! validation into the typed `Config` (see `types`), or every problem found,
//! each with the path of its field, in document order.
//!
//! Pipeline: `file` (a bounded read of a regular file) → `yaml` (text →
//! value) → `expand` (`${VAR}`) → `raw` (contract shape, unknown keys kept)
//! → `validate`, `targets`, `rules` (→ `Config`), which read leaves with
//! `units` (durations, percentages, numbers) and `values` (text, names,
//! URLs, secret files, read through `file` too); `error` collects problems.

mod diff;
mod error;
mod expand;
mod file;
mod raw;
mod rules;
mod security;
mod targets;
mod traffic;
mod types;
mod units;
mod validate;
mod values;
mod yaml;

#[cfg(test)]
mod tests;

/// Parse a configuration a unit test wrote (no environment); panics with
/// every problem if it is invalid.
#[cfg(test)]
pub(crate) fn for_tests(yaml: &str) -> Config {
    parse(yaml, &|_| None).unwrap_or_else(|e| panic!("test configuration invalid:\n{e}"))
}

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

pub use diff::{ConfigDiff, Mapping, ReceiverChanges};
pub use error::{ConfigError, ConfigErrors};
pub use file::MAX_CONFIG_BYTES;
pub use types::*;

/// Windows keep at least this much history, so `/status` can always show the
/// last five minutes even when no rule looks that far back.
pub const DEFAULT_STATUS_WINDOW: Duration = Duration::from_secs(5 * 60);

/// Default address of the admin server (`listen`).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9464";

/// Reads and validates the configuration file at `path`, expanding `${VAR}`
/// from the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    parse_file(path, &read_file(path)?)
}

/// The bytes of the configuration file at `path`: a regular file (or a
/// symlink to one) of at most `MAX_CONFIG_BYTES`. Never blocks on a FIFO;
/// may still block on a hung filesystem, like any read.
pub fn read_file(path: &Path) -> Result<Vec<u8>, ConfigErrors> {
    file::read(path, MAX_CONFIG_BYTES).map_err(|e| cannot_read(path, e))
}

/// Validates what `read_file` returned, expanding `${VAR}` from the process
/// environment. Reads the files it names (`header_files`, `*_file`).
pub fn parse_file(path: &Path, bytes: &[u8]) -> Result<Config, ConfigErrors> {
    let text = std::str::from_utf8(bytes).map_err(|_| cannot_read(path, "it is not UTF-8 text"))?;
    parse(text, &|name| std::env::var(name).ok())
}

fn cannot_read(path: &Path, why: impl std::fmt::Display) -> ConfigErrors {
    ConfigErrors(vec![ConfigError::new(
        "",
        format!("cannot read configuration file {}: {why}", path.display()),
    )])
}

/// Validates configuration text. `env` looks up variables for `${VAR}`
/// (injectable for tests). On failure, returns every problem found, sorted
/// in document order.
pub fn parse(yaml: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let document = yaml::parse(yaml).map_err(|e| ConfigErrors(vec![e]))?;
    let order = document.order;
    let mut value = document.value;
    let mut expand_errors = document.non_finite;
    expand_errors.extend(expand::expand(&mut value, env));
    let mut problems = error::Problems::default();
    let config = match raw::from_value(value) {
        Ok(raw) => validate::config(&mut problems, &raw),
        Err(structural) => {
            problems.push(structural);
            None
        }
    };
    // A string with an unset variable was left as written, a non-finite
    // number became its spelling; what validation says about that text
    // would only repeat the real problem.
    let unexpanded: HashSet<&str> = expand_errors.iter().map(|e| e.path.as_str()).collect();
    let mut errors: Vec<ConfigError> = problems
        .into_vec()
        .into_iter()
        .filter(|e| !unexpanded.contains(e.path.as_str()))
        .collect();
    errors.splice(0..0, expand_errors);
    match config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => {
            if errors.is_empty() {
                // Every failed check records a problem; this only guards
                // against a bug turning into a silent rejection.
                errors.push(ConfigError::new("", "invalid configuration"));
            }
            // Stable: problems at one path keep the order they were found in.
            errors.sort_by_key(|e| order.position(&e.path));
            Err(ConfigErrors(errors))
        }
    }
}
