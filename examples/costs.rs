//! Small measurements behind the README's design notes.
//!
//! ```text
//! cargo run --release --example costs                 # clock costs on this machine
//! valgrind --tool=callgrind target/release/examples/costs capture 100000   # then 200000:
//!     # (difference of the two totals) / 100000 = instructions per typical capture
//! ```

use std::hint::black_box;
use std::sync::Arc;

use fasthog::client::{ClientClock, CoarseClock, TscClock};
use fasthog::{Clock, Event, Static, StaticQueue};

static QUEUE: StaticQueue<1, 64, 4096> = StaticQueue::new(); // 256 KiB

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("capture") {
        let n = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
        return capture_loop(n);
    }
    clock_costs();
}

/// `n` typical captures into a lane, drained every 512: for instruction counts.
fn capture_loop(n: u64) {
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
        let _ = black_box(lane.capture(&event, &clock));
        if i % 512 == 511 {
            consumer.drain(|entry| {
                black_box(entry);
                true
            });
        }
    }
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
