//! PromQL instant-vector selectors: `metric{label="v", l2!="x", l3=~"re",
//! l4!~"re"}`, `{__name__="x", ...}`, and `{label=...}` without a name (the
//! `match` of a traffic preset). Semantics are Prometheus's: a missing label
//! has the value "", regexes are RE2 (the `regex` crate) anchored at both
//! ends with `.` matching newlines (`^(?s:RE)$`, as Prometheus compiles
//! them), and a selector without a name needs a matcher that does not match
//! "". Common regexes (a literal, `.*`, `.+`, `prefix.*`, `a|b|c`) are
//! matched without running the regex engine.

use std::fmt;
use std::str::FromStr;

use regex::Regex;

use super::exposition::{Label, find_label};

/// A parsed selector; `matches` is the fast path a scrape runs per sample.
#[derive(Debug, Clone)]
pub struct Selector {
    name: Option<String>,
    matchers: Vec<Matcher>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One `label op "value"`.
#[derive(Debug, Clone)]
pub struct Matcher {
    label: String,
    op: MatchOp,
    value: String,
    test: Test,
}

/// What `=` or `=~` checks (`!=` and `!~` negate it).
#[derive(Debug, Clone)]
enum Test {
    Is(String),
    Any,
    NonEmpty,
    Prefix(String),
    OneOf(Vec<String>),
    Regex(Regex),
}

impl Test {
    fn holds(&self, v: &str) -> bool {
        match self {
            Test::Is(s) => v == s,
            Test::Any => true,
            Test::NonEmpty => !v.is_empty(),
            Test::Prefix(p) => v.starts_with(p.as_str()),
            Test::OneOf(set) => set.iter().any(|s| s == v),
            Test::Regex(re) => re.is_match(v),
        }
    }

    /// The regex `pattern`, or the cheaper test that is equivalent to it.
    fn regex(pattern: &str) -> Result<Test, String> {
        // Alone first, so that a pattern such as `a)|(b` cannot escape the
        // anchoring group below.
        Regex::new(pattern).map_err(regex_error)?;
        let plain = |s: &str| {
            !s.contains([
                '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
            ])
        };
        Ok(match pattern {
            ".*" => Test::Any,
            ".+" => Test::NonEmpty,
            p if plain(p) => Test::Is(p.to_owned()),
            p if p.strip_suffix(".*").is_some_and(plain) => {
                Test::Prefix(p[..p.len() - 2].to_owned())
            }
            p if p.split('|').all(plain) => Test::OneOf(p.split('|').map(str::to_owned).collect()),
            p => Test::Regex(Regex::new(&format!("^(?s:{p})$")).map_err(regex_error)?),
        })
    }
}

fn regex_error(e: regex::Error) -> String {
    // The crate's message draws the pattern over several lines; keep the
    // line that says what is wrong.
    let text = e.to_string();
    let what = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or(text.lines().next().unwrap_or(""));
    format!("invalid regex: {what}")
}

impl Matcher {
    /// A matcher; `Err` says why a regex does not compile.
    pub fn new(label: &str, op: MatchOp, value: &str) -> Result<Matcher, String> {
        let test = match op {
            MatchOp::Equal | MatchOp::NotEqual => Test::Is(value.to_owned()),
            MatchOp::Regex | MatchOp::NotRegex => Test::regex(value)?,
        };
        Ok(Matcher {
            label: label.to_owned(),
            op,
            value: value.to_owned(),
            test,
        })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn op(&self) -> MatchOp {
        self.op
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label value (`""` for a missing label) passes.
    pub fn matches(&self, value: &str) -> bool {
        let holds = self.test.holds(value);
        match self.op {
            MatchOp::Equal | MatchOp::Regex => holds,
            MatchOp::NotEqual | MatchOp::NotRegex => !holds,
        }
    }
}

impl Selector {
    pub fn parse(input: &str) -> Result<Selector, SelectorError> {
        Parser {
            s: input,
            pos: 0,
            narrowing: false,
        }
        .selector()
    }

    /// Label matchers that narrow another selector with [`Selector::and`]
    /// (`{code!="404"}`): like `parse`, but every matcher may match the
    /// empty string, since the selector they narrow names the metric.
    pub fn parse_narrowing(input: &str) -> Result<Selector, SelectorError> {
        Parser {
            s: input,
            pos: 0,
            narrowing: true,
        }
        .selector()
    }

    /// The metric name every match has, if the selector fixes one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    /// Whether the sample `name{labels}` is selected.
    pub fn matches(&self, name: &str, labels: &[Label<'_>]) -> bool {
        if self.name.as_deref().is_some_and(|n| n != name) {
            return false;
        }
        self.matchers.iter().all(|m| {
            let value = if m.label == "__name__" {
                name
            } else {
                find_label(labels, &m.label).unwrap_or("")
            };
            m.matches(value)
        })
    }

    /// Both selectors at once: `self` with `other`'s matchers added (how a
    /// traffic entry's `match` narrows a preset's selectors).
    pub fn and(&self, other: &Selector) -> Selector {
        let mut out = self.clone();
        match (&out.name, &other.name) {
            (None, Some(n)) => out.name = Some(n.clone()),
            (Some(a), Some(b)) if a != b => {
                out.matchers.push(Matcher {
                    label: "__name__".into(),
                    op: MatchOp::Equal,
                    value: b.clone(),
                    test: Test::Is(b.clone()),
                });
            }
            _ => {}
        }
        out.matchers.extend(other.matchers.iter().cloned());
        out
    }
}

/// Two selectors are equal when they read the same: same name, same
/// matchers in the same order (what a reload compares).
impl PartialEq for Selector {
    fn eq(&self, other: &Selector) -> bool {
        self.name == other.name
            && self.matchers.len() == other.matchers.len()
            && self
                .matchers
                .iter()
                .zip(&other.matchers)
                .all(|(a, b)| a.label == b.label && a.op == b.op && a.value == b.value)
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.name {
            f.write_str(name)?;
        }
        if self.matchers.is_empty() && self.name.is_some() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}{}\"", m.label, m.op.as_str())?;
            for c in m.value.chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    '\n' => f.write_str("\\n")?,
                    '\r' => f.write_str("\\r")?,
                    '\t' => f.write_str("\\t")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

/// Why a selector does not parse: the 1-based column (in characters) and
/// what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct SelectorError {
    pub column: usize,
    pub message: String,
}

struct Parser<'s> {
    s: &'s str,
    pos: usize,
    /// Matchers that narrow another selector (a traffic entry's `match`):
    /// all of them may match "", since the other selector names the metric.
    narrowing: bool,
}

impl<'s> Parser<'s> {
    fn error(&self, at: usize, message: String) -> SelectorError {
        let column = self.s.get(..at).map_or(1, |s| s.chars().count() + 1);
        SelectorError { column, message }
    }

    fn rest(&self) -> &'s str {
        self.s.get(self.pos..).unwrap_or("")
    }

    fn found(&self) -> String {
        match self.rest().chars().next() {
            None => "the end".into(),
            Some(c) => format!("`{c}`"),
        }
    }

    fn blanks(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    /// An identifier whose first byte passes `first` and the others `more`.
    fn ident(&mut self, first: fn(u8) -> bool, more: fn(u8) -> bool) -> Option<&'s str> {
        let b = self.rest().as_bytes();
        if !b.first().is_some_and(|&c| first(c)) {
            return None;
        }
        let len = 1 + b[1..].iter().take_while(|&&c| more(c)).count();
        let start = self.pos;
        self.pos += len;
        Some(&self.s[start..self.pos])
    }

    fn selector(mut self) -> Result<Selector, SelectorError> {
        self.blanks();
        let metric = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c == b':';
        let metric_more = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
        let name = self.ident(metric, metric_more).map(str::to_owned);
        self.blanks();
        let mut matchers = Vec::new();
        let mut name_matcher_at = None;
        if self.eat("{") {
            loop {
                self.blanks();
                if self.eat("}") {
                    break;
                }
                let at = self.pos;
                let label = self
                    .ident(
                        |c| c.is_ascii_alphabetic() || c == b'_',
                        |c| c.is_ascii_alphanumeric() || c == b'_',
                    )
                    .ok_or_else(|| {
                        self.error(
                            at,
                            format!("expected a label name or `}}`, found {}", self.found()),
                        )
                    })?;
                if label == "__name__" {
                    name_matcher_at.get_or_insert(at);
                }
                self.blanks();
                let op = if self.eat("=~") {
                    MatchOp::Regex
                } else if self.eat("!~") {
                    MatchOp::NotRegex
                } else if self.eat("!=") {
                    MatchOp::NotEqual
                } else if self.eat("=") {
                    MatchOp::Equal
                } else {
                    return Err(self.error(
                        self.pos,
                        format!(
                            "expected `=`, `!=`, `=~` or `!~` after the label `{label}`, found {}",
                            self.found()
                        ),
                    ));
                };
                self.blanks();
                let value_at = self.pos;
                let value = self.string()?;
                let matcher = Matcher::new(label, op, &value)
                    .map_err(|e| self.error(value_at, format!("the value of `{label}`: {e}")))?;
                matchers.push(matcher);
                self.blanks();
                if self.eat(",") {
                    continue;
                }
                if self.eat("}") {
                    break;
                }
                return Err(self.error(
                    self.pos,
                    format!("expected `,` or `}}`, found {}", self.found()),
                ));
            }
            self.blanks();
        }
        if !self.rest().is_empty() {
            return Err(self.error(
                self.pos,
                format!("unexpected {} after the selector", self.found()),
            ));
        }
        if name.is_none() && matchers.is_empty() {
            return Err(self.error(
                0,
                "empty selector: give a metric name or a matcher in `{...}`".into(),
            ));
        }
        if let (Some(name), Some(at)) = (&name, name_matcher_at) {
            return Err(self.error(
                at,
                format!("the metric name is given twice: `{name}` and a `__name__` matcher"),
            ));
        }
        if name.is_none() && !self.narrowing && matchers.iter().all(|m| m.matches("")) {
            return Err(self.error(
                0,
                "a selector without a metric name needs a matcher that does not match the empty string (it would select every series)".into(),
            ));
        }
        let mut selector = Selector { name, matchers };
        if selector.name.is_none()
            && let Some(i) = selector
                .matchers
                .iter()
                .position(|m| m.label == "__name__" && m.op == MatchOp::Equal)
        {
            selector.name = Some(selector.matchers.remove(i).value);
        }
        Ok(selector)
    }

    /// A PromQL string: "double" or 'single' quoted with Go's escapes, or
    /// `backtick` quoted with none.
    fn string(&mut self) -> Result<String, SelectorError> {
        let start = self.pos;
        let Some(quote) = self
            .rest()
            .chars()
            .next()
            .filter(|c| matches!(c, '"' | '\'' | '`'))
        else {
            return Err(self.error(
                start,
                format!("expected a quoted string, found {}", self.found()),
            ));
        };
        self.pos += 1;
        let unterminated = |p: &Self| {
            p.error(
                start,
                format!("the string starting here has no closing {quote}"),
            )
        };
        if quote == '`' {
            let len = self.rest().find('`').ok_or_else(|| unterminated(self))?;
            let raw = &self.rest()[..len];
            self.pos += len + 1;
            return Ok(raw.to_owned());
        }
        let mut out = String::new();
        loop {
            let mut chars = self.rest().chars();
            let Some(c) = chars.next() else {
                return Err(unterminated(self));
            };
            let at = self.pos;
            self.pos += c.len_utf8();
            match c {
                c if c == quote => return Ok(out),
                '\n' => return Err(unterminated(self)),
                '\\' => out.push(self.escape(at)?),
                c => out.push(c),
            }
        }
    }

    /// The character an escape stands for; the cursor is after `\`.
    fn escape(&mut self, at: usize) -> Result<char, SelectorError> {
        let Some(c) = self.rest().chars().next() else {
            return Err(self.error(at, "the string ends with a lone backslash".into()));
        };
        self.pos += c.len_utf8();
        let simple = match c {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' | '\'' | '"' => Some(c),
            _ => None,
        };
        if let Some(c) = simple {
            return Ok(c);
        }
        let (digits, radix) = match c {
            '0'..='7' => {
                self.pos -= 1;
                (3, 8)
            }
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            _ => {
                return Err(self.error(
                    at,
                    format!("unknown escape `\\{c}`; write `\\\\{c}` for a backslash (as regexes need), or use a `backtick` string"),
                ));
            }
        };
        let text = self.rest().get(..digits).unwrap_or("");
        let code = (text.len() == digits && text.chars().all(|d| d.is_digit(radix)))
            .then(|| u32::from_str_radix(text, radix).ok())
            .flatten()
            .filter(|&v| radix == 16 || v <= 0o377)
            .and_then(char::from_u32)
            .ok_or_else(|| self.error(at, format!("invalid escape `\\{c}{}`", text)))?;
        self.pos += digits;
        Ok(code)
    }
}
