//! The before-send filter: a function of each event that the flusher runs just before
//! encoding it (never on the capture path), which keeps it, drops it (counted `filtered`), or
//! removes named top-level properties (counted `redacted`), so PII keys never leave the
//! process. It sees a read-only [`EventView`] of the lane entry; removing properties copies
//! the entry, without them, into a scratch buffer the caller gave once: no allocation per
//! event.
//!
//! ```
//! use fasthog::filter::{EventView, Verdict};
//!
//! fn before_send(event: &EventView<'_>) -> Verdict {
//!     match event.name() {
//!         "$heartbeat" => Verdict::Drop,
//!         _ if event.property("internal").is_some() => Verdict::Drop,
//!         _ => Verdict::Remove(&["email", "ip"]),
//!     }
//! }
//! # let _ = before_send;
//! ```

use crate::entry::{EntryView, Scope, Token, ValueReader};

/// A read-only view of one event, as the filter sees it: as captured, before the flusher's
/// enrichment (super properties, `$lib` and the rest are added after the filter).
#[derive(Debug, Clone, Copy)]
pub struct EventView<'e> {
    entry: EntryView<'e>,
}

impl<'e> EventView<'e> {
    /// The event name.
    pub fn name(&self) -> &'e str {
        self.entry.name()
    }

    /// The distinct_id, as it will be sent (cut to
    /// [`MAX_DISTINCT_ID_CHARS`](crate::MAX_DISTINCT_ID_CHARS)).
    pub fn distinct_id(&self) -> &'e str {
        self.entry.distinct_id()
    }

    /// The value of the property `key` in `properties` (not `$set` and the other person and
    /// group objects); the last one when the event set it twice, as is sent. A scan of the
    /// event's properties.
    pub fn property(&self, key: &str) -> Option<ValueRef<'e>> {
        self.lookup(Scope::Props, key)
    }

    /// The value of the person property `key` in `$set`, found as [`EventView::property`].
    pub fn set_property(&self, key: &str) -> Option<ValueRef<'e>> {
        self.lookup(Scope::Set, key)
    }

    fn lookup(&self, scope: Scope, key: &str) -> Option<ValueRef<'e>> {
        let key = key.as_bytes();
        let found = self.entry.items().filter(|i| i.scope == scope && i.key == key).last()?;
        Some(ValueRef::read(found.value))
    }
}

/// A property's value in an [`EventView`]: scalars in full, arrays and objects by kind.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum ValueRef<'e> {
    /// `null`
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer too large for `Int`.
    UInt(u64),
    /// A float (NaN and infinities too: they are sent as `null`).
    Float(f64),
    /// A string.
    Str(&'e str),
    /// An array (its contents are not exposed).
    Array,
    /// An object (its contents are not exposed).
    Object,
}

impl<'e> ValueRef<'e> {
    fn read(value: &'e [u8]) -> Self {
        match ValueReader::new(value).next() {
            Some(Some(Token::Bool(b))) => ValueRef::Bool(b),
            Some(Some(Token::I64(i))) => ValueRef::Int(i),
            Some(Some(Token::U64(u))) => ValueRef::UInt(u),
            Some(Some(Token::F64(f))) => ValueRef::Float(f),
            Some(Some(Token::Str(s))) => ValueRef::Str(core::str::from_utf8(s).unwrap_or_default()),
            Some(Some(Token::Begin { object: true })) => ValueRef::Object,
            Some(Some(Token::Begin { object: false })) => ValueRef::Array,
            _ => ValueRef::Null,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&'e str> {
        match self {
            ValueRef::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// What the filter decides for an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Send it as it is.
    Keep,
    /// Do not send it: counted `filtered`.
    Drop,
    /// Send it without these top-level keys, wherever they occur: in `properties`, `$set`,
    /// `$set_once`, `$groups` and `$group_set` (not inside nested values, and not the
    /// client's own super properties and enrichment). Each property removed is counted
    /// `redacted`. A `'static` list, so deciding costs no allocation.
    Remove(&'static [&'static str]),
}

/// The filter function: called on the flusher's thread for every event, before encoding.
/// Keep it quick and a pure function of the event: the flusher may call it again for an
/// event it could not take yet (every batch full, as while PostHog backs the client off).
pub type FilterFn<'f> = dyn Fn(&EventView<'_>) -> Verdict + Sync + 'f;

/// A filter and the scratch buffer it removes properties in, for
/// [`crate::flusher::Flusher::before_send`]. Give a buffer as large as the largest entry
/// (the lanes' `max_entry`): an event that needs more to have properties removed is dropped
/// (counted `filtered`) rather than sent with them.
pub struct Filter<'f> {
    filter: &'f FilterFn<'f>,
    scratch: &'f mut [u8],
}

impl core::fmt::Debug for Filter<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Filter").field("scratch", &self.scratch.len()).finish_non_exhaustive()
    }
}

/// What [`Filter::apply`] made of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filtered<'a> {
    /// Encode and send `entry` (the original, or a copy without the removed properties).
    Send {
        /// The entry to encode.
        entry: &'a [u8],
        /// Properties removed.
        removed: usize,
    },
    /// Do not send it (count it `filtered`).
    Drop,
}

impl<'f> Filter<'f> {
    /// `filter`, removing properties in `scratch`.
    pub fn new(filter: &'f FilterFn<'f>, scratch: &'f mut [u8]) -> Self {
        Filter { filter, scratch }
    }

    /// Runs the filter on a lane entry. Bytes that are not an entry pass untouched (the
    /// encoder rejects them).
    pub fn apply<'a>(&'a mut self, entry: &'a [u8]) -> Filtered<'a> {
        let Some(view) = EntryView::parse(entry) else {
            return Filtered::Send { entry, removed: 0 };
        };
        match (self.filter)(&EventView { entry: view }) {
            Verdict::Keep | Verdict::Remove(&[]) => Filtered::Send { entry, removed: 0 },
            Verdict::Drop => Filtered::Drop,
            Verdict::Remove(keys) => match remove(entry, &view, keys, self.scratch) {
                Some((0, _)) => Filtered::Send { entry, removed: 0 },
                Some((removed, len)) => Filtered::Send { entry: &self.scratch[..len], removed },
                None => Filtered::Drop,
            },
        }
    }
}

/// Copies `entry` into `out` without its top-level properties named in `keys`, copying only
/// once the first one is found. Returns how many were removed and the copy's length (unused
/// when none was), or `None` when `out` is too small.
fn remove(entry: &[u8], view: &EntryView<'_>, keys: &[&str], out: &mut [u8]) -> Option<(usize, usize)> {
    let mut items = view.items();
    let mut at = items.position();
    let mut removed = 0;
    // Bytes copied to `out`, once copying has started.
    let mut copied: Option<usize> = None;
    let copy = |out: &mut [u8], from: &[u8], to: usize| -> Option<usize> {
        out.get_mut(to..to + from.len())?.copy_from_slice(from);
        Some(to + from.len())
    };
    while let Some(item) = items.next() {
        let end = items.position();
        if keys.iter().any(|k| k.as_bytes() == item.key) {
            removed += 1;
            if copied.is_none() {
                copied = Some(copy(out, &entry[..at], 0)?);
            }
        } else if let Some(to) = copied {
            copied = Some(copy(out, &entry[at..end], to)?);
        }
        at = end;
    }
    match copied {
        // Whatever follows the last readable property goes too, so the encoder sees what it
        // would have seen (and refuses it the same way).
        Some(to) => Some((removed, copy(out, &entry[at..], to)?)),
        None => Some((0, 0)),
    }
}

/// A compile-time check: the flusher future is `Send` when its parts are, and a filter must
/// not stop that (this fails to compile if `Filter` is not `Send`).
#[allow(dead_code)]
fn filter_is_send(filter: Filter<'_>) -> impl Send + '_ {
    filter
}
