//! OpenMetrics 1.0 text, parsed strictly: every rule of the specification's
//! ABNF and of its text-format sections, since "partial or invalid
//! expositions MUST be considered erroneous in their entirety". This file
//! reads lines (`# EOF`, sample syntax, labels, exemplars) and says which
//! family a sample belongs to; `families` keeps the metadata and the names,
//! `values` checks each sample alone, `points` what spans lines within a
//! family. Exemplars are checked, then dropped (ingestors may discard them).

mod families;
mod points;
mod values;

use std::collections::HashMap;

use super::exposition::{
    ErrorKind, Exposition, Format, MetricType, ParseError, Role, Sample, excerpt,
};
use super::lex::{Cursor, check_unique, describe, not_a_number, om_number, om_real};
use families::{om_role, sample_names};
use points::Points;
use values::check_sample;

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
