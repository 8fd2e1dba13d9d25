//! Allocation-free JSON writing into a caller's byte buffer: escaping, numbers, RFC 3339
//! timestamps and UUIDs. Hand-written rather than serde-json-core: the encoder writes straight
//! from fixed records with enrichment rules and no intermediate model (see the README's design
//! notes).

use crate::entry::copy_small;

/// Writes JSON into a byte slice. A write that does not fit sets an overflow flag and writes
/// nothing more, so callers check once at the end instead of after every token.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
    overflow: bool,
}

impl<'a> Writer<'a> {
    /// A writer appending to `buf` from position `start`.
    pub fn new(buf: &'a mut [u8], start: usize) -> Self {
        let len = start.min(buf.len());
        Writer { buf, len, overflow: start > len }
    }

    /// Bytes written so far, counting from the start of the buffer.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is in the buffer.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when a write did not fit.
    #[inline]
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Appends raw bytes (already valid JSON).
    #[inline]
    pub fn raw(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(dst) if !self.overflow => {
                copy_small(dst, bytes);
                self.len += bytes.len();
            }
            _ => self.overflow = true,
        }
    }

    /// Appends one raw byte.
    #[inline]
    pub fn byte(&mut self, b: u8) {
        match self.buf.get_mut(self.len) {
            Some(dst) if !self.overflow => {
                *dst = b;
                self.len += 1;
            }
            _ => self.overflow = true,
        }
    }

    /// Appends a quoted, escaped JSON string. `s` must be UTF-8 (bytes of a `str`).
    #[inline(always)]
    pub fn string(&mut self, s: &[u8]) {
        let clean = clean_prefix(s);
        if clean == s.len() {
            // Nothing to escape (most strings): one room check, quotes and bytes.
            let end = self.len.saturating_add(s.len()).saturating_add(2);
            match self.buf.get_mut(self.len..end) {
                Some([open, body @ .., close]) if !self.overflow => {
                    *open = b'"';
                    copy_small(body, s);
                    *close = b'"';
                    self.len = end;
                }
                _ => self.overflow = true,
            }
            return;
        }
        self.escaped(s);
    }

    /// [`Writer::string`] for a string with something to escape (out of line: most have none).
    #[cold]
    #[inline(never)]
    fn escaped(&mut self, s: &[u8]) {
        self.byte(b'"');
        let mut rest = s;
        loop {
            let clean = clean_prefix(rest);
            self.raw(&rest[..clean]);
            let Some(&b) = rest.get(clean) else { break };
            let esc = ESCAPE[usize::from(b)];
            if esc == b'u' {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.raw(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            } else {
                self.raw(&[b'\\', esc]);
            }
            rest = &rest[clean + 1..];
        }
        self.byte(b'"');
    }

    /// Appends a signed integer.
    #[inline]
    pub fn int(&mut self, v: i64) {
        self.raw(itoa::Buffer::new().format(v).as_bytes());
    }

    /// Appends an unsigned integer.
    #[inline]
    pub fn uint(&mut self, v: u64) {
        self.raw(itoa::Buffer::new().format(v).as_bytes());
    }

    /// Appends a float, or `null` for NaN and infinities (JSON has no such numbers). Returns
    /// false when it wrote `null`, so the caller can count it.
    #[inline]
    pub fn float(&mut self, v: f64) -> bool {
        if v.is_finite() {
            let mut short = [0u8; SHORT_DECIMAL_LEN];
            match short_decimal(v, &mut short) {
                Some(len) => self.raw(&short[..len]),
                None => self.raw(ryu::Buffer::new().format_finite(v).as_bytes()),
            }
            true
        } else {
            self.raw(b"null");
            false
        }
    }

    /// Appends `true` or `false`.
    #[inline]
    pub fn bool(&mut self, v: bool) {
        self.raw(if v { b"true" } else { b"false" });
    }

    /// Appends a quoted RFC 3339 UTC timestamp with microseconds,
    /// `"2026-11-28T19:16:06.123456Z"` (PostHog stores microseconds).
    pub fn timestamp(&mut self, unix_nanos: u64) {
        let mut ts = [0u8; RFC3339_LEN];
        format_rfc3339(unix_nanos, &mut ts);
        self.byte(b'"');
        self.raw(&ts);
        self.byte(b'"');
    }

    /// Appends a quoted UUID in its canonical hyphenated form.
    pub fn uuid(&mut self, uuid: &[u8; 16]) {
        self.raw(&format_uuid(uuid));
    }
}

/// Room for [`short_decimal`]'s output: a sign, 9 integer digits, a point, 3 decimals.
const SHORT_DECIMAL_LEN: usize = 16;

/// Formats `v` as ryu does when it is a short decimal (at most 3 decimals, 0.001 <= |v| <
/// 1e9: prices, amounts, ratios), without ryu's general search; `None` otherwise. ryu took
/// ~710 instructions per float of the typical event, `Writer::float` now ~280 (callgrind of
/// `costs client`, README design notes).
///
/// Why it matches ryu: below 1e9 an ulp is under 1.2e-7, so at most one multiple of 10^-k
/// (k <= 3) lies within `v`'s rounding interval. If `n / 10^k == v` for the smallest such k
/// (checked exactly: the division is correctly rounded), that multiple is `v`'s shortest
/// round-tripping decimal, which is what ryu prints: the integer part, a point, and the
/// k decimals (none of them trailing zeros) or `.0` when k = 0. The unit tests compare the two.
fn short_decimal(v: f64, out: &mut [u8; SHORT_DECIMAL_LEN]) -> Option<usize> {
    const SCALE: [u64; 4] = [1, 10, 100, 1000];
    let a = if v < 0.0 { -v } else { v };
    if !(1e-3..1e9).contains(&a) {
        return None;
    }
    let (k, n) = SCALE.iter().enumerate().find_map(|(k, &p)| {
        // a * p < 1e12: the cast is exact for the integer part, `+ 0.5` rounds.
        let n = (a * p as f64 + 0.5) as u64;
        (n as f64 / p as f64 == a).then_some((k, n))
    })?;
    let mut len = 0;
    if v < 0.0 {
        out[0] = b'-';
        len = 1;
    }
    let mut int = itoa::Buffer::new();
    let int = int.format(n / SCALE[k]).as_bytes();
    out[len..len + int.len()].copy_from_slice(int);
    len += int.len();
    out[len] = b'.';
    len += 1;
    if k == 0 {
        out[len] = b'0';
        return Some(len + 1);
    }
    let mut frac = n % SCALE[k];
    for i in (0..k).rev() {
        out[len + i] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    Some(len + k)
}

/// Writes timestamps like [`Writer::timestamp`], reusing the date and time of day of the
/// previous one when it fell in the same second (events of a batch mostly do).
#[derive(Debug, Clone)]
pub struct TimestampCache {
    secs: u64,
    text: [u8; RFC3339_LEN],
}

impl TimestampCache {
    /// An empty cache.
    pub const fn new() -> Self {
        TimestampCache { secs: u64::MAX, text: [0; RFC3339_LEN] }
    }

    /// Appends the quoted timestamp.
    #[inline]
    pub fn write(&mut self, w: &mut Writer<'_>, unix_nanos: u64) {
        let secs = unix_nanos / 1_000_000_000;
        if secs != self.secs {
            format_rfc3339(unix_nanos, &mut self.text);
            self.secs = secs;
        } else {
            let mut micros = (unix_nanos % 1_000_000_000) / 1_000;
            for i in (20..26).rev() {
                self.text[i] = b'0' + (micros % 10) as u8;
                micros /= 10;
            }
        }
        w.byte(b'"');
        w.raw(&self.text);
        w.byte(b'"');
    }
}

impl Default for TimestampCache {
    fn default() -> Self {
        Self::new()
    }
}

/// Length of [`format_rfc3339`]'s output.
pub const RFC3339_LEN: usize = 27;

/// Formats nanoseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC).
pub fn format_rfc3339(unix_nanos: u64, out: &mut [u8; RFC3339_LEN]) {
    let secs = unix_nanos / 1_000_000_000;
    let micros = (unix_nanos % 1_000_000_000) / 1_000;
    let (y, m, d) = civil_from_days(secs / 86_400);
    let sod = secs % 86_400;
    let mut put = |at: usize, v: u64, width: usize| {
        let mut v = v;
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, y, 4);
    put(5, m, 2);
    put(8, d, 2);
    put(11, sod / 3600, 2);
    put(14, sod / 60 % 60, 2);
    put(17, sod % 60, 2);
    put(20, micros, 6);
    out[4] = b'-';
    out[7] = b'-';
    out[10] = b'T';
    out[13] = b':';
    out[16] = b':';
    out[19] = b'.';
    out[26] = b'Z';
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Formats a UUID as `"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"`, quotes included.
pub fn format_uuid(uuid: &[u8; 16]) -> [u8; 38] {
    let mut out = [b'-'; 38];
    out[0] = b'"';
    out[37] = b'"';
    let mut at = 1;
    for (i, b) in uuid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        out[at..at + 2].copy_from_slice(&HEX_PAIRS[usize::from(*b)]);
        at += 2;
    }
    out
}

/// Each byte's two lowercase hex digits.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 15]];
        i += 1;
    }
    t
};

/// How many leading bytes of `s` need no escape. Eight bytes at a time (SWAR): most strings
/// have nothing to escape, and a byte-by-byte table walk was the encoder's largest cost.
#[inline]
fn clean_prefix(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    // Bit 7 of each byte that needs an escape: below 0x20 (its high bit clear and x - 0x20
    // borrows), a quote, a backslash. The lowest set bit is the first such byte.
    let special = |x: u64| {
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        control | has_zero(x ^ (ONES * u64::from(b'"'))) | has_zero(x ^ (ONES * u64::from(b'\\')))
    };
    let mut chunks = s.chunks_exact(8);
    let mut n = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let found = special(u64::from_le_bytes(word));
        if found != 0 {
            return n + (found.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    // The last 0..7 bytes as one word padded with spaces (which need no escape): most keys
    // are shorter than 8 bytes, and a table lookup per byte cost more than the word test.
    let rest = chunks.remainder();
    let mut word = [b' '; 8];
    copy_small(&mut word[..rest.len()], rest);
    let found = special(u64::from_le_bytes(word));
    n + if found != 0 { (found.trailing_zeros() / 8) as usize } else { rest.len() }
}

/// For each byte: 0 when it is written as is, else the escape letter (`u` for `\u00XX`).
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

#[cfg(test)]
#[allow(clippy::std_instead_of_alloc)] // tests run with std, also in no_std builds
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut Writer<'_>)) -> std::string::String {
        let mut buf = [0u8; 256];
        let mut w = Writer::new(&mut buf, 0);
        f(&mut w);
        assert!(!w.overflowed());
        std::string::String::from_utf8(w.written().to_vec()).unwrap()
    }

    #[test]
    fn escapes_quotes_backslashes_controls_and_keeps_utf8() {
        let s = written(|w| w.string("a\"b\\c\nd\u{1}é€😀\u{7f}".as_bytes()));
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\u0001é€😀\u{7f}\"");
        let back: std::string::String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é€😀\u{7f}");
    }

    #[test]
    fn numbers_and_non_finite_floats() {
        assert_eq!(written(|w| w.int(i64::MIN)), "-9223372036854775808");
        assert_eq!(written(|w| w.uint(u64::MAX)), "18446744073709551615");
        assert_eq!(written(|w| assert!(w.float(101.25))), "101.25");
        assert_eq!(written(|w| assert!(!w.float(f64::NAN))), "null");
        assert_eq!(written(|w| assert!(!w.float(f64::NEG_INFINITY))), "null");
    }

    #[test]
    fn short_decimals_are_written_as_ryu_writes_them() {
        let ryu_text = |v: f64| std::string::String::from(ryu::Buffer::new().format_finite(v));
        let mut values = std::vec![1e-3, 0.001, 0.1, 0.25, 1.0, 9.999, 999_999_999.999, 1e9 - 1.0, 101.25];
        // Many prices, amounts and ratios, and floats that are not short decimals.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let cents = (x % 100_000_000) as f64;
            values.push(cents / 100.0);
            values.push((x % 1_000_000) as f64 / 1000.0);
            values.push(f64::from_bits(x) % 1e9);
            values.push(i as f64 * 0.1);
            values.push(101.25 + (i % 7) as f64);
        }
        let mut fast = 0;
        for v in values.into_iter().filter(|v| v.is_finite()) {
            for v in [v, -v] {
                let mut out = [0u8; SHORT_DECIMAL_LEN];
                if let Some(len) = short_decimal(v, &mut out) {
                    fast += 1;
                    assert_eq!(core::str::from_utf8(&out[..len]).unwrap(), ryu_text(v), "{v:e}");
                }
                assert_eq!(written(|w| assert!(w.float(v))), ryu_text(v), "{v:e}");
            }
        }
        assert!(fast > 1_000_000, "most of these are short decimals: {fast}");
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(written(|w| w.timestamp(0)), "\"1970-01-01T00:00:00.000000Z\"");
        // 2024-02-29T23:59:59.999999Z, a leap day.
        assert_eq!(written(|w| w.timestamp(1_709_251_199_999_999_000)), "\"2024-02-29T23:59:59.999999Z\"");
        assert_eq!(written(|w| w.timestamp(4_102_444_800_000_000_000)), "\"2100-01-01T00:00:00.000000Z\"");
    }

    #[test]
    fn overflow_is_sticky_and_writes_nothing_more() {
        let mut buf = [0u8; 4];
        let mut w = Writer::new(&mut buf, 0);
        w.raw(b"abc");
        w.raw(b"de");
        w.byte(b'x');
        assert!(w.overflowed());
        assert_eq!(w.written(), b"abc");
    }

    #[test]
    fn integers_at_every_digit_count_and_the_extremes() {
        let mut values = std::vec![0u64, u64::MAX];
        let mut p = 1u64;
        while let Some(next) = p.checked_mul(10) {
            values.extend([p - 1, p, p + 1, next - 1]);
            p = next;
        }
        for v in values {
            assert_eq!(written(|w| w.uint(v)), std::format!("{v}"));
            let i = v as i64;
            assert_eq!(written(|w| w.int(i)), std::format!("{i}"));
            assert_eq!(written(|w| w.int(i.wrapping_neg())), std::format!("{}", i.wrapping_neg()));
        }
        assert_eq!(written(|w| w.int(i64::MIN)), "-9223372036854775808");
    }

    #[test]
    fn numbers_fill_the_buffer_exactly_or_overflow() {
        for (v, fits) in [(12345u64, 5), (7, 1)] {
            let mut buf = [0u8; 8];
            let mut w = Writer::new(&mut buf, 8 - fits);
            w.uint(v);
            assert!(!w.overflowed());
            let mut w = Writer::new(&mut buf, 8 - fits + 1);
            w.uint(v);
            assert!(w.overflowed());
            assert_eq!(w.len(), 8 - fits + 1, "nothing written");
        }
        let mut buf = [0u8; 9];
        let mut w = Writer::new(&mut buf, 2);
        assert!(w.float(-101.25), "a short decimal needs only its own 7 bytes");
        assert_eq!(&w.written()[2..], b"-101.25");
    }

    #[test]
    fn clean_prefix_finds_the_first_byte_to_escape_at_every_position() {
        for len in 0..20 {
            assert_eq!(clean_prefix(&std::vec![b'a'; len]), len);
            for at in 0..len {
                for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                    let mut s = std::vec![b'x'; len];
                    s[at] = special;
                    assert_eq!(clean_prefix(&s), at, "len {len}, {special:#x} at {at}");
                }
                // Bytes that need no escape, around the ranges the word tests use.
                let mut s = std::vec![b'x'; len];
                for (i, b) in s.iter_mut().enumerate() {
                    *b = [b' ', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xff][(i + at) % 8];
                }
                assert_eq!(clean_prefix(&s), len);
            }
        }
    }

    #[test]
    fn cached_timestamps_match_formatting_each_one() {
        let mut cache = TimestampCache::new();
        let base = 1_764_612_000_123_456_789u64; // 2025-12-01T18:00:00.123456789Z
        let nanos = [
            base,
            base + 1_000,
            base + 876_543_000,
            base + 999_999_999,
            base + 1_000_000_000,
            base + 5,
            base,
        ];
        for n in nanos {
            let mut buf = [0u8; 64];
            let mut w = Writer::new(&mut buf, 0);
            cache.write(&mut w, n);
            let cached = std::string::String::from_utf8(w.written().to_vec()).unwrap();
            assert_eq!(cached, written(|w| w.timestamp(n)), "{n}");
        }
        assert_eq!(written(|w| w.timestamp(base)), "\"2025-12-01T18:00:00.123456Z\"");
    }

    #[test]
    fn uuid_format() {
        let u = [0x01, 0x8f, 0x3e, 0x5a, 0x7b, 0x2c, 0x70, 0x00, 0x80, 1, 2, 3, 4, 5, 6, 7];
        assert_eq!(&format_uuid(&u), b"\"018f3e5a-7b2c-7000-8001-020304050607\"");
    }
}
