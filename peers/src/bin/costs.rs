//! A capture loop for instruction counts of one capture, on the harness's exact events:
//!
//! ```text
//! cargo build --release -p fasthog-peers --bin costs
//! valgrind --tool=callgrind target/release/costs lane 100000     # then 200000:
//!     # (difference of the two totals) / 100000 = instructions per capture
//! ```
//!
//! Modes: `lane` (`LaneProducer::capture`, the client's default clock), `client`
//! (`Client::capture`), `lane16` / `client16` (16 properties), `ringbuf` / `ringbuf16`
//! (a ringbuf push of the compact record). Lanes and rings are drained every 512 captures.

use std::hint::black_box;
use std::sync::Arc;

use fasthog::client::{ClientClock, CoarseClock};
use fasthog::recorder::Recorder;
use fasthog::{Client, HeapQueue};
use fasthog_peers::workload::{user_id, Props16, Typical, Workload};
use ringbuf::traits::{Consumer as _, Producer as _, Split as _};

fn lane<W: Workload>(n: u64) {
    let queue = HeapQueue::with_blocks(1, 64, 16 * 1024);
    let clock = ClientClock::Coarse(Arc::new(CoarseClock::new()));
    let mut lane = HeapQueue::producer(&queue).expect("a lane");
    let mut consumer = fasthog::ring::try_consumer(&queue).expect("the consumer");
    let user = black_box(user_id(0));
    for i in 0..n {
        black_box(lane.capture(&W::event(&user, i), &clock));
        if i % 512 == 511 {
            consumer.drain(|e| {
                black_box(e);
                true
            });
        }
    }
}

fn client<W: Workload>(n: u64) {
    let client = Client::builder("phc_fasthog_costs_0000000000000000000000000")
        .build_with_transport(Recorder::new())
        .expect("client");
    let user = black_box(user_id(0));
    for i in 0..n {
        black_box(client.capture(&W::event(&user, i)));
        if i % 4096 == 4095 {
            let _ = client.flush(std::time::Duration::from_secs(10));
        }
    }
}

fn ring<W: Workload>(n: u64) {
    let (mut tx, mut rx) = ringbuf::HeapRb::<W::Record>::new(1024).split();
    let user = black_box(user_id(0));
    for i in 0..n {
        black_box(tx.try_push(W::record(&user, i)).is_ok());
        if i % 512 == 511 {
            while let Some(r) = rx.try_pop() {
                black_box(&r);
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    match args.first().map(String::as_str) {
        Some("lane") => lane::<Typical>(n),
        Some("lane16") => lane::<Props16>(n),
        Some("client") => client::<Typical>(n),
        Some("client16") => client::<Props16>(n),
        Some("ringbuf") => ring::<Typical>(n),
        Some("ringbuf16") => ring::<Props16>(n),
        _ => {
            eprintln!("usage: costs lane|lane16|client|client16|ringbuf|ringbuf16 [N]");
            std::process::exit(2);
        }
    }
}
