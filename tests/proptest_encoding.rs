//! Random events through capture and encoding. Every event either encodes to JSON that obeys
//! PostHog's capture rules, fits `max_event_bytes`, and says exactly what a model of the Go
//! client's enrichment and of the entry's byte limit says; or it is rejected for a documented
//! reason (blank name or distinct_id, or the name `$performance_event`, at capture; over the
//! per-event limit at `Batch::push`). Values nest (arrays and objects, up to 4 deep). Batches
//! built from random events always fit `max_batch_bytes` and parse.

mod common;

use std::sync::LazyLock;

use common::*;
use fasthog::batch::{Batch, Encoder, Enrichment, Envelope, Limits, Notes, Pushed, LIB, LIB_VERSION};
use fasthog::ring::try_consumer;
use fasthog::{
    Captured, Entry, Event, FixedClock, HeapQueue, Static, Value as V, DEFAULT_MAX_EVENT_BYTES,
    MAX_DISTINCT_ID_CHARS,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const NOW: u64 = 1_750_000_000_123_456_789;
const CLOCK: FixedClock = FixedClock(NOW);

static HUGE: LazyLock<&'static str> = LazyLock::new(|| "h".repeat(1_000_000).leak());
static QUOTES: LazyLock<&'static str> = LazyLock::new(|| "\"\\".repeat(150_000).leak());
static MID: LazyLock<&'static str> = LazyLock::new(|| "mé😀\"\u{1}".repeat(500).leak());
static LONG_ID: LazyLock<&'static str> = LazyLock::new(|| "ü".repeat(150).leak());
static LONGER_ID: LazyLock<&'static str> = LazyLock::new(|| "😀".repeat(250).leak());

// ---- What to build ----------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Text {
    Static(&'static str),
    Copied(String),
}

impl Text {
    fn as_str(&self) -> &str {
        match self {
            Text::Static(s) => s,
            Text::Copied(s) => s,
        }
    }
}

#[derive(Debug, Clone)]
enum Val {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Static(&'static str),
    Array(Vec<Val>),
    /// Keys are distinct (PostHog's rules, and the checker, allow no duplicate keys).
    Object(Vec<(String, Val)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Props,
    Set,
    SetOnce,
}

#[derive(Debug, Clone)]
struct Spec {
    name: Text,
    distinct_id: Text,
    /// Entries in builder order; `Set`/`SetOnce` keys are always static.
    entries: Vec<(Scope, Text, Val)>,
    /// The workspace (written in the entry's header, before any property).
    workspace: Option<String>,
    timestamp: Option<u64>,
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9_:-]{0,24}",
        2 => any::<String>(),
        2 => "[ \t\n\u{a0}\u{3000}]{0,4}",
        2 => "[\u{0}-\u{1f}\"\\\\/é€😀\u{2028}a-c]{0,40}",
        1 => "[aé😀€]{100,320}",
    ]
}

fn static_key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "k",
        "plan",
        "user_id",
        "is_demo",
        "workspace_id",
        "environment",
        "event_schema_version",
        "$set",
        "$set_once",
        "$lib",
        "$lib_version",
        "$geoip_disable",
        "",
        "ké\"\\\u{1}",
        "k2",
    ])
}

fn static_value() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        8 => prop::sample::select(vec!["v", "", "XNAS", "é😀\u{0}\"\\", "anon:1"]),
        1 => Just(()).prop_map(|_| *MID),
        1 => Just(()).prop_map(|_| *HUGE),
        1 => Just(()).prop_map(|_| *QUOTES),
    ]
}

fn scalar() -> impl Strategy<Value = Val> {
    prop_oneof![
        Just(Val::Null),
        any::<bool>().prop_map(Val::Bool),
        any::<i64>().prop_map(Val::Int),
        any::<u64>().prop_map(Val::UInt),
        any::<f64>().prop_map(Val::Float),
        prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1e300, 5e-324])
            .prop_map(Val::Float),
        any::<f32>().prop_map(|f| Val::Float(f.into())),
        string().prop_map(Val::Str),
        static_value().prop_map(Val::Static),
    ]
}

/// A scalar, or arrays and objects of values nested up to 4 deep.
fn value() -> impl Strategy<Value = Val> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Val::Array),
            prop::collection::vec((string(), inner), 0..6).prop_map(|members| {
                let mut seen = std::collections::HashSet::new();
                Val::Object(members.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect())
            }),
        ]
    })
}

fn entry() -> impl Strategy<Value = (Scope, Text, Val)> {
    prop_oneof![
        3 => (static_key().prop_map(Text::Static), value()).prop_map(|(k, v)| (Scope::Props, k, v)),
        2 => (string().prop_map(Text::Copied), value()).prop_map(|(k, v)| (Scope::Props, k, v)),
        1 => (static_key(), value()).prop_map(|(k, v)| (Scope::Set, Text::Static(k), v)),
        1 => (static_key(), value()).prop_map(|(k, v)| (Scope::SetOnce, Text::Static(k), v)),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    let name = prop_oneof![
        2 => prop::sample::select(vec!["e", "order_filled", "$pageview", "", " ", "ünï \"q\" \\", "$performance_event"])
            .prop_map(Text::Static),
        1 => string().prop_map(Text::Copied),
    ];
    let distinct_id = prop_oneof![
        4 => string().prop_map(Text::Copied),
        1 => prop::sample::select(vec!["user-1", "anon:abc", "device:123", "", "  ", "ü"])
            .prop_map(Text::Static),
        1 => prop_oneof![Just(()).prop_map(|_| Text::Static(*LONG_ID)), Just(()).prop_map(|_| Text::Static(*LONGER_ID))],
    ];
    (
        name,
        distinct_id,
        prop::collection::vec(entry(), 0..40),
        prop::option::of(string()),
        prop::option::of(0u64..4_000_000_000_000_000_000),
    )
        .prop_map(|(name, distinct_id, entries, workspace, timestamp)| Spec {
            name,
            distinct_id,
            entries,
            workspace,
            timestamp,
        })
}

fn enrichment() -> impl Strategy<Value = (String, u32, bool, u64)> {
    (prop_oneof![Just(String::from("production")), string()], any::<u32>(), any::<bool>(), any::<u64>())
}

// ---- Building, and the model ------------------------------------------------------------

impl Val {
    /// The builder's value. Nested values borrow their members: leaked, as tests can afford.
    fn value(&self) -> V<'_> {
        match self {
            Val::Null => V::Null,
            Val::Bool(b) => V::Bool(*b),
            Val::Int(i) => V::Int(*i),
            Val::UInt(u) => V::UInt(*u),
            Val::Float(f) => V::Float(*f),
            Val::Str(s) => V::Str(s),
            Val::Static(s) => Static(s).into(),
            Val::Array(items) => V::array(Vec::leak(items.iter().map(Val::value).collect())),
            Val::Object(members) => {
                V::object(Vec::leak(members.iter().map(|(k, v)| (k.as_str(), v.value())).collect()))
            }
        }
    }
}

fn build(spec: &Spec) -> Event<'_, impl fasthog::Props + '_> {
    let e = match (&spec.name, &spec.distinct_id) {
        (Text::Static(n), Text::Static(d)) => Event::new_static(n, d),
        (Text::Static(n), Text::Copied(d)) => Event::new(n, d),
        (Text::Copied(n), Text::Copied(d)) => Event::named(n, d),
        (Text::Copied(n), Text::Static(d)) => Event::named(n, d),
    };
    let e = match &spec.workspace {
        Some(ws) => e.workspace(ws),
        None => e,
    };
    let entries: Vec<Entry<'_>> = spec
        .entries
        .iter()
        .map(|(scope, key, val)| match (scope, key) {
            (Scope::Props, Text::Static(k)) => Entry::prop(k, val.value()),
            (Scope::Props, Text::Copied(k)) => Entry::prop_dyn(k, val.value()),
            (Scope::Set, Text::Static(k)) => Entry::set(k, val.value()),
            (Scope::SetOnce, Text::Static(k)) => Entry::set_once(k, val.value()),
            _ => unreachable!("person property keys are static"),
        })
        .collect();
    let e = e.props(entries);
    match spec.timestamp {
        Some(t) => e.timestamp_unix_nanos(t),
        None => e,
    }
}

/// The payload bytes an entry may take with the default limit: `DEFAULT_MAX_EVENT_BYTES` of
/// lane space less the entry's 4-byte length word.
const ROOM: usize = DEFAULT_MAX_EVENT_BYTES - 4;
/// The header before the strings: flags, time, and the two counts.
const HEADER: usize = 1 + 8 + 4 + 4;

/// Bytes a string of `n` bytes takes: a 1-byte length under 255, else 5 bytes.
fn str_bytes(n: usize) -> usize {
    if n < 255 {
        1 + n
    } else {
        5 + n
    }
}

/// What the entry keeps, by its documented rules, independently of the writer: the distinct_id
/// cut at 200 characters; every string copied whole while the entry has room; past
/// `ROOM` bytes, a string is cut on a char boundary to what is left (counted), a key is never
/// cut (its property is dropped), and a property, array element or object member whose value
/// does not fit is dropped (counted), an array or object that does not fit becoming `null`
/// (counted) if one byte is left. Every open array or object keeps a byte for its end.
struct Model {
    name: String,
    distinct_id: String,
    workspace: String,
    entries: Vec<(Scope, String, Val)>,
    truncated: usize,
    dropped: usize,
    invalid: bool,
    /// Bytes used, and bytes kept for the ends of open containers (or the header's strings).
    used: usize,
    kept_back: usize,
}

impl Model {
    fn room(&self) -> usize {
        ROOM - self.used - self.kept_back
    }

    /// Copies a string (its length and bytes), cut to the room if it must be: as much as fits
    /// after a length of the width that room needs (5 bytes when over 255 are left).
    fn copy(&mut self, s: &str) -> Option<String> {
        let room = self.room();
        if str_bytes(s.len()) <= room {
            self.used += str_bytes(s.len());
            return Some(s.to_owned());
        }
        if room == 0 {
            return None;
        }
        let mut n = if room > 255 { (room - 5).min(s.len()) } else { (room - 1).min(254) };
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.truncated += 1;
        self.used += str_bytes(n);
        Some(s[..n].to_owned())
    }

    /// Takes `n` bytes if they fit.
    fn take(&mut self, n: usize) -> bool {
        let fits = n <= self.room();
        if fits {
            self.used += n;
        }
        fits
    }

    /// Writes a value (a tag, then its payload); what is kept, or None if it did not fit.
    fn value(&mut self, v: &Val) -> Option<Val> {
        match v {
            Val::Null | Val::Bool(_) => self.take(1).then(|| v.clone()),
            Val::Int(_) | Val::UInt(_) | Val::Float(_) => self.take(9).then(|| v.clone()),
            Val::Str(s) => self.string(s),
            Val::Static(s) => self.string(s),
            Val::Array(_) | Val::Object(_) if self.room() < 2 => {
                // No room for the container: `null` in its place, counted (or, without a
                // byte for that, dropped, as any value that does not fit).
                let null = self.take(1);
                if null {
                    self.dropped += 1;
                }
                null.then_some(Val::Null)
            }
            Val::Array(items) => {
                self.used += 1;
                self.kept_back += 1;
                let mut kept = Vec::new();
                for item in items {
                    let at = self.used;
                    match self.value(item) {
                        Some(k) => kept.push(k),
                        None => {
                            self.used = at;
                            self.dropped += 1;
                        }
                    }
                }
                self.kept_back -= 1;
                self.used += 1;
                Some(Val::Array(kept))
            }
            Val::Object(members) => {
                self.used += 1;
                self.kept_back += 1;
                let mut kept = Vec::new();
                for (key, member) in members {
                    // A tag, the key whole, and at least one byte of value.
                    if 1 + str_bytes(key.len()) + 1 > self.room() {
                        self.dropped += 1;
                        continue;
                    }
                    let at = self.used;
                    self.used += 1 + str_bytes(key.len());
                    match self.value(member) {
                        Some(k) => kept.push((key.clone(), k)),
                        None => {
                            self.used = at;
                            self.dropped += 1;
                        }
                    }
                }
                self.kept_back -= 1;
                self.used += 1;
                Some(Val::Object(kept))
            }
        }
    }

    fn string(&mut self, s: &str) -> Option<Val> {
        if self.room() < 2 {
            return None;
        }
        self.used += 1;
        let kept = self.copy(s).map(Val::Str);
        if kept.is_none() {
            self.used -= 1;
        }
        kept
    }

    fn new(spec: &Spec) -> Model {
        let mut m = Model {
            name: String::new(),
            distinct_id: String::new(),
            workspace: String::new(),
            entries: Vec::new(),
            truncated: 0,
            dropped: 0,
            invalid: false,
            used: HEADER,
            kept_back: 0,
        };
        // The distinct_id: its first 200 characters, counted when cut.
        let id = spec.distinct_id.as_str();
        let id = match id.char_indices().nth(MAX_DISTINCT_ID_CHARS) {
            Some((at, _)) => {
                m.truncated += 1;
                &id[..at]
            }
            None => id,
        };
        let ws = spec.workspace.as_deref().unwrap_or("");
        // The name is cut first, keeping room for the distinct_id and up to 256 bytes of the
        // workspace.
        m.kept_back = (str_bytes(id.len()) + str_bytes(ws.len()).min(256)).min(m.room() - 2);
        m.name = m.copy(spec.name.as_str()).expect("the header fits");
        m.kept_back = 0;
        m.distinct_id = m.copy(id).expect("the header fits");
        m.workspace = m.copy(ws).expect("the header fits");
        for (scope, key, val) in &spec.entries {
            let key = key.as_str();
            // A tag, the key whole, and at least one byte of value.
            if 1 + str_bytes(key.len()) + 1 > m.room() {
                m.dropped += 1;
                continue;
            }
            let at = m.used;
            m.used += 1 + str_bytes(key.len());
            match m.value(val) {
                Some(kept) => m.entries.push((*scope, key.to_owned(), kept)),
                None => {
                    m.used = at;
                    m.dropped += 1;
                }
            }
        }
        let blank = |s: &str| s.trim().is_empty();
        // On the name as given (capture decides before writing) and the id as sent.
        m.invalid =
            blank(spec.name.as_str()) || spec.name.as_str() == "$performance_event" || blank(&m.distinct_id);
        m
    }

    fn invalid(&self) -> bool {
        self.invalid
    }

    /// The properties the Go client would send (plus fasthog's `$lib`, `$lib_version`,
    /// `$geoip_disable`), and the floats written as `null`.
    fn properties(&self, environment: &str, schema: u32, geoip_disable: bool) -> (Value, usize) {
        fn json_of(v: &Val, non_finite: &mut usize) -> Value {
            match v {
                Val::Null => Value::Null,
                Val::Bool(b) => json!(b),
                Val::Int(i) => json!(i),
                Val::UInt(u) => json!(u),
                Val::Float(f) if f.is_finite() => json!(f),
                Val::Float(_) => {
                    *non_finite += 1;
                    Value::Null
                }
                Val::Str(s) => json!(s),
                Val::Static(s) => json!(s),
                Val::Array(items) => Value::Array(items.iter().map(|i| json_of(i, non_finite)).collect()),
                Val::Object(members) => {
                    Value::Object(members.iter().map(|(k, v)| (k.clone(), json_of(v, non_finite))).collect())
                }
            }
        }
        let mut non_finite = 0;
        let last = |scope: Scope| {
            // Last value per key, in first-seen key order.
            let mut out: Vec<(&str, &Val)> = Vec::new();
            for (s, k, v) in &self.entries {
                if *s == scope {
                    match out.iter_mut().find(|(key, _)| key == k) {
                        Some(slot) => slot.1 = v,
                        None => out.push((k, v)),
                    }
                }
            }
            out
        };
        let (set, set_once) = (last(Scope::Set), last(Scope::SetOnce));
        let mut p = Map::new();
        // The user's properties, minus those the enrichment replaces.
        for (k, v) in last(Scope::Props) {
            let replaced = match k {
                "event_schema_version" | "environment" | "$lib" | "$lib_version" => true,
                "workspace_id" => !self.workspace.is_empty(),
                "$set" => !set.is_empty(),
                "$set_once" => !set_once.is_empty(),
                _ => false,
            };
            if !replaced {
                p.insert(k.to_owned(), json_of(v, &mut non_finite));
            }
        }
        if !self.workspace.is_empty() {
            p.insert("workspace_id".into(), json!(self.workspace));
        }
        p.insert("event_schema_version".into(), json!(schema));
        p.insert("environment".into(), json!(environment));
        p.entry("is_demo").or_insert(json!(false));
        if !p.contains_key("user_id") && !self.distinct_id.is_empty() && !self.distinct_id.contains(':') {
            p.insert("user_id".into(), json!(self.distinct_id));
        }
        p.insert("$lib".into(), json!(LIB));
        p.insert("$lib_version".into(), json!(LIB_VERSION));
        if geoip_disable {
            p.entry("$geoip_disable").or_insert(json!(true));
        }
        for (key, map) in [("$set_once", &set_once), ("$set", &set)] {
            if !map.is_empty() {
                let m: Map<String, Value> =
                    map.iter().map(|(k, v)| (k.to_string(), json_of(v, &mut non_finite))).collect();
                p.insert(key.into(), Value::Object(m));
            }
        }
        (Value::Object(p), non_finite)
    }
}

/// RFC 3339 with microseconds, by counting days (independent of the crate's algorithm).
fn rfc3339(nanos: u64) -> String {
    let secs = nanos / 1_000_000_000;
    let mut days = secs / 86_400;
    let leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut year = 1970;
    while days >= if leap(year) { 366 } else { 365 } {
        days -= if leap(year) { 366 } else { 365 };
        year += 1;
    }
    let lengths = [31, if leap(year) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 0;
    while days >= lengths[month] {
        days -= lengths[month];
        month += 1;
    }
    let sod = secs % 86_400;
    format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        month + 1,
        days + 1,
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        nanos % 1_000_000_000 / 1000
    )
}

/// Bytes PostHog counts for an event: the JSON plus one per `"` and `\`.
fn counted(json: &[u8]) -> usize {
    json.len() + json.iter().filter(|&&b| b == b'"' || b == b'\\').count()
}

/// Captures `event` into lanes of the default entry limit and hands the drained entry to `f`
/// (None if rejected).
fn through_capture<R, P: fasthog::Props>(event: &Event<'_, P>, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    let queue = HeapQueue::with_blocks(1, 4, 2 * DEFAULT_MAX_EVENT_BYTES);
    let mut producer = HeapQueue::producer(&queue).expect("lane");
    match producer.capture(event, &CLOCK) {
        Captured::Rejected => f(None),
        Captured::Queued => {
            let mut consumer = try_consumer(&queue).expect("consumer");
            let mut f = Some(f);
            let mut out = None;
            let drained = consumer.drain(|e| {
                out = Some(f.take().unwrap()(Some(e)));
                true
            });
            assert_eq!(drained.events, 1);
            out.unwrap()
        }
        Captured::Dropped => panic!("an empty lane dropped an event"),
        other => panic!("{other:?}"),
    }
}

// ---- Properties -------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_events_encode_validly_or_are_rejected_for_a_reason(
        spec in spec(),
        (environment, schema, geoip_disable, seed) in enrichment(),
        max_event_bytes in prop::sample::select(vec![2_000usize, 50_000, 900_000]),
    ) {
        let model = Model::new(&spec);
        let event = build(&spec);
        // The builder holds the name and distinct_id as given; the entry, as the model cuts them.
        prop_assert_eq!(event.name(), spec.name.as_str());
        prop_assert_eq!(event.distinct_id(), spec.distinct_id.as_str());
        let entry = event.to_entry();
        prop_assert_eq!(entry.name(), model.name.as_str());
        prop_assert_eq!(entry.distinct_id(), model.distinct_id.as_str());
        prop_assert_eq!(entry.truncated() as usize, model.truncated);
        prop_assert_eq!(entry.props_dropped() as usize, model.dropped);
        prop_assert_eq!(entry.is_invalid(), model.invalid());
        prop_assert!(entry.lane_bytes() <= DEFAULT_MAX_EVENT_BYTES);
        prop_assert_eq!(event.truncated() as usize, model.truncated);
        prop_assert_eq!(event.props_dropped() as usize, model.dropped);
        prop_assert_eq!(event.is_invalid(), model.invalid());

        let enrichment = Enrichment { environment: &environment, event_schema_version: schema, geoip_disable, super_properties: &[] };
        let mut encoder = Encoder::new(enrichment, seed);
        let limits = Limits { max_event_bytes, ..Limits::DEFAULT };
        let envelope = Envelope { api_key: "phc_prop", historical_migration: false };
        through_capture(&event, |captured| {
            let Some(record) = captured else {
                // Rejected at capture: only for a blank name or distinct_id, or
                // `$performance_event`.
                assert!(model.invalid(), "rejected a valid event");
                return;
            };
            assert!(!model.invalid(), "queued an invalid event");
            let mut batch = Batch::new(vec![0u8; 1 << 20], vec![0u32; 4], limits, envelope.overhead());
            let (alone, _) = encode_one(&mut encoder.clone(), record, &CLOCK);
            let budget = limits.max_batch_bytes - envelope.overhead();
            let fits = alone.len() <= budget && counted(alone.as_bytes()) <= max_event_bytes;
            match batch.push(&mut encoder, record, &CLOCK) {
                Pushed::Added(notes) => {
                    assert!(fits, "added an event of {} bytes ({} counted)", alone.len(), counted(alone.as_bytes()));
                    let v = check_batch(&envelope, NOW, &batch, &limits);
                    let got = &v["batch"][0];
                    assert_eq!(got["event"], model.name.as_str());
                    assert_eq!(got["distinct_id"], model.distinct_id.as_str());
                    assert_eq!(got["timestamp"], rfc3339(spec.timestamp.unwrap_or(NOW)).as_str());
                    let (props, non_finite) = model.properties(&environment, schema, geoip_disable);
                    assert_json_eq(&got["properties"], &props);
                    let want = Notes { non_finite, truncated: model.truncated, props_dropped: model.dropped, refused: false };
                    assert_eq!(notes, want);
                    // The uuid's time is the event's millisecond.
                    let uuid = got["uuid"].as_str().unwrap().replace('-', "");
                    let ms = u64::from_str_radix(&uuid[..12], 16).unwrap();
                    assert_eq!(ms, spec.timestamp.unwrap_or(NOW) / 1_000_000);
                }
                Pushed::TooLarge => {
                    assert!(!fits, "refused an event of {} bytes ({} counted)", alone.len(), counted(alone.as_bytes()));
                    assert!(batch.is_empty());
                }
                Pushed::Full => panic!("an empty batch is never full"),
                Pushed::Invalid => panic!("a captured event is never invalid"),
            }
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 500, ..ProptestConfig::default() })]

    #[test]
    fn random_batches_fit_their_limits_and_parse(
        specs in prop::collection::vec(spec(), 1..30),
        max_events in 1usize..20,
        max_batch_bytes in prop_oneof![1_000usize..8_000, 8_000usize..1_100_000],
        max_event_bytes in prop::sample::select(vec![1_000usize, 50_000, 900_000]),
        seed in any::<u64>(),
    ) {
        let limits = Limits { max_events, max_batch_bytes, max_event_bytes };
        let envelope = Envelope { api_key: "phc_prop", historical_migration: false };
        let mut batch = Batch::new(vec![0u8; 1 << 20], vec![0u32; 32], limits, envelope.overhead());
        let mut encoder = Encoder::new(Enrichment::DEFAULT, seed);
        let budget = max_batch_bytes.saturating_sub(envelope.overhead()).min(1 << 20);
        let (mut valid, mut added, mut too_large, mut sent) = (0, 0, 0, 0);
        for spec in &specs {
            let event = build(spec);
            if event.is_invalid() {
                // Pushed straight onto the batch, it is refused and never encoded (a full
                // batch may say Full first: pushed again after a send, it is refused).
                let (len, bytes) = (batch.len(), batch.bytes_len());
                let pushed = batch.push(&mut encoder, &event, &CLOCK);
                prop_assert!(
                    pushed == Pushed::Invalid || (pushed == Pushed::Full && batch.is_full()),
                    "{:?}", pushed
                );
                prop_assert_eq!((batch.len(), batch.bytes_len()), (len, bytes));
                continue;
            }
            valid += 1;
            let (alone, _) = encode_one(&mut encoder.clone(), &event, &CLOCK);
            let fits = alone.len() <= budget && counted(alone.as_bytes()) <= max_event_bytes;
            let mut pushed = batch.push(&mut encoder, &event, &CLOCK);
            if pushed == Pushed::Full {
                prop_assert!(!batch.is_empty());
                let v = check_batch(&envelope, NOW, &batch, &limits);
                sent += v["batch"].as_array().unwrap().len();
                batch.clear();
                pushed = batch.push(&mut encoder, &event, &CLOCK);
            }
            match pushed {
                Pushed::Added(_) => {
                    prop_assert!(fits);
                    added += 1;
                }
                Pushed::TooLarge => {
                    prop_assert!(!fits, "refused {} bytes ({} counted)", alone.len(), counted(alone.as_bytes()));
                    too_large += 1;
                }
                Pushed::Full => prop_assert!(false, "full right after clear"),
                Pushed::Invalid => prop_assert!(false, "refused a valid event as invalid"),
            }
        }
        if !batch.is_empty() {
            let v = check_batch(&envelope, NOW, &batch, &limits);
            sent += v["batch"].as_array().unwrap().len();
        }
        prop_assert_eq!(added + too_large, valid);
        prop_assert_eq!(sent, added);
    }
}

#[test]
fn the_model_matches_a_hand_checked_case() {
    // Guards the model itself: a case worked out by hand.
    let spec = Spec {
        name: Text::Static("e"),
        distinct_id: Text::Copied("device:9".into()),
        entries: vec![
            (Scope::Props, Text::Static("k"), Val::Int(1)),
            (Scope::Props, Text::Copied("k".into()), Val::Float(f64::NAN)),
            (Scope::Props, Text::Static("environment"), Val::Str("mine".into())),
            (Scope::Set, Text::Static("plan"), Val::Static("pro")),
            (
                Scope::Props,
                Text::Copied("nested".into()),
                Val::Array(vec![
                    Val::Object(vec![(
                        "a".into(),
                        Val::Array(vec![Val::Float(f64::INFINITY), Val::Bool(true)]),
                    )]),
                    Val::Array(vec![]),
                ]),
            ),
        ],
        workspace: Some(String::new()),
        timestamp: Some(0),
    };
    let model = Model::new(&spec);
    let (props, non_finite) = model.properties("prod", 3, true);
    assert_eq!(non_finite, 2);
    assert_eq!(
        props,
        json!({
            "k": null, "nested": [{"a": [null, true]}, []], "event_schema_version": 3, "environment": "prod", "is_demo": false,
            "$lib": LIB, "$lib_version": LIB_VERSION, "$geoip_disable": true, "$set": {"plan": "pro"},
        })
    );
    let (text, notes) = encode_one(
        &mut Encoder::new(
            Enrichment {
                environment: "prod",
                event_schema_version: 3,
                geoip_disable: true,
                super_properties: &[],
            },
            1,
        ),
        &build(&spec),
        &CLOCK,
    );
    let v = check_event_json(&text);
    assert_json_eq(&v["properties"], &props);
    assert_eq!(v["timestamp"], rfc3339(0));
    assert_eq!(notes.non_finite, 2);
    assert_eq!((model.truncated, model.dropped), (0, 0));
    assert_eq!(rfc3339(NOW), "2025-06-15T15:06:40.123456Z");
}

#[test]
fn the_model_cuts_where_a_hand_count_of_the_format_says() {
    // Header 17 bytes, "e" 2, "u" 2, no workspace 1; the property's tag 1 and key "k" 2, the
    // string's tag 1: 26 of 32,764 bytes used, 32,738 left, so the string keeps 32,738 less a
    // 5-byte length. Nothing is left for the next property, dropped.
    let spec = Spec {
        name: Text::Static("e"),
        distinct_id: Text::Static("u"),
        entries: vec![
            (Scope::Props, Text::Static("k"), Val::Static(*HUGE)),
            (Scope::Props, Text::Static("a"), Val::Array(vec![])),
        ],
        workspace: None,
        timestamp: Some(0),
    };
    let model = Model::new(&spec);
    assert_eq!((model.truncated, model.dropped, model.entries.len()), (1, 1, 1));
    let Val::Str(kept) = &model.entries[0].2 else { panic!("a string") };
    assert_eq!(kept.len(), 32_733);
    let entry = build(&spec).to_entry();
    assert_eq!((entry.truncated(), entry.props_dropped()), (1, 1));
    let (text, _) = encode_one(&mut Encoder::new(Enrichment::DEFAULT, 1), &entry, &CLOCK);
    let v = check_event_json(&text);
    assert_eq!(v["properties"]["k"].as_str().map(str::len), Some(32_733));
    assert!(v["properties"].get("a").is_none());
}
