//! The PostHog API surface: identify, alias, groups, personless events, super properties,
//! historical migration, and the test recorders. Each event shape is checked against the
//! capture rules and accepted by the local receiver.

mod common;

use std::time::Duration;

use common::*;
use fasthog::batch::{Batch, Encoder, Enrichment, Envelope, Limits, Pushed, HEAD_CAPACITY};
use fasthog::recorder::{BufRecorder, Recorder};
use fasthog::ring::HasLanes;
use fasthog::transport::{Request, Transport};
use fasthog::{Captured, Client, Event, FixedClock, HeapQueue, Static, Value};
use serde_json::json;

const CLOCK: FixedClock = FixedClock(1_700_000_000_000_000_000);

fn encode(event: &(impl fasthog::AsEntry + ?Sized), enrichment: Enrichment<'_>) -> serde_json::Value {
    let mut encoder = Encoder::new(enrichment, 1);
    let (text, _) = encode_one(&mut encoder, event, &CLOCK);
    check_event_json(&text)
}

fn props(event: &(impl fasthog::AsEntry + ?Sized)) -> serde_json::Value {
    encode(event, Enrichment::DEFAULT)["properties"].clone()
}

#[test]
fn identify_sends_identify_with_set_and_set_once() {
    let e = Event::identify("user-42")
        .set("email", "ada@example.com")
        .set_once("first_seen", "2026-11-28")
        .anon_distinct_id("anon-9");
    let v = encode(&e, Enrichment::DEFAULT);
    assert_eq!(v["event"], "$identify");
    assert_eq!(v["distinct_id"], "user-42");
    let p = &v["properties"];
    assert_eq!(p["$set"], json!({"email": "ada@example.com"}));
    assert_eq!(p["$set_once"], json!({"first_seen": "2026-11-28"}));
    assert_eq!(p["$anon_distinct_id"], "anon-9");
}

#[test]
fn alias_sends_create_alias_with_alias_property() {
    let v = encode(&Event::alias("user-42", "legacy-7"), Enrichment::DEFAULT);
    assert_eq!(v["event"], "$create_alias");
    assert_eq!(v["distinct_id"], "user-42");
    assert_eq!(v["properties"]["alias"], "legacy-7");
}

#[test]
fn group_identify_sends_groupidentify_with_type_key_and_group_set() {
    let e = Event::group_identify("company", "acme").group_set("seats", 40).group_set("name", "Acme");
    let v = encode(&e, Enrichment::DEFAULT);
    assert_eq!(v["event"], "$groupidentify");
    assert_eq!(v["distinct_id"], "$company_acme");
    let p = &v["properties"];
    assert_eq!(p["$group_type"], "company");
    assert_eq!(p["$group_key"], "acme");
    assert_eq!(p["$group_set"], json!({"seats": 40, "name": "Acme"}));
    // The group's distinct_id contains no ':' and is not a user: user_id follows the Go rule
    // on the distinct_id as sent.
    assert_eq!(p["user_id"], "$company_acme");
}

#[test]
fn groups_attach_to_any_event() {
    let e = Event::new("invoice_paid", "user-42").group("company", "acme").group("project", "p-7");
    assert_eq!(props(&e)["$groups"], json!({"company": "acme", "project": "p-7"}));
    // The last key for a group type wins, written once.
    let e = Event::new("x", "u").group("company", "old").group("company", "new");
    assert_eq!(props(&e)["$groups"], json!({"company": "new"}));
}

#[test]
fn personless_events_do_not_process_person_profiles() {
    let p = props(&Event::new("page_view", "anon-1").personless());
    assert_eq!(p["$process_person_profile"], false);
    // A user property of that name cannot contradict it.
    let e = Event::new("page_view", "anon-1").prop("$process_person_profile", true).personless();
    assert_eq!(props(&e)["$process_person_profile"], false);
    assert!(props(&Event::new("page_view", "anon-1")).get("$process_person_profile").is_none());
}

#[test]
fn geoip_disable_default_and_switch() {
    assert_eq!(props(&Event::new("x", "u"))["$geoip_disable"], true);
    let off = Enrichment { geoip_disable: false, ..Enrichment::DEFAULT };
    assert!(encode(&Event::new("x", "u"), off)["properties"].get("$geoip_disable").is_none());
    // An event that sets it keeps its own value.
    assert_eq!(props(&Event::new("x", "u").prop("$geoip_disable", false))["$geoip_disable"], false);
}

#[test]
fn super_properties_are_added_and_lose_to_event_and_enrichment() {
    let supers = [
        ("service", Value::Str("matcher")),
        ("region", Value::Str("eu-1")),
        ("environment", Value::from(Static("ignored"))),
        ("region", Value::Str("eu-2")),
        ("is_demo", Value::Bool(true)),
    ];
    let enrichment = Enrichment { environment: "prod", super_properties: &supers, ..Enrichment::DEFAULT };
    let p = encode(&Event::new("x", "u").prop("service", "override"), enrichment)["properties"].clone();
    assert_eq!(p["service"], "override", "the event's own property wins");
    assert_eq!(p["region"], "eu-2", "the last super property of a name wins");
    assert_eq!(p["environment"], "prod", "enrichment wins over super properties");
    assert_eq!(p["is_demo"], true, "a super property counts as set for the is_demo rule");
}

#[test]
fn historical_migration_goes_in_the_envelope() {
    let mut head = [0u8; HEAD_CAPACITY];
    let env = Envelope { api_key: "phc_k", historical_migration: true };
    let n = env.write_head(0, &mut head);
    let mut body = head[..n].to_vec();
    body.extend_from_slice(b"{\"event\":\"e\",\"distinct_id\":\"d\"}]}");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["historical_migration"], true);
}

#[test]
fn bad_input_is_rejected_and_counted_never_sent() {
    let queue = std::sync::Arc::new(HeapQueue::with_blocks(1, 4, 1024));
    let mut lane = HeapQueue::producer(queue.clone()).unwrap();
    let mut cases = 0u64;
    // Events of different shapes are different types: one expansion per case.
    macro_rules! case {
        ($e:expr) => {{
            let (what, e) = (stringify!($e), $e);
            assert!(e.is_invalid(), "{what} should be invalid");
            assert_eq!(lane.capture(&e, &CLOCK), Captured::Rejected, "{what}");
            cases += 1;
        }};
    }
    case!(Event::group_identify("", "acme"));
    case!(Event::group_identify("company", " "));
    case!(Event::new("x", "u").group("", "acme"));
    case!(Event::new("x", "u").group("company", ""));
    case!(Event::alias("user-42", ""));
    case!(Event::alias("", "legacy"));
    case!(Event::identify(""));
    case!(Event::identify("\t "));
    assert_eq!(cases, 8);
    let stats = queue.stats();
    assert_eq!(stats.rejected, cases);
    assert_eq!(stats.captured, cases);
    assert_eq!(queue.lanes().totals().pushed, 0, "nothing reached a lane");
}

#[test]
fn every_shape_is_accepted_by_the_receiver_in_one_batch() {
    let receiver = fasthog_receiver::Receiver::start(Default::default()).unwrap();
    let env = Envelope { api_key: "phc_surface", historical_migration: false };
    let limits = Limits::DEFAULT;
    let mut batch = Batch::new(vec![0u8; 1 << 16], vec![0u32; 16], limits, env.overhead());
    let mut encoder = Encoder::new(Enrichment::DEFAULT, 3);
    // Events of different shapes are different types: keep the entries they make (pushing the
    // builders themselves encodes the same entries).
    let events = [
        Event::identify("user-42").set("email", "ada@example.com").to_entry(),
        Event::alias("user-42", "legacy-7").to_entry(),
        Event::group_identify("company", "acme").group_set("seats", 40).to_entry(),
        Event::new("invoice_paid", "user-42").group("company", "acme").prop("amount", 99.5).to_entry(),
        Event::new("page_view", "anon-1").personless().prop("path", Static("/pricing")).to_entry(),
    ];
    for e in &events {
        assert!(matches!(batch.push(&mut encoder, e, &CLOCK), Pushed::Added(_)));
    }
    let body = body(&env, 1_700_000_000_000_000_000, &batch);
    check_body(&body);
    let (status, reply) = post_to_receiver(&receiver, &body);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(receiver.stats().events_accepted, events.len() as u64);
}

#[test]
fn buf_recorder_keeps_events_without_std_types() {
    let mut storage = [0u8; 512];
    let mut recorder = BufRecorder::new(&mut storage[..]);
    let events =
        br#"{"event":"a","distinct_id":"u"},{"event":"b","distinct_id":"u","properties":{"s":"x,y"}}"#;
    let request = Request { head: b"", events, tail: b"", event_count: 2, attempt: 1 };
    let resp = futures_lite::future::block_on(recorder.send(request)).unwrap();
    assert_eq!(resp.status, 200);
    let got: Vec<&str> = recorder.events().collect();
    assert_eq!(
        got,
        [r#"{"event":"a","distinct_id":"u"}"#, r#"{"event":"b","distinct_id":"u","properties":{"s":"x,y"}}"#]
    );
    // A full buffer counts what it could not keep.
    let mut tiny = [0u8; 40];
    let small = BufRecorder::new(&mut tiny[..]);
    futures_lite::future::block_on(small.send(request)).unwrap();
    assert_eq!((small.len(), small.overflowed()), (1, 1));
}

#[test]
fn recorder_client_mode_records_delivered_events_with_super_properties() {
    let recorder = Recorder::new();
    recorder.respond_with([503]); // the first attempt fails: nothing recorded, then a retry
    let client = Client::builder("phc_recorder")
        .super_property("service", "matcher")
        .retry(fasthog::RetryPolicy { initial_backoff_ms: 1, ..Default::default() })
        .build_with_transport(recorder.clone())
        .unwrap();
    let _ = client.capture(&Event::identify("user-1").set("plan", "pro"));
    let _ = client.capture(&Event::new("order_filled", "user-1").prop("qty", 3).group("desk", "fx"));
    let _ = client.capture(&Event::new("", "user-1")); // rejected, never recorded
    client.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(recorder.names(), ["$identify", "order_filled"]);
    let events = recorder.events();
    assert_eq!(events[0].get_str(&["properties", "$set", "plan"]).as_deref(), Some("pro"));
    assert_eq!(events[1].property("qty"), Some("3"));
    assert_eq!(events[1].get_str(&["properties", "service"]).as_deref(), Some("matcher"));
    assert_eq!(events[1].get_str(&["properties", "$groups", "desk"]).as_deref(), Some("fx"));
    assert_eq!(recorder.requests(), 2, "one 503, one retry");
    let stats = client.shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!((stats.sent, stats.rejected, stats.retried, stats.pending), (2, 1, 1, 0));
}
