//! `Serde(&value)` and `serde_json::Value` properties: serialized straight into the lane, and
//! sent as serde_json would write them (serde_json itself is the oracle).
#![cfg(feature = "serde_json")]

#[path = "common/alloc.rs"]
mod alloc;

use std::collections::BTreeMap;

use alloc::allocations;
use fasthog::batch::{Encoder, Enrichment};
use fasthog::json::Writer;
use fasthog::ring::try_consumer;
use fasthog::{Captured, Event, FixedClock, HeapQueue, Serde};
use serde::Serialize;
use serde_json::json;

const CLOCK: FixedClock = FixedClock(1_700_000_000_000_000_000);

#[derive(Serialize)]
enum Tier {
    Free,
    Paid { seats: u32 },
    Trial(u8),
}

#[derive(Serialize)]
struct Cart<'a> {
    items: Vec<&'a str>,
    total: f64,
    coupon: Option<&'a str>,
    tier: Tier,
    tiers: [Tier; 2],
    counts: BTreeMap<u32, bool>,
    pair: (i8, char),
    unit: (),
    bytes: &'a [u8],
}

fn cart() -> Cart<'static> {
    Cart {
        items: vec!["book", "pen \"blue\""],
        total: 12.5,
        coupon: None,
        tier: Tier::Paid { seats: 3 },
        tiers: [Tier::Free, Tier::Trial(7)],
        counts: BTreeMap::from([(1, true), (20, false)]),
        pair: (-3, 'é'),
        unit: (),
        bytes: b"hi",
    }
}

fn property(event: &Event<'_, impl fasthog::Props>, key: &str) -> serde_json::Value {
    let mut buf = vec![0u8; 1 << 16];
    let mut w = Writer::new(&mut buf, 0);
    Encoder::new(Enrichment::DEFAULT, 1).encode(event, &CLOCK, &mut w);
    let v: serde_json::Value = serde_json::from_slice(w.written()).expect("valid JSON");
    v["properties"][key].clone()
}

#[test]
fn a_serialize_value_is_sent_as_serde_json_writes_it() {
    let cart = cart();
    let got = property(&Event::new("checkout", "u").prop("cart", Serde(&cart)), "cart");
    assert_eq!(got, serde_json::to_value(&cart).unwrap());
    assert_eq!(got["tier"], json!({"Paid": {"seats": 3}}));
    assert_eq!(got["counts"], json!({"1": true, "20": false}));
}

/// serde_json refuses integers past 64 bits; a property sends them as floats rather than drop
/// them.
#[test]
fn integers_past_64_bits_are_floats() {
    let got = property(&Event::new("e", "u").prop("big", Serde(&(1u128 << 70))), "big");
    let want = (1u128 << 70) as f64;
    // serde_json's default float parser may be one ulp off; the text fasthog sent is exact.
    assert!((got.as_f64().unwrap() - want).abs() <= want * 1e-15, "{got}");
}

#[test]
fn a_serde_json_value_is_a_property() {
    let v = json!({"a": [1, 2.5, null, {"b": "c"}], "d": true});
    assert_eq!(property(&Event::new("e", "u").prop("payload", &v), "payload"), v);
}

#[test]
fn a_value_over_the_limit_is_cut_and_counted_not_lost_whole() {
    let big: Vec<String> = (0..10_000).map(|i| format!("item-{i}")).collect();
    let e = Event::new("e", "u").prop("big", Serde(&big)).prop("after", 1);
    let entry = e.to_entry();
    assert!(entry.props_dropped() > 0, "elements past the limit are dropped and counted");
    let got = property(&e, "big");
    let kept = got.as_array().unwrap();
    assert!(!kept.is_empty() && kept.len() < big.len());
    assert_eq!(kept[0], "item-0", "the first elements are kept, in order");
}

#[test]
fn capturing_a_serialize_value_does_not_allocate() {
    let queue = std::sync::Arc::new(HeapQueue::with_blocks(1, 8, 8192));
    let mut lane = HeapQueue::producer(queue.clone()).unwrap();
    let cart = cart();
    let v = json!({"a": [1, 2, 3]});
    let e = Event::new("checkout", "u").prop("cart", Serde(&cart)).prop("json", &v);
    let _ = lane.capture(&e, &CLOCK); // warm up
    let (allocs, outcome) = allocations(|| lane.capture(&e, &CLOCK));
    assert_eq!((outcome, allocs), (Captured::Queued, 0));
    let mut consumer = try_consumer(queue).unwrap();
    assert_eq!(consumer.drain(|_| true).events, 2);
}
