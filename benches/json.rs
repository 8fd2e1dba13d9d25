//! The encoder choice, measured: fasthog's hand-written encoder against serde + serde-json-core
//! (the brief's named option) on the same typical event, both writing into a caller's buffer
//! without allocating.
//!
//! ```text
//! cargo bench -p fasthog --bench json
//! cargo bench -p fasthog --bench json -- before_send   # the before-send filter's cost
//! ```
//!
//! The serde side serialises a struct already shaped like PostHog's event (the enrichment
//! precomputed, no duplicate-key rules, uuid and timestamp pre-formatted), so it does less
//! work than the real encoder: the comparison is generous to serde-json-core.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fasthog::batch::{Encoder, Enrichment};
use fasthog::filter::{EventView, Filter, Filtered, Verdict};
use fasthog::json::Writer;
use fasthog::{AsEntry, Event, FixedClock, OwnedEntry};
use serde::Serialize;

const USER: &str = "2f1c8f5e-7a34-4a63-9d0b-0c5b8d1f2e3a";

/// The typical event's lane entry, as the flusher drains it (with its own timestamp, so both
/// sides format the same fixed instant).
fn entry() -> OwnedEntry {
    Event::new("order_filled", USER)
        .prop("qty", 42i64)
        .prop("seq", 1_234_567i64)
        .prop("price", 101.25)
        .prop("venue", "XNAS")
        .timestamp_unix_nanos(1_764_000_000_123_456_000)
        .to_entry()
}

#[derive(Serialize)]
struct SerdeEvent<'a> {
    uuid: &'a str,
    event: &'a str,
    distinct_id: &'a str,
    timestamp: &'a str,
    properties: SerdeProps<'a>,
}

#[derive(Serialize)]
struct SerdeProps<'a> {
    qty: i64,
    seq: i64,
    price: f64,
    venue: &'a str,
    event_schema_version: u32,
    environment: &'a str,
    is_demo: bool,
    user_id: &'a str,
    #[serde(rename = "$lib")]
    lib: &'a str,
    #[serde(rename = "$lib_version")]
    lib_version: &'a str,
    #[serde(rename = "$geoip_disable")]
    geoip_disable: bool,
}

fn encoders(c: &mut Criterion) {
    let mut g = c.benchmark_group("json_encoder");
    g.throughput(Throughput::Elements(1));
    let clock = FixedClock(1_764_000_000_000_000_000);
    let entry = entry();
    let mut buf = vec![0u8; 4096];

    let mut encoder = Encoder::new(Enrichment { environment: "production", ..Enrichment::DEFAULT }, 7);
    g.bench_function("fasthog_encoder", |b| {
        b.iter(|| {
            let mut w = Writer::new(&mut buf, 0);
            black_box(encoder.encode(black_box(&entry), &clock, &mut w));
            black_box(w.len())
        })
    });

    g.bench_function("serde_json_core", |b| {
        b.iter(|| {
            let event = SerdeEvent {
                uuid: "019ac2a6-6a4b-7a3c-8d1e-2f3a4b5c6d7e",
                event: black_box("order_filled"),
                distinct_id: black_box(USER),
                timestamp: "2025-11-24T16:00:00.123456Z",
                properties: SerdeProps {
                    qty: black_box(42),
                    seq: black_box(1_234_567),
                    price: black_box(101.25),
                    venue: "XNAS",
                    event_schema_version: 1,
                    environment: "production",
                    is_demo: false,
                    user_id: USER,
                    lib: "fasthog",
                    lib_version: env!("CARGO_PKG_VERSION"),
                    geoip_disable: true,
                },
            };
            black_box(serde_json_core::to_slice(&event, &mut buf).unwrap())
        })
    });
    g.finish();
}

/// The typical event with two PII properties more, for the filter cases.
fn entry_with_pii() -> OwnedEntry {
    Event::new("order_filled", USER)
        .prop("qty", 42i64)
        .prop("email", "ada@example.com")
        .prop("seq", 1_234_567i64)
        .prop("price", 101.25)
        .prop("ip", "203.0.113.9")
        .prop("venue", "XNAS")
        .timestamp_unix_nanos(1_764_000_000_123_456_000)
        .to_entry()
}

/// The before-send filter's cost per event: filter then encode, against encoding alone. The
/// entry has six properties, two of them PII; "redact 2 keys" encodes the four left, so its
/// cost is against "no filter, 4 properties" (the typical entry: the same four).
fn before_send(c: &mut Criterion) {
    let mut g = c.benchmark_group("before_send");
    g.throughput(Throughput::Elements(1));
    let clock = FixedClock(1_764_000_000_000_000_000);
    let (pii, typical) = (entry_with_pii(), entry());
    let mut buf = vec![0u8; 4096];
    let mut scratch = vec![0u8; 32 << 10];
    let mut encoder = Encoder::new(Enrichment { environment: "production", ..Enrichment::DEFAULT }, 7);
    let mut encode = |entry: &[u8], encoder: &mut Encoder<'_>| {
        let mut w = Writer::new(&mut buf, 0);
        black_box(encoder.encode(black_box(entry), &clock, &mut w));
        black_box(w.len())
    };
    for (name, entry) in [("no filter", &pii), ("no filter, 4 properties", &typical)] {
        entry.with_entry(|bytes| g.bench_function(name, |b| b.iter(|| encode(bytes, &mut encoder))));
    }
    let keep = |_: &EventView<'_>| Verdict::Keep;
    let lookup = |e: &EventView<'_>| match e.property("ip") {
        Some(v) if v.as_str() == Some("127.0.0.1") => Verdict::Drop,
        _ => Verdict::Keep,
    };
    let redact = |_: &EventView<'_>| Verdict::Remove(&["email", "ip"]);
    let filters: [(&str, &fasthog::filter::FilterFn<'_>); 3] =
        [("keep-all filter", &keep), ("filter with a property lookup", &lookup), ("redact 2 keys", &redact)];
    for (name, f) in filters {
        let mut filter = Filter::new(f, &mut scratch);
        pii.with_entry(|bytes| {
            g.bench_function(name, |b| {
                b.iter(|| match filter.apply(black_box(bytes)) {
                    Filtered::Send { entry, removed } => {
                        black_box(removed);
                        encode(entry, &mut encoder)
                    }
                    Filtered::Drop => 0,
                })
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = encoders, before_send
}
criterion_main!(benches);
