//! A log-linear latency histogram (HDR-style): exact 1 ns buckets below 2048 ns, then 64
//! buckets per power of two (at most 1.6% wide), up to `u64::MAX`. Fixed size, no allocation
//! while recording.

/// Values below this get their own 1 ns bucket.
const LINEAR: u64 = 2048;
/// log2 of [`LINEAR`].
const LINEAR_BITS: u32 = 11;
/// Sub-buckets per power of two above [`LINEAR`] (log2).
const SUB_BITS: u32 = 6;
const BUCKETS: usize = LINEAR as usize + (64 - LINEAR_BITS as usize) * (1 << SUB_BITS);

/// Counts of nanosecond samples.
#[derive(Clone)]
pub struct Hist {
    counts: Box<[u64]>,
    total: u64,
    sum: u128,
    max: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Hist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hist(n={}, p50={}, max={})", self.total, self.quantile(0.5), self.max)
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= LINEAR_BITS
    let sub = (v >> (exp - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    LINEAR as usize + ((exp - LINEAR_BITS) as usize) * (1 << SUB_BITS) + sub as usize
}

/// The smallest value of bucket `i`.
fn low(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    let j = i - LINEAR as usize;
    let exp = LINEAR_BITS + (j >> SUB_BITS) as u32;
    let sub = (j & ((1 << SUB_BITS) - 1)) as u64;
    (1u64 << exp) | (sub << (exp - SUB_BITS))
}

impl Hist {
    /// An empty histogram.
    pub fn new() -> Self {
        Hist { counts: vec![0; BUCKETS].into_boxed_slice(), total: 0, sum: 0, max: 0 }
    }

    /// Adds one sample.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.counts[index(ns)] += 1;
        self.total += 1;
        self.sum += u128::from(ns);
        self.max = self.max.max(ns);
    }

    /// Adds another histogram's samples.
    pub fn merge(&mut self, other: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The largest sample.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean, in ns.
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value at quantile `q` (0..=1): the low edge of the bucket holding the sample of
    /// rank `ceil(q * n)` (exact below 2048 ns), capped by the maximum.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return low(i).min(self.max);
            }
        }
        self.max
    }

    /// Non-empty buckets as (low edge ns, cumulative fraction at its end), for CDF plots.
    pub fn cdf(&self) -> Vec<(u64, f64)> {
        let mut out = Vec::new();
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            if c > 0 {
                seen += c;
                out.push((low(i), seen as f64 / self.total as f64));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip() {
        for v in [0u64, 1, 2047, 2048, 2049, 4095, 4096, 10_000, 1 << 40, u64::MAX] {
            let i = index(v);
            assert!(low(i) <= v, "{v}");
            if i + 1 < BUCKETS {
                assert!(low(i + 1) > v, "{v}");
            }
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Hist::new();
        for v in 1..=1000 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 500);
        assert_eq!(h.quantile(0.99), 990);
        assert_eq!(h.quantile(1.0), 1000);
        assert_eq!(h.max(), 1000);
    }
}
