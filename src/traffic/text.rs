//! Prometheus text format 0.0.4, read the way Prometheus reads it
//! (`model/textparse/promparse.go`): spaces and tabs anywhere between
//! tokens, blank lines, `# HELP` / `# TYPE` metadata, other comments
//! ignored, optional integer millisecond timestamps, values Go's float
//! syntax accepts. Like Prometheus's scrape, it refuses a sample with a
//! label name twice. Not supported: quoted (UTF-8) metric and label names,
//! which Prometheus asks for only with `escaping=allow-utf-8`, and label
//! values broken across lines.

use super::exposition::{
    ErrorKind, Exposition, Format, MetricType, ParseError, Role, Sample, excerpt,
};
use super::lex::{Cursor, check_unique, describe, not_a_number, text_float, unescaped};

pub(super) fn parse(body: &str) -> Result<Exposition<'_>, ParseError> {
    let mut out = Exposition::new(Format::Text, body.len());
    for (i, line) in body.split('\n').enumerate() {
        let mut c = Cursor::new(line);
        c.skip_blanks();
        match c.peek() {
            None => {}
            Some(b'#') => metadata(&mut out, c, i + 1)?,
            Some(_) => sample(&mut out, c, i + 1)?,
        }
    }
    Ok(out)
}

fn syntax(line: usize, c: &Cursor<'_>, message: String) -> ParseError {
    ParseError::at(ErrorKind::Syntax, line, c.line, c.pos, message)
}

/// `# HELP name text`, `# TYPE name type`; any other `#` line is a comment.
fn metadata<'a>(out: &mut Exposition<'a>, mut c: Cursor<'a>, n: usize) -> Result<(), ParseError> {
    c.pos += 1;
    if c.take_while(|b| b == b' ' || b == b'\t').is_empty() {
        return Ok(());
    }
    let help = if c.eat_str("HELP") {
        true
    } else if c.eat_str("TYPE") {
        false
    } else {
        return Ok(());
    };
    let what = if help { "HELP" } else { "TYPE" };
    if c.take_while(|b| b == b' ' || b == b'\t').is_empty() {
        // `# HELPER ...` or a bare `# HELP`: a comment to Prometheus too.
        return Ok(());
    }
    let Some(name) = c.metric_name() else {
        return Err(syntax(
            n,
            &c,
            format!(
                "expected a metric name after # {what}, found {}",
                excerpt(c.rest())
            ),
        ));
    };
    // The text is what follows the name less one separating character;
    // only blanks means none.
    let rest = c.rest();
    let text = if rest.bytes().all(|b| b == b' ' || b == b'\t') {
        ""
    } else {
        let mut chars = rest.chars();
        chars.next();
        chars.as_str()
    };
    let family = match out.families.last() {
        Some(f) if f.name == name && f.samples.is_empty() => out.families.len() - 1,
        _ => out.push_family(name, MetricType::Unknown),
    };
    if help {
        out.families[family].help = Some(unescaped(text, false)).filter(|h| !h.is_empty());
        return Ok(());
    }
    out.families[family].kind = match text {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "histogram" => MetricType::Histogram,
        "summary" => MetricType::Summary,
        "untyped" => MetricType::Unknown,
        _ => {
            c.pos = c.line.len() - text.len();
            return Err(syntax(
                n,
                &c,
                format!(
                    "unknown metric type {} for `{name}` (text 0.0.4 has counter, gauge, histogram, summary and untyped)",
                    excerpt(text)
                ),
            ));
        }
    };
    Ok(())
}

/// `name[{labels}] value [timestamp]`
fn sample<'a>(out: &mut Exposition<'a>, mut c: Cursor<'a>, n: usize) -> Result<(), ParseError> {
    let Some(name) = c.metric_name() else {
        let found = if c.peek() == Some(b'{') {
            "a sample must start with its metric name (quoted UTF-8 names are not supported)"
                .to_owned()
        } else {
            format!("expected a metric name, found {}", excerpt(c.rest()))
        };
        return Err(syntax(n, &c, found));
    };
    c.skip_blanks();
    let labels_from = out.labels.len();
    if c.eat(b'{') {
        labels(out, &mut c, n)?;
        c.skip_blanks();
    }
    let value_at = c.pos;
    let token = c.take_until(b" \t{");
    if token.is_empty() {
        return Err(syntax(n, &c, format!("expected a value after `{name}`")));
    }
    let Some(value) = text_float(token) else {
        c.pos = value_at;
        return Err(syntax(n, &c, not_a_number("value", token)));
    };
    c.skip_blanks();
    let mut timestamp = None;
    if !c.at_end() {
        let ts_at = c.pos;
        let digits = c.take_while(|b| b.is_ascii_digit());
        c.skip_blanks();
        if digits.is_empty() || !c.at_end() {
            if digits.is_empty() {
                c.pos = ts_at;
            }
            return Err(syntax(
                n,
                &c,
                format!(
                    "expected a timestamp (integer milliseconds) or the end of the line, found {}",
                    describe(c.rest())
                ),
            ));
        }
        let Ok(ms) = digits.parse::<i64>() else {
            c.pos = ts_at;
            return Err(syntax(n, &c, format!("timestamp {digits} is out of range")));
        };
        timestamp = Some(ms as f64 / 1000.0);
    }
    check_unique(out, labels_from, n, &c)?;

    let role = match out.families.last() {
        Some(f) => role(
            f.kind,
            f.name,
            name,
            out.labels[labels_from..]
                .iter()
                .any(|l| l.name == "quantile"),
        ),
        None => None,
    };
    let role = match role {
        Some(role) => role,
        None => {
            out.push_family(name, MetricType::Unknown);
            Role::Value
        }
    };
    let le = match role {
        Role::Bucket => out.labels[labels_from..]
            .iter()
            .find(|l| l.name == "le")
            .and_then(|l| text_float(&l.value)),
        _ => None,
    };
    out.push_sample(
        Sample {
            name,
            role,
            value,
            timestamp,
            le,
            labels: 0..0,
            family: 0,
        },
        labels_from,
    );
    Ok(())
}

/// The labels after `{`, up to and past `}`. As in Prometheus, blanks may
/// stand between any tokens, the comma after a label is optional and may
/// also end the list.
fn labels<'a>(out: &mut Exposition<'a>, c: &mut Cursor<'a>, n: usize) -> Result<(), ParseError> {
    loop {
        c.skip_blanks();
        if c.eat(b'}') {
            return Ok(());
        }
        let Some(name) = c.label_name() else {
            return Err(syntax(
                n,
                c,
                format!(
                    "expected a label name or `}}`, found {}",
                    describe(c.rest())
                ),
            ));
        };
        c.skip_blanks();
        if !c.eat(b'=') {
            return Err(syntax(
                n,
                c,
                format!(
                    "expected `=` after the label name `{name}`, found {}",
                    describe(c.rest())
                ),
            ));
        }
        c.skip_blanks();
        if !c.eat(b'"') {
            return Err(syntax(
                n,
                c,
                format!(
                    "expected a double-quoted value for the label `{name}`, found {}",
                    describe(c.rest())
                ),
            ));
        }
        let at = c.pos - 1;
        let Some(value) = c.quoted() else {
            c.pos = at;
            return Err(syntax(
                n,
                c,
                format!("the value of the label `{name}` has no closing quote on this line"),
            ));
        };
        out.labels.push(super::exposition::Label { name, value });
        c.skip_blanks();
        c.eat(b',');
    }
}

/// A sample's role in the current family, if its name belongs to it.
fn role(kind: MetricType, family: &str, name: &str, has_quantile: bool) -> Option<Role> {
    let suffix = name.strip_prefix(family)?;
    Some(match (kind, suffix) {
        // Families are usually named like their sample (`x_total`), but a
        // client that follows OpenMetrics naming may write `# TYPE x`.
        (MetricType::Counter, "" | "_total") => Role::Total,
        (MetricType::Counter, "_created") => Role::Created,
        (MetricType::Gauge | MetricType::Unknown, "") => Role::Value,
        (MetricType::Summary, "") if has_quantile => Role::Quantile,
        (MetricType::Summary, "") => Role::Value,
        (MetricType::Summary | MetricType::Histogram, "_count") => Role::Count,
        (MetricType::Summary | MetricType::Histogram, "_sum") => Role::Sum,
        (MetricType::Histogram, "_bucket") => Role::Bucket,
        _ => return None,
    })
}
