//! Bad input: blank names and ids, strings over their limits, too many properties, non-finite
//! floats, characters JSON must escape, and user properties that collide with the enrichment.

mod common;

use common::*;
use fasthog::batch::{Batch, Encoder, Enrichment, Envelope, Limits, Notes, Pushed};
use fasthog::ring::{try_consumer, HasLanes};
use fasthog::{
    AsRecord, Captured, Entry, Event, FixedClock, HeapQueue, Props, Static, StaticQueue, INLINE_BYTES,
    MAX_DISTINCT_ID, MAX_PROPS,
};
use serde_json::{json, Value};

const T: u64 = 1_700_000_000_000_000_000;
const CLOCK: FixedClock = FixedClock(T);

fn encoder() -> Encoder<'static> {
    Encoder::new(Enrichment { environment: "test", ..Enrichment::DEFAULT }, 7)
}

fn encode(event: &impl AsRecord) -> (Value, Notes) {
    let (text, notes) = encode_one(&mut encoder(), event, &CLOCK);
    (check_event_json(&text), notes)
}

/// 250 spaces then a letter: cut to MAX_DISTINCT_ID bytes, all blank. (Builders borrow their
/// strings, so it lives as long as the events.)
static LONG_BLANK: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| " ".repeat(250) + "x");

/// Every way of building an event with a blank name or distinct_id.
fn blank_events() -> Vec<(String, Event<'static>)> {
    let blanks = ["", " ", "\t", "\n\r", "   \u{a0}", "\u{3000}", "\u{2028}\u{85}"];
    let mut out = Vec::new();
    for b in blanks {
        out.push((format!("distinct_id {b:?} (new)"), Event::new("e", b)));
        out.push((format!("distinct_id {b:?} (named)"), Event::named("e", b)));
        out.push((format!("name {b:?} (named)"), Event::named(b, "user-1")));
    }
    out.push(("empty static name".into(), Event::new("", "user-1")));
    out.push(("blank static name".into(), Event::new(" \t ", "user-1")));
    out.push(("empty static distinct_id".into(), Event::new_static("e", "")));
    out.push(("blank static distinct_id".into(), Event::new_static("e", "\u{2003}")));
    out.push(("both empty".into(), Event::new_static("", "")));
    out.push(("distinct_id blank after its cut".into(), Event::new("e", &LONG_BLANK)));
    out
}

#[test]
fn blank_names_and_distinct_ids_are_invalid() {
    for (what, event) in blank_events() {
        assert!(event.is_invalid(), "{what}");
        // The record it makes says so too.
        let record = event.to_record();
        assert!(record.is_invalid(), "{what}");
        // Agrees with the server's own test (a trimmed distinct_id must be non-empty), on the
        // name and distinct_id as they would be sent: the record's, cut to their limits (the
        // builder's `distinct_id()` is the id before its cut).
        assert!(record.name().trim().is_empty() || record.distinct_id().trim().is_empty(), "{what}");
    }
    // Not blank: anything with a non-whitespace character, including invisible ones that are
    // not Unicode White_Space.
    for did in ["x", " x ", "\u{200b}", "\u{0}", ":", "anon:abc", "😀"] {
        let event = Event::new("e", did);
        assert!(!event.is_invalid(), "{did:?}");
        assert_eq!(event.distinct_id(), did);
        let (v, _) = encode(&event);
        assert_eq!(v["distinct_id"], did);
    }
}

#[test]
fn capture_rejects_invalid_events_counts_them_and_never_encodes_them() {
    let queue = HeapQueue::with_capacity(2, 16);
    let mut producer = HeapQueue::producer(&queue).expect("a free lane");
    let bad = blank_events();
    for (what, event) in &bad {
        assert_eq!(producer.capture(event, &CLOCK), Captured::Rejected, "{what}");
    }
    assert_eq!(producer.capture(&Event::new("ok", "user-1"), &CLOCK), Captured::Queued);
    for (what, event) in &bad {
        assert_eq!(queue.capture_shared(event, &CLOCK), Captured::Rejected, "{what}");
    }
    assert_eq!(queue.capture_shared(&Event::new("ok_shared", "user-2"), &CLOCK), Captured::Queued);

    let n = bad.len() as u64;
    let totals = queue.lanes().totals();
    assert_eq!(totals.rejected as u64, 2 * n);
    assert_eq!(queue.lanes().shared().rejected() as u64, n, "the shared ring's own counter");
    assert_eq!(totals.pushed, 2);
    let stats = queue.stats();
    assert_eq!(stats.rejected, 2 * n);
    assert_eq!(stats.captured, 2 * n + 2);
    assert_eq!(stats.pending, 2);

    // Only the two valid events reach the consumer, and they encode to valid JSON.
    let mut consumer = try_consumer(&queue).expect("one consumer");
    let mut names = Vec::new();
    let mut enc = encoder();
    let drained = consumer.drain_with(usize::MAX, |event| {
        assert!(!event.is_invalid());
        let (text, _) = encode_one(&mut enc, event, &CLOCK);
        names.push(check_event_json(&text)["event"].as_str().unwrap().to_owned());
    });
    assert_eq!(drained, 2);
    names.sort();
    assert_eq!(names, ["ok", "ok_shared"]);
}

#[test]
fn batch_push_refuses_invalid_events_and_never_encodes_them() {
    // Events pushed straight onto a batch (not through capture) are checked there too: an
    // invalid one would make the server refuse the whole request.
    let envelope = Envelope { api_key: "phc_k", historical_migration: false };
    let limits = Limits::DEFAULT;
    let mut batch = Batch::new(vec![0u8; 1 << 16], vec![0u32; 8], limits, envelope.overhead());
    let mut enc = encoder();
    // Into an empty batch: it stays empty.
    assert_eq!(batch.push(&mut enc, &Event::new("", "u"), &CLOCK), Pushed::Invalid);
    assert!(batch.is_empty());
    assert_eq!(batch.bytes_len(), 0);
    assert!(matches!(batch.push(&mut enc, &Event::new("ok", "user-1"), &CLOCK), Pushed::Added(_)));
    let before = batch.events(0..1).to_vec();
    /// Pushes the event, and the record it makes: both refused, the batch untouched.
    fn refused<P: Props>(
        what: &str,
        event: &Event<'_, P>,
        batch: &mut Batch<Vec<u8>, Vec<u32>>,
        enc: &mut Encoder<'_>,
        before: &[u8],
    ) {
        assert!(event.is_invalid(), "{what}");
        assert_eq!(batch.push(enc, event, &CLOCK), Pushed::Invalid, "{what}");
        assert_eq!(batch.push(enc, &event.to_record(), &CLOCK), Pushed::Invalid, "{what} (record)");
        assert_eq!(batch.len(), 1, "{what}: never encoded");
        assert_eq!(batch.bytes_len(), before.len(), "{what}: never encoded");
        assert_eq!(batch.events(0..1), before, "{what}");
    }
    for (what, event) in blank_events() {
        refused(&what, &event, &mut batch, &mut enc, &before);
    }
    refused("group type empty", &Event::new("e", "u").group("", "acme"), &mut batch, &mut enc, &before);
    refused("group key blank", &Event::new("e", "u").group("company", " "), &mut batch, &mut enc, &before);
    refused("alias empty", &Event::alias("user-1", ""), &mut batch, &mut enc, &before);
    refused("group_identify key empty", &Event::group_identify("company", ""), &mut batch, &mut enc, &before);
    // The batch goes on: the next valid event is added and the request is valid.
    assert!(matches!(batch.push(&mut enc, &Event::new("ok_2", "user-2"), &CLOCK), Pushed::Added(_)));
    let v = check_batch(&envelope, T, &batch, &limits);
    let names: Vec<&str> =
        v["batch"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["ok", "ok_2"]);
}

#[test]
fn static_queue_rejects_invalid_events_too() {
    static QUEUE: StaticQueue<1, 8> = StaticQueue::new();
    let mut producer = StaticQueue::producer(&QUEUE).expect("lane");
    assert_eq!(producer.capture(&Event::new("", "u"), &CLOCK), Captured::Rejected);
    assert_eq!(producer.capture(&Event::new("e", " "), &CLOCK), Captured::Rejected);
    assert_eq!(QUEUE.capture_shared(&Event::new_static("e", ""), &CLOCK), Captured::Rejected);
    assert_eq!(QUEUE.stats().rejected, 3);
    assert_eq!(QUEUE.queued(), 0);
}

/// True if `cut` is a prefix of `full` ending on one of `full`'s char boundaries.
fn is_char_prefix(cut: &str, full: &str) -> bool {
    full.starts_with(cut) && full.is_char_boundary(cut.len())
}

#[test]
fn distinct_id_is_cut_on_a_utf8_boundary() {
    // "a" then 2-byte chars: byte 200 falls inside a char, so the cut is at 199.
    let long = format!("a{}", "é".repeat(150));
    assert!(!long.is_char_boundary(MAX_DISTINCT_ID));
    let event = Event::new("e", &long).timestamp_unix_nanos(T);
    // The builder holds the id as given; the record holds it cut.
    assert_eq!(event.distinct_id(), long.as_str());
    let record = event.to_record();
    assert_eq!(record.distinct_id(), format!("a{}", "é".repeat(99)));
    assert_eq!(record.distinct_id().len(), MAX_DISTINCT_ID - 1);
    assert_eq!(record.truncated(), 1);
    assert_eq!(event.truncated(), 1);
    let (v, notes) = encode(&event);
    assert_eq!(notes.truncated, 1);
    assert_eq!(v["distinct_id"], record.distinct_id());
    assert_eq!(v["properties"]["user_id"], record.distinct_id(), "user_id is the id as sent");

    // 4-byte chars: the cut backs up to 200 - 200 % 4 = 200 exactly, and with an offset of 1
    // to 197.
    for (prefix, expect_len) in [("", 200), ("b", 197)] {
        let long = format!("{prefix}{}", "😀".repeat(60));
        let event = Event::new("e", &long);
        let record = event.to_record();
        assert_eq!(record.distinct_id().len(), expect_len, "{prefix:?}");
        assert!(is_char_prefix(record.distinct_id(), &long));
        assert_eq!(event.truncated(), 1);
        // A 'static id is cut the same way, without copying.
        let leaked: &'static str = long.clone().leak();
        let record = Event::new_static("e", leaked).to_record();
        assert_eq!(record.distinct_id().len(), expect_len, "{prefix:?} static");
        assert!(is_char_prefix(record.distinct_id(), &long));
        assert_eq!(record.truncated(), 1);
    }
    // Exactly at the limit: not cut.
    let exact = "x".repeat(MAX_DISTINCT_ID);
    let event = Event::new("e", &exact);
    let record = event.to_record();
    assert_eq!((record.distinct_id(), event.truncated()), (exact.as_str(), 0));
}

#[test]
fn inline_strings_are_cut_on_utf8_boundaries_and_counted() {
    // Each value is 4-byte emoji behind a 1-byte prefix, so cuts land inside a char.
    let value = format!("v{}", "😀".repeat(40)); // 161 bytes
    let event = Event::new("e", "user-12") // 7 inline bytes
        .prop("a", value.as_str()) // fits: 168 used
        .prop("b", value.as_str()) // 88 bytes left: cut inside a char
        .prop("c", value.as_str()) // 3 bytes left: only the "v"
        .timestamp_unix_nanos(T);
    assert_eq!(event.truncated(), 2);
    let (v, notes) = encode(&event);
    assert_eq!(notes.truncated, 2);
    let p = &v["properties"];
    assert_eq!(p["a"], value.as_str());
    let b = p["b"].as_str().unwrap();
    assert!(is_char_prefix(b, &value), "{b:?}");
    assert_eq!(b.len(), 1 + (INLINE_BYTES - 7 - 161 - 1) / 4 * 4, "as much as fits, whole chars");
    assert_eq!(p["c"], "v");

    // Dynamic names and keys are cut the same way.
    let long = "ñ".repeat(200); // 400 bytes
    let event = Event::named(&long, "u").prop_dyn(&long, 1);
    // The builder holds the name as given; the record holds it cut.
    assert_eq!(event.name(), long);
    let record = event.to_record();
    assert!(is_char_prefix(record.name(), &long));
    assert_eq!(record.name().len(), INLINE_BYTES - 2, "255 bytes left, whole 2-byte chars");
    assert_eq!(event.truncated(), 2);
    let (v, notes) = encode(&event);
    assert_eq!(notes.truncated, 2);
    assert_eq!(v["event"], record.name());
    assert_eq!(v["properties"][""], json!(1), "the key got no room: an empty key");
}

#[test]
fn static_strings_are_never_cut() {
    static LONG: &str = "ünïcødé-that-is-longer-than-an-event-record-could-hold-inline-\
        ünïcødé-that-is-longer-than-an-event-record-could-hold-inline-\
        ünïcødé-that-is-longer-than-an-event-record-could-hold-inline-\
        ünïcødé-that-is-longer-than-an-event-record-could-hold-inline-\
        ünïcødé-that-is-longer-than-an-event-record-could-hold-inline-";
    assert!(LONG.len() > INLINE_BYTES);
    let event = Event::new("e", "u").prop("s", Static(LONG)).set("s", Static(LONG));
    assert_eq!(event.truncated(), 0);
    let (v, notes) = encode(&event);
    assert_eq!(notes, Notes::default());
    assert_eq!(v["properties"]["s"], LONG);
    assert_eq!(v["properties"]["$set"]["s"], LONG);
}

#[test]
fn properties_past_max_props_are_dropped_and_counted() {
    const KEYS: [&str; 20] = [
        "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10", "p11", "p12", "p13", "p14", "p15",
        "p16", "p17", "p18", "p19",
    ];
    let event = Event::new("e", "u")
        .timestamp_unix_nanos(T)
        .props(KEYS.iter().enumerate().map(|(i, key)| Entry::prop(key, i)));
    let extra = KEYS.len() - MAX_PROPS;
    assert_eq!(usize::from(event.props_dropped()), extra);
    let (v, notes) = encode(&event);
    assert_eq!(notes.props_dropped, extra);
    let p = v["properties"].as_object().unwrap();
    for (i, key) in KEYS.iter().enumerate() {
        assert_eq!(p.get(*key).is_some(), i < MAX_PROPS, "{key}: the first {MAX_PROPS} are kept");
    }
    // $set and $set_once entries share the same room.
    let event = Event::new("e", "u")
        .props(KEYS[..MAX_PROPS].iter().map(|key| Entry::prop(key, 1)))
        .set("late", 1)
        .set_once("later", 2)
        .prop_dyn("dyn", 3);
    assert_eq!(event.props_dropped(), 3);
    let (v, notes) = encode(&event);
    assert_eq!(notes.props_dropped, 3);
    assert!(v["properties"].get("$set").is_none(), "the dropped $set entry leaves no empty map");
    assert!(v["properties"].get("$set_once").is_none());
    assert!(v["properties"].get("dyn").is_none());
}

#[test]
fn dropped_properties_do_not_use_inline_bytes() {
    // A full record must not spend inline room (or count cuts) on entries it drops. The
    // workspace is copied before any entry (whenever `.workspace()` is called), so it is no
    // longer the canary: the dropped strings are more than the room left, so copying them
    // would count a cut.
    let filler = "x".repeat(100);
    assert!(4 * filler.len() > INLINE_BYTES - "user-1".len() - "ws-1".len());
    let event = Event::new("e", "user-1")
        .props([Entry::prop("k", 1); MAX_PROPS])
        .prop("dropped1", filler.as_str())
        .prop_dyn(&filler, filler.as_str())
        .set("dropped3", filler.as_str())
        .workspace("ws-1");
    assert_eq!(event.props_dropped(), 3);
    assert_eq!(event.truncated(), 0, "nothing was cut: dropped entries were never copied");
    let (v, notes) = encode(&event);
    assert_eq!(notes, Notes { non_finite: 0, truncated: 0, props_dropped: 3 });
    assert_eq!(v["properties"]["workspace_id"], "ws-1");
}

#[test]
fn non_finite_floats_are_null_and_counted() {
    let event = Event::new("e", "u")
        .prop("nan", f64::NAN)
        .prop("inf", f64::INFINITY)
        .prop("ninf", f64::NEG_INFINITY)
        .prop("nan32", f32::NAN)
        .prop("ok", 1.5)
        .prop("max", f64::MAX)
        .prop("tiny", f64::MIN_POSITIVE)
        .prop("neg_zero", -0.0)
        .set("s_inf", f32::INFINITY)
        .set_once("o_nan", -f64::NAN)
        .timestamp_unix_nanos(T);
    let (v, notes) = encode(&event);
    assert_eq!(notes.non_finite, 6);
    let p = &v["properties"];
    for key in ["nan", "inf", "ninf", "nan32"] {
        assert_eq!(p[key], Value::Null, "{key}");
    }
    assert_eq!(p["$set"]["s_inf"], Value::Null);
    assert_eq!(p["$set_once"]["o_nan"], Value::Null);
    assert_eq!(p["ok"], json!(1.5));
    assert_eq!(p["max"].as_f64(), Some(f64::MAX));
    assert_eq!(p["tiny"].as_f64(), Some(f64::MIN_POSITIVE));
    assert_eq!(p["neg_zero"].as_f64(), Some(0.0));

    // A shadowed NaN is never written, so not counted.
    let (v, notes) = encode(&Event::new("e", "u").prop("x", f64::NAN).prop("x", 2.0));
    assert_eq!(notes.non_finite, 0);
    assert_eq!(v["properties"]["x"], json!(2.0));

    // Batch::push reports the same notes.
    let envelope = Envelope { api_key: "phc_k", historical_migration: false };
    let mut batch = Batch::new(vec![0u8; 1 << 16], vec![0u32; 8], Limits::DEFAULT, envelope.overhead());
    match batch.push(&mut encoder(), &event, &CLOCK) {
        Pushed::Added(notes) => assert_eq!(notes.non_finite, 6),
        other => panic!("{other:?}"),
    }
}

/// Every character JSON must escape, and non-ASCII of every UTF-8 length.
fn nasty() -> String {
    let mut s: String = (0u8..0x20).map(char::from).collect();
    s.push_str("\"\\/\u{7f}é€😀\u{2028}\u{2029}\u{fffd}\u{10ffff}'<>&");
    s
}

#[test]
fn escapes_are_exact() {
    let (text, _) = encode_one(
        &mut encoder(),
        &Event::new("e", "u").prop("s", "\u{0}\u{8}\t\n\u{b}\u{c}\r\u{1f}\"\\/\u{7f}é😀"),
        &CLOCK,
    );
    assert!(text.contains(r#""s":"\u0000\b\t\n\u000b\f\r\u001f\"\\/"#), "{text}");
    assert!(text.contains("\u{7f}é😀\""), "non-ASCII and DEL are written as UTF-8");
    check_event_json(&text);
}

#[test]
fn special_characters_round_trip_everywhere() {
    let s = nasty();
    assert!(s.len() < 70);
    /// Events of different shapes are different types: one generic check per case.
    fn case<P: Props>(what: &str, event: &Event<'_, P>, get: impl Fn(&Value) -> &Value, want: &str) {
        assert_eq!(event.truncated(), 0, "{what}");
        let (v, _) = encode(event);
        let got = get(&v).as_str().unwrap_or_else(|| panic!("{what}: missing in {v}"));
        assert_eq!(got, want, "{what}");
    }
    let user_id = format!("x{s}").replace(':', "");
    case("name", &Event::named(&s, "u"), |v| &v["event"], &s);
    case("distinct_id", &Event::new("e", &s), |v| &v["distinct_id"], &s);
    case("user_id", &Event::new("e", &user_id), |v| &v["properties"]["user_id"], &user_id);
    case("value", &Event::new("e", "u").prop("k", s.as_str()), |v| &v["properties"]["k"], &s);
    case("set value", &Event::new("e", "u").set("k", s.as_str()), |v| &v["properties"]["$set"]["k"], &s);
    case(
        "set_once",
        &Event::new("e", "u").set_once("k", s.as_str()),
        |v| &v["properties"]["$set_once"]["k"],
        &s,
    );
    case("workspace", &Event::new("e", "u").workspace(&s), |v| &v["properties"]["workspace_id"], &s);
    // A key.
    let (v, _) = encode(&Event::new("e", "u").prop_dyn(&s, 1));
    assert_eq!(v["properties"][&s], json!(1));
    // The environment and the api key.
    let mut enc = Encoder::new(Enrichment { environment: &s, ..Enrichment::DEFAULT }, 1);
    let (text, _) = encode_one(&mut enc, &Event::new("e", "u"), &CLOCK);
    assert_eq!(check_event_json(&text)["properties"]["environment"], s.as_str());
    let key = "phc_\"\\\u{1}\u{1f}";
    let envelope = Envelope { api_key: key, historical_migration: false };
    let mut batch = Batch::new(vec![0u8; 1 << 16], vec![0u32; 8], Limits::DEFAULT, envelope.overhead());
    assert!(matches!(batch.push(&mut enc, &Event::new("e", "u"), &CLOCK), Pushed::Added(_)));
    let v: Value = serde_json::from_slice(&body(&envelope, T, &batch)).unwrap();
    assert_eq!(v["api_key"], key);
}

#[test]
fn reserved_user_properties_follow_the_go_precedence() {
    fn user(e: Event<'_>) -> Event<'_, impl Props + '_> {
        e.prop("user_id", "user-set")
            .prop("is_demo", true)
            .prop("workspace_id", "user-ws")
            .prop("environment", "user-env")
            .prop("event_schema_version", 42)
            .timestamp_unix_nanos(T)
    }
    // Without a workspace: user_id, is_demo, workspace_id are the user's; environment and
    // event_schema_version are always the client's.
    let (v, _) = encode(&user(Event::new("e", "distinct-1")));
    let p = &v["properties"];
    assert_eq!(p["user_id"], "user-set");
    assert_eq!(p["is_demo"], json!(true));
    assert_eq!(p["workspace_id"], "user-ws");
    assert_eq!(p["environment"], "test");
    assert_eq!(p["event_schema_version"], json!(1));
    // With a workspace, the event's wins.
    let (v, _) = encode(&user(Event::new("e", "distinct-1")).workspace("ws-event"));
    assert_eq!(v["properties"]["workspace_id"], "ws-event");
    // The same with copied (dynamic) keys.
    let dynamic = Event::new("e", "distinct-1")
        .prop_dyn("user_id", "dyn-user")
        .prop_dyn("is_demo", false)
        .prop_dyn("environment", "dyn-env")
        .prop_dyn("event_schema_version", "x")
        .prop_dyn("workspace_id", "dyn-ws")
        .workspace("ws-event");
    let (v, _) = encode(&dynamic);
    let p = &v["properties"];
    assert_eq!(p["user_id"], "dyn-user");
    assert_eq!(p["is_demo"], json!(false));
    assert_eq!(p["environment"], "test");
    assert_eq!(p["event_schema_version"], json!(1));
    assert_eq!(p["workspace_id"], "ws-event");
    // No user_id for ids with ':' even if nothing else sets it; the user's is kept.
    let (v, _) = encode(&Event::new("e", "anon:abc"));
    assert!(v["properties"].get("user_id").is_none());
    let (v, _) = encode(&Event::new("e", "anon:abc").prop("user_id", "u-9"));
    assert_eq!(v["properties"]["user_id"], "u-9");
}

#[test]
fn a_name_blank_after_its_cut_is_rejected() {
    // The distinct_id takes 200 of the 256 inline bytes; the copied name keeps 56, all spaces.
    let name = " ".repeat(100) + "x";
    let id = "u".repeat(200);
    let event = Event::named(&name, &id);
    assert!(event.is_invalid());
    assert!(event.to_record().name().trim().is_empty());
    let queue = HeapQueue::with_capacity(1, 4);
    let mut lane = HeapQueue::producer(&queue).unwrap();
    assert_eq!(lane.capture(&event, &FixedClock(0)), Captured::Rejected);
    // With a short id the same name fits whole and is valid.
    assert!(!Event::named(&name, "u").is_invalid());
}
