//! Nested values end to end through a lane (capture, drain, encode), blocks handed back to the
//! pool, and what the typical event costs in lane bytes.

use fasthog::batch::{Batch, Encoder, Enrichment, Limits, Pushed};
use fasthog::ring::{try_consumer, HasLanes};
use fasthog::{Captured, Event, FixedClock, HeapQueue, Value};

const CLOCK: FixedClock = FixedClock(1_700_000_000_000_000_000);

#[test]
fn nested_values_go_through_a_lane_and_blocks_come_back() {
    let queue = std::sync::Arc::new(HeapQueue::with_blocks(2, 8, 4096));
    let mut p = HeapQueue::producer(queue.clone()).unwrap();
    let owned = String::from("owned");
    let tags = [Value::from("a"), Value::from(2), Value::array(&[Value::Null, Value::Bool(true)])];
    let obj = [("k", Value::from(1.5)), ("nested", Value::object(&[("x", Value::Str("y"))]))];
    for i in 0..100i64 {
        let e = Event::new("order_filled", "user-1")
            .prop("qty", i)
            .prop("owned", &owned)
            .prop("opt", None::<i64>)
            .prop("tags", Value::array(&tags))
            .prop("obj", Value::object(&obj))
            .prop("vec", vec![1u8, 2, 3])
            .set("plan", "pro");
        assert_eq!(p.capture(&e, &CLOCK), Captured::Queued, "{i}");
    }
    let mut c = try_consumer(queue.clone()).unwrap();
    let mut enc = Encoder::new(Enrichment::DEFAULT, 1);
    let limits = Limits { max_events: 1000, ..Limits::DEFAULT };
    let mut batch = Batch::new(vec![0u8; 1 << 20], vec![0u32; 1000], limits, 0);
    let d = c.drain(|e| matches!(batch.push(&mut enc, e, &CLOCK), Pushed::Added(_)));
    assert_eq!(d.events, 100);
    let text = std::str::from_utf8(batch.events(0..100)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&format!("[{text}]")).unwrap();
    assert_eq!(v[99]["properties"]["qty"], 99);
    assert_eq!(v[99]["properties"]["obj"]["nested"]["x"], "y");
    assert_eq!(v[99]["properties"]["tags"][2][1], true);
    assert_eq!(v[99]["properties"]["vec"][2], 3);
    assert_eq!(v[99]["properties"]["$set"]["plan"], "pro");
    assert_eq!(queue.lanes().free_blocks() + 1, 8, "blocks came back");
}

/// The target: a typical event (static name, 36-character distinct_id, two ints, a
/// float, a short string: the benchmarks' event) takes at most 160 lane bytes (0.1's fixed
/// record took 1,152).
#[test]
fn a_typical_event_takes_at_most_160_lane_bytes() {
    let user = "2f1c8f5e-7a34-4a63-9d0b-0c5b8d1f2e3a";
    let e = Event::new("order_filled", user)
        .prop("qty", 42i64)
        .prop("seq", 7i64)
        .prop("price", 101.25)
        .prop("venue", "XNAS");
    let bytes = e.to_entry().lane_bytes();
    assert!(bytes <= 160, "{bytes}");
    assert_eq!(bytes, 136, "the README's figure");
}

/// Regression: an event encoded straight from its builder (or its `to_entry()`) without a
/// timestamp is stamped with the clock's reading when encoded, as in v1, not with tick 0
/// (1970 for a fixed clock).
#[test]
fn unstamped_events_get_the_clock_reading_when_encoded() {
    let clock = FixedClock(1_800_000_000_000_000_000);
    let mut enc = Encoder::new(Enrichment::DEFAULT, 1);
    let mut batch = Batch::new(vec![0u8; 1 << 16], vec![0u32; 4], Limits::DEFAULT, 0);
    let event = Event::new("e", "u");
    assert!(matches!(batch.push(&mut enc, &event, &clock), Pushed::Added(_)));
    assert!(matches!(batch.push(&mut enc, &event.to_entry(), &clock), Pushed::Added(_)));
    let stamped = event.timestamp_unix_nanos(1_700_000_000_000_000_000);
    assert!(matches!(batch.push(&mut enc, &stamped, &clock), Pushed::Added(_)));
    let v: serde_json::Value =
        serde_json::from_str(&format!("[{}]", std::str::from_utf8(batch.events(0..3)).unwrap())).unwrap();
    assert_eq!(v[0]["timestamp"], "2027-01-15T08:00:00.000000Z");
    assert_eq!(v[1]["timestamp"], "2027-01-15T08:00:00.000000Z");
    assert_eq!(v[2]["timestamp"], "2023-11-14T22:13:20.000000Z");
}
