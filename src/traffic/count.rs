//! Per-series counter state of one traffic entry, and what each scrape
//! adds: requests, errors, and latency-bucket increases, taken per series
//! and then summed. A counter that went down, or whose `_created` changed,
//! restarted from zero; a series first seen after the baseline scrape
//! counts in full; a series that vanished adds nothing; nothing is
//! extrapolated. A value that is NaN, infinite or negative is not a count:
//! it adds nothing and leaves the series' last good value in place.

use std::collections::HashMap;

use super::exposition::{Exposition, Family, Role, Sample};
use super::selector::Selector;

/// Series one entry keeps at most, over its three selectors: beyond this
/// a scrape is refused rather than let memory grow with the app's labels.
pub const MAX_SERIES: usize = 10_000;

/// What one scrape added since the previous successful one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deltas {
    /// The first scrape folded: every increase is 0, the bounds in
    /// `buckets` are what the app has.
    pub baseline: bool,
    /// Requests (the `requests` selector's increase).
    pub requests: f64,
    /// Failed requests, at most `requests`.
    pub errors: f64,
    /// Cumulative bucket increases `(le, observations ≤ le)`, summed across
    /// series by bound, sorted by bound; `+Inf` last when present.
    pub buckets: Vec<(f64, f64)>,
}

/// The scrape matched more series than an entry keeps.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{matched} series match this traffic entry's selectors; at most {max} are kept, \
     so narrow the selectors (match) or drop labels in the app"
)]
pub struct TooManySeries {
    pub matched: usize,
    pub max: usize,
}

/// The last good value of one series.
#[derive(Debug, Clone, Copy)]
struct Last {
    value: f64,
    created: Option<f64>,
    /// The scrape that last saw it: older ones vanished.
    seen: u64,
}

/// Counter state of one traffic entry.
#[derive(Debug)]
pub struct Counter {
    requests: Selector,
    errors: Option<Selector>,
    latency: Option<Selector>,
    series: HashMap<String, Last>,
    /// Successful scrapes folded so far (0: the next one is the baseline).
    scrapes: u64,
    max_series: usize,
    /// Series matched by the last scrape.
    matched: usize,
    /// Samples skipped because their value was not a count (NaN, ±Inf, < 0).
    skipped: u64,
    key: String,
}

/// Which selector a series was matched by: part of its key, since one
/// series may be both a request and an error.
#[derive(Clone, Copy)]
enum Part {
    Requests,
    Errors,
    Bucket,
}

impl Counter {
    pub fn new(requests: Selector, errors: Option<Selector>, latency: Option<Selector>) -> Self {
        Counter::with_max_series(requests, errors, latency, MAX_SERIES)
    }

    pub fn with_max_series(
        requests: Selector,
        errors: Option<Selector>,
        latency: Option<Selector>,
        max_series: usize,
    ) -> Self {
        Counter {
            requests,
            errors,
            latency,
            series: HashMap::new(),
            scrapes: 0,
            max_series,
            matched: 0,
            skipped: 0,
            key: String::new(),
        }
    }

    /// Series the last successful scrape matched.
    pub fn series(&self) -> usize {
        self.matched
    }

    /// Samples skipped so far because their value was NaN, infinite or negative.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Folds one successful scrape in. The first is only a baseline (all
    /// increases 0, `baseline` set). On `Err` the state is unchanged, so
    /// the next scrape's increases are taken from the last one folded.
    pub fn fold(&mut self, scrape: &Exposition<'_>) -> Result<Deltas, TooManySeries> {
        // Selectors run once per sample; what they picked is checked
        // against the cap before any state changes.
        let mut picked: Vec<(usize, &Sample<'_>, Part)> = Vec::new();
        for (f, family) in scrape.families().iter().enumerate() {
            for s in scrape.samples_of(family) {
                for (part, selected) in self.parts(family, s, scrape) {
                    if selected {
                        picked.push((f, s, part));
                    }
                }
            }
        }
        if picked.len() > self.max_series {
            return Err(TooManySeries {
                matched: picked.len(),
                max: self.max_series,
            });
        }
        let baseline = self.scrapes == 0;
        self.scrapes += 1;
        let now = self.scrapes;
        let mut out = Deltas {
            baseline,
            ..Deltas::default()
        };
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        let mut created: Option<(usize, CreatedIndex)> = None;
        for (f, s, part) in picked {
            if created.as_ref().is_none_or(|(at, _)| *at != f) {
                let family = &scrape.families()[f];
                created = Some((f, CreatedIndex::new(scrape, scrape.samples_of(family))));
            }
            let since = created.as_ref().and_then(|(_, c)| c.of(scrape, s));
            let Some(delta) = self.delta(part, s, scrape, since, now) else {
                continue;
            };
            let delta = if baseline { 0.0 } else { delta };
            match part {
                Part::Requests => out.requests += delta,
                Part::Errors => out.errors += delta,
                Part::Bucket => {
                    if let Some(le) = s.le {
                        add_bucket(&mut buckets, le, delta);
                    }
                }
            }
        }
        self.series.retain(|_, last| last.seen == now);
        self.matched = self.series.len();
        out.errors = out.errors.min(out.requests);
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        out.buckets = buckets;
        Ok(out)
    }

    /// Which selectors `s` is matched by.
    fn parts(
        &self,
        family: &Family<'_>,
        s: &Sample<'_>,
        scrape: &Exposition<'_>,
    ) -> [(Part, bool); 3] {
        let counted = matches!(
            s.role,
            Role::Total | Role::Count | Role::Value | Role::Bucket
        );
        let labels = scrape.labels(s);
        let pick = |sel: &Selector| counted && sel.matches(s.name, labels);
        [
            (Part::Requests, pick(&self.requests)),
            (Part::Errors, self.errors.as_ref().is_some_and(pick)),
            (
                Part::Bucket,
                s.role == Role::Bucket
                    && self
                        .latency
                        .as_ref()
                        .is_some_and(|sel| sel.matches(family.name, labels)),
            ),
        ]
    }

    /// The increase of one series since the last scrape, updating its state;
    /// None when its value is not a count.
    fn delta(
        &mut self,
        part: Part,
        s: &Sample<'_>,
        scrape: &Exposition<'_>,
        created: Option<f64>,
        now: u64,
    ) -> Option<f64> {
        self.key.clear();
        self.key.push(match part {
            Part::Requests => 'r',
            Part::Errors => 'e',
            Part::Bucket => 'b',
        });
        self.key.push_str(s.name);
        for l in scrape.labels(s) {
            self.key.push('\u{0}');
            self.key.push_str(l.name);
            self.key.push('\u{1}');
            self.key.push_str(&l.value);
        }
        let value = s.value;
        if !value.is_finite() || value < 0.0 {
            self.skipped += 1;
            // Still present: a later good value is compared with the last one.
            if let Some(last) = self.series.get_mut(self.key.as_str()) {
                last.seen = now;
            }
            return None;
        }
        let next = Last {
            value,
            created,
            seen: now,
        };
        match self.series.get_mut(self.key.as_str()) {
            Some(last) => {
                let restarted = value < last.value
                    || (created.is_some() && last.created.is_some() && created != last.created);
                let delta = if restarted { value } else { value - last.value };
                *last = next;
                Some(delta)
            }
            None => {
                self.series.insert(self.key.clone(), next);
                // New since the previous scrape: it started from zero.
                Some(value)
            }
        }
    }
}

fn add_bucket(buckets: &mut Vec<(f64, f64)>, le: f64, delta: f64) {
    match buckets.iter_mut().find(|(b, _)| *b == le) {
        Some((_, n)) => *n += delta,
        None => buckets.push((le, delta)),
    }
}

/// `_created` samples of one family, by their labels (without `le`).
struct CreatedIndex {
    by_labels: HashMap<String, f64>,
}

impl CreatedIndex {
    fn new(scrape: &Exposition<'_>, samples: &[Sample<'_>]) -> Self {
        let by_labels = samples
            .iter()
            .filter(|s| s.role == Role::Created && s.value.is_finite())
            .map(|s| (labels_key(scrape, s), s.value))
            .collect();
        CreatedIndex { by_labels }
    }

    fn of(&self, scrape: &Exposition<'_>, s: &Sample<'_>) -> Option<f64> {
        if self.by_labels.is_empty() {
            return None;
        }
        self.by_labels.get(&labels_key(scrape, s)).copied()
    }
}

fn labels_key(scrape: &Exposition<'_>, s: &Sample<'_>) -> String {
    let mut key = String::new();
    for l in scrape.labels(s).iter().filter(|l| l.name != "le") {
        key.push_str(l.name);
        key.push('\u{1}');
        key.push_str(&l.value);
        key.push('\u{0}');
    }
    key
}

#[cfg(test)]
mod tests;
