//! UUIDv7 generation without allocation or a global RNG.

/// Makes UUIDv7s (RFC 9562): 48 bits of Unix milliseconds, a 12-bit counter that keeps ids
/// monotonic within a millisecond, and 62 bits that mix a per-generator random seed with a
/// per-id counter. Two generators with different seeds (threads, processes, restarts) cannot
/// produce the same stream; one generator never repeats an id.
#[derive(Debug, Clone)]
pub struct UuidV7 {
    seed: u64,
    counter: u64,
    last_ms: u64,
    seq: u16,
}

impl UuidV7 {
    /// A generator. `seed` must differ between processes and restarts: with `std` the client
    /// seeds from the OS; without it, seed from a hardware RNG or similar.
    pub const fn new(seed: u64) -> Self {
        UuidV7 { seed, counter: 0, last_ms: 0, seq: 0 }
    }

    /// The next id for an event seen at `unix_ms`.
    pub fn next(&mut self, unix_ms: u64) -> [u8; 16] {
        let mut ms = unix_ms.max(self.last_ms);
        if ms == self.last_ms {
            self.seq += 1;
            if self.seq > 0x0fff {
                // 4096 ids in one millisecond: borrow the next millisecond to stay monotonic.
                ms += 1;
                self.seq = 0;
            }
        } else {
            self.seq = (splitmix64(self.seed ^ ms) & 0x01ff) as u16; // random start, room to count
        }
        self.last_ms = ms;
        self.counter = self.counter.wrapping_add(1);
        let rand_b = splitmix64(self.seed.wrapping_add(self.counter.wrapping_mul(0x9e37_79b9_7f4a_7c15)));

        let mut out = [0u8; 16];
        out[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
        out[6] = 0x70 | (self.seq >> 8) as u8;
        out[7] = self.seq as u8;
        out[8..].copy_from_slice(&rand_b.to_be_bytes());
        out[8] = (out[8] & 0x3f) | 0x80; // RFC 9562 variant
        out
    }
}

/// SplitMix64's finaliser: a bijection on `u64` that scatters nearby inputs.
pub(crate) const fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_variant_time_and_order() {
        let mut g = UuidV7::new(42);
        let a = g.next(1_700_000_000_123);
        let b = g.next(1_700_000_000_123);
        assert_eq!(a[6] >> 4, 7);
        assert_eq!(a[8] >> 6, 0b10);
        assert_eq!(u64::from_be_bytes([0, 0, a[0], a[1], a[2], a[3], a[4], a[5]]), 1_700_000_000_123);
        assert!(a < b, "ids within one millisecond stay ordered");
        // A clock that steps back never makes ids go back.
        let c = g.next(1_699_999_999_000);
        assert!(b < c);
    }

    #[test]
    fn unique_within_and_across_generators() {
        let mut seen = std::collections::HashSet::new();
        for seed in [1u64, 2, 3] {
            let mut g = UuidV7::new(seed);
            for i in 0..20_000u64 {
                assert!(seen.insert(g.next(1_700_000_000_000 + i / 5000)));
            }
        }
    }
}
