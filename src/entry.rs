//! The compact entry an event becomes in a lane: what capture writes in place and the encoder
//! reads in place. Variable length, no fixed caps: strings inline with their length, values
//! typed, arrays and objects nested.
//!
//! ```text
//! header  flags: u8, time: u64, truncated: u32, dropped: u32, name, distinct_id, workspace_id
//! items   (ENTRY + scope, key, value)*
//! value   NULL | FALSE | TRUE | I64 i64 | U64 u64 | F64 f64 | STR str
//!         | ARRAY value* END | OBJECT (KEY str value)* END
//! str     u8 length (< 255) bytes, or 255, u32 length, bytes
//! ```
//! Numbers are little-endian. The counts in the header are patched in when the entry is done.

/// Which JSON object a top-level property belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Scope {
    /// `properties`
    Props = 0,
    /// `properties.$set`
    Set = 1,
    /// `properties.$set_once`
    SetOnce = 2,
    /// `properties.$groups` (key: group type, value: group key)
    Groups = 3,
    /// `properties.$group_set` (for `$groupidentify`)
    GroupSet = 4,
}

impl Scope {
    const ALL: [Scope; 5] = [Scope::Props, Scope::Set, Scope::SetOnce, Scope::Groups, Scope::GroupSet];
}

/// Header flags.
pub(crate) mod flag {
    /// `$process_person_profile: false`.
    pub const PERSONLESS: u8 = 1;
    /// The time is nanoseconds since the Unix epoch, not a clock tick.
    pub const UNIX_TIME: u8 = 2;
    /// Invalid (only in entries made outside capture, by `Event::to_entry`): refused.
    pub const INVALID: u8 = 4;
    /// Not stamped (only in entries made outside capture, by `Event::to_entry`, for an event
    /// without a timestamp): encoded with the clock's reading at that moment.
    pub const NOW: u8 = 8;
}

/// Value tags.
pub(crate) mod tag {
    pub const NULL: u8 = 1;
    pub const FALSE: u8 = 2;
    pub const TRUE: u8 = 3;
    pub const I64: u8 = 4;
    pub const U64: u8 = 5;
    pub const F64: u8 = 6;
    pub const STR: u8 = 7;
    pub const ARRAY: u8 = 8;
    pub const OBJECT: u8 = 9;
    pub const END: u8 = 10;
    /// Before an object member's key (a key's length byte alone could read as `END`).
    pub const KEY: u8 = 11;
    /// `ENTRY + scope` starts a top-level property.
    pub const ENTRY: u8 = 16;
}

/// How deep arrays and objects nest. Deeper values are written as `null` and counted as
/// dropped (the encoder keeps one bit per level, and capture never recurses deeper).
pub const MAX_DEPTH: usize = 32;

const HEADER: usize = 17;
const OFF_TRUNCATED: usize = 9;
const OFF_DROPPED: usize = 13;

/// `dst.copy_from_slice(src)` (same lengths), with the short lengths most keys, names, ids
/// and values have (up to 64 bytes: UUIDs, the encoder's cached enrichment) done in two
/// overlapping loads and stores instead of a call to `memcpy` (~25 instructions a call; ~300
/// per encoded typical event went to it, and 58 more while 33 to 64 bytes still did). Capture
/// and the JSON writer share it.
#[inline(always)]
pub(crate) fn copy_small(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n != dst.len() {
        dst.copy_from_slice(src); // panics, as copy_from_slice does: never, for the callers
    } else if n <= 16 {
        if n >= 8 {
            dst[..8].copy_from_slice(&src[..8]);
            dst[n - 8..].copy_from_slice(&src[n - 8..]);
        } else if n >= 4 {
            dst[..4].copy_from_slice(&src[..4]);
            dst[n - 4..].copy_from_slice(&src[n - 4..]);
        } else if n >= 1 {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
    } else if n <= 32 {
        dst[..16].copy_from_slice(&src[..16]);
        dst[n - 16..].copy_from_slice(&src[n - 16..]);
    } else if n <= 64 {
        dst[..32].copy_from_slice(&src[..32]);
        dst[n - 32..].copy_from_slice(&src[n - 32..]);
    } else {
        dst.copy_from_slice(src);
    }
}

/// Writes a string under 255 bytes at the start of `dst` (which has room); the rest of `dst`.
#[inline(always)]
fn short_str_into<'d>(dst: &'d mut [u8], s: &str) -> &'d mut [u8] {
    dst[0] = s.len() as u8;
    let (head, rest) = dst[1..].split_at_mut(s.len());
    copy_small(head, s.as_bytes());
    rest
}

/// The bytes of a short top-level property (see [`short_entry_into`]).
#[inline(always)]
pub(crate) fn short_entry_bytes(key: &str, value: &Short<'_>) -> usize {
    2 + key.len() + value.bytes()
}

/// Writes a top-level property whose key (under 255 bytes) and value are short at the start of
/// `dst`, which has room for it; the rest of `dst`.
#[inline(always)]
pub(crate) fn short_entry_into<'d>(
    dst: &'d mut [u8],
    scope: Scope,
    key: &str,
    value: Short<'_>,
) -> &'d mut [u8] {
    let (head, rest) = dst.split_at_mut(2);
    head[0] = tag::ENTRY + scope as u8;
    head[1] = key.len() as u8;
    let (k, rest) = rest.split_at_mut(key.len());
    copy_small(k, key.as_bytes());
    match value {
        Short::Scalar(tag, payload) => {
            let (v, rest) = rest.split_at_mut(9);
            v[0] = tag;
            v[1..].copy_from_slice(&payload);
            rest
        }
        Short::Str(s) => {
            let (v, rest) = rest.split_at_mut(2);
            v[0] = tag::STR;
            v[1] = s.len() as u8;
            let (body, rest) = rest.split_at_mut(s.len());
            copy_small(body, s.as_bytes());
            rest
        }
    }
}

/// The bytes of a header whose strings are all under 255 bytes; `None` otherwise.
#[inline(always)]
pub(crate) fn short_header_bytes(name: &str, distinct_id: &str, workspace: &str) -> Option<usize> {
    let (n, d, w) = (name.len(), distinct_id.len(), workspace.len());
    (n < 255 && d < 255 && w < 255).then_some(HEADER + 3 + n + d + w)
}

/// Writes a short header (see [`short_header_bytes`]) with its counts at the start of `dst`;
/// the rest of `dst`.
#[inline(always)]
pub(crate) fn short_header_into<'d>(
    dst: &'d mut [u8],
    flags: u8,
    time: u64,
    truncated: u32,
    name: &str,
    distinct_id: &str,
    workspace: &str,
) -> &'d mut [u8] {
    let (head, rest) = dst.split_at_mut(HEADER);
    head[0] = flags;
    head[1..9].copy_from_slice(&time.to_le_bytes());
    head[OFF_TRUNCATED..OFF_TRUNCATED + 4].copy_from_slice(&truncated.to_le_bytes());
    head[OFF_DROPPED..OFF_DROPPED + 4].fill(0);
    let rest = short_str_into(rest, name);
    let rest = short_str_into(rest, distinct_id);
    short_str_into(rest, workspace)
}

/// A value that takes a fixed, small number of bytes: a scalar (a tag and 8 payload bytes)
/// or a string under 255 bytes.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Short<'v> {
    /// A number's tag and its 8 bytes.
    Scalar(u8, [u8; 8]),
    /// A string under 255 bytes.
    Str(&'v str),
}

impl Short<'_> {
    #[inline(always)]
    fn bytes(&self) -> usize {
        match self {
            Short::Scalar(..) => 9,
            Short::Str(s) => 2 + s.len(),
        }
    }
}

/// Writes one entry into a lane's area. Two modes: an area that is not the largest an entry may
/// have (`last == false`) gives up at the first thing that does not fit, so capture can retry
/// in a fresh block; the largest area (`last`) makes everything fit, cutting strings on a UTF-8
/// boundary and dropping entries, and counts each cut and drop.
#[derive(Debug)]
pub struct EntryWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
    /// Bytes kept for the `END`s of open arrays and objects.
    reserved: usize,
    depth: usize,
    last: bool,
    /// Not `last`, and something did not fit: the write is abandoned.
    short: bool,
    truncated: u32,
    dropped: u32,
}

impl<'b> EntryWriter<'b> {
    pub(crate) fn new(buf: &'b mut [u8], last: bool) -> Self {
        EntryWriter { buf, pos: 0, reserved: 0, depth: 0, last, short: false, truncated: 0, dropped: 0 }
    }

    /// Room for more bytes, after the `END`s still to come.
    #[inline(always)]
    fn room(&self) -> usize {
        self.buf.len() - self.pos - self.reserved
    }

    /// Something of `n` bytes does not fit: in the first mode the whole write is abandoned.
    #[inline(always)]
    fn fits(&mut self, n: usize) -> bool {
        if n <= self.room() {
            return true;
        }
        if !self.last {
            self.short = true;
        }
        false
    }

    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        copy_small(&mut self.buf[self.pos..self.pos + bytes.len()], bytes);
        self.pos += bytes.len();
    }

    /// Writes the header. False when even it does not fit.
    #[inline(always)]
    pub(crate) fn header(
        &mut self,
        flags: u8,
        time: u64,
        name: &str,
        distinct_id: &str,
        workspace: &str,
    ) -> bool {
        // The common case: everything short and in room, one check.
        if let Some(total) = short_header_bytes(name, distinct_id, workspace).filter(|&t| t <= self.room()) {
            let dst = &mut self.buf[self.pos..self.pos + total];
            short_header_into(dst, flags, time, 0, name, distinct_id, workspace); // counts: `finish`
            self.pos += total;
            return true;
        }
        self.header_slow(flags, time, name, distinct_id, workspace)
    }

    #[cold]
    #[inline(never)]
    fn header_slow(&mut self, flags: u8, time: u64, name: &str, distinct_id: &str, workspace: &str) -> bool {
        if !self.fits(HEADER + 3) {
            return false;
        }
        self.put(&[flags]);
        self.put(&time.to_le_bytes());
        // The counts, patched in `finish`.
        self.put(&[0; 8]);
        // Name and distinct_id are cut rather than dropped: the event is still sent. The name
        // keeps room for the distinct_id (at most 200 characters) and some of the workspace.
        let keep = (str_bytes(distinct_id) + str_bytes(workspace).min(256)).min(self.room() - 2);
        self.reserved += keep;
        let name = self.str_cut(name);
        self.reserved -= keep;
        name && self.str_cut(distinct_id) && self.str_cut(workspace)
    }

    /// Ends the entry: its length, or `None` when the write was abandoned.
    pub(crate) fn finish(self) -> Option<usize> {
        if self.short {
            return None;
        }
        debug_assert_eq!(self.depth, 0);
        let (t, d) = (self.truncated, self.dropped);
        self.buf[OFF_TRUNCATED..OFF_TRUNCATED + 4].copy_from_slice(&t.to_le_bytes());
        self.buf[OFF_DROPPED..OFF_DROPPED + 4].copy_from_slice(&d.to_le_bytes());
        Some(self.pos)
    }

    /// True once the write is abandoned (nothing more is written).
    #[inline(always)]
    pub fn is_abandoned(&self) -> bool {
        self.short
    }

    /// A string, cut to the room left (counted); false only when not even its length fits.
    #[inline(always)]
    fn str_cut(&mut self, s: &str) -> bool {
        // The common case, inlined so a literal's length is a constant: a short string that fits.
        if s.len() < 255 && s.len() < self.room() {
            self.buf[self.pos] = s.len() as u8;
            self.pos += 1;
            self.put(s.as_bytes());
            return true;
        }
        self.str_cut_slow(s)
    }

    #[cold]
    #[inline(never)]
    fn str_cut_slow(&mut self, s: &str) -> bool {
        let long = s.len() >= 255;
        let head = if long { 5 } else { 1 };
        if s.len() + head <= self.room() {
            self.str_head(s.len());
            self.put(s.as_bytes());
            return true;
        }
        if !self.fits(s.len() + head) && !self.last {
            return false;
        }
        // Cut: as much as fits after a length of the right width.
        let room = self.room();
        if room < 1 {
            return false;
        }
        let mut n = if room > 255 { (room - 5).min(s.len()) } else { (room - 1).min(254) };
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.truncated = self.truncated.saturating_add(1);
        self.str_head(n);
        self.put(&s.as_bytes()[..n]);
        true
    }

    /// Writes a whole top-level property with a short key and a short value when all of it is
    /// in room: one check and one slice for the property. `false` (nothing written) otherwise:
    /// then use [`EntryWriter::entry`].
    #[inline(always)]
    pub(crate) fn short_entry(&mut self, scope: Scope, key: &str, value: Short<'_>) -> bool {
        let total = short_entry_bytes(key, &value);
        if self.short || key.len() >= 255 || total > self.room() {
            return false;
        }
        short_entry_into(&mut self.buf[self.pos..self.pos + total], scope, key, value);
        self.pos += total;
        true
    }

    #[inline(always)]
    fn str_head(&mut self, len: usize) {
        if len < 255 {
            self.put(&[len as u8]);
        } else {
            self.put(&[255]);
            self.put(&(len as u32).to_le_bytes());
        }
    }

    /// Starts a top-level property. False (and the entry counted as dropped, or the write
    /// abandoned) when its key does not fit whole with a byte of value; then write no value.
    /// Keys are never cut: a cut key names another property, and it would leave no room for
    /// its value anyway.
    #[inline(always)]
    pub(crate) fn entry(&mut self, scope: Scope, key: &str) -> Option<usize> {
        let start = self.pos;
        if self.short || !self.fits(1 + str_bytes(key) + 1) {
            self.dropped = self.dropped.saturating_add(1);
            return None;
        }
        self.put(&[tag::ENTRY + scope as u8]);
        self.str_cut(key);
        Some(start)
    }

    /// Ends a top-level property started at `start`: if its value did not fit, the property is
    /// taken out and counted as dropped.
    #[inline(always)]
    pub(crate) fn end_entry(&mut self, start: usize, written: bool) {
        if !written {
            self.pos = start;
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    #[inline(always)]
    fn scalar(&mut self, tag: u8, payload: &[u8]) -> bool {
        if !self.fits(1 + payload.len()) {
            return false;
        }
        self.put(&[tag]);
        self.put(payload);
        true
    }

    /// `null`.
    #[inline(always)]
    pub fn null(&mut self) -> bool {
        self.scalar(tag::NULL, &[])
    }

    /// `true` or `false`.
    #[inline(always)]
    pub fn bool(&mut self, v: bool) -> bool {
        self.scalar(if v { tag::TRUE } else { tag::FALSE }, &[])
    }

    /// A signed integer.
    #[inline(always)]
    pub fn i64(&mut self, v: i64) -> bool {
        self.scalar(tag::I64, &v.to_le_bytes())
    }

    /// An unsigned integer.
    #[inline(always)]
    pub fn u64(&mut self, v: u64) -> bool {
        self.scalar(tag::U64, &v.to_le_bytes())
    }

    /// A float (NaN and infinities are sent as `null`, counted when encoded).
    #[inline(always)]
    pub fn f64(&mut self, v: f64) -> bool {
        self.scalar(tag::F64, &v.to_le_bytes())
    }

    /// A string, cut to fit if it must (counted).
    #[inline(always)]
    pub fn str(&mut self, s: &str) -> bool {
        if !self.fits(2) {
            return false;
        }
        self.put(&[tag::STR]);
        if self.str_cut(s) {
            true
        } else {
            self.pos -= 1;
            false
        }
    }

    /// Starts an array (`object == false`) or an object; close it with [`EntryWriter::end`].
    /// False when it does not fit or nesting is at [`MAX_DEPTH`]: then write no members and do
    /// not call `end` (the builders write `null` in its place; it is counted as dropped).
    pub fn begin(&mut self, object: bool) -> bool {
        if self.depth >= MAX_DEPTH {
            self.dropped = self.dropped.saturating_add(1);
            return false;
        }
        if !self.fits(2) {
            // Written as `null` by the caller when a byte is left: counted like a value too
            // deep (without that byte the caller drops it, and counts that).
            if self.room() > 0 {
                self.dropped = self.dropped.saturating_add(1);
            }
            return false;
        }
        self.put(&[if object { tag::OBJECT } else { tag::ARRAY }]);
        self.depth += 1;
        self.reserved += 1;
        true
    }

    /// Ends the innermost array or object.
    pub fn end(&mut self) {
        debug_assert!(self.depth > 0);
        self.depth -= 1;
        self.reserved -= 1;
        self.put(&[tag::END]);
    }

    /// An object member's key; false (and the member counted as dropped) when it does not fit
    /// whole with a byte of value (keys are never cut). Write the value next, then
    /// [`EntryWriter::end_member`].
    pub fn key(&mut self, key: &str) -> Option<usize> {
        let start = self.pos;
        if self.short || !self.fits(1 + str_bytes(key) + 1) {
            self.dropped = self.dropped.saturating_add(1);
            return None;
        }
        self.put(&[tag::KEY]);
        self.str_cut(key);
        Some(start)
    }

    /// Ends a member or array element started at `start` (from [`EntryWriter::key`] or
    /// [`EntryWriter::mark`]): when its value did not fit, it is taken out and counted.
    pub fn end_member(&mut self, start: usize, written: bool) {
        self.end_entry(start, written)
    }

    /// The position before an array element, for [`EntryWriter::end_member`].
    pub fn mark(&self) -> usize {
        self.pos
    }

    /// Counts an entry dropped before it was written (a value too deep, an iterator's item
    /// after the room ran out).
    pub fn count_dropped(&mut self) {
        self.dropped = self.dropped.saturating_add(1);
    }

    /// Counts a string cut before it was written (a distinct_id over PostHog's limit).
    pub(crate) fn count_truncated(&mut self) {
        self.truncated = self.truncated.saturating_add(1);
    }
}

/// Bytes a string takes in an entry: its length (1 or 5 bytes) and its bytes.
#[inline(always)]
fn str_bytes(s: &str) -> usize {
    if s.len() < 255 {
        1 + s.len()
    } else {
        5 + s.len()
    }
}

/// A read-only view of an entry.
#[derive(Debug, Clone, Copy)]
pub struct EntryView<'e> {
    bytes: &'e [u8],
    /// Where the items start.
    items: usize,
    name: (usize, usize),
    distinct_id: (usize, usize),
    workspace: (usize, usize),
}

/// A top-level property of an entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item<'e> {
    pub(crate) scope: Scope,
    pub(crate) key: &'e [u8],
    /// The value's bytes, from its tag to its end.
    pub(crate) value: &'e [u8],
}

/// Reads a string at `at`: its bytes' range and where it ends.
fn read_str(b: &[u8], at: usize) -> Option<((usize, usize), usize)> {
    let n = *b.get(at)? as usize;
    let (start, len) = if n < 255 { (at + 1, n) } else { (at + 5, u32_at(b, at + 1)? as usize) };
    (start + len <= b.len()).then_some(((start, start + len), start + len))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl<'e> EntryView<'e> {
    /// Parses an entry's header. `None` for bytes capture did not write.
    pub(crate) fn parse(bytes: &'e [u8]) -> Option<Self> {
        let at = HEADER;
        let (name, at) = read_str(bytes, at)?;
        let (distinct_id, at) = read_str(bytes, at)?;
        let (workspace, items) = read_str(bytes, at)?;
        Some(EntryView { bytes, items, name, distinct_id, workspace })
    }

    fn text(&self, (a, b): (usize, usize)) -> &'e [u8] {
        &self.bytes[a..b]
    }

    /// The event name (UTF-8).
    pub fn name_bytes(&self) -> &'e [u8] {
        self.text(self.name)
    }

    /// The event name.
    pub fn name(&self) -> &'e str {
        core::str::from_utf8(self.name_bytes()).unwrap_or_default()
    }

    /// The distinct_id (UTF-8).
    pub fn distinct_id_bytes(&self) -> &'e [u8] {
        self.text(self.distinct_id)
    }

    /// The distinct_id.
    pub fn distinct_id(&self) -> &'e str {
        core::str::from_utf8(self.distinct_id_bytes()).unwrap_or_default()
    }

    /// The workspace id; empty for none.
    pub(crate) fn workspace(&self) -> &'e [u8] {
        self.text(self.workspace)
    }

    pub(crate) fn flags(&self) -> u8 {
        self.bytes[0]
    }

    /// The time: nanoseconds since the Unix epoch when `flag::UNIX_TIME` is set, else a tick.
    pub(crate) fn time(&self) -> u64 {
        u64_at(self.bytes, 1).unwrap_or(0)
    }

    /// Strings cut at capture.
    pub fn truncated(&self) -> u32 {
        u32_at(self.bytes, OFF_TRUNCATED).unwrap_or(0)
    }

    /// Entries dropped at capture.
    pub fn dropped(&self) -> u32 {
        u32_at(self.bytes, OFF_DROPPED).unwrap_or(0)
    }

    /// The top-level properties, in capture order. Stops at bytes it cannot read.
    pub(crate) fn items(&self) -> Items<'e> {
        Items { bytes: self.bytes, at: self.items }
    }
}

/// The top-level properties of an entry.
#[derive(Debug, Clone)]
pub(crate) struct Items<'e> {
    bytes: &'e [u8],
    at: usize,
}

impl Items<'_> {
    /// Where the next property starts (the entry's length past the last one).
    pub(crate) fn position(&self) -> usize {
        self.at
    }
}

impl<'e> Iterator for Items<'e> {
    type Item = Item<'e>;

    fn next(&mut self) -> Option<Item<'e>> {
        let b = self.bytes;
        let t = *b.get(self.at)?;
        let scope = *Scope::ALL.get(t.checked_sub(tag::ENTRY)? as usize)?;
        let ((ks, ke), value_at) = read_str(b, self.at + 1)?;
        let end = ValueReader::skip(b, value_at)?;
        self.at = end;
        Some(Item { scope, key: &b[ks..ke], value: &b[value_at..end] })
    }
}

/// One token of a value, as the encoder walks it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Token<'e> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(&'e [u8]),
    /// An object member's key (comes before its value).
    Key(&'e [u8]),
    Begin {
        object: bool,
    },
    End,
}

/// The scalar whose tag is at `at`: its token and where it ends. `None` for a container, a
/// key, an end, or bytes capture did not write.
#[inline]
fn scalar_at(b: &[u8], at: usize) -> Option<(Token<'_>, usize)> {
    Some(match *b.get(at)? {
        tag::NULL => (Token::Null, at + 1),
        tag::FALSE => (Token::Bool(false), at + 1),
        tag::TRUE => (Token::Bool(true), at + 1),
        tag::I64 => (Token::I64(u64_at(b, at + 1)? as i64), at + 9),
        tag::U64 => (Token::U64(u64_at(b, at + 1)?), at + 9),
        tag::F64 => (Token::F64(f64::from_bits(u64_at(b, at + 1)?)), at + 9),
        tag::STR => {
            let ((s, e), next) = read_str(b, at + 1)?;
            (Token::Str(&b[s..e]), next)
        }
        _ => return None,
    })
}

/// A value that is one scalar, read without [`ValueReader`]'s container bookkeeping (most
/// property values are). `None` for a container or bytes capture did not write.
#[inline]
pub(crate) fn scalar(value: &[u8]) -> Option<Token<'_>> {
    scalar_at(value, 0).map(|(token, _)| token)
}

/// Walks a value's tokens iteratively, keeping one bit per open container (object or array).
#[derive(Debug, Clone)]
pub(crate) struct ValueReader<'e> {
    b: &'e [u8],
    at: usize,
    /// Bit `d`: the container at depth `d` is an object.
    objects: u64,
    depth: u32,
    /// Inside an object, the next token is a key.
    want_key: bool,
    done: bool,
}

impl<'e> ValueReader<'e> {
    pub(crate) fn new(value: &'e [u8]) -> Self {
        ValueReader { b: value, at: 0, objects: 0, depth: 0, want_key: false, done: false }
    }

    /// Where the value starting at `at` ends.
    pub(crate) fn skip(b: &'e [u8], at: usize) -> Option<usize> {
        // Scalars (most values) without the walk.
        if let Some((_, end)) = scalar_at(b, at) {
            return Some(end);
        }
        let mut r = ValueReader { b, at, objects: 0, depth: 0, want_key: false, done: false };
        while r.next()?.is_some() {}
        Some(r.at)
    }

    /// The next token; `Ok(None)` at the value's end; `None` for bytes capture did not write.
    pub(crate) fn next(&mut self) -> Option<Option<Token<'e>>> {
        if self.done {
            return Some(None);
        }
        let b = self.b;
        let t = *b.get(self.at)?;
        if self.want_key && t != tag::END {
            if t != tag::KEY {
                return None;
            }
            let ((s, e), next) = read_str(b, self.at + 1)?;
            self.at = next;
            self.want_key = false;
            return Some(Some(Token::Key(&b[s..e])));
        }
        if let Some((token, next)) = scalar_at(b, self.at) {
            self.at = next;
            self.after_value();
            return Some(Some(token));
        }
        self.at += 1;
        match t {
            tag::ARRAY | tag::OBJECT => {
                let object = t == tag::OBJECT;
                if self.depth as usize >= 64 {
                    return None;
                }
                if object {
                    self.objects |= 1 << self.depth;
                } else {
                    self.objects &= !(1 << self.depth);
                }
                self.depth += 1;
                self.want_key = object;
                Some(Some(Token::Begin { object }))
            }
            tag::END => {
                self.depth = self.depth.checked_sub(1)?;
                self.after_value();
                Some(Some(Token::End))
            }
            _ => None,
        }
    }

    /// Right after [`Token::End`]: whether the container it closed was an object.
    pub(crate) fn closed_object(&self) -> bool {
        self.objects & (1 << self.depth) != 0
    }

    /// After a whole value: the walk ends at depth 0; inside an object a key comes next.
    fn after_value(&mut self) {
        if self.depth == 0 {
            self.done = true;
        } else {
            self.want_key = self.objects & (1 << (self.depth - 1)) != 0;
        }
    }
}

/// Entries the encoder accepts: an [`EntryView`] as drained from a lane, an [`OwnedEntry`],
/// or (with `std`) an [`crate::Event`], written to a temporary entry first.
pub trait AsEntry {
    /// Calls `f` with the entry's bytes.
    fn with_entry<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R;
}

impl AsEntry for EntryView<'_> {
    #[inline(always)]
    fn with_entry<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self.bytes)
    }
}

impl AsEntry for [u8] {
    #[inline(always)]
    fn with_entry<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self)
    }
}

/// An entry of its own (`std`): what [`crate::Event::to_entry`] makes, for tests and tools.
#[cfg(feature = "std")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedEntry(pub(crate) alloc::vec::Vec<u8>);

#[cfg(feature = "std")]
impl OwnedEntry {
    /// A view of the entry.
    pub fn view(&self) -> EntryView<'_> {
        EntryView::parse(&self.0).expect("entries written by capture parse")
    }

    /// The event name.
    pub fn name(&self) -> &str {
        self.view().name()
    }

    /// The distinct_id as it will be sent.
    pub fn distinct_id(&self) -> &str {
        self.view().distinct_id()
    }

    /// Strings cut to fit.
    pub fn truncated(&self) -> u32 {
        self.view().truncated()
    }

    /// Properties (or array elements, object members) dropped to fit.
    pub fn props_dropped(&self) -> u32 {
        self.view().dropped()
    }

    /// Lane bytes the entry takes: its length word, payload and padding.
    pub fn lane_bytes(&self) -> usize {
        (4 + self.0.len() + 7) & !7
    }

    /// True when capture would reject the event (the encoder refuses it too).
    pub fn is_invalid(&self) -> bool {
        self.view().flags() & flag::INVALID != 0
    }
}

#[cfg(feature = "std")]
impl AsEntry for OwnedEntry {
    fn with_entry<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(&self.0)
    }
}

/// Strings written from a `Display` without allocating (for error messages).
impl EntryWriter<'_> {
    /// A string value from `value`'s `Display`, formatted straight into the entry: measured
    /// first (a `Display` is formatted twice), then written through a `core::fmt::Write`
    /// adapter, cut on a UTF-8 boundary to the room left (counted) like [`EntryWriter::str`].
    /// `fallback` is written instead when the text is empty.
    pub(crate) fn str_display(&mut self, value: &dyn core::fmt::Display, fallback: &str) -> bool {
        use core::fmt::Write;
        struct Measure(usize);
        impl Write for Measure {
            fn write_str(&mut self, s: &str) -> core::fmt::Result {
                self.0 += s.len();
                Ok(())
            }
        }
        /// Copies pieces into `buf` up to `left` bytes, cutting the last on a char boundary.
        struct Copy<'w> {
            buf: &'w mut [u8],
            at: usize,
            left: usize,
            cut: bool,
        }
        impl Write for Copy<'_> {
            fn write_str(&mut self, s: &str) -> core::fmt::Result {
                let mut n = s.len().min(self.left);
                while !s.is_char_boundary(n) {
                    n -= 1;
                }
                if n < s.len() {
                    self.cut = true;
                    self.left = 0; // nothing after a cut piece
                } else {
                    self.left -= n;
                }
                self.buf[self.at..self.at + n].copy_from_slice(&s.as_bytes()[..n]);
                self.at += n;
                Ok(())
            }
        }
        let mut m = Measure(0);
        let _ = write!(m, "{value}");
        if m.0 == 0 {
            return self.str(fallback);
        }
        // Tag, length and the text; in the first mode the whole of it, or nothing.
        let head = if m.0 >= 255 { 5 } else { 1 };
        if !self.fits(1 + head + m.0) && !self.last {
            return false;
        }
        let room = self.room();
        if room < 2 {
            return false;
        }
        let (head, keep) = if m.0 + 1 + head <= room {
            (head, m.0)
        } else if room > 1 + 5 + 255 {
            (5, room - 6)
        } else {
            (1, (room - 2).min(254))
        };
        let start = self.pos;
        let body = start + 1 + head;
        let mut copy = Copy { buf: &mut self.buf[..body + keep], at: body, left: keep, cut: false };
        let _ = write!(copy, "{value}");
        let (len, cut) = (copy.at - body, copy.cut || keep < m.0);
        self.buf[start] = tag::STR;
        if head == 1 {
            self.buf[start + 1] = len as u8;
        } else {
            self.buf[start + 1] = 255;
            self.buf[start + 2..start + 6].copy_from_slice(&(len as u32).to_le_bytes());
        }
        self.pos = body + len;
        if cut {
            self.truncated = self.truncated.saturating_add(1);
        }
        true
    }
}
