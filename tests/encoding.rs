//! Golden tests of the JSON the encoder writes: the Go client's enrichment rules, exactly,
//! plus fasthog's own fields, the envelope, and the batch limits.

mod common;

use common::*;
use fasthog::batch::{
    Batch, Encoder, Enrichment, Envelope, Limits, Notes, Pushed, EVENT_SCHEMA_VERSION, HEAD_CAPACITY, LIB,
    LIB_VERSION, TAIL,
};
use fasthog::json::{format_uuid, Writer};
use std::collections::HashMap;

use fasthog::ring::try_consumer;
use fasthog::{AsEntry, Captured, Event, FixedClock, HeapQueue, Props, Static, UuidV7, Value as V};
use serde_json::{json, Value};

const SEED: u64 = 0x5eed_f00d;
/// 2023-11-14T22:13:20.123456789Z
const T: u64 = 1_700_000_000_123_456_789;
const T_TEXT: &str = "2023-11-14T22:13:20.123456Z";
const CLOCK: FixedClock = FixedClock(1_800_000_000_000_000_000);

fn encoder(environment: &str) -> Encoder<'_> {
    Encoder::new(Enrichment { environment, ..Enrichment::DEFAULT }, SEED)
}

/// Encodes one event (checked against the capture rules) and returns it parsed.
fn encode(event: &(impl AsEntry + ?Sized)) -> Value {
    let (text, _) = encode_one(&mut encoder("production"), event, &CLOCK);
    check_event_json(&text)
}

fn props(event: &(impl AsEntry + ?Sized)) -> serde_json::Map<String, Value> {
    encode(event)["properties"].as_object().unwrap().clone()
}

/// The enrichment every event gets with the test encoder, for a distinct_id without ':'.
fn enriched(user: Value, distinct_id: &str) -> Value {
    let mut p = user.as_object().unwrap().clone();
    p.insert("event_schema_version".into(), json!(EVENT_SCHEMA_VERSION));
    p.insert("environment".into(), json!("production"));
    p.entry("is_demo").or_insert(json!(false));
    if !distinct_id.contains(':') {
        p.entry("user_id").or_insert(json!(distinct_id));
    }
    p.insert("$lib".into(), json!(LIB));
    p.insert("$lib_version".into(), json!(LIB_VERSION));
    p.entry("$geoip_disable").or_insert(json!(true));
    Value::Object(p)
}

fn typical() -> Event<'static, impl Props> {
    Event::new("order_filled", "user-42")
        .prop("qty", 3)
        .prop("price", 101.25)
        .prop("venue", Static("XNAS"))
        .set("plan", "pro")
        .set_once("first_seen", Static("2024-01-01"))
        .workspace("ws_1")
        .timestamp_unix_nanos(T)
}

#[test]
fn golden_typical_event_exact_bytes() {
    let (text, notes) = encode_one(&mut encoder("production"), &typical(), &CLOCK);
    assert_eq!(notes, Notes::default());
    // The uuid the encoder draws first, for this seed and the event's millisecond.
    let uuid = format_uuid(&UuidV7::new(SEED).next(T / 1_000_000));
    let uuid = std::str::from_utf8(&uuid).unwrap();
    let expected = format!(
        concat!(
            r#"{{"uuid":{uuid},"event":"order_filled","distinct_id":"user-42","#,
            r#""timestamp":"2023-11-14T22:13:20.123456Z","properties":{{"qty":3,"price":101.25,"#,
            r#""venue":"XNAS","workspace_id":"ws_1","event_schema_version":1,"#,
            r#""environment":"production","is_demo":false,"user_id":"user-42","$lib":"fasthog","#,
            r#""$lib_version":"{ver}","$geoip_disable":true,"#,
            r#""$set_once":{{"first_seen":"2024-01-01"}},"$set":{{"plan":"pro"}}}}}}"#
        ),
        uuid = uuid,
        ver = LIB_VERSION
    );
    assert_eq!(text, expected);

    // The same golden with the uuid masked, independent of the generator's internals.
    let v = check_event_json(&text);
    let at = text.find("\"uuid\":\"").unwrap() + 8;
    let masked = format!("{}{}{}", &text[..at], "x".repeat(36), &text[at + 36..]);
    let expected_masked = expected.replace(&uuid[1..37], &"x".repeat(36));
    assert_eq!(masked, expected_masked);
    let uuid_text = v["uuid"].as_str().unwrap();
    assert!(is_uuid_v7(uuid_text));
    // UUIDv7: the first 48 bits are the event's Unix milliseconds.
    let ms = u64::from_str_radix(&uuid_text.replace('-', "")[..12], 16).unwrap();
    assert_eq!(ms, T / 1_000_000);
}

#[test]
fn golden_typical_event_parsed() {
    let v = encode(&typical());
    let obj = v.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["distinct_id", "event", "properties", "timestamp", "uuid"]);
    assert_eq!(v["event"], "order_filled");
    assert_eq!(v["distinct_id"], "user-42");
    assert_eq!(v["timestamp"], T_TEXT);
    let expected = enriched(
        json!({
            "qty": 3, "price": 101.25, "venue": "XNAS", "workspace_id": "ws_1",
            "$set_once": {"first_seen": "2024-01-01"}, "$set": {"plan": "pro"},
        }),
        "user-42",
    );
    assert_json_eq(&v["properties"], &expected);
}

#[test]
fn minimal_event_gets_exactly_the_enrichment() {
    let p = props(&Event::new("page_view", "u1").timestamp_unix_nanos(T));
    assert_json_eq(&Value::Object(p), &enriched(json!({}), "u1"));
}

#[test]
fn workspace_id_set_unset_and_empty() {
    let base = || Event::new("e", "u1").timestamp_unix_nanos(T);
    assert_eq!(props(&base().workspace("ws_9"))["workspace_id"], "ws_9");
    assert!(!props(&base()).contains_key("workspace_id"), "unset: absent");
    assert!(!props(&base().workspace("")).contains_key("workspace_id"), "empty: absent (Go: when not empty)");
    // Go sends any non-empty WorkspaceID, whitespace included.
    assert_eq!(props(&base().workspace(" ")).get("workspace_id"), Some(&json!(" ")));
}

#[test]
fn workspace_id_overrides_a_user_property_only_when_set() {
    let base = || Event::new("e", "u1").prop("workspace_id", "from-user").timestamp_unix_nanos(T);
    // Set: the event's WorkspaceID wins, written once.
    assert_eq!(props(&base().workspace("ws_1"))["workspace_id"], "ws_1");
    // Unset or empty: Go leaves the user's property alone.
    assert_eq!(props(&base())["workspace_id"], "from-user");
    assert_eq!(props(&base().workspace(""))["workspace_id"], "from-user");
}

#[test]
fn schema_version_and_environment_always_present_and_override_user_values() {
    let p = props(&Event::new("e", "u1").timestamp_unix_nanos(T));
    assert_eq!(p["event_schema_version"], json!(1));
    assert_eq!(p["environment"], "production");

    let p = props(
        &Event::new("e", "u1")
            .prop("event_schema_version", 99)
            .prop("environment", "user-env")
            .timestamp_unix_nanos(T),
    );
    assert_eq!(p["event_schema_version"], json!(EVENT_SCHEMA_VERSION));
    assert_eq!(p["environment"], "production");

    // An empty environment is still sent (Go sends the configured value, whatever it is), and
    // the schema version is the encoder's.
    let mut enc = Encoder::new(
        Enrichment { environment: "", event_schema_version: 7, geoip_disable: true, super_properties: &[] },
        SEED,
    );
    let (text, _) = encode_one(&mut enc, &Event::new("e", "u1").prop("environment", "x"), &CLOCK);
    let v = check_event_json(&text);
    assert_eq!(v["properties"]["environment"], "");
    assert_eq!(v["properties"]["event_schema_version"], json!(7));
}

#[test]
fn is_demo_false_unless_the_event_set_it() {
    let base = || Event::new("e", "u1").timestamp_unix_nanos(T);
    assert_eq!(props(&base())["is_demo"], json!(false));
    assert_eq!(props(&base().prop("is_demo", true))["is_demo"], json!(true));
    assert_eq!(props(&base().prop("is_demo", false))["is_demo"], json!(false));
    // Go's `_, ok := props["is_demo"]`: present with any value, even null, is kept.
    assert_eq!(props(&base().prop("is_demo", None::<bool>))["is_demo"], Value::Null);
    assert_eq!(props(&base().prop("is_demo", "yes"))["is_demo"], "yes");
    // A $set entry named is_demo is a person property, not the event's.
    let p = props(&base().set("is_demo", true));
    assert_eq!(p["is_demo"], json!(false));
    assert_eq!(p["$set"]["is_demo"], json!(true));
}

#[test]
fn user_id_is_the_distinct_id_unless_set_or_containing_a_colon() {
    fn ev(did: &str) -> Event<'_> {
        Event::new("e", did).timestamp_unix_nanos(T)
    }
    assert_eq!(props(&ev("user-42"))["user_id"], "user-42");
    assert_eq!(props(&ev("user-42").prop("user_id", "u-other"))["user_id"], "u-other");
    assert_eq!(props(&ev("user-42").prop("user_id", 7))["user_id"], json!(7));
    assert_eq!(props(&ev("user-42").prop("user_id", None::<&str>))["user_id"], Value::Null);
    for did in ["anon:abc", "device:123", ":", "a:"] {
        let p = props(&ev(did));
        assert!(!p.contains_key("user_id"), "{did}: not a user id");
        // The user's own user_id is still kept.
        assert_eq!(props(&ev(did).prop("user_id", "x"))["user_id"], "x");
    }
    // Non-ASCII and escapes are copied exactly.
    assert_eq!(props(&ev("ünï\"cødé"))["user_id"], "ünï\"cødé");
}

#[test]
fn set_and_set_once_only_when_non_empty_and_override_user_properties() {
    let base = || Event::new("e", "u1").timestamp_unix_nanos(T);
    let p = props(&base());
    assert!(!p.contains_key("$set") && !p.contains_key("$set_once"));

    let p = props(&base().set("a", 1).set("b", "two").set_once("c", true));
    assert_eq!(p["$set"], json!({"a": 1, "b": "two"}));
    assert_eq!(p["$set_once"], json!({"c": true}));

    // The event's maps replace user properties of the same name.
    let p =
        props(&base().prop("$set", "user-set").prop("$set_once", 5).set("plan", "pro").set_once("first", 1));
    assert_eq!(p["$set"], json!({"plan": "pro"}));
    assert_eq!(p["$set_once"], json!({"first": 1}));

    // With empty maps, Go leaves user properties named $set / $set_once alone.
    let p = props(&base().prop("$set", "user-set").prop("$set_once", 5));
    assert_eq!(p["$set"], "user-set");
    assert_eq!(p["$set_once"], json!(5));
    // Only one of the two replaced.
    let p = props(&base().prop("$set", "user-set").prop("$set_once", 5).set("k", 1));
    assert_eq!(p["$set"], json!({"k": 1}));
    assert_eq!(p["$set_once"], json!(5));
}

#[test]
fn lib_lib_version_and_geoip_disable() {
    let base = || Event::new("e", "u1").timestamp_unix_nanos(T);
    let p = props(&base());
    assert_eq!(p["$lib"], "fasthog");
    assert_eq!(p["$lib_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(p["$geoip_disable"], json!(true));
    // $lib and $lib_version are the library's: a user value is replaced, written once.
    let p = props(&base().prop("$lib", "mine").prop("$lib_version", "9"));
    assert_eq!(p["$lib"], "fasthog");
    assert_eq!(p["$lib_version"], LIB_VERSION);
    // $geoip_disable is a default: the event's own value wins.
    assert_eq!(props(&base().prop("$geoip_disable", false))["$geoip_disable"], json!(false));
    // Disabled in the enrichment: absent unless the event sets it.
    let mut enc =
        Encoder::new(Enrichment { geoip_disable: false, super_properties: &[], ..Enrichment::DEFAULT }, SEED);
    let (text, _) = encode_one(&mut enc, &base(), &CLOCK);
    assert!(!check_event_json(&text)["properties"].as_object().unwrap().contains_key("$geoip_disable"));
    let (text, _) = encode_one(&mut enc, &base().prop("$geoip_disable", true), &CLOCK);
    assert_eq!(check_event_json(&text)["properties"]["$geoip_disable"], json!(true));
}

#[test]
fn duplicate_keys_last_wins_written_once() {
    let event = Event::new("e", "u1")
        .prop("k", 1)
        .prop("other", "x")
        .prop("k", 2)
        .prop_dyn("k", "three")
        .prop("is_demo", true)
        .prop("is_demo", false)
        .prop("user_id", "a")
        .prop("user_id", "b")
        .set("s", 1)
        .set("s", 2)
        .set_once("o", "first")
        .set_once("o", "second")
        .timestamp_unix_nanos(T);
    let (text, _) = encode_one(&mut encoder("production"), &event, &CLOCK);
    assert!(duplicate_keys(&text).is_empty(), "{text}");
    assert_eq!(text.matches("\"k\":").count(), 1, "{text}");
    let p = check_event_json(&text)["properties"].clone();
    assert_eq!(p["k"], "three");
    assert_eq!(p["other"], "x");
    assert_eq!(p["is_demo"], json!(false));
    assert_eq!(p["user_id"], "b");
    assert_eq!(p["$set"], json!({"s": 2}));
    assert_eq!(p["$set_once"], json!({"o": "second"}));
    // The same key in different maps is not a duplicate.
    let p = props(&Event::new("e", "u1").prop("plan", "a").set("plan", "b").set_once("plan", "c"));
    assert_eq!(
        (&p["plan"], &p["$set"]["plan"], &p["$set_once"]["plan"]),
        (&json!("a"), &json!("b"), &json!("c"))
    );
}

#[test]
fn timestamps_are_rfc3339_utc() {
    let at = |nanos: u64| encode(&Event::new("e", "u1").timestamp_unix_nanos(nanos))["timestamp"].clone();
    assert_eq!(at(0), "1970-01-01T00:00:00.000000Z");
    assert_eq!(at(T), T_TEXT);
    assert_eq!(at(951_782_400_000_000_000), "2000-02-29T00:00:00.000000Z");
    assert_eq!(at(1_735_689_599_999_999_999), "2024-12-31T23:59:59.999999Z");
    assert_eq!(at(4_107_542_400_000_001_000), "2100-03-01T00:00:00.000001Z");
    // Without a timestamp, the clock's reading.
    let v = encode(&Event::new("e", "u1"));
    assert_eq!(v["timestamp"], "2027-01-15T08:00:00.000000Z");
    // Go formats RFC3339Nano; fasthog sends microseconds (PostHog stores microseconds). Both
    // name the same instant to the microsecond.
    for v in [at(T), at(1)] {
        assert!(is_rfc3339_utc_micros(v.as_str().unwrap()));
    }
}

#[test]
fn every_event_gets_its_own_ordered_uuid_v7() {
    let mut enc = encoder("production");
    let mut uuids = Vec::new();
    for i in 0..50u64 {
        let event = Event::new("e", "u1").timestamp_unix_nanos(T + i * 100_000);
        let (text, _) = encode_one(&mut enc, &event, &CLOCK);
        uuids.push(check_event_json(&text)["uuid"].as_str().unwrap().to_owned());
    }
    assert!(uuids.windows(2).all(|w| w[0] < w[1]), "v7 ids are monotonic: {uuids:?}");
    // Another seed makes other ids for the same events.
    let (text, _) = encode_one(
        &mut Encoder::new(Enrichment::DEFAULT, SEED + 1),
        &Event::new("e", "u1").timestamp_unix_nanos(T),
        &CLOCK,
    );
    assert_ne!(check_event_json(&text)["uuid"], json!(uuids[0]));
}

#[test]
fn envelope_head_exact() {
    let envelope = Envelope { api_key: "phc_abc", historical_migration: false };
    let mut head = [0u8; HEAD_CAPACITY];
    let n = envelope.write_head(T, &mut head);
    assert_eq!(
        std::str::from_utf8(&head[..n]).unwrap(),
        r#"{"api_key":"phc_abc","historical_migration":false,"sent_at":"2023-11-14T22:13:20.123456Z","batch":["#
    );
    assert_eq!(TAIL, b"]}");
    assert_eq!(envelope.overhead(), n + TAIL.len());
    let n = Envelope { api_key: "phc_abc", historical_migration: true }.write_head(0, &mut head);
    assert!(std::str::from_utf8(&head[..n]).unwrap().contains(r#""historical_migration":true,"#));
    // Its Debug (a log line, a panic message) never shows the key.
    let debug = format!("{envelope:?}");
    assert!(!debug.contains("abc") && debug.contains("historical_migration: false"), "{debug}");
}

#[test]
fn envelope_head_fits_the_longest_key_with_worst_case_escaping() {
    // 64 bytes (PostHog's maximum) of characters that each escape to six bytes.
    let key = "\u{1}".repeat(64);
    let envelope = Envelope { api_key: &key, historical_migration: false };
    let mut head = [0u8; HEAD_CAPACITY];
    let n = envelope.write_head(u64::MAX, &mut head);
    let mut text = head[..n].to_vec();
    text.extend_from_slice(b"{}]}");
    let v: Value = serde_json::from_slice(&text).expect("head parses");
    assert_eq!(v["api_key"], key);
    assert_eq!(v["sent_at"], "2554-07-21T23:34:33.709551Z");
}

#[test]
fn full_body_parses_and_obeys_the_capture_rules() {
    let limits = Limits::DEFAULT;
    let envelope = Envelope { api_key: "phc_test", historical_migration: false };
    let mut batch = Batch::new(vec![0u8; 1 << 20], vec![0u32; 64], limits, envelope.overhead());
    let mut enc = encoder("production");
    // Events of different shapes are different types: keep the entries they make (what a
    // lane would hold; pushing the builders themselves encodes the same entries).
    let events = [
        typical().to_entry(),
        Event::new("signup", "anon:abc").prop("source", Static("ads")).timestamp_unix_nanos(T + 1).to_entry(),
        Event::new("boot", "device:123").workspace("").timestamp_unix_nanos(T + 2).to_entry(),
        Event::named("dynamic \"name\"", "u\\2").set("a", 1.5).set_once("b", -3).to_entry(),
    ];
    for event in &events {
        assert!(matches!(batch.push(&mut enc, event, &CLOCK), Pushed::Added(_)));
    }
    let v = check_batch(&envelope, T, &batch, &limits);
    let top: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut top = top;
    top.sort_unstable();
    assert_eq!(top, ["api_key", "batch", "historical_migration", "sent_at"]);
    assert_eq!(v["api_key"], "phc_test");
    assert_eq!(v["historical_migration"], json!(false));
    assert_eq!(v["sent_at"], T_TEXT);
    let batch_v = v["batch"].as_array().unwrap();
    assert_eq!(batch_v.len(), 4);
    assert_eq!(batch_v[1]["distinct_id"], "anon:abc");
    assert!(batch_v[1]["properties"].get("user_id").is_none());
    assert!(batch_v[2]["properties"].get("user_id").is_none());
    assert!(batch_v[2]["properties"].get("workspace_id").is_none());
    assert_eq!(batch_v[3]["event"], "dynamic \"name\"");
    assert_eq!(batch_v[3]["properties"]["user_id"], "u\\2");
    assert_eq!(batch_v[3]["timestamp"], "2027-01-15T08:00:00.000000Z");
    // Each event as encoded alone is the same object (uuid aside).
    let mut alone = encoder("production");
    for (event, got) in events.iter().zip(batch_v) {
        let (text, _) = encode_one(&mut alone, event, &CLOCK);
        let mut want: Value = serde_json::from_str(&text).unwrap();
        want["uuid"] = got["uuid"].clone();
        assert_json_eq(got, &want);
    }
}

#[test]
fn receiver_with_posthog_rules_accepts_an_encoded_batch() {
    let receiver = fasthog_receiver::Receiver::start(Default::default()).expect("receiver");
    let limits = Limits::DEFAULT;
    let envelope = Envelope { api_key: "phc_test", historical_migration: false };
    let mut batch = Batch::new(vec![0u8; 1 << 20], vec![0u32; 64], limits, envelope.overhead());
    let mut enc = encoder("production");
    for i in 0..20u64 {
        let event = Event::new("e", "user-1")
            .prop("i", i)
            .prop("nan", f64::NAN)
            .prop_dyn("ctl\u{1}\"\\", "é😀\u{0}")
            .set("s", true)
            .timestamp_unix_nanos(T + i);
        assert!(matches!(batch.push(&mut enc, &event, &CLOCK), Pushed::Added(_)));
    }
    let body = body(&envelope, T, &batch);
    let (status, answer) = post_to_receiver(&receiver, &body);
    assert_eq!(status, 200, "{answer}");
    assert!(receiver.wait_for_events(20, std::time::Duration::from_secs(10)));
    let stored = receiver.events();
    assert_eq!(stored.len(), 20);
    assert_eq!(stored[3]["properties"]["i"], json!(3));
    assert_eq!(stored[3]["properties"]["ctl\u{1}\"\\"], "é😀\u{0}");
}

// ---- Batch limits ------------------------------------------------------------------------

fn small_event(i: u64) -> Event<'static, impl Props> {
    Event::new("tick", "user-1").prop("i", i).timestamp_unix_nanos(T + i)
}

#[test]
fn count_limit_gives_full() {
    let limits = Limits { max_events: 3, ..Limits::DEFAULT };
    let envelope = Envelope { api_key: "phc_k", historical_migration: false };
    let mut batch = Batch::new(vec![0u8; 1 << 16], vec![0u32; 64], limits, envelope.overhead());
    let mut enc = encoder("production");
    for i in 0..3 {
        assert!(!batch.is_full());
        assert!(matches!(batch.push(&mut enc, &small_event(i), &CLOCK), Pushed::Added(_)));
    }
    assert!(batch.is_full());
    let before = batch.events(0..3).to_vec();
    assert_eq!(batch.push(&mut enc, &small_event(3), &CLOCK), Pushed::Full);
    assert_eq!(batch.len(), 3);
    assert_eq!(batch.events(0..3), &before[..]);
    check_batch(&envelope, T, &batch, &limits);
    batch.clear();
    assert!(batch.is_empty());
    assert!(matches!(batch.push(&mut enc, &small_event(3), &CLOCK), Pushed::Added(_)));
    let v = check_batch(&envelope, T, &batch, &limits);
    assert_eq!(v["batch"][0]["properties"]["i"], json!(3));
}

#[test]
fn count_limit_is_capped_by_the_ends_buffer() {
    let limits = Limits::DEFAULT; // 64 events
    let envelope = Envelope { api_key: "phc_k", historical_migration: false };
    let mut batch = Batch::new(vec![0u8; 1 << 16], [0u32; 2], limits, envelope.overhead());
    let mut enc = encoder("production");
    assert!(matches!(batch.push(&mut enc, &small_event(0), &CLOCK), Pushed::Added(_)));
    assert!(matches!(batch.push(&mut enc, &small_event(1), &CLOCK), Pushed::Added(_)));
    assert_eq!(batch.push(&mut enc, &small_event(2), &CLOCK), Pushed::Full);
    check_batch(&envelope, T, &batch, &limits);
}

#[test]
fn byte_limit_stops_before_the_limit_and_resumes_after_clear() {
    let envelope = Envelope { api_key: "phc_k", historical_migration: false };
    for max_batch_bytes in [900, 1000, 1500, 2048, 4099] {
        let limits = Limits { max_events: 1000, max_batch_bytes, max_event_bytes: 900_000 };
        let mut batch = Batch::new(vec![0u8; 1 << 16], vec![0u32; 1000], limits, envelope.overhead());
        let mut enc = encoder("production");
        let mut sent = 0u64;
        let mut bodies = 0;
        let mut i = 0u64;
        while i < 40 {
            match batch.push(&mut enc, &small_event(i), &CLOCK) {
                Pushed::Added(_) => i += 1,
                Pushed::Full => {
                    assert!(!batch.is_empty(), "an empty batch is never Full by bytes");
                    let body = body(&envelope, T, &batch);
                    assert!(body.len() <= max_batch_bytes, "{} > {max_batch_bytes}", body.len());
                    // It stopped because the next event did not fit, not before.
                    let (next, _) = encode_one(&mut enc.clone(), &small_event(i), &CLOCK);
                    assert!(body.len() + 1 + next.len() > max_batch_bytes, "stopped early");
                    check_batch(&envelope, T, &batch, &limits);
                    sent += batch.len() as u64;
                    bodies += 1;
                    batch.clear();
                    // The next push after clear succeeds.
                    assert!(matches!(batch.push(&mut enc, &small_event(i), &CLOCK), Pushed::Added(_)));
                    i += 1;
                }
                Pushed::TooLarge => panic!("a small event is never too large"),
                Pushed::Invalid => panic!("a valid event is never refused as invalid"),
            }
        }
        sent += batch.len() as u64;
        check_batch(&envelope, T, &batch, &limits);
        assert_eq!(sent, 40);
        assert!(bodies >= 1, "{max_batch_bytes}: the limit was reached");
    }
}

#[test]
fn event_larger_than_an_empty_batch_is_too_large() {
    let envelope = Envelope { api_key: "phc_k", historical_migration: false };
    let limits = Limits { max_events: 10, max_batch_bytes: 600, max_event_bytes: 900_000 };
    let mut batch = Batch::new(vec![0u8; 1 << 16], vec![0u32; 10], limits, envelope.overhead());
    let mut enc = encoder("production");
    static BIG: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
                        0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
                        0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
                        0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let big = Event::new("e", "u1").prop("blob", Static(BIG));
    assert_eq!(batch.push(&mut enc, &big, &CLOCK), Pushed::TooLarge);
    assert!(batch.is_empty());
    assert!(matches!(batch.push(&mut enc, &small_event(0), &CLOCK), Pushed::Added(_)));
    check_batch(&envelope, T, &batch, &limits);
}

static HUGE: std::sync::LazyLock<&'static str> = std::sync::LazyLock::new(|| "a".repeat(1_000_000).leak());

/// The entry `event` makes in lanes that take entries of up to 2 MiB (`max_event_bytes` may
/// be set up to 8 MiB; the 32 KiB default would cut the large strings these tests need),
/// drained as the flusher reads it: for the batch's per-event limit on large events.
fn large_entry<P: Props>(event: &Event<'_, P>) -> Vec<u8> {
    let queue = HeapQueue::with_blocks(1, 4, 4 << 20);
    let mut producer = HeapQueue::producer(&queue).expect("lane");
    assert_eq!(producer.capture(event, &CLOCK), Captured::Queued);
    let mut consumer = try_consumer(&queue).expect("consumer");
    let mut entry = Vec::new();
    let drained = consumer.drain(|bytes| {
        entry = bytes.to_vec();
        true
    });
    assert_eq!(drained.events, 1);
    let (_, notes) = encode_one(&mut encoder("production"), &entry[..], &CLOCK);
    assert_eq!(notes.truncated, 0, "kept whole");
    entry
}

#[test]
fn event_over_max_event_bytes_is_too_large_and_leaves_the_batch_alone() {
    let envelope = Envelope { api_key: "phc_k", historical_migration: false };
    let limits = Limits::DEFAULT;
    let mut batch = Batch::new(vec![0u8; 1 << 20], vec![0u32; 64], limits, envelope.overhead());
    let mut enc = encoder("production");
    for i in 0..5 {
        assert!(matches!(batch.push(&mut enc, &small_event(i), &CLOCK), Pushed::Added(_)));
    }
    let before = batch.events(0..5).to_vec();
    let bytes_before = batch.bytes_len();
    let huge = large_entry(&Event::new("e", "u1").prop("blob", Static(&HUGE)).timestamp_unix_nanos(T));
    let huge = &huge[..];
    // Still 5 events of room left: the batch is not full, the event is too large alone.
    assert_eq!(batch.push(&mut enc, huge, &CLOCK), Pushed::TooLarge);
    assert_eq!(batch.len(), 5);
    assert_eq!(batch.bytes_len(), bytes_before);
    assert_eq!(batch.events(0..5), &before[..]);
    assert!(matches!(batch.push(&mut enc, &small_event(5), &CLOCK), Pushed::Added(_)));
    let v = check_batch(&envelope, T, &batch, &limits);
    assert_eq!(v["batch"][5]["properties"]["i"], json!(5));
    // And into an empty batch too.
    batch.clear();
    assert_eq!(batch.push(&mut enc, huge, &CLOCK), Pushed::TooLarge);
    assert!(batch.is_empty());
}

#[test]
fn max_event_bytes_boundary_is_inclusive() {
    let event = Event::new("e", "u1").prop("x", "abc").timestamp_unix_nanos(T);
    let (text, _) = encode_one(&mut encoder("production"), &event, &CLOCK);
    // The limit counts the event as PostHog re-encodes it: each `"` and `\` once more.
    let n = text.len() + text.bytes().filter(|&b| b == b'"' || b == b'\\').count();
    let envelope = Envelope { api_key: "phc_k", historical_migration: false };
    for (max_event_bytes, fits) in [(n, true), (n - 1, false), (text.len(), false)] {
        let limits = Limits { max_events: 4, max_batch_bytes: 1 << 16, max_event_bytes };
        let mut batch = Batch::new(vec![0u8; 1 << 16], vec![0u32; 4], limits, envelope.overhead());
        let got = batch.push(&mut encoder("production"), &event, &CLOCK);
        assert_eq!(matches!(got, Pushed::Added(_)), fits, "limit {max_event_bytes}, event {n}");
        if !fits {
            assert_eq!(got, Pushed::TooLarge);
        }
    }
}

#[test]
fn quote_heavy_event_within_max_event_bytes_fits_the_server_limit() {
    // 300,000 quotes: 600 KB as encoded (under the 900 KB default), but PostHog re-encodes the
    // event as an escaped string, where each `\"` costs four bytes: about 1.2 MB, a 413.
    static QUOTES: std::sync::LazyLock<&'static str> =
        std::sync::LazyLock::new(|| "\"".repeat(300_000).leak());
    let envelope = Envelope { api_key: "phc_k", historical_migration: false };
    let limits = Limits::DEFAULT;
    let mut batch = Batch::new(vec![0u8; 1 << 20], vec![0u32; 64], limits, envelope.overhead());
    let mut enc = encoder("production");
    let event = large_entry(&Event::new("e", "u1").prop("q", Static(&QUOTES)).timestamp_unix_nanos(T));
    let event = &event[..];
    let mut alone = enc.clone();
    match batch.push(&mut enc, event, &CLOCK) {
        // Sent: then the server must accept it.
        Pushed::Added(_) => {
            let raw = std::str::from_utf8(batch.events(0..1)).unwrap();
            assert!(
                server_event_size(raw) <= SERVER_MAX_EVENT_BYTES,
                "accepted an event PostHog refuses: {} bytes re-encoded",
                server_event_size(raw)
            );
        }
        Pushed::TooLarge => {}
        Pushed::Full => panic!("an empty batch is never full"),
        Pushed::Invalid => panic!("a valid event is never refused as invalid"),
    }
    // What PostHog's rules say about that event (the receiver applies them).
    let receiver = fasthog_receiver::Receiver::start(Default::default()).expect("receiver");
    let mut one = Batch::new(
        vec![0u8; 1 << 21],
        vec![0u32; 1],
        Limits { max_event_bytes: 1 << 21, max_batch_bytes: 1 << 21, ..limits },
        envelope.overhead(),
    );
    assert!(matches!(one.push(&mut alone, event, &CLOCK), Pushed::Added(_)));
    let (status, answer) = post_to_receiver(&receiver, &body(&envelope, T, &one));
    assert_eq!(status, 413, "PostHog refuses it: {answer}");
    assert!(matches!(batch.push(&mut enc, event, &CLOCK), Pushed::TooLarge), "so fasthog must too");
    // A plain event of the same encoded size is fine.
    static PLAIN: std::sync::LazyLock<&'static str> = std::sync::LazyLock::new(|| "q".repeat(600_000).leak());
    batch.clear();
    let plain = large_entry(&Event::new("e", "u1").prop("q", Static(&PLAIN)).timestamp_unix_nanos(T));
    assert!(matches!(batch.push(&mut enc, &plain[..], &CLOCK), Pushed::Added(_)));
    check_batch(&envelope, T, &batch, &limits);
}

#[test]
fn sub_ranges_are_valid_json_arrays() {
    let envelope = Envelope { api_key: "phc_k", historical_migration: false };
    let limits = Limits::DEFAULT;
    let mut batch = Batch::new(vec![0u8; 1 << 20], vec![0u32; 64], limits, envelope.overhead());
    let mut enc = encoder("production");
    for i in 0..7 {
        let event = small_event(i).prop_dyn("s,]}", "[,{\"");
        assert!(matches!(batch.push(&mut enc, &event, &CLOCK), Pushed::Added(_)));
    }
    let all: Value = {
        let mut text = b"[".to_vec();
        text.extend_from_slice(batch.events(0..7));
        text.push(b']');
        serde_json::from_slice(&text).unwrap()
    };
    let all = all.as_array().unwrap();
    for a in 0..=7 {
        for b in a..=7 {
            let mut text = b"[".to_vec();
            text.extend_from_slice(batch.events(a..b));
            text.push(b']');
            let part: Value = serde_json::from_slice(&text)
                .unwrap_or_else(|e| panic!("{a}..{b}: {e}: {}", String::from_utf8_lossy(&text)));
            assert_eq!(part.as_array().unwrap()[..], all[a..b], "{a}..{b}");
            // And as a request body of its own (the 413 split), when non-empty.
            if a < b {
                let mut head = [0u8; HEAD_CAPACITY];
                let n = envelope.write_head(T, &mut head);
                let mut body = head[..n].to_vec();
                body.extend_from_slice(batch.events(a..b));
                body.extend_from_slice(TAIL);
                check_body(&body);
            }
        }
    }
}

#[test]
fn encoder_reports_overflow_in_a_small_writer() {
    // The writer contract the batch relies on: an event that does not fit sets the flag.
    let mut buf = [0u8; 64];
    let mut w = Writer::new(&mut buf, 0);
    encoder("production").encode(&typical(), &CLOCK, &mut w);
    assert!(w.overflowed());
    assert!(w.len() <= 64);
}

// ---- Nested values and the types a call site uses ----------------------------------------

/// The exact `properties` text of `event` up to the enrichment (its user properties as
/// written, in order), and its parsed properties.
fn user_props_text(event: &(impl AsEntry + ?Sized)) -> (String, Value) {
    let (text, notes) = encode_one(&mut encoder("production"), event, &CLOCK);
    assert_eq!(notes, Notes::default(), "{text}");
    let v = check_event_json(&text);
    let start = text.find("\"properties\":{").unwrap() + "\"properties\":{".len();
    let end = text.find("\"event_schema_version\"").unwrap();
    (text[start..end].to_owned(), v["properties"].clone())
}

#[test]
fn golden_nested_values() {
    let tags = [V::from("a"), V::from(2), V::from(true), V::Null, V::from(-1.5)];
    let pair = [V::from(1), V::from(2)];
    let obj = [("x", V::from("y")), ("n", V::array(&pair)), ("u", V::from(u64::MAX))];
    let z = [V::from("z")];
    let level2 = [V::array(&z)];
    let level1 = [V::array(&level2)];
    let c = [("c", V::from(1))];
    let b = [("b", V::object(&c))];
    let a = [("a", V::object(&b))];
    let mixed = [("list", V::array(&tags)), ("empty", V::array(&[]))];
    let prefs = [("theme", V::from("dark")), ("sizes", V::array(&pair))];
    let event = Event::new("e", "u1")
        .prop("tags", V::array(&tags))
        .prop("obj", V::object(&obj))
        .prop("deep", V::array(&level1))
        .prop("deep_obj", V::object(&a))
        .prop("empty_arr", V::array(&[]))
        .prop("empty_obj", V::object(&[]))
        .prop("mixed", [V::object(&mixed), V::object(&[])])
        .prop("vec", vec![vec![1i64, 2], vec![], vec![3]])
        .prop("strs", &["p", "q\"r"][..])
        .set("prefs", V::object(&prefs))
        .timestamp_unix_nanos(T);
    let (text, p) = user_props_text(&event);
    assert_eq!(
        text,
        concat!(
            r#""tags":["a",2,true,null,-1.5],"obj":{"x":"y","n":[1,2],"u":18446744073709551615},"#,
            r#""deep":[[["z"]]],"deep_obj":{"a":{"b":{"c":1}}},"empty_arr":[],"empty_obj":{},"#,
            r#""mixed":[{"list":["a",2,true,null,-1.5],"empty":[]},{}],"vec":[[1,2],[],[3]],"#,
            r#""strs":["p","q\"r"],"#
        )
    );
    assert_eq!(p["$set"], json!({"prefs": {"theme": "dark", "sizes": [1, 2]}}));
    assert_eq!(p["deep_obj"]["a"]["b"]["c"], json!(1));
    // The entry a lane holds encodes the same.
    assert_eq!(user_props_text(&event.to_entry()).0, text);
}

/// A function that takes any event: the builder's shape is a type parameter.
fn track(event: &Event<'_, impl Props>) -> Value {
    encode(event)
}

#[test]
fn golden_every_call_site_value_type() {
    let owned = String::from("owned");
    let name = String::from("runtime_name");
    let id = String::from("user-7");
    let key = String::from("plan");
    let event = Event::new(&name, &id)
        .prop("string", owned.clone())
        .prop("string_ref", &owned)
        .prop("some", Some(3))
        .prop("some_string", Some(String::from("s")))
        .prop("none", None::<i64>)
        .prop("none_str", None::<&str>)
        .prop("i8", i8::MIN)
        .prop("i16", i16::MIN)
        .prop("i32", i32::MIN)
        .prop("i64", i64::MIN)
        .prop("isize", -1isize)
        .prop("u8", u8::MAX)
        .prop("u16", u16::MAX)
        .prop("u32", u32::MAX)
        .prop("u64", u64::MAX)
        .prop("usize", 1usize)
        .prop("f32", 1.5f32)
        .prop("f64", 0.1)
        .prop("bool", true)
        .prop(key.clone(), "owned key")
        .prop_if(true, "pro", true)
        .prop_if(false, "trial", true)
        .prop_if(owned.is_empty(), &key, 0)
        .set(&key, "pro")
        .set_once(key.as_str(), "free")
        .timestamp_unix_nanos(T);
    let (text, p) = user_props_text(&event);
    assert_eq!(
        text,
        concat!(
            r#""string":"owned","string_ref":"owned","some":3,"some_string":"s","none":null,"#,
            r#""none_str":null,"i8":-128,"i16":-32768,"i32":-2147483648,"#,
            r#""i64":-9223372036854775808,"isize":-1,"u8":255,"u16":65535,"u32":4294967295,"#,
            r#""u64":18446744073709551615,"usize":1,"f32":1.5,"f64":0.1,"bool":true,"#,
            r#""plan":"owned key","pro":true,"#
        )
    );
    let v = track(&event);
    assert_eq!((v["event"].as_str(), v["distinct_id"].as_str()), (Some("runtime_name"), Some("user-7")));
    assert_eq!(p["$set"], json!({"plan": "pro"}));
    assert_eq!(p["$set_once"], json!({"plan": "free"}));
    assert!(p.get("trial").is_none());

    // Runtime keys for $group_set, and a runtime group.
    let (group_type, seats) = (String::from("company"), String::from("seats"));
    let event =
        Event::group_identify(&group_type, &id).group_set(&seats, 40).group_set(String::from("n"), "A");
    let v = track(&event);
    assert_eq!(v["distinct_id"], "$company_user-7");
    assert_eq!(v["properties"]["$group_set"], json!({"seats": 40, "n": "A"}));

    // `.props()` over a `&Vec<(String, i64)>` (in order) and a `&HashMap<String, i64>`.
    let pairs: Vec<(String, i64)> = vec![("b".into(), 2), ("a".into(), 1)];
    let (text, _) = user_props_text(&Event::new("e", "u1").props(&pairs).timestamp_unix_nanos(T));
    assert_eq!(text, r#""b":2,"a":1,"#);
    let counts: HashMap<String, i64> = HashMap::from([("x".into(), 1), ("y".into(), 2), ("z".into(), 3)]);
    let v = track(&Event::new("e", "u1").props(&counts).prop("after", 4));
    for (k, n) in &counts {
        assert_eq!(v["properties"][k], json!(n), "{k}");
    }
    assert_eq!(v["properties"]["after"], json!(4));
    // A conditional property through `prop_if` with a runtime condition, in a helper that
    // takes any event.
    for pro in [true, false] {
        let v = track(&Event::new("upgraded", "u1").prop_if(pro, "plan", "pro").prop("n", 1));
        assert_eq!(v["properties"].get("plan").is_some(), pro);
        assert_eq!(v["properties"]["n"], json!(1));
    }
}

/// Regression: an object member's key of 10 bytes (the `END` tag's value, as a length byte)
/// ended its object early, and the rest of the entry was read as garbage (invalid UTF-8 and
/// JSON). Keys of every length round-trip, in objects nested in arrays and in `$set`.
#[test]
fn object_member_keys_of_every_length_round_trip() {
    for len in 0..300 {
        let key = "k".repeat(len);
        let members = [(key.as_str(), V::Null), ("after", V::from(len))];
        let items = [V::object(&members), V::from(1)];
        let event = Event::new("e", "u1")
            .prop("obj", V::object(&members))
            .prop("arr", V::array(&items))
            .set("s", V::object(&members))
            .prop("last", true);
        let p = &encode(&event)["properties"];
        let want = json!({ key.clone(): null, "after": len });
        assert_eq!(p["obj"], want, "key of {len} bytes");
        assert_eq!(p["arr"], json!([want.clone(), 1]), "key of {len} bytes");
        assert_eq!(p["$set"]["s"], want, "key of {len} bytes");
        assert_eq!(p["last"], json!(true), "key of {len} bytes");
    }
}
