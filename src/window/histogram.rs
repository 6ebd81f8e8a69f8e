//! Fixed-size log-linear latency histogram: 256 buckets whose edges grow by
//! 2^(1/12) (≈ 5.9 %) from ≈ 52 µs to ≈ 123 s, plus an underflow and an
//! overflow bucket. Percentiles come back within a few percent of the exact
//! value at any probe rate, in fixed memory.

use std::fmt;
use std::time::Duration;

use serde::ser::{Serialize, SerializeStruct, Serializer};

/// Number of buckets, underflow and overflow included. A power of two keeps
/// the summing loops free of remainders once vectorised.
pub(super) const BUCKETS: usize = 256;
/// Buckets per doubling of latency: 12 gives edges 2^(1/12) apart.
const PER_OCTAVE: f64 = 12.0;
/// Bucket 1 starts at 2^(K_LOW/12) ns ≈ 52 µs; everything faster is bucket 0.
/// Bucket 254 ends at 2^((K_LOW+254)/12) ns ≈ 122.6 s; slower is bucket 255.
const K_LOW: f64 = 188.0;

/// The bucket a latency of `ns` nanoseconds falls into. No loop and no branch
/// on the value: one `log2`, then a clamp that also absorbs `log2(0) = -inf`.
#[inline]
pub(super) fn bucket_index(ns: u64) -> usize {
    let k = ((ns as f64).log2() * PER_OCTAVE).floor() - K_LOW + 1.0;
    k.clamp(0.0, (BUCKETS - 1) as f64) as usize
}

/// Lower edge of bucket `i` in nanoseconds (bucket 0 starts at zero).
fn lower_ns(i: usize) -> f64 {
    if i == 0 {
        0.0
    } else {
        ((K_LOW + (i - 1) as f64) / PER_OCTAVE).exp2()
    }
}

/// Upper edge of bucket `i` in nanoseconds (the overflow bucket has none).
fn upper_ns(i: usize) -> f64 {
    if i + 1 >= BUCKETS {
        f64::INFINITY
    } else {
        lower_ns(i + 1)
    }
}

/// Saturating conversion: 2^64 ns is 584 years, far beyond any probe timeout.
#[inline]
pub(super) fn nanos(latency: Duration) -> u64 {
    u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX)
}

/// The per-slot histogram stored inside a window. `u32` counts halve the
/// memory of every slot. It carries its own epoch and count because a tier
/// may keep fewer histograms than count slots (see `Tier::latency`).
#[derive(Clone, Copy)]
pub(super) struct SlotHistogram {
    /// Which slot of time the contents belong to, as in the tier's heads.
    pub(super) epoch: u64,
    min_ns: u64,
    max_ns: u64,
    count: u32,
    /// The occupied bucket range, so summing skips the empty rest: probe
    /// latencies of one slot rarely span more than a few dozen buckets.
    first: u8,
    last: u8,
    buckets: [u32; BUCKETS],
}

impl SlotHistogram {
    pub(super) const EMPTY: SlotHistogram = SlotHistogram {
        epoch: 0,
        min_ns: u64::MAX,
        max_ns: 0,
        count: 0,
        first: u8::MAX,
        last: 0,
        buckets: [0; BUCKETS],
    };

    /// Latencies recorded.
    pub(super) fn count(&self) -> u64 {
        u64::from(self.count)
    }

    /// Latencies recorded no slower than `limit`, give or take a bucket:
    /// those of the bucket that holds `limit` count as within it.
    pub(super) fn at_most(&self, limit: Duration) -> u64 {
        let ns = nanos(limit);
        if self.count == 0 || self.max_ns <= ns {
            return self.count();
        }
        let last = bucket_index(ns);
        self.buckets[..=last].iter().map(|&n| u64::from(n)).sum()
    }

    #[inline]
    pub(super) fn record(&mut self, bucket: usize, ns: u64) {
        self.buckets[bucket] = self.buckets[bucket].saturating_add(1);
        self.count = self.count.saturating_add(1);
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
        // BUCKETS is 256, so every index fits a u8.
        let b = bucket as u8;
        self.first = self.first.min(b);
        self.last = self.last.max(b);
    }
}

/// Latency distribution of probes, mergeable across slots and
/// targets. Keeps the exact minimum and maximum so that the extreme
/// percentiles (and a constant latency) come back exactly.
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    count: u64,
    min_ns: u64,
    max_ns: u64,
    buckets: [u64; BUCKETS],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            count: 0,
            min_ns: u64::MAX,
            max_ns: 0,
            buckets: [0; BUCKETS],
        }
    }
}

impl Histogram {
    /// Number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds one latency.
    pub fn record(&mut self, latency: Duration) {
        let ns = nanos(latency);
        self.buckets[bucket_index(ns)] += 1;
        self.count += 1;
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    /// Adds every latency of `other` into `self`.
    pub fn merge(&mut self, other: &Histogram) {
        // Plain zip over two fixed arrays: the compiler turns it into SIMD adds.
        for (acc, &n) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *acc += n;
        }
        self.count += other.count;
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// Adds one window slot's latencies.
    #[inline]
    pub(super) fn add_slot(&mut self, slot: &SlotHistogram) {
        if slot.first > slot.last {
            return;
        }
        let range = usize::from(slot.first)..=usize::from(slot.last);
        let (acc, add) = (&mut self.buckets[range.clone()], &slot.buckets[range]);
        for (acc, &n) in acc.iter_mut().zip(add) {
            *acc += u64::from(n);
        }
        self.count += u64::from(slot.count);
        self.min_ns = self.min_ns.min(slot.min_ns);
        self.max_ns = self.max_ns.max(slot.max_ns);
    }

    /// The `p`-th percentile (`0 < p <= 100`; values outside are clamped),
    /// or `None` when empty.
    ///
    /// The rank is nearest-rank, `ceil(p/100 · n)`. Inside the bucket that
    /// holds it, the bucket's samples are taken as evenly spread between its
    /// edges, except that an edge is replaced by the exact minimum or maximum
    /// when that lies in the bucket (then it is itself a sample). The error is
    /// thus bounded by the bucket width (≈ 6 %) and is usually well below it.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let n = self.count as f64;
        // p · n first, then / 100: 95 · 1000 / 100 is exactly 950, while
        // 0.95 · 1000 may land a hair above it and bump the rank.
        let rank = (p * n / 100.0).ceil().clamp(1.0, n) as u64;
        let mut below = 0u64;
        for (i, &c) in self.buckets.iter().enumerate() {
            if below + c < rank {
                below += c;
                continue;
            }
            let (min, max) = (self.min_ns as f64, self.max_ns as f64);
            let (lo, hi) = (lower_ns(i), upper_ns(i));
            let lo_known = min >= lo;
            let hi_known = max < hi;
            let a = if lo_known { min } else { lo };
            let b = if hi_known { max } else { hi };
            // Samples at a + (b - a)·t with evenly spaced t; a known edge is
            // a sample itself, an unknown edge leaves half a gap.
            let half = |unknown: bool| if unknown { 0.5 } else { 0.0 };
            let j = (rank - below) as f64;
            let num = j - 1.0 + half(!lo_known);
            let den = c as f64 - 1.0 + half(!lo_known) + half(!hi_known);
            let t = if den > 0.0 { num / den } else { 0.0 };
            let ns = (a + (b - a) * t).clamp(min, max);
            return Some(Duration::from_nanos(ns.round() as u64));
        }
        // Unreachable while count equals the sum of the buckets.
        Some(Duration::from_nanos(self.max_ns))
    }

    /// Smallest latency recorded, `None` when empty.
    pub fn min(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_nanos(self.min_ns))
    }

    /// Largest latency recorded, `None` when empty.
    pub fn max(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_nanos(self.max_ns))
    }
}

impl fmt::Debug for Histogram {
    // 256 mostly-zero buckets would drown a failing assertion: show a summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min())
            .field("p50", &self.percentile(50.0))
            .field("p99", &self.percentile(99.0))
            .field("max", &self.max())
            .finish()
    }
}

/// `/status` shows a summary, not the buckets: count, then min, p50, p90,
/// p95, p99 and max in seconds (`null` when empty).
impl Serialize for Histogram {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
        let mut s = serializer.serialize_struct("Histogram", 7)?;
        s.serialize_field("count", &self.count)?;
        s.serialize_field("min_seconds", &secs(self.min()))?;
        s.serialize_field("p50_seconds", &secs(self.percentile(50.0)))?;
        s.serialize_field("p90_seconds", &secs(self.percentile(90.0)))?;
        s.serialize_field("p95_seconds", &secs(self.percentile(95.0)))?;
        s.serialize_field("p99_seconds", &secs(self.percentile(99.0)))?;
        s.serialize_field("max_seconds", &secs(self.max()))?;
        s.end()
    }
}
