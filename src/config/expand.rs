//! `${VAR}` expansion in every string value of the document, before anything
//! reads it (map keys are left alone). `${VAR:-default}` falls back when VAR
//! is unset or empty; `$${` is a literal `${`.

use serde_json::Value;

use super::error::{self, ConfigError};

/// What expansion found wrong. A string with any of these is left as written.
#[derive(Debug, Default)]
pub(super) struct Unexpanded {
    /// Malformed references, and unset variables when the environment is
    /// the one to run with.
    pub(super) errors: Vec<ConfigError>,
    /// Offline: `(path, variable)` of every variable without a default that
    /// the environment would have to set.
    pub(super) needed: Vec<(String, String)>,
}

/// Expands every string leaf of `value` in place, looking variables up in
/// `env`; `offline`: no environment, unset variables are listed as needed
/// rather than reported as errors.
pub(super) fn expand(
    value: &mut Value,
    env: &dyn Fn(&str) -> Option<String>,
    offline: bool,
) -> Unexpanded {
    let mut out = Unexpanded::default();
    walk(value, "", env, offline, &mut out);
    out
}

fn walk(
    value: &mut Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    offline: bool,
    out: &mut Unexpanded,
) {
    match value {
        Value::String(s) => match expand_str(s, env) {
            Ok(expanded) => *s = expanded,
            Err(problems) => {
                for problem in problems {
                    match problem {
                        Problem::Unset(name) if offline => out.needed.push((path.to_owned(), name)),
                        problem => out.errors.push(ConfigError::new(path, problem.to_string())),
                    }
                }
            }
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &error::index(path, i), env, offline, out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                walk(v, &error::key(path, k), env, offline, out);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Why a string could not be expanded.
#[derive(Debug, PartialEq)]
enum Problem {
    Unset(String),
    Malformed(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Unset(name) => write!(f, "environment variable {name} is not set"),
            Problem::Malformed(message) => f.write_str(message),
        }
    }
}

/// Expands one string. Values substituted in are not expanded again, so an
/// environment variable cannot inject further references.
fn expand_str(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, Vec<Problem>> {
    let mut out = String::with_capacity(s.len());
    let mut problems = Vec::new();
    let mut rest = s;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(close) = tail.find('}') else {
                problems.push(Problem::Malformed(
                    r#"unterminated "${" (write "$${" for a literal "${")"#.to_owned(),
                ));
                return Err(problems);
            };
            let reference = &tail[..close];
            match lookup(reference, env) {
                Ok(value) => out.push_str(&value),
                Err(problem) => problems.push(problem),
            }
            rest = &tail[close + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Resolves the inside of `${...}`: `NAME` or `NAME:-default`.
fn lookup(reference: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, Problem> {
    let (name, default) = match reference.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (reference, None),
    };
    if !is_variable_name(name) {
        return Err(Problem::Malformed(format!(
            "{:?} is not a valid variable reference (write ${{NAME}} or ${{NAME:-default}})",
            format!("${{{reference}}}")
        )));
    }
    match (env(name), default) {
        (Some(value), Some(default)) if value.is_empty() => Ok(default.to_owned()),
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(Problem::Unset(name.to_owned())),
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".to_owned()),
            "EMPTY" => Some(String::new()),
            "REF" => Some("${TOKEN}".to_owned()),
            _ => None,
        }
    }

    fn one(s: &str) -> Result<String, Vec<String>> {
        expand_str(s, &env).map_err(|p| p.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn expands_variables_defaults_and_escapes() {
        assert_eq!(one("Bearer ${TOKEN}").as_deref(), Ok("Bearer s3cret"));
        assert_eq!(one("${MISSING:-5s}").as_deref(), Ok("5s"));
        assert_eq!(one("${EMPTY:-fallback}").as_deref(), Ok("fallback"));
        assert_eq!(one("${EMPTY}").as_deref(), Ok(""));
        assert_eq!(one("${TOKEN:-unused}").as_deref(), Ok("s3cret"));
        assert_eq!(one("${MISSING:-}").as_deref(), Ok(""));
        assert_eq!(one("literal $${TOKEN}").as_deref(), Ok("literal ${TOKEN}"));
        assert_eq!(one("cost $5, $$ and $").as_deref(), Ok("cost $5, $$ and $"));
        assert_eq!(one("${REF}").as_deref(), Ok("${TOKEN}"), "no re-expansion");
        assert_eq!(one("${TOKEN}${TOKEN}").as_deref(), Ok("s3crets3cret"));
    }

    #[test]
    fn reports_every_unset_variable_and_bad_reference() {
        assert_eq!(
            one("${A}/${TOKEN}/${B}"),
            Err(vec![
                "environment variable A is not set".to_owned(),
                "environment variable B is not set".to_owned(),
            ])
        );
        let Err(bad) = one("${not valid}") else {
            panic!("accepted a bad name")
        };
        assert!(bad[0].contains(r#""${not valid}" is not a valid variable reference"#));
        let Err(open) = one("x ${TOKEN") else {
            panic!("accepted an unterminated reference")
        };
        assert!(open[0].starts_with("unterminated"));
        assert!(one("${}").is_err());
    }

    #[test]
    fn walks_strings_only_and_reports_paths() {
        let mut value = json!({
            "targets": [{"headers": {"Authorization": "Bearer ${APP_TOKEN}"}, "url": "${TOKEN}"}],
            "${TOKEN}": 5,
        });
        let errors = expand(&mut value, &env, false).errors;
        assert_eq!(
            errors,
            vec![ConfigError::new(
                "targets[0].headers.Authorization",
                "environment variable APP_TOKEN is not set"
            )]
        );
        assert_eq!(value["targets"][0]["url"], "s3cret");
        assert_eq!(value["${TOKEN}"], 5, "keys are not expanded");
        assert_eq!(
            value["targets"][0]["headers"]["Authorization"],
            "Bearer ${APP_TOKEN}"
        );
    }

    /// Offline, an unset variable is a need, not an error; a malformed
    /// reference is an error either way, and defaults still apply.
    #[test]
    fn offline_lists_unset_variables_instead_of_refusing_them() {
        let mut value = json!({
            "a": "Bearer ${APP_TOKEN}",
            "b": ["${PORT:-8080}", "${not valid}"],
        });
        let found = expand(&mut value, &|_| None, true);
        assert_eq!(found.needed, vec![("a".to_owned(), "APP_TOKEN".to_owned())]);
        assert_eq!(found.errors.len(), 1);
        assert_eq!(found.errors[0].path, "b[1]");
        assert_eq!(value["b"][0], "8080");
        assert_eq!(value["a"], "Bearer ${APP_TOKEN}");
    }
}
