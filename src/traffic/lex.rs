//! Scanning that both text formats share: a cursor over one line, metric
//! and label names, quoted label values, numbers, and the wording of the
//! errors they have in common. The cursor only ever stops on an ASCII byte
//! or at the end, so every slice it takes is on a character boundary.

use std::borrow::Cow;

use super::exposition::{ErrorKind, Exposition, ParseError, excerpt};

const METRIC: u8 = 1;
const LABEL: u8 = 2;

/// Which names each byte may be part of: letters, digits and `_` both,
/// `:` metric names only. (Names are scanned a byte at a time on every
/// line, so a table.)
const NAME_BYTES: [u8; 256] = {
    let mut t = [0; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if b.is_ascii_alphanumeric() || b == b'_' {
            t[i] = METRIC | LABEL;
        } else if b == b':' {
            t[i] = METRIC;
        }
        i += 1;
    }
    t
};

pub(super) struct Cursor<'a> {
    pub line: &'a str,
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(line: &'a str) -> Self {
        Cursor { line, pos: 0 }
    }

    pub fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.pos).copied()
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.line.len()
    }

    pub fn rest(&self) -> &'a str {
        self.line.get(self.pos..).unwrap_or("")
    }

    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn eat_str(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// Skips spaces and tabs (text 0.0.4's whitespace).
    pub fn skip_blanks(&mut self) {
        self.take_while(|b| b == b' ' || b == b'\t');
    }

    /// The longest run of ASCII bytes that satisfy `f` (possibly empty).
    pub fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        let bytes = self.line.as_bytes();
        while let Some(&b) = bytes.get(self.pos) {
            if !b.is_ascii() || !f(b) {
                break;
            }
            self.pos += 1;
        }
        &self.line[start..self.pos]
    }

    /// Everything up to the next byte in `stops` (ASCII) or the end.
    pub fn take_until(&mut self, stops: &[u8]) -> &'a str {
        let start = self.pos;
        let rest = &self.line.as_bytes()[start..];
        let len = rest
            .iter()
            .position(|b| stops.contains(b))
            .unwrap_or(rest.len());
        self.pos += len;
        &self.line[start..self.pos]
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    pub fn metric_name(&mut self) -> Option<&'a str> {
        self.name(METRIC)
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`
    pub fn label_name(&mut self) -> Option<&'a str> {
        self.name(LABEL)
    }

    /// A name of the `class` (in `NAME_BYTES`), not starting with a digit.
    fn name(&mut self, class: u8) -> Option<&'a str> {
        let start = self.pos;
        let bytes = self.line.as_bytes();
        if bytes.get(start).is_none_or(|b| b.is_ascii_digit()) {
            return None;
        }
        let len = bytes[start..]
            .iter()
            .take_while(|&&b| NAME_BYTES[usize::from(b)] & class != 0)
            .count();
        if len == 0 {
            return None;
        }
        self.pos += len;
        Some(&self.line[start..self.pos])
    }

    /// A label value after its opening quote, up to and past the closing
    /// one. `\n`, `\"` and `\\` are unescaped; a backslash before any other
    /// character stays as it is (as Prometheus and the OpenMetrics parsers
    /// do). `None`: no closing quote on the line.
    pub fn quoted(&mut self) -> Option<Cow<'a, str>> {
        let start = self.pos;
        let bytes = self.line.as_bytes();
        let mut escaped = false;
        let mut i = start;
        loop {
            match bytes.get(i)? {
                b'"' => break,
                // Skip the escaped byte; a multi-byte character's other
                // bytes are never `"` or `\`, so scanning on is safe.
                b'\\' => {
                    bytes.get(i + 1)?;
                    escaped = true;
                    i += 2;
                }
                _ => i += 1,
            }
        }
        self.pos = i + 1;
        let raw = &self.line[start..i];
        Some(if escaped {
            Cow::Owned(unescape(raw, true))
        } else {
            Cow::Borrowed(raw)
        })
    }
}

/// Undoes the formats' escaping: `\\` and `\n` always, `\"` when `quotes`
/// (label values and OpenMetrics HELP; text 0.0.4 HELP keeps it).
pub(super) fn unescape(raw: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') if quotes => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// `text` unescaped, borrowed when it has nothing to unescape.
pub(super) fn unescaped(text: &str, quotes: bool) -> Cow<'_, str> {
    if text.contains('\\') {
        Cow::Owned(unescape(text, quotes))
    } else {
        Cow::Borrowed(text)
    }
}

/// OpenMetrics `realnumber`: `[sign] digits [. digits] [e [sign] digits]`
/// with at least one mantissa digit; no NaN or infinities. A number too big
/// for an f64 is refused (the specification says it must fit).
pub(super) fn om_real(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int = count_digits(&b[i..]);
    i += int;
    let mut frac = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac = count_digits(&b[i..]);
        i += frac;
    }
    if int + frac == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = count_digits(&b[i..]);
        if exp == 0 {
            return None;
        }
        i += exp;
    }
    if i != b.len() {
        return None;
    }
    finite(s)
}

/// OpenMetrics `number`: a `realnumber`, `[sign]inf`/`infinity` or `nan`
/// (case-insensitive).
pub(super) fn om_number(s: &str) -> Option<f64> {
    if let Some(v) = om_real(s) {
        return Some(v);
    }
    let (neg, word) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if word.eq_ignore_ascii_case("inf") || word.eq_ignore_ascii_case("infinity") {
        Some(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        })
    } else if s.eq_ignore_ascii_case("nan") {
        Some(f64::NAN)
    } else {
        None
    }
}

/// A text 0.0.4 value, as Prometheus reads it (Go's float syntax without
/// hexadecimal floats or `_`): decimals, `Inf`/`Infinity` with a sign, `NaN`,
/// any case. A finite number too big for an f64 is refused, as Go does.
pub(super) fn text_float(s: &str) -> Option<f64> {
    if let Some(v) = fast_integer(s) {
        return Some(v);
    }
    let v: f64 = s.parse().ok()?;
    if v.is_infinite() && !s.bytes().any(|b| b == b'i' || b == b'I') {
        return None;
    }
    Some(v)
}

/// Plain unsigned integers of up to 15 digits (most counters and bucket
/// counts) convert exactly without the general float parser.
pub(super) fn fast_integer(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 15 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    // Below 2^53, so the conversion is exact.
    Some(n as f64)
}

fn finite(s: &str) -> Option<f64> {
    if let Some(v) = fast_integer(s) {
        return Some(v);
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn count_digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

/// A label name twice on one sample: Prometheus's scrape refuses it, and it
/// would make matching ambiguous.
pub(super) fn check_unique(
    out: &Exposition<'_>,
    from: usize,
    n: usize,
    c: &Cursor<'_>,
) -> Result<(), ParseError> {
    let labels = &out.labels[from..];
    let dup = if labels.len() <= 16 {
        labels
            .iter()
            .enumerate()
            .find(|(i, l)| labels[..*i].iter().any(|m| m.name == l.name))
            .map(|(_, l)| l.name)
    } else {
        let mut names: Vec<&str> = labels.iter().map(|l| l.name).collect();
        names.sort_unstable();
        names.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
    };
    match dup {
        Some(name) => Err(ParseError::at(
            ErrorKind::Content,
            n,
            c.line,
            0,
            format!("the label `{name}` appears twice on one sample"),
        )),
        None => Ok(()),
    }
}

pub(super) fn not_a_number(what: &str, token: &str) -> String {
    if token.ends_with('\r') {
        return format!(
            "the {what} ends with a carriage return (\\r): lines must end with \\n alone"
        );
    }
    format!("the {what} {} is not a number", excerpt(token))
}

/// What the cursor found, for an error message.
pub(super) fn describe(rest: &str) -> String {
    if rest.is_empty() {
        "the end of the line".to_owned()
    } else {
        excerpt(rest)
    }
}
