//! The event builder: what a call site writes. It holds only references and values on the
//! stack (no fixed-size record, nothing to initialise), and capture writes it straight into a
//! lane's slot, so building and capturing an event costs the bytes it uses.

use crate::record::{flag, is_blank, Record, Scope, Text, Time, INLINE_BYTES, MAX_DISTINCT_ID};
use crate::ring::Empty;

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
impl<'a> From<&'a alloc::string::String> for Value<'a> {
    fn from(s: &'a alloc::string::String) -> Self {
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

/// A string the builder holds: `'static` (stored by reference) or borrowed (copied at capture).
#[derive(Debug, Clone, Copy)]
enum Str<'a> {
    Static(&'static str),
    Borrowed(&'a str),
}

impl<'a> Str<'a> {
    fn as_str(&self) -> &'a str {
        match *self {
            Str::Static(s) => s,
            Str::Borrowed(s) => s,
        }
    }
}

/// Who an event is about.
#[derive(Debug, Clone, Copy)]
enum Id<'a> {
    Static(&'static str),
    Borrowed(&'a str),
    /// `${group_type}_{group_key}`, for `$groupidentify`.
    Group(&'static str, &'a str),
}

/// One property entry of a builder.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    scope: Scope,
    key: Str<'a>,
    value: Value<'a>,
}

/// Property entries from an iterator, for events whose shape is known only at run time (see
/// [`Event::props`]).
#[derive(Debug, Clone, Copy)]
pub struct Many<I>(I);

mod sealed {
    pub trait Props {}
    impl Props for () {}
    impl<P: Props> Props for (P, super::Entry<'_>) {}
    impl<P: Props, I> Props for (P, super::Many<I>) {}
}

/// The property entries of a builder: `()` or `(earlier entries, Entry)`, one type per shape, so
/// a chain of `.prop(...)` calls compiles to straight-line writes. Sealed.
pub trait Props: sealed::Props {
    /// Writes the entries into a record, oldest first.
    #[doc(hidden)]
    fn write(&self, record: &mut Record);
}

impl Props for () {
    #[inline(always)]
    fn write(&self, _: &mut Record) {}
}

impl<P: Props> Props for (P, Entry<'_>) {
    #[inline(always)]
    fn write(&self, record: &mut Record) {
        self.0.write(record);
        self.1.write(record);
    }
}

impl<'b, P, I> Props for (P, Many<I>)
where
    P: Props,
    I: IntoIterator + Clone,
    I::Item: Into<Entry<'b>>,
{
    fn write(&self, record: &mut Record) {
        self.0.write(record);
        for entry in self.1 .0.clone() {
            entry.into().write(record);
        }
    }
}

impl<'a> Entry<'a> {
    /// A property with a `'static` key.
    pub fn prop(key: &'static str, value: impl Into<Value<'a>>) -> Self {
        Entry { scope: Scope::Props, key: Str::Static(key), value: value.into() }
    }

    /// A property whose key is copied at capture.
    pub fn prop_dyn(key: &'a str, value: impl Into<Value<'a>>) -> Self {
        Entry { scope: Scope::Props, key: Str::Borrowed(key), value: value.into() }
    }

    /// A `$set` person property.
    pub fn set(key: &'static str, value: impl Into<Value<'a>>) -> Self {
        Entry { scope: Scope::Set, key: Str::Static(key), value: value.into() }
    }

    /// A `$set_once` person property.
    pub fn set_once(key: &'static str, value: impl Into<Value<'a>>) -> Self {
        Entry { scope: Scope::SetOnce, key: Str::Static(key), value: value.into() }
    }

    #[inline(always)]
    fn write(self, record: &mut Record) {
        let Entry { scope, key, value } = self;
        let key = match key {
            Str::Static(s) => Text::Static(s),
            Str::Borrowed(s) => {
                // Checked before copying: a dropped entry spends no inline bytes.
                if record.dropped_when_full() {
                    return;
                }
                record.copy_in(s, INLINE_BYTES)
            }
        };
        record.push(scope, key, value);
    }
}

/// A `(key, value)` pair is a property whose key is copied at capture.
impl<'a, K: AsRef<str> + ?Sized, V: Into<Value<'a>>> From<(&'a K, V)> for Entry<'a> {
    fn from((key, value): (&'a K, V)) -> Self {
        Entry::prop_dyn(key.as_ref(), value)
    }
}

/// One analytics event, built at the call site and captured without allocation:
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
///
/// The builder only holds references; strings that are not `'static` are copied into the
/// lane's record at capture, within the record's limits ([`MAX_PROPS`](crate::MAX_PROPS)
/// entries, [`INLINE_BYTES`] of copied strings, a [`MAX_DISTINCT_ID`]-byte distinct_id): past
/// them strings are cut on a UTF-8 boundary and entries dropped, and both are counted.
#[derive(Debug, Clone, Copy)]
#[must_use = "an event does nothing until it is captured"]
pub struct Event<'a, P = ()> {
    name: Str<'a>,
    distinct_id: Id<'a>,
    workspace_id: &'a str,
    time: Option<u64>,
    flags: u8,
    props: P,
}

impl<'a> Event<'a> {
    /// An event named by a `'static` string (free), about `distinct_id`.
    ///
    /// An empty or whitespace-only name or distinct_id makes the event invalid: capture
    /// rejects and counts it instead of sending a batch the server would refuse.
    #[inline(always)]
    pub fn new(name: &'static str, distinct_id: &'a str) -> Self {
        Event::with(Str::Static(name), Id::Borrowed(distinct_id))
    }

    /// Like [`Event::new`], with a name that is copied at capture.
    #[inline]
    pub fn named(name: &'a str, distinct_id: &'a str) -> Self {
        Event::with(Str::Borrowed(name), Id::Borrowed(distinct_id))
    }

    /// Like [`Event::new`], with a `'static` distinct_id (not copied).
    #[inline]
    pub fn new_static(name: &'static str, distinct_id: &'static str) -> Self {
        Event::with(Str::Static(name), Id::Static(distinct_id))
    }

    #[inline(always)]
    fn with(name: Str<'a>, distinct_id: Id<'a>) -> Self {
        Event { name, distinct_id, workspace_id: "", time: None, flags: 0, props: () }
    }

    /// An `$identify` event: links `distinct_id` to a person and sets person properties with
    /// [`Event::set`] / [`Event::set_once`]. An empty distinct_id is rejected at capture.
    ///
    /// ```
    /// let e = fasthog::Event::identify("user-42").set("email", "ada@example.com").set_once("plan", "free");
    /// assert_eq!(e.name(), "$identify");
    /// ```
    pub fn identify(distinct_id: &'a str) -> Self {
        Event::new("$identify", distinct_id)
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
    pub fn alias(distinct_id: &'a str, alias: &'a str) -> Event<'a, ((), Entry<'a>)> {
        Event::new("$create_alias", distinct_id).prop("alias", alias).invalid_if(is_blank(alias))
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
    pub fn group_identify(
        group_type: &'static str,
        group_key: &'a str,
    ) -> Event<'a, (((), Entry<'a>), Entry<'a>)> {
        let blank = is_blank(group_type) || is_blank(group_key);
        Event::with(Str::Static("$groupidentify"), Id::Group(group_type, group_key))
            .prop("$group_type", Value::Static(group_type))
            .prop("$group_key", group_key)
            .invalid_if(blank)
    }
}

impl<'a, P: Props> Event<'a, P> {
    #[inline(always)]
    fn entry<'b>(self, scope: Scope, key: Str<'b>, value: Value<'b>) -> Event<'a, (P, Entry<'b>)>
    where
        'a: 'b,
    {
        let Event { name, distinct_id, workspace_id, time, flags, props } = self;
        Event { name, distinct_id, workspace_id, time, flags, props: (props, Entry { scope, key, value }) }
    }

    /// Adds a property with a `'static` key.
    #[inline(always)]
    pub fn prop<'b>(self, key: &'static str, value: impl Into<Value<'b>>) -> Event<'a, (P, Entry<'b>)>
    where
        'a: 'b,
    {
        self.entry(Scope::Props, Str::Static(key), value.into())
    }

    /// Adds a property whose key is copied at capture.
    #[inline]
    pub fn prop_dyn<'b>(self, key: &'b str, value: impl Into<Value<'b>>) -> Event<'a, (P, Entry<'b>)>
    where
        'a: 'b,
    {
        self.entry(Scope::Props, Str::Borrowed(key), value.into())
    }

    /// Adds entries from an iterator, for events whose properties are known only at run
    /// time: `(key, value)` pairs (keys copied at capture) or [`Entry`] values. The iterator
    /// is cloned and walked at capture, so it should be cheap to clone (an array, a slice
    /// iterator).
    ///
    /// ```
    /// use fasthog::{Entry, Event};
    /// let fills = [("qty", 3i64), ("lots", 2)];
    /// let e = Event::new("order_filled", "user-1").props(fills);
    /// let entries = vec![Entry::prop("qty", 3), Entry::set("plan", "pro")];
    /// let f = Event::new("upgraded", "user-1").props(entries.iter().copied());
    /// assert!(!e.is_invalid() && !f.is_invalid());
    /// ```
    #[inline]
    pub fn props<I>(self, entries: I) -> Event<'a, (P, Many<I>)>
    where
        (P, Many<I>): Props,
    {
        let Event { name, distinct_id, workspace_id, time, flags, props } = self;
        Event { name, distinct_id, workspace_id, time, flags, props: (props, Many(entries)) }
    }

    /// Adds a person property to `$set`.
    #[inline(always)]
    pub fn set<'b>(self, key: &'static str, value: impl Into<Value<'b>>) -> Event<'a, (P, Entry<'b>)>
    where
        'a: 'b,
    {
        self.entry(Scope::Set, Str::Static(key), value.into())
    }

    /// Adds a person property to `$set_once`.
    #[inline(always)]
    pub fn set_once<'b>(self, key: &'static str, value: impl Into<Value<'b>>) -> Event<'a, (P, Entry<'b>)>
    where
        'a: 'b,
    {
        self.entry(Scope::SetOnce, Str::Static(key), value.into())
    }

    /// Adds a group property to `$group_set` (for [`Event::group_identify`]).
    #[inline]
    pub fn group_set<'b>(self, key: &'static str, value: impl Into<Value<'b>>) -> Event<'a, (P, Entry<'b>)>
    where
        'a: 'b,
    {
        self.entry(Scope::GroupSet, Str::Static(key), value.into())
    }

    /// Attaches the event to a group: `$groups: {group_type: group_key}`. An empty type or
    /// key is rejected at capture.
    ///
    /// ```
    /// let e = fasthog::Event::new("invoice_paid", "user-42").group("company", "acme");
    /// assert!(!e.is_invalid());
    /// ```
    #[inline]
    pub fn group<'b>(self, group_type: &'static str, group_key: &'b str) -> Event<'a, (P, Entry<'b>)>
    where
        'a: 'b,
    {
        let blank = is_blank(group_type) || is_blank(group_key);
        self.entry(Scope::Groups, Str::Static(group_type), Value::Str(group_key)).invalid_if(blank)
    }

    /// Links an anonymous id to the identified person (`$anon_distinct_id`).
    #[inline]
    pub fn anon_distinct_id<'b>(self, anon_id: &'b str) -> Event<'a, (P, Entry<'b>)>
    where
        'a: 'b,
    {
        self.prop("$anon_distinct_id", anon_id)
    }

    /// Sends the event without creating or updating a person profile
    /// (`$process_person_profile: false`): for events of anonymous or machine actors.
    #[inline]
    pub fn personless(mut self) -> Self {
        self.flags |= flag::PERSONLESS;
        self
    }

    /// Sets the workspace id, sent as the `workspace_id` property (the Go client's rule:
    /// only when not empty).
    #[inline]
    pub fn workspace(mut self, workspace_id: &'a str) -> Self {
        self.workspace_id = workspace_id;
        self
    }

    /// Sets when the event happened, in nanoseconds since the Unix epoch (UTC). Without it,
    /// capture stamps the event with the client's clock.
    #[inline]
    pub fn timestamp_unix_nanos(mut self, nanos: u64) -> Self {
        self.time = Some(nanos);
        self
    }

    #[inline(always)]
    fn invalid_if(mut self, invalid: bool) -> Self {
        if invalid {
            self.flags |= flag::INVALID;
        }
        self
    }

    /// The event name.
    pub fn name(&self) -> &'a str {
        self.name.as_str()
    }

    /// The distinct_id as it will be sent (group ids assembled; not yet cut to
    /// [`MAX_DISTINCT_ID`]).
    #[cfg(feature = "std")]
    pub fn distinct_id(&self) -> alloc::borrow::Cow<'a, str> {
        match self.distinct_id {
            Id::Static(s) => s.into(),
            Id::Borrowed(s) => s.into(),
            Id::Group(t, k) => alloc::format!("${t}_{k}").into(),
        }
    }

    /// True when capture will reject the event: an empty or whitespace-only name or
    /// distinct_id (after its cut to [`MAX_DISTINCT_ID`] bytes), an empty group type or key,
    /// or an empty alias.
    #[inline(always)]
    pub fn is_invalid(&self) -> bool {
        if self.flags & flag::INVALID != 0 {
            return true;
        }
        // What capture will write: the distinct_id cut to its limit, then a copied name cut to
        // what is left of the inline bytes. Either one blank as written is invalid.
        let id_inline = match self.distinct_id {
            Id::Static(s) | Id::Borrowed(s) => {
                let id = cut(s, MAX_DISTINCT_ID);
                if is_blank(id) {
                    return true;
                }
                if matches!(self.distinct_id, Id::Borrowed(_)) {
                    id.len()
                } else {
                    0
                }
            }
            // Starts with `$`, never blank; its type and key were checked when it was built.
            Id::Group(t, k) => (t.len() + k.len() + 2).min(MAX_DISTINCT_ID),
        };
        match self.name {
            Str::Static(s) => is_blank(s),
            Str::Borrowed(s) => is_blank(cut(s, INLINE_BYTES - id_inline)),
        }
    }

    /// Writes the event into a record (a lane's slot, reused: only its header is reset).
    #[inline(always)]
    pub(crate) fn write_to(&self, record: &mut Record, clock_tick: impl FnOnce() -> u64) {
        let time = match self.time {
            Some(nanos) => Time::UnixNanos(nanos),
            None => Time::Tick(clock_tick()),
        };
        record.reset(time, self.flags);
        record.distinct_id = match self.distinct_id {
            Id::Static(s) => {
                let kept = cut(s, MAX_DISTINCT_ID);
                if kept.len() < s.len() {
                    record.truncated += 1;
                }
                Text::Static(kept)
            }
            Id::Borrowed(s) => record.copy_in(s, MAX_DISTINCT_ID),
            Id::Group(t, k) => record.copy_in_parts(&["$", t, "_", k], MAX_DISTINCT_ID),
        };
        record.name = match self.name {
            Str::Static(s) => Text::Static(s),
            Str::Borrowed(s) => record.copy_in(s, INLINE_BYTES),
        };
        if !self.workspace_id.is_empty() {
            record.workspace_id = record.copy_in(self.workspace_id, INLINE_BYTES);
        }
        self.props.write(record);
    }

    /// The record this event makes, stamped with `time_unix_nanos` unless it has its own
    /// timestamp. Copies the whole 1.1 KB record: for tests and tools, not the hot path.
    pub fn to_record(&self) -> Record {
        let mut record = Record::EMPTY;
        self.write_to(&mut record, || 0);
        if self.time.is_none() {
            record.time = Time::Now;
        }
        if self.is_invalid() {
            record.flags |= flag::INVALID;
        }
        record
    }

    /// Property entries dropped because the record is full (see [`Event::to_record`]).
    pub fn props_dropped(&self) -> u8 {
        self.to_record().props_dropped()
    }

    /// Strings cut to fit the record (see [`Event::to_record`]).
    pub fn truncated(&self) -> u8 {
        self.to_record().truncated()
    }
}

/// `s` cut to at most `max` bytes on a char boundary.
#[inline]
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut len = max;
    while !s.is_char_boundary(len) {
        len -= 1;
    }
    &s[..len]
}

/// Events and records the encoder accepts: a [`Record`] as drained from a lane, or an
/// [`Event`] (written to a temporary record first).
pub trait AsRecord {
    /// Calls `f` with the record.
    fn with_record<R>(&self, f: impl FnOnce(&Record) -> R) -> R;
}

impl AsRecord for Record {
    #[inline(always)]
    fn with_record<R>(&self, f: impl FnOnce(&Record) -> R) -> R {
        f(self)
    }
}

impl<P: Props> AsRecord for Event<'_, P> {
    fn with_record<R>(&self, f: impl FnOnce(&Record) -> R) -> R {
        f(&self.to_record())
    }
}
