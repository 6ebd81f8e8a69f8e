//! Quantiles of cumulative `le` buckets, as PromQL's `histogram_quantile`
//! computes them: linear interpolation inside the bucket that holds the
//! rank, the lowest bucket starting at 0 (when its bound is above 0), a
//! rank in the `+Inf` bucket answered with the highest finite bound, and
//! counts that go down from one bound to the next raised to keep them
//! monotonic (rounding in the app, or series that moved between scrapes).

/// The `q`-quantile (0 ≤ q ≤ 1) of cumulative buckets `(upper bound,
/// count of observations ≤ bound)`, sorted by bound. None when PromQL's
/// answer is NaN: fewer than two buckets, no `+Inf` bucket, or no
/// observations.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    if q.is_nan() || buckets.len() < 2 {
        return None;
    }
    let (last_bound, _) = buckets[buckets.len() - 1];
    if last_bound != f64::INFINITY {
        return None;
    }
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }
    // Monotonic: a count is at least every count below it.
    let mut counts: Vec<f64> = Vec::with_capacity(buckets.len());
    let mut floor = 0.0f64;
    for &(_, c) in buckets {
        let c = if c.is_nan() { floor } else { c.max(floor) };
        floor = c;
        counts.push(c);
    }
    let observations = counts[counts.len() - 1];
    if observations <= 0.0 || !observations.is_finite() {
        return None;
    }
    let mut rank = q * observations;
    let b = counts.partition_point(|&c| c < rank);
    if b >= buckets.len() - 1 {
        return Some(buckets[buckets.len() - 2].0);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return Some(buckets[0].0);
    }
    let (mut start, end) = (0.0, buckets[b].0);
    let mut count = counts[b];
    if b > 0 {
        start = buckets[b - 1].0;
        count -= counts[b - 1];
        rank -= counts[b - 1];
    }
    Some(start + (end - start) * (rank / count))
}

#[cfg(test)]
mod tests {
    use super::histogram_quantile;

    const INF: f64 = f64::INFINITY;

    #[test]
    fn interpolates_inside_the_bucket_like_promql() {
        // 100 observations: 50 ≤ 0.1, 90 ≤ 0.5, 100 ≤ 1.
        let b = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (INF, 100.0)];
        // Rank 50 ends the first bucket, interpolated from 0.
        assert_eq!(histogram_quantile(0.5, &b), Some(0.1));
        assert_eq!(histogram_quantile(0.25, &b), Some(0.05));
        // Rank 70: 20 of the 40 between 0.1 and 0.5.
        let p70 = histogram_quantile(0.7, &b).unwrap();
        assert!((p70 - 0.3).abs() < 1e-12, "{p70}");
        let p95 = histogram_quantile(0.95, &b).unwrap();
        assert!((p95 - 0.75).abs() < 1e-12, "{p95}");
    }

    #[test]
    fn a_rank_in_the_inf_bucket_is_the_highest_finite_bound() {
        let b = [(0.1, 10.0), (0.5, 20.0), (INF, 100.0)];
        assert_eq!(histogram_quantile(0.99, &b), Some(0.5));
    }

    #[test]
    fn nan_cases_are_none() {
        // Only +Inf: one bucket, as PromQL says NaN.
        assert_eq!(histogram_quantile(0.5, &[(INF, 10.0)]), None);
        // No +Inf bucket.
        assert_eq!(histogram_quantile(0.5, &[(0.1, 1.0), (0.2, 2.0)]), None);
        // No observations.
        assert_eq!(histogram_quantile(0.5, &[(0.1, 0.0), (INF, 0.0)]), None);
        assert_eq!(
            histogram_quantile(f64::NAN, &[(0.1, 1.0), (INF, 1.0)]),
            None
        );
    }

    #[test]
    fn out_of_range_quantiles_and_non_positive_lowest_bounds() {
        let b = [(0.1, 1.0), (INF, 2.0)];
        assert_eq!(histogram_quantile(-0.1, &b), Some(f64::NEG_INFINITY));
        assert_eq!(histogram_quantile(1.1, &b), Some(INF));
        assert_eq!(
            histogram_quantile(0.1, &[(-1.0, 5.0), (INF, 10.0)]),
            Some(-1.0)
        );
        assert_eq!(
            histogram_quantile(0.1, &[(0.0, 5.0), (INF, 10.0)]),
            Some(0.0)
        );
    }

    #[test]
    fn decreasing_counts_are_raised_to_stay_monotonic() {
        // 0.5's count dipped below 0.1's: taken as 60, so rank 55 is in
        // the first bucket, not past a negative one.
        let b = [(0.1, 60.0), (0.5, 40.0), (INF, 100.0)];
        let p = histogram_quantile(0.55, &b).unwrap();
        assert!((p - 0.1 * 55.0 / 60.0).abs() < 1e-12, "{p}");
        let b = [(0.1, f64::NAN), (0.5, 40.0), (INF, 100.0)];
        assert!(histogram_quantile(0.2, &b).is_some());
    }
}
