//! OpenMetrics families: metadata lines (TYPE, HELP, UNIT, each once and
//! before the samples), where one family ends and the next begins, names
//! used once, and no sample name that two families could both have.

use super::{Current, Meta, Parser, SUFFIXES, content, syntax};
use crate::traffic::exposition::{MetricType, ParseError, Role, excerpt};
use crate::traffic::lex::{Cursor, describe, unescaped};

impl<'a> Parser<'a> {
    pub(super) fn metadata(&mut self, line: &'a str, n: usize) -> Result<(), ParseError> {
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

    pub(super) fn start_family(&mut self, name: &'a str, n: usize) -> Result<usize, ParseError> {
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

    pub(super) fn end_family(&mut self, n: usize) -> Result<(), ParseError> {
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
    pub(super) fn check_clash(&mut self, family: usize, n: usize) -> Result<(), ParseError> {
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
}

/// The role of the sample `name` in the family `family` of type `kind`, if
/// the name belongs to the family.
pub(super) fn om_role(kind: MetricType, family: &str, name: &str) -> Option<Role> {
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

pub(super) fn sample_names(kind: MetricType, family: &str) -> String {
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
