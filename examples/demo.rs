//! The main job: capture events from several threads at a high rate, ship them, and account
//! for every one.
//!
//! ```text
//! cargo run --release --example demo                  # to a local receiver, started here
//! POSTHOG_API_KEY=phc_... cargo run --release --example demo   # to PostHog (POSTHOG_HOST optional)
//! cargo run --release --example demo -- --threads 4 --events 500000 --rate 400000
//! ```
//! `--rate` is the total target in events/s (0: as fast as possible, expect drops when the
//! producers outrun delivery).

use std::time::{Duration, Instant};

use fasthog::{Captured, Client, Event, Static};
use fasthog_receiver::{Receiver, ReceiverConfig, Store};

struct Args {
    threads: usize,
    events: u64,
    rate: u64,
}

fn args() -> Args {
    let mut a = Args { threads: 2, events: 1_000_000, rate: 400_000 };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse::<u64>().ok());
        match (pair[0].as_str(), value) {
            ("--threads", Some(v)) => a.threads = v.max(1) as usize,
            ("--events", Some(v)) => a.events = v,
            ("--rate", Some(v)) => a.rate = v,
            (flag, _) => {
                eprintln!(
                    "unknown or incomplete flag {flag}; flags: --threads N --events N --rate EVENTS_PER_SEC"
                );
                std::process::exit(2);
            }
        }
    }
    a
}

fn main() {
    let args = args();
    let remote = std::env::var("POSTHOG_API_KEY").is_ok_and(|k| !k.trim().is_empty());
    let receiver = (!remote).then(|| {
        Receiver::start(ReceiverConfig { store: Store::CountOnly, ..Default::default() })
            .expect("start the local receiver")
    });
    let builder = match &receiver {
        Some(r) => Client::builder("phc_fasthog_local_demo").host(r.url()).environment("demo"),
        None => fasthog::Builder::from_env(),
    };
    // Bigger batches than the Go default of 64: fewer requests at a high event rate.
    let client = match builder.batch_size(1000).flush_interval(Duration::from_secs(1)).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fasthog demo: {e}");
            std::process::exit(1);
        }
    };
    match &receiver {
        Some(r) => println!("shipping to the local receiver at {}", r.url()),
        None => println!(
            "shipping to PostHog ({})",
            std::env::var("POSTHOG_HOST").unwrap_or(fasthog::client::DEFAULT_HOST.into())
        ),
    }

    let clock = quanta::Clock::new();
    let overhead = timer_overhead(&clock);
    let per_thread = args.events / args.threads as u64;
    let start = Instant::now();
    let histograms: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.threads)
            .map(|t| {
                let (client, clock) = (client.clone(), clock.clone());
                s.spawn(move || {
                    produce(&client, &clock, t, per_thread, args.rate / args.threads as u64, overhead)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("producer thread")).collect()
    });
    let capture_secs = start.elapsed().as_secs_f64();

    let stats = client.shutdown(Duration::from_secs(10)).expect("shutdown");
    let total_secs = start.elapsed().as_secs_f64();
    let mut merged = vec![0u64; BUCKETS];
    for h in &histograms {
        for (m, v) in merged.iter_mut().zip(h) {
            *m += v;
        }
    }
    println!("captured  {:>10}", stats.captured);
    println!("sent      {:>10}", stats.sent);
    println!("dropped   {:>10}", stats.dropped);
    println!("rejected  {:>10}", stats.rejected);
    println!("failed    {:>10}", stats.failed);
    println!("pending   {:>10}", stats.pending);
    if let Some(r) = &receiver {
        let stored = r.stats().events_accepted;
        println!(
            "stored    {:>10}  (receiver; {})",
            stored,
            if stored == stats.sent { "equals sent" } else { "DIFFERS from sent" }
        );
    }
    println!("capture   {:>10.0} events/s over {capture_secs:.2} s", stats.captured as f64 / capture_secs);
    println!(
        "delivered {:>10.0} events/s including shutdown ({total_secs:.2} s)",
        stats.sent as f64 / total_secs
    );
    println!(
        "capture latency (timer overhead {overhead} ns subtracted): p50 {} ns, p99 {} ns, p99.9 {} ns, max {}",
        percentile(&merged, 0.50),
        percentile(&merged, 0.99),
        percentile(&merged, 0.999),
        max_bucket(&merged),
    );
    let accounted = stats.sent + stats.failed + stats.dropped + stats.rejected;
    if accounted != stats.captured
        || receiver.as_ref().is_some_and(|r| r.stats().events_accepted != stats.sent)
    {
        eprintln!("accounting mismatch");
        std::process::exit(1);
    }
}

/// Nanosecond buckets; the last holds everything slower.
const BUCKETS: usize = 100_000;

fn produce(
    client: &Client,
    clock: &quanta::Clock,
    thread: usize,
    events: u64,
    rate: u64,
    overhead: u64,
) -> Vec<u64> {
    let mut hist = vec![0u64; BUCKETS];
    let user = format!("{:08x}-7a34-4a63-9d0b-{:012x}", thread, 0x0c5b8d1f2e3au64);
    let started = Instant::now();
    for i in 0..events {
        if rate > 0 && i % 256 == 0 {
            // Pace in steps of 256 events, sleeping off any lead over the target rate.
            let due = Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(ahead) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
        let t0 = clock.raw();
        let outcome = client.capture(
            &Event::new("order_filled", &user)
                .prop("qty", (i % 100) as i64)
                .prop("seq", i)
                .prop("price", 101.25 + (i % 7) as f64)
                .prop("venue", Static("XNAS")),
        );
        let t1 = clock.raw();
        let ns = clock.delta_as_nanos(t0, t1).saturating_sub(overhead) as usize;
        hist[ns.min(BUCKETS - 1)] += 1;
        debug_assert!(outcome != Captured::Rejected);
    }
    hist
}

/// The cost of the two clock reads around a capture, measured the same way (median).
fn timer_overhead(clock: &quanta::Clock) -> u64 {
    let mut v: Vec<u64> = (0..10_001)
        .map(|_| {
            let t0 = clock.raw();
            let t1 = clock.raw();
            clock.delta_as_nanos(t0, t1)
        })
        .collect();
    v.sort_unstable();
    v[v.len() / 2]
}

fn percentile(hist: &[u64], q: f64) -> usize {
    let total: u64 = hist.iter().sum();
    let want = (total as f64 * q).ceil() as u64;
    let mut seen = 0;
    for (ns, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= want.max(1) {
            return ns;
        }
    }
    hist.len()
}

fn max_bucket(hist: &[u64]) -> String {
    match hist.iter().rposition(|&n| n > 0) {
        Some(i) if i == hist.len() - 1 => format!(">= {} ns", i),
        Some(i) => format!("{i} ns"),
        None => "-".into(),
    }
}
