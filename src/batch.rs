//! From records to PostHog `/batch/` JSON: enrichment, per-event and per-batch limits, and the
//! envelope. Pure: no I/O, no allocation (buffers are the caller's).

use crate::entry::{flag, tag, AsEntry, EntryView, Item, Scope, Token, ValueReader};
use crate::json::{TimestampCache, Writer};
use crate::uuid::UuidV7;
use crate::Clock;
use crate::Value;

/// `$lib` sent with every event.
pub const LIB: &str = "fasthog";
/// `$lib_version` sent with every event.
pub const LIB_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Go client's `event_schema_version` default.
pub const EVENT_SCHEMA_VERSION: u32 = 1;

/// Batch limits. Defaults: 64 events (the Go client's batch size), 1 MiB of JSON per request
/// (PostHog accepts 20 MiB), 900 KB per event (PostHog refuses events over 1 MB as it
/// re-encodes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Events per request.
    pub max_events: usize,
    /// Bytes per request body before compression, envelope included.
    pub max_batch_bytes: usize,
    /// Bytes of one event as PostHog counts them: its JSON plus one byte per `"` and `\`
    /// in it (the server escapes those once more when it re-encodes the event). A larger
    /// event is rejected alone and counted.
    pub max_event_bytes: usize,
}

impl Limits {
    /// The defaults.
    pub const DEFAULT: Limits = Limits { max_events: 64, max_batch_bytes: 1 << 20, max_event_bytes: 900_000 };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The enrichment the Go client applies to every event, plus fasthog's own properties.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Enrichment<'a> {
    /// `environment` property (the Go client's `Environment`).
    pub environment: &'a str,
    /// `event_schema_version` property.
    pub event_schema_version: u32,
    /// `$geoip_disable: true` on every event unless the event sets it: the server's IP is not
    /// the user's. Defaults to true.
    pub geoip_disable: bool,
    /// Super properties: added to every event at encode time (nothing on the capture path).
    /// An event's own property of the same name wins; enrichment keys win over both.
    pub super_properties: &'a [(&'a str, Value<'a>)],
}

impl Enrichment<'_> {
    /// Defaults: environment `""`, schema version [`EVENT_SCHEMA_VERSION`], geoip disabled, no
    /// super properties.
    pub const DEFAULT: Enrichment<'static> = Enrichment {
        environment: "",
        event_schema_version: EVENT_SCHEMA_VERSION,
        geoip_disable: true,
        super_properties: &[],
    };
}

impl Default for Enrichment<'_> {
    fn default() -> Self {
        Enrichment::DEFAULT
    }
}

/// What encoding one event noticed, for the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notes {
    /// Floats written as `null`.
    pub non_finite: usize,
    /// Strings cut at capture.
    pub truncated: usize,
    /// Entries dropped at capture.
    pub props_dropped: usize,
    /// The event is one PostHog refuses (a non-boolean `$cookieless_mode`) or bytes capture
    /// did not write: not added, counted as rejected.
    pub refused: bool,
}

/// Turns records into event JSON. Owns the UUID generator, so every event gets its uuid once,
/// here, and a retry resends the same bytes.
#[derive(Debug, Clone)]
pub struct Encoder<'a> {
    enrichment: Enrichment<'a>,
    uuids: UuidV7,
    timestamps: TimestampCache,
    /// `"event_schema_version":N,"environment":"..."`, rendered once (the enrichment is fixed
    /// for an encoder); `FRAGMENT_UNSET` until the first event.
    fragment: [u8; FRAGMENT_BYTES],
    fragment_len: usize,
}

const FRAGMENT_BYTES: usize = 192;
const FRAGMENT_UNSET: usize = usize::MAX;

impl<'a> Encoder<'a> {
    /// An encoder with these rules and a UUID seed (see [`UuidV7::new`]).
    pub const fn new(enrichment: Enrichment<'a>, uuid_seed: u64) -> Self {
        Encoder {
            enrichment,
            uuids: UuidV7::new(uuid_seed),
            timestamps: TimestampCache::new(),
            fragment: [0; FRAGMENT_BYTES],
            fragment_len: FRAGMENT_UNSET,
        }
    }

    /// The enrichment rules (fixed for the encoder's life: parts are rendered once).
    pub fn enrichment(&self) -> &Enrichment<'a> {
        &self.enrichment
    }

    /// Writes one event object. Returns what it noticed; check `w.overflowed()` for room.
    pub fn encode(
        &mut self,
        event: &(impl AsEntry + ?Sized),
        clock: &impl Clock,
        w: &mut Writer<'_>,
    ) -> Notes {
        event.with_entry(|bytes| match EntryView::parse(bytes) {
            Some(view) => self.encode_view(&view, clock, w),
            None => Notes { refused: true, ..Notes::default() },
        })
    }

    fn encode_view(&mut self, event: &EntryView<'_>, clock: &impl Clock, w: &mut Writer<'_>) -> Notes {
        let unix_nanos = match event.flags() {
            f if f & flag::UNIX_TIME != 0 => event.time(),
            f if f & flag::NOW != 0 => clock.unix_nanos(clock.tick()),
            _ => clock.unix_nanos(event.time()),
        };
        let mut notes = Notes {
            truncated: event.truncated() as usize,
            props_dropped: event.dropped() as usize,
            ..Notes::default()
        };
        w.raw(b"{\"uuid\":");
        w.uuid(&self.uuids.next(unix_nanos / 1_000_000));
        w.raw(b",\"event\":");
        w.string(event.name_bytes());
        w.raw(b",\"distinct_id\":");
        let distinct_id = event.distinct_id_bytes();
        w.string(distinct_id);
        w.raw(b",\"timestamp\":");
        self.timestamps.write(w, unix_nanos);
        w.raw(b",\"properties\":{");

        let mut props = Index::new(event);
        props.read();
        if props.refused() {
            notes.refused = true;
            return notes;
        }
        let scopes = props.scopes;
        let has = |scope: Scope| scopes & (1 << scope as u8) != 0;
        let supers = self.enrichment.super_properties;
        // A special key set by the user, in this event's properties or as a super property.
        let user_has =
            |i: usize| props.has_special(i) || supers.iter().any(|(k, _)| k.as_bytes() == SPECIAL_KEYS[i]);
        let workspace = event.workspace();
        let (has_set, has_set_once) = (has(Scope::Set), has(Scope::SetOnce));
        let (has_groups, has_group_set) = (has(Scope::Groups), has(Scope::GroupSet));
        let personless = event.flags() & flag::PERSONLESS != 0;
        // Keys the enrichment writes itself, so a user property of the same name is skipped
        // rather than sent twice (the Go client's map assignment: enrichment wins).
        let overridden = |key: &[u8]| -> bool {
            match key {
                b"event_schema_version" | b"environment" | b"$lib" | b"$lib_version" => true,
                b"workspace_id" => !workspace.is_empty(),
                b"$set" => has_set,
                b"$set_once" => has_set_once,
                b"$groups" => has_groups,
                b"$group_set" => has_group_set,
                b"$process_person_profile" => personless,
                _ => false,
            }
        };

        let mut first = true;
        let mut sep = |w: &mut Writer<'_>| {
            if !core::mem::take(&mut first) {
                w.byte(b',');
            }
        };
        for (i, (key, value)) in supers.iter().enumerate() {
            let shadowed_super = supers[i + 1..].iter().any(|(k, _)| k == key);
            if overridden(key.as_bytes()) || props.has(Scope::Props, key.as_bytes()) || shadowed_super {
                continue;
            }
            sep(w);
            w.string(key.as_bytes());
            w.byte(b':');
            write_value(*value, w, &mut notes);
        }
        props.for_each(Scope::Props, |item| {
            if !overridden(item.key) {
                sep(w);
                write_item(&item, w, &mut notes);
            }
        });
        if !workspace.is_empty() {
            sep(w);
            w.raw(b"\"workspace_id\":");
            w.string(workspace);
        }
        sep(w);
        if self.fragment_len == FRAGMENT_UNSET {
            let mut f = Writer::new(&mut self.fragment, 0);
            write_fixed_enrichment(&self.enrichment, &mut f);
            // An environment too long for the cache is written on every event instead.
            self.fragment_len = if f.overflowed() { 0 } else { f.len() };
        }
        if self.fragment_len > 0 {
            w.raw(&self.fragment[..self.fragment_len]);
        } else {
            write_fixed_enrichment(&self.enrichment, w);
        }
        if !user_has(0) {
            w.raw(b",\"is_demo\":false");
        }
        if !user_has(1) && !distinct_id.is_empty() && !distinct_id.contains(&b':') {
            w.raw(b",\"user_id\":");
            w.string(distinct_id);
        }
        w.raw(b",\"$lib\":\"");
        w.raw(LIB.as_bytes());
        w.raw(b"\",\"$lib_version\":\"");
        w.raw(LIB_VERSION.as_bytes());
        w.byte(b'"');
        if self.enrichment.geoip_disable && !user_has(2) {
            w.raw(b",\"$geoip_disable\":true");
        }
        if personless {
            w.raw(b",\"$process_person_profile\":false");
        }
        for (scope, name) in [
            (Scope::SetOnce, &b"$set_once"[..]),
            (Scope::Set, b"$set"),
            (Scope::Groups, b"$groups"),
            (Scope::GroupSet, b"$group_set"),
        ] {
            if !has(scope) {
                continue;
            }
            w.byte(b',');
            w.string(name);
            w.raw(b":{");
            let mut first = true;
            props.for_each(scope, |item| {
                if !core::mem::take(&mut first) {
                    w.byte(b',');
                }
                write_item(&item, w, &mut notes);
            });
            w.byte(b'}');
        }
        w.raw(b"}}");
        notes
    }
}

/// How many properties the encoder indexes on its stack; an event with more is read again
/// for each lookup (slower, same output).
const INDEXED: usize = 32;

/// An event's top-level properties, with their keys and scopes read once: one pass instead
/// of a scan per rule. (A `heapless::Vec`: an array of 32 items initialised for every event
/// cost ~150 instructions, more than indexing a typical event's four.)
struct Index<'e> {
    event: &'e EntryView<'e>,
    items: heapless::Vec<Item<'e>, INDEXED>,
    /// More properties than indexed.
    spilled: bool,
    /// Which scopes occur, a bit each.
    scopes: u8,
    /// Which of the keys the enrichment asks about occur among the properties, a bit each
    /// (see [`Index::has_special`]).
    specials: u8,
    /// A property PostHog refuses the whole batch for.
    refused: bool,
}

/// Property keys the enrichment looks up for every event, found in the index's one pass.
const SPECIAL_KEYS: [&[u8]; 3] = [b"is_demo", b"user_id", b"$geoip_disable"];

impl<'e> Index<'e> {
    /// An empty index of `event`: [`Index::read`] fills it in place (an index built and
    /// returned was moved, all 1.3 KB of it, by a `memcpy` per event).
    #[inline(always)]
    fn new(event: &'e EntryView<'e>) -> Self {
        Index { event, items: heapless::Vec::new(), spilled: false, scopes: 0, specials: 0, refused: false }
    }

    fn read(&mut self) {
        let index = self;
        for item in index.event.items() {
            index.scopes |= 1 << item.scope as u8;
            if item.scope == Scope::Props {
                // PostHog fails the whole batch (400) on a non-boolean `$cookieless_mode`.
                if item.key == b"$cookieless_mode"
                    && !matches!(item.value.first(), Some(&tag::TRUE | &tag::FALSE))
                {
                    index.refused = true;
                }
                for (bit, special) in SPECIAL_KEYS.iter().enumerate() {
                    if item.key == *special {
                        index.specials |= 1 << bit;
                    }
                }
            }
            if index.items.push(item).is_err() {
                index.spilled = true;
            }
        }
    }

    fn refused(&self) -> bool {
        self.refused
    }

    /// True when the event has a property (scope `Props`) named `SPECIAL_KEYS[i]`.
    fn has_special(&self, i: usize) -> bool {
        self.specials & (1 << i) != 0
    }

    /// True when the event has a property of `scope` named `key`.
    fn has(&self, scope: Scope, key: &[u8]) -> bool {
        if self.spilled {
            return self.event.items().any(|i| i.scope == scope && i.key == key);
        }
        self.items.iter().any(|i| i.scope == scope && i.key == key)
    }

    /// Calls `f` with each property of `scope` that no later property of the same scope and
    /// key shadows: like assigning to a map, the last value wins and the key is written once.
    fn for_each(&self, scope: Scope, mut f: impl FnMut(Item<'e>)) {
        if self.spilled {
            let mut rest = self.event.items();
            while let Some(item) = rest.next() {
                if item.scope == scope && !rest.clone().any(|j| j.scope == scope && j.key == item.key) {
                    f(item);
                }
            }
            return;
        }
        for (i, item) in self.items.iter().enumerate() {
            if item.scope != scope {
                continue;
            }
            let shadowed = self.items[i + 1..].iter().any(|j| j.scope == scope && j.key == item.key);
            if !shadowed {
                f(*item);
            }
        }
    }
}

/// The enrichment that is the same for every event of an encoder.
fn write_fixed_enrichment(e: &Enrichment<'_>, w: &mut Writer<'_>) {
    w.raw(b"\"event_schema_version\":");
    w.uint(e.event_schema_version.into());
    w.raw(b",\"environment\":");
    w.string(e.environment.as_bytes());
}

fn write_item(item: &Item<'_>, w: &mut Writer<'_>, notes: &mut Notes) {
    w.string(item.key);
    w.byte(b':');
    write_stored(item.value, w, notes);
}

/// Writes a value as capture stored it, walking nested arrays and objects without recursion.
fn write_stored(value: &[u8], w: &mut Writer<'_>, notes: &mut Notes) {
    // Most values are one scalar: no container bookkeeping for them.
    if !matches!(value.first(), Some(&(tag::ARRAY | tag::OBJECT))) {
        if let Some(token) = crate::entry::scalar(value) {
            write_scalar(token, w, notes);
        }
        return;
    }
    let mut tokens = ValueReader::new(value);
    // Bit `d`: the container at depth `d` has had a member, so the next one needs a comma.
    let mut started = 0u64;
    let mut depth = 0u32;
    let mut after_key = false;
    while let Some(Some(token)) = tokens.next() {
        let opens_member = !matches!(token, Token::End) && !after_key;
        if depth > 0 && opens_member {
            let bit = 1u64 << (depth - 1);
            if started & bit != 0 {
                w.byte(b',');
            }
            started |= bit;
        }
        after_key = false;
        match token {
            Token::Null | Token::Bool(_) | Token::I64(_) | Token::U64(_) | Token::F64(_) | Token::Str(_) => {
                write_scalar(token, w, notes)
            }
            Token::Key(k) => {
                w.string(k);
                w.byte(b':');
                after_key = true;
            }
            Token::Begin { object } => {
                w.byte(if object { b'{' } else { b'[' });
                started &= !(1u64 << depth);
                depth += 1;
            }
            Token::End => {
                depth -= 1;
                // The container's kind is the opening byte's: read it from the token stream's
                // bookkeeping instead of storing it twice.
                w.byte(if tokens.closed_object() { b'}' } else { b']' });
            }
        }
    }
}

/// Writes a scalar token (containers, keys and ends are [`write_stored`]'s).
#[inline]
fn write_scalar(token: Token<'_>, w: &mut Writer<'_>, notes: &mut Notes) {
    match token {
        Token::Null => w.raw(b"null"),
        Token::Bool(b) => w.bool(b),
        Token::I64(i) => w.int(i),
        Token::U64(u) => w.uint(u),
        Token::F64(f) => {
            if !w.float(f) {
                notes.non_finite += 1;
            }
        }
        Token::Str(s) => w.string(s),
        Token::Key(_) | Token::Begin { .. } | Token::End => {}
    }
}

fn write_value(value: Value<'_>, w: &mut Writer<'_>, notes: &mut Notes) {
    match value {
        Value::Null => w.raw(b"null"),
        Value::Bool(b) => w.bool(b),
        Value::Int(i) => w.int(i),
        Value::UInt(u) => w.uint(u),
        Value::Float(f) => {
            if !w.float(f) {
                notes.non_finite += 1;
            }
        }
        Value::Str(s) => w.string(s.as_bytes()),
        Value::Array(items) => {
            w.byte(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    w.byte(b',');
                }
                write_value(*v, w, notes);
            }
            w.byte(b']');
        }
        Value::Object(members) => {
            w.byte(b'{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    w.byte(b',');
                }
                w.string(k.as_bytes());
                w.byte(b':');
                write_value(*v, w, notes);
            }
            w.byte(b'}');
        }
    }
}

/// The request envelope around a batch's events. Its `Debug` does not show the key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The project API key.
    pub api_key: &'a str,
    /// `historical_migration`: route to PostHog's historical ingestion.
    pub historical_migration: bool,
}

impl core::fmt::Debug for Envelope<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Envelope")
            .field("api_key", &"(redacted)")
            .field("historical_migration", &self.historical_migration)
            .finish()
    }
}

/// Room for an envelope head: a 64-byte key (the most PostHog accepts) escaped, plus the rest.
pub const HEAD_CAPACITY: usize = 512;
/// The envelope's closing bytes.
pub const TAIL: &[u8] = b"]}";

impl Envelope<'_> {
    /// Writes `{"api_key":...,"historical_migration":...,"sent_at":"...","batch":[` and
    /// returns its length. `sent_at` is refreshed on every attempt so the server can correct
    /// clock skew.
    pub fn write_head(&self, sent_at_unix_nanos: u64, out: &mut [u8; HEAD_CAPACITY]) -> usize {
        let mut w = Writer::new(out, 0);
        w.raw(b"{\"api_key\":");
        w.string(self.api_key.as_bytes());
        w.raw(b",\"historical_migration\":");
        w.bool(self.historical_migration);
        w.raw(b",\"sent_at\":");
        w.timestamp(sent_at_unix_nanos);
        w.raw(b",\"batch\":[");
        debug_assert!(!w.overflowed(), "api keys are validated to at most 64 bytes");
        w.len()
    }

    /// Bytes the envelope adds to a request.
    pub fn overhead(&self) -> usize {
        self.write_head(0, &mut [0; HEAD_CAPACITY]) + TAIL.len()
    }
}

/// What [`Batch::push`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Encoded into the batch.
    Added(Notes),
    /// Not added: the batch is full (by count or bytes). Send it, then push again.
    Full,
    /// Not added, and never will be: its encoding is over the per-event limit (or larger
    /// than an empty batch can hold). Count it as rejected.
    TooLarge,
    /// Not added: the event is invalid (see [`crate::Event::is_invalid`]) or one PostHog
    /// refuses (see [`Notes::refused`]); the server would refuse the whole request. Count it
    /// as rejected.
    Invalid,
}

/// Encoded events of one request, comma-separated, with each event's end offset so a batch
/// can be split (on HTTP 413) without re-encoding. `B` holds bytes, `E` one `u32` per event.
#[derive(Debug)]
pub struct Batch<B, E> {
    bytes: B,
    ends: E,
    /// Bytes of encoded events in use.
    used: usize,
    count: usize,
    limits: Limits,
    /// Byte budget for events (limit minus envelope).
    budget: usize,
    /// The flusher's drain count when the first event was added: orders batches for `flush`.
    pub(crate) seq: usize,
}

impl<B: Default, E: Default> Default for Batch<B, E> {
    /// An empty batch with no room: a placeholder.
    fn default() -> Self {
        Batch {
            bytes: B::default(),
            ends: E::default(),
            used: 0,
            count: 0,
            limits: Limits::DEFAULT,
            budget: 0,
            seq: 0,
        }
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>, E: AsRef<[u32]> + AsMut<[u32]>> Batch<B, E> {
    /// An empty batch over these buffers. `envelope_overhead` is [`Envelope::overhead`]. The
    /// usable limits are those given, capped by the buffers' sizes.
    pub fn new(bytes: B, ends: E, limits: Limits, envelope_overhead: usize) -> Self {
        let budget = limits.max_batch_bytes.saturating_sub(envelope_overhead).min(bytes.as_ref().len());
        let limits = Limits { max_events: limits.max_events.min(ends.as_ref().len()), ..limits };
        Batch { bytes, ends, used: 0, count: 0, limits, budget, seq: 0 }
    }

    /// Events in the batch.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the batch has no events.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many more events the count limit allows.
    pub fn room(&self) -> usize {
        self.limits.max_events.min(self.ends.as_ref().len()).saturating_sub(self.count)
    }

    /// True when no further event can be added (count limit reached).
    pub fn is_full(&self) -> bool {
        self.count >= self.limits.max_events
    }

    /// Encoded bytes of all events.
    pub fn bytes_len(&self) -> usize {
        self.used
    }

    /// Empties the batch.
    pub fn clear(&mut self) {
        self.used = 0;
        self.count = 0;
    }

    /// Encodes `event` at the end of the batch, or says why not.
    pub fn push(
        &mut self,
        encoder: &mut Encoder<'_>,
        event: &(impl AsEntry + ?Sized),
        clock: &impl Clock,
    ) -> Pushed {
        event.with_entry(|bytes| self.push_entry(encoder, bytes, clock))
    }

    fn push_entry(&mut self, encoder: &mut Encoder<'_>, event: &[u8], clock: &impl Clock) -> Pushed {
        if event.first().is_none_or(|f| f & flag::INVALID != 0) {
            return Pushed::Invalid;
        }
        if self.is_full() {
            return Pushed::Full;
        }
        let start = if self.count == 0 { 0 } else { self.used + 1 };
        // Room for this event: what is left of the budget, and never over the event limit.
        let room = self.budget.saturating_sub(start).min(self.limits.max_event_bytes);
        let end_cap = (start + room).min(self.bytes.as_ref().len());
        let buf = &mut self.bytes.as_mut()[..end_cap];
        if self.count > 0 {
            if let Some(b) = buf.get_mut(self.used) {
                *b = b',';
            }
        }
        let mut w = Writer::new(buf, start);
        let notes = encoder.encode(event, clock, &mut w);
        if notes.refused {
            return Pushed::Invalid;
        }
        if w.overflowed() {
            // Too big for what is left. If it had the whole limit to itself, it never fits.
            let alone = self.count == 0 || room >= self.limits.max_event_bytes;
            return if alone { Pushed::TooLarge } else { Pushed::Full };
        }
        // PostHog measures an event re-encoded as a JSON string, where every `"` and `\` costs
        // one more byte. They can only matter when the event is over half the limit.
        let size = w.len() - start;
        if size * 2 > self.limits.max_event_bytes {
            let escapes = w.written()[start..].iter().filter(|&&b| b == b'"' || b == b'\\').count();
            if size + escapes > self.limits.max_event_bytes {
                return Pushed::TooLarge;
            }
        }
        self.used = w.len();
        self.ends.as_mut()[self.count] = self.used as u32;
        self.count += 1;
        Pushed::Added(notes)
    }

    /// The comma-separated JSON of events `range` (event indices).
    pub fn events(&self, range: core::ops::Range<usize>) -> &[u8] {
        if range.is_empty() {
            return &[];
        }
        let ends = self.ends.as_ref();
        let start = if range.start == 0 { 0 } else { ends[range.start - 1] as usize + 1 };
        &self.bytes.as_ref()[start..ends[range.end - 1] as usize]
    }
}

/// A set of batch buffers for the flusher: an array, a mutable slice, or (`std`) a `Vec`.
pub trait Batches {
    /// The byte buffer type of each batch.
    type Bytes: AsRef<[u8]> + AsMut<[u8]> + Default;
    /// The offset buffer type of each batch.
    type Ends: AsRef<[u32]> + AsMut<[u32]> + Default;
    /// The batches.
    fn batches(&mut self) -> &mut [Batch<Self::Bytes, Self::Ends>];
}

impl<B, E, const N: usize> Batches for [Batch<B, E>; N]
where
    B: AsRef<[u8]> + AsMut<[u8]> + Default,
    E: AsRef<[u32]> + AsMut<[u32]> + Default,
{
    type Bytes = B;
    type Ends = E;
    fn batches(&mut self) -> &mut [Batch<B, E>] {
        self
    }
}

impl<B, E> Batches for &mut [Batch<B, E>]
where
    B: AsRef<[u8]> + AsMut<[u8]> + Default,
    E: AsRef<[u32]> + AsMut<[u32]> + Default,
{
    type Bytes = B;
    type Ends = E;
    fn batches(&mut self) -> &mut [Batch<B, E>] {
        self
    }
}

#[cfg(feature = "std")]
impl<B, E> Batches for alloc::vec::Vec<Batch<B, E>>
where
    B: AsRef<[u8]> + AsMut<[u8]> + Default,
    E: AsRef<[u32]> + AsMut<[u32]> + Default,
{
    type Bytes = B;
    type Ends = E;
    fn batches(&mut self) -> &mut [Batch<B, E>] {
        self
    }
}
