//! OpenMetrics 1.0 text, parsed strictly: every rule of the specification's
//! ABNF and of its text-format sections, since "partial or invalid
//! expositions MUST be considered erroneous in their entirety". This file
//! reads lines and families (metadata, sample syntax, which family a sample
//! belongs to, names that clash); `points` checks what spans lines within
//! a family. Exemplars are checked, then dropped (ingestors may discard
//! them).

use std::collections::HashMap;

use super::exposition::{
    ErrorKind, Exposition, Format, MetricType, ParseError, Role, Sample, excerpt,
};
use super::lex::{Cursor, check_unique, describe, not_a_number, om_number, om_real, unescaped};
use super::points::{Points, check_sample};

/// The exemplar's label names and values together, in characters.
const EXEMPLAR_MAX_CHARS: usize = 128;

/// Every suffix a sample name can have, for finding clashes.
const SUFFIXES: [&str; 9] = [
    "", "_total", "_created", "_count", "_sum", "_bucket", "_gcount", "_gsum", "_info",
];

pub(super) fn parse(body: &str) -> Result<Exposition<'_>, ParseError> {
    if body.is_empty() {
        return Err(content(
            1,
            "the body is empty; an OpenMetrics exposition ends with `# EOF`".into(),
        ));
    }
    let mut p = Parser {
        out: Exposition::new(Format::OpenMetrics, body.len()),
        names: HashMap::new(),
        current: None,
        points: Points::default(),
        scratch: String::new(),
    };
    let mut lines = body.split('\n').enumerate().peekable();
    let mut last = 1;
    while let Some((i, line)) = lines.next() {
        let n = i + 1;
        last = n;
        if line == "# EOF" {
            let rest_empty = match lines.next() {
                None => true,
                Some((_, "")) => lines.peek().is_none(),
                Some(_) => false,
            };
            if !rest_empty {
                return Err(content(
                    n + 1,
                    "text after `# EOF`: the exposition must end there".into(),
                ));
            }
            p.end_family(n)?;
            return Ok(p.out);
        }
        if line.is_empty() {
            if lines.peek().is_none() {
                break;
            }
            return Err(syntax(
                n,
                line,
                0,
                "blank line: OpenMetrics allows none".into(),
            ));
        }
        if line.starts_with('#') {
            p.metadata(line, n)?;
        } else {
            p.sample(line, n)?;
        }
    }
    Err(content(
        last,
        "no `# EOF` line at the end: the exposition is incomplete (cut short?)".into(),
    ))
}

fn syntax(n: usize, line: &str, at: usize, message: String) -> ParseError {
    ParseError::at(ErrorKind::Syntax, n, line, at, message)
}

fn content(n: usize, message: String) -> ParseError {
    ParseError::new(ErrorKind::Content, n, 1, message)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Meta {
    Type,
    Help,
    Unit,
}

impl Meta {
    fn bit(self) -> u8 {
        match self {
            Meta::Type => 1,
            Meta::Help => 2,
            Meta::Unit => 4,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Meta::Type => "TYPE",
            Meta::Help => "HELP",
            Meta::Unit => "UNIT",
        }
    }
}

/// The family being read.
struct Current {
    family: usize,
    /// Which metadata lines it had (`Meta::bit`).
    meta: u8,
    /// Its sample names were checked against other families'.
    checked: bool,
}

struct Parser<'a> {
    out: Exposition<'a>,
    /// Every family so far, with its type (final once it has ended) and the
    /// line it started on.
    names: HashMap<&'a str, (MetricType, usize)>,
    current: Option<Current>,
    points: Points<'a>,
    scratch: String,
}

impl<'a> Parser<'a> {
    fn metadata(&mut self, line: &'a str, n: usize) -> Result<(), ParseError> {
        let meta = match line.get(..7) {
            Some("# TYPE ") => Meta::Type,
            Some("# HELP ") => Meta::Help,
            Some("# UNIT ") => Meta::Unit,
            _ => {
                let message = match line {
                    "# TYPE" | "# HELP" | "# UNIT" => format!("`{line}` needs a metric name and a value"),
                    _ => "a line starting with `#` must be `# TYPE`, `# HELP`, `# UNIT` or `# EOF` (OpenMetrics has no comments)".into(),
                };
                return Err(syntax(n, line, 0, message));
            }
        };
        let word = meta.word();
        let mut c = Cursor::new(line);
        c.pos = 7;
        let Some(name) = c.metric_name() else {
            return Err(syntax(
                n,
                line,
                c.pos,
                format!(
                    "expected a metric name after `# {word}`, found {}",
                    describe(c.rest())
                ),
            ));
        };
        if !c.eat(b' ') {
            let what = match meta {
                Meta::Type => "its type",
                Meta::Help => "its help text (a space alone for none)",
                Meta::Unit => "its unit (a space alone for none)",
            };
            return Err(syntax(
                n,
                line,
                c.pos,
                format!(
                    "expected a space and {what} after `# {word} {name}`, found {}",
                    describe(c.rest())
                ),
            ));
        }
        let value = c.rest();
        let family = self.family_for_metadata(name, meta, n)?;
        let f = &mut self.out.families[family];
        match meta {
            Meta::Type => {
                f.kind = match value {
                    "counter" => MetricType::Counter,
                    "gauge" => MetricType::Gauge,
                    "histogram" => MetricType::Histogram,
                    "gaugehistogram" => MetricType::GaugeHistogram,
                    "summary" => MetricType::Summary,
                    "stateset" => MetricType::StateSet,
                    "info" => MetricType::Info,
                    "unknown" => MetricType::Unknown,
                    _ => {
                        return Err(syntax(
                            n,
                            line,
                            c.pos,
                            format!(
                                "unknown metric type {} (OpenMetrics has counter, gauge, histogram, gaugehistogram, summary, stateset, info and unknown)",
                                excerpt(value)
                            ),
                        ));
                    }
                };
            }
            Meta::Help => {
                if ends_in_lone_backslash(value) {
                    return Err(syntax(
                        n,
                        line,
                        line.len() - 1,
                        "the help text ends with a lone backslash".into(),
                    ));
                }
                f.help = Some(unescaped(value, true)).filter(|h| !h.is_empty());
            }
            Meta::Unit => {
                if let Some(bad) =
                    value.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                {
                    return Err(syntax(
                        n,
                        line,
                        c.pos + bad,
                        format!(
                            "the unit {} may only have letters, digits, `_` and `:`",
                            excerpt(value)
                        ),
                    ));
                }
                if !value.is_empty() {
                    let suffixed = name
                        .strip_suffix(value)
                        .is_some_and(|stem| stem.ends_with('_'));
                    if !suffixed {
                        return Err(content(
                            n,
                            format!(
                                "the family `{name}` has the unit `{value}`, so its name must end in `_{value}`"
                            ),
                        ));
                    }
                    f.unit = Some(value);
                }
            }
        }
        if f.unit.is_some() && matches!(f.kind, MetricType::Info | MetricType::StateSet) {
            return Err(content(
                n,
                format!(
                    "the {} family `{name}` must not have a unit",
                    f.kind.as_str()
                ),
            ));
        }
        Ok(())
    }

    /// The family a metadata line for `name` belongs to: the current one,
    /// if it is `name` and has no samples yet, else a new one.
    fn family_for_metadata(
        &mut self,
        name: &'a str,
        meta: Meta,
        n: usize,
    ) -> Result<usize, ParseError> {
        if let Some(cur) = &mut self.current {
            let f = &self.out.families[cur.family];
            if f.name == name {
                if !f.samples.is_empty() {
                    return Err(content(
                        n,
                        format!(
                            "`# {}` for `{name}` comes after its samples; metadata must come first",
                            meta.word()
                        ),
                    ));
                }
                if cur.meta & meta.bit() != 0 {
                    return Err(content(
                        n,
                        format!("a second `# {}` line for `{name}`", meta.word()),
                    ));
                }
                cur.meta |= meta.bit();
                return Ok(cur.family);
            }
        }
        self.end_family(n)?;
        let family = self.start_family(name, n)?;
        if let Some(cur) = &mut self.current {
            cur.meta |= meta.bit();
        }
        Ok(family)
    }

    fn start_family(&mut self, name: &'a str, n: usize) -> Result<usize, ParseError> {
        if let Some((kind, first)) = self.names.get(name) {
            return Err(content(
                n,
                format!(
                    "the {} family `{name}` already started at line {first}; a family's lines must be together and its name used once",
                    kind.as_str()
                ),
            ));
        }
        self.names.insert(name, (MetricType::Unknown, n));
        let family = self.out.push_family(name, MetricType::Unknown);
        self.current = Some(Current {
            family,
            meta: 0,
            checked: false,
        });
        Ok(family)
    }

    fn end_family(&mut self, n: usize) -> Result<(), ParseError> {
        let Some(cur) = self.current.take() else {
            return Ok(());
        };
        let f = &self.out.families[cur.family];
        self.points.end_family(&self.out, f)?;
        if !cur.checked {
            self.check_clash(cur.family, n)?;
        }
        let f = &self.out.families[cur.family];
        if let Some(entry) = self.names.get_mut(f.name) {
            entry.0 = f.kind;
        }
        Ok(())
    }

    /// No sample name of this family may be one another family could have
    /// (a gauge `a_created` and a counter `a`).
    fn check_clash(&mut self, family: usize, n: usize) -> Result<(), ParseError> {
        let f = &self.out.families[family];
        let mut name = std::mem::take(&mut self.scratch);
        for own in f.kind.suffixes() {
            name.clear();
            name.push_str(f.name);
            name.push_str(own);
            for other in SUFFIXES {
                let Some(stem) = name.strip_suffix(other) else {
                    continue;
                };
                if stem == f.name {
                    continue;
                }
                if let Some((kind, line)) = self.names.get(stem)
                    && kind.suffixes().contains(&other)
                {
                    return Err(content(
                        n,
                        format!(
                            "`{name}` would be a sample of both the {} family `{}` and the {} family `{stem}` (line {line}); families must not be interleaved or share sample names",
                            f.kind.as_str(),
                            f.name,
                            kind.as_str()
                        ),
                    ));
                }
            }
        }
        self.scratch = name;
        Ok(())
    }

    fn sample(&mut self, line: &'a str, n: usize) -> Result<(), ParseError> {
        let mut c = Cursor::new(line);
        let Some(name) = c.metric_name() else {
            return Err(syntax(
                n,
                line,
                0,
                format!(
                    "expected a metric name at the start of the line, found {}",
                    describe(line)
                ),
            ));
        };
        let labels_from = self.out.labels.len();
        if c.eat(b'{') {
            self.labels(&mut c, n)?;
        }
        if !c.eat(b' ') {
            return Err(syntax(
                n,
                line,
                c.pos,
                format!(
                    "expected a space and the value after `{name}`, found {}",
                    describe(c.rest())
                ),
            ));
        }
        let at = c.pos;
        let token = c.take_until(b" ");
        let Some(value) = om_number(token) else {
            let message = if token.is_empty() {
                format!(
                    "expected the value after `{name}`, found {}",
                    describe(c.rest())
                )
            } else {
                not_a_number("value", token)
            };
            return Err(syntax(n, line, at, message));
        };
        let mut timestamp = None;
        let mut exemplar = false;
        if c.eat(b' ') {
            if c.peek() == Some(b'#') {
                exemplar = true;
            } else {
                let at = c.pos;
                let token = c.take_until(b" ");
                let Some(ts) = om_real(token) else {
                    let message = if token.is_empty() {
                        format!(
                            "expected a timestamp or an exemplar, found {}",
                            describe(c.rest())
                        )
                    } else {
                        format!(
                            "the timestamp {} is not a number of seconds (no NaN or infinity)",
                            excerpt(token)
                        )
                    };
                    return Err(syntax(n, line, at, message));
                };
                timestamp = Some(ts);
                if c.eat(b' ') {
                    exemplar = true;
                }
            }
            if exemplar {
                self.exemplar(&mut c, n)?;
            }
        }
        if !c.at_end() {
            return Err(syntax(
                n,
                line,
                c.pos,
                format!("unexpected {} at the end of the sample", excerpt(c.rest())),
            ));
        }
        check_unique(&self.out, labels_from, n, &c)?;

        let role = self.current.as_ref().and_then(|cur| {
            let f = &self.out.families[cur.family];
            om_role(f.kind, f.name, name)
        });
        let role = match role {
            Some(role) => role,
            None => {
                if let Some(cur) = &self.current {
                    let f = &self.out.families[cur.family];
                    if f.name == name {
                        return Err(content(
                            n,
                            format!(
                                "`{name}` is not a sample name of the {} family `{name}`; its samples are named {}",
                                f.kind.as_str(),
                                sample_names(f.kind, name)
                            ),
                        ));
                    }
                }
                self.end_family(n)?;
                self.start_family(name, n)?;
                Role::Value
            }
        };
        let Some(cur) = &mut self.current else {
            return Ok(());
        };
        let family = cur.family;
        if !cur.checked {
            cur.checked = true;
            self.check_clash(family, n)?;
        }
        let f = &self.out.families[family];
        let le = check_sample(
            f.kind,
            f.name,
            name,
            role,
            value,
            &self.out.labels[labels_from..],
            exemplar,
        )
        .map_err(|message| content(n, message))?;
        let index = self.out.push_sample(
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
        self.points.add(&self.out, index, n)
    }

    /// `{` seen: `name="value"` pairs separated by single commas, then `}`.
    fn labels(&mut self, c: &mut Cursor<'a>, n: usize) -> Result<(), ParseError> {
        if c.eat(b'}') {
            return Ok(());
        }
        loop {
            let Some(name) = c.label_name() else {
                return Err(syntax(
                    n,
                    c.line,
                    c.pos,
                    format!("expected a label name, found {}", describe(c.rest())),
                ));
            };
            if !c.eat(b'=') {
                return Err(syntax(
                    n,
                    c.line,
                    c.pos,
                    format!(
                        "expected `=` after the label name `{name}`, found {}",
                        describe(c.rest())
                    ),
                ));
            }
            if !c.eat(b'"') {
                return Err(syntax(
                    n,
                    c.line,
                    c.pos,
                    format!(
                        "expected a double-quoted value for the label `{name}`, found {}",
                        describe(c.rest())
                    ),
                ));
            }
            let at = c.pos - 1;
            let Some(value) = c.quoted() else {
                return Err(syntax(
                    n,
                    c.line,
                    at,
                    format!("the value of the label `{name}` has no closing quote"),
                ));
            };
            self.out
                .labels
                .push(super::exposition::Label { name, value });
            if c.eat(b'}') {
                return Ok(());
            }
            if !c.eat(b',') {
                return Err(syntax(
                    n,
                    c.line,
                    c.pos,
                    format!(
                        "expected `,` or `}}` after the label `{name}`, found {}",
                        describe(c.rest())
                    ),
                ));
            }
        }
    }

    /// `# {labels} value [timestamp]`, the cursor on the `#`.
    fn exemplar(&mut self, c: &mut Cursor<'a>, n: usize) -> Result<(), ParseError> {
        if !c.eat_str("# {") {
            return Err(syntax(
                n,
                c.line,
                c.pos,
                format!(
                    "expected an exemplar, `# {{labels}} value`, found {}",
                    describe(c.rest())
                ),
            ));
        }
        let from = self.out.labels.len();
        self.labels(c, n)?;
        let chars: usize = self.out.labels[from..]
            .iter()
            .map(|l| l.name.len() + l.value.chars().count())
            .sum();
        if chars > EXEMPLAR_MAX_CHARS {
            return Err(content(
                n,
                format!(
                    "the exemplar's labels have {chars} characters; at most {EXEMPLAR_MAX_CHARS} are allowed"
                ),
            ));
        }
        check_unique(&self.out, from, n, c)?;
        self.out.labels.truncate(from);
        if !c.eat(b' ') {
            return Err(syntax(
                n,
                c.line,
                c.pos,
                format!(
                    "expected a space and the exemplar's value, found {}",
                    describe(c.rest())
                ),
            ));
        }
        let at = c.pos;
        if om_number(c.take_until(b" ")).is_none() {
            return Err(syntax(
                n,
                c.line,
                at,
                format!(
                    "expected the exemplar's value, found {}",
                    describe(&c.line[at..])
                ),
            ));
        }
        if c.eat(b' ') {
            let at = c.pos;
            if om_real(c.take_until(b" ")).is_none() {
                return Err(syntax(
                    n,
                    c.line,
                    at,
                    format!(
                        "expected the exemplar's timestamp (seconds, no NaN or infinity), found {}",
                        describe(&c.line[at..])
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The role of the sample `name` in the family `family` of type `kind`, if
/// the name belongs to the family.
fn om_role(kind: MetricType, family: &str, name: &str) -> Option<Role> {
    let suffix = name.strip_prefix(family)?;
    Some(match (kind, suffix) {
        (MetricType::Counter, "_total") => Role::Total,
        (MetricType::Counter | MetricType::Histogram | MetricType::Summary, "_created") => {
            Role::Created
        }
        (MetricType::Gauge | MetricType::Unknown | MetricType::StateSet, "") => Role::Value,
        (MetricType::Info, "_info") => Role::Info,
        (MetricType::Summary, "") => Role::Quantile,
        (MetricType::Summary | MetricType::Histogram, "_count") => Role::Count,
        (MetricType::Summary | MetricType::Histogram, "_sum") => Role::Sum,
        (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket") => Role::Bucket,
        (MetricType::GaugeHistogram, "_gcount") => Role::GaugeCount,
        (MetricType::GaugeHistogram, "_gsum") => Role::GaugeSum,
        _ => return None,
    })
}

fn sample_names(kind: MetricType, family: &str) -> String {
    let names: Vec<String> = kind
        .suffixes()
        .iter()
        .map(|s| format!("{family}{s}"))
        .collect();
    names.join(", ")
}

fn ends_in_lone_backslash(text: &str) -> bool {
    let trailing = text.bytes().rev().take_while(|&b| b == b'\\').count();
    trailing % 2 == 1
}
