//! Error tracking: an error and its `source()` chain as PostHog's `$exception` event, written
//! into the lane while the chain is walked (no allocation without a backtrace), and with `std`
//! raw stack frames from a [`std::backtrace::Backtrace`] and a panic hook.
//!
//! The shape follows posthog-rs 0.30's `error-tracking` feature (`src/error_tracking.rs`) and
//! posthog-python's `capture_exception`: `$exception_list` holds one entry per error, the
//! outermost first, each `{type, value, mechanism: {type, handled, synthetic}}`; in a chain
//! of more than one, each mechanism also has `exception_id` (its position) and the sources
//! `parent_id` and the type `"chained"`. The stack trace, when given, goes on the first entry
//! as `{type: "raw", frames: [...]}`. `$exception_level` is always sent,
//! `$exception_fingerprint` only when set.

use core::error::Error;
use core::fmt::Display;

use crate::entry::{EntryWriter, Scope};
use crate::event::{Event, PropValue, Props};

/// The longest `source()` chain walked (a bound for cyclic or pathological chains), as in
/// posthog-rs.
pub const MAX_EXCEPTION_CHAIN: usize = 50;

/// The most stack frames sent per exception, as in posthog-rs.
#[cfg(feature = "std")]
pub const MAX_FRAMES: usize = 64;

/// What an exception is made from.
#[derive(Clone, Copy)]
enum Origin<'a> {
    /// An error (and its sources), with the outermost error's type name.
    Error(&'a (dyn Error + 'a), &'static str),
    /// A message with a type of its own (a panic).
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    Message(&'a str, &'a str),
}

/// An `$exception` event's properties: an error's chain, its level, whether it was handled,
/// optionally a fingerprint and (with `std`) a backtrace. Made by [`Event::exception`]; as a
/// [`PropValue`] it writes the `$exception_list` array alone.
#[derive(Clone, Copy)]
pub struct Exception<'a> {
    origin: Origin<'a>,
    level: &'a str,
    handled: bool,
    mechanism: &'a str,
    fingerprint: Option<&'a str>,
    #[cfg(feature = "std")]
    backtrace: Option<&'a std::backtrace::Backtrace>,
}

impl core::fmt::Debug for Exception<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("Exception");
        match self.origin {
            Origin::Error(e, t) => d.field("type", &t).field("value", &format_args!("{e}")),
            Origin::Message(m, t) => d.field("type", &t).field("value", &m),
        };
        d.field("level", &self.level).field("handled", &self.handled).finish_non_exhaustive()
    }
}

/// An error [`Exception::new`] takes: any sized `E: Error`, `dyn Error`, and
/// `dyn Error + Send + Sync`.
pub trait AsError {
    /// `self` as a `dyn Error`.
    fn as_error(&self) -> &(dyn Error + '_);
    /// The type name sent as the outermost entry's `type`.
    #[doc(hidden)]
    fn error_type_name(&self) -> &'static str;
}

impl<E: Error> AsError for E {
    fn as_error(&self) -> &(dyn Error + '_) {
        self
    }
    fn error_type_name(&self) -> &'static str {
        core::any::type_name::<E>()
    }
}

impl AsError for dyn Error + '_ {
    fn as_error(&self) -> &(dyn Error + '_) {
        self
    }
    fn error_type_name(&self) -> &'static str {
        "dyn core::error::Error"
    }
}

impl AsError for dyn Error + Send + Sync + '_ {
    fn as_error(&self) -> &(dyn Error + '_) {
        self
    }
    fn error_type_name(&self) -> &'static str {
        "dyn core::error::Error"
    }
}

impl<'a> Exception<'a> {
    /// The exception of `error` and its sources: handled, level `"error"`, mechanism
    /// `"generic"`, no fingerprint, no stack trace.
    pub fn new<E: AsError + ?Sized>(error: &'a E) -> Self {
        Exception::from_origin(Origin::Error(error.as_error(), error.error_type_name()))
    }

    /// A panic's exception: type `"Panic"`, unhandled, mechanism `"panic"`.
    #[cfg(feature = "std")]
    fn panic(message: &'a str) -> Self {
        let mut e = Exception::from_origin(Origin::Message(message, "Panic"));
        e.handled = false;
        e.mechanism = "panic";
        e
    }

    fn from_origin(origin: Origin<'a>) -> Self {
        Exception {
            origin,
            level: "error",
            handled: true,
            mechanism: "generic",
            fingerprint: None,
            #[cfg(feature = "std")]
            backtrace: None,
        }
    }
}

/// A readable type name: generic arguments, `&` and `dyn ` removed; a `dyn Error` (whose
/// concrete type is erased) is `"Error"`, as in posthog-rs.
fn simple_type_name(name: &str) -> &str {
    let t = name.trim_start_matches('&');
    let t = t.strip_prefix("dyn ").unwrap_or(t);
    let t = t.split_once('<').map_or(t, |(outer, _)| outer).trim_end();
    if t.is_empty() || t == "core::error::Error" || t == "std::error::Error" {
        "Error"
    } else {
        t
    }
}

/// The `type` of a source in the chain: sources are `&dyn Error`, whose concrete type cannot be
/// recovered on stable Rust, so it is `"Error"` (posthog-rs does the same).
pub const SOURCE_TYPE: &str = "Error";

impl<'a> Event<'a> {
    /// An `$exception` event for `error` and its `source()` chain (see [`Exception`]).
    /// Capture walks the chain and formats each error's `Display` straight into the lane: no
    /// allocation (unless a backtrace is attached with `.backtrace(..)`).
    ///
    /// ```
    /// #[derive(Debug)]
    /// struct Timeout;
    /// impl core::fmt::Display for Timeout {
    ///     fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    ///         f.write_str("upstream timed out")
    ///     }
    /// }
    /// impl core::error::Error for Timeout {}
    ///
    /// let e = fasthog::Event::exception(&Timeout, "user-1").level("warning").handled(true);
    /// assert_eq!(e.name(), "$exception");
    /// ```
    pub fn exception<E: AsError + ?Sized>(
        error: &'a E,
        distinct_id: &'a str,
    ) -> Event<'a, ((), Exception<'a>)> {
        Event::new("$exception", distinct_id).and(|p| (p, Exception::new(error)))
    }

    /// The `$exception` of a panic with this message (see [`install_panic_hook`]).
    #[cfg(feature = "std")]
    fn panic(message: &'a str, distinct_id: &'a str) -> Event<'a, ((), Exception<'a>)> {
        Event::new("$exception", distinct_id).and(|p| (p, Exception::panic(message)))
    }
}

impl<'a> Event<'a, ((), Exception<'a>)> {
    fn exc(self, f: impl FnOnce(&mut Exception<'a>)) -> Self {
        self.and(|((), mut e)| {
            f(&mut e);
            ((), e)
        })
    }

    /// Sets `$exception_level`: `"fatal"`, `"error"`, `"warning"`, `"log"`, `"info"` or
    /// `"debug"`. Defaults to `"error"`. (Call it before any `.prop(..)`.)
    pub fn level(self, level: &'a str) -> Self {
        self.exc(|e| e.level = level)
    }

    /// Sets `mechanism.handled` on every entry. Defaults to `true` (`false` for panics).
    pub fn handled(self, handled: bool) -> Self {
        self.exc(|e| e.handled = handled)
    }

    /// Sets `$exception_fingerprint`, which groups exceptions into one issue on the server in
    /// place of its own grouping. Defaults to none.
    pub fn fingerprint(self, fingerprint: &'a str) -> Self {
        self.exc(|e| e.fingerprint = Some(fingerprint))
    }

    /// Attaches a stack trace, sent as raw frames on the first entry of `$exception_list`
    /// when `backtrace` was captured (a disabled or unsupported one adds nothing). Writing the
    /// frames allocates (it reads the backtrace's text); without one, nothing does. Defaults
    /// to none.
    #[cfg(feature = "std")]
    pub fn backtrace(self, backtrace: &'a std::backtrace::Backtrace) -> Self {
        self.exc(|e| e.backtrace = Some(backtrace))
    }
}

/// Writes a top-level property unless the write is abandoned.
fn prop(w: &mut EntryWriter<'_>, key: &str, value: &(impl PropValue + ?Sized)) {
    if w.is_abandoned() {
        return;
    }
    if let Some(at) = w.entry(Scope::Props, key) {
        let ok = value.write_value(w);
        w.end_entry(at, ok);
    }
}

impl<P: Props> Props for (P, Exception<'_>) {
    fn write(&self, w: &mut EntryWriter<'_>) {
        self.0.write(w);
        let e = &self.1;
        prop(w, "$exception_list", e);
        prop(w, "$exception_level", e.level);
        if let Some(fingerprint) = e.fingerprint {
            prop(w, "$exception_fingerprint", fingerprint);
        }
    }
    fn short_bytes(&self) -> Option<usize> {
        None // the exception list nests: the careful writer writes it
    }
    fn write_short<'d>(&self, dst: &'d mut [u8]) -> &'d mut [u8] {
        dst
    }
}

/// A member of the object being written.
fn member(w: &mut EntryWriter<'_>, key: &str, write: impl FnOnce(&mut EntryWriter<'_>) -> bool) {
    if let Some(at) = w.key(key) {
        let ok = write(w);
        w.end_member(at, ok);
    }
}

/// One entry of `$exception_list`.
struct Item<'v> {
    ty: &'v str,
    value: &'v dyn Display,
    /// Position in a chain of more than one; `None` for a lone error.
    id: Option<usize>,
}

impl Exception<'_> {
    fn write_item(&self, w: &mut EntryWriter<'_>, item: Item<'_>) -> bool {
        if !w.begin(true) {
            return w.null();
        }
        member(w, "type", |w| w.str(item.ty));
        member(w, "value", |w| w.str_display(item.value, "Error"));
        member(w, "mechanism", |w| {
            if !w.begin(true) {
                return w.null();
            }
            let chained = matches!(item.id, Some(i) if i > 0);
            member(w, "type", |w| w.str(if chained { "chained" } else { self.mechanism }));
            member(w, "handled", |w| w.bool(self.handled));
            member(w, "synthetic", |w| w.bool(false));
            if let Some(id) = item.id {
                member(w, "exception_id", |w| w.u64(id as u64));
                if id > 0 {
                    member(w, "parent_id", |w| w.u64(id as u64 - 1));
                }
            }
            w.end();
            true
        });
        #[cfg(feature = "std")]
        if item.id.unwrap_or(0) == 0 {
            if let Some(bt) = self.backtrace {
                crate::exception::frames::write_stacktrace(w, bt);
            }
        }
        w.end();
        true
    }
}

impl PropValue for Exception<'_> {
    /// The `$exception_list` array.
    fn write_value(&self, w: &mut EntryWriter<'_>) -> bool {
        if !w.begin(false) {
            return w.null();
        }
        match self.origin {
            Origin::Message(message, ty) => {
                let at = w.mark();
                let ok = self.write_item(w, Item { ty, value: &message, id: None });
                w.end_member(at, ok);
            }
            Origin::Error(error, ty) => {
                let chained = error.source().is_some();
                let at = w.mark();
                let id = chained.then_some(0);
                let ok = self.write_item(w, Item { ty: simple_type_name(ty), value: &error, id });
                w.end_member(at, ok);
                let mut source = error.source();
                let mut i = 1;
                while let Some(err) = source {
                    if i >= MAX_EXCEPTION_CHAIN || w.is_abandoned() {
                        break;
                    }
                    let at = w.mark();
                    let ok = self.write_item(w, Item { ty: SOURCE_TYPE, value: &err, id: Some(i) });
                    w.end_member(at, ok);
                    source = err.source();
                    i += 1;
                }
            }
        }
        w.end();
        true
    }
}

#[cfg(feature = "std")]
mod frames;
#[cfg(feature = "std")]
pub use frames::{install_panic_hook, PANIC_FLUSH_TIMEOUT};
