//! Leaf values that are not quantities: text, names, URLs, lists, secret
//! files, and how a bad value is shown in a message. Each reader records a
//! problem naming the bad value and returns None, so validation goes on.

use serde_json::Value;

use super::error::{self, Problems};
use super::types::Secret;
use crate::redact;

/// Largest `*_file` read: secrets are short, and a path to a huge or endless
/// file (`/dev/zero`) must not hang startup.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// How a value is shown in a message: strings quoted (and shortened), other
/// scalars as written, collections by kind.
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => quote(s),
        Value::Null => "nothing".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a map".to_owned(),
    }
}

/// `"text"`, cut to a readable length.
pub(super) fn quote(s: &str) -> String {
    const MAX_CHARS: usize = 60;
    if s.chars().count() <= MAX_CHARS {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX_CHARS).collect();
        format!("{head:?}…")
    }
}

/// A field that must be present.
pub(super) fn required<'a>(
    p: &mut Problems,
    path: &str,
    value: &'a Option<Value>,
) -> Option<&'a Value> {
    if value.is_none() {
        p.add(path, "is required");
    }
    value.as_ref()
}

/// Text. A number or boolean is refused rather than converted, because YAML
/// already changed how it was written (`010` → 10, `1.10` → 1.1).
pub(super) fn text<'a>(p: &mut Problems, path: &str, value: &'a Value) -> Option<&'a str> {
    match value {
        Value::String(s) => Some(s),
        Value::Number(_) | Value::Bool(_) => {
            p.add(
                path,
                format!(
                    "expected text, got {v}; quote it: \"{v}\"",
                    v = describe(value)
                ),
            );
            None
        }
        other => {
            p.add(path, format!("expected text, got {}", describe(other)));
            None
        }
    }
}

/// Text that may be a secret (a header value, a routing key): like `text`,
/// but a wrong value is described by its kind only, never shown.
pub(super) fn secret_text<'a>(p: &mut Problems, path: &str, value: &'a Value) -> Option<&'a str> {
    match value {
        Value::String(s) => Some(s),
        Value::Number(_) | Value::Bool(_) => {
            let kind = if value.is_number() {
                "a number"
            } else {
                "a boolean"
            };
            p.add(
                path,
                format!("expected text, got {kind} (not shown: it may be a secret); quote it"),
            );
            None
        }
        other => {
            p.add(path, format!("expected text, got {}", describe(other)));
            None
        }
    }
}

/// A name usable as a metric label value and in dedup keys.
pub(super) fn name(p: &mut Problems, path: &str, value: &Value) -> Option<String> {
    let s = text(p, path, value)?;
    if s.is_empty() {
        p.add(path, "must not be empty");
        return None;
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        p.add(
            path,
            format!(
                "{} is not a valid name (use letters, digits, \".\", \"_\" and \"-\")",
                quote(s)
            ),
        );
        return None;
    }
    Some(s.to_owned())
}

/// A container name: a DNS label (lower-case letters, digits and '-',
/// starting and ending with a letter or digit, at most 63 characters).
pub(super) fn container_name(p: &mut Problems, path: &str, value: &Value) -> Option<String> {
    let s = text(p, path, value)?;
    let label = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !label {
        p.add(
            path,
            format!(
                "{} is not a container name (lower-case letters, digits and '-', at most 63)",
                quote(s)
            ),
        );
        return None;
    }
    Some(s.to_owned())
}

/// An absolute http or https URL. A bad one is shown without credentials.
pub(super) fn http_url(p: &mut Problems, path: &str, value: &Value) -> Option<url::Url> {
    let s = text(p, path, value)?;
    match url::Url::parse(s.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
        Ok(url) => {
            p.add(
                path,
                format!(
                    "{} must use http or https, not {}",
                    quote(&redact::url_text(s)),
                    url.scheme()
                ),
            );
            None
        }
        Err(e) => {
            let shown = quote(&redact::url_text(s));
            p.add(path, format!("{shown} is not an absolute URL: {e}"));
            None
        }
    }
}

/// A list, or one item standing for a list of one; each with its path.
pub(super) fn list_or_one<'a>(path: &str, value: &'a Value) -> Vec<(String, &'a Value)> {
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| (error::index(path, i), item))
            .collect(),
        one => vec![(path.to_owned(), one)],
    }
}

/// Reads a `*_file` secret: relative to the current directory, trimmed,
/// non-empty. The contents never appear in a message.
pub(super) fn secret_file(p: &mut Problems, path: &str, value: &Value) -> Option<Secret> {
    let file = text(p, path, value)?;
    if file.is_empty() {
        p.add(path, "must name a file");
        return None;
    }
    if p.skip_file(path, file) {
        return None;
    }
    match read_limited(file) {
        Ok(contents) if contents.trim().is_empty() => {
            p.add(path, format!("file {file} is empty"));
            None
        }
        Ok(contents) => Some(Secret::new(contents.trim())),
        Err(e) => {
            p.add(path, format!("cannot read {file}: {e}"));
            None
        }
    }
}

fn read_limited(file: &str) -> Result<String, String> {
    let bytes =
        super::file::read(std::path::Path::new(file), MAX_SECRET_BYTES).map_err(|e| match e {
            super::file::ReadError::TooLarge(_) => format!("{e}, which is too big for a secret"),
            e => e.to_string(),
        })?;
    String::from_utf8(bytes).map_err(|_| "not valid UTF-8 text".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::config::error::check as one;

    #[test]
    fn text_names_and_urls() {
        assert_eq!(
            one(|p| text(p, "x", &json!(404)).map(str::to_owned)),
            Err(r#"expected text, got 404; quote it: "404""#.to_owned())
        );
        assert_eq!(
            one(|p| name(p, "x", &json!("api-v1.2_x"))),
            Ok("api-v1.2_x".to_owned())
        );
        assert!(one(|p| name(p, "x", &json!("a b"))).is_err());
        assert_eq!(
            one(|p| secret_text(p, "x", &json!(80486135792468_u64)).map(str::to_owned)),
            Err("expected text, got a number (not shown: it may be a secret); quote it".to_owned())
        );
        assert!(one(|p| name(p, "x", &json!(""))).is_err());
        let url = |v: Value| one(|p| http_url(p, "x", &v)).map(|u| u.to_string());
        assert_eq!(
            url(json!("http://127.0.0.1:8080/health")),
            Ok("http://127.0.0.1:8080/health".to_owned())
        );
        assert!(
            url(json!("ftp://host/x"))
                .unwrap_err()
                .contains("must use http or https")
        );
        assert!(
            url(json!("/health"))
                .unwrap_err()
                .contains("not an absolute URL")
        );
        assert!(url(json!("http://")).is_err());
    }

    #[test]
    fn secret_files_are_read_trimmed_and_checked() {
        let dir = std::env::temp_dir().join(format!("backstop-units-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let good = dir.join("token");
        std::fs::write(&good, "  tok3n\n").expect("write");
        let empty = dir.join("empty");
        std::fs::write(&empty, "\n \n").expect("write");
        let read = |f: &std::path::Path| one(|p| secret_file(p, "x", &json!(f.to_string_lossy())));
        assert_eq!(
            read(&good).map(|s| s.expose().to_owned()),
            Ok("tok3n".to_owned())
        );
        assert!(read(&empty).unwrap_err().ends_with("is empty"));
        let missing = read(&dir.join("missing")).unwrap_err();
        assert!(
            missing.starts_with("cannot read ") && missing.contains("missing"),
            "{missing}"
        );
        // A FIFO would wait for a writer forever, /dev/zero never ends.
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.expect("mkfifo").success());
        assert!(
            read(&fifo)
                .unwrap_err()
                .ends_with("fifo: it is a FIFO, not a regular file")
        );
        assert_eq!(
            read(std::path::Path::new("/dev/zero")).unwrap_err(),
            "cannot read /dev/zero: it is a character device, not a regular file"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
