//! What one `capture` costs, next to a bare ring push of the same record, and what encoding
//! costs. Criterion, `harness = false`:
//!
//! ```text
//! cargo bench -p fasthog --bench capture              # the full run (a few minutes)
//! cargo bench -p fasthog --bench capture -- --test    # each bench once (CI smoke test)
//! ```
//!
//! Groups:
//! - `capture_typical`: the typical event (static name, 36-char distinct_id, `qty` and `seq`
//!   ints, `price` float, `venue` short string) into a `StaticQueue` lane, a `HeapQueue` lane,
//!   and `Client::capture` with the real flusher draining to a local receiver; each built per
//!   call ("build+") and prebuilt. (The ring and queue peers, each pushing a compact record of
//!   the same values, are in `cargo bench -p fasthog-peers --bench peers`.)
//! - `capture_props`: 0, 4 and 16 properties, built per call, into a lane.
//! - `capture_strings`: literal keys against runtime (`String`) keys and values, and a 2 KiB
//!   string value (every string is copied into the lane).
//! - `capture_sampled`: the typical event into a lane through `capture_sampled`: with no
//!   sampler, with `Sampler::OFF` read at run time (what the client does when sampling is
//!   off), with 8 per-name rules none of which names it, with a random draw and with the
//!   distinct_id hash at the largest rate below 1 (so the decision runs and keeps nearly
//!   every event: the same write each time), and sampled out (rate 2^-53).
//! - `encode`: `Encoder::encode` of one typical entry and `Batch::push` of 64 drained entries,
//!   in events/s, stamped by the client's default coarse clock (wall-clock nanos) and by the
//!   TSC clock of `precise_timestamps(true)`.
//!
//! Lanes are drained between timed chunks (untimed), so no capture ever finds its lane full.
//! The client bench waits for delivery between chunks of 4096 captures and times at most
//! 16 384 captures per sample (reporting the mean of those as the sample's per-call time), so
//! its wall time stays bounded by the flusher's throughput.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fasthog::batch::{Batch, Encoder, Enrichment, Envelope, Limits, Pushed};
use fasthog::client::{ClientClock, CoarseClock, TscClock};
use fasthog::json::Writer;
use fasthog::ring::{try_consumer, LaneProducer, LanesConsumer, LanesRef};
use fasthog::{Captured, Client, Clock, Event, HeapQueue, Props, Rate, Sampler, Static, StaticQueue};
use fasthog_receiver::{Receiver, ReceiverConfig, Store};

#[path = "common/bench.rs"]
mod bench;
use bench::{config, typical, NAME, USER};

/// The event with no properties.
#[inline(always)]
fn props0(user: &str, _i: u64) -> Event<'_> {
    Event::new(NAME, user)
}

/// The event with 16 properties: the typical four kinds, four times.
#[inline(always)]
fn props16(user: &str, i: u64) -> Event<'_, impl Props + '_> {
    let (q, s, p) = ((i % 100) as i64, i as i64, 101.25 + (i % 7) as f64);
    Event::new(NAME, user)
        .prop("qty", q)
        .prop("seq", s)
        .prop("price", p)
        .prop("venue", Static("XNAS"))
        .prop("k4", q)
        .prop("k5", s)
        .prop("k6", p)
        .prop("k7", Static("XNAS"))
        .prop("k8", q)
        .prop("k9", s)
        .prop("k10", p)
        .prop("k11", Static("XNAS"))
        .prop("k12", q)
        .prop("k13", s)
        .prop("k14", p)
        .prop("k15", Static("XNAS"))
}

/// Every string a literal (`Static` values are kept from 0.1; like every string, copied).
#[inline(always)]
fn all_static(i: u64) -> Event<'static, impl Props> {
    Event::new_static(NAME, USER)
        .prop("qty", (i % 100) as i64)
        .prop("seq", i as i64)
        .prop("price", 101.25 + (i % 7) as f64)
        .prop("venue", Static("XNAS"))
}

/// Every string a runtime `String`: name, distinct_id, keys and the string value.
#[inline(always)]
fn all_copied<'a>(
    name: &'a str,
    user: &'a str,
    keys: &'a [String; 4],
    venue: &'a str,
    i: u64,
) -> Event<'a, impl Props + 'a> {
    Event::named(name, user)
        .prop_dyn(&keys[0], (i % 100) as i64)
        .prop_dyn(&keys[1], i as i64)
        .prop_dyn(&keys[2], 101.25 + (i % 7) as f64)
        .prop_dyn(&keys[3], venue)
}

/// Consumes a capture's outcome. Lanes are drained before they fill, so every capture is
/// queued (the groups check the queues' `dropped` counters at the end).
#[inline(always)]
fn queued(c: Captured) {
    let _ = black_box(c);
}

/// Runs `op(i)` for `iters` values of `i`, timing chunks of `chunk` and calling `between`
/// (untimed) after each chunk.
fn chunked(iters: u64, chunk: u64, mut op: impl FnMut(u64), mut between: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = chunk.min(iters - done);
        let start = Instant::now();
        for k in done..done + n {
            op(k);
        }
        total += start.elapsed();
        between();
        done += n;
    }
    total
}

/// Captures per timed chunk: the lane is drained (untimed) after each.
const CHUNK: u64 = 512;
/// Blocks of the bench lanes' pools, and their size: 256 KiB, room for several chunks of
/// typical events (136 lane bytes each) and of 16-property ones.
const BLOCKS: usize = 64;
const BLOCK: usize = 4096;
static QUEUE: StaticQueue<1, BLOCKS, BLOCK> = StaticQueue::new();

/// A one-lane `HeapQueue`, its producer and its consumer.
fn heap_lane() -> (Arc<HeapQueue>, LaneProducer<Arc<HeapQueue>>, LanesConsumer<Arc<HeapQueue>>) {
    let queue = Arc::new(HeapQueue::with_blocks(1, BLOCKS, BLOCK));
    let producer = HeapQueue::producer(queue.clone()).expect("a lane");
    let consumer = try_consumer(queue.clone()).expect("the consumer");
    (queue, producer, consumer)
}

/// Drains every published entry (read in place, as the flusher's encoder does).
fn drain_all<R: LanesRef>(consumer: &mut LanesConsumer<R>) {
    consumer.drain(|entry| {
        black_box(entry);
        true
    });
}

/// The client's default clock: wall-clock nanos in an atomic (refreshed here by the bench,
/// by the flusher thread in a client).
fn coarse_clock() -> ClientClock {
    ClientClock::Coarse(Arc::new(CoarseClock::new()))
}

fn capture_typical(c: &mut Criterion) {
    let mut g = c.benchmark_group("capture_typical");
    g.throughput(Throughput::Elements(1));
    let clock = coarse_clock();

    // A StaticQueue lane (the no_std shape), drained between chunks.
    {
        let mut producer = StaticQueue::producer(&QUEUE).expect("a lane");
        let mut consumer = try_consumer(&QUEUE).expect("the consumer");
        let mut drain = || drain_all(&mut consumer);
        g.bench_function("static_lane/build+capture", |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    CHUNK,
                    |i| {
                        queued(producer.capture(&typical(black_box(USER), i), &clock));
                    },
                    &mut drain,
                )
            })
        });
        let event = typical(USER, 7);
        g.bench_function("static_lane/capture_prebuilt", |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    CHUNK,
                    |_| {
                        queued(producer.capture(black_box(&event), &clock));
                    },
                    &mut drain,
                )
            })
        });
        assert_eq!(QUEUE.stats().dropped, 0, "a lane filled up: the bench must drain sooner");
    }

    // A HeapQueue lane (what the std client uses), drained between chunks.
    {
        let (queue, mut producer, mut consumer) = heap_lane();
        let mut drain = || drain_all(&mut consumer);
        g.bench_function("heap_lane/build+capture", |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    CHUNK,
                    |i| {
                        queued(producer.capture(&typical(black_box(USER), i), &clock));
                    },
                    &mut drain,
                )
            })
        });
        let event = typical(USER, 7);
        g.bench_function("heap_lane/capture_prebuilt", |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    CHUNK,
                    |_| {
                        queued(producer.capture(black_box(&event), &clock));
                    },
                    &mut drain,
                )
            })
        });
        assert_eq!(queue.stats().dropped, 0, "a lane filled up: the bench must drain sooner");
    }

    // The client with default memory (8 MiB), its flusher draining on the other core to a
    // local receiver.
    {
        let receiver = Receiver::start(ReceiverConfig { store: Store::CountOnly, ..Default::default() })
            .expect("start receiver");
        let client = Client::builder("phc_fasthog_bench_0000000000000000000000000")
            .host(receiver.url())
            .environment("bench")
            .lanes(2)
            .build()
            .expect("client");
        // Per sample: at most this many timed captures, in chunks well within the memory, each
        // chunk followed by a flush (untimed) so the next starts with empty lanes.
        const CAP: u64 = 16_384;
        const FLUSH_EVERY: u64 = 4096;
        let settle = || {
            let _ = client.flush(Duration::from_secs(30));
        };
        let scaled = |iters: u64, measured: u64, d: Duration| d.mul_f64(iters as f64 / measured as f64);
        g.bench_function("client/build+capture", |b| {
            b.iter_custom(|iters| {
                let n = iters.min(CAP);
                let d = chunked(
                    n,
                    FLUSH_EVERY,
                    |i| {
                        queued(client.capture(&typical(black_box(USER), i)));
                    },
                    settle,
                );
                scaled(iters, n, d)
            })
        });
        let event = typical(USER, 7);
        g.bench_function("client/capture_prebuilt", |b| {
            b.iter_custom(|iters| {
                let n = iters.min(CAP);
                let d = chunked(
                    n,
                    FLUSH_EVERY,
                    |_| {
                        queued(client.capture(black_box(&event)));
                    },
                    settle,
                );
                scaled(iters, n, d)
            })
        });
        let stats = client.shutdown(Duration::from_secs(30)).expect("shutdown");
        assert_eq!(stats.dropped, 0, "the client bench must not drop: {stats:?}");
    }
    g.finish();
}

fn capture_props(c: &mut Criterion) {
    let mut g = c.benchmark_group("capture_props");
    g.throughput(Throughput::Elements(1));
    let clock = coarse_clock();
    let (queue, mut producer, mut consumer) = heap_lane();
    let mut drain = || drain_all(&mut consumer);
    g.bench_function(BenchmarkId::new("build+capture", 0), |b| {
        b.iter_custom(|iters| {
            chunked(
                iters,
                CHUNK,
                |i| {
                    queued(producer.capture(&props0(black_box(USER), i), &clock));
                },
                &mut drain,
            )
        })
    });
    g.bench_function(BenchmarkId::new("build+capture", 4), |b| {
        b.iter_custom(|iters| {
            chunked(
                iters,
                CHUNK,
                |i| {
                    queued(producer.capture(&typical(black_box(USER), i), &clock));
                },
                &mut drain,
            )
        })
    });
    g.bench_function(BenchmarkId::new("build+capture", 16), |b| {
        b.iter_custom(|iters| {
            chunked(
                iters,
                CHUNK,
                |i| {
                    queued(producer.capture(&props16(black_box(USER), i), &clock));
                },
                &mut drain,
            )
        })
    });
    assert_eq!(queue.stats().dropped, 0, "a lane filled up: the bench must drain sooner");
    g.finish();
}

fn capture_strings(c: &mut Criterion) {
    let mut g = c.benchmark_group("capture_strings");
    g.throughput(Throughput::Elements(1));
    let clock = coarse_clock();
    // Blocks large enough for a few 2 KiB-string events each.
    let queue = Arc::new(HeapQueue::with_blocks(1, 256, 16 * 1024));
    let mut producer = HeapQueue::producer(queue.clone()).expect("a lane");
    let mut consumer = try_consumer(queue.clone()).expect("the consumer");
    let name = NAME.to_string();
    let user = USER.to_string();
    let keys = ["qty", "seq", "price", "venue"].map(String::from);
    let venue = "XNAS".to_string();
    let long = "x".repeat(2048);
    let mut drain = || drain_all(&mut consumer);
    g.bench_function("static/build+capture", |b| {
        b.iter_custom(|iters| {
            chunked(
                iters,
                CHUNK,
                |i| {
                    queued(producer.capture(&all_static(i), &clock));
                },
                &mut drain,
            )
        })
    });
    g.bench_function("typical/build+capture", |b| {
        b.iter_custom(|iters| {
            chunked(
                iters,
                CHUNK,
                |i| {
                    queued(producer.capture(&typical(black_box(&user), i), &clock));
                },
                &mut drain,
            )
        })
    });
    g.bench_function("copied/build+capture", |b| {
        b.iter_custom(|iters| {
            chunked(
                iters,
                CHUNK,
                |i| {
                    queued(producer.capture(&all_copied(&name, &user, &keys, &venue, i), &clock));
                },
                &mut drain,
            )
        })
    });
    g.bench_function("string_2KiB/build+capture", |b| {
        b.iter_custom(|iters| {
            chunked(
                iters,
                CHUNK,
                |i| {
                    queued(
                        producer.capture(&typical(black_box(&user), i).prop("$current_url", &long), &clock),
                    );
                },
                &mut drain,
            )
        })
    });
    assert_eq!(queue.stats().dropped, 0, "a lane filled up: the bench must drain sooner");
    g.finish();
}

/// 64 typical entries as the flusher drains them from a lane, stamped by `clock` at capture.
fn drained_entries(clock: &impl Clock, refresh: impl Fn()) -> Vec<Vec<u8>> {
    let queue = HeapQueue::with_blocks(1, BLOCKS, BLOCK);
    let mut producer = HeapQueue::producer(&queue).expect("a lane");
    let mut consumer = try_consumer(&queue).expect("the consumer");
    for i in 0..64 {
        if i % 16 == 0 {
            refresh();
        }
        assert_eq!(producer.capture(&typical(USER, i), clock), Captured::Queued);
    }
    let mut events = Vec::with_capacity(64);
    consumer.drain(|e| {
        events.push(e.to_vec());
        true
    });
    assert_eq!(events.len(), 64);
    events
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    let enrichment = Enrichment { environment: "production", ..Enrichment::DEFAULT };
    let coarse = Arc::new(CoarseClock::new());
    let default_clock = ClientClock::Coarse(coarse.clone());
    let tsc = ClientClock::Tsc(TscClock::new());
    let clocks: [(&str, &ClientClock, Vec<Vec<u8>>); 2] = [
        // The default: wall-clock nanos, refreshed every millisecond (here every 16 events).
        ("coarse", &default_clock, drained_entries(&default_clock, || coarse.refresh())),
        // `precise_timestamps(true)`: TSC ticks, converted when encoding.
        ("tsc", &tsc, drained_entries(&tsc, || ())),
    ];
    let envelope =
        Envelope { api_key: "phc_fasthog_bench_0000000000000000000000000", historical_migration: false };
    let limits = Limits::DEFAULT;
    for (name, clock, events) in &clocks {
        let mut encoder = Encoder::new(enrichment, 42);
        let mut buf = vec![0u8; 4096];
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("encoder_encode/typical/{name}"), |b| {
            let mut i = 0;
            b.iter(|| {
                let mut w = Writer::new(&mut buf, 0);
                encoder.encode(events[i % 64].as_slice(), *clock, &mut w);
                i += 1;
                black_box(w.len())
            })
        });
        let mut batch: Batch<Vec<u8>, Vec<u32>> = Batch::new(
            vec![0u8; limits.max_batch_bytes],
            vec![0u32; limits.max_events],
            limits,
            envelope.overhead(),
        );
        g.throughput(Throughput::Elements(64));
        g.bench_function(format!("batch_push/64_typical/{name}"), |b| {
            b.iter(|| {
                batch.clear();
                for e in events {
                    let pushed = batch.push(&mut encoder, e.as_slice(), *clock);
                    debug_assert!(matches!(pushed, Pushed::Added(_)));
                    black_box(pushed);
                }
                black_box(batch.bytes_len())
            })
        });
    }
    g.finish();
}

fn capture_sampled(c: &mut Criterion) {
    let mut g = c.benchmark_group("capture_sampled");
    g.throughput(Throughput::Elements(1));
    let clock = coarse_clock();
    let (queue, mut producer, mut consumer) = heap_lane();
    let mut drain = || drain_all(&mut consumer);
    // The largest rate below 1: the decision runs, and keeps all but 1 in 2^53.
    let nearly_all = Rate::new(1.0 - f64::EPSILON / 2.0).expect("a rate");
    let rules = (0..8).fold(Sampler::new(), |s, i| {
        let name = ["page_scrolled", "tick", "heartbeat", "hover", "move", "frame", "poll", "ping"][i];
        s.event(name, Rate::new(0.1).unwrap()).expect("a rule")
    });
    let cases = [
        ("no_sampler", None),
        ("sampler_off", Some(Sampler::OFF)),
        ("8_rules_no_match", Some(rules)),
        ("random_draw_kept", Some(Sampler::new().all(nearly_all).seed(1))),
        ("distinct_id_hash_kept", Some(Sampler::new().all(nearly_all).by_distinct_id(true))),
        ("sampled_out", Some(Sampler::new().all(Rate::new(f64::EPSILON / 2.0).unwrap()))),
    ];
    for (name, sampler) in cases {
        g.bench_function(format!("build+capture/{name}"), |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    CHUNK,
                    |i| match &sampler {
                        None => queued(producer.capture(&typical(black_box(USER), i), &clock)),
                        Some(s) => queued(producer.capture_sampled(
                            &typical(black_box(USER), i),
                            &clock,
                            black_box(s),
                        )),
                    },
                    &mut drain,
                )
            })
        });
    }
    assert_eq!(queue.stats().dropped, 0, "a lane filled up: the bench must drain sooner");
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = capture_typical, capture_props, capture_strings, capture_sampled, encode
}
criterion_main!(benches);
