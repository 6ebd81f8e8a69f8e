//! OpenMetrics rules about what spans lines within a family: metrics are
//! not interleaved; a metric's points come in timestamp order; each point is
//! whole (a histogram's buckets ascend in `le` and never decrease, end with
//! `+Inf`, and its `_count` comes with `_sum` and equals the `+Inf` bucket).
//!
//! A metric is a sample's labels less the one that tells its samples apart
//! within a point (`le`, `quantile`, a stateset's state); a point is one
//! timestamp of a metric. Seen metrics are kept as hashes with a random
//! key, each checked against the real labels on a match, so that neither a
//! collision nor a crafted body costs more than linear time.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

use crate::traffic::exposition::{
    ErrorKind, Exposition, Family, Label, MetricType, ParseError, Role,
};
use crate::traffic::lex::om_real;

/// Which metric and point the family's last sample belongs to, and the
/// metrics the family has had.
#[derive(Default)]
pub(super) struct Points<'a> {
    hasher: RandomState,
    /// The family's metrics so far: key hash → (first sample, line).
    seen: HashMap<u64, (usize, usize), Keyed>,
    /// Metrics whose hash an earlier metric had: (hash, first sample, line).
    collided: Vec<(u64, usize, usize)>,
    /// The current metric: its first sample and the label its key leaves
    /// out.
    metric: Option<(usize, Option<&'a str>)>,
    point: Point,
    quantiles: HashSet<u64>,
    states: HashSet<u64, Keyed>,
}

/// Keys of `seen` and `states` come from `hasher` (random-keyed SipHash), so
/// hashing them again buys nothing. (Quantile keys are f64 bits a body
/// chooses: those keep SipHash.)
type Keyed = BuildHasherDefault<AsIs>;

#[derive(Default)]
struct AsIs(u64);

impl Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[derive(Default)]
struct Point {
    /// The point's first sample, and the line of its last one.
    first: usize,
    line: usize,
    timestamp: Option<f64>,
    /// `role_bit`s of the single-valued samples it has.
    has: u16,
    last_le: Option<f64>,
    last_bucket: f64,
    inf: Option<f64>,
    negative_le: bool,
    count: Option<f64>,
    sum: Option<f64>,
}

fn role_bit(role: Role) -> u16 {
    1 << (role as u16)
}

/// The label a sample's metric key leaves out.
fn key_skip(kind: MetricType, family: &str, role: Role) -> Option<&str> {
    match role {
        Role::Bucket => Some("le"),
        Role::Quantile => Some("quantile"),
        Role::Value if kind == MetricType::StateSet => Some(family),
        _ => None,
    }
}

fn key<'l, 'a>(
    labels: &'l [Label<'a>],
    skip: Option<&'l str>,
) -> impl Iterator<Item = &'l Label<'a>> + Clone {
    labels.iter().filter(move |l| Some(l.name) != skip)
}

fn same_label(a: &Label<'_>, b: &Label<'_>) -> bool {
    a.name == b.name && a.value == b.value
}

/// The same labels, in any order. Label names are unique on a sample, so
/// when the names come in the same order one differing value settles it.
fn key_eq(a: &[Label<'_>], skip_a: Option<&str>, b: &[Label<'_>], skip_b: Option<&str>) -> bool {
    let (ka, kb) = (key(a, skip_a), key(b, skip_b));
    let len = ka.clone().count();
    if len != kb.clone().count() {
        return false;
    }
    if ka.clone().zip(kb.clone()).all(|(x, y)| x.name == y.name) {
        return ka.zip(kb).all(|(x, y)| x.value == y.value);
    }
    if len <= 16 {
        return ka.clone().all(|x| kb.clone().any(|y| same_label(x, y)));
    }
    let mut va: Vec<(&str, &str)> = ka.map(|l| (l.name, &*l.value)).collect();
    let mut vb: Vec<(&str, &str)> = kb.map(|l| (l.name, &*l.value)).collect();
    va.sort_unstable();
    vb.sort_unstable();
    va == vb
}

impl<'a> Points<'a> {
    fn key_hash(&self, labels: &[Label<'_>], skip: Option<&str>) -> u64 {
        // A sum, so that label order does not matter.
        key(labels, skip).fold(0u64, |h, l| {
            h.wrapping_add(self.hasher.hash_one((l.name, &*l.value)))
        })
    }

    /// Takes the sample `index` (already in `out`), on line `n`.
    pub(super) fn add(
        &mut self,
        out: &Exposition<'a>,
        index: usize,
        n: usize,
    ) -> Result<(), ParseError> {
        let s = &out.samples[index];
        let f = out.family_of(s);
        let labels = out.labels(s);
        let skip = key_skip(f.kind, f.name, s.role);
        let same = self.metric.is_some_and(|(first, first_skip)| {
            key_eq(out.labels(&out.samples[first]), first_skip, labels, skip)
        });
        if !same {
            if self.metric.is_some() {
                self.close_point(out, f)?;
            }
            let hash = self.key_hash(labels, skip);
            if let Some(line) = self.seen_before(out, hash, labels, skip) {
                return Err(content(
                    n,
                    format!(
                        "the metric {} appears again after other metrics of its family (first at line {line}); a metric's lines must be together",
                        metric_text(f.name, labels, skip)
                    ),
                ));
            }
            match self.seen.entry(hash) {
                Entry::Occupied(_) => self.collided.push((hash, index, n)),
                Entry::Vacant(slot) => {
                    slot.insert((index, n));
                }
            }
            self.metric = Some((index, skip));
            self.start_point(index, n, s.timestamp);
        } else {
            match (self.point.timestamp, s.timestamp) {
                (Some(_), None) | (None, Some(_)) => {
                    return Err(content(
                        n,
                        format!(
                            "some samples of the metric {} have a timestamp and some do not",
                            metric_text(f.name, labels, skip)
                        ),
                    ));
                }
                (Some(before), Some(now)) if now < before => {
                    return Err(content(
                        n,
                        format!(
                            "timestamp {now} is earlier than the {before} before it in the metric {}; a metric's points must be in time order",
                            metric_text(f.name, labels, skip)
                        ),
                    ));
                }
                (Some(before), Some(now)) if now > before => {
                    self.close_point(out, f)?;
                    self.start_point(index, n, s.timestamp);
                }
                _ => {}
            }
        }
        if let Some(repeat) = self.repeats(out, index, f) {
            // The same sample again at the same time starts another point;
            // without timestamps it is a duplicate.
            if s.timestamp.is_none() {
                return Err(content(n, repeat));
            }
            self.close_point(out, f)?;
            self.start_point(index, n, s.timestamp);
        }
        self.point.line = n;
        self.record(out, index, n)
    }

    /// The line of an earlier metric of the family with these labels.
    fn seen_before(
        &self,
        out: &Exposition<'a>,
        hash: u64,
        labels: &[Label<'_>],
        skip: Option<&str>,
    ) -> Option<usize> {
        let earlier = self
            .seen
            .get(&hash)
            .into_iter()
            .map(|&(first, line)| (first, line));
        let collided = self
            .collided
            .iter()
            .filter(|c| c.0 == hash)
            .map(|&(_, first, line)| (first, line));
        earlier.chain(collided).find_map(|(first, line)| {
            let s = &out.samples[first];
            let f = out.family_of(s);
            key_eq(
                out.labels(s),
                key_skip(f.kind, f.name, s.role),
                labels,
                skip,
            )
            .then_some(line)
        })
    }

    fn start_point(&mut self, first: usize, line: usize, timestamp: Option<f64>) {
        self.point = Point {
            first,
            line,
            timestamp,
            ..Point::default()
        };
        reset(&mut self.quantiles);
        reset(&mut self.states);
    }

    /// Why the sample `index` cannot join the current point, if it repeats
    /// part of it.
    fn repeats(&self, out: &Exposition<'a>, index: usize, f: &Family<'a>) -> Option<String> {
        let s = &out.samples[index];
        let p = &self.point;
        match s.role {
            Role::Bucket => match (p.last_le, s.le) {
                (Some(last), Some(le)) if le == last => Some(format!(
                    "the bucket le={} of `{}` appears twice",
                    le_text(le),
                    s.name
                )),
                (Some(last), Some(le)) if le < last => Some(format!(
                    "buckets must be in increasing order of le: le={} comes after le={} in `{}`",
                    le_text(le),
                    le_text(last),
                    s.name
                )),
                _ => None,
            },
            Role::Quantile => {
                let q = om_real(out.label(s, "quantile").unwrap_or("")).unwrap_or(0.0);
                self.quantiles
                    .contains(&quantile_key(q))
                    .then(|| format!("quantile {q} of `{}` appears twice", s.name))
            }
            Role::Value if f.kind == MetricType::StateSet => {
                let state = out.label(s, f.name).unwrap_or("");
                if !self.states.contains(&self.hasher.hash_one(state)) {
                    return None;
                }
                // Confirm: a hash match may be a collision.
                let twice = out.samples[p.first..index]
                    .iter()
                    .any(|o| out.label(o, f.name) == Some(state));
                twice.then(|| format!("the state \"{state}\" of `{}` appears twice", s.name))
            }
            role => (p.has & role_bit(role) != 0)
                .then(|| format!("`{}` appears twice for the same metric and time", s.name)),
        }
    }

    /// Adds the sample `index` to the current point.
    fn record(&mut self, out: &Exposition<'a>, index: usize, n: usize) -> Result<(), ParseError> {
        let s = &out.samples[index];
        let f = out.family_of(s);
        let p = &mut self.point;
        match s.role {
            Role::Bucket => {
                let le = s.le.unwrap_or(f64::INFINITY);
                if p.last_le.is_some() && s.value < p.last_bucket {
                    return Err(content(
                        n,
                        format!(
                            "bucket counts must not decrease as le grows: le={} of `{}` has {}, the bucket before it {}",
                            le_text(le),
                            s.name,
                            s.value,
                            p.last_bucket
                        ),
                    ));
                }
                p.last_le = Some(le);
                p.last_bucket = s.value;
                p.negative_le |= le < 0.0;
                if le == f64::INFINITY {
                    p.inf = Some(s.value);
                }
            }
            Role::Quantile => {
                let q = om_real(out.label(s, "quantile").unwrap_or("")).unwrap_or(0.0);
                self.quantiles.insert(quantile_key(q));
            }
            Role::Value if f.kind == MetricType::StateSet => {
                let state = out.label(s, f.name).unwrap_or("");
                self.states.insert(self.hasher.hash_one(state));
            }
            role => {
                p.has |= role_bit(role);
                match role {
                    Role::Count | Role::GaugeCount => p.count = Some(s.value),
                    Role::Sum | Role::GaugeSum => p.sum = Some(s.value),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Checks that the current point is whole.
    fn close_point(&mut self, out: &Exposition<'a>, f: &Family<'a>) -> Result<(), ParseError> {
        let Some((first, skip)) = self.metric else {
            return Ok(());
        };
        let p = &self.point;
        let metric = || metric_text(f.name, out.labels(&out.samples[first]), skip);
        let (count, sum) = match f.kind {
            MetricType::GaugeHistogram => ("_gcount", "_gsum"),
            _ => ("_count", "_sum"),
        };
        let problem = match f.kind {
            MetricType::Histogram | MetricType::GaugeHistogram => {
                if p.inf.is_none() {
                    Some(format!(
                        "the {} {} has no bucket with le=\"+Inf\"",
                        f.kind.as_str(),
                        metric()
                    ))
                } else if p.count.is_some() != p.sum.is_some() {
                    Some(format!(
                        "the {} {} has one of {count} and {sum} without the other",
                        f.kind.as_str(),
                        metric()
                    ))
                } else if p.count.is_some() && p.count != p.inf {
                    Some(format!(
                        "the {} {} has {count} {} but its +Inf bucket has {}; they must be equal",
                        f.kind.as_str(),
                        metric(),
                        p.count.unwrap_or(0.0),
                        p.inf.unwrap_or(0.0)
                    ))
                } else if f.kind == MetricType::Histogram && p.negative_le && p.sum.is_some() {
                    Some(format!(
                        "the histogram {} has a bucket below 0, so it must not have a _sum",
                        metric()
                    ))
                } else if f.kind == MetricType::GaugeHistogram
                    && p.sum.is_some_and(|s| s < 0.0)
                    && !p.negative_le
                {
                    Some(format!(
                        "the gauge histogram {} has a negative _gsum but no bucket below 0",
                        metric()
                    ))
                } else {
                    None
                }
            }
            MetricType::Counter if p.has & role_bit(Role::Total) == 0 => Some(format!(
                "the counter {} has a _created but no _total",
                metric()
            )),
            _ => None,
        };
        match problem {
            Some(message) => Err(content(p.line, message)),
            None => Ok(()),
        }
    }

    /// Closes the family's last point and forgets its metrics.
    pub(super) fn end_family(
        &mut self,
        out: &Exposition<'a>,
        f: &Family<'a>,
    ) -> Result<(), ParseError> {
        self.close_point(out, f)?;
        self.metric = None;
        self.collided.clear();
        // As `reset`: a big family must not make every later one pay.
        self.seen.clear();
        if self.seen.capacity() > SMALL {
            self.seen.shrink_to(SMALL);
        }
        Ok(())
    }
}

/// Capacity a cleared set keeps.
const SMALL: usize = 64;

/// Empties a set. Clearing costs its capacity, not its length, so one big
/// point (or family) would make every later one as slow: shrink it back.
fn reset<S: BuildHasher>(set: &mut HashSet<u64, S>) {
    set.clear();
    if set.capacity() > SMALL {
        set.shrink_to(SMALL);
    }
}

fn quantile_key(q: f64) -> u64 {
    // 0.0 and -0.0 are one quantile.
    (q + 0.0).to_bits()
}

fn le_text(le: f64) -> String {
    if le == f64::INFINITY {
        "+Inf".into()
    } else {
        le.to_string()
    }
}

fn content(n: usize, message: String) -> ParseError {
    ParseError::new(ErrorKind::Content, n, 1, message)
}

/// `name{labels}` of a metric, for a message (at most ~80 characters).
fn metric_text(name: &str, labels: &[Label<'_>], skip: Option<&str>) -> String {
    let mut text = format!("`{name}");
    let mut first = true;
    for l in key(labels, skip) {
        text.push(if first { '{' } else { ',' });
        first = false;
        text.push_str(&format!("{}=\"{}\"", l.name, l.value.escape_debug()));
        if text.len() > 80 {
            text.push('…');
            break;
        }
    }
    if !first {
        text.push('}');
    }
    text.push('`');
    text
}
