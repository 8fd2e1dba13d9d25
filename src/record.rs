//! The fixed-size event record that lanes hold: `Copy`, no heap, strings inline or
//! `'static`. Builders ([`crate::Event`]) write it in place in a ring slot; the encoder reads
//! it in place.

use crate::event::Value;
use crate::ring::Empty;

/// Property entries per event: properties, `$set`, `$set_once`, groups and group properties
/// together. Entries past this are dropped and counted in [`Record::props_dropped`].
pub const MAX_PROPS: usize = 16;

/// Bytes of copied (non-`'static`) strings per event, the distinct_id included. A string that
/// does not fit is cut on a UTF-8 boundary and counted in [`Record::truncated`].
pub const INLINE_BYTES: usize = 256;

/// The longest distinct_id kept, in bytes (PostHog cuts at 200 characters anyway).
pub const MAX_DISTINCT_ID: usize = 200;

/// A string held by a record: a `'static` reference, or a range of the inline buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Text {
    Static(&'static str),
    Inline { start: u16, len: u16 },
}

impl Text {
    const EMPTY: Text = Text::Static("");
}

/// A property value as stored in a record.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stored {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Text),
}

/// Which JSON object a property entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// `properties`
    Props,
    /// `properties.$set`
    Set,
    /// `properties.$set_once`
    SetOnce,
    /// `properties.$groups` (key: group type, value: group key)
    Groups,
    /// `properties.$group_set` (for `$groupidentify`)
    GroupSet,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Prop {
    pub(crate) scope: Scope,
    pub(crate) key: Text,
    pub(crate) value: Stored,
}

impl Prop {
    const EMPTY: Prop = Prop { scope: Scope::Props, key: Text::EMPTY, value: Stored::Null };
}

/// When an event happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Time {
    /// Not yet stamped: capture stamps it with the clock's tick.
    Now,
    /// A [`crate::Clock`] tick, converted to wall time when encoded.
    Tick(u64),
    /// Given by the caller, nanoseconds since the Unix epoch, UTC.
    UnixNanos(u64),
}

/// Record flags.
pub(crate) mod flag {
    /// Name or distinct_id empty or whitespace-only: rejected at capture.
    pub const INVALID: u8 = 1;
    /// `$process_person_profile: false`.
    pub const PERSONLESS: u8 = 2;
}

/// One event as a lane holds it: about 1.1 KB (1,152 bytes, cache-line aligned), `Copy`, with its strings inline. Build events
/// with [`crate::Event`]; a `Record` is what the flusher drains and encodes.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))] // slots start on a cache line: a producer's writes never share a line with the record before
pub struct Record {
    pub(crate) name: Text,
    pub(crate) distinct_id: Text,
    /// Empty means none.
    pub(crate) workspace_id: Text,
    pub(crate) time: Time,
    pub(crate) flags: u8,
    pub(crate) n_props: u8,
    pub(crate) props_dropped: u8,
    pub(crate) truncated: u8,
    pub(crate) inline_len: u16,
    pub(crate) props: [Prop; MAX_PROPS],
    pub(crate) inline: [u8; INLINE_BYTES],
}

impl Empty for Record {
    const EMPTY: Record = Record {
        name: Text::EMPTY,
        distinct_id: Text::EMPTY,
        workspace_id: Text::EMPTY,
        time: Time::Now,
        flags: 0,
        n_props: 0,
        props_dropped: 0,
        truncated: 0,
        inline_len: 0,
        props: [Prop::EMPTY; MAX_PROPS],
        inline: [0; INLINE_BYTES],
    };
}

impl Record {
    /// The event name.
    pub fn name(&self) -> &str {
        self.text(self.name)
    }

    /// The distinct_id.
    pub fn distinct_id(&self) -> &str {
        self.text(self.distinct_id)
    }

    /// How many property entries were dropped because the record was full.
    pub fn props_dropped(&self) -> u8 {
        self.props_dropped
    }

    /// How many strings were cut to fit the record.
    pub fn truncated(&self) -> u8 {
        self.truncated
    }

    /// True when capture rejects the event (empty or whitespace-only name or distinct_id,
    /// empty group type or key, empty alias).
    pub fn is_invalid(&self) -> bool {
        self.flags & flag::INVALID != 0
    }

    /// Empties the record for a new event, touching only its header: entries and inline
    /// bytes are overwritten as they are used.
    #[inline(always)]
    pub(crate) fn reset(&mut self, time: Time, flags: u8) {
        self.workspace_id = Text::EMPTY;
        self.time = time;
        self.flags = flags;
        self.n_props = 0;
        self.props_dropped = 0;
        self.truncated = 0;
        self.inline_len = 0;
    }

    /// The string a [`Text`] refers to.
    #[inline]
    pub(crate) fn text(&self, text: Text) -> &str {
        match text {
            Text::Static(s) => s,
            Text::Inline { start, len } => {
                let bytes = &self.inline[usize::from(start)..usize::from(start) + usize::from(len)];
                // Inline bytes were copied from a `&str`, cut on a char boundary: always UTF-8.
                core::str::from_utf8(bytes).unwrap_or_default()
            }
        }
    }

    /// The bytes a [`Text`] refers to (UTF-8, without re-validation).
    #[inline]
    pub(crate) fn text_bytes(&self, text: Text) -> &[u8] {
        match text {
            Text::Static(s) => s.as_bytes(),
            Text::Inline { start, len } => {
                &self.inline[usize::from(start)..usize::from(start) + usize::from(len)]
            }
        }
    }

    /// The property entries in use.
    #[inline]
    pub(crate) fn props(&self) -> &[Prop] {
        &self.props[..usize::from(self.n_props)]
    }

    #[inline(always)]
    pub(crate) fn push(&mut self, scope: Scope, key: Text, value: Value<'_>) {
        if self.dropped_when_full() {
            return;
        }
        let value = match value {
            Value::Null => Stored::Null,
            Value::Bool(b) => Stored::Bool(b),
            Value::Int(i) => Stored::Int(i),
            Value::UInt(u) => Stored::UInt(u),
            Value::Float(f) => Stored::Float(f),
            Value::Static(s) => Stored::Str(Text::Static(s)),
            Value::Str(s) => Stored::Str(self.copy_in(s, INLINE_BYTES)),
        };
        if let Some(slot) = self.props.get_mut(usize::from(self.n_props)) {
            *slot = Prop { scope, key, value };
            self.n_props += 1;
        }
    }

    /// When every entry is in use, counts one more dropped entry and returns true. Checked
    /// before copying anything, so a dropped entry spends no inline bytes and counts no cut.
    #[inline(always)]
    pub(crate) fn dropped_when_full(&mut self) -> bool {
        let full = usize::from(self.n_props) >= MAX_PROPS;
        if full {
            self.props_dropped = self.props_dropped.saturating_add(1);
        }
        full
    }

    /// Copies the concatenation of `parts` like [`Record::copy_in`].
    pub(crate) fn copy_in_parts(&mut self, parts: &[&str], limit: usize) -> Text {
        let start = self.inline_len;
        let mut len = 0usize;
        for part in parts {
            if let Text::Inline { len: n, .. } = self.copy_in(part, limit - len) {
                len += usize::from(n);
            }
        }
        Text::Inline { start, len: len as u16 }
    }

    /// Copies `s` (at most `limit` bytes, and what fits) into the inline buffer, cutting on a
    /// char boundary and counting the cut.
    #[inline]
    pub(crate) fn copy_in(&mut self, s: &str, limit: usize) -> Text {
        let start = usize::from(self.inline_len);
        let room = (INLINE_BYTES - start).min(limit);
        let mut len = s.len();
        if len > room {
            len = room;
            while !s.is_char_boundary(len) {
                len -= 1;
            }
            self.truncated = self.truncated.saturating_add(1);
        }
        self.inline[start..start + len].copy_from_slice(&s.as_bytes()[..len]);
        self.inline_len = (start + len) as u16;
        Text::Inline { start: start as u16, len: len as u16 }
    }
}

/// Empty or whitespace-only (stops at the first non-space character).
#[inline]
pub(crate) fn is_blank(s: &str) -> bool {
    // Most ids and names start with a printable ASCII byte: decide on it without decoding.
    match s.as_bytes().first() {
        None => true,
        Some(b) if b.is_ascii_graphic() => false,
        Some(_) => !s.chars().any(|c| !c.is_whitespace()),
    }
}
