//! A `tracing` layer: selected `tracing` events become PostHog events, captured as
//! [`Client::capture`] captures (wait-free on the thread's lane, no allocation, no lock).
//!
//! ```text
//! tracing::info!(target: "posthog", event = "order_filled", distinct_id = user, qty = 3);
//! ```
//!
//! - **Selection**: an event whose target is the layer's target (`"posthog"` unless
//!   [`PostHogLayer::target`] says otherwise) becomes a PostHog event; with
//!   [`PostHogLayer::exceptions`], so does every ERROR-level event of another target, as an
//!   `$exception`. Any other event is left alone: the layer compares its target (and level)
//!   and returns.
//! - **Name**: the `event` field; without one, the message.
//! - **distinct_id**: the event's `distinct_id` field; else that of the innermost entered span
//!   that has one; else [`PostHogLayer::default_distinct_id`] (then sent personless); else
//!   none, and capture rejects the event (counted `rejected`).
//! - **Properties**: every other field, typed: `bool`, `i64`, `u64`, `f64` and `&str` as
//!   themselves, 128-bit integers as numbers when they fit 64 bits, anything else (`?x`,
//!   `%x`, errors, byte slices) as the string of its formatting, written through a
//!   `fmt::Write` adapter straight into the lane.
//!
//! Names and distinct_ids are cut to 200 characters (counted `truncated`, like
//! [`crate::MAX_DISTINCT_ID_CHARS`]). A field's value lives only while the layer visits it,
//! so the name and distinct_id are copied into stack buffers (the header needs them first)
//! while the other fields are written as properties into a stack buffer, in one visit; the
//! entry is then written in one pass. Exceptions and events with long parts take a second
//! visit of the fields that writes the properties straight into the lane.
//!
//! **Spans.** A span's `distinct_id` field is copied once, when the span is created (or when
//! `Span::record` sets it): that allocates (an `Arc<str>` in the span's extensions), on the
//! span path. On every span enter and exit the layer keeps a per-thread stack of the entered
//! spans' ids (a lookup of the span's extensions, under the registry's read lock, on enter),
//! so an event finds its span's distinct_id without a lock or an allocation (the first span a
//! thread enters registers that stack's thread-local destructor, which may allocate once, as
//! the first capture on a thread does for its lane). Spans nested deeper than
//! [`MAX_SPAN_DEPTH`], and events with an explicit `parent:`, are resolved through the
//! registry instead (read locks, still no allocation).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use core::cell::RefCell;
use core::error::Error;
use core::fmt::{self, Write as _};
use core::sync::atomic::{AtomicU64, Ordering};

use tracing_core::field::{Field, Visit};
use tracing_core::{span, Event as TracingEvent, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::entry::{EntryWriter, Scope};
use crate::event::{cut_chars, write_prop, Event, PropValue, Props, MAX_DISTINCT_ID_CHARS};
use crate::exception::Exception;
use crate::{Captured, Client};

/// The target that selects an event unless [`PostHogLayer::target`] names another.
pub const DEFAULT_TARGET: &str = "posthog";

/// How many entered spans per thread the layer tracks itself; deeper ones are looked up in
/// the registry (under its read locks).
pub const MAX_SPAN_DEPTH: usize = 64;

const EVENT_FIELD: &str = "event";
const DISTINCT_ID_FIELD: &str = "distinct_id";
const MESSAGE_FIELD: &str = "message";

/// Names are cut like distinct_ids.
const MAX_CHARS: usize = MAX_DISTINCT_ID_CHARS;

/// The first buffers tried for the name and the distinct_id: most fit, and a small buffer
/// costs nothing to initialise. A longer one is copied again into [`LONG`].
const SHORT: usize = 64;

/// Room for any 200-character string (4 bytes a character).
const LONG: usize = 4 * MAX_CHARS;

/// The stack buffer the one-visit path writes properties into (the typical event's take 57
/// bytes); more take the two-visit path, which writes them into the lane.
const SCRATCH: usize = 256;

static NEXT_LAYER: AtomicU64 = AtomicU64::new(1);

/// A `tracing_subscriber::Layer` that captures selected `tracing` events into a [`Client`]
/// (see the [module docs](self) for the conventions).
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let client = fasthog::Client::disabled();
/// let layer = fasthog::tracing::PostHogLayer::new(&client).exceptions(true);
/// let subscriber = tracing_subscriber::registry().with(layer);
/// # drop(subscriber);
/// ```
#[derive(Debug)]
pub struct PostHogLayer {
    client: Client,
    target: Box<str>,
    exceptions: bool,
    default_distinct_id: Option<Box<str>>,
    /// Tells this layer's frames apart in the per-thread span stack.
    id: u64,
}

impl PostHogLayer {
    /// A layer capturing into `client` (a clone of it: clones share one queue and flusher).
    pub fn new(client: &Client) -> Self {
        PostHogLayer {
            client: client.clone(),
            target: DEFAULT_TARGET.into(),
            exceptions: false,
            default_distinct_id: None,
            id: NEXT_LAYER.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The target whose events become PostHog events. Defaults to [`DEFAULT_TARGET`]
    /// (`"posthog"`).
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = target.into().into_boxed_str();
        self
    }

    /// Captures every ERROR-level event of another target as an `$exception`: its
    /// `$exception_list` from the first field recorded as an error (`error = &err as &dyn
    /// Error`, with its `source()` chain), else one entry whose `type` is the event's target
    /// and whose `value` is its message (`synthetic: true`). fasthog's own targets are never
    /// captured (an error about delivery would make another event to deliver). Defaults to
    /// `false`.
    pub fn exceptions(mut self, on: bool) -> Self {
        self.exceptions = on;
        self
    }

    /// The distinct_id of events that have none (no field, no span): such events are then
    /// sent personless (`$process_person_profile: false`), as about a service, not a person.
    /// Defaults to none: such events are rejected by capture (counted `rejected`).
    pub fn default_distinct_id(mut self, distinct_id: impl Into<String>) -> Self {
        self.default_distinct_id = Some(distinct_id.into().into_boxed_str());
        self
    }

    /// What the event becomes, if anything (the only work done for events not selected).
    #[inline(always)]
    fn kind(&self, meta: &tracing_core::Metadata<'_>) -> Option<Kind> {
        let target = meta.target();
        if target == &*self.target {
            Some(Kind::Named)
        } else if self.exceptions && *meta.level() == Level::ERROR && !is_own(target) {
            Some(Kind::Exception(meta.name()))
        } else {
            None
        }
    }

    /// Captures a [`Kind::Named`] event in one visit of its fields: the properties into a
    /// stack buffer while the name and distinct_id are copied, then the whole entry in one
    /// pass (as a direct capture of short parts is). `None` when the event needs the
    /// two-visit path: properties past the buffer, a name or distinct_id past `SHORT`
    /// bytes, or a long message that turned out not to be the name.
    #[inline(always)]
    fn capture_one_visit<S>(&self, event: &TracingEvent<'_>, ctx: &Context<'_, S>) -> Option<Captured>
    where
        S: Subscriber + for<'l> LookupSpan<'l>,
    {
        let mut scratch = [0u8; SCRATCH];
        let mut props = EntryWriter::new(&mut scratch, false);
        // A header of empty strings, so the writer's counts have their place.
        if !props.header(0, 0, "", "", "") {
            return None;
        }
        let start = props.mark();
        let mut visit = OneVisit::<SHORT> {
            name: Text::new(),
            id: Text::new(),
            named: false,
            message_named: false,
            redo: false,
            props,
        };
        event.record(&mut visit);
        let OneVisit { mut name, mut id, named, message_named, redo, props } = visit;
        let end = props.finish()?;
        if redo {
            return None;
        }
        let plan = Plan {
            kind: Kind::Named,
            target: event.metadata().target(),
            skip_event: named,
            skip_message: message_named,
            has_error: false,
        };
        self.finish(event, ctx, &mut name, &mut id, plan, scratch.get(start..end))
    }

    /// Captures the event in two visits of its fields (the first for the name and
    /// distinct_id, the second writing the properties into the lane), with name and
    /// distinct_id buffers of `N` bytes; `None` when one of them needs more.
    #[inline(always)]
    fn capture<S, const N: usize>(
        &self,
        event: &TracingEvent<'_>,
        kind: Kind,
        ctx: &Context<'_, S>,
    ) -> Option<Captured>
    where
        S: Subscriber + for<'l> LookupSpan<'l>,
    {
        let mut scan = Scan::<N>::new(kind);
        event.record(&mut scan);
        let plan = Plan {
            kind,
            target: event.metadata().target(),
            skip_event: scan.named && kind == Kind::Named,
            skip_message: scan.message_named,
            has_error: scan.has_error,
        };
        self.finish(event, ctx, &mut scan.name, &mut scan.id, plan, None)
    }

    /// The distinct_id from a span or the default when the event had none, then the
    /// capture; `None` when the name or distinct_id did not fit `N` bytes.
    #[inline(always)]
    fn finish<S, const N: usize>(
        &self,
        event: &TracingEvent<'_>,
        ctx: &Context<'_, S>,
        name: &mut Text<N>,
        id: &mut Text<N>,
        plan: Plan,
        written: Option<&[u8]>,
    ) -> Option<Captured>
    where
        S: Subscriber + for<'l> LookupSpan<'l>,
    {
        let mut personless = false;
        if !id.set {
            self.span_distinct_id(event, ctx, id);
        }
        if !id.set {
            if let Some(default) = &self.default_distinct_id {
                id.set_str(default);
                personless = true;
            }
        }
        if name.full || id.full {
            return None;
        }
        let cuts = u32::from(name.cut) + u32::from(id.cut);
        let name = match plan.kind {
            Kind::Named => name.as_str(),
            Kind::Exception(_) => "$exception",
        };
        let fields = Fields { event, plan, cuts, written };
        let e = Event::new(name, id.as_str()).and(|()| fields);
        let e = if personless { e.personless() } else { e };
        Some(self.client.capture(&e))
    }

    #[cold]
    #[inline(never)]
    fn capture_long<S>(&self, event: &TracingEvent<'_>, kind: Kind, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'l> LookupSpan<'l>,
    {
        let captured = self.capture::<S, LONG>(event, kind, ctx);
        debug_assert!(captured.is_some(), "any 200-character string fits");
    }

    /// The distinct_id of the innermost span around `event` that has one, into `out`.
    fn span_distinct_id<S, const N: usize>(
        &self,
        event: &TracingEvent<'_>,
        ctx: &Context<'_, S>,
        out: &mut Text<N>,
    ) where
        S: Subscriber + for<'l> LookupSpan<'l>,
    {
        if event.is_root() {
            return;
        }
        if event.is_contextual() {
            let found = SPANS
                .try_with(|stack| match stack.try_borrow() {
                    Ok(stack) => stack.find(self.id, |id| out.set_str(id)),
                    Err(_) => Lookup::Unknown,
                })
                .unwrap_or(Lookup::Unknown);
            if found != Lookup::Unknown {
                return;
            }
        }
        self.registry_distinct_id(event, ctx, out);
    }

    /// [`PostHogLayer::span_distinct_id`] through the registry: an explicit parent, or a
    /// stack deeper than this layer tracks.
    #[cold]
    #[inline(never)]
    fn registry_distinct_id<S, const N: usize>(
        &self,
        event: &TracingEvent<'_>,
        ctx: &Context<'_, S>,
        out: &mut Text<N>,
    ) where
        S: Subscriber + for<'l> LookupSpan<'l>,
    {
        for span in ctx.event_scope(event).into_iter().flatten() {
            if let Some(SpanDistinctId(id)) = span.extensions().get::<SpanDistinctId>() {
                out.set_str(id);
                return;
            }
        }
    }
}

/// fasthog's own log targets (bridged into `tracing` by `tracing-log`).
fn is_own(target: &str) -> bool {
    target.strip_prefix("fasthog").is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

impl<S> Layer<S> for PostHogLayer
where
    S: Subscriber + for<'l> LookupSpan<'l>,
{
    fn on_event(&self, event: &TracingEvent<'_>, ctx: Context<'_, S>) {
        let Some(kind) = self.kind(event.metadata()) else { return };
        if kind == Kind::Named && self.capture_one_visit(event, &ctx).is_some() {
            return;
        }
        if self.capture::<S, SHORT>(event, kind, &ctx).is_none() {
            self.capture_long(event, kind, &ctx);
        }
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        // Most spans have no distinct_id: decided on the callsite's field names.
        if attrs.metadata().fields().field(DISTINCT_ID_FIELD).is_none() {
            return;
        }
        let mut found = OwnedId(None);
        attrs.record(&mut found);
        if let (Some(distinct_id), Some(span)) = (found.0, ctx.span(id)) {
            span.extensions_mut().replace(SpanDistinctId(distinct_id));
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let mut found = OwnedId(None);
        values.record(&mut found);
        let (Some(distinct_id), Some(span)) = (found.0, ctx.span(id)) else { return };
        span.extensions_mut().replace(SpanDistinctId(distinct_id.clone()));
        // This thread's frames of the span see it at once (another thread's, at its next enter).
        let _ = SPANS.try_with(|stack| {
            if let Ok(mut stack) = stack.try_borrow_mut() {
                stack.update(self.id, id.into_u64(), &distinct_id);
            }
        });
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        let distinct_id =
            ctx.span(id).and_then(|span| span.extensions().get::<SpanDistinctId>().map(|d| d.0.clone()));
        let frame = Frame { layer: self.id, span: id.into_u64(), distinct_id };
        // (The stack is never borrowed across a call out of this module, so borrowing it
        // here does not fail; nor does it while the thread is alive.)
        let _ = SPANS.try_with(|stack| {
            if let Ok(mut stack) = stack.try_borrow_mut() {
                stack.push(frame);
            }
        });
    }

    fn on_exit(&self, id: &span::Id, _ctx: Context<'_, S>) {
        let _ = SPANS.try_with(|stack| {
            if let Ok(mut stack) = stack.try_borrow_mut() {
                stack.pop(self.id, id.into_u64());
            }
        });
    }
}

/// What a selected event becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The event its `event` field (or message) names.
    Named,
    /// An `$exception`; the event's callsite name is the value of last resort.
    Exception(&'static str),
}

/// A span's distinct_id, in its extensions.
struct SpanDistinctId(Arc<str>);

/// Collects a `distinct_id` field into an owned string (on the span path, where allocating
/// is allowed).
struct OwnedId(Option<Arc<str>>);

impl Visit for OwnedId {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == DISTINCT_ID_FIELD {
            self.0 = Some(value.into());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == DISTINCT_ID_FIELD {
            let mut s = String::new();
            let _ = write!(s, "{value:?}");
            self.0 = Some(s.into());
        }
    }
}

/// One entered span on this thread's stack.
struct Frame {
    layer: u64,
    span: u64,
    distinct_id: Option<Arc<str>>,
}

/// The spans this thread has entered, innermost last (for every layer: frames carry the
/// layer's id).
struct Stack {
    frames: [Option<Frame>; MAX_SPAN_DEPTH],
    len: usize,
    /// Spans entered past [`MAX_SPAN_DEPTH`] and not yet exited: while any are, lookups go to
    /// the registry.
    untracked: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    Found,
    NotFound,
    /// The stack cannot tell: ask the registry.
    Unknown,
}

impl Stack {
    const fn new() -> Self {
        Stack { frames: [const { None }; MAX_SPAN_DEPTH], len: 0, untracked: 0 }
    }

    fn push(&mut self, frame: Frame) {
        match self.frames.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(frame);
                self.len += 1;
            }
            None => self.untracked += 1,
        }
    }

    /// Removes the innermost frame of `span` (spans may exit out of order).
    fn pop(&mut self, layer: u64, span: u64) {
        let at = self.frames[..self.len]
            .iter()
            .rposition(|f| f.as_ref().is_some_and(|f| f.layer == layer && f.span == span));
        match at {
            Some(at) => {
                self.frames[at..self.len].rotate_left(1);
                self.len -= 1;
                self.frames[self.len] = None;
            }
            None => self.untracked = self.untracked.saturating_sub(1),
        }
    }

    fn update(&mut self, layer: u64, span: u64, distinct_id: &Arc<str>) {
        for f in self.frames[..self.len].iter_mut().flatten() {
            if f.layer == layer && f.span == span {
                f.distinct_id = Some(distinct_id.clone());
            }
        }
    }

    /// Calls `found` with the distinct_id of `layer`'s innermost span that has one.
    fn find(&self, layer: u64, found: impl FnOnce(&str)) -> Lookup {
        if self.untracked > 0 {
            return Lookup::Unknown;
        }
        let id = self.frames[..self.len]
            .iter()
            .rev()
            .flatten()
            .filter(|f| f.layer == layer)
            .find_map(|f| f.distinct_id.as_deref());
        match id {
            Some(id) => {
                found(id);
                Lookup::Found
            }
            None => Lookup::NotFound,
        }
    }
}

std::thread_local! {
    static SPANS: RefCell<Stack> = const { RefCell::new(Stack::new()) };
}

/// A name or distinct_id copied out of a field: at most 200 characters (a cut is noted, to
/// be counted), in `N` bytes (`full` when they were not enough). A `heapless::String`, so
/// reading it back needs no UTF-8 check (whole characters only go in): the check on the two
/// copies cost ~170 of the layer's ~1,470 instructions per event (now 1,291 in all).
struct Text<const N: usize> {
    text: heapless::String<N>,
    chars: usize,
    set: bool,
    cut: bool,
    full: bool,
}

impl<const N: usize> Text<N> {
    fn new() -> Self {
        Text { text: heapless::String::new(), chars: 0, set: false, cut: false, full: false }
    }

    fn clear(&mut self) {
        self.text.clear();
        (self.chars, self.set, self.cut, self.full) = (0, true, false, false);
    }

    /// The whole text at once: no character count kept (nothing is pushed after it).
    #[inline(always)]
    fn set_str(&mut self, s: &str) {
        self.clear();
        let kept = cut_chars(s, MAX_CHARS);
        match self.text.push_str(kept) {
            Ok(()) => self.cut = kept.len() < s.len(),
            Err(_) => self.full = true,
        }
    }

    fn set_debug(&mut self, value: &dyn fmt::Debug) {
        self.clear();
        let _ = write!(self, "{value:?}");
    }

    fn push(&mut self, s: &str) {
        if self.cut || self.full {
            return;
        }
        let kept = cut_chars(s, MAX_CHARS - self.chars);
        if self.text.push_str(kept).is_err() {
            self.full = true;
            return;
        }
        self.cut = kept.len() < s.len();
        if !self.cut {
            self.chars += if kept.is_ascii() { kept.len() } else { kept.chars().count() };
        }
    }

    fn as_str(&self) -> &str {
        self.text.as_str()
    }
}

impl<const N: usize> fmt::Write for Text<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s);
        Ok(())
    }
}

/// The first visit of an event's fields: its name and distinct_id, copied, and whether an
/// error field is there (for an `$exception`'s list).
struct Scan<const N: usize> {
    kind: Kind,
    name: Text<N>,
    id: Text<N>,
    /// The name came from the `event` field.
    named: bool,
    /// The name came from the message.
    message_named: bool,
    has_error: bool,
}

impl<const N: usize> Scan<N> {
    fn new(kind: Kind) -> Self {
        Scan {
            kind,
            name: Text::new(),
            id: Text::new(),
            named: false,
            message_named: false,
            has_error: false,
        }
    }

    /// Whether the message (seen before or after an `event` field) is the name.
    fn message_is_name(&self) -> bool {
        self.kind == Kind::Named && !self.named
    }
}

impl<const N: usize> Scan<N> {
    /// Copies the field into the name or the distinct_id when it is one of them (`set`
    /// writes the value into a `Text`).
    #[inline(always)]
    fn copy(&mut self, field: &Field, set: impl FnOnce(&mut Text<N>)) {
        match field.name() {
            EVENT_FIELD if self.kind == Kind::Named => {
                set(&mut self.name);
                (self.named, self.message_named) = (true, false);
            }
            DISTINCT_ID_FIELD => set(&mut self.id),
            MESSAGE_FIELD if self.message_is_name() => {
                set(&mut self.name);
                self.message_named = true;
            }
            _ => {}
        }
    }
}

impl<const N: usize> Visit for Scan<N> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.copy(field, |text| text.set_str(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.copy(field, |text| text.set_debug(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        self.has_error = true;
        self.record_debug(field, &format_args!("{value}"));
    }
}

/// How the second visit writes the fields.
#[derive(Debug, Clone, Copy)]
struct Plan {
    kind: Kind,
    target: &'static str,
    skip_event: bool,
    skip_message: bool,
    has_error: bool,
}

impl Plan {
    /// Fields that are not properties: the distinct_id, and what made the name.
    fn skips(&self, key: &str) -> bool {
        match key {
            DISTINCT_ID_FIELD => true,
            EVENT_FIELD => self.skip_event,
            MESSAGE_FIELD => self.skip_message,
            _ => false,
        }
    }
}

/// A `tracing` event's fields as an event's properties (see [`Props`]).
pub(crate) struct Fields<'e, 'v> {
    event: &'e TracingEvent<'v>,
    plan: Plan,
    /// The name and distinct_id cuts, counted into the entry.
    cuts: u32,
    /// The properties as entry bytes, when the one-visit path wrote them (without a cut or
    /// a drop: its writer gives up instead).
    written: Option<&'e [u8]>,
}

impl Props for Fields<'_, '_> {
    /// The careful writer's path (an area too small for the whole entry, a cut name or
    /// distinct_id): the fields visited again, each written into the entry.
    fn write(&self, w: &mut EntryWriter<'_>) {
        for _ in 0..self.cuts {
            w.count_truncated();
        }
        let mut visit = Writer { w, plan: self.plan, listed: false };
        self.event.record(&mut visit);
        if let Kind::Exception(callsite) = self.plan.kind {
            if !visit.listed {
                message_list(visit.w, self.plan.target, &callsite);
            }
            write_prop(visit.w, Scope::Props, "$exception_level", "error");
        }
    }
    fn short_bytes(&self) -> Option<usize> {
        // The one-pass writer counts no cuts of its own: with any, the careful writer runs.
        self.written.filter(|_| self.cuts == 0).map(<[u8]>::len)
    }
    fn write_short<'d>(&self, dst: &'d mut [u8]) -> &'d mut [u8] {
        let written = self.written.unwrap_or_default();
        let (head, rest) = dst.split_at_mut(written.len());
        head.copy_from_slice(written);
        rest
    }
}

/// The one visit of a [`Kind::Named`] event's fields: the name and distinct_id copied, every
/// other field written as a property into a stack buffer.
struct OneVisit<'s, const N: usize> {
    name: Text<N>,
    id: Text<N>,
    named: bool,
    message_named: bool,
    /// The two-visit path must redo it (a message over the name limit that is not the name).
    redo: bool,
    props: EntryWriter<'s>,
}

impl<const N: usize> OneVisit<'_, N> {
    #[inline(always)]
    fn prop(&mut self, field: &Field, value: &(impl PropValue + ?Sized)) {
        if !self.props.is_abandoned() {
            write_prop(&mut self.props, Scope::Props, field.name(), value);
        }
    }

    /// A number or `bool`: a property, unless it is the distinct_id (`distinct_id = 42`) or
    /// names the event.
    #[inline(always)]
    fn scalar<V: PropValue + fmt::Debug>(&mut self, field: &Field, value: V) {
        match field.name() {
            DISTINCT_ID_FIELD => self.id.set_debug(&value),
            EVENT_FIELD => self.event_field(|name| name.set_debug(&value)),
            MESSAGE_FIELD if !self.named => {
                self.name.set_debug(&value);
                self.message_named = true;
            }
            _ => self.prop(field, &value),
        }
    }

    /// The `event` field names the event. A message seen before it, taken as the name, is a
    /// property after all.
    fn event_field(&mut self, set: impl FnOnce(&mut Text<N>)) {
        if self.message_named {
            self.message_named = false;
            if self.name.cut || self.name.full {
                self.redo = true;
            } else if !self.props.is_abandoned() {
                write_prop(&mut self.props, Scope::Props, MESSAGE_FIELD, self.name.as_str());
            }
        }
        set(&mut self.name);
        self.named = true;
    }
}

impl<const N: usize> Visit for OneVisit<'_, N> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.scalar(field, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.scalar(field, value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.scalar(field, value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.scalar(field, value);
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.scalar(field, v),
            Err(_) => self.record_debug(field, &value),
        }
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        match u64::try_from(value) {
            Ok(v) => self.scalar(field, v),
            Err(_) => self.record_debug(field, &value),
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            EVENT_FIELD => self.event_field(|name| name.set_str(value)),
            DISTINCT_ID_FIELD => self.id.set_str(value),
            MESSAGE_FIELD if !self.named => {
                self.name.set_str(value);
                self.message_named = true;
            }
            _ => self.prop(field, value),
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            EVENT_FIELD => self.event_field(|name| name.set_debug(value)),
            DISTINCT_ID_FIELD => self.id.set_debug(value),
            MESSAGE_FIELD if !self.named => {
                self.name.set_debug(value);
                self.message_named = true;
            }
            _ => self.prop(field, &Shown(&Debugged(value))),
        }
    }
}

/// The second visit: each field written into the entry as it is visited.
struct Writer<'w, 'b> {
    w: &'w mut EntryWriter<'b>,
    plan: Plan,
    /// `$exception_list` is written.
    listed: bool,
}

impl Writer<'_, '_> {
    #[inline(always)]
    fn prop(&mut self, field: &Field, value: &(impl PropValue + ?Sized)) {
        let key = field.name();
        if !self.plan.skips(key) && !self.w.is_abandoned() {
            write_prop(self.w, Scope::Props, key, value);
        }
    }

    fn exception(&self) -> bool {
        matches!(self.plan.kind, Kind::Exception(_)) && !self.listed
    }
}

impl Visit for Writer<'_, '_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.prop(field, &value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.prop(field, &value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.prop(field, &value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.prop(field, &value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == MESSAGE_FIELD && self.exception() && !self.plan.has_error {
            self.listed = true;
            return message_list(self.w, self.plan.target, &value);
        }
        self.prop(field, value);
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.prop(field, &v),
            Err(_) => self.prop(field, &Shown(&value)),
        }
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        match u64::try_from(value) {
            Ok(v) => self.prop(field, &v),
            Err(_) => self.prop(field, &Shown(&value)),
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        if self.exception() {
            self.listed = true;
            if !self.w.is_abandoned() {
                write_prop(self.w, Scope::Props, "$exception_list", &Exception::new(value));
            }
            return;
        }
        self.prop(field, &Shown(&value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let shown = Debugged(value);
        if field.name() == MESSAGE_FIELD && self.exception() && !self.plan.has_error {
            self.listed = true;
            return message_list(self.w, self.plan.target, &shown);
        }
        self.prop(field, &Shown(&shown));
    }
}

/// A `Debug` shown through `Display` (for [`EntryWriter::str_display`]).
struct Debugged<'v>(&'v dyn fmt::Debug);

impl fmt::Display for Debugged<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

/// A value written as the string of its `Display`, formatted straight into the entry.
struct Shown<'v>(&'v dyn fmt::Display);

impl PropValue for Shown<'_> {
    fn write_value(&self, w: &mut EntryWriter<'_>) -> bool {
        w.str_display(self.0, "")
    }
}

/// `$exception_list` of one synthetic entry: an event's message (or, without one, its
/// callsite name), typed by its target.
fn message_list(w: &mut EntryWriter<'_>, ty: &str, value: &dyn fmt::Display) {
    if w.is_abandoned() {
        return;
    }
    if let Some(at) = w.entry(Scope::Props, "$exception_list") {
        let ok = list_of_one(w, ty, value);
        w.end_entry(at, ok);
    }
}

fn list_of_one(w: &mut EntryWriter<'_>, ty: &str, value: &dyn fmt::Display) -> bool {
    if !w.begin(false) {
        return w.null();
    }
    let at = w.mark();
    let ok = message_item(w, ty, value);
    w.end_member(at, ok);
    w.end();
    true
}

fn message_item(w: &mut EntryWriter<'_>, ty: &str, value: &dyn fmt::Display) -> bool {
    if !w.begin(true) {
        return w.null();
    }
    member(w, "type", |w| w.str(ty));
    member(w, "value", |w| w.str_display(value, "Error"));
    member(w, "mechanism", |w| {
        if !w.begin(true) {
            return w.null();
        }
        member(w, "type", |w| w.str("generic"));
        member(w, "handled", |w| w.bool(true));
        member(w, "synthetic", |w| w.bool(true));
        w.end();
        true
    });
    w.end();
    true
}

/// A member of the object being written.
fn member(w: &mut EntryWriter<'_>, key: &str, write: impl FnOnce(&mut EntryWriter<'_>) -> bool) {
    if let Some(at) = w.key(key) {
        let ok = write(w);
        w.end_member(at, ok);
    }
}
