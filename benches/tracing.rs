//! What a `tracing::info!` costs when `fasthog::tracing::PostHogLayer` turns it into the
//! typical event, next to a direct `Client::capture` of the same event and to
//! tracing-subscriber's `fmt` layer writing the same `info!` to `std::io::sink()`, in one run.
//! Criterion, `harness = false`:
//!
//! ```text
//! cargo bench -p fasthog --features tracing --bench tracing              # the full run
//! cargo bench -p fasthog --features tracing --bench tracing -- --test    # each bench once
//! ```
//!
//! The typical event is the one of `benches/capture.rs` and the peers: static name
//! `order_filled`, a 36-character distinct_id, `qty` and `seq` ints, a `price` float, a
//! `venue` short string. Group `tracing_typical`:
//! - `client/build+capture`: `Client::capture(&Event::new(..).prop(..)..)`, the baseline;
//! - `layer/info`: `info!(target: "posthog", event = .., distinct_id = .., qty = .., ..)`
//!   through `registry().with(PostHogLayer)`, into the same client;
//! - `layer/info_in_span`: the same without the `distinct_id` field, inside an entered span
//!   that has it (the id comes from the layer's per-thread span stack);
//! - `fmt_sink/info`: the same `info!` through `registry().with(fmt::layer())` writing to
//!   `std::io::sink()` (no ANSI colours);
//! - `registry/info_other_target` and `layer/info_other_target`: an `info!` of another
//!   target, through a bare registry and through the layer, which only compares the target.
//!
//! The client's flusher delivers to a local receiver on the other core; as in
//! `benches/capture.rs`, each sample times at most 16,384 events in chunks of 4,096, each
//! followed by an untimed flush, so no capture finds the lanes full.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fasthog::tracing::PostHogLayer;
use fasthog::{Captured, Client, Event, Props, Static};
use fasthog_receiver::{Receiver, ReceiverConfig, Store};
use tracing_subscriber::layer::SubscriberExt;

const NAME: &str = "order_filled";
const USER: &str = "2f1c8f5e-7a34-4a63-9d0b-0c5b8d1f2e3a";

/// The typical event, built for a direct capture.
#[inline(always)]
fn typical(user: &str, i: u64) -> Event<'_, impl Props + '_> {
    Event::new(NAME, user)
        .prop("qty", (i % 100) as i64)
        .prop("seq", i as i64)
        .prop("price", 101.25 + (i % 7) as f64)
        .prop("venue", Static("XNAS"))
}

/// The typical event as a `tracing` event of the layer's target.
#[inline(always)]
fn info_typical(user: &str, i: u64) {
    tracing::info!(
        target: "posthog",
        event = NAME,
        distinct_id = user,
        qty = (i % 100) as i64,
        seq = i as i64,
        price = 101.25 + (i % 7) as f64,
        venue = "XNAS"
    );
}

/// The typical event without its distinct_id (given by an enclosing span).
#[inline(always)]
fn info_typical_no_id(i: u64) {
    tracing::info!(
        target: "posthog",
        event = NAME,
        qty = (i % 100) as i64,
        seq = i as i64,
        price = 101.25 + (i % 7) as f64,
        venue = "XNAS"
    );
}

/// The same fields under another target: not selected.
#[inline(always)]
fn info_other_target(user: &str, i: u64) {
    tracing::info!(
        target: "app",
        event = NAME,
        distinct_id = user,
        qty = (i % 100) as i64,
        seq = i as i64,
        price = 101.25 + (i % 7) as f64,
        venue = "XNAS"
    );
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

fn tracing_typical(c: &mut Criterion) {
    let mut g = c.benchmark_group("tracing_typical");
    g.throughput(Throughput::Elements(1));
    let receiver = Receiver::start(ReceiverConfig { store: Store::CountOnly, ..Default::default() })
        .expect("start receiver");
    let client = Client::builder("phc_fasthog_bench_0000000000000000000000000")
        .host(receiver.url())
        .environment("bench")
        .lanes(2)
        .build()
        .expect("client");
    const CAP: u64 = 16_384;
    const FLUSH_EVERY: u64 = 4096;
    let settle = || {
        let _ = client.flush(Duration::from_secs(30));
    };
    // Per sample at most `CAP` timed calls, in chunks each followed by an untimed flush.
    let timed = |iters: u64, op: &mut dyn FnMut(u64)| {
        let n = iters.min(CAP);
        let d = chunked(n, FLUSH_EVERY, op, settle);
        d.mul_f64(iters as f64 / n as f64)
    };

    g.bench_function("client/build+capture", |b| {
        b.iter_custom(|iters| {
            timed(iters, &mut |i| {
                let captured = client.capture(&typical(black_box(USER), i));
                debug_assert_eq!(captured, Captured::Queued);
                black_box(captured);
            })
        })
    });

    {
        let _default =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(PostHogLayer::new(&client)));
        g.bench_function("layer/info", |b| {
            b.iter_custom(|iters| timed(iters, &mut |i| info_typical(black_box(USER), i)))
        });
        let span = tracing::info_span!("request", distinct_id = USER);
        let _entered = span.enter();
        g.bench_function("layer/info_in_span", |b| {
            b.iter_custom(|iters| timed(iters, &mut info_typical_no_id))
        });
        // Nothing is captured: no flush needed between chunks.
        g.bench_function("layer/info_other_target", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                info_other_target(black_box(USER), i)
            })
        });
    }

    {
        let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::sink).with_ansi(false);
        let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(fmt));
        g.bench_function("fmt_sink/info", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                info_typical(black_box(USER), i)
            })
        });
    }

    {
        let _default = tracing::subscriber::set_default(tracing_subscriber::registry());
        g.bench_function("registry/info_other_target", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                info_other_target(black_box(USER), i)
            })
        });
    }

    let stats = client.shutdown(Duration::from_secs(30)).expect("shutdown");
    assert_eq!(stats.dropped + stats.rejected, 0, "every bench event is queued and valid: {stats:?}");
    assert_eq!(stats.sent, stats.captured, "{stats:?}");
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = tracing_typical
}
criterion_main!(benches);
