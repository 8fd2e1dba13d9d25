//! Random events through capture and encoding. Every event either encodes to JSON that obeys
//! PostHog's capture rules, fits `max_event_bytes`, and says exactly what a model of the Go
//! client's enrichment says; or it is rejected for a documented reason (blank name or
//! distinct_id at capture; over the per-event limit at `Batch::push`). Batches built from
//! random events always fit `max_batch_bytes` and parse.

mod common;

use std::sync::LazyLock;

use common::*;
use fasthog::batch::{Batch, Encoder, Enrichment, Envelope, Limits, Notes, Pushed, LIB, LIB_VERSION};
use fasthog::ring::try_consumer;
use fasthog::{
    Captured, Entry, Event, FixedClock, HeapQueue, Static, Value as V, INLINE_BYTES, MAX_DISTINCT_ID,
    MAX_PROPS,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const NOW: u64 = 1_750_000_000_123_456_789;
const CLOCK: FixedClock = FixedClock(NOW);

static HUGE: LazyLock<&'static str> = LazyLock::new(|| "h".repeat(1_000_000).leak());
static QUOTES: LazyLock<&'static str> = LazyLock::new(|| "\"\\".repeat(150_000).leak());
static MID: LazyLock<&'static str> = LazyLock::new(|| "mé😀\"\u{1}".repeat(500).leak());
static LONG_ID: LazyLock<&'static str> = LazyLock::new(|| "ü".repeat(150).leak());

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
    /// The workspace. Wherever `.workspace()` is called, capture copies it right after the
    /// name, before any entry.
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

fn value() -> impl Strategy<Value = Val> {
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
        2 => prop::sample::select(vec!["e", "order_filled", "$pageview", "", " ", "ünï \"q\" \\"])
            .prop_map(Text::Static),
        1 => string().prop_map(Text::Copied),
    ];
    let distinct_id = prop_oneof![
        4 => string().prop_map(Text::Copied),
        1 => prop::sample::select(vec!["user-1", "anon:abc", "device:123", "", "  ", "ü"])
            .prop_map(Text::Static),
        1 => Just(()).prop_map(|_| Text::Static(*LONG_ID)),
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
    fn value(&self) -> V<'_> {
        match *self {
            Val::Null => V::Null,
            Val::Bool(b) => V::Bool(b),
            Val::Int(i) => V::Int(i),
            Val::UInt(u) => V::UInt(u),
            Val::Float(f) => V::Float(f),
            Val::Str(ref s) => V::Str(s),
            Val::Static(s) => Static(s).into(),
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

/// The record's documented behaviour, independently: copied strings share `INLINE_BYTES`,
/// each cut on a char boundary (the distinct_id at `MAX_DISTINCT_ID`); entries past
/// `MAX_PROPS` are dropped without copying anything.
struct Model {
    name: String,
    distinct_id: String,
    workspace: String,
    entries: Vec<(Scope, String, Val)>,
    truncated: usize,
    dropped: usize,
    used: usize,
}

impl Model {
    fn copy(&mut self, s: &str, limit: usize) -> String {
        let room = (INLINE_BYTES - self.used).min(limit);
        let mut len = s.len();
        if len > room {
            len = room;
            while !s.is_char_boundary(len) {
                len -= 1;
            }
            self.truncated += 1;
        }
        self.used += len;
        s[..len].to_owned()
    }

    fn new(spec: &Spec) -> Model {
        let mut m = Model {
            name: String::new(),
            distinct_id: String::new(),
            workspace: String::new(),
            entries: Vec::new(),
            truncated: 0,
            dropped: 0,
            used: 0,
        };
        m.distinct_id = match &spec.distinct_id {
            Text::Copied(d) => m.copy(d, MAX_DISTINCT_ID),
            Text::Static(d) if matches!(spec.name, Text::Copied(_)) => m.copy(d, MAX_DISTINCT_ID),
            // `new_static`: kept by reference (no inline bytes), but still cut and counted.
            Text::Static(d) => {
                let mut len = d.len().min(MAX_DISTINCT_ID);
                while !d.is_char_boundary(len) {
                    len -= 1;
                }
                if len < d.len() {
                    m.truncated += 1;
                }
                d[..len].to_owned()
            }
        };
        m.name = match &spec.name {
            Text::Copied(n) => m.copy(n, INLINE_BYTES),
            Text::Static(n) => n.to_string(),
        };
        // The workspace is copied right after the name, before any entry.
        if let Some(ws) = &spec.workspace {
            m.workspace = m.copy(ws, INLINE_BYTES);
        }
        for (scope, key, val) in spec.entries.iter() {
            if m.entries.len() == MAX_PROPS {
                m.dropped += 1;
                continue;
            }
            let key = match key {
                Text::Static(k) => k.to_string(),
                Text::Copied(k) => m.copy(k, INLINE_BYTES),
            };
            let val = match val {
                Val::Str(s) => Val::Str(m.copy(s, INLINE_BYTES)),
                other => other.clone(),
            };
            m.entries.push((*scope, key, val));
        }
        m
    }

    fn invalid(&self) -> bool {
        self.name.trim().is_empty() || self.distinct_id.trim().is_empty()
    }

    /// The properties the Go client would send (plus fasthog's `$lib`, `$lib_version`,
    /// `$geoip_disable`), and the floats written as `null`.
    fn properties(&self, environment: &str, schema: u32, geoip_disable: bool) -> (Value, usize) {
        let mut non_finite = 0;
        let mut json_of = |v: &Val| match *v {
            Val::Null => Value::Null,
            Val::Bool(b) => json!(b),
            Val::Int(i) => json!(i),
            Val::UInt(u) => json!(u),
            Val::Float(f) if f.is_finite() => json!(f),
            Val::Float(_) => {
                non_finite += 1;
                Value::Null
            }
            Val::Str(ref s) => json!(s),
            Val::Static(s) => json!(s),
        };
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
                p.insert(k.to_owned(), json_of(v));
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
                let m: Map<String, Value> = map.iter().map(|(k, v)| (k.to_string(), json_of(v))).collect();
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

/// Captures `event` through a queue and hands the drained record to `f` (None if rejected).
fn through_capture<R, P: fasthog::Props>(
    event: &Event<'_, P>,
    f: impl FnOnce(Option<&fasthog::Record>) -> R,
) -> R {
    let queue = HeapQueue::with_capacity(1, 2);
    let mut producer = HeapQueue::producer(&queue).expect("lane");
    match producer.capture(event, &CLOCK) {
        Captured::Rejected => f(None),
        Captured::Queued => {
            let mut consumer = try_consumer(&queue).expect("consumer");
            let mut f = Some(f);
            let mut out = None;
            assert_eq!(consumer.drain_with(usize::MAX, |e| out = Some(f.take().unwrap()(Some(e)))), 1);
            out.unwrap()
        }
        Captured::Dropped => panic!("an empty lane dropped an event"),
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
        // The builder holds the name and distinct_id as given; the record, as the model cuts them.
        prop_assert_eq!(event.name(), spec.name.as_str());
        prop_assert_eq!(event.distinct_id(), spec.distinct_id.as_str());
        let record = event.to_record();
        prop_assert_eq!(record.name(), model.name.as_str());
        prop_assert_eq!(record.distinct_id(), model.distinct_id.as_str());
        prop_assert_eq!(usize::from(record.truncated()), model.truncated);
        prop_assert_eq!(usize::from(record.props_dropped()), model.dropped);
        prop_assert_eq!(record.is_invalid(), model.invalid());
        prop_assert_eq!(usize::from(event.truncated()), model.truncated);
        prop_assert_eq!(usize::from(event.props_dropped()), model.dropped);
        prop_assert_eq!(event.is_invalid(), model.invalid());

        let enrichment = Enrichment { environment: &environment, event_schema_version: schema, geoip_disable, super_properties: &[] };
        let mut encoder = Encoder::new(enrichment, seed);
        let limits = Limits { max_event_bytes, ..Limits::DEFAULT };
        let envelope = Envelope { api_key: "phc_prop", historical_migration: false };
        through_capture(&event, |captured| {
            let Some(record) = captured else {
                // Rejected at capture: only for a blank name or distinct_id.
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
                    assert_eq!(notes, Notes { non_finite, truncated: model.truncated, props_dropped: model.dropped });
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
        ],
        workspace: Some(String::new()),
        timestamp: Some(0),
    };
    let model = Model::new(&spec);
    let (props, non_finite) = model.properties("prod", 3, true);
    assert_eq!(non_finite, 1);
    assert_eq!(
        props,
        json!({
            "k": null, "event_schema_version": 3, "environment": "prod", "is_demo": false,
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
    assert_eq!(notes.non_finite, 1);
    assert_eq!(rfc3339(NOW), "2025-06-15T15:06:40.123456Z");
}
