//! Error tracking: `$exception` events for an error chain (golden JSON, with and without
//! frames), accepted by the receiver's capture rules; captured without allocation when no
//! backtrace is attached; and a panic in a thread delivered by the panic hook.

#[path = "common/alloc.rs"]
mod alloc;
mod common;

use std::backtrace::Backtrace;
use std::fmt;
use std::time::Duration;

use alloc::allocations;
use common::*;
use fasthog::batch::{Batch, Encoder, Enrichment, Envelope, Limits, Pushed};
use fasthog::recorder::Recorder;
use fasthog::{Captured, Client, Event};
use serde_json::json;

const CLOCK: fasthog::FixedClock = fasthog::FixedClock(1_700_000_000_000_000_000);

/// The innermost error: a refused connection (its `Display` in pieces, with arguments).
#[derive(Debug)]
struct Refused {
    port: u16,
}
impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection refused on port {}", self.port)
    }
}
impl std::error::Error for Refused {}

#[derive(Debug)]
struct Fetch(Refused);
impl fmt::Display for Fetch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fetching \"prices\" failed")
    }
}
impl std::error::Error for Fetch {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[derive(Debug)]
struct Quote<T>(Fetch, T);
impl<T> fmt::Display for Quote<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no quote for ")?;
        f.write_str("XNAS")
    }
}
impl<T: fmt::Debug> std::error::Error for Quote<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn chain() -> Quote<u8> {
    Quote(Fetch(Refused { port: 443 }), 0)
}

fn encode(event: &(impl fasthog::AsEntry + ?Sized)) -> serde_json::Value {
    let mut encoder = Encoder::new(Enrichment::DEFAULT, 1);
    let (text, _) = encode_one(&mut encoder, event, &CLOCK);
    check_event_json(&text)
}

fn golden_list() -> serde_json::Value {
    json!([
        {"type": "exception::Quote", "value": "no quote for XNAS",
         "mechanism": {"type": "generic", "handled": true, "synthetic": false, "exception_id": 0}},
        {"type": "Error", "value": "fetching \"prices\" failed",
         "mechanism": {"type": "chained", "handled": true, "synthetic": false, "exception_id": 1, "parent_id": 0}},
        {"type": "Error", "value": "connection refused on port 443",
         "mechanism": {"type": "chained", "handled": true, "synthetic": false, "exception_id": 2, "parent_id": 1}},
    ])
}

#[test]
fn chain_of_three_golden() {
    let err = chain();
    let v = encode(&Event::exception(&err, "user-1"));
    assert_eq!(v["event"], "$exception");
    assert_eq!(v["distinct_id"], "user-1");
    let p = &v["properties"];
    assert_eq!(p["$exception_list"], golden_list());
    assert_eq!(p["$exception_level"], "error");
    assert!(p.get("$exception_fingerprint").is_none());
}

#[test]
fn options_level_handled_fingerprint_and_dyn_errors() {
    let err = chain();
    let e = Event::exception(&err, "user-1")
        .level("warning")
        .handled(false)
        .fingerprint("quotes")
        .prop("desk", "fx");
    let p = encode(&e)["properties"].clone();
    assert_eq!(p["$exception_level"], "warning");
    assert_eq!(p["$exception_fingerprint"], "quotes");
    assert_eq!(p["desk"], "fx");
    for item in p["$exception_list"].as_array().unwrap() {
        assert_eq!(item["mechanism"]["handled"], false);
    }
    // A lone error: no chain ids; a `dyn Error` has no concrete type name.
    let lone = Refused { port: 1 };
    let dynamic: &(dyn std::error::Error + Send + Sync) = &lone;
    let p = encode(&Event::exception(dynamic, "user-1"))["properties"].clone();
    assert_eq!(
        p["$exception_list"],
        json!([{"type": "Error", "value": "connection refused on port 1",
                "mechanism": {"type": "generic", "handled": true, "synthetic": false}}])
    );
    let p = encode(&Event::exception(&lone, "user-1"))["properties"].clone();
    assert_eq!(p["$exception_list"][0]["type"], "exception::Refused");
}

/// A `Display` longer than the 255-byte short form, and one longer than the whole entry
/// limit: the value is cut on a char boundary and counted, the event still sent.
#[derive(Debug)]
struct Long(usize);
impl fmt::Display for Long {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for _ in 0..self.0 {
            f.write_str("é")?;
        }
        Ok(())
    }
}
impl std::error::Error for Long {}

/// Through the client: a lane's first try in a small area gives up and the retry in a larger
/// one writes the message whole, or cut to the entry limit.
#[test]
fn long_messages_through_the_client() {
    let recorder = Recorder::new();
    let client = Client::builder("phc_long").build_with_transport(recorder.clone()).unwrap();
    for n in [10, 200, 1_000, 5_000, 40_000] {
        assert_eq!(client.capture_exception(&Long(n), "u"), Captured::Queued, "{n}");
    }
    client.flush(Duration::from_secs(10)).unwrap();
    let events = recorder.events();
    assert_eq!(events.len(), 5);
    for (e, n) in events.iter().zip([10usize, 200, 1_000, 5_000, 40_000]) {
        let v = check_event_json(&e.json);
        let value = v["properties"]["$exception_list"][0]["value"].as_str().unwrap().to_owned();
        if n < 10_000 {
            assert_eq!(value, "é".repeat(n));
        } else {
            assert!(value.len() > 10_000 && value.len() < 2 * n && value.chars().all(|c| c == 'é'));
        }
    }
}

#[test]
fn long_messages_are_written_and_cut() {
    let p = encode(&Event::exception(&Long(300), "u"))["properties"].clone();
    assert_eq!(p["$exception_list"][0]["value"], "é".repeat(300));
    let e = Event::exception(&Long(40_000), "u");
    assert_eq!(e.truncated(), 1);
    let v = encode(&e)["properties"]["$exception_list"][0]["value"].as_str().unwrap().len();
    assert!(v > 10_000 && v < 40_000 * 2, "{v}");
}

#[test]
fn chain_with_frames() {
    let err = chain();
    let bt = Backtrace::force_capture();
    let v = encode(&Event::exception(&err, "user-1").backtrace(&bt));
    let list = &v["properties"]["$exception_list"];
    let trace = &list[0]["stacktrace"];
    assert_eq!(trace["type"], "raw");
    let frames = trace["frames"].as_array().unwrap();
    assert!(!frames.is_empty() && frames.len() <= fasthog::MAX_FRAMES);
    for f in frames {
        assert_eq!(f["platform"], "rust");
        assert!(f["function"].is_string());
        assert!(f["in_app"].is_boolean());
    }
    // Oldest call first: this test's own frame comes after the test harness's.
    let names: Vec<&str> = frames.iter().map(|f| f["function"].as_str().unwrap()).collect();
    let me = names.iter().position(|n| n.contains("chain_with_frames")).expect("this test's frame");
    assert!(frames[me]["in_app"] == true && frames[me]["lineno"].is_u64(), "{}", frames[me]);
    assert!(frames[me]["filename"].as_str().unwrap().ends_with("exception.rs"));
    // The rest is the golden list, and the sources carry no trace.
    let mut without = list.clone();
    without[0].as_object_mut().unwrap().remove("stacktrace");
    assert_eq!(without, golden_list());
    // A disabled backtrace adds nothing.
    let off = Backtrace::disabled();
    let p = encode(&Event::exception(&err, "user-1").backtrace(&off))["properties"].clone();
    assert_eq!(p["$exception_list"], golden_list());
}

#[test]
fn accepted_by_the_receiver() {
    let receiver = fasthog_receiver::Receiver::start(Default::default()).unwrap();
    let env = Envelope { api_key: "phc_exception", historical_migration: false };
    let mut batch = Batch::new(vec![0u8; 1 << 18], vec![0u32; 16], Limits::DEFAULT, env.overhead());
    let mut encoder = Encoder::new(Enrichment::DEFAULT, 3);
    let err = chain();
    let bt = Backtrace::force_capture();
    let events = [
        Event::exception(&err, "user-1").to_entry(),
        Event::exception(&err, "user-1").backtrace(&bt).level("fatal").fingerprint("f").to_entry(),
    ];
    for e in &events {
        assert!(matches!(batch.push(&mut encoder, e, &CLOCK), Pushed::Added(_)));
    }
    let body = body(&env, 1_700_000_000_000_000_000, &batch);
    check_body(&body);
    let (status, reply) = post_to_receiver(&receiver, &body);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(receiver.stats().events_accepted, 2);
}

#[test]
fn capture_exception_does_not_allocate() {
    let recorder = Recorder::new();
    let client = Client::builder("phc_exception").build_with_transport(recorder.clone()).unwrap();
    let err = chain();
    let lone = Refused { port: 8080 };
    // Warm up: this thread's lane.
    let _ = client.capture(&Event::new("warm", "u"));
    let (n, outcomes) = allocations(|| {
        let mut ok = 0;
        for _ in 0..100 {
            ok += usize::from(client.capture_exception(&err, "user-1") == Captured::Queued);
            let e = Event::exception(&lone, "user-2").level("warning").handled(false).fingerprint("fp");
            ok += usize::from(client.capture(&e) == Captured::Queued);
        }
        ok
    });
    assert_eq!(n, 0, "allocations while capturing exceptions");
    assert_eq!(outcomes, 200);
    client.flush(Duration::from_secs(10)).unwrap();
    let events = recorder.events();
    assert_eq!(events.len(), 201);
    let v = check_event_json(&events[1].json);
    assert_eq!(v["properties"]["$exception_list"], golden_list());
}

#[test]
fn panic_in_a_thread_arrives_as_an_exception() {
    let recorder = Recorder::new();
    let client = Client::builder("phc_panic").build_with_transport(recorder.clone()).unwrap();
    fasthog::install_panic_hook(&client);
    let joined = std::thread::Builder::new()
        .name("worker-7".into())
        .spawn(|| -> u8 { panic!("the quote was missing") })
        .unwrap()
        .join();
    assert!(joined.is_err());
    let events = recorder.events();
    let e = events.iter().find(|e| e.name() == "$exception").expect("the panic's $exception");
    let v = check_event_json(&e.json);
    let p = &v["properties"];
    let item = &p["$exception_list"][0];
    assert_eq!(item["type"], "Panic");
    assert_eq!(item["value"], "the quote was missing");
    assert_eq!(item["mechanism"], json!({"type": "panic", "handled": false, "synthetic": false}));
    assert_eq!(p["$exception_level"], "error");
    assert!(p["$exception_panic_file"].as_str().unwrap().ends_with("exception.rs"));
    assert!(p["$exception_panic_line"].as_u64().unwrap() > 0);
    assert_eq!(p["$exception_panic_thread"], "worker-7");
    assert_eq!(p["$process_person_profile"], false);
}
