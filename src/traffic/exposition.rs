//! The parsed form of one scrape (families, samples, labels, all borrowed
//! from the body where they can be) and the error a body that does not parse
//! gets. `parse` picks the format's parser.

use std::borrow::Cow;
use std::ops::Range;

use super::selector::Selector;
use super::{openmetrics, text};

/// Which text format a body is in, from the scrape's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// OpenMetrics 1.0 text (`application/openmetrics-text`), parsed
    /// strictly: a body that breaks any rule of the specification is
    /// rejected whole, as the specification asks.
    OpenMetrics,
    /// Prometheus text 0.0.4 (`text/plain; version=0.0.4`), parsed as
    /// leniently as Prometheus parses it.
    Text,
}

impl Format {
    /// The format a `Content-Type` header names. Anything that is not
    /// OpenMetrics is read as text 0.0.4, as Prometheus does.
    pub fn from_content_type(content_type: &str) -> Format {
        let media = content_type.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// A metric family's type. Text 0.0.4's `untyped` is [`MetricType::Unknown`];
/// only OpenMetrics has `gaugehistogram`, `stateset` and `info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    StateSet,
    Info,
    Unknown,
}

impl MetricType {
    /// The OpenMetrics name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::StateSet => "stateset",
            MetricType::Info => "info",
            MetricType::Unknown => "unknown",
        }
    }

    /// The suffixes its samples' names may add to the family name
    /// (OpenMetrics).
    pub(super) fn suffixes(self) -> &'static [&'static str] {
        match self {
            MetricType::Counter => &["_total", "_created"],
            MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => &[""],
            MetricType::Histogram => &["_bucket", "_count", "_sum", "_created"],
            MetricType::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
            MetricType::Summary => &["", "_count", "_sum", "_created"],
            MetricType::Info => &["_info"],
        }
    }
}

/// What a sample is within its family, so that readers need not compare
/// name suffixes. In text 0.0.4 a counter's sample (named like its family,
/// usually `..._total`) is a `Total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The value of a gauge, stateset or unknown (untyped) metric.
    Value,
    /// A counter's total.
    Total,
    /// `_created`: when a counter, histogram or summary last started from
    /// zero, in seconds since the epoch.
    Created,
    /// A histogram or gauge histogram bucket (`_bucket`, with `le`).
    Bucket,
    /// `_count` of a histogram or summary.
    Count,
    /// `_sum` of a histogram or summary.
    Sum,
    /// `_gcount` of a gauge histogram.
    GaugeCount,
    /// `_gsum` of a gauge histogram.
    GaugeSum,
    /// A summary's quantile (with a `quantile` label).
    Quantile,
    /// An info metric's `_info` sample.
    Info,
}

/// One label. The value is borrowed from the body unless it had escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label<'a> {
    pub name: &'a str,
    pub value: Cow<'a, str>,
}

/// One sample line. Its labels are in [`Exposition::labels`], in the order
/// the line has them.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The full name on the line (`http_requests_total`, `..._bucket`).
    pub name: &'a str,
    pub role: Role,
    pub value: f64,
    /// Seconds since the epoch, if the line has a timestamp (text 0.0.4's
    /// milliseconds are converted).
    pub timestamp: Option<f64>,
    /// A bucket's upper bound, from its `le` label. `None` on other samples,
    /// and on a text 0.0.4 bucket whose `le` is missing or not a number
    /// (Prometheus accepts such a line; a quantile estimate skips it).
    pub le: Option<f64>,
    pub(super) labels: Range<usize>,
    pub(super) family: usize,
}

/// One metric family: its metadata, and its samples in
/// [`Exposition::samples_of`].
#[derive(Debug, Clone, PartialEq)]
pub struct Family<'a> {
    pub name: &'a str,
    pub kind: MetricType,
    /// `None` when there is no HELP line, or an empty one.
    pub help: Option<Cow<'a, str>>,
    /// `None` when there is no UNIT line (OpenMetrics only), or an empty one.
    pub unit: Option<&'a str>,
    pub(super) samples: Range<usize>,
}

/// A parsed scrape. Samples of one family are contiguous and in body order.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposition<'a> {
    format: Format,
    pub(super) families: Vec<Family<'a>>,
    pub(super) samples: Vec<Sample<'a>>,
    pub(super) labels: Vec<Label<'a>>,
}

impl<'a> Exposition<'a> {
    pub(super) fn new(format: Format, size_hint: usize) -> Self {
        // About one sample per 80 bytes and two labels per sample: one
        // allocation each in the usual case.
        let samples = size_hint / 80;
        Exposition {
            format,
            families: Vec::with_capacity(samples / 8),
            samples: Vec::with_capacity(samples),
            labels: Vec::with_capacity(samples * 2),
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn families(&self) -> &[Family<'a>] {
        &self.families
    }

    /// The family named `name` (its first, in text 0.0.4, where a name may
    /// come back).
    pub fn family(&self, name: &str) -> Option<&Family<'a>> {
        self.families.iter().find(|f| f.name == name)
    }

    /// Every sample, in body order.
    pub fn samples(&self) -> &[Sample<'a>] {
        &self.samples
    }

    pub fn samples_of(&self, family: &Family<'a>) -> &[Sample<'a>] {
        self.samples.get(family.samples.clone()).unwrap_or_default()
    }

    pub fn labels(&self, sample: &Sample<'a>) -> &[Label<'a>] {
        self.labels.get(sample.labels.clone()).unwrap_or_default()
    }

    /// The value of the label `name` on `sample`, if it has one.
    pub fn label(&self, sample: &Sample<'a>, name: &str) -> Option<&str> {
        find_label(self.labels(sample), name)
    }

    /// The family `sample` (a sample of this exposition) belongs to.
    pub fn family_of(&self, sample: &Sample<'a>) -> &Family<'a> {
        &self.families[sample.family]
    }

    /// The samples `selector` matches, in body order.
    pub fn select<'s>(
        &'s self,
        selector: &'s Selector,
    ) -> impl Iterator<Item = &'s Sample<'a>> + 's {
        self.samples
            .iter()
            .filter(move |s| selector.matches(s.name, self.labels(s)))
    }

    /// Starts a family; samples pushed next belong to it.
    pub(super) fn push_family(&mut self, name: &'a str, kind: MetricType) -> usize {
        let at = self.samples.len();
        self.families.push(Family {
            name,
            kind,
            help: None,
            unit: None,
            samples: at..at,
        });
        self.families.len() - 1
    }

    /// Adds a sample to the last family; its labels are
    /// `self.labels[labels_from..]`.
    pub(super) fn push_sample(&mut self, mut sample: Sample<'a>, labels_from: usize) -> usize {
        sample.labels = labels_from..self.labels.len();
        sample.family = self.families.len().saturating_sub(1);
        self.samples.push(sample);
        if let Some(f) = self.families.last_mut() {
            f.samples.end = self.samples.len();
        }
        self.samples.len() - 1
    }
}

pub(super) fn find_label<'l>(labels: &'l [Label<'_>], name: &str) -> Option<&'l str> {
    labels.iter().find(|l| l.name == name).map(|l| &*l.value)
}

/// Parses one scrape body. The caller bounds its size; the parser does not
/// panic on any input and takes time linear in its length.
pub fn parse(body: &[u8], format: Format) -> Result<Exposition<'_>, ParseError> {
    let body = utf8(body)?;
    if body.starts_with('\u{feff}') {
        return Err(ParseError::new(
            ErrorKind::Encoding,
            1,
            1,
            "the body starts with a byte order mark; expositions must not have one".into(),
        ));
    }
    match format {
        Format::OpenMetrics => openmetrics::parse(body),
        Format::Text => text::parse(body),
    }
}

fn utf8(body: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(body).map_err(|e| {
        let bad = e.valid_up_to();
        let before = &body[..bad];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        // The prefix is valid UTF-8, so this cannot fail.
        let column =
            std::str::from_utf8(&before[line_start..]).map_or(1, |s| s.chars().count() + 1);
        ParseError::new(
            ErrorKind::Encoding,
            line,
            column,
            format!(
                "byte 0x{:02x} is not UTF-8; expositions must be UTF-8 throughout",
                body.get(bad).copied().unwrap_or(0)
            ),
        )
    })
}

/// Which part of the format a body broke: a small fixed set, for a metric
/// label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Not UTF-8, or starts with a byte order mark.
    Encoding,
    /// A line does not follow the format's grammar.
    Syntax,
    /// Lines that each parse but together break the format's rules (types,
    /// metadata, order, histogram buckets, a missing `# EOF`).
    Content,
}

impl ErrorKind {
    pub fn metric_label(self) -> &'static str {
        match self {
            ErrorKind::Encoding => "encoding",
            ErrorKind::Syntax => "syntax",
            ErrorKind::Content => "content",
        }
    }
}

/// Why a body does not parse, and where: 1-based line and column (in
/// characters), and a sentence for whoever is on call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    pub kind: ErrorKind,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ParseError {
    pub(super) fn new(kind: ErrorKind, line: usize, column: usize, message: String) -> Self {
        ParseError {
            kind,
            line,
            column,
            message,
        }
    }

    /// An error at byte `at` of `text`, the line numbered `line`.
    pub(super) fn at(kind: ErrorKind, line: usize, text: &str, at: usize, message: String) -> Self {
        let column = text
            .get(..at.min(text.len()))
            .map_or(1, |s| s.chars().count() + 1);
        ParseError::new(kind, line, column, message)
    }
}

/// `s` as it may be quoted in an error message: at most 40 characters.
pub(super) fn excerpt(s: &str) -> String {
    const MAX: usize = 40;
    let mut out = String::from("`");
    for (i, c) in s.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        // Tabs, carriage returns, NULs: shown, not printed.
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('`');
    out
}
