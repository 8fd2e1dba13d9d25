//! Latency histograms: a thin wrapper over the `hdrhistogram` crate with the few queries the
//! harness and the report make. Values are nanoseconds, 3 significant digits (exact below
//! 2,048 ns, at most 0.1% wide above), from 0 to an hour; fixed size, so recording on a
//! producer thread never allocates (the harness counts allocations there).

use hdrhistogram::Histogram;

/// The highest value tracked, ns (an hour); longer samples are recorded as this.
const HIGHEST: u64 = 3_600_000_000_000;

/// Counts of nanosecond samples.
#[derive(Clone)]
pub struct Hist {
    h: Histogram<u64>,
}

impl Default for Hist {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Hist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hist(n={}, p50={}, max={})", self.len(), self.quantile(0.5), self.max())
    }
}

impl Hist {
    /// An empty histogram.
    pub fn new() -> Self {
        // 1..=HIGHEST with 3 significant digits is a valid configuration.
        let h = Histogram::new_with_bounds(1, HIGHEST, 3).expect("valid histogram bounds");
        Hist { h }
    }

    /// Adds one sample (clamped to an hour).
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.h.saturating_record(ns);
    }

    /// Adds another histogram's samples.
    pub fn merge(&mut self, other: &Hist) {
        // Both have the same bounds, so every value of `other` fits.
        self.h.add(&other.h).expect("histograms with the same bounds");
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.h.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.h.is_empty()
    }

    /// The largest sample (its bucket's highest equivalent value above 2,048 ns).
    pub fn max(&self) -> u64 {
        self.h.max()
    }

    /// The mean, in ns.
    pub fn mean(&self) -> f64 {
        self.h.mean()
    }

    /// The value at quantile `q` (0..=1): the low edge of the bucket holding that sample
    /// (exact below 2,048 ns), capped by the maximum.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.h.is_empty() {
            return 0;
        }
        self.h.lowest_equivalent(self.h.value_at_quantile(q)).min(self.max())
    }

    /// Non-empty buckets as (low edge ns, cumulative fraction at its end), for CDF plots.
    pub fn cdf(&self) -> Vec<(u64, f64)> {
        self.h
            .iter_recorded()
            .map(|v| (self.h.lowest_equivalent(v.value_iterated_to()), v.quantile_iterated_to()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_exact_below_2048_ns() {
        let mut h = Hist::new();
        for v in 1..=1000 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 500);
        assert_eq!(h.quantile(0.99), 990);
        assert_eq!(h.quantile(1.0), 1000);
        assert_eq!(h.max(), 1000);
        assert_eq!(h.len(), 1000);
    }

    #[test]
    fn merge_adds_and_cdf_ends_at_one() {
        let (mut a, mut b) = (Hist::new(), Hist::new());
        a.record(10);
        b.record(1_000_000);
        b.record(u64::MAX);
        a.merge(&b);
        assert_eq!(a.len(), 3);
        let cdf = a.cdf();
        assert_eq!(cdf.first().map(|p| p.0), Some(10));
        assert!(cdf.last().is_some_and(|p| (p.1 - 1.0).abs() < 1e-9), "{cdf:?}");
        assert!(a.max() >= HIGHEST, "clamped to an hour: {}", a.max());
    }
}
