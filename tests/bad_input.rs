//! Bad input: blank names and ids, strings over their limits, too many properties, nesting too
//! deep, non-finite floats, characters JSON must escape, user properties that collide with the
//! enrichment, and property values PostHog refuses. Every case has a counted, documented
//! outcome (cut, dropped, rejected), valid JSON the server accepts, and never a panic.

mod common;

use std::time::Duration;

use common::*;
use fasthog::batch::{Batch, Encoder, Enrichment, Envelope, Limits, Notes, Pushed};
use fasthog::recorder::Recorder;
use fasthog::ring::{try_consumer, Drained, HasLanes};
use fasthog::{
    AsEntry, Captured, Client, Entry, Event, FixedClock, HeapQueue, Props, Static, StaticQueue, Value as V,
    DEFAULT_MAX_EVENT_BYTES, MAX_DEPTH, MAX_DISTINCT_ID_CHARS,
};
use serde_json::{json, Value};

const T: u64 = 1_700_000_000_000_000_000;
const CLOCK: FixedClock = FixedClock(T);

fn encoder() -> Encoder<'static> {
    Encoder::new(Enrichment { environment: "test", ..Enrichment::DEFAULT }, 7)
}

fn encode(event: &(impl AsEntry + ?Sized)) -> (Value, Notes) {
    let (text, notes) = encode_one(&mut encoder(), event, &CLOCK);
    (check_event_json(&text), notes)
}

/// Captures `event` into lanes with the default entry limit (blocks of twice
/// `DEFAULT_MAX_EVENT_BYTES`), drains it and pushes it onto an empty batch with the default
/// limits: a `Queued` event must be `Added`, never dropped later. Returns the capture's
/// outcome and, when queued, the event as sent and the encoder's notes.
fn through_lanes<P: Props>(event: &Event<'_, P>) -> (Captured, Option<(Value, Notes)>) {
    let queue = HeapQueue::with_blocks(1, 4, 2 * DEFAULT_MAX_EVENT_BYTES);
    let mut producer = HeapQueue::producer(&queue).expect("lane");
    let captured = producer.capture(event, &CLOCK);
    let mut consumer = try_consumer(&queue).expect("consumer");
    let envelope = Envelope { api_key: "phc_k", historical_migration: false };
    let limits = Limits::DEFAULT;
    let mut batch = Batch::new(vec![0u8; 1 << 20], vec![0u32; 4], limits, envelope.overhead());
    let mut enc = encoder();
    let mut notes = None;
    let drained = consumer.drain(|entry| match batch.push(&mut enc, entry, &CLOCK) {
        Pushed::Added(n) => {
            notes = Some(n);
            true
        }
        other => panic!("a queued event was not added: {other:?}"),
    });
    assert_eq!(drained.events, usize::from(captured == Captured::Queued));
    let sent = notes.map(|n| (check_batch(&envelope, T, &batch, &limits)["batch"][0].clone(), n));
    (captured, sent)
}

/// 250 spaces then a letter: cut to MAX_DISTINCT_ID_CHARS characters, all blank. (Builders
/// borrow their strings, so it lives as long as the events.)
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
        // The entry it makes says so too.
        let entry = event.to_entry();
        assert!(entry.is_invalid(), "{what}");
        // Agrees with the server's own test (a trimmed distinct_id must be non-empty), on the
        // name and distinct_id as they would be sent: the entry's, cut to their limits (the
        // builder's `distinct_id()` is the id before its cut).
        assert!(entry.name().trim().is_empty() || entry.distinct_id().trim().is_empty(), "{what}");
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
    let queue = HeapQueue::with_blocks(2, 8, 4096);
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
    // (v1 also read the shared ring's own counter; v2's shared lanes have no public
    // per-lane counter, and the totals above include them.)
    assert_eq!(totals.pushed, 2);
    let stats = queue.stats();
    assert_eq!(stats.rejected, 2 * n);
    assert_eq!(stats.captured, 2 * n + 2);
    assert_eq!(stats.pending, 2);

    // Only the two valid events reach the consumer, and they encode to valid JSON.
    let mut consumer = try_consumer(&queue).expect("one consumer");
    let mut names = Vec::new();
    let mut enc = encoder();
    let mut check = Batch::new(vec![0u8; 1 << 16], vec![0u32; 8], Limits::DEFAULT, 0);
    let drained = consumer.drain(|entry: &[u8]| {
        // Not invalid: a batch takes it.
        assert!(matches!(check.push(&mut enc.clone(), entry, &CLOCK), Pushed::Added(_)));
        let (text, _) = encode_one(&mut enc, entry, &CLOCK);
        names.push(check_event_json(&text)["event"].as_str().unwrap().to_owned());
        true
    });
    assert_eq!(drained, Drained { events: 2, stopped: false });
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
    /// Pushes the event, and the entry it makes: both refused, the batch untouched.
    fn refused<P: Props>(
        what: &str,
        event: &Event<'_, P>,
        batch: &mut Batch<Vec<u8>, Vec<u32>>,
        enc: &mut Encoder<'_>,
        before: &[u8],
    ) {
        assert!(event.is_invalid(), "{what}");
        assert_eq!(batch.push(enc, event, &CLOCK), Pushed::Invalid, "{what}");
        assert_eq!(batch.push(enc, &event.to_entry(), &CLOCK), Pushed::Invalid, "{what} (entry)");
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
    static QUEUE: StaticQueue<1, 4, 1024> = StaticQueue::new();
    let mut producer = StaticQueue::producer(&QUEUE).expect("lane");
    assert_eq!(producer.capture(&Event::new("", "u"), &CLOCK), Captured::Rejected);
    assert_eq!(producer.capture(&Event::new("e", " "), &CLOCK), Captured::Rejected);
    assert_eq!(QUEUE.capture_shared(&Event::new_static("e", ""), &CLOCK), Captured::Rejected);
    assert_eq!(QUEUE.stats().rejected, 3);
    assert_eq!(QUEUE.lanes().totals().pushed, 0, "nothing reached a lane");
    assert_eq!(QUEUE.stats().pending, 0);
}

/// True if `cut` is a prefix of `full` ending on one of `full`'s char boundaries.
fn is_char_prefix(cut: &str, full: &str) -> bool {
    full.starts_with(cut) && full.is_char_boundary(cut.len())
}

/// v2 rule (v1 cut the distinct_id at 200 *bytes*): the distinct_id is cut at
/// `MAX_DISTINCT_ID_CHARS` = 200 *characters*, as PostHog cuts it, whatever their width, and
/// the cut is counted in `truncated`. 150 × "é" (300 bytes) is kept whole.
#[test]
fn distinct_id_is_cut_at_200_characters() {
    assert_eq!(MAX_DISTINCT_ID_CHARS, 200);
    // Under 200 characters, however many bytes: kept whole, nothing counted.
    for id in ["é".repeat(150), format!("a{}", "é".repeat(150)), "😀".repeat(60), "x".repeat(200)] {
        let event = Event::new("e", &id).timestamp_unix_nanos(T);
        let entry = event.to_entry();
        assert_eq!(entry.distinct_id(), id, "{} chars", id.chars().count());
        assert_eq!((entry.truncated(), event.truncated()), (0, 0));
        let (v, notes) = encode(&event);
        assert_eq!(notes.truncated, 0);
        assert_eq!(v["distinct_id"], id.as_str());
        assert_eq!(v["properties"]["user_id"], id.as_str());
    }
    // Over 200 characters: the first 200, on a char boundary, counted once.
    for (unit, prefix) in [("x", ""), ("é", ""), ("é", "a"), ("😀", ""), ("😀", "b")] {
        let long = format!("{prefix}{}", unit.repeat(250));
        let want: String = long.chars().take(MAX_DISTINCT_ID_CHARS).collect();
        let event = Event::new("e", &long);
        // The builder holds the id as given; the entry holds it cut.
        assert_eq!(event.distinct_id(), long.as_str());
        let entry = event.to_entry();
        assert_eq!(entry.distinct_id(), want, "{unit:?} after {prefix:?}");
        assert!(is_char_prefix(entry.distinct_id(), &long));
        assert_eq!((entry.truncated(), event.truncated()), (1, 1));
        let (v, notes) = encode(&event);
        assert_eq!(notes.truncated, 1);
        assert_eq!(v["distinct_id"], want.as_str());
        assert_eq!(v["properties"]["user_id"], want.as_str(), "user_id is the id as sent");
        // A 'static id is cut the same way.
        let leaked: &'static str = long.clone().leak();
        let entry = Event::new_static("e", leaked).to_entry();
        assert_eq!((entry.distinct_id(), entry.truncated()), (want.as_str(), 1));
        // And the same through a lane.
        let (captured, sent) = through_lanes(&event);
        assert_eq!(captured, Captured::Queued);
        let (v, notes) = sent.unwrap();
        assert_eq!((v["distinct_id"].as_str(), notes.truncated), (Some(want.as_str()), 1));
    }
    // A group's assembled distinct_id (`$type_key`) is cut the same way.
    let key = "k".repeat(300);
    let entry = Event::group_identify("company", &key).to_entry();
    let want: String = format!("$company_{key}").chars().take(MAX_DISTINCT_ID_CHARS).collect();
    assert_eq!((entry.distinct_id(), entry.truncated()), (want.as_str(), 1));
}

/// v2 rule (v1 shared a 256-byte pool among all copied strings): every string is copied
/// whole until the entry reaches its byte limit (`max_event_bytes`, by default
/// `DEFAULT_MAX_EVENT_BYTES` = 32 KiB); past it the string that does not fit is cut on a UTF-8
/// boundary to the room left, counted in `truncated`, and later properties are dropped,
/// counted in `props_dropped`.
#[test]
fn strings_are_copied_whole_until_the_byte_limit_then_cut_on_utf8_boundaries() {
    assert_eq!(DEFAULT_MAX_EVENT_BYTES, 32 * 1024);
    // What v1 cut (three 161-byte values, a 400-byte name and key) v2 keeps whole.
    let value = format!("v{}", "😀".repeat(40)); // 161 bytes
    let long = "ñ".repeat(200); // 400 bytes
    let event = Event::named(&long, "user-12")
        .prop("a", value.as_str())
        .prop("b", value.as_str())
        .prop("c", value.as_str())
        .prop(&long, 1)
        .timestamp_unix_nanos(T);
    assert_eq!((event.truncated(), event.props_dropped()), (0, 0));
    let (v, notes) = encode(&event);
    assert_eq!(notes, Notes::default());
    assert_eq!(v["event"], long.as_str());
    for key in ["a", "b", "c"] {
        assert_eq!(v["properties"][key], value.as_str(), "{key}");
    }
    assert_eq!(v["properties"][&long], json!(1));

    // A value over the limit: cut to the room left, on a char boundary (a 1-byte prefix puts
    // the 4-byte chars off any even cut), counted; the next property gets no room: dropped.
    let big = format!("v{}", "😀".repeat(10_000)); // 40,001 bytes
    let event = Event::new("e", "user-1").prop("a", 1).prop("big", big.as_str()).prop("after", 2);
    let entry = event.to_entry();
    assert_eq!((entry.truncated(), entry.props_dropped()), (1, 1));
    assert!(entry.lane_bytes() <= DEFAULT_MAX_EVENT_BYTES);
    let (v, notes) = encode(&entry);
    assert_eq!((notes.truncated, notes.props_dropped), (1, 1));
    let cut = v["properties"]["big"].as_str().unwrap();
    assert!(is_char_prefix(cut, &big));
    assert!(cut.len() > DEFAULT_MAX_EVENT_BYTES - 64, "as much as fits, whole chars: {}", cut.len());
    assert_eq!(v["properties"]["a"], json!(1));
    assert!(v["properties"].get("after").is_none());

    // The limit is the lanes' own: blocks of 1 KiB take entries of up to 512 bytes.
    let queue = HeapQueue::with_blocks(1, 4, 1024);
    let mut producer = HeapQueue::producer(&queue).unwrap();
    let event = Event::new("e", "user-12").prop("a", value.as_str()).prop("b", value.as_str());
    assert_eq!(producer.capture(&event.prop("c", value.as_str()), &CLOCK), Captured::Queued);
    let mut consumer = try_consumer(&queue).unwrap();
    let drained = consumer.drain(|entry| {
        let (v, notes) = encode(entry);
        assert_eq!(notes.truncated, 1, "the third value is cut");
        assert_eq!(v["properties"]["b"], value.as_str());
        let c = v["properties"]["c"].as_str().unwrap();
        assert!(is_char_prefix(c, &value) && c.len() < value.len(), "{c:?}");
        true
    });
    assert_eq!(drained.events, 1);
}

/// v2 rule (v1 kept `Static` strings by reference, never cut): every string is copied into
/// the lane, `Static` ones too, so they follow the same byte limit: kept whole within
/// `max_event_bytes`, cut on a UTF-8 boundary and counted past it.
#[test]
fn static_strings_are_copied_and_follow_the_byte_limit() {
    static LONG: &str = "ünïcødé-that-is-longer-than-an-event-record-could-hold-inline-\
        ünïcødé-that-is-longer-than-an-event-record-could-hold-inline-\
        ünïcødé-that-is-longer-than-an-event-record-could-hold-inline-\
        ünïcødé-that-is-longer-than-an-event-record-could-hold-inline-\
        ünïcødé-that-is-longer-than-an-event-record-could-hold-inline-";
    assert!(LONG.len() > 256, "more than v1's inline pool");
    let event = Event::new("e", "u").prop("s", Static(LONG)).set("s", Static(LONG));
    assert_eq!(event.truncated(), 0);
    let (v, notes) = encode(&event);
    assert_eq!(notes, Notes::default());
    assert_eq!(v["properties"]["s"], LONG);
    assert_eq!(v["properties"]["$set"]["s"], LONG);
    // Over the limit, a `Static` string is cut like any other.
    let huge: &'static str = "é".repeat(50_000).leak();
    let event = Event::new("e", "u").prop("s", Static(huge)).prop("v", V::from(Static(huge)));
    assert_eq!((event.truncated(), event.props_dropped()), (1, 1));
    let (v, _) = encode(&event);
    let s = v["properties"]["s"].as_str().unwrap();
    assert!(is_char_prefix(s, huge) && s.len() < huge.len());
    assert!(v["properties"].get("v").is_none());
}

/// v2 rule (v1 kept 16 entries and dropped the rest, counting in a saturating `u8`): there is
/// no property count limit; properties are dropped only when the entry's bytes run out, each
/// one counted in `props_dropped` (a `u32`: a 10,000-property event counts every one), and a
/// dropped `$set` / `$set_once` entry leaves no empty map.
#[test]
fn properties_are_dropped_only_past_the_byte_limit_and_each_is_counted() {
    let keys: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
    let event = Event::new("e", "u")
        .timestamp_unix_nanos(T)
        .props(keys.iter().enumerate().map(|(i, key)| Entry::prop(key, i)));
    assert_eq!(event.props_dropped(), 0, "20 properties, v1 kept 16");
    let (v, notes) = encode(&event);
    assert_eq!(notes.props_dropped, 0);
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(v["properties"][key], json!(i), "{key}");
    }

    // A string that fills the room (cut, counted) leaves none for what follows: dropped, each
    // counted, $set and $set_once too.
    let filler = "x".repeat(2 * DEFAULT_MAX_EVENT_BYTES);
    let event = Event::new("e", "u")
        .prop("filler", filler.as_str())
        .set("late", 1)
        .set_once("later", 2)
        .prop_dyn("dyn", 3);
    assert_eq!((event.truncated(), event.props_dropped()), (1, 3));
    let (v, notes) = encode(&event);
    assert_eq!((notes.truncated, notes.props_dropped), (1, 3));
    assert!(v["properties"].get("$set").is_none(), "the dropped $set entry leaves no empty map");
    assert!(v["properties"].get("$set_once").is_none());
    assert!(v["properties"].get("dyn").is_none());
}

/// v2 rule: a property that does not fit is taken out whole: its key is not left behind
/// (neither a top-level one nor an object member's), a key cut while trying is not counted
/// in `truncated` (nothing cut is sent), and later properties that fit are kept.
#[test]
fn dropped_properties_leave_nothing_behind() {
    let key = "k".repeat(40_000); // more than the whole entry may hold
    let members = [(key.as_str(), V::Int(1)), ("m", V::Int(2))];
    let event = Event::new("e", "user-1")
        .prop(&key, 1)
        .prop("kept", 2)
        .prop("obj", V::object(&members))
        .workspace("ws-1");
    assert_eq!(event.props_dropped(), 2);
    assert_eq!(event.truncated(), 0, "nothing was cut: the dropped keys were taken out");
    let (v, notes) = encode(&event);
    assert_eq!(notes, Notes { props_dropped: 2, ..Notes::default() });
    let p = &v["properties"];
    assert!(p.as_object().unwrap().keys().all(|k| !k.starts_with("kk")), "no key, whole or cut");
    assert!(p["obj"].as_object().unwrap().keys().all(|k| !k.starts_with("kk")));
    assert_eq!(p["kept"], json!(2));
    assert_eq!(p["obj"], json!({"m": 2}));
    assert_eq!(p["workspace_id"], "ws-1");
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
fn a_name_is_cut_only_past_the_byte_limit_and_the_distinct_id_always_fits() {
    // v2 rule (v1 cut a copied name to what the distinct_id left of 256 bytes, so 100 spaces
    // then "x" after a 200-byte id became blank and was rejected): the name is copied whole,
    // so that event is valid and sent as given.
    let name = " ".repeat(100) + "x";
    let id = "u".repeat(200);
    let event = Event::named(&name, &id);
    assert!(!event.is_invalid());
    assert_eq!(event.to_entry().name(), name);
    let (captured, sent) = through_lanes(&event);
    assert_eq!(captured, Captured::Queued);
    assert_eq!(sent.unwrap().0["event"], name.as_str());
    // A name over the limit is cut (counted) and leaves room for the distinct_id and the
    // workspace: the event is still sent, with its id whole.
    let huge = format!("n{}", "é".repeat(500_000)); // 1 MB
    let event = Event::named(&huge, &id).workspace("ws-1");
    let entry = event.to_entry();
    assert!(is_char_prefix(entry.name(), &huge) && entry.name().len() > DEFAULT_MAX_EVENT_BYTES / 2);
    assert_eq!((entry.distinct_id(), entry.truncated()), (id.as_str(), 1));
    let (captured, sent) = through_lanes(&event);
    assert_eq!(captured, Captured::Queued);
    let (v, notes) = sent.unwrap();
    assert_eq!((v["distinct_id"].as_str(), notes.truncated), (Some(id.as_str()), 1));
    assert_eq!(v["properties"]["workspace_id"], "ws-1");
}

// ---- The bad input of issue 8 -------------------------------------------------------------

/// A 10,000-property event: the properties that fit the 32 KiB entry are kept, in order; every
/// other one is dropped and counted (10,000 - kept, far past v1's saturating 255).
#[test]
fn ten_thousand_properties_keep_what_fits_and_count_every_drop() {
    let pairs: Vec<(String, i64)> = (0..10_000).map(|i| (format!("p{i}"), i)).collect();
    let event = Event::new("e", "user-1").props(&pairs).timestamp_unix_nanos(T);
    let dropped = event.props_dropped() as usize;
    let (v, notes) = encode(&event);
    let p = v["properties"].as_object().unwrap();
    let kept = pairs.iter().take_while(|(k, _)| p.contains_key(k)).count();
    assert!(kept > 1000, "a 32 KiB entry holds over a thousand small properties: {kept}");
    assert!(pairs[kept..].iter().all(|(k, _)| !p.contains_key(k)), "the first {kept} are kept");
    assert_eq!(kept + dropped, 10_000, "every dropped property is counted");
    assert!(dropped > 255, "the count does not saturate");
    assert_eq!((notes.props_dropped, notes.truncated), (dropped, 0));
    assert_eq!(p["p0"], json!(0));
    // Through a lane: queued, sent, the same count.
    let (captured, sent) = through_lanes(&event);
    assert_eq!(captured, Captured::Queued);
    assert_eq!(sent.unwrap().1.props_dropped, dropped);
    // Through a client: the counter adds them all up.
    let recorder = Recorder::new();
    let client = Client::builder("phc_k").build_with_transport(recorder.clone()).unwrap();
    assert_eq!(client.capture(&event), Captured::Queued);
    assert_eq!(client.capture(&event), Captured::Queued);
    let stats = client.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!((stats.sent, stats.props_dropped), (2, 2 * dropped as u64));
    assert_eq!(recorder.events().len(), 2);
}

/// A 1 MB string (as a value, a `$set` value, a workspace): cut on a UTF-8 boundary to what
/// the entry has room for, counted once in `truncated`; the event is sent.
#[test]
fn a_one_megabyte_string_is_cut_to_the_entry_and_counted() {
    let mb = format!("a{}", "😀".repeat(250_000)); // 1,000,001 bytes
    let value = Event::new("e", "user-1").prop("s", mb.as_str()).timestamp_unix_nanos(T);
    let set = Event::new("e", "user-1").set("s", &mb).timestamp_unix_nanos(T);
    let workspace = Event::new("e", "user-1").workspace(&mb).timestamp_unix_nanos(T);
    let cases: [(&str, Value, Notes); 3] = [
        ("value", encode(&value).0["properties"]["s"].clone(), encode(&value).1),
        ("$set", encode(&set).0["properties"]["$set"]["s"].clone(), encode(&set).1),
        ("workspace", encode(&workspace).0["properties"]["workspace_id"].clone(), encode(&workspace).1),
    ];
    for (what, got, notes) in cases {
        let got = got.as_str().unwrap_or_else(|| panic!("{what}: sent"));
        assert!(is_char_prefix(got, &mb), "{what}");
        assert!(got.len() > DEFAULT_MAX_EVENT_BYTES / 2 && got.len() < DEFAULT_MAX_EVENT_BYTES, "{what}");
        assert_eq!((notes.truncated, notes.props_dropped), (1, 0), "{what}");
    }
    let (captured, sent) = through_lanes(&value);
    assert_eq!(captured, Captured::Queued);
    assert_eq!(sent.unwrap().1.truncated, 1);
}

/// Nesting 10,000 deep (an array of one array of one array ...): kept to `MAX_DEPTH` levels,
/// the value below written as `null` and counted as one dropped entry; no recursion past it.
#[test]
fn nesting_ten_thousand_deep_is_kept_to_max_depth() {
    let mut deep = V::Int(7);
    for _ in 0..10_000 {
        deep = V::Array(Box::leak(Box::new([deep])));
    }
    let event = Event::new("e", "user-1").prop("deep", deep).prop("after", 1).timestamp_unix_nanos(T);
    let (v, notes) = encode(&event);
    assert_eq!((notes.props_dropped, notes.truncated), (1, 0));
    let mut at = &v["properties"]["deep"];
    let mut depth = 0;
    while let Some([inner]) = at.as_array().map(Vec::as_slice) {
        at = inner;
        depth += 1;
    }
    assert_eq!(depth, MAX_DEPTH);
    assert_eq!(*at, Value::Null, "the levels below are cut off");
    assert_eq!(v["properties"]["after"], json!(1));
    // Objects too: `{"o": {"o": ... }}`.
    let mut deep = V::Null;
    for _ in 0..10_000 {
        deep = V::Object(Box::leak(Box::new([("o", deep)])));
    }
    let (v, notes) = encode(&Event::new("e", "user-1").prop("deep", deep));
    assert_eq!(notes.props_dropped, 1);
    let mut at = &v["properties"]["deep"];
    let mut depth = 0;
    while let Some(inner) = at.get("o") {
        at = inner;
        depth += 1;
    }
    assert_eq!((depth, at), (MAX_DEPTH, &Value::Null));
    let (captured, sent) = through_lanes(&event);
    assert_eq!(captured, Captured::Queued);
    assert_eq!(sent.unwrap().1.props_dropped, 1);
}

/// A 100 KB key: longer than the whole entry, so its property is dropped (counted in
/// `props_dropped`, nothing counted as cut, no cut key sent); a 10 KB key fits and is sent whole.
#[test]
fn a_hundred_kilobyte_key_drops_its_property() {
    let key = "k".repeat(100_000);
    let event = Event::new("e", "user-1").prop(&key, 1).prop("next", 2).timestamp_unix_nanos(T);
    let (v, notes) = encode(&event);
    assert_eq!((notes.props_dropped, notes.truncated), (1, 0));
    let p = v["properties"].as_object().unwrap();
    assert!(p.keys().all(|k| !k.starts_with("kk")), "no cut key is sent");
    assert_eq!(p["next"], json!(2));
    let (captured, sent) = through_lanes(&event);
    assert_eq!(captured, Captured::Queued);
    assert_eq!(sent.unwrap().1.props_dropped, 1);
    let key = "k".repeat(10_000);
    let (v, notes) = encode(&Event::new("e", "user-1").prop(&key, 1));
    assert_eq!(notes, Notes::default());
    assert_eq!(v["properties"][&key], json!(1));
}

/// `$set` given as a plain string property: sent as it is, a user property (the Go client's
/// rule: `$set` is the event's map only when the event sets person properties, then the map
/// replaces it). Nothing is cut or dropped, so nothing is counted; PostHog accepts it.
#[test]
fn set_as_a_plain_string_is_a_plain_property() {
    let plain = Event::new("e", "user-1").prop("$set", "plan=pro").prop("$set_once", "x");
    let (v, notes) = encode(&plain);
    assert_eq!(notes, Notes::default());
    assert_eq!(v["properties"]["$set"], "plan=pro");
    assert_eq!(v["properties"]["$set_once"], "x");
    assert!(v.get("$set").is_none(), "never the event's top-level $set");
    let mapped = Event::new("e", "user-1").prop("$set", "plan=pro").set("plan", "pro");
    let (v, _) = encode(&mapped);
    assert_eq!(v["properties"]["$set"], json!({"plan": "pro"}));
    // The receiver (PostHog's rules) takes both.
    let receiver = fasthog_receiver::Receiver::start(Default::default()).expect("receiver");
    let envelope = Envelope { api_key: "phc_k", historical_migration: false };
    let mut batch = Batch::new(vec![0u8; 1 << 16], vec![0u32; 4], Limits::DEFAULT, envelope.overhead());
    let mut enc = encoder();
    assert!(matches!(batch.push(&mut enc, &plain, &CLOCK), Pushed::Added(_)));
    assert!(matches!(batch.push(&mut enc, &mapped, &CLOCK), Pushed::Added(_)));
    let (status, answer) = post_to_receiver(&receiver, &body(&envelope, T, &batch));
    assert_eq!(status, 200, "{answer}");
}

/// `$performance_event`: PostHog accepts and then discards it, so capture rejects it (counted).
#[test]
fn performance_events_are_rejected_at_capture() {
    let event = Event::new("$performance_event", "user-1").prop("x", 1);
    assert!(event.is_invalid());
    assert!(event.to_entry().is_invalid());
    let queue = HeapQueue::with_blocks(1, 4, 1024);
    let mut producer = HeapQueue::producer(&queue).unwrap();
    assert_eq!(producer.capture(&event, &CLOCK), Captured::Rejected);
    assert_eq!(queue.capture_shared(&event, &CLOCK), Captured::Rejected);
    assert_eq!((queue.stats().rejected, queue.lanes().totals().pushed), (2, 0));
    let mut batch = Batch::new(vec![0u8; 1 << 16], vec![0u32; 4], Limits::DEFAULT, 0);
    assert_eq!(batch.push(&mut encoder(), &event, &CLOCK), Pushed::Invalid);
    // Similar names are ordinary events.
    assert!(!Event::new("$performance_events", "u").is_invalid());
    assert!(!Event::new("performance_event", "u").is_invalid());
}

/// A non-boolean `$cookieless_mode` makes PostHog refuse the whole batch (400): the encoder
/// refuses the event (`Pushed::Invalid`), the flusher counts it rejected and sends the rest;
/// `true` and `false` pass. The same key in `$set` is a person property, not checked.
#[test]
fn a_non_boolean_cookieless_mode_is_refused_by_the_encoder() {
    let envelope = Envelope { api_key: "phc_k", historical_migration: false };
    let mut batch = Batch::new(vec![0u8; 1 << 16], vec![0u32; 16], Limits::DEFAULT, envelope.overhead());
    let mut enc = encoder();
    let base = || Event::new("e", "user-1");
    assert_eq!(batch.push(&mut enc, &base().prop("$cookieless_mode", "true"), &CLOCK), Pushed::Invalid);
    assert_eq!(batch.push(&mut enc, &base().prop("$cookieless_mode", 1), &CLOCK), Pushed::Invalid);
    assert_eq!(batch.push(&mut enc, &base().prop("$cookieless_mode", None::<bool>), &CLOCK), Pushed::Invalid);
    let as_array = base().prop("$cookieless_mode", [true]).to_entry();
    assert_eq!(batch.push(&mut enc, &as_array, &CLOCK), Pushed::Invalid, "an entry too");
    // A string after a bool is what would be sent: refused.
    let shadowed = base().prop("$cookieless_mode", true).prop("$cookieless_mode", "x");
    assert_eq!(batch.push(&mut enc, &shadowed, &CLOCK), Pushed::Invalid);
    assert!(batch.is_empty(), "never encoded");
    for b in [true, false] {
        assert!(matches!(
            batch.push(&mut enc, &base().prop("$cookieless_mode", b), &CLOCK),
            Pushed::Added(_)
        ));
    }
    let set = base().set("$cookieless_mode", "x");
    assert!(matches!(batch.push(&mut enc, &set, &CLOCK), Pushed::Added(_)));
    let v = check_batch(&envelope, T, &batch, &Limits::DEFAULT);
    assert_eq!(v["batch"][0]["properties"]["$cookieless_mode"], json!(true));
    assert_eq!(v["batch"][1]["properties"]["$cookieless_mode"], json!(false));

    // Through a client: queued at capture (capture does not read values), rejected by the
    // flusher and counted; the valid ones are delivered.
    let recorder = Recorder::new();
    let client = Client::builder("phc_k").build_with_transport(recorder.clone()).unwrap();
    assert_eq!(client.capture(&base().prop("$cookieless_mode", "yes")), Captured::Queued);
    assert_eq!(
        client.capture(&Event::new("ok_true", "user-1").prop("$cookieless_mode", true)),
        Captured::Queued
    );
    assert_eq!(
        client.capture(&Event::new("ok_false", "user-1").prop("$cookieless_mode", false)),
        Captured::Queued
    );
    let stats = client.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!((stats.captured, stats.sent, stats.rejected, stats.pending), (3, 2, 1, 0));
    assert_eq!(recorder.names(), ["ok_true", "ok_false"]);
}

/// Regression: an array or object with no room left for it but one byte became `null`
/// without being counted. Wherever the limit falls (filler lengths around it), an empty array
/// after the filler is kept (`[]`, nothing counted), or written as `null` and counted, or
/// dropped and counted: never changed silently.
#[test]
fn a_container_without_room_is_never_changed_silently() {
    let mut outcomes = std::collections::BTreeSet::new();
    for filler in DEFAULT_MAX_EVENT_BYTES - 120..DEFAULT_MAX_EVENT_BYTES - 20 {
        let filler = "x".repeat(filler);
        for object in [false, true] {
            let value = if object { V::object(&[]) } else { V::array(&[]) };
            let event = Event::new("e", "u").prop("f", filler.as_str()).prop("a", value);
            let (v, notes) = encode(&event);
            let p = &v["properties"];
            let empty = if object { json!({}) } else { json!([]) };
            let outcome = match (p.get("a"), notes.props_dropped) {
                (Some(a), 0) if *a == empty => "kept",
                (Some(Value::Null), 1) => "null, counted",
                (None, 1) => "dropped, counted",
                (a, n) => panic!("{} filler bytes: a = {a:?}, {n} dropped", filler.len()),
            };
            outcomes.insert(outcome);
        }
    }
    assert_eq!(outcomes.len(), 3, "every outcome reached: {outcomes:?}");
}
