//! Validation of `targets` (URLs, timing, method, expectations) and of request
//! header maps, which the rollback webhook shares: plain `headers` plus
//! secret `header_files`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::Value;

use super::error::{self, Problems};
use super::raw::{self, RawExpect, RawTarget};
use super::types::{Expect, HeaderValue, Redirects, Target};
use super::units::{self, Zero, show};
use super::values;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The default timeout is this, or the interval when that is shorter.
const DEFAULT_TIMEOUT_CAP: Duration = Duration::from_secs(2);
/// Probes more often than this flood the app and the logs with failures;
/// such a value is usually `1m` typed as `1ms`.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Below this no answer arrives in time, not even from loopback.
const MIN_TIMEOUT: Duration = Duration::from_millis(10);
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
    let interval = match &t.interval {
        Some(v) => floored(p, &at("interval"), v, MIN_INTERVAL, units::MAX_DURATION),
        None => Some(DEFAULT_INTERVAL),
    };
    let timeout = match (&t.timeout, interval) {
        (Some(v), _) => {
            // A suggested fix must also fit within the interval.
            let limit = interval.unwrap_or(units::MAX_DURATION);
            floored(p, &at("timeout"), v, MIN_TIMEOUT, limit)
        }
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
    let follow_redirects = match &t.follow_redirects {
        Some(v) => follow_redirects(p, &at("follow_redirects"), v),
        None => Some(Redirects::default()),
    };
    let expect = match &t.expect {
        Some(e) => expect(p, &at("expect"), e),
        None => Some(Expect::default()),
    };
    let scrape = match &t.scrape {
        Some(v) => units::boolean(p, &at("scrape"), v),
        None => Some(false),
    };
    if scrape == Some(true)
        && let Some(e) = &t.expect
    {
        // The body is the metrics exposition: what its lines say is judged
        // by the traffic entries, not by text matching.
        for (field, given) in [
            ("body_contains", e.body_contains.is_some()),
            ("json", e.json.is_some()),
        ] {
            if given {
                p.add(
                    &error::key(&at("expect"), field),
                    "does not apply to a scrape target (its body is the metrics exposition)",
                );
            }
        }
    }
    Some(Target {
        name: name?,
        url: url?,
        interval: interval?,
        timeout: timeout?,
        warmup: warmup?,
        method: method?,
        headers: headers?,
        follow_redirects: follow_redirects?,
        expect: expect?,
        scrape: scrape?,
    })
}

/// A duration of at least `floor`. Below it, the message suggests the
/// likely intended unit (`1ms` → `1m`, `5ns` → `5s`) when that reading is
/// within `floor..=limit`.
fn floored(
    p: &mut Problems,
    path: &str,
    value: &Value,
    floor: Duration,
    limit: Duration,
) -> Option<Duration> {
    let d = units::duration(p, path, value, Zero::Forbidden)?;
    if d >= floor {
        return Some(d);
    }
    // It parsed as a duration, so it is text, and safe to show as written.
    let written = value.as_str().map(str::trim).unwrap_or_default();
    let shown = if written.is_empty() || written.len() > 20 {
        show(d)
    } else {
        written.to_owned()
    };
    let hint = intended_unit(written, floor, limit)
        .map(|s| format!("; did you mean {s}?"))
        .unwrap_or_default();
    p.add(
        path,
        format!("{shown} is below the {} floor{hint}", show(floor)),
    );
    None
}

/// `1ms` read as `1m` (or `1s`): the first reading within `floor..=limit`,
/// for a plain number in milliseconds.
fn intended_unit(written: &str, floor: Duration, limit: Duration) -> Option<String> {
    let number = written.strip_suffix("ms")?.trim_end();
    if !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    ["m", "s"]
        .iter()
        .map(|u| format!("{number}{u}"))
        .find(|s| humantime::parse_duration(s).is_ok_and(|d| (floor..=limit).contains(&d)))
}

/// `none` or `same-origin`.
fn follow_redirects(p: &mut Problems, path: &str, value: &Value) -> Option<Redirects> {
    let choices = Redirects::NAMES.join(", ");
    let Some(given) = value.as_str() else {
        p.add(
            path,
            format!("expected one of {choices}, got {}", values::describe(value)),
        );
        return None;
    };
    match given.trim() {
        "none" => Some(Redirects::None),
        "same-origin" => Some(Redirects::SameOrigin),
        other => {
            p.add(
                path,
                format!(
                    "{} is not one of {choices}{}",
                    values::quote(other),
                    error::did_you_mean(other, Redirects::NAMES)
                ),
            );
            None
        }
    }
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
