//! Proves the capture path and the encoding path allocate nothing: a counting global
//! allocator, switched on per thread so the test harness's own allocations (other threads,
//! output capture) do not count, and exact-zero assertions after warm-up.

#[path = "common/alloc.rs"]
mod alloc;
mod common;

use alloc::allocations;

use std::collections::HashMap;
use std::time::Duration;

use fasthog::batch::{Batch, Encoder, Enrichment, Envelope, Limits, Pushed, HEAD_CAPACITY};
use fasthog::json::Writer;
use fasthog::recorder::Recorder;
use fasthog::ring::{try_consumer, HasLanes};
use fasthog::{Captured, Client, Entry, Event, FixedClock, HeapQueue, Static, StaticQueue, Value};

const CLOCK: FixedClock = FixedClock(1_700_000_000_000_000_000);
const N: usize = 200;

/// A varied event: every scalar kind, escapes, a non-finite float, person properties, a
/// workspace, and (for some `i`) a timestamp.
fn event(i: usize, user: &str) -> Event<'_, impl fasthog::Props + '_> {
    let e = Event::new("order_filled", user)
        .prop("qty", i)
        .prop("delta", -(i as i64))
        .prop("small", i as u8)
        .prop("price", 101.25 + i as f64)
        .prop("ratio", 0.5f32)
        .prop("nan", f64::NAN)
        .prop("venue", Static("XNAS"))
        .prop("note", "quote \" backslash \\ newline \n tab \t nul \u{0} é😀")
        .prop("none", None::<i64>)
        .prop("flag", i % 2 == 0)
        .prop_dyn("dyn_key", "dyn value")
        .set("plan", "pro")
        .set_once("first", Static("2024-01-01"))
        .workspace("ws_1");
    if i % 3 == 0 {
        e.timestamp_unix_nanos(1_700_000_000_000_000_000 + i as u64)
    } else {
        e
    }
}

/// What the richer capture paths borrow from: owned strings, a `Vec`, a map and pairs, made
/// once before counting.
struct Owned {
    user: String,
    text: String,
    tags: Vec<i64>,
    names: Vec<String>,
    counts: HashMap<String, i64>,
    pairs: Vec<(String, i64)>,
}

fn owned() -> Owned {
    Owned {
        user: String::from("user-42"),
        text: "owned é".repeat(20),
        tags: vec![1, -2, 3],
        names: vec![String::from("a"), String::from("b")],
        counts: (0..8).map(|i| (format!("count_{i}"), i)).collect(),
        pairs: (0..4).map(|i| (format!("pair_{i}"), -i)).collect(),
    }
}

/// Nested arrays and objects, `String` and `&String` values, `Option`s, `Vec`s by reference,
/// `.props(&HashMap)` and `.props(&Vec<(String, _)>)`, a conditional property, a runtime key.
fn rich<'a>(
    i: usize,
    o: &'a Owned,
    nested: &'a [Value<'a>],
    members: &'a [(&'a str, Value<'a>)],
) -> Event<'a, impl fasthog::Props + 'a> {
    Event::named(&o.user, &o.user)
        .prop("list", Value::array(nested))
        .prop("obj", Value::object(members))
        .prop("text", &o.text)
        .prop("maybe", Some(i))
        .prop("maybe_not", None::<&String>)
        .prop("tags", &o.tags)
        .prop("names", &o.names)
        .prop("fixed", [1u16, 2, 3])
        .prop_if(i % 2 == 0, "even", true)
        .prop_dyn(&o.text, i)
        .props(&o.counts)
        .props(&o.pairs)
        .set(&o.names[0], Some("x"))
}

#[test]
fn the_counter_sees_allocations() {
    let (n, v) = allocations(|| Vec::<u8>::with_capacity(16));
    assert!(n >= 1, "the counting allocator must see a Vec allocation");
    drop(v);
    let (n, _) = allocations(|| std::hint::black_box(1 + 1));
    assert_eq!(n, 0);
}

#[test]
fn building_events_allocates_nothing() {
    let long = "é".repeat(300);
    let user = String::from("user-42");
    let o = owned();
    let inner = [Value::from(1), Value::Null];
    let nested = [Value::from("a"), Value::array(&inner)];
    let members = [("k", Value::from(1.5)), ("n", Value::object(&[("x", Value::Str("y"))]))];
    let (n, invalid) = allocations(|| {
        let a = event(1, &user);
        let b = Event::named(&long, &long).prop_dyn(&long, long.as_str());
        let c = Event::new_static("e", "u").props([Entry::prop("k", 1); 40]);
        let d = rich(3, &o, &nested, &members);
        std::hint::black_box((&a, &b, &c, &d));
        (a.is_invalid(), b.is_invalid(), c.is_invalid(), d.is_invalid())
    });
    assert_eq!(n, 0, "building events allocated {n} times");
    assert_eq!(invalid, (false, false, false, false));
}

#[test]
fn heap_queue_capture_allocates_nothing() {
    let queue = HeapQueue::with_blocks(2, 16, 4096);
    let mut producer = HeapQueue::producer(&queue).expect("lane");
    let mut consumer = try_consumer(&queue).expect("consumer");
    let user = String::from("user-42");
    // Warm-up: one capture and drain.
    assert_eq!(producer.capture(&event(0, &user), &CLOCK), Captured::Queued);
    assert_eq!(consumer.drain(|_| true).events, 1);

    let (n, outcomes) = allocations(|| {
        let mut queued = 0;
        for i in 0..N {
            queued += usize::from(producer.capture(&event(i, &user), &CLOCK) == Captured::Queued);
        }
        // The rejected and dropped paths too.
        let rejected = producer.capture(&Event::new("", &user), &CLOCK);
        for i in 0..2000 {
            let _ = producer.capture(&event(i, &user), &CLOCK);
        }
        let dropped = producer.capture(&event(0, &user), &CLOCK);
        (queued, rejected, dropped)
    });
    assert_eq!(n, 0, "LaneProducer::capture allocated {n} times");
    assert_eq!(outcomes, (N, Captured::Rejected, Captured::Dropped));
}

#[test]
fn rich_values_capture_allocates_nothing() {
    let queue = HeapQueue::with_blocks(2, 16, 4096);
    let mut producer = HeapQueue::producer(&queue).expect("lane");
    let mut consumer = try_consumer(&queue).expect("consumer");
    let o = owned();
    let deep = [Value::Bool(true)];
    let deep = [("deep", Value::array(&deep))];
    let inner = [Value::from(1), Value::Null, Value::object(&deep)];
    let nested = [Value::from("a"), Value::array(&inner), Value::from(Some(2.5))];
    let members = [("k", Value::from(1.5)), ("n", Value::object(&[("x", Value::Str("y"))]))];
    // An event that owns its `String` values (made before counting: making a `String`
    // allocates, capturing it must not).
    let owning = Event::new("owning", "user-1").prop("moved", o.text.clone()).set("also", String::from("x"));
    assert_eq!(producer.capture(&rich(0, &o, &nested, &members), &CLOCK), Captured::Queued);
    assert_eq!(producer.capture(&owning, &CLOCK), Captured::Queued);
    assert_eq!(consumer.drain(|_| true).events, 2);
    let (n, (queued, drained)) = allocations(|| {
        let (mut queued, mut drained) = (0, 0);
        for round in 0..5 {
            for i in 0..N / 5 {
                let e = rich(round * N + i, &o, &nested, &members);
                queued += usize::from(producer.capture(&e, &CLOCK) == Captured::Queued);
                queued += usize::from(producer.capture(&owning, &CLOCK) == Captured::Queued);
            }
            drained += consumer.drain(|_| true).events;
        }
        (queued, drained)
    });
    assert_eq!(n, 0, "capturing nested, owned and borrowed values allocated {n} times");
    assert_eq!((queued, drained), (2 * N, 2 * N));
    // They were all there: the last one, encoded.
    assert_eq!(producer.capture(&rich(7, &o, &nested, &members), &CLOCK), Captured::Queued);
    let mut json = serde_json::Value::Null;
    consumer.drain(|bytes| {
        let mut buf = vec![0u8; 1 << 16];
        let mut w = Writer::new(&mut buf, 0);
        Encoder::new(Enrichment::DEFAULT, 1).encode(bytes, &CLOCK, &mut w);
        json = serde_json::from_slice(w.written()).unwrap();
        true
    });
    let p = &json["properties"];
    assert_eq!(p["list"][1][2]["deep"][0], true);
    assert_eq!(p["obj"]["n"]["x"], "y");
    assert_eq!(p["text"], o.text.as_str());
    assert_eq!(p["maybe"], 7);
    assert!(p["maybe_not"].is_null());
    assert_eq!(p["tags"], serde_json::json!([1, -2, 3]));
    assert_eq!(p["names"], serde_json::json!(["a", "b"]));
    assert_eq!(p["fixed"], serde_json::json!([1, 2, 3]));
    assert!(p.get("even").is_none(), "7 is odd");
    assert_eq!(p[o.text.as_str()], 7);
    assert_eq!(p["count_7"], 7);
    assert_eq!(p["pair_3"], -3);
    assert_eq!(p["$set"]["a"], "x");
}

#[test]
fn capture_across_block_switches_allocates_nothing() {
    // Small blocks: every few events the lane takes a fresh block from the pool, and every
    // drain hands the finished ones back.
    let queue = HeapQueue::with_blocks(1, 8, 1024);
    let mut producer = HeapQueue::producer(&queue).expect("lane");
    let mut consumer = try_consumer(&queue).expect("consumer");
    let user = String::from("user-42");
    assert_eq!(producer.capture(&event(0, &user), &CLOCK), Captured::Queued);
    assert_eq!(consumer.drain(|_| true).events, 1);
    let (n, (queued, drained, fewest, most)) = allocations(|| {
        let (mut queued, mut drained) = (0, 0);
        let (mut fewest, mut most) = (usize::MAX, 0);
        for round in 0..50 {
            for i in 0..10 {
                queued +=
                    usize::from(producer.capture(&event(round * 10 + i, &user), &CLOCK) == Captured::Queued);
                let free = queue.lanes().free_blocks();
                (fewest, most) = (fewest.min(free), most.max(free));
            }
            drained += consumer.drain(|_| true).events;
        }
        (queued, drained, fewest, most)
    });
    assert_eq!(n, 0, "capture across block switches allocated {n} times");
    assert_eq!((queued, drained), (500, 500));
    assert!(fewest + 2 <= most, "the lane switched blocks (free blocks {fewest}..={most})");
}

#[test]
fn static_queue_capture_allocates_nothing() {
    static QUEUE: StaticQueue<2, 16, 4096> = StaticQueue::new();
    let mut producer = StaticQueue::producer(&QUEUE).expect("lane");
    let mut consumer = try_consumer(&QUEUE).expect("consumer");
    let user = String::from("device-7");
    assert_eq!(producer.capture(&event(0, &user), &CLOCK), Captured::Queued);
    assert_eq!(consumer.drain(|_| true).events, 1);

    let (n, (queued, drained)) = allocations(|| {
        let mut queued = 0;
        let mut drained = 0;
        for round in 0..4 {
            for i in 0..N {
                queued +=
                    usize::from(producer.capture(&event(round * N + i, &user), &CLOCK) == Captured::Queued);
            }
            drained += consumer.drain(|_| true).events;
        }
        (queued, drained)
    });
    assert_eq!(n, 0, "StaticQueue capture allocated {n} times");
    assert_eq!((queued, drained), (4 * N, 4 * N));
}

#[test]
fn shared_capture_allocates_nothing() {
    let queue = HeapQueue::with_blocks(1, 16, 4096);
    let mut consumer = try_consumer(&queue).expect("consumer");
    let o = owned();
    let nested = [Value::from("a"), Value::Null];
    let members = [("k", Value::from(1.5))];
    let user = String::from("user-42");
    assert_eq!(queue.capture_shared(&event(0, &user), &CLOCK), Captured::Queued);
    assert_eq!(consumer.drain(|_| true).events, 1);
    static QUEUE: StaticQueue<1, 16, 4096> = StaticQueue::new();
    assert_eq!(QUEUE.capture_shared(&event(0, &user), &CLOCK), Captured::Queued);

    let (n, outcomes) = allocations(|| {
        let mut queued = 0;
        for round in 0..4 {
            for i in 0..N / 4 {
                let i = round * N + i;
                queued += usize::from(queue.capture_shared(&event(i, &user), &CLOCK) == Captured::Queued);
                queued += usize::from(QUEUE.capture_shared(&event(i, &user), &CLOCK) == Captured::Queued);
                queued += usize::from(
                    queue.capture_shared(&rich(i, &o, &nested, &members), &CLOCK) == Captured::Queued,
                );
            }
            consumer.drain(|_| true);
        }
        let rejected = queue.capture_shared(&Event::new("e", " "), &CLOCK);
        // Every shared lane busy: dropped and counted.
        let held = fasthog::ring::try_shared(&queue).expect("the shared lane");
        let dropped = queue.capture_shared(&event(0, &user), &CLOCK);
        drop(held);
        (queued, rejected, dropped)
    });
    assert_eq!(n, 0, "capture_shared allocated {n} times");
    assert_eq!(outcomes, (3 * N, Captured::Rejected, Captured::Dropped));
}

#[test]
fn client_capture_allocates_nothing() {
    let recorder = Recorder::new();
    let client = Client::builder("phc_test").build_with_transport(recorder.clone()).expect("a client");
    let o = owned();
    let nested = [Value::from("a"), Value::Null];
    let members = [("k", Value::from(1.5))];
    // Warm-up: the first capture on a thread claims its lane.
    assert_eq!(client.capture(&event(0, &o.user)), Captured::Queued);
    let (n, queued) = allocations(|| {
        let mut queued = 0;
        for i in 0..N {
            queued += usize::from(client.capture(&event(i, &o.user)) == Captured::Queued);
            queued += usize::from(client.capture(&rich(i, &o, &nested, &members)) == Captured::Queued);
        }
        let rejected = client.capture(&Event::new("", &o.user));
        (queued, rejected)
    });
    assert_eq!(n, 0, "Client::capture allocated {n} times");
    assert_eq!(queued, (2 * N, Captured::Rejected));
    client.flush(Duration::from_secs(10)).expect("flushed");
    assert_eq!(recorder.events().len(), 2 * N + 1, "every capture was delivered");
}

#[test]
fn encoding_a_batch_allocates_nothing() {
    let queue = HeapQueue::with_blocks(2, 16, 4096);
    let mut producer = HeapQueue::producer(&queue).expect("lane");
    let mut consumer = try_consumer(&queue).expect("consumer");
    let user = String::from("user-42");
    let envelope = Envelope { api_key: "phc_test_key", historical_migration: false };
    let limits = Limits::DEFAULT;
    // Buffers come from the caller, allocated once.
    let mut batch = Batch::new(
        vec![0u8; limits.max_batch_bytes],
        vec![0u32; limits.max_events],
        limits,
        envelope.overhead(),
    );
    let mut encoder = Encoder::new(Enrichment { environment: "production", ..Enrichment::DEFAULT }, 99);
    let mut scratch = vec![0u8; 16 << 10];
    let mut head = [0u8; HEAD_CAPACITY];
    // Warm-up: one full round.
    assert_eq!(producer.capture(&event(0, &user), &CLOCK), Captured::Queued);
    consumer.drain(|e| matches!(batch.push(&mut encoder, e, &CLOCK), Pushed::Added(_)));
    batch.clear();

    let (n, (added, full, encoded, overhead)) = allocations(|| {
        let (mut added, mut full, mut encoded) = (0, 0, 0);
        for round in 0..4 {
            for i in 0..N {
                let _ = producer.capture(&event(round * N + i, &user), &CLOCK);
            }
            consumer.drain(|e| {
                // One event alone, into a scratch writer.
                let mut w = Writer::new(&mut scratch, 0);
                let notes = encoder.encode(e, &CLOCK, &mut w);
                encoded += usize::from(!w.overflowed() && notes.non_finite == 1);
                // And into the batch, sending (here: measuring) it when full.
                loop {
                    match batch.push(&mut encoder, e, &CLOCK) {
                        Pushed::Added(_) => {
                            added += 1;
                            break;
                        }
                        Pushed::Invalid => unreachable!("captured events are valid"),
                        Pushed::Full => {
                            full += 1;
                            let h = envelope.write_head(1_700_000_000_000_000_000, &mut head);
                            std::hint::black_box((h, batch.events(0..batch.len()), batch.events(1..3)));
                            batch.clear();
                        }
                        Pushed::TooLarge => unreachable!(),
                    }
                }
                true
            });
        }
        (added, full, encoded, envelope.overhead())
    });
    assert_eq!(n, 0, "encoding allocated {n} times");
    assert_eq!(added, 4 * N);
    assert_eq!(encoded, 4 * N);
    assert!(full >= 4 * N / limits.max_events - 1, "the count limit was reached ({full})");
    assert!(overhead > 0);

    // What was encoded without allocating is a valid request.
    let v = common::check_batch(&envelope, 1_700_000_000_000_000_000, &batch, &limits);
    assert_eq!(v["batch"].as_array().unwrap().len(), batch.len());
}

#[cfg(feature = "std")]
#[test]
fn a_reused_gzip_compressor_allocates_nothing_per_body() {
    use fasthog::client::GzipBody;
    // Bodies like the flusher's: a 64-event batch of similar JSON, each a little different.
    let body = |k: usize| -> Vec<u8> {
        let events: Vec<String> = (0..64)
            .map(|i| format!(r#"{{"event":"order_filled","distinct_id":"user-{k}-{i}","properties":{{"qty":{i},"price":101.25}}}}"#))
            .collect();
        format!(r#"{{"api_key":"phc_x","batch":[{}]}}"#, events.join(",")).into_bytes()
    };
    let bodies: Vec<Vec<u8>> = (0..50).map(body).collect();
    let mut gz = GzipBody::new(1);
    let mut out = Vec::new();
    for b in &bodies[..3] {
        gz.compress(b, &mut out); // warm-up: the output buffer grows to size
    }
    let (n, sizes) = allocations(|| {
        let mut sizes = 0;
        for b in &bodies {
            gz.compress(b, &mut out);
            sizes += out.len();
        }
        sizes
    });
    assert_eq!(n, 0, "allocations for {} bodies", bodies.len());
    // What the transport did before: a new encoder per body.
    let (fresh, _) = allocations(|| {
        for b in &bodies {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
            std::io::Write::write_all(&mut e, b).unwrap();
            std::hint::black_box(e.finish().unwrap());
        }
    });
    eprintln!("allocations per body: a new GzEncoder {}, a reused GzipBody 0", fresh / bodies.len());
    assert!(fresh >= bodies.len(), "a new encoder per body allocates: {fresh}");
    let plain: usize = bodies.iter().map(Vec::len).sum();
    assert!(sizes * 3 < plain, "compressed: {sizes} of {plain} bytes");
    // A valid gzip member: magic, and the trailer's length.
    gz.compress(&bodies[7], &mut out);
    assert_eq!(&out[..3], &[0x1f, 0x8b, 8]);
    assert_eq!(u32::from_le_bytes(out[out.len() - 4..].try_into().unwrap()) as usize, bodies[7].len());
}

#[test]
fn sampled_capture_allocates_nothing() {
    for by_id in [false, true] {
        let recorder = Recorder::new();
        let client = Client::builder("phc_test")
            .sample_all(0.5)
            .sample("rare", 0.01)
            .sample("order_filled", 0.5)
            .sample_by_distinct_id(by_id)
            .build_with_transport(recorder.clone())
            .expect("a client");
        let users: Vec<String> = (0..N).map(|i| format!("user-{i}")).collect();
        let warm_up = client.capture(&Event::new("warm_up", "u")); // claims the lane
        let (n, outcomes) = allocations(|| {
            let (mut queued, mut sampled) = (0, 0);
            for (i, user) in users.iter().enumerate() {
                for outcome in [client.capture(&event(i, user)), client.capture(&Event::new("rare", user))] {
                    queued += usize::from(outcome == Captured::Queued);
                    sampled += usize::from(outcome == Captured::Sampled);
                }
            }
            (queued, sampled)
        });
        assert_eq!(n, 0, "sampled capture (by distinct_id: {by_id}) allocated {n} times");
        assert_eq!(outcomes.0 + outcomes.1, 2 * N);
        assert!(outcomes.1 > 0, "some events were sampled out");
        let stats = client.shutdown(Duration::from_secs(10)).expect("shut down");
        assert_eq!(stats.sampled, (outcomes.1 + usize::from(warm_up == Captured::Sampled)) as u64);
    }
}

#[test]
fn the_before_send_filter_allocates_nothing() {
    use fasthog::filter::{EventView, Filter, Filtered, Verdict};
    let decide = |e: &EventView<'_>| match e.property("flag") {
        Some(fasthog::filter::ValueRef::Bool(false)) => Verdict::Drop,
        _ => Verdict::Remove(&["note", "plan"]),
    };
    let mut scratch = vec![0u8; 16 << 10];
    let mut filter = Filter::new(&decide, &mut scratch);
    let entries: Vec<fasthog::OwnedEntry> = (0..N).map(|i| event(i, "user-42").to_entry()).collect();
    let mut encoder = Encoder::new(Enrichment::DEFAULT, 5);
    let mut out = vec![0u8; 64 << 10];
    let (n, (sent, removed)) = allocations(|| {
        let (mut sent, mut removed) = (0, 0);
        for entry in &entries {
            fasthog::AsEntry::with_entry(entry, |bytes| {
                if let Filtered::Send { entry, removed: r } = filter.apply(bytes) {
                    let mut w = Writer::new(&mut out, 0);
                    encoder.encode(entry, &CLOCK, &mut w);
                    sent += 1;
                    removed += r;
                }
            });
        }
        (sent, removed)
    });
    assert_eq!(n, 0, "filtering and encoding allocated {n} times");
    assert_eq!((sent, removed), (N / 2, N)); // odd `i` kept, two keys removed from each
}

#[cfg(feature = "tracing")]
#[test]
fn a_tracing_event_through_the_layer_allocates_nothing() {
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Debug)]
    struct Refused;
    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("connection refused")
        }
    }
    impl std::error::Error for Refused {}

    let recorder = Recorder::new();
    let client = Client::builder("phc_test").build_with_transport(recorder.clone()).expect("a client");
    let layer = fasthog::tracing::PostHogLayer::new(&client).exceptions(true);
    let long = "é".repeat(150); // past the first name buffer: the long path
    let err = Refused;
    let selected = tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        // Span creation copies its distinct_id (allocates): done before counting.
        let span = tracing::info_span!("request", distinct_id = "2f1c8f5e-7a34-4a63-9d0b-0c5b8d1f2e3a");
        let _entered = span.enter();
        let events = |i: usize| {
            tracing::info!(target: "posthog", event = "order_filled", qty = i, seq = i as i64, price = 101.25, venue = "XNAS");
            tracing::info!(target: "posthog", event = ?Static("debugged"), distinct_id = i, ok = true, note = %"shown");
            tracing::info!(target: "posthog", event = long.as_str(), "with a message {i}");
            tracing::error!(error = &err as &dyn std::error::Error, "quote failed");
            tracing::error!(target: "app", code = i, "pool exhausted");
            tracing::info!(target: "app", "not selected {i}");
        };
        events(0); // warm-up: the first capture on this thread claims its lane
        let (n, ()) = allocations(|| (1..=N).for_each(events));
        assert_eq!(n, 0, "tracing events through the layer allocated {n} times");
        5 * (N + 1)
    });
    client.flush(Duration::from_secs(10)).expect("flushed");
    let stats = client.stats();
    assert_eq!((stats.captured, stats.sent), (selected as u64, selected as u64));
    assert_eq!(recorder.events().len(), selected);
}
