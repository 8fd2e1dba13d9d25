//! Small measurements behind the README's design notes.
//!
//! ```text
//! cargo run --release --example costs                 # clock costs on this machine
//! valgrind --tool=callgrind target/release/examples/costs capture 100000   # then 200000:
//!     # (difference of the two totals) / 100000 = instructions per typical capture
//! valgrind --tool=callgrind target/release/examples/costs capture 100000 hash   # sampling:
//!     # off (Sampler::OFF at run time), rules (8 rules, no match), random, hash (both at the
//!     # largest rate below 1, so every event is still written), out (every event sampled out)
//! valgrind --tool=callgrind target/release/examples/costs filter 100000 redact   # then 200000:
//!     # encoding the typical event with two PII properties more through the before-send
//!     # filter: none, keep, lookup (one property lookup), redact (remove the two), or
//!     # none4 (no filter, the typical event: what redact leaves)
//! cargo run --release --example costs idle           # an idle client's CPU per second
//! ```

use std::hint::black_box;
use std::sync::Arc;

use fasthog::client::{ClientClock, CoarseClock, TscClock};
use fasthog::{Clock, Event, Rate, Sampler, Static, StaticQueue};

static QUEUE: StaticQueue<1, 64, 4096> = StaticQueue::new(); // 256 KiB

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("capture") {
        let n = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
        return capture_loop(n, args.get(2).map(|s| sampler(s)));
    }
    if args.first().map(String::as_str) == Some("filter") {
        let n = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
        return filter_loop(n, args.get(2).map_or("none", String::as_str));
    }
    if args.first().map(String::as_str) == Some("idle") {
        return idle_cost();
    }
    clock_costs();
}

/// The CPU an idle client costs: built with default settings (and with precise timestamps),
/// left for 5 s with nothing to send, its process CPU time read before and after.
fn idle_cost() {
    for precise in [false, true] {
        let client = fasthog::Client::builder("phc_idle_cost_example")
            .host("http://127.0.0.1:9")
            .precise_timestamps(precise)
            .build()
            .expect("a client");
        let start = process_cpu();
        std::thread::sleep(std::time::Duration::from_secs(5));
        let idle = process_cpu() - start;
        drop(client);
        let clock = if precise { "precise timestamps (TSC)" } else { "default (coarse clock)" };
        println!("idle client, {clock}: {:.1} ms of CPU per second", idle.as_secs_f64() * 1000.0 / 5.0);
    }
}

/// This process's user + system CPU time so far.
fn process_cpu() -> std::time::Duration {
    // /proc/self/stat (Linux): after the name, field 12 is utime and 13 stime, in 100 Hz ticks.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    let ticks = tick(11) + tick(12);
    std::time::Duration::from_millis(ticks * 10)
}

/// The sampler of a `capture` run (see the module doc).
fn sampler(mode: &str) -> Sampler {
    let nearly_all = Rate::new(1.0 - f64::EPSILON / 2.0).unwrap();
    match mode {
        "off" => Sampler::OFF,
        "rules" => ["page_scrolled", "tick", "heartbeat", "hover", "move", "frame", "poll", "ping"]
            .iter()
            .fold(Sampler::new(), |s, name| s.event(name, Rate::new(0.1).unwrap()).unwrap()),
        "random" => Sampler::new().all(nearly_all).seed(1),
        "hash" => Sampler::new().all(nearly_all).by_distinct_id(true),
        "out" => Sampler::new().all(Rate::new(f64::EPSILON / 2.0).unwrap()),
        other => panic!("unknown sampler {other:?}: off, rules, random, hash or out"),
    }
}

/// `n` typical captures into a lane, drained every 512, through `sampler` if given: for
/// instruction counts.
fn capture_loop(n: u64, sampler: Option<Sampler>) {
    let clock = ClientClock::Coarse(Arc::new(CoarseClock::new()));
    let mut lane = StaticQueue::producer(&QUEUE).expect("a lane");
    let mut consumer = fasthog::ring::try_consumer(&QUEUE).expect("the consumer");
    let user = black_box(String::from("2f1c8f5e-7a34-4a63-9d0b-0c5b8d1f2e3a"));
    for i in 0..n {
        let event = Event::new("order_filled", &user)
            .prop("qty", (i % 100) as i64)
            .prop("seq", i)
            .prop("price", 101.25)
            .prop("venue", Static("XNAS"));
        match &sampler {
            None => {
                let _ = black_box(lane.capture(&event, &clock));
            }
            Some(s) => {
                let _ = black_box(lane.capture_sampled(&event, &clock, black_box(s)));
            }
        }
        if i % 512 == 511 {
            consumer.drain(|entry| {
                black_box(entry);
                true
            });
        }
    }
}

/// `n` encodings of one entry through the before-send filter `mode`: for instruction counts.
fn filter_loop(n: u64, mode: &str) {
    use fasthog::batch::{Encoder, Enrichment};
    use fasthog::filter::{EventView, Filter, Filtered, Verdict};
    let pii = mode != "none4";
    let entry = Event::new("order_filled", "2f1c8f5e-7a34-4a63-9d0b-0c5b8d1f2e3a")
        .prop("qty", 42i64)
        .prop_if(pii, "email", "ada@example.com")
        .prop("seq", 1_234_567i64)
        .prop("price", 101.25)
        .prop_if(pii, "ip", "203.0.113.9")
        .prop("venue", "XNAS")
        .timestamp_unix_nanos(1_764_000_000_123_456_000)
        .to_entry();
    let keep = |_: &EventView<'_>| Verdict::Keep;
    let lookup = |e: &EventView<'_>| match e.property("ip") {
        Some(v) if v.as_str() == Some("127.0.0.1") => Verdict::Drop,
        _ => Verdict::Keep,
    };
    let redact = |_: &EventView<'_>| Verdict::Remove(&["email", "ip"]);
    let f: Option<&fasthog::filter::FilterFn<'_>> = match mode {
        "none" | "none4" => None,
        "keep" => Some(&keep),
        "lookup" => Some(&lookup),
        "redact" => Some(&redact),
        other => panic!("unknown filter {other:?}: none, none4, keep, lookup or redact"),
    };
    let mut scratch = vec![0u8; 32 << 10];
    let mut filter = f.map(|f| Filter::new(f, &mut scratch));
    let mut encoder = Encoder::new(Enrichment { environment: "production", ..Enrichment::DEFAULT }, 7);
    let clock = fasthog::FixedClock(1_764_000_000_000_000_000);
    let mut out = vec![0u8; 4096];
    fasthog::AsEntry::with_entry(&entry, |bytes| {
        for _ in 0..n {
            let bytes = black_box(bytes);
            let entry = match filter.as_mut().map(|f| f.apply(bytes)) {
                None => bytes,
                Some(Filtered::Send { entry, .. }) => entry,
                Some(Filtered::Drop) => continue,
            };
            let mut w = fasthog::json::Writer::new(&mut out, 0);
            black_box(encoder.encode(entry, &clock, &mut w));
        }
    });
}

/// What a capture's timestamp costs: a TSC read (median of back-to-back pairs, in TSC cycles
/// and ns) against the coarse clock's relaxed load.
fn clock_costs() {
    let tsc = TscClock::new();
    let q = quanta::Clock::new();
    let mut pairs: Vec<u64> = (0..1_000_000)
        .map(|_| {
            let a = q.raw();
            let b = q.raw();
            b.wrapping_sub(a)
        })
        .collect();
    pairs.sort_unstable();
    let cycles = pairs[pairs.len() / 2];
    let ns_per_cycle = {
        let (t0, c0) = (std::time::Instant::now(), q.raw());
        std::thread::sleep(std::time::Duration::from_millis(200));
        t0.elapsed().as_nanos() as f64 / q.raw().wrapping_sub(c0) as f64
    };
    println!(
        "TSC read: {cycles} TSC cycles = {:.1} ns (median of 1M back-to-back pairs; TSC at {:.2} GHz)",
        cycles as f64 * ns_per_cycle,
        1.0 / ns_per_cycle
    );
    let coarse = ClientClock::Coarse(Arc::new(CoarseClock::new()));
    for (name, clock) in [("TSC clock tick", ClientClock::Tsc(tsc)), ("coarse clock tick", coarse)] {
        let n = 20_000_000u64;
        let t = std::time::Instant::now();
        for _ in 0..n {
            black_box(clock.tick());
        }
        println!("{name}: {:.1} ns per read", t.elapsed().as_nanos() as f64 / n as f64);
    }
}
