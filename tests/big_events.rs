//! Core v2 end to end against the local receiver (which applies PostHog's capture rules):
//! events 0.1 could not carry, and a burst the default memory must absorb.

#[path = "common/delivery.rs"]
mod support;

use std::time::Duration;

use fasthog::{Captured, Event, Value};
use fasthog_receiver::{Receiver, ReceiverConfig};
use support::*;

fn receiver() -> Receiver {
    install_logger();
    Receiver::start(ReceiverConfig::default()).expect("a loopback port")
}

#[test]
fn a_2_kib_string_event_and_a_64_property_event_are_delivered_whole() {
    let r = receiver();
    let client = builder(&r.url()).build().unwrap();
    let agent = "Mozilla/5.0 ".repeat(171); // 2,052 bytes
    let url = format!("https://example.com/checkout?{}", "q=1&".repeat(100));
    let trace = "at fasthog::capture (src/lib.rs:42)\n".repeat(20);
    let big = Event::new("$pageview", "user-1")
        .prop("$user_agent", &agent)
        .prop("$current_url", &url)
        .prop("trace", &trace);
    assert_eq!(client.capture(&big), Captured::Queued);
    let keys: Vec<String> = (0..64).map(|i| format!("prop_{i:02}")).collect();
    let pairs: Vec<(&str, i64)> = keys.iter().enumerate().map(|(i, k)| (k.as_str(), i as i64)).collect();
    let wide = Event::new("wide", "user-1").props(&pairs).prop("nested", Value::array(&[Value::Int(1)]));
    assert_eq!(client.capture(&wide), Captured::Queued);
    let s = finish(&client, Duration::from_secs(5));
    assert_eq!((s.sent, s.truncated, s.props_dropped), (2, 0, 0), "{s:?}");
    let events = r.events();
    let big = events.iter().find(|e| e["event"] == "$pageview").expect("the big event");
    assert_eq!(big["properties"]["$user_agent"], agent.as_str());
    assert_eq!(big["properties"]["$current_url"], url.as_str());
    assert_eq!(big["properties"]["trace"], trace.as_str());
    let wide = events.iter().find(|e| e["event"] == "wide").expect("the wide event");
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(wide["properties"][k], i as i64, "{k}");
    }
    assert_eq!(wide["properties"]["nested"], serde_json::json!([1]));
}

/// The burst: one thread captures 10,000 typical events as fast as it can, with the
/// default settings, to a healthy receiver: at most 1% may be dropped (0.1 dropped 88.7%: a
/// lane held 1,024 events).
#[test]
fn one_threads_unpaced_burst_of_10000_typical_events_drops_at_most_1_percent() {
    let r = receiver();
    let client = builder(&r.url()).build().unwrap();
    let user = "2f1c8f5e-7a34-4a63-9d0b-0c5b8d1f2e3a";
    let mut dropped = 0;
    for i in 0..10_000i64 {
        let e = Event::new("order_filled", user)
            .prop("qty", i % 100)
            .prop("seq", i)
            .prop("price", 101.25)
            .prop("venue", "XNAS");
        if client.capture(&e) == Captured::Dropped {
            dropped += 1;
        }
    }
    let s = finish(&client, Duration::from_secs(10));
    assert!(dropped <= 100, "{dropped} of 10,000 dropped");
    assert_eq!(s.sent + s.dropped, 10_000, "{s:?}");
    assert_eq!(r.stats().events_accepted, s.sent);
}
