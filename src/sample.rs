//! Sampling, decided at capture: which events a capture keeps, by event name or for all
//! events, at a rate in (0, 1]. Wait-free and allocation-free: a fixed table of rules, a
//! stable hash of the distinct_id when a user's events must be kept or dropped together,
//! otherwise a counter-based random number from the lane's own capture count (no shared
//! state, no atomic read-modify-write, no syscall).

use crate::uuid::splitmix64;

/// Most per-name rules a [`Sampler`] holds.
pub const MAX_SAMPLE_RULES: usize = 16;
/// Longest event name, in bytes, a per-name rule can match.
pub const MAX_SAMPLE_NAME: usize = 64;

/// A sampling rate in (0, 1]: the share of events kept. Stored as a threshold over 53-bit
/// random numbers, so every `f64` rate is exact and 1 keeps every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(u64);

impl Rate {
    /// Keep every event.
    pub const ALL: Rate = Rate(1 << 53);

    /// The rate `share` (0 < `share` <= 1); [`SampleError::Rate`] otherwise (0, negative,
    /// above 1, NaN).
    pub const fn new(share: f64) -> Result<Rate, SampleError> {
        // NaN fails both comparisons.
        if share.is_nan() || share <= 0.0 || share > 1.0 {
            return Err(SampleError::Rate);
        }
        // A threshold over 53-bit draws: `share` rounded down to a multiple of 2^-53 (1 keeps
        // every event), and at least 2^-53, so no positive rate keeps nothing.
        let threshold = (share * (1u64 << 53) as f64) as u64;
        Ok(Rate(if threshold == 0 { 1 } else { threshold }))
    }

    /// The share of events kept.
    pub const fn share(self) -> f64 {
        self.0 as f64 / (1u64 << 53) as f64
    }

    /// Whether a uniformly random 64-bit `draw` falls in the kept share.
    #[inline(always)]
    const fn keeps(self, draw: u64) -> bool {
        (draw >> 11) < self.0
    }
}

/// Why a sampling setting was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SampleError {
    /// A rate outside (0, 1].
    Rate,
    /// More than [`MAX_SAMPLE_RULES`] per-name rules.
    TooManyRules,
    /// An empty event name, or one over [`MAX_SAMPLE_NAME`] bytes.
    Name,
}

impl SampleError {
    /// What was expected, for error messages.
    pub const fn expected(self) -> &'static str {
        match self {
            SampleError::Rate => "a rate in (0, 1]",
            SampleError::TooManyRules => "at most 16 per-name rules",
            SampleError::Name => "an event name of 1 to 64 bytes",
        }
    }
}

impl core::fmt::Display for SampleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("invalid sampling setting: expected ")?;
        f.write_str(self.expected())
    }
}

impl core::error::Error for SampleError {}

/// One per-name rule: the name's bytes inline, so a sampler is `Copy`, `const` and owns no
/// memory.
#[derive(Clone, Copy)]
struct Rule {
    name: [u8; MAX_SAMPLE_NAME],
    len: u8,
    rate: Rate,
}

impl Rule {
    const EMPTY: Rule = Rule { name: [0; MAX_SAMPLE_NAME], len: 0, rate: Rate::ALL };

    #[inline(always)]
    fn matches(&self, name: &[u8]) -> bool {
        // Lengths first: most names differ there, and it bounds the slice below.
        name.len() == self.len as usize && name == &self.name[..name.len()]
    }
}

/// Which events capture keeps: a rate for all events, rates for named events (a name's rule
/// overrides the rate for all), and whether the choice follows the distinct_id.
///
/// With [`Sampler::by_distinct_id`], an event is kept when a stable hash of its distinct_id
/// (the same on every run, process and machine, and in later versions) falls under the rate:
/// a user's events under one rate are kept or dropped together, so their funnels stay whole.
/// Otherwise each capture draws a number from the lane's capture count (splitmix64 of it, a
/// counter-based generator): independent of every other thread, with no shared state.
///
/// An event left out is counted `sampled` and capture returns [`crate::Captured::Sampled`].
/// The check runs after validation (an invalid event is `rejected`, whatever the rate) and
/// only on a lane: a capture that finds no lane is dropped before it.
///
/// ```
/// use fasthog::{Rate, Sampler};
/// // In a `static` for a `no_std` program: a const sampler (an invalid rate fails to compile).
/// const fn rate(share: f64) -> Rate {
///     match Rate::new(share) {
///         Ok(r) => r,
///         Err(_) => panic!("invalid rate"),
///     }
/// }
/// static SAMPLER: Sampler = match Sampler::new().all(rate(0.5)).event("page_scrolled", rate(0.01)) {
///     Ok(s) => s.by_distinct_id(true),
///     Err(_) => panic!("invalid sampler"),
/// };
/// assert!(SAMPLER.is_on());
/// ```
#[derive(Clone, Copy)]
pub struct Sampler {
    rules: [Rule; MAX_SAMPLE_RULES],
    len: usize,
    /// Bit `n - 1` set when some rule's name is `n` bytes long.
    lengths: u64,
    all: Rate,
    by_distinct_id: bool,
    seed: u64,
}

impl core::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        struct Rules<'a>(&'a [Rule]);
        impl<'a> core::fmt::Debug for Rules<'a> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                let rule = |r: &'a Rule| {
                    (core::str::from_utf8(&r.name[..r.len as usize]).unwrap_or("?"), r.rate.share())
                };
                f.debug_map().entries(self.0.iter().map(rule)).finish()
            }
        }
        f.debug_struct("Sampler")
            .field("all", &self.all.share())
            .field("rules", &Rules(&self.rules[..self.len]))
            .field("by_distinct_id", &self.by_distinct_id)
            .finish_non_exhaustive()
    }
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::OFF
    }
}

impl Sampler {
    /// Keeps every event; capture with it costs one predictable branch.
    pub const OFF: Sampler = Sampler {
        rules: [Rule::EMPTY; MAX_SAMPLE_RULES],
        len: 0,
        lengths: 0,
        all: Rate::ALL,
        by_distinct_id: false,
        seed: 0,
    };

    /// A sampler that keeps every event, to add rates to.
    pub const fn new() -> Sampler {
        Sampler::OFF
    }

    /// Keep `rate` of the events that no per-name rule names. Defaults to [`Rate::ALL`].
    pub const fn all(mut self, rate: Rate) -> Sampler {
        self.all = rate;
        self
    }

    /// Keep `rate` of the events named `name` (exactly: case and all), whatever the rate for
    /// all events. A second rule for a name replaces the first. Errors: an empty name or one
    /// over [`MAX_SAMPLE_NAME`] bytes, or more than [`MAX_SAMPLE_RULES`] names.
    pub const fn event(mut self, name: &str, rate: Rate) -> Result<Sampler, SampleError> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_SAMPLE_NAME {
            return Err(SampleError::Name);
        }
        let mut rule = Rule { name: [0; MAX_SAMPLE_NAME], len: bytes.len() as u8, rate };
        let mut i = 0;
        while i < bytes.len() {
            rule.name[i] = bytes[i];
            i += 1;
        }
        // Replace a rule of the same name (a const loop: slices compare only at run time).
        let mut at = 0;
        while at < self.len {
            let r = &self.rules[at];
            if r.len == rule.len && same(&r.name, &rule.name, bytes.len()) {
                break;
            }
            at += 1;
        }
        if at == MAX_SAMPLE_RULES {
            return Err(SampleError::TooManyRules);
        }
        self.rules[at] = rule;
        self.lengths |= 1 << (bytes.len() - 1);
        if at == self.len {
            self.len += 1;
        }
        Ok(self)
    }

    /// Decide by a stable hash of the distinct_id instead of at random, so a user's events
    /// under one rate are all kept or all dropped. Defaults to false.
    pub const fn by_distinct_id(mut self, on: bool) -> Sampler {
        self.by_distinct_id = on;
        self
    }

    /// The seed of the random draws (not of the distinct_id hash, which never changes): two
    /// processes with the same seed sample the same captures of each lane. The std client
    /// seeds from the OS. Defaults to 0.
    pub const fn seed(mut self, seed: u64) -> Sampler {
        self.seed = seed;
        self
    }

    /// True when some event may be left out.
    #[inline(always)]
    pub const fn is_on(&self) -> bool {
        self.len != 0 || self.all.0 != Rate::ALL.0
    }

    /// The rate that applies to events named `name`.
    #[inline]
    pub fn rate_for(&self, name: &str) -> Rate {
        let name = name.as_bytes();
        // One bit per rule length: most names match no rule's length, and cost one test.
        if name.is_empty() || name.len() > MAX_SAMPLE_NAME || self.lengths & (1 << (name.len() - 1)) == 0 {
            return self.all;
        }
        for rule in &self.rules[..self.len] {
            if rule.matches(name) {
                return rule.rate;
            }
        }
        self.all
    }

    /// Whether to keep an event named `name` about `distinct_id` (cut to
    /// [`MAX_DISTINCT_ID_CHARS`](crate::MAX_DISTINCT_ID_CHARS), as capture cuts it), captured
    /// as number `capture` of lane `lane` (see [`crate::ring::LaneProducer::captures`]): what
    /// capture decides. With [`Sampler::by_distinct_id`] only the name and the id matter.
    pub fn keeps(&self, name: &str, distinct_id: &str, lane: usize, capture: usize) -> bool {
        let id = crate::event::cut_chars(distinct_id, crate::MAX_DISTINCT_ID_CHARS);
        self.decide(name, || hash_one(id.as_bytes()), || (lane, capture))
    }

    /// [`Sampler::keeps`], the distinct_id's hash and the lane's count read only when they
    /// decide.
    #[inline(always)]
    pub(crate) fn decide(
        &self,
        name: &str,
        id_hash: impl FnOnce() -> u64,
        lane_capture: impl FnOnce() -> (usize, usize),
    ) -> bool {
        let rate = self.rate_for(name);
        if rate.0 == Rate::ALL.0 {
            return true;
        }
        let draw = if self.by_distinct_id {
            id_hash()
        } else {
            // Counter-based: splitmix64 of a distinct input per (lane, capture), as splitmix64
            // itself is of its counter. No state but the lane's count.
            let (lane, capture) = lane_capture();
            let input = (capture as u64) ^ ((lane as u64) << 44);
            splitmix64(self.seed.wrapping_add(input.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        };
        rate.keeps(draw)
    }
}

const fn same(a: &[u8; MAX_SAMPLE_NAME], b: &[u8; MAX_SAMPLE_NAME], n: usize) -> bool {
    let mut i = 0;
    while i < n {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The hash [`Sampler::by_distinct_id`] decides on: a distinct_id (given in parts, hashed as
/// their concatenation) to 64 bits, eight bytes at a time (little-endian, the last word
/// zero-padded), then splitmix64's finalizer. Part of the contract: it never changes, so a
/// user is kept or dropped the same way on every machine, run and version.
pub fn distinct_id_hash(parts: &[&str]) -> u64 {
    match parts {
        [one] => hash_one(one.as_bytes()),
        _ => hash_parts(parts),
    }
}

const SEED: u64 = 0x243f_6a88_85a3_08d3;

#[inline(always)]
const fn mix(h: u64, word: u64) -> u64 {
    let x = (h ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

/// Up to 7 bytes as a zero-padded little-endian word, without a `memcpy` call.
#[inline(always)]
fn tail_word(tail: &[u8]) -> u64 {
    tail.iter().rev().fold(0, |w, &b| (w << 8) | u64::from(b))
}

/// The last eight bytes of `bytes` (at least eight) as a little-endian word.
#[inline(always)]
fn last_word(bytes: &[u8]) -> u64 {
    let w = &bytes[bytes.len() - 8..];
    u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]])
}

/// The common case, one part: whole words straight from the string.
#[inline]
fn hash_one(bytes: &[u8]) -> u64 {
    let mut h = SEED;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = mix(h, u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]));
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        let word = match bytes.len() {
            // The last eight bytes, shifted down: the tail zero-padded, in one load.
            n if n >= 8 => last_word(bytes) >> (8 * (8 - tail.len())),
            _ => tail_word(tail),
        };
        h = mix(h, word);
    }
    splitmix64(h ^ bytes.len() as u64)
}

/// Parts (a group's `$type_key`): the same words, assembled across the parts' seams.
#[cold]
fn hash_parts(parts: &[&str]) -> u64 {
    let (mut h, mut word, mut fill, mut total) = (SEED, 0u64, 0u32, 0u64);
    for &b in parts.iter().flat_map(|p| p.as_bytes()) {
        word |= u64::from(b) << (8 * fill);
        fill += 1;
        total += 1;
        if fill == 8 {
            h = mix(h, word);
            (word, fill) = (0, 0);
        }
    }
    if fill > 0 {
        h = mix(h, word);
    }
    splitmix64(h ^ total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_hash_as_their_concatenation() {
        let whole = distinct_id_hash(&["$company_acme-corporation-42"]);
        assert_eq!(distinct_id_hash(&["$", "company", "_", "acme-corporation-42"]), whole);
        assert_eq!(distinct_id_hash(&["$compan", "y_acme-corporation-4", "2"]), whole);
        assert_ne!(distinct_id_hash(&["$company_acme-corporation-43"]), whole);
    }

    #[test]
    fn the_hash_is_frozen() {
        // Changing the hash would re-sample every user: these values, pinned when it was
        // introduced, must never move.
        let uuid = "2f1c8f5e-7a34-4a63-9d0b-0c5b8d1f2e3a";
        let got = [distinct_id_hash(&[""]), distinct_id_hash(&["user-42"]), distinct_id_hash(&[uuid])];
        assert_eq!(got, [0xe9e0_033e_3bad_af36, 0xfbc7_0401_c43c_bea5, 0xb64b_d70a_428e_cba9]);
    }

    #[test]
    fn rates_are_exact_and_bounded() {
        assert_eq!(Rate::new(1.0), Ok(Rate::ALL));
        assert_eq!(Rate::new(0.5).map(Rate::share), Ok(0.5));
        for bad in [0.0, -0.1, 1.000_001, f64::NAN, f64::INFINITY] {
            assert_eq!(Rate::new(bad), Err(SampleError::Rate), "{bad}");
        }
        let all = Rate::ALL;
        assert!(all.keeps(u64::MAX) && all.keeps(0));
        let half = Rate::new(0.5).unwrap();
        assert!(half.keeps(u64::MAX >> 1) && !half.keeps(1 << 63));
    }
}
