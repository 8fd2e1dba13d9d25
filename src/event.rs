//! The event builder: what a call site writes. It holds references and values on the stack
//! (nothing to initialise, no fixed-size record), and capture writes it straight into a lane
//! as a compact entry (see `entry.rs`), so an event costs the bytes it uses.

use crate::entry::{flag, EntryWriter, Scope, Short};

/// The longest distinct_id PostHog keeps, in characters: longer ones are cut (and counted).
pub const MAX_DISTINCT_ID_CHARS: usize = 200;

/// A property value. Build one with `From` (`3`, `2.5`, `true`, `"text"`, `None::<i64>`), or
/// nest with [`Value::array`] and [`Value::object`]. Any [`PropValue`] (owned `String`s,
/// `Option`s, slices, `Vec`s) can be a property directly; `Value` is the one type for
/// values whose kind is known only at run time.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
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
    /// A string (copied into the lane at capture, like every string).
    Str(&'a str),
    /// A JSON array.
    Array(&'a [Value<'a>]),
    /// A JSON object.
    Object(&'a [(&'a str, Value<'a>)]),
}

impl<'a> Value<'a> {
    /// A JSON array of these values.
    ///
    /// ```
    /// use fasthog::Value;
    /// let tags = [Value::from("a"), Value::from(2)];
    /// let v = Value::array(&tags);
    /// # let _ = v;
    /// ```
    pub const fn array(values: &'a [Value<'a>]) -> Self {
        Value::Array(values)
    }

    /// A JSON object of these members (a later key wins over an earlier one on the server).
    pub const fn object(members: &'a [(&'a str, Value<'a>)]) -> Self {
        Value::Object(members)
    }
}

/// A string value that lives for the whole program. Since fasthog 0.2 every string is copied
/// into the lane (short keys and values cost fewer lane bytes copied than a pointer and a
/// length would); `Static` is kept so that code written for 0.1 compiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Static(pub &'static str);

impl From<Static> for Value<'_> {
    fn from(s: Static) -> Self {
        Value::Str(s.0)
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

macro_rules! ints {
    ($variant:ident, $write:ident, $wide:ty, $tag:ident: $($t:ty),*) => {$(
        impl From<$t> for Value<'_> {
            fn from(v: $t) -> Self {
                Value::$variant(v as $wide)
            }
        }
        impl PropValue for $t {
            #[inline(always)]
            fn write_value(&self, w: &mut EntryWriter<'_>) -> bool {
                w.$write(*self as $wide)
            }
            #[inline(always)]
            fn short_form(&self) -> Option<Short<'_>> {
                Some(Short::Scalar(crate::entry::tag::$tag, (*self as $wide).to_le_bytes()))
            }
        }
    )*};
}
ints!(Int, i64, i64, I64: i8, i16, i32, i64, isize);
ints!(UInt, u64, u64, U64: u8, u16, u32, u64, usize);

impl<'a, V: Into<Value<'a>>> From<Option<V>> for Value<'a> {
    fn from(v: Option<V>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A value capture can write into a lane: numbers, `bool`, strings (`&str`, `String`),
/// `Option`s (`None` is `null`), slices, arrays and `Vec`s (JSON arrays), [`Value`], and with
/// the `serde` feature any `Serialize` type through [`crate::Serde`]. Implement it for your
/// own types with the [`EntryWriter`] methods.
pub trait PropValue {
    /// Writes the value; false when it did not fit (the property is then dropped, counted).
    fn write_value(&self, w: &mut EntryWriter<'_>) -> bool;

    /// The value's tag and payload when it is a scalar or a string under 255 bytes: capture
    /// then checks the room for the whole property once. `None` (the default) for others.
    #[doc(hidden)]
    #[inline(always)]
    fn short_form(&self) -> Option<Short<'_>> {
        None
    }
}

impl<T: PropValue + ?Sized> PropValue for &T {
    #[inline(always)]
    fn write_value(&self, w: &mut EntryWriter<'_>) -> bool {
        (**self).write_value(w)
    }
    #[inline(always)]
    fn short_form(&self) -> Option<Short<'_>> {
        (**self).short_form()
    }
}

impl PropValue for bool {
    #[inline(always)]
    fn write_value(&self, w: &mut EntryWriter<'_>) -> bool {
        w.bool(*self)
    }
}

impl PropValue for f64 {
    #[inline(always)]
    fn write_value(&self, w: &mut EntryWriter<'_>) -> bool {
        w.f64(*self)
    }
    #[inline(always)]
    fn short_form(&self) -> Option<Short<'_>> {
        Some(Short::Scalar(crate::entry::tag::F64, self.to_bits().to_le_bytes()))
    }
}

impl PropValue for f32 {
    #[inline(always)]
    fn write_value(&self, w: &mut EntryWriter<'_>) -> bool {
        w.f64((*self).into())
    }
}

impl PropValue for str {
    #[inline(always)]
    fn write_value(&self, w: &mut EntryWriter<'_>) -> bool {
        w.str(self)
    }
    #[inline(always)]
    fn short_form(&self) -> Option<Short<'_>> {
        (self.len() < 255).then_some(Short::Str(self))
    }
}

#[cfg(feature = "std")]
impl PropValue for alloc::string::String {
    #[inline(always)]
    fn write_value(&self, w: &mut EntryWriter<'_>) -> bool {
        w.str(self)
    }
}

impl PropValue for Static {
    #[inline(always)]
    fn write_value(&self, w: &mut EntryWriter<'_>) -> bool {
        w.str(self.0)
    }
    #[inline(always)]
    fn short_form(&self) -> Option<Short<'_>> {
        self.0.short_form()
    }
}

impl<T: PropValue> PropValue for Option<T> {
    #[inline(always)]
    fn write_value(&self, w: &mut EntryWriter<'_>) -> bool {
        match self {
            Some(v) => v.write_value(w),
            None => w.null(),
        }
    }
}

impl<T: PropValue> PropValue for [T] {
    fn write_value(&self, w: &mut EntryWriter<'_>) -> bool {
        write_array(w, self.iter())
    }
}

impl<T: PropValue, const N: usize> PropValue for [T; N] {
    fn write_value(&self, w: &mut EntryWriter<'_>) -> bool {
        write_array(w, self.iter())
    }
}

#[cfg(feature = "std")]
impl<T: PropValue> PropValue for alloc::vec::Vec<T> {
    fn write_value(&self, w: &mut EntryWriter<'_>) -> bool {
        write_array(w, self.iter())
    }
}

/// Writes an array of values, dropping (and counting) the elements that do not fit.
fn write_array<V: PropValue>(w: &mut EntryWriter<'_>, items: impl Iterator<Item = V>) -> bool {
    if !w.begin(false) {
        return w.null();
    }
    for item in items {
        let at = w.mark();
        let ok = item.write_value(w);
        w.end_member(at, ok);
    }
    w.end();
    true
}

impl PropValue for Value<'_> {
    fn write_value(&self, w: &mut EntryWriter<'_>) -> bool {
        match *self {
            Value::Null => w.null(),
            Value::Bool(b) => w.bool(b),
            Value::Int(i) => w.i64(i),
            Value::UInt(u) => w.u64(u),
            Value::Float(f) => w.f64(f),
            Value::Str(s) => w.str(s),
            Value::Array(items) => write_array(w, items.iter()),
            Value::Object(members) => {
                if !w.begin(true) {
                    return w.null();
                }
                for (key, value) in members {
                    if let Some(at) = w.key(key) {
                        let ok = value.write_value(w);
                        w.end_member(at, ok);
                    }
                }
                w.end();
                true
            }
        }
    }
}

/// One property of a builder: a key (any `AsRef<str>`: `&'static str`, `&str`, `String`), a
/// value of its own type, and which object it goes in.
#[derive(Debug, Clone, Copy)]
pub struct Prop<K, V> {
    scope: Scope,
    key: K,
    value: V,
}

/// A property entry whose kind is known only at run time: `.props([Entry::prop("a", 1),
/// Entry::set("plan", "pro")])`.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    scope: Scope,
    key: &'a str,
    value: Value<'a>,
}

impl<'a> Entry<'a> {
    /// A property.
    pub fn prop(key: &'a str, value: impl Into<Value<'a>>) -> Self {
        Entry { scope: Scope::Props, key, value: value.into() }
    }

    /// A property (the same as [`Entry::prop`]: every key is copied).
    pub fn prop_dyn(key: &'a str, value: impl Into<Value<'a>>) -> Self {
        Entry::prop(key, value)
    }

    /// A `$set` person property.
    pub fn set(key: &'a str, value: impl Into<Value<'a>>) -> Self {
        Entry { scope: Scope::Set, key, value: value.into() }
    }

    /// A `$set_once` person property.
    pub fn set_once(key: &'a str, value: impl Into<Value<'a>>) -> Self {
        Entry { scope: Scope::SetOnce, key, value: value.into() }
    }
}

/// Something `.props(iter)` can take an entry from: an [`Entry`], a `(key, value)` pair, or a
/// reference to one (so `&HashMap<String, i64>` and `&Vec<(String, i64)>` work as they are).
pub trait IntoEntry {
    /// Writes the entry.
    #[doc(hidden)]
    fn write_entry(&self, w: &mut EntryWriter<'_>);
}

#[inline(always)]
pub(crate) fn write_prop(
    w: &mut EntryWriter<'_>,
    scope: Scope,
    key: &str,
    value: &(impl PropValue + ?Sized),
) {
    // The common case: a short key and a scalar or short string, all in room: one check.
    if let Some(short) = value.short_form() {
        if w.short_entry(scope, key, short) {
            return;
        }
    }
    if let Some(at) = w.entry(scope, key) {
        let ok = value.write_value(w);
        w.end_entry(at, ok);
    }
}

impl IntoEntry for Entry<'_> {
    fn write_entry(&self, w: &mut EntryWriter<'_>) {
        write_prop(w, self.scope, self.key, &self.value);
    }
}

impl<K: AsRef<str>, V: PropValue> IntoEntry for (K, V) {
    fn write_entry(&self, w: &mut EntryWriter<'_>) {
        write_prop(w, Scope::Props, self.0.as_ref(), &self.1);
    }
}

impl<T: IntoEntry + ?Sized> IntoEntry for &T {
    fn write_entry(&self, w: &mut EntryWriter<'_>) {
        (**self).write_entry(w)
    }
}

/// Property entries from an iterator (see [`Event::props`]).
#[derive(Debug, Clone, Copy)]
pub struct Many<I>(I);

/// A property that is added only when a condition holds (see [`Event::prop_if`]).
#[derive(Debug, Clone, Copy)]
pub struct When<T>(Option<T>);

mod sealed {
    pub trait Props {}
    impl Props for () {}
    impl<P: Props, K, V> Props for (P, super::Prop<K, V>) {}
    impl<P: Props, I> Props for (P, super::Many<I>) {}
    impl<P: Props, T> Props for (P, super::When<T>) {}
    impl<P: Props> Props for (P, crate::exception::Exception<'_>) {}
    #[cfg(feature = "tracing")]
    impl Props for crate::tracing::Fields<'_, '_> {}
}

/// The properties of a builder: `()` or `(earlier properties, Prop)`, one type per shape, so
/// a chain of `.prop(...)` calls compiles to straight-line writes. Sealed. A function that
/// takes any event is `fn track(client: &Client, event: &Event<'_, impl Props>)`.
pub trait Props: sealed::Props {
    /// Writes the properties into an entry, oldest first.
    #[doc(hidden)]
    fn write(&self, w: &mut EntryWriter<'_>);

    /// The bytes the properties take when every one is short (a key under 255 bytes and a
    /// scalar or a string under 255 bytes), so capture can check the room once and write them
    /// in one pass ([`Props::write_short`]); `None` otherwise.
    #[doc(hidden)]
    fn short_bytes(&self) -> Option<usize>;

    /// Writes the properties at the start of `dst`, which holds exactly
    /// [`Props::short_bytes`] of them or more; the rest of `dst`.
    #[doc(hidden)]
    fn write_short<'d>(&self, dst: &'d mut [u8]) -> &'d mut [u8];
}

impl Props for () {
    #[inline(always)]
    fn write(&self, _: &mut EntryWriter<'_>) {}
    #[inline(always)]
    fn short_bytes(&self) -> Option<usize> {
        Some(0)
    }
    #[inline(always)]
    fn write_short<'d>(&self, dst: &'d mut [u8]) -> &'d mut [u8] {
        dst
    }
}

/// A property's bytes when its key and value are short.
#[inline(always)]
fn short_prop_bytes(key: &str, value: &(impl PropValue + ?Sized)) -> Option<usize> {
    let v = value.short_form()?;
    (key.len() < 255).then(|| crate::entry::short_entry_bytes(key, &v))
}

impl<P: Props, K: AsRef<str>, V: PropValue> Props for (P, Prop<K, V>) {
    #[inline(always)]
    fn write(&self, w: &mut EntryWriter<'_>) {
        self.0.write(w);
        if !w.is_abandoned() {
            write_prop(w, self.1.scope, self.1.key.as_ref(), &self.1.value);
        }
    }
    #[inline(always)]
    fn short_bytes(&self) -> Option<usize> {
        Some(self.0.short_bytes()? + short_prop_bytes(self.1.key.as_ref(), &self.1.value)?)
    }
    #[inline(always)]
    fn write_short<'d>(&self, dst: &'d mut [u8]) -> &'d mut [u8] {
        let dst = self.0.write_short(dst);
        let p = &self.1;
        match p.value.short_form() {
            Some(v) => crate::entry::short_entry_into(dst, p.scope, p.key.as_ref(), v),
            None => dst, // not reached: `short_bytes` was `Some`
        }
    }
}

impl<P: Props, K: AsRef<str>, V: PropValue> Props for (P, When<Prop<K, V>>) {
    #[inline(always)]
    fn write(&self, w: &mut EntryWriter<'_>) {
        self.0.write(w);
        if let Some(p) = &self.1 .0 {
            write_prop(w, p.scope, p.key.as_ref(), &p.value);
        }
    }
    #[inline(always)]
    fn short_bytes(&self) -> Option<usize> {
        let own = match &self.1 .0 {
            Some(p) => short_prop_bytes(p.key.as_ref(), &p.value)?,
            None => 0,
        };
        Some(self.0.short_bytes()? + own)
    }
    #[inline(always)]
    fn write_short<'d>(&self, dst: &'d mut [u8]) -> &'d mut [u8] {
        let dst = self.0.write_short(dst);
        match &self.1 .0 {
            Some(p) => match p.value.short_form() {
                Some(v) => crate::entry::short_entry_into(dst, p.scope, p.key.as_ref(), v),
                None => dst,
            },
            None => dst,
        }
    }
}

impl<P, I> Props for (P, Many<I>)
where
    P: Props,
    I: IntoIterator + Clone,
    I::Item: IntoEntry,
{
    fn write(&self, w: &mut EntryWriter<'_>) {
        self.0.write(w);
        for entry in self.1 .0.clone() {
            if w.is_abandoned() {
                return;
            }
            entry.write_entry(w);
        }
    }
    fn short_bytes(&self) -> Option<usize> {
        None // walked at capture by the careful writer
    }
    fn write_short<'d>(&self, dst: &'d mut [u8]) -> &'d mut [u8] {
        dst
    }
}

/// Who an event is about.
#[derive(Debug, Clone, Copy)]
enum Id<'a> {
    Str(&'a str),
    /// `${group_type}_{group_key}`, for `$groupidentify`.
    Group(&'a str, &'a str),
}

/// One analytics event, built at the call site and captured without allocation:
///
/// ```
/// use fasthog::Event;
/// let user = "2f1c8f5e-7a34-4a63-9d0b-0c5b8d1f2e3a";
/// let plan = String::from("pro");
/// let event = Event::new("order_filled", user)
///     .prop("qty", 3)
///     .prop("price", 101.25)
///     .prop("venue", "XNAS")
///     .prop("coupon", None::<&str>) // null
///     .set("plan", &plan);
/// assert_eq!(event.name(), "order_filled");
/// assert_eq!(event.distinct_id(), user);
/// ```
///
/// The builder holds references; capture copies the strings into the lane. An event may use
/// up to the lanes' entry limit (`max_event_bytes`, 32 KiB by default): past it strings are cut
/// on a UTF-8 boundary and properties dropped, and both are counted.
#[derive(Debug, Clone, Copy)]
#[must_use = "an event does nothing until it is captured"]
pub struct Event<'a, P = ()> {
    name: &'a str,
    distinct_id: Id<'a>,
    workspace_id: &'a str,
    time: Option<u64>,
    flags: u8,
    invalid: bool,
    props: P,
}

impl<'a> Event<'a> {
    /// An event named `name` about `distinct_id`.
    ///
    /// An empty or whitespace-only name or distinct_id makes the event invalid: capture
    /// rejects and counts it instead of sending a batch the server would refuse. So does the
    /// name `$performance_event`, which PostHog accepts and then discards.
    #[inline(always)]
    pub fn new(name: &'a str, distinct_id: &'a str) -> Self {
        Event::with(name, Id::Str(distinct_id))
    }

    /// The same as [`Event::new`] (names are copied at capture either way).
    #[inline]
    pub fn named(name: &'a str, distinct_id: &'a str) -> Self {
        Event::new(name, distinct_id)
    }

    /// The same as [`Event::new`], kept from 0.1.
    #[inline]
    pub fn new_static(name: &'static str, distinct_id: &'static str) -> Self {
        Event::new(name, distinct_id)
    }

    #[inline(always)]
    fn with(name: &'a str, distinct_id: Id<'a>) -> Self {
        Event { name, distinct_id, workspace_id: "", time: None, flags: 0, invalid: false, props: () }
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
    pub fn alias(distinct_id: &'a str, alias: &'a str) -> Event<'a, ((), Prop<&'static str, &'a str>)> {
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
    #[allow(clippy::type_complexity)] // the builder's shape, spelled out
    pub fn group_identify(
        group_type: &'a str,
        group_key: &'a str,
    ) -> Event<'a, (((), Prop<&'static str, &'a str>), Prop<&'static str, &'a str>)> {
        let blank = is_blank(group_type) || is_blank(group_key);
        Event::with("$groupidentify", Id::Group(group_type, group_key))
            .prop("$group_type", group_type)
            .prop("$group_key", group_key)
            .invalid_if(blank)
    }
}

impl<'a, P: Props> Event<'a, P> {
    #[inline(always)]
    pub(crate) fn and<Q>(self, f: impl FnOnce(P) -> Q) -> Event<'a, Q> {
        let Event { name, distinct_id, workspace_id, time, flags, invalid, props } = self;
        Event { name, distinct_id, workspace_id, time, flags, invalid, props: f(props) }
    }

    #[inline(always)]
    fn entry<K, V>(self, scope: Scope, key: K, value: V) -> Event<'a, (P, Prop<K, V>)> {
        self.and(|p| (p, Prop { scope, key, value }))
    }

    /// Adds a property: any key that is `AsRef<str>`, any [`PropValue`].
    #[inline(always)]
    pub fn prop<K: AsRef<str>, V: PropValue>(self, key: K, value: V) -> Event<'a, (P, Prop<K, V>)> {
        self.entry(Scope::Props, key, value)
    }

    /// The same as [`Event::prop`], kept from 0.1.
    #[inline]
    pub fn prop_dyn<K: AsRef<str>, V: PropValue>(self, key: K, value: V) -> Event<'a, (P, Prop<K, V>)> {
        self.prop(key, value)
    }

    /// Adds a property only when `condition` holds (the builder's type records every
    /// property, so `if c { e = e.prop(..) }` cannot change it; this can):
    ///
    /// ```
    /// let pro = true;
    /// let e = fasthog::Event::new("upgraded", "user-1").prop_if(pro, "plan", "pro");
    /// # let _ = e;
    /// ```
    #[inline(always)]
    pub fn prop_if<K: AsRef<str>, V: PropValue>(
        self,
        condition: bool,
        key: K,
        value: V,
    ) -> Event<'a, (P, When<Prop<K, V>>)> {
        self.and(|p| (p, When(condition.then_some(Prop { scope: Scope::Props, key, value }))))
    }

    /// Adds entries from an iterator, for events whose properties are known only at run
    /// time: `(key, value)` pairs, references to them, or [`Entry`] values. The iterator is
    /// cloned and walked at capture, so it should be cheap to clone (a reference to a map or
    /// a `Vec`, a slice iterator): cloning an owned `Vec` would allocate.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use fasthog::{Entry, Event};
    /// let fills = [("qty", 3i64), ("lots", 2)];
    /// let e = Event::new("order_filled", "user-1").props(fills);
    /// let counts: HashMap<String, i64> = HashMap::from([("a".into(), 1)]);
    /// let f = Event::new("counted", "user-1").props(&counts);
    /// let pairs: Vec<(String, i64)> = vec![("b".into(), 2)];
    /// let g = Event::new("paired", "user-1").props(&pairs);
    /// let entries = [Entry::prop("qty", 3), Entry::set("plan", "pro")];
    /// let h = Event::new("upgraded", "user-1").props(&entries);
    /// assert!(![e.is_invalid(), f.is_invalid(), g.is_invalid(), h.is_invalid()].contains(&true));
    /// ```
    #[inline]
    pub fn props<I>(self, entries: I) -> Event<'a, (P, Many<I>)>
    where
        (P, Many<I>): Props,
    {
        self.and(|p| (p, Many(entries)))
    }

    /// Adds a person property to `$set`.
    #[inline(always)]
    pub fn set<K: AsRef<str>, V: PropValue>(self, key: K, value: V) -> Event<'a, (P, Prop<K, V>)> {
        self.entry(Scope::Set, key, value)
    }

    /// Adds a person property to `$set_once`.
    #[inline(always)]
    pub fn set_once<K: AsRef<str>, V: PropValue>(self, key: K, value: V) -> Event<'a, (P, Prop<K, V>)> {
        self.entry(Scope::SetOnce, key, value)
    }

    /// Adds a group property to `$group_set` (for [`Event::group_identify`]).
    #[inline]
    pub fn group_set<K: AsRef<str>, V: PropValue>(self, key: K, value: V) -> Event<'a, (P, Prop<K, V>)> {
        self.entry(Scope::GroupSet, key, value)
    }

    /// Attaches the event to a group: `$groups: {group_type: group_key}`. An empty type or
    /// key is rejected at capture.
    ///
    /// ```
    /// let e = fasthog::Event::new("invoice_paid", "user-42").group("company", "acme");
    /// assert!(!e.is_invalid());
    /// ```
    #[inline]
    pub fn group<'b>(
        self,
        group_type: &'b str,
        group_key: &'b str,
    ) -> Event<'a, (P, Prop<&'b str, &'b str>)> {
        let blank = is_blank(group_type) || is_blank(group_key);
        self.entry(Scope::Groups, group_type, group_key).invalid_if(blank)
    }

    /// Links an anonymous id to the identified person (`$anon_distinct_id`).
    #[inline]
    pub fn anon_distinct_id<'b>(self, anon_id: &'b str) -> Event<'a, (P, Prop<&'static str, &'b str>)> {
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
        self.invalid |= invalid;
        self
    }

    /// The event name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The distinct_id as it will be sent (group ids assembled; not yet cut to
    /// [`MAX_DISTINCT_ID_CHARS`]).
    #[cfg(feature = "std")]
    pub fn distinct_id(&self) -> alloc::borrow::Cow<'a, str> {
        match self.distinct_id {
            Id::Str(s) => s.into(),
            Id::Group(t, k) => alloc::format!("${t}_{k}").into(),
        }
    }

    /// True when capture will reject the event: an empty or whitespace-only name or
    /// distinct_id (after its cut to [`MAX_DISTINCT_ID_CHARS`]), an empty group type or key,
    /// an empty alias, or the name `$performance_event`.
    #[inline(always)]
    pub fn is_invalid(&self) -> bool {
        self.invalid
            || is_blank(self.name)
            || self.name == "$performance_event"
            || matches!(self.distinct_id, Id::Str(s) if is_blank(cut_chars(s, MAX_DISTINCT_ID_CHARS)))
    }

    /// The hash sampling by distinct_id decides on ([`crate::distinct_id_hash`] of the
    /// distinct_id as sent: cut to [`MAX_DISTINCT_ID_CHARS`], or a group's `$type_key`).
    #[inline(always)]
    pub(crate) fn distinct_id_hash(&self) -> u64 {
        match self.distinct_id {
            Id::Str(s) => crate::distinct_id_hash(&[cut_chars(s, MAX_DISTINCT_ID_CHARS)]),
            Id::Group(t, k) => crate::distinct_id_hash(&["$", t, "_", k]),
        }
    }

    /// The time capture stamps: the event's own, or `tick()`.
    #[inline(always)]
    pub(crate) fn stamp(&self, tick: impl FnOnce() -> u64) -> (u8, u64) {
        match self.time {
            Some(nanos) => (self.flags | flag::UNIX_TIME, nanos),
            None => (self.flags, tick()),
        }
    }

    /// Writes the event's entry into `buf` (see [`EntryWriter`] for `last`); its length, or
    /// `None` when it needs a larger area.
    #[inline(always)]
    pub(crate) fn write_entry(&self, buf: &mut [u8], last: bool, (flags, time): (u8, u64)) -> Option<usize> {
        if let Id::Str(id) = self.distinct_id {
            // The common case: everything short and in room: one size pass, one check, one
            // sequential write.
            if let Some(len) = self.write_short(buf, flags, time, id) {
                return Some(len);
            }
        }
        let mut w = EntryWriter::new(buf, last);
        let written = match self.distinct_id {
            Id::Str(s) => header(&mut w, flags, time, self.name, s, self.workspace_id),
            Id::Group(t, k) => group_header(&mut w, flags, time, self.name, [t, k], self.workspace_id),
        };
        if !written {
            return None;
        }
        self.props.write(&mut w);
        w.finish()
    }
}

impl<P: Props> Event<'_, P> {
    /// Writes the whole entry in one pass when every part is short and it fits `buf`; its
    /// length, or `None` (nothing promised about `buf`) for the careful writer to do it.
    #[inline(always)]
    fn write_short(&self, buf: &mut [u8], flags: u8, time: u64, id: &str) -> Option<usize> {
        let kept = cut_chars(id, MAX_DISTINCT_ID_CHARS);
        let props = self.props.short_bytes()?;
        let head = crate::entry::short_header_bytes(self.name, kept, self.workspace_id)?;
        let total = head + props;
        let dst = buf.get_mut(..total)?;
        let cut = u32::from(kept.len() < id.len());
        let rest = crate::entry::short_header_into(dst, flags, time, cut, self.name, kept, self.workspace_id);
        let rest = self.props.write_short(rest);
        debug_assert!(rest.is_empty());
        Some(total)
    }
}

/// Writes an entry's header, the distinct_id cut to [`MAX_DISTINCT_ID_CHARS`] (counted).
#[inline(always)]
fn header(
    w: &mut EntryWriter<'_>,
    flags: u8,
    time: u64,
    name: &str,
    distinct_id: &str,
    workspace: &str,
) -> bool {
    let kept = cut_chars(distinct_id, MAX_DISTINCT_ID_CHARS);
    if kept.len() < distinct_id.len() {
        w.count_truncated();
    }
    w.header(flags, time, name, kept, workspace)
}

/// [`header`] for a `$groupidentify`: the distinct_id `${type}_{key}` assembled on the stack
/// (off the common path: the buffer is 800 bytes).
#[cold]
#[inline(never)]
fn group_header(
    w: &mut EntryWriter<'_>,
    flags: u8,
    time: u64,
    name: &str,
    [t, k]: [&str; 2],
    ws: &str,
) -> bool {
    let mut buf = [0u8; GROUP_ID_BYTES];
    let id = assemble(&mut buf, &["$", t, "_", k]);
    header(w, flags, time, name, id, ws)
}

/// Room for a group distinct_id: 200 characters of up to 4 bytes.
const GROUP_ID_BYTES: usize = 4 * MAX_DISTINCT_ID_CHARS;

/// The concatenation of `parts` in `buf`, cut on a char boundary to what fits.
fn assemble<'b>(buf: &'b mut [u8; GROUP_ID_BYTES], parts: &[&str]) -> &'b str {
    let mut len = 0;
    for part in parts {
        let part = cut_bytes(part, GROUP_ID_BYTES - len);
        buf[len..len + part.len()].copy_from_slice(part.as_bytes());
        len += part.len();
    }
    core::str::from_utf8(&buf[..len]).unwrap_or_default()
}

/// `s` cut to at most `max` bytes on a char boundary.
fn cut_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut n = max;
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

/// `s` cut to at most `max` characters (PostHog counts characters).
#[inline]
pub(crate) fn cut_chars(s: &str, max: usize) -> &str {
    // Within `max` bytes, it has at most `max` characters: the common case decides on length.
    if s.len() <= max {
        return s;
    }
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
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

/// The default entry limit of lanes, in lane bytes.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 32 * 1024;

#[cfg(feature = "std")]
impl<P: Props> Event<'_, P> {
    /// The entry this event makes within the default limit ([`DEFAULT_MAX_EVENT_BYTES`]).
    /// Without a timestamp of its own it is not stamped: the encoder stamps it with the clock's
    /// reading when it encodes it. Allocates: for tests and tools,
    /// not the hot path.
    pub fn to_entry(&self) -> crate::entry::OwnedEntry {
        let mut buf = alloc::vec![0u8; DEFAULT_MAX_EVENT_BYTES - 4];
        let (mut flags, time) = self.stamp(|| 0);
        if self.is_invalid() {
            flags |= flag::INVALID;
        }
        if self.time.is_none() {
            flags |= flag::NOW;
        }
        let len = self.write_entry(&mut buf, true, (flags, time)).unwrap_or(0);
        buf.truncate(len);
        crate::entry::OwnedEntry(buf)
    }

    /// Properties dropped to fit the default limit (see [`Event::to_entry`]).
    pub fn props_dropped(&self) -> u32 {
        self.to_entry().props_dropped()
    }

    /// Strings cut to fit the default limit (see [`Event::to_entry`]).
    pub fn truncated(&self) -> u32 {
        self.to_entry().truncated()
    }
}

#[cfg(feature = "std")]
impl<P: Props> crate::entry::AsEntry for Event<'_, P> {
    fn with_entry<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(&self.to_entry().0)
    }
}
