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
//! The client's flusher delivers to a local receiver on the other core. Each sample makes at
//! most 16,384 calls in chunks of 256 and takes the median chunk (see [`sample`]), with an
//! untimed flush every 4,096 so no capture finds the lanes full. Instruction counts of the
//! same paths, independent of the machine's load:
//!
//! ```text
//! cargo bench -p fasthog --features tracing --bench tracing --no-run   # names the binary
//! FASTHOG_BENCH_COUNT=20000 valgrind --tool=callgrind --toggle-collect='*layer_loop' <binary>
//! # and '*direct_loop', '*other_target_loop'; the total / 20,000 = instructions per call
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use fasthog::tracing::PostHogLayer;
use fasthog::{Captured, Client};
use fasthog_receiver::{Receiver, ReceiverConfig, Store};
use tracing_subscriber::layer::SubscriberExt;

#[path = "common/bench.rs"]
mod bench;
use bench::{config, typical, NAME, USER};

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

/// Per sample at most this many timed calls ...
const CAP: u64 = 16_384;
/// ... timed in chunks of this many (the sample's time is the median chunk's) ...
const CHUNK: u64 = 256;
/// ... with an untimed flush after this many, so no capture finds the lanes full.
const FLUSH_EVERY: u64 = 4096;

/// One criterion sample of `iters` calls of `op(i)`: at most [`CAP`] calls are made, in
/// chunks of [`CHUNK`], and the median chunk's time per call stands for all `iters`. On a
/// shared machine a preempted chunk is an outlier the median ignores, where a total would
/// carry it; every bench of the group is measured this way.
fn sample(iters: u64, client: &Client, mut op: impl FnMut(u64)) -> Duration {
    let n = iters.min(CAP);
    if n == 0 {
        return Duration::ZERO;
    }
    let mut per_call = Vec::with_capacity((n / CHUNK + 1) as usize);
    let mut done = 0;
    while done < n {
        let k = CHUNK.min(n - done);
        let start = Instant::now();
        for i in done..done + k {
            op(i);
        }
        per_call.push(start.elapsed().as_secs_f64() / k as f64);
        done += k;
        if done % FLUSH_EVERY == 0 {
            let _ = client.flush(Duration::from_secs(30));
        }
    }
    let _ = client.flush(Duration::from_secs(30));
    per_call.sort_by(f64::total_cmp);
    Duration::from_secs_f64(per_call[per_call.len() / 2] * iters as f64)
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

    g.bench_function("client/build+capture", |b| {
        b.iter_custom(|iters| {
            sample(iters, &client, |i| {
                let captured = client.capture(&typical(black_box(USER), i));
                debug_assert_eq!(captured, Captured::Queued);
                black_box(captured);
            })
        })
    });

    {
        let layer = tracing_subscriber::registry().with(PostHogLayer::new(&client));
        let _default = tracing::subscriber::set_default(layer);
        g.bench_function("layer/info", |b| {
            b.iter_custom(|iters| sample(iters, &client, |i| info_typical(black_box(USER), i)))
        });
        let span = tracing::info_span!("request", distinct_id = USER);
        let _entered = span.enter();
        g.bench_function("layer/info_in_span", |b| {
            b.iter_custom(|iters| sample(iters, &client, info_typical_no_id))
        });
        g.bench_function("layer/info_other_target", |b| {
            b.iter_custom(|iters| sample(iters, &client, |i| info_other_target(black_box(USER), i)))
        });
    }

    {
        let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::sink).with_ansi(false);
        let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(fmt));
        g.bench_function("fmt_sink/info", |b| {
            b.iter_custom(|iters| sample(iters, &client, |i| info_typical(black_box(USER), i)))
        });
    }

    {
        let _default = tracing::subscriber::set_default(tracing_subscriber::registry());
        g.bench_function("registry/info_other_target", |b| {
            b.iter_custom(|iters| sample(iters, &client, |i| info_other_target(black_box(USER), i)))
        });
    }

    let stats = client.shutdown(Duration::from_secs(30)).expect("shutdown");
    assert_eq!(stats.dropped + stats.rejected, 0, "every bench event is queued and valid: {stats:?}");
    assert_eq!(stats.sent, stats.captured, "{stats:?}");
    g.finish();
}

/// Instruction counts, free of the machine's load: with `FASTHOG_BENCH_COUNT=n` the binary
/// runs `n` calls of each path instead of criterion, each path in its own function for
/// callgrind's `--toggle-collect` (`*direct_loop`, `*layer_loop`, `*other_target_loop`).
fn count(n: u64) {
    let receiver = Receiver::start(ReceiverConfig { store: Store::CountOnly, ..Default::default() })
        .expect("start receiver");
    let client = Client::builder("phc_fasthog_bench_0000000000000000000000000")
        .host(receiver.url())
        .memory(64 << 20)
        .build()
        .expect("client");
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(PostHogLayer::new(&client)));
    direct_loop(&client, n);
    layer_loop(n);
    other_target_loop(n);
    let stats = client.shutdown(Duration::from_secs(30)).expect("shutdown");
    assert_eq!((stats.captured, stats.sent), (2 * n, 2 * n), "{stats:?}");
}

#[inline(never)]
fn direct_loop(client: &Client, n: u64) {
    for i in 0..n {
        black_box(client.capture(&typical(black_box(USER), i)));
    }
}

#[inline(never)]
fn layer_loop(n: u64) {
    for i in 0..n {
        info_typical(black_box(USER), i);
    }
}

#[inline(never)]
fn other_target_loop(n: u64) {
    for i in 0..n {
        info_other_target(black_box(USER), i);
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = tracing_typical
}

fn main() {
    if let Some(n) = std::env::var("FASTHOG_BENCH_COUNT").ok().and_then(|n| n.parse().ok()) {
        return count(n);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
