//! Configuration: the YAML contract (see `raw`), `${VAR}` expansion, and
//! validation into the typed `Config` (see `types`), or every problem found,
//! each with the path of its field, in document order.
//!
//! Pipeline: `file` (a bounded read of a regular file) → `yaml` (text →
//! value) → `expand` (`${VAR}`) → `raw` (contract shape, unknown keys kept)
//! → `validate`, `targets`, `rules` (→ `Config`), which read
//! leaves with `units` (quantities; durations through `duration`) and
//! `values` (text, names, URLs, secret files, read through `file` too);
//! `warnings` then flags valid values meant otherwise. `error` collects
//! problems, `names` puts the item's name into their paths. `check` does
//! all of it, offline too (no variable looked up, no file read: both listed).

mod diff;
mod duration;
mod error;
mod expand;
mod file;
mod names;
mod raw;
mod receivers;
mod rollback;
mod rules;
mod security;
mod targets;
mod thresholds;
mod traffic;
mod types;
mod units;
mod validate;
mod values;
mod warnings;
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

/// A duration as the configuration writes it (`500ms`, `5s`, `1h30m`; units
/// ms, s, m, h, d), for command-line options that take one too.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    duration::parse(text.trim())
}

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
    let checked = check(yaml, Some(env));
    match checked.config {
        Some(config) if checked.errors.is_empty() => Ok(config),
        _ => Err(ConfigErrors(checked.errors)),
    }
}

/// Looks up an environment variable for `${VAR}`.
pub type Env<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// What `check` found.
#[derive(Debug)]
pub struct Checked {
    /// The configuration, when it is valid and could be built (offline, a
    /// file that was not read or a variable that is not set leaves it None).
    pub config: Option<Config>,
    /// Every problem, in document order; empty when valid.
    pub errors: Vec<ConfigError>,
    /// Valid values that are almost certainly meant otherwise, in document order.
    pub warnings: Vec<ConfigError>,
    /// Offline: the variables without a default the environment must set,
    /// each with where it is used.
    pub variables: Vec<Needed>,
    /// Offline: the files that would be read, each with where it is named.
    pub files: Vec<Needed>,
    /// How many targets, SLOs and rules the file lists.
    pub counts: [usize; 3],
}

/// Something only the environment can provide: a variable or a file, and
/// where the configuration asks for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Needed {
    pub name: String,
    /// Where it is used, with names: `targets[2] "analytics".headers.Authorization`.
    pub at: String,
}

/// Checks `path`: with `offline`, without the environment (see `check`).
pub fn check_file(path: &Path, offline: bool) -> Checked {
    let text = read_file(path).and_then(|bytes| {
        String::from_utf8(bytes).map_err(|_| cannot_read(path, "it is not UTF-8 text"))
    });
    match text {
        Ok(text) if offline => check(&text, None),
        Ok(text) => check(&text, Some(&|name| std::env::var(name).ok())),
        Err(errors) => Checked {
            config: None,
            errors: errors.0,
            warnings: Vec::new(),
            variables: Vec::new(),
            files: Vec::new(),
            counts: [0; 3],
        },
    }
}

/// Validates configuration text and says what looks wrong though valid.
/// `env` looks up variables for `${VAR}`; None checks offline: everything
/// that does not need the environment (structure, references, units,
/// patterns), listing the variables and files a real start would need
/// instead of reading them.
pub fn check(yaml: &str, env: Option<&Env<'_>>) -> Checked {
    let document = match yaml::parse(yaml) {
        Ok(document) => document,
        Err(e) => {
            return Checked {
                config: None,
                errors: vec![e],
                warnings: Vec::new(),
                variables: Vec::new(),
                files: Vec::new(),
                counts: [0; 3],
            };
        }
    };
    let order = document.order;
    let mut value = document.value;
    let offline = env.is_none();
    let mut unexpanded = expand::expand(&mut value, env.unwrap_or(&|_| None), offline);
    unexpanded
        .needed
        .sort_by_key(|(path, _)| order.position(path));
    let names = names::Names::of(&value);
    let mut expand_errors = document.non_finite;
    expand_errors.extend(unexpanded.errors);
    let mut problems = if offline {
        error::Problems::offline()
    } else {
        error::Problems::default()
    };
    let config = match raw::from_value(value) {
        Ok(raw) => validate::config(&mut problems, &raw),
        Err(structural) => {
            problems.push(structural);
            None
        }
    };
    let (errors, warnings, files) = problems.into_parts();
    // A string with an unset variable was left as written, a non-finite
    // number became its spelling; what validation says about that text
    // would only repeat the real problem (or, offline, is for the
    // environment to settle).
    let left: HashSet<&str> = expand_errors
        .iter()
        .map(|e| e.path.as_str())
        .chain(unexpanded.needed.iter().map(|(path, _)| path.as_str()))
        .collect();
    let mut errors: Vec<ConfigError> = errors
        .into_iter()
        .filter(|e| !left.contains(e.path.as_str()))
        .collect();
    errors.splice(0..0, expand_errors);
    let complete = unexpanded.needed.is_empty() && files.is_empty();
    if config.is_none() && errors.is_empty() && complete {
        // Every failed check records a problem; this only guards against a
        // bug turning into a silent rejection.
        errors.push(ConfigError::new("", "invalid configuration"));
    }
    let mut warnings = warnings;
    for list in [&mut errors, &mut warnings] {
        // Stable: problems at one path keep the order they were found in.
        list.sort_by_key(|e| order.position(&e.path));
        for e in list.iter_mut() {
            e.named = names.named(&e.path);
        }
    }
    let needed = |list: Vec<(String, String)>| {
        list.into_iter()
            .map(|(path, name)| Needed {
                at: names.named(&path).unwrap_or(path),
                name,
            })
            .collect()
    };
    Checked {
        config: config.filter(|_| errors.is_empty()),
        errors,
        warnings,
        variables: needed(unexpanded.needed),
        files: needed(files),
        counts: names.counts(),
    }
}
