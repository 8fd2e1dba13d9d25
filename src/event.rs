//! Fixed-size event records, and the builder that fills them.
//!
//! An [`Event`] is what the Go client's `Event` holds (name, distinct_id, timestamp, optional
//! workspace_id, properties, `$set`, `$set_once`) in a `Copy` record with no heap. Strings
//! that are `&'static str` (event names, property keys, most enum-like values) are stored as
//! the reference itself and cost nothing; other strings are copied into the record's inline
//! buffer, up to [`INLINE_BYTES`] per event.

use crate::ring::Empty;

/// Property entries per event: properties, `$set`, `$set_once` and groups together. Entries
/// past this are dropped and counted in [`Event::props_dropped`].
pub const MAX_PROPS: usize = 16;

/// Bytes of copied (non-`'static`) strings per event, the distinct_id included. A string that
/// does not fit is cut on a UTF-8 boundary and counted in [`Event::truncated`].
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

/// A property value given to the builder. Build one with `From` (`3`, `2.5`, `true`, `"text"`,
/// `None::<i64>`) or [`Static`] for a `'static` string that should not be copied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// JSON `null`.
    Null,
    /// JSON `true` / `false`.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A float; NaN and infinities are sent as `null` and counted.
    Float(f64),
    /// A string, copied into the record.
    Str(&'a str),
    /// A `'static` string, stored by reference (free).
    Static(&'static str),
}

/// A `'static` string value stored by reference, not copied: `.prop("plan", Static("pro"))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Static(pub &'static str);

impl From<Static> for Value<'_> {
    fn from(s: Static) -> Self {
        Value::Static(s.0)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Str(s)
    }
}

#[cfg(feature = "std")]
impl<'a> From<&'a std::string::String> for Value<'a> {
    fn from(s: &'a std::string::String) -> Self {
        Value::Str(s)
    }
}

impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<f64> for Value<'_> {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<f32> for Value<'_> {
    fn from(v: f32) -> Self {
        Value::Float(v.into())
    }
}

macro_rules! from_int {
    ($variant:ident: $($t:ty),*) => {$(
        impl From<$t> for Value<'_> {
            fn from(v: $t) -> Self {
                Value::$variant(v as _)
            }
        }
    )*};
}
from_int!(Int: i8, i16, i32, i64, isize);
from_int!(UInt: u8, u16, u32, u64, usize);

impl<'a, V: Into<Value<'a>>> From<Option<V>> for Value<'a> {
    fn from(v: Option<V>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Event flags (bits of [`Event::flags`]).
pub(crate) mod flag {
    /// Name or distinct_id empty or whitespace-only: rejected at capture.
    pub const INVALID: u8 = 1;
    /// `$process_person_profile: false`.
    pub const PERSONLESS: u8 = 2;
}

/// One analytics event, in a fixed-size record that needs no heap.
///
/// ```
/// use fasthog::{Event, Static};
/// let user = "2f1c8f5e-7a34-4a63-9d0b-0c5b8d1f2e3a";
/// let event = Event::new("order_filled", user)
///     .prop("qty", 3)
///     .prop("price", 101.25)
///     .prop("venue", Static("XNAS"))
///     .set("plan", "pro");
/// assert_eq!(event.name(), "order_filled");
/// assert_eq!(event.distinct_id(), user);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Event {
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

impl Empty for Event {
    const EMPTY: Event = Event {
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

impl Event {
    /// An event named by a `'static` string (free), for a user. The distinct_id is copied
    /// (up to [`MAX_DISTINCT_ID`] bytes).
    ///
    /// An empty or whitespace-only name or distinct_id makes the event invalid: capture
    /// rejects and counts it instead of sending a batch the server would refuse.
    #[inline]
    pub fn new(name: &'static str, distinct_id: &str) -> Self {
        let mut event = Event::EMPTY;
        event.name = Text::Static(name);
        event.set_distinct_id(distinct_id);
        event.validate();
        event
    }

    /// Like [`Event::new`], with a name that is copied into the record.
    pub fn named(name: &str, distinct_id: &str) -> Self {
        let mut event = Event::EMPTY;
        event.set_distinct_id(distinct_id);
        event.name = event.copy_in(name, INLINE_BYTES);
        event.validate();
        event
    }

    /// Like [`Event::new`], with a distinct_id that is `'static` (not copied).
    #[inline]
    pub fn new_static(name: &'static str, distinct_id: &'static str) -> Self {
        let mut event = Event::EMPTY;
        event.name = Text::Static(name);
        let mut len = distinct_id.len().min(MAX_DISTINCT_ID);
        while !distinct_id.is_char_boundary(len) {
            len -= 1;
        }
        if len < distinct_id.len() {
            event.truncated = 1;
        }
        event.distinct_id = Text::Static(&distinct_id[..len]);
        event.validate();
        event
    }

    #[inline]
    fn set_distinct_id(&mut self, distinct_id: &str) {
        self.distinct_id = self.copy_in(distinct_id, MAX_DISTINCT_ID);
    }

    #[inline]
    fn validate(&mut self) {
        if is_blank(self.text(self.name)) || is_blank(self.text(self.distinct_id)) {
            self.flags |= flag::INVALID;
        }
    }

    /// Adds a property with a `'static` key.
    #[inline]
    pub fn prop<'a>(mut self, key: &'static str, value: impl Into<Value<'a>>) -> Self {
        self.push(Scope::Props, Text::Static(key), value.into());
        self
    }

    /// Adds a property whose key is copied into the record.
    pub fn prop_dyn<'a>(mut self, key: &str, value: impl Into<Value<'a>>) -> Self {
        if self.dropped_when_full() {
            return self;
        }
        let key = self.copy_in(key, INLINE_BYTES);
        self.push(Scope::Props, key, value.into());
        self
    }

    /// Adds a person property to `$set`.
    #[inline]
    pub fn set<'a>(mut self, key: &'static str, value: impl Into<Value<'a>>) -> Self {
        self.push(Scope::Set, Text::Static(key), value.into());
        self
    }

    /// Adds a person property to `$set_once`.
    #[inline]
    pub fn set_once<'a>(mut self, key: &'static str, value: impl Into<Value<'a>>) -> Self {
        self.push(Scope::SetOnce, Text::Static(key), value.into());
        self
    }

    /// An `$identify` event: links `distinct_id` to a person and sets person properties with
    /// [`Event::set`] / [`Event::set_once`]. An empty distinct_id is rejected at capture.
    ///
    /// ```
    /// let e = fasthog::Event::identify("user-42").set("email", "ada@example.com").set_once("plan", "free");
    /// assert_eq!(e.name(), "$identify");
    /// ```
    pub fn identify(distinct_id: &str) -> Self {
        Event::new("$identify", distinct_id)
    }

    /// Links an anonymous id to the identified person (`$anon_distinct_id`).
    pub fn anon_distinct_id(self, anon_id: &str) -> Self {
        self.prop("$anon_distinct_id", anon_id)
    }

    /// A `$create_alias` event: makes `alias` another id of the person `distinct_id`. An empty
    /// alias or distinct_id is rejected at capture.
    ///
    /// ```
    /// let e = fasthog::Event::alias("user-42", "legacy-7");
    /// assert_eq!(e.name(), "$create_alias");
    /// assert!(!e.is_invalid());
    /// assert!(fasthog::Event::alias("user-42", " ").is_invalid());
    /// ```
    pub fn alias(distinct_id: &str, alias: &str) -> Self {
        let event = Event::new("$create_alias", distinct_id).prop("alias", alias);
        event.invalid_if(is_blank(alias))
    }

    /// A `$groupidentify` event: sets properties of the group `group_type`/`group_key` with
    /// [`Event::group_set`]. Its distinct_id is `${group_type}_{group_key}`, as PostHog's SDKs
    /// send. An empty group type or key is rejected at capture.
    ///
    /// ```
    /// let e = fasthog::Event::group_identify("company", "acme").group_set("seats", 40);
    /// assert_eq!(e.distinct_id(), "$company_acme");
    /// assert!(fasthog::Event::group_identify("", "acme").is_invalid());
    /// ```
    pub fn group_identify(group_type: &'static str, group_key: &str) -> Self {
        let mut event = Event::EMPTY;
        event.name = Text::Static("$groupidentify");
        event.distinct_id = event.copy_in_parts(&["$", group_type, "_", group_key], MAX_DISTINCT_ID);
        let blank = is_blank(group_type) || is_blank(group_key);
        let event = event.prop("$group_type", Value::Static(group_type)).prop("$group_key", group_key);
        event.invalid_if(blank)
    }

    /// Adds a group property to `$group_set` (for [`Event::group_identify`]).
    pub fn group_set<'a>(mut self, key: &'static str, value: impl Into<Value<'a>>) -> Self {
        self.push(Scope::GroupSet, Text::Static(key), value.into());
        self
    }

    /// Attaches the event to a group: `$groups: {group_type: group_key}`. An empty type or
    /// key is rejected at capture.
    ///
    /// ```
    /// let e = fasthog::Event::new("invoice_paid", "user-42").group("company", "acme");
    /// assert!(!e.is_invalid());
    /// ```
    pub fn group(mut self, group_type: &'static str, group_key: &str) -> Self {
        let blank = is_blank(group_type) || is_blank(group_key);
        self.push(Scope::Groups, Text::Static(group_type), Value::Str(group_key));
        self.invalid_if(blank)
    }

    /// Sends the event without creating or updating a person profile
    /// (`$process_person_profile: false`): cheaper for PostHog, for events of anonymous or
    /// machine actors.
    pub fn personless(mut self) -> Self {
        self.flags |= flag::PERSONLESS;
        self
    }

    fn invalid_if(mut self, invalid: bool) -> Self {
        if invalid {
            self.flags |= flag::INVALID;
        }
        self
    }

    /// Sets the workspace id, sent as the `workspace_id` property (the Go client's rule:
    /// only when not empty).
    pub fn workspace(mut self, workspace_id: &str) -> Self {
        self.workspace_id = self.copy_in(workspace_id, INLINE_BYTES);
        self
    }

    /// Sets when the event happened, in nanoseconds since the Unix epoch (UTC). Without it,
    /// capture stamps the event with the client's clock.
    pub fn timestamp_unix_nanos(mut self, nanos: u64) -> Self {
        self.time = Time::UnixNanos(nanos);
        self
    }

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

    /// True when capture will reject the event (empty or whitespace-only name or distinct_id).
    pub fn is_invalid(&self) -> bool {
        self.flags & flag::INVALID != 0
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

    #[inline]
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
    #[inline]
    fn dropped_when_full(&mut self) -> bool {
        let full = usize::from(self.n_props) >= MAX_PROPS;
        if full {
            self.props_dropped = self.props_dropped.saturating_add(1);
        }
        full
    }

    /// Copies `s` (at most `limit` bytes, and what fits) into the inline buffer, cutting on a
    /// char boundary and counting the cut.
    #[inline]
    /// Copies the concatenation of `parts` like [`Event::copy_in`].
    fn copy_in_parts(&mut self, parts: &[&str], limit: usize) -> Text {
        let start = self.inline_len;
        let mut len = 0usize;
        for part in parts {
            if let Text::Inline { len: n, .. } = self.copy_in(part, limit - len) {
                len += usize::from(n);
            }
        }
        Text::Inline { start, len: len as u16 }
    }

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

    /// Copies this event into `slot`, touching only the entries and inline bytes in use: a
    /// capture costs the bytes an event uses, not the record's size.
    #[inline]
    pub(crate) fn copy_to(&self, slot: &mut Event) {
        slot.name = self.name;
        slot.distinct_id = self.distinct_id;
        slot.workspace_id = self.workspace_id;
        slot.time = self.time;
        slot.flags = self.flags;
        slot.n_props = self.n_props;
        slot.props_dropped = self.props_dropped;
        slot.truncated = self.truncated;
        slot.inline_len = self.inline_len;
        let n = usize::from(self.n_props);
        slot.props[..n].copy_from_slice(&self.props[..n]);
        let m = usize::from(self.inline_len);
        slot.inline[..m].copy_from_slice(&self.inline[..m]);
    }
}

/// Empty or whitespace-only (stops at the first non-space character).
#[inline]
pub(crate) fn is_blank(s: &str) -> bool {
    !s.chars().any(|c| !c.is_whitespace())
}
