//! The before-send filter: run by the flusher on each event before encoding, it keeps, drops
//! (counted `filtered`) or removes named top-level properties (counted `redacted`); a panic in
//! it drops the event (counted `filtered` and `filter_panics`) and delivery goes on. Checked
//! on the JSON the recorder receives, against PostHog's capture rules, and through the no_std
//! core's `Filter` directly.
#![cfg(feature = "std")]

#[path = "common/delivery.rs"]
mod support;

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fasthog::filter::{EventView, Filter, Filtered, ValueRef, Verdict};
use fasthog::recorder::Recorder;
use fasthog::{Client, Event, Value};
use support::assert_accounted;

fn client(filter: impl Fn(&EventView<'_>) -> Verdict + Send + Sync + 'static) -> (Client, Recorder) {
    let recorder = Recorder::new();
    let client = Client::builder("phc_filter_test")
        .super_property("service", "checkout")
        .before_send(filter)
        .build_with_transport(recorder.clone())
        .expect("valid settings");
    (client, recorder)
}

const PII: &[&str] = &["email", "ip"];

#[test]
fn a_removal_takes_the_named_keys_out_of_every_top_level_object_and_nothing_else() {
    let (client, recorder) = client(|_| Verdict::Remove(PII));
    let nested = [("email", Value::Str("inner@example.com"))];
    client.capture(
        &Event::new("signed_up", "user-1")
            .prop("email", "ada@example.com")
            .prop("plan", "pro")
            .prop("ip", "203.0.113.9")
            .prop("profile", Value::object(&nested))
            .set("email", "ada@example.com")
            .set("name", "Ada")
            .set_once("email", "first@example.com"),
    );
    client.capture(&Event::new("no_pii", "user-2").prop("plan", "free"));
    let stats = client.shutdown(Duration::from_secs(10)).unwrap();
    assert_accounted(&stats);
    assert_eq!((stats.sent, stats.filtered, stats.redacted), (2, 0, 4), "{stats:?}");

    let events = recorder.events();
    let signed_up = events.iter().find(|e| e.name() == "signed_up").expect("sent");
    let v = common::check_event_json(&signed_up.json);
    let props = &v["properties"];
    assert!(props.get("email").is_none() && props.get("ip").is_none(), "{}", signed_up.json);
    assert!(props["$set"].get("email").is_none() && props["$set_once"].get("email").is_none());
    assert_eq!((props["plan"].as_str(), props["$set"]["name"].as_str()), (Some("pro"), Some("Ada")));
    // Only top-level keys: a nested one stays, and the client's own properties too.
    assert_eq!(props["profile"]["email"].as_str(), Some("inner@example.com"));
    assert_eq!((props["service"].as_str(), props["user_id"].as_str()), (Some("checkout"), Some("user-1")));
    assert!(!signed_up.json.contains("ada@example.com") && !signed_up.json.contains("203.0.113.9"));
    let no_pii = events.iter().find(|e| e.name() == "no_pii").expect("sent");
    assert_eq!(common::check_event_json(&no_pii.json)["properties"]["plan"].as_str(), Some("free"));
}

#[test]
fn dropped_events_are_counted_filtered_and_never_sent() {
    let (client, recorder) = client(|e| match e.property("internal") {
        Some(ValueRef::Bool(true)) => Verdict::Drop,
        _ if e.name() == "$heartbeat" => Verdict::Drop,
        _ => Verdict::Keep,
    });
    for i in 0..300 {
        let name = if i % 3 == 0 { "$heartbeat" } else { "work" };
        client.capture(&Event::new(name, "user-1").prop("i", i).prop("internal", i % 3 == 1));
    }
    let stats = client.shutdown(Duration::from_secs(10)).unwrap();
    assert_accounted(&stats);
    assert_eq!((stats.captured, stats.filtered, stats.sent), (300, 200, 100), "{stats:?}");
    let events = recorder.events();
    assert_eq!(events.len(), 100);
    assert!(events.iter().all(|e| e.name() == "work" && e.property("internal") == Some("false")));
}

#[test]
fn the_filter_sees_the_event_as_captured() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let (client, _recorder) = client(move |e| {
        let keys = ["n", "u", "f", "s", "b", "none", "list", "obj", "absent"];
        let values: Vec<String> = keys.iter().map(|k| format!("{:?}", e.property(k))).collect();
        let set = format!("{:?}", e.set_property("plan"));
        log.lock().unwrap().push((e.name().to_owned(), e.distinct_id().to_owned(), values, set));
        Verdict::Keep
    });
    let list = [Value::Int(1)];
    client.capture(
        &Event::new("look", "user-9")
            .prop("n", -3)
            .prop("u", u64::MAX)
            .prop("f", 1.5)
            .prop("s", "first")
            .prop("s", "last")
            .prop("b", true)
            .prop("none", None::<i64>)
            .prop("list", Value::array(&list))
            .prop("obj", Value::object(&[]))
            .set("plan", "pro"),
    );
    let stats = client.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(stats.sent, 1);
    let seen = seen.lock().unwrap();
    let (name, id, values, set) = &seen[0];
    assert_eq!((name.as_str(), id.as_str()), ("look", "user-9"));
    let want = [
        "Some(Int(-3))",
        "Some(UInt(18446744073709551615))",
        "Some(Float(1.5))",
        "Some(Str(\"last\"))", // the last value, as sent
        "Some(Bool(true))",
        "Some(Null)",
        "Some(Array)",
        "Some(Object)",
        "None",
    ];
    assert_eq!(values, &want);
    assert_eq!(set, "Some(Str(\"pro\"))");
}

#[test]
fn a_panicking_filter_drops_that_event_counts_it_and_delivery_goes_on() {
    support::install_logger();
    let (client, recorder) = client(|e| {
        if e.name() == "boom" {
            panic!("a bug in the filter");
        }
        Verdict::Remove(PII)
    });
    for i in 0..10 {
        let name = if i % 2 == 0 { "boom" } else { "fine" };
        client.capture(&Event::new(name, "user-1").prop("email", "ada@example.com").prop("i", i));
    }
    client.flush(Duration::from_secs(10)).expect("the flusher is alive");
    client.capture(&Event::new("after", "user-1"));
    let stats = client.shutdown(Duration::from_secs(10)).unwrap();
    assert_accounted(&stats);
    assert_eq!((stats.filtered, stats.filter_panics, stats.sent, stats.redacted), (5, 5, 6, 5), "{stats:?}");
    let names = recorder.names();
    assert_eq!(names.iter().filter(|n| *n == "fine").count(), 5);
    assert!(names.contains(&"after".to_owned()) && !names.contains(&"boom".to_owned()));
    assert!(recorder.events().iter().all(|e| !e.json.contains("ada@example.com")), "no PII leaked");
    assert_eq!(support::lines_containing("before_send filter panicked").len(), 1, "logged once");
}

#[test]
fn the_filter_runs_once_per_event_that_is_sent() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let (client, recorder) = client(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
        Verdict::Keep
    });
    for i in 0..1000 {
        client.capture(&Event::new("e", "u").prop("i", i));
    }
    let stats = client.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!((stats.sent, recorder.events().len()), (1000, 1000));
    assert_eq!(calls.load(Ordering::Relaxed), 1000);
}

/// The no_std core: a `Filter` over a caller's scratch buffer.
fn entry() -> fasthog::OwnedEntry {
    Event::new("signed_up", "user-1")
        .prop("email", "a@b.c")
        .prop("plan", "pro")
        .set("ip", "1.2.3.4")
        .to_entry()
}

fn apply(verdict: Verdict, scratch: &mut [u8]) -> (Option<Vec<u8>>, usize) {
    let f = move |_: &EventView<'_>| verdict;
    let mut filter = Filter::new(&f, scratch);
    let bytes = entry();
    fasthog::AsEntry::with_entry(&bytes, |b| match filter.apply(b) {
        Filtered::Send { entry, removed } => (Some(entry.to_vec()), removed),
        Filtered::Drop => (None, 0),
    })
}

#[test]
fn the_core_filter_copies_only_when_it_removes_and_drops_when_the_scratch_is_too_small() {
    let original = fasthog::AsEntry::with_entry(&entry(), <[u8]>::to_vec);
    let mut scratch = vec![0u8; 1024];
    assert_eq!(apply(Verdict::Keep, &mut scratch), (Some(original.clone()), 0));
    assert_eq!(apply(Verdict::Drop, &mut scratch), (None, 0));
    assert_eq!(apply(Verdict::Remove(&["absent"]), &mut scratch), (Some(original.clone()), 0));
    let (redacted, removed) = apply(Verdict::Remove(PII), &mut scratch);
    let redacted = redacted.expect("sent");
    assert_eq!(removed, 2);
    assert!(redacted.len() < original.len());
    let mut encoder = fasthog::batch::Encoder::new(fasthog::batch::Enrichment::DEFAULT, 1);
    let (json, _) = common::encode_one(&mut encoder, redacted.as_slice(), &fasthog::FixedClock(0));
    let v = common::check_event_json(&json);
    assert!(v["properties"].get("email").is_none() && v["properties"].get("$set").is_none(), "{json}");
    assert_eq!(v["properties"]["plan"].as_str(), Some("pro"));
    // A scratch buffer too small for the copy: dropped, never sent with the keys.
    assert_eq!(apply(Verdict::Remove(PII), &mut [0u8; 8]), (None, 0));
}

/// An event the filter redacted but no batch could take (all sealed while PostHog backs the
/// client off) waits in its lane and is filtered again later: its removals count once, when
/// it enters a batch. (They were counted at every pass: 58 for 40 events.)
#[test]
fn removals_count_once_even_when_the_event_waits_for_a_batch() {
    let recorder = Recorder::new();
    recorder.respond_with([503; 6]);
    let client = Client::builder("phc_filter_test")
        .batch_size(1000)
        .max_batch_events(1000)
        .max_batch_bytes(1024)
        .pending_batches(2)
        .requests_in_flight(1)
        .retry(fasthog::flusher::RetryPolicy {
            max_attempts: 10,
            initial_backoff_ms: 20,
            max_backoff_ms: 20,
            max_retry_after_ms: 20,
        })
        .before_send(|_| Verdict::Remove(&["email"]))
        .build_with_transport(recorder.clone())
        .unwrap();
    let pad = "x".repeat(150);
    for i in 0..40 {
        let _ = client.capture(
            &Event::new("e", "user-1").prop("email", "a@b.c").prop("pad", pad.as_str()).prop("i", i),
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let s = client.shutdown(Duration::from_secs(20)).unwrap();
    assert_accounted(&s);
    assert_eq!(s.sent, 40, "{s:?}");
    assert!(recorder.events().iter().all(|e| !e.json.contains("a@b.c")));
    assert_eq!(s.redacted, 40, "one removal per event: {s:?}");
}
