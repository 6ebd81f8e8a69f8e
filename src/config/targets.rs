//! Validation of `targets` (URLs, timing, method, expectations) and of request
//! header maps, which the rollback webhook shares: plain `headers` plus
//! secret `header_files`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::Value;

use super::error::{self, Problems};
use super::raw::{self, RawExpect, RawTarget};
use super::types::{Expect, HeaderValue, Target};
use super::units::{self, Zero, show};
use super::values;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The default timeout is this, or the interval when that is shorter.
const DEFAULT_TIMEOUT_CAP: Duration = Duration::from_secs(2);
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// `targets`: required, at least one, unique names.
pub(super) fn targets(p: &mut Problems, raw: &Option<Vec<RawTarget>>) -> Option<Vec<Target>> {
    let Some(raw) = raw else {
        p.add(
            "targets",
            "is required (list at least one endpoint to probe)",
        );
        return None;
    };
    if raw.is_empty() {
        p.add("targets", "must list at least one target");
        return None;
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let path = error::index("targets", i);
        if let Some(Value::String(name)) = &t.name {
            if let Some(first) = seen.get(name.as_str()) {
                p.add(
                    &error::key(&path, "name"),
                    format!(
                        "{} is already the name of targets[{first}]",
                        values::quote(name)
                    ),
                );
            } else {
                seen.insert(name, i);
            }
        }
        out.push(target(p, &path, t));
    }
    out.into_iter().collect()
}

fn target(p: &mut Problems, path: &str, t: &RawTarget) -> Option<Target> {
    raw::check_unknown(p, path, t);
    let at = |field: &str| error::key(path, field);
    let name =
        values::required(p, &at("name"), &t.name).and_then(|v| values::name(p, &at("name"), v));
    let url =
        values::required(p, &at("url"), &t.url).and_then(|v| values::http_url(p, &at("url"), v));
    let interval = units::duration_or(
        p,
        &at("interval"),
        &t.interval,
        DEFAULT_INTERVAL,
        Zero::Forbidden,
    );
    let timeout = match (&t.timeout, interval) {
        (Some(v), _) => units::duration(p, &at("timeout"), v, Zero::Forbidden),
        (None, Some(interval)) => Some(interval.min(DEFAULT_TIMEOUT_CAP)),
        (None, None) => None,
    };
    let timeout = match (timeout, interval) {
        // Probes start every interval; a longer timeout would let them pile up.
        (Some(timeout), Some(interval)) if timeout > interval => {
            p.add(
                &at("timeout"),
                format!(
                    "{} is longer than interval {}",
                    show(timeout),
                    show(interval)
                ),
            );
            None
        }
        (timeout, _) => timeout,
    };
    let warmup = units::duration_or(p, &at("warmup"), &t.warmup, Duration::ZERO, Zero::Allowed);
    let method = match &t.method {
        Some(v) => method(p, &at("method"), v),
        None => Some("GET".to_owned()),
    };
    let headers = headers(p, path, &t.headers, &t.header_files);
    let expect = match &t.expect {
        Some(e) => expect(p, &at("expect"), e),
        None => Some(Expect::default()),
    };
    Some(Target {
        name: name?,
        url: url?,
        interval: interval?,
        timeout: timeout?,
        warmup: warmup?,
        method: method?,
        headers: headers?,
        expect: expect?,
    })
}

fn method(p: &mut Problems, path: &str, value: &Value) -> Option<String> {
    let given = values::text(p, path, value)?;
    let upper = given.trim().to_ascii_uppercase();
    if METHODS.contains(&upper.as_str()) {
        Some(upper)
    } else {
        p.add(
            path,
            format!(
                "{} is not a supported method (one of: {})",
                values::quote(given),
                METHODS.join(", ")
            ),
        );
        None
    }
}

fn expect(p: &mut Problems, path: &str, e: &RawExpect) -> Option<Expect> {
    raw::check_unknown(p, path, e);
    let at = |field: &str| error::key(path, field);
    let mut ok = true;
    let mut status = Vec::new();
    if let Some(v) = &e.status {
        for (item_path, item) in values::list_or_one(&at("status"), v) {
            match units::whole(p, &item_path, item, 100, 599) {
                // 100..=599 always fits.
                Some(code) => status.push(u16::try_from(code).unwrap_or(u16::MAX)),
                None => ok = false,
            }
        }
    }
    let body_contains = match &e.body_contains {
        Some(v) => match values::text(p, &at("body_contains"), v) {
            Some("") => {
                p.add(
                    &at("body_contains"),
                    "must not be empty (every body contains \"\")",
                );
                None
            }
            Some(s) => Some(Some(s.to_owned())),
            None => None,
        },
        None => Some(None),
    };
    let mut json = BTreeMap::new();
    for (key, value) in e.json.iter().flatten() {
        if key.is_empty() || key.split('.').any(str::is_empty) {
            p.add(
                &error::key(&at("json"), key),
                format!(
                    "{} is not a dotted path like \"data.items.0.id\"",
                    values::quote(key)
                ),
            );
            ok = false;
        } else if key.contains(['[', ']']) {
            // `items[0]` would be looked up as a key named "items[0]" and
            // never match: indexes are dotted numbers.
            p.add(
                &error::key(&at("json"), key),
                format!(
                    "{} has brackets; write array indexes as numbers, like \"data.items.0.id\"",
                    values::quote(key)
                ),
            );
            ok = false;
        } else {
            json.insert(key.clone(), value.clone());
        }
    }
    let max_latency = match &e.max_latency {
        Some(v) => units::duration(p, &at("max_latency"), v, Zero::Forbidden).map(Some),
        None => Some(None),
    };
    ok.then_some(())?;
    Some(Expect {
        status,
        body_contains: body_contains?,
        json,
        max_latency: max_latency?,
    })
}

/// `headers` and `header_files` of the map at `path`, merged. Header values
/// are never quoted in messages: they often hold tokens.
pub(super) fn headers(
    p: &mut Problems,
    path: &str,
    plain: &Option<BTreeMap<String, Value>>,
    files: &Option<BTreeMap<String, Value>>,
) -> Option<BTreeMap<String, HeaderValue>> {
    let mut out = BTreeMap::new();
    let mut ok = true;
    // Header names are case-insensitive: `authorization` and `Authorization`
    // would be sent as the same header.
    let mut seen: HashMap<String, String> = HashMap::new();
    let sources = [("headers", plain), ("header_files", files)];
    for (field, map) in sources {
        for (name, value) in map.iter().flatten() {
            let at = error::key(&error::key(path, field), name);
            if !valid_header_name(name) {
                p.add(
                    &at,
                    format!("{} is not a valid HTTP header name", values::quote(name)),
                );
                ok = false;
                continue;
            }
            if let Some(first) = seen.insert(name.to_ascii_lowercase(), format!("{field}.{name}")) {
                p.add(
                    &at,
                    format!(
                        "header {name} is also set as {first} (header names are case-insensitive)"
                    ),
                );
                ok = false;
                continue;
            }
            let header = if field == "headers" {
                values::secret_text(p, &at, value).map(|s| HeaderValue::Plain(s.to_owned()))
            } else {
                values::secret_file(p, &at, value).map(HeaderValue::Secret)
            };
            match header {
                Some(h) if !valid_header_value(h.expose()) => {
                    let what = if field == "headers" {
                        "the value"
                    } else {
                        "the file"
                    };
                    p.add(
                        &at,
                        format!("{what} contains a line break or control character, which a header value cannot hold"),
                    );
                    ok = false;
                }
                Some(h) => {
                    out.insert(name.clone(), h);
                }
                None => ok = false,
            }
        }
    }
    ok.then_some(out)
}

/// RFC 9110 token characters.
fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// No control characters except tab: a line break would split the request.
fn valid_header_value(value: &str) -> bool {
    value.chars().all(|c| c == '\t' || !c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_and_values() {
        assert!(valid_header_name("X-Api-Key"));
        assert!(valid_header_name("x_custom.v1"));
        assert!(!valid_header_name("Bad Header"));
        assert!(!valid_header_name("Bad:Header"));
        assert!(!valid_header_name(""));
        assert!(valid_header_value("Bearer abc\tdef"));
        assert!(!valid_header_value("abc\r\nX-Injected: 1"));
    }
}
