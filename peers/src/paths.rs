//! Allocations on every capture path, counted by the harness's counting allocator (it must be
//! the binary's global allocator: see [`crate::alloc`]).
//!
//! Each path is warmed up with one capture (a thread's first capture with a client claims a
//! lane and may register a thread-local destructor once), then `n` captures are counted on
//! this thread alone. The clients deliver to an in-memory recorder (the flusher's own
//! allocations are on its thread and not counted here).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use fasthog::client::{ClientClock, CoarseClock};
use fasthog::recorder::Recorder;
use fasthog::{Captured, Client, Entry, Event, HeapQueue, StaticQueue, Value};

use crate::peers::API_KEY;
use crate::workload::{user_id, Props16, Typical, Workload};

/// One path's count.
#[derive(Debug, Clone)]
pub struct PathAllocs {
    /// What was captured, how.
    pub path: &'static str,
    /// Captures counted.
    pub captures: u64,
    /// Allocations on the capturing thread during them.
    pub allocs: u64,
    /// Outcomes seen (`Queued`, `Dropped`, `Rejected`).
    pub outcomes: String,
}

static QUEUE: StaticQueue<1, 16, 4096> = StaticQueue::new();

/// Counts `n` calls of `capture` after one untimed warm-up call.
fn count(path: &'static str, n: u64, mut capture: impl FnMut(u64) -> Captured) -> PathAllocs {
    let mut seen = [0u64; 3];
    let mut note = |c: Captured| match c {
        Captured::Queued => seen[0] += 1,
        Captured::Dropped => seen[1] += 1,
        _ => seen[2] += 1,
    };
    note(capture(0));
    crate::alloc::set_counting(true);
    let a0 = crate::alloc::thread_allocs();
    for i in 1..=n {
        note(black_box(capture(i)));
    }
    let allocs = crate::alloc::thread_allocs() - a0;
    crate::alloc::set_counting(false);
    let outcomes = ["queued", "dropped", "rejected"]
        .iter()
        .zip(seen)
        .filter(|(_, c)| *c > 0)
        .map(|(name, c)| format!("{c} {name}"))
        .collect::<Vec<_>>()
        .join(", ");
    PathAllocs { path, captures: n, allocs, outcomes }
}

fn client(lanes: usize) -> Client {
    Client::builder(API_KEY).lanes(lanes).build_with_transport(Recorder::new()).expect("client")
}

/// Runs every path with `n` counted captures each.
pub fn run(n: u64) -> Vec<PathAllocs> {
    let user = user_id(0);
    let clock = ClientClock::Coarse(Arc::new(CoarseClock::new()));
    let mut out = Vec::new();
    let long = "u".repeat(2048);
    let huge = "h".repeat(100_000);
    let name = String::from("order_filled");
    let pairs: Vec<(String, i64)> = (0..64).map(|k| (format!("k{k}"), k)).collect();
    let map: HashMap<String, i64> = (0..8).map(|k| (format!("m{k}"), k)).collect();
    let tags = [Value::from("a"), Value::from(2), Value::from(true)];
    let nested = [("tags", Value::array(&tags)), ("n", Value::from(1.5))];

    // Lanes drained by a consumer on this thread between captures (untimed work is counted
    // too, so the drain must not allocate either: it reads in place).
    {
        let queue = HeapQueue::with_blocks(1, 64, 16 * 1024);
        let mut lane = HeapQueue::producer(&queue).expect("a lane");
        let mut consumer = fasthog::ring::try_consumer(&queue).expect("the consumer");
        let mut drained = |i: u64, c: Captured| {
            if i.is_multiple_of(16) {
                consumer.drain(|e| {
                    black_box(e);
                    true
                });
            }
            c
        };
        out.push(count("LaneProducer::capture, typical event", n, |i| {
            let c = lane.capture(&Typical::event(&user, i), &clock);
            drained(i, c)
        }));
        out.push(count("LaneProducer::capture, 16 properties", n, |i| {
            let c = lane.capture(&Props16::event(&user, i), &clock);
            drained(i, c)
        }));
        out.push(count("LaneProducer::capture, 2 KiB string + runtime name", n, |i| {
            let c = lane.capture(&Event::new(&name, &user).prop("$current_url", &long).prop("i", i), &clock);
            drained(i, c)
        }));
        out.push(count("LaneProducer::capture, .props(&Vec<(String, i64)>) of 64", n, |i| {
            let c = lane.capture(&Event::new("bulk", &user).props(&pairs).prop("i", i), &clock);
            drained(i, c)
        }));
        out.push(count("LaneProducer::capture, .props(&HashMap), prop_if, Option, $set", n, |i| {
            let e = Event::new("mixed", &user)
                .props(&map)
                .prop_if(i % 2 == 0, "even", true)
                .prop("coupon", None::<&str>)
                .set("plan", "pro")
                .set_once("first_seen", i)
                .props([Entry::prop("a", 1), Entry::set("b", "c")]);
            let c = lane.capture(&e, &clock);
            drained(i, c)
        }));
        out.push(count("LaneProducer::capture, nested Value::object / array", n, |i| {
            let c = lane.capture(
                &Event::new("nested", &user).prop("obj", Value::object(&nested)).prop("i", i),
                &clock,
            );
            drained(i, c)
        }));
        out.push(count("LaneProducer::capture, 100 KB string (cut)", n, |i| {
            let c = lane.capture(&Event::new("huge", &user).prop("blob", &huge).prop("i", i), &clock);
            drained(i, c)
        }));
        out.push(count("LaneProducer::capture, invalid event (rejected)", n, |i| {
            let c = lane.capture(&Event::new("", &user).prop("i", i), &clock);
            drained(i, c)
        }));
    }
    // A lane with no consumer: it fills, and capture drops.
    {
        let queue = HeapQueue::with_blocks(1, 4, 4096);
        let mut lane = HeapQueue::producer(&queue).expect("a lane");
        out.push(count("LaneProducer::capture, memory full (dropped)", n, |i| {
            lane.capture(&Typical::event(&user, i), &clock)
        }));
    }
    // The no_std shape.
    {
        let mut lane = StaticQueue::producer(&QUEUE).expect("a lane");
        let mut consumer = fasthog::ring::try_consumer(&QUEUE).expect("the consumer");
        out.push(count("StaticQueue lane capture, typical event", n, |i| {
            let c = lane.capture(&Typical::event(&user, i), &clock);
            if i.is_multiple_of(16) {
                consumer.drain(|_| true);
            }
            c
        }));
    }
    // A shared lane, borrowed per capture.
    {
        let queue = HeapQueue::with_blocks(1, 64, 16 * 1024);
        let mut consumer = fasthog::ring::try_consumer(&queue).expect("the consumer");
        out.push(count("Queue::capture_shared, typical event", n, |i| {
            let c = queue.capture_shared(&Typical::event(&user, i), &clock);
            if i.is_multiple_of(16) {
                consumer.drain(|_| true);
            }
            c
        }));
    }
    // The client: own lane, shared lane (its only owned lane held by another thread),
    // disabled.
    {
        let c = client(16);
        out.push(count("Client::capture, typical event (own lane)", n, |i| {
            c.capture(&Typical::event(&user, i))
        }));
        out.push(count("Client::capture, 16 properties (own lane)", n, |i| {
            c.capture(&Props16::event(&user, i))
        }));
        out.push(count("Client::capture, invalid event (rejected)", n, |i| {
            c.capture(&Event::new(&user, " ").prop("i", i))
        }));
        let _ = c.flush(Duration::from_secs(10));
        let _ = c.shutdown(Duration::from_secs(10));
        out.push(count("Client::capture after shutdown (dropped)", n, |i| {
            c.capture(&Typical::event(&user, i))
        }));
    }
    {
        let c = client(1);
        let (hold_tx, hold_rx) = mpsc::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let holder = {
            let c = c.clone();
            let user = user.clone();
            std::thread::spawn(move || {
                let _ = c.capture(&Typical::event(&user, 0)); // claims the only owned lane
                let _ = ready_tx.send(());
                let _ = hold_rx.recv();
            })
        };
        let _ = ready_rx.recv();
        out.push(count("Client::capture, typical event (shared lane: every owned lane taken)", n, |i| {
            c.capture(&Typical::event(&user, i))
        }));
        let _ = hold_tx.send(());
        let _ = holder.join();
        let _ = c.shutdown(Duration::from_secs(10));
    }
    {
        let c = Client::disabled();
        out.push(count("Client::disabled().capture", n, |i| c.capture(&Typical::event(&user, i))));
    }
    out
}
