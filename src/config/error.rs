//! Configuration errors: `ConfigError` (one problem and the path of the field
//! it is about), `ConfigErrors` (all of them), the `Problems` collector that
//! every validation step fills, field-path helpers and "did you mean" hints.

use std::fmt;

/// One problem, with the path of the offending field, e.g. path
/// `targets[1].timeout`, message `3s is longer than interval 1s`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// Where the problem is: `targets[1].timeout`; empty for the whole file.
    pub path: String,
    /// What is wrong, naming the bad value.
    pub message: String,
    /// The path with the name of the target, SLO or rule it is in, for a
    /// person: `rules[2] "fast-burn".when.burn_rate.slo`. None: the path
    /// says it all (or names were not looked up).
    pub named: Option<String>,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
            named: None,
        }
    }

    /// `path: message`, with the path naming its target, SLO or rule when
    /// that is known: what `check-config` and the logs print.
    pub fn located(&self) -> String {
        match &self.named {
            Some(named) => format!("{named}: {}", self.message),
            None => self.to_string(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration, in document order. Never empty
/// when returned by `load` or `parse`.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects problems while validation goes on, so that one run reports all
/// of them instead of stopping at the first; also the warnings (valid values
/// that are almost certainly meant otherwise) and, when checking offline,
/// the files that were not read.
#[derive(Debug, Default)]
pub(super) struct Problems {
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
    /// Checking offline: files are listed in `files`, not read.
    pub(super) offline: bool,
    /// `(path, file)` of every file an offline check did not read.
    pub(super) files: Vec<(String, String)>,
}

impl Problems {
    pub(super) fn offline() -> Problems {
        Problems {
            offline: true,
            ..Problems::default()
        }
    }

    pub(super) fn add(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(ConfigError::new(path, message));
    }

    pub(super) fn push(&mut self, error: ConfigError) {
        self.errors.push(error);
    }

    /// A valid value that is almost certainly not what was meant.
    pub(super) fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.warnings.push(ConfigError::new(path, message));
    }

    /// Offline: `file` (at `path`) would be read; says whether to skip it.
    pub(super) fn skip_file(&mut self, path: &str, file: &str) -> bool {
        if self.offline {
            self.files.push((path.to_owned(), file.to_owned()));
        }
        self.offline
    }

    #[cfg(test)]
    pub(super) fn into_vec(self) -> Vec<ConfigError> {
        self.errors
    }

    /// Errors, warnings, and the files an offline check did not read.
    pub(super) fn into_parts(self) -> (Vec<ConfigError>, Vec<ConfigError>, Vec<(String, String)>) {
        (self.errors, self.warnings, self.files)
    }
}

/// The path of `key` inside the map at `base`: `targets[0]` + `url` →
/// `targets[0].url`. Keys that would make the path ambiguous (dots, spaces,
/// brackets) are quoted: `expect.json["data.id"]`.
pub(super) fn key(base: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (plain, base.is_empty()) {
        (true, true) => key.to_owned(),
        (true, false) => format!("{base}.{key}"),
        (false, _) => format!("{base}[{key:?}]"),
    }
}

/// The path of item `i` of the list at `base`: `targets` + 1 → `targets[1]`.
pub(super) fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// The path one level up (`targets[1].url` → `targets[1]` → `targets` → ""),
/// or None for the root. Understands the quoting done by `key`.
pub(super) fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let mut cut = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in path.char_indices() {
        if in_quotes {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_quotes = false,
                _ => {}
            }
        } else {
            match c {
                '"' => in_quotes = true,
                '.' | '[' => cut = i,
                _ => {}
            }
        }
    }
    Some(&path[..cut])
}

/// The known name closest to `word`, when it is close enough (at most two
/// edits) to be a likely typo.
pub(super) fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (edit_distance(&word.to_lowercase(), &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `; did you mean "x"?` when a close known name exists, else nothing.
pub(super) fn did_you_mean<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, known)
        .map(|k| format!("; did you mean {k:?}?"))
        .unwrap_or_default()
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// Runs one reader for a unit test: its value, or its messages joined.
#[cfg(test)]
pub(super) fn check<T>(f: impl FnOnce(&mut Problems) -> Option<T>) -> Result<T, String> {
    let mut p = Problems::default();
    let out = f(&mut p);
    let messages: Vec<String> = p.errors.into_iter().map(|e| e.message).collect();
    match out {
        Some(v) if messages.is_empty() => Ok(v),
        _ => Err(messages.join(" | ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_and_taken_apart() {
        let target = index("targets", 1);
        assert_eq!(target, "targets[1]");
        assert_eq!(key("", "service"), "service");
        assert_eq!(key(&target, "url"), "targets[1].url");
        assert_eq!(key("expect.json", "data.id"), r#"expect.json["data.id"]"#);
        assert_eq!(parent("targets[1].url"), Some("targets[1]"));
        assert_eq!(parent("targets[1]"), Some("targets"));
        assert_eq!(parent("targets"), Some(""));
        assert_eq!(parent(""), None);
        assert_eq!(parent(r#"a.json["x.[y\"]"]"#), Some("a.json"));
    }

    #[test]
    fn suggests_only_close_names() {
        let known = ["slo", "short", "long", "factor", "min_samples"];
        assert_eq!(closest("facter", known), Some("factor"));
        assert_eq!(closest("Factor", known), Some("factor"));
        assert_eq!(closest("min_sample", known), Some("min_samples"));
        assert_eq!(closest("window", known), None);
        assert_eq!(did_you_mean("lng", known), r#"; did you mean "long"?"#);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn errors_display_one_per_line() {
        let errors = ConfigErrors(vec![
            ConfigError::new("", "invalid YAML"),
            ConfigError::new("targets[1].timeout", "3s is longer than interval 1s"),
        ]);
        assert_eq!(
            errors.to_string(),
            "invalid YAML\ntargets[1].timeout: 3s is longer than interval 1s"
        );
    }
}
