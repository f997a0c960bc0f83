//! A latency histogram made of atomics: one `fetch_add` per bucket, count and sum on the
//! hot path, no lock. Read at scrape time with [`AtomicHistogram::snapshot`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (a `+Inf` bucket follows): from 0.5 ms (a cache
/// hit) to 5 s (beyond any query timeout ctdns allows by default).
pub const BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Upper bounds of [`BUCKETS`] in nanoseconds, for comparisons without floats.
const BUCKET_NANOS: [u64; 13] = [
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
];

/// Durations counted into the fixed [`BUCKETS`].
#[derive(Debug, Default)]
pub struct AtomicHistogram {
    /// Per-bucket (not cumulative) counts; the last one is `+Inf`.
    buckets: [AtomicU64; 14],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// The values of an [`AtomicHistogram`] at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, observations in this bucket only)`, `+Inf` last; the
    /// exposition encoder makes them cumulative.
    pub buckets: Vec<(f64, u64)>,
    /// Observations.
    pub count: u64,
    /// Sum of the observations, in seconds.
    pub sum_seconds: f64,
}

impl AtomicHistogram {
    /// Count one observation.
    pub fn observe(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let index = BUCKET_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BUCKET_NANOS.len());
        if let Some(bucket) = self.buckets.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The current values. Taken without a lock, so under load the bucket counts may be a
    /// few observations ahead of or behind `count`; the count is then the sum of the buckets
    /// read, so that the `+Inf` bucket always equals `_count`.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        HistogramSnapshot {
            buckets,
            count,
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = AtomicHistogram::default();
        h.observe(Duration::from_micros(100)); // <= 0.5 ms
        h.observe(Duration::from_micros(500)); // on the bound: still the first bucket
        h.observe(Duration::from_millis(30)); // 0.05
        h.observe(Duration::from_secs(9)); // +Inf
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets.len(), BUCKETS.len() + 1);
        assert_eq!(s.buckets[0], (0.0005, 2));
        assert_eq!(s.buckets[6], (0.05, 1));
        assert_eq!(s.buckets[13], (f64::INFINITY, 1));
        assert!((s.sum_seconds - 9.0306).abs() < 1e-9, "{}", s.sum_seconds);
    }

    #[test]
    fn bounds_agree() {
        for (s, n) in BUCKETS.iter().zip(BUCKET_NANOS) {
            assert_eq!((s * 1e9).round() as u64, n);
        }
    }
}
