//! The flusher on virtual time: a mock `Timer` whose sleeps register wake-up times, a tiny
//! executor that polls the flusher and, whenever it is pending without having woken itself,
//! jumps virtual time to the earliest wake-up (so a 10 s flush interval costs no real time),
//! an in-memory `Transport` answering scripted statuses after scripted latencies, and
//! scripted actions (captures, flush and shutdown requests) that run when virtual time
//! reaches them. Everything runs on the test's thread, so every wait below is exact and
//! nothing depends on the machine's speed.
#![cfg(feature = "std")]

#[path = "common/delivery.rs"]
mod support;

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use fasthog::batch::{Batch, Encoder, Enrichment, Envelope, Limits};
use fasthog::flusher::{FlushConfig, Flusher, Outcome, RetryPolicy, Timer};
use fasthog::ring::{try_consumer, Geometry, LaneProducer};
use fasthog::transport::{Request, Response, Transport, TransportError};
use fasthog::{Captured, Clock, Event, HeapQueue, Snapshot};
use serde_json::Value;
use support::{assert_accounted, install_logger, lines_of_this_thread, KEY, KEY_MARK};

const MS: u64 = 1_000;
const S: u64 = 1_000_000;
/// Virtual time a test may not pass: a flusher that never stops fails instead of hanging.
const LIMIT_US: u64 = 3_600 * S;
/// The wall time at virtual 0.
const EPOCH_NANOS: u64 = 1_700_000_000_000_000_000;

// ---------------------------------------------------------------------------------------------
// The virtual world: clock, timer, scripted actions, scripted server
// ---------------------------------------------------------------------------------------------

/// A scripted answer to one request.
#[derive(Debug, Clone, Copy)]
enum Reply {
    /// This status after `latency_us` of virtual time, with `Retry-After` in ms if set.
    Status { code: u16, retry_after_ms: Option<u64>, latency_us: u64 },
    /// No HTTP status: a transport error, at once.
    Error(TransportError),
    /// Never answers.
    Hang,
}

fn status(code: u16) -> Reply {
    Reply::Status { code, retry_after_ms: None, latency_us: 0 }
}

fn retry_after(code: u16, ms: u64) -> Reply {
    Reply::Status { code, retry_after_ms: Some(ms), latency_us: 0 }
}

/// One request the flusher made.
#[derive(Debug, Clone)]
struct Sent {
    at_us: u64,
    attempt: u32,
    event_count: usize,
    sent_at: String,
    uuids: Vec<String>,
    /// Each event's `i` property.
    ids: Vec<i64>,
}

type Action = Box<dyn FnOnce(u64)>;

struct World {
    now: Cell<u64>,
    /// Wake-up times registered by sleeps and slow replies (stale ones included: a spurious
    /// wake-up only costs a poll).
    wakeups: RefCell<BinaryHeap<Reverse<u64>>>,
    /// (virtual time, order added, action), sorted.
    actions: RefCell<VecDeque<(u64, usize, Action)>>,
    added: Cell<usize>,
    replies: RefCell<VecDeque<Reply>>,
    /// Latency of the default answer (200) when the script is empty.
    default_latency_us: Cell<u64>,
    sent: RefCell<Vec<Sent>>,
    /// Times the flusher woke itself and returned (a yield between busy passes).
    yields: Cell<usize>,
}

impl World {
    fn new() -> Rc<World> {
        install_logger();
        Rc::new(World {
            now: Cell::new(0),
            wakeups: RefCell::new(BinaryHeap::new()),
            actions: RefCell::new(VecDeque::new()),
            added: Cell::new(0),
            replies: RefCell::new(VecDeque::new()),
            default_latency_us: Cell::new(0),
            sent: RefCell::new(Vec::new()),
            yields: Cell::new(0),
        })
    }

    /// Runs `action` when virtual time reaches `at_us`.
    fn at(&self, at_us: u64, action: impl FnOnce(u64) + 'static) {
        let n = self.added.get();
        self.added.set(n + 1);
        let mut actions = self.actions.borrow_mut();
        let at = actions.partition_point(|(t, m, _)| (*t, *m) <= (at_us, n));
        actions.insert(at, (at_us, n, Box::new(action)));
    }

    fn reply(&self, replies: impl IntoIterator<Item = Reply>) {
        self.replies.borrow_mut().extend(replies);
    }

    fn sent(&self) -> Vec<Sent> {
        self.sent.borrow().clone()
    }

    /// Moves virtual time to `target`, running due actions in time order.
    fn advance_to(&self, target: u64) {
        assert!(target < LIMIT_US, "virtual time passed {} s: the flusher never stopped", LIMIT_US / S);
        loop {
            let due = {
                let mut actions = self.actions.borrow_mut();
                match actions.front() {
                    Some((t, _, _)) if *t <= target => actions.pop_front(),
                    _ => None,
                }
            };
            let Some((t, _, action)) = due else { break };
            self.now.set(self.now.get().max(t));
            action(self.now.get());
        }
        self.now.set(self.now.get().max(target));
    }

    /// Pending until virtual time reaches `until` (registered as a wake-up).
    async fn until(&self, until: u64) {
        if until != u64::MAX {
            self.wakeups.borrow_mut().push(Reverse(until));
        }
        poll_fn(|_| if self.now.get() >= until { Poll::Ready(()) } else { Poll::Pending }).await;
    }

    /// Runs `fut` to completion: polls it, and whenever it is pending moves virtual time to
    /// the earliest wake-up or scripted action still ahead. Polling after every action stands
    /// in for the waker an action may wake (a flush or shutdown request wakes the flusher):
    /// an extra poll is always allowed, and a future that is not ready stays pending.
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        /// Set when the future wakes itself (a yield): it is polled again at the same instant.
        struct Woken(std::sync::atomic::AtomicBool);
        impl std::task::Wake for Woken {
            fn wake(self: Arc<Self>) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let woken = Arc::new(Woken(false.into()));
        let waker = Waker::from(woken.clone());
        let mut fut = pin!(fut);
        let mut cx = Context::from_waker(&waker);
        let mut yields_here = 0;
        loop {
            woken.0.store(false, std::sync::atomic::Ordering::Relaxed);
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return out;
            }
            if woken.0.load(std::sync::atomic::Ordering::Relaxed) {
                self.yields.set(self.yields.get() + 1);
                yields_here += 1;
                assert!(yields_here < 100_000, "the flusher keeps yielding without time passing");
                continue;
            }
            yields_here = 0;
            let next = {
                let mut wakeups = self.wakeups.borrow_mut();
                while wakeups.peek().is_some_and(|Reverse(t)| *t <= self.now.get()) {
                    wakeups.pop();
                }
                wakeups.peek().map(|Reverse(t)| *t)
            };
            let action = self.actions.borrow().front().map(|(t, _, _)| *t);
            let next = match (next, action) {
                (Some(w), Some(a)) => w.min(a),
                (w, a) => w.or(a).expect("the flusher is pending with no wake-up ahead: it would hang"),
            };
            self.advance_to(next);
        }
    }
}

impl Timer for World {
    fn now_us(&self) -> u64 {
        self.now.get()
    }

    async fn sleep_us(&self, us: u64) {
        self.until(self.now.get().saturating_add(us.max(1))).await;
    }
}

/// Event time and `sent_at` follow virtual time.
impl Clock for World {
    fn tick(&self) -> u64 {
        self.now.get()
    }

    fn unix_nanos(&self, tick: u64) -> u64 {
        EPOCH_NANOS + tick * 1_000
    }
}

/// The in-memory server.
struct Net<'w>(&'w World);

impl Transport for Net<'_> {
    async fn send(&self, request: Request<'_>) -> Result<Response, TransportError> {
        let w = self.0;
        let body: Vec<u8> = request.parts().concat();
        let json: Value = serde_json::from_slice(&body).expect("the body is JSON");
        assert_eq!(json["api_key"], KEY);
        let batch = json["batch"].as_array().expect("a batch");
        assert_eq!(batch.len(), request.event_count);
        w.sent.borrow_mut().push(Sent {
            at_us: w.now.get(),
            attempt: request.attempt,
            event_count: request.event_count,
            sent_at: json["sent_at"].as_str().expect("sent_at").to_string(),
            uuids: batch.iter().map(|e| e["uuid"].as_str().unwrap().to_string()).collect(),
            ids: batch.iter().map(|e| e["properties"]["i"].as_i64().unwrap()).collect(),
        });
        let reply = w.replies.borrow_mut().pop_front().unwrap_or(Reply::Status {
            code: 200,
            retry_after_ms: None,
            latency_us: w.default_latency_us.get(),
        });
        let until = match reply {
            Reply::Status { latency_us, .. } => w.now.get() + latency_us,
            Reply::Error(_) => 0,
            Reply::Hang => u64::MAX,
        };
        w.until(until).await;
        match reply {
            Reply::Status { code, retry_after_ms, .. } => Ok(Response::new(code)
                .with_retry_after_ms(retry_after_ms)
                .with_detail(format!("scripted {code}").as_bytes())),
            Reply::Error(e) => Err(e),
            Reply::Hang => unreachable!(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A rig: queue, producer, flusher settings
// ---------------------------------------------------------------------------------------------

struct Rig {
    world: Rc<World>,
    queue: Arc<HeapQueue>,
    producer: Rc<RefCell<LaneProducer<Arc<HeapQueue>>>>,
    /// Events captured so far (their `i` property).
    next_i: Rc<Cell<i64>>,
    limits: Limits,
    pending: usize,
    config: FlushConfig,
    /// What `Flusher::on_delivery` heard, as text.
    heard: Rc<RefCell<Vec<String>>>,
}

impl Rig {
    /// One lane that holds `events` of the events these tests capture.
    fn new(events: usize) -> Rig {
        Rig::with_lanes(1, events)
    }

    /// `lanes` lanes over a pool of 64-byte blocks, each holding one of the events these tests
    /// capture (48 lane bytes: `tick`, a short distinct_id, one integer): a lane alone holds
    /// `events` of them, as the fixed-record lanes of 0.1 held their capacity.
    fn with_lanes(lanes: usize, events: usize) -> Rig {
        let world = World::new();
        let geometry = Geometry { block_bytes: 64, blocks: events.max(2), max_entry: 56 };
        let queue = Arc::new(HeapQueue::with_geometry(geometry, lanes, 1).unwrap());
        let producer = HeapQueue::producer(queue.clone()).expect("a free lane");
        Rig {
            world,
            queue,
            producer: Rc::new(RefCell::new(producer)),
            next_i: Rc::new(Cell::new(0)),
            limits: Limits { max_events: 64, ..Limits::DEFAULT },
            pending: 4,
            config: FlushConfig {
                retry: RetryPolicy { initial_backoff_ms: 100, ..RetryPolicy::DEFAULT },
                ..FlushConfig::DEFAULT
            },
            heard: Rc::default(),
        }
    }

    /// Captures `n` events when virtual time reaches `at_us`.
    fn capture_at(&self, at_us: u64, n: usize) {
        let (producer, next_i, world) = (self.producer.clone(), self.next_i.clone(), self.world.clone());
        self.world.at(at_us, move |_| {
            for _ in 0..n {
                let i = next_i.get();
                next_i.set(i + 1);
                let _ = producer.borrow_mut().capture(&Event::new("tick", "user-1").prop("i", i), &*world);
            }
        });
    }

    /// Captures one event every `every_us` from `from_us` until before `until_us`.
    fn trickle(&self, from_us: u64, until_us: u64, every_us: u64) {
        let mut t = from_us;
        while t < until_us {
            self.capture_at(t, 1);
            t += every_us;
        }
    }

    fn flush_at(&self, at_us: u64) -> Rc<Cell<Option<usize>>> {
        let ticket = Rc::new(Cell::new(None));
        let (queue, out) = (self.queue.clone(), ticket.clone());
        self.world.at(at_us, move |_| out.set(Some(queue.control().request_flush())));
        ticket
    }

    fn shutdown_at(&self, at_us: u64, grace_ms: u64) {
        let queue = self.queue.clone();
        self.world.at(at_us, move |_| queue.control().request_shutdown(grace_ms));
    }

    /// Checks at `at_us` whether the flush with this ticket has completed.
    fn flushed_at(&self, at_us: u64, ticket: &Rc<Cell<Option<usize>>>) -> Rc<Cell<Option<bool>>> {
        let out = Rc::new(Cell::new(None));
        let (queue, ticket, o) = (self.queue.clone(), ticket.clone(), out.clone());
        self.world.at(at_us, move |_| {
            o.set(Some(queue.control().is_flushed(ticket.get().expect("flush requested"))))
        });
        out
    }

    /// Runs the flusher to completion (a shutdown must be scheduled) and returns the final
    /// counters, checked for accounting, and the virtual time it stopped at.
    fn run(&self) -> (Snapshot, u64) {
        let world = &*self.world;
        let envelope = Envelope { api_key: KEY, historical_migration: false };
        let batches: Vec<Batch<Vec<u8>, Vec<u32>>> = (0..self.pending)
            .map(|_| {
                Batch::new(
                    vec![0u8; self.limits.max_batch_bytes],
                    vec![0u32; self.limits.max_events],
                    self.limits,
                    envelope.overhead(),
                )
            })
            .collect();
        let encoder = Encoder::new(Enrichment { environment: "virtual", ..Enrichment::DEFAULT }, 7);
        let consumer = try_consumer(self.queue.clone()).expect("one consumer");
        // The hook must be Sync; this test is single-threaded, so it hands texts over a Mutex.
        let heard = std::sync::Mutex::new(Vec::new());
        let hook = |o: &Outcome<'_>| heard.lock().unwrap().push(format!("{o:?}"));
        let flusher =
            Flusher::new(consumer, Net(world), world, world, encoder, envelope, self.config, batches)
                .on_delivery(&hook);
        world.block_on(flusher.run());
        self.heard.borrow_mut().extend(heard.into_inner().unwrap());
        assert!(self.queue.control().is_finished());
        let stats = self.queue.stats();
        assert_accounted(&stats);
        for line in lines_of_this_thread() {
            assert!(!line.text.contains(KEY_MARK), "{}", line.text);
        }
        (stats, world.now.get())
    }
}

fn gaps(sent: &[Sent]) -> Vec<u64> {
    sent.windows(2).map(|w| w[1].at_us - w[0].at_us).collect()
}

// ---------------------------------------------------------------------------------------------
// Pacing
// ---------------------------------------------------------------------------------------------

#[test]
fn a_partial_batch_is_sent_when_the_flush_interval_elapses() {
    let rig = Rig::new(64);
    rig.capture_at(S, 3);
    rig.capture_at(12 * S, 2);
    rig.shutdown_at(35 * S, 1_000);
    let (stats, _) = rig.run();
    let sent = rig.world.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    // The default interval is 10 s, counted from the start.
    assert!((10 * S..10 * S + 10 * MS).contains(&sent[0].at_us), "first flush at {} us", sent[0].at_us);
    assert!((20 * S..20 * S + 10 * MS).contains(&sent[1].at_us), "second flush at {} us", sent[1].at_us);
    assert_eq!((sent[0].event_count, sent[1].event_count), (3, 2));
    assert_eq!(stats.sent, 5);
}

#[test]
fn a_full_batch_is_sent_at_once() {
    let mut rig = Rig::new(64);
    rig.limits.max_events = 4;
    rig.capture_at(S, 4);
    rig.capture_at(2 * S, 3);
    rig.shutdown_at(5 * S, 1_000);
    let (stats, _) = rig.run();
    let sent = rig.world.sent();
    assert!((S..S + 10 * MS).contains(&sent[0].at_us), "full batch sent at {} us", sent[0].at_us);
    assert_eq!(sent[0].event_count, 4);
    // The partial one waits (here for the shutdown, before the 10 s interval).
    assert_eq!(sent[1].event_count, 3);
    assert!((5 * S..5 * S + 10 * MS).contains(&sent[1].at_us), "{}", sent[1].at_us);
    assert_eq!(stats.sent, 7);
}

#[test]
fn the_flush_interval_holds_under_a_trickle_with_slow_responses() {
    let mut rig = Rig::new(64);
    rig.config.flush_interval_ms = 1_000;
    rig.limits.max_events = 1_000;
    rig.pending = 8;
    rig.world.default_latency_us.set(50 * MS);
    rig.trickle(0, 5 * S, 10 * MS);
    rig.shutdown_at(5 * S + 500 * MS, 1_000);
    let (stats, _) = rig.run();
    let sent = rig.world.sent();
    // One request per second (and one at shutdown), not one per round trip once the first
    // interval has passed.
    assert!(sent.len() <= 7, "{} requests in 5.5 s with a 1 s interval: {:?}", sent.len(), gaps(&sent));
    for g in gaps(&sent[..sent.len() - 1]) {
        assert!(g >= 900 * MS, "requests {g} us apart: {:?}", gaps(&sent));
    }
    assert_eq!(stats.sent, 500);
}

#[test]
fn the_poll_limit_holds_while_a_request_is_in_flight() {
    // One lane of 4 events, drained at least every 1 ms as configured, while a request takes
    // 300 ms and an event arrives every ms: nothing may be dropped.
    let mut rig = Rig::new(4);
    rig.config.poll_max_us = 1_000;
    rig.config.flush_interval_ms = 100;
    rig.limits.max_events = 1_000;
    rig.world.default_latency_us.set(300 * MS);
    rig.capture_at(0, 1);
    // Quiet while the first request starts (so polling slows to its limit), then a stream.
    rig.trickle(150 * MS, 350 * MS, MS);
    rig.shutdown_at(2 * S, 2_000);
    let (stats, _) = rig.run();
    assert_eq!(stats.dropped, 0, "{stats:?}");
    assert_eq!(stats.sent, 201);
}

#[test]
fn flush_and_shutdown_wake_an_idle_flusher_at_once() {
    // An idle flusher's sleeps grow to max_poll_interval (here 10 s); a flush or shutdown
    // request must not wait for the sleep to end.
    let mut rig = Rig::new(64);
    rig.config.poll_max_us = 10 * S;
    rig.config.flush_interval_ms = 3_600_000;
    rig.capture_at(S, 2);
    let ticket = rig.flush_at(30 * S + 1);
    let flushed = rig.flushed_at(30 * S + 10 * MS, &ticket);
    rig.capture_at(45 * S, 3);
    rig.shutdown_at(60 * S + 1, 2_000);
    let (stats, stopped) = rig.run();
    let sent = rig.world.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!((30 * S..30 * S + 10 * MS).contains(&sent[0].at_us), "flush sent at {} us", sent[0].at_us);
    assert_eq!(flushed.get(), Some(true));
    assert!((60 * S..60 * S + 10 * MS).contains(&sent[1].at_us), "shutdown sent at {} us", sent[1].at_us);
    assert!(stopped < 60 * S + 10 * MS, "stopped at {stopped} us");
    assert_eq!(stats.sent, 5);
}

#[test]
fn a_batch_goes_at_send_at_events_and_grows_to_its_capacity_under_load() {
    // batch_size (here send_at_events) 64 triggers a send; while a slow request is in flight
    // the next batch keeps filling up to its capacity (1,000), so a server taking 200 ms per
    // response still takes 4,000 events/s (800 per round trip). With batches of 64 it took
    // 320/s and dropped the rest.
    let mut rig = Rig::new(4096);
    rig.limits.max_events = 1_000;
    rig.config.send_at_events = 64;
    rig.config.requests_in_flight = 1; // several in flight: see `several_requests_in_flight_*`
    rig.world.default_latency_us.set(200 * MS);
    rig.capture_at(0, 64); // at once, not at the flush interval
    rig.trickle(S, 3 * S, 250); // 4,000 events/s for 2 s
    rig.shutdown_at(4 * S, 3_000);
    let (stats, _) = rig.run();
    let sent = rig.world.sent();
    assert_eq!(sent[0].event_count, 64);
    assert!(sent[0].at_us < 10 * MS, "the first 64 went at once: {} us", sent[0].at_us);
    assert_eq!((stats.dropped, stats.sent), (0, 8_064), "{stats:?}");
    let largest = sent.iter().map(|q| q.event_count).max().unwrap();
    assert!(largest > 64 && largest <= 1_000, "largest request {largest} events");
    assert!(sent.len() < 30, "{} requests for 8,064 events", sent.len());
}

/// 20,000 events at 200k/s (one every 5 µs) with `send_at_events` 64 and this linger; returns
/// the requests and, for each, how long its first event waited for it.
fn paced_at_200k(linger_us: u64) -> Vec<(Sent, u64)> {
    let mut rig = Rig::new(8192);
    rig.limits.max_events = 5_000;
    rig.limits.max_batch_bytes = 2 << 20;
    rig.config.send_at_events = 64;
    rig.config.linger_us = linger_us;
    rig.trickle(0, 100 * MS, 5);
    rig.shutdown_at(200 * MS, 1_000);
    let (stats, _) = rig.run();
    assert_eq!((stats.sent, stats.dropped), (20_000, 0), "{stats:?}");
    let sent = rig.world.sent();
    let waited = |q: &Sent| q.at_us - q.ids.iter().min().map_or(0, |&i| i as u64 * 5);
    sent.into_iter()
        .map(|q| {
            let w = waited(&q);
            (q, w)
        })
        .collect()
}

#[test]
fn under_load_a_batch_lingers_for_more_events_and_its_first_event_waits_at_most_the_linger() {
    let lingered = paced_at_200k(FlushConfig::DEFAULT.linger_us);
    let at_once = paced_at_200k(0);
    // 5 ms at 200k/s is 1,000 events: ~20 requests, not one per drain pass.
    assert!(lingered.len() <= 25, "{} requests", lingered.len());
    let (last, full) = lingered.split_last().unwrap();
    assert!(
        full.iter().all(|(q, _)| q.event_count >= 900),
        "{:?}",
        full.iter().map(|(q, _)| q.event_count).collect::<Vec<_>>()
    );
    assert!(last.0.event_count > 0);
    // The linger and at most one poll pause (1 ms) more (the last request, under 64 events,
    // waits for the shutdown).
    let longest = full.iter().map(|(_, w)| *w).max().unwrap();
    assert!(longest <= 6 * MS + 100, "a first event waited {longest} us");
    // Without it, a batch goes as soon as a pass finds 64: several times as many requests,
    // each first event waiting about one poll pause.
    assert!(at_once.len() > 3 * lingered.len(), "{} at once, {} lingering", at_once.len(), lingered.len());
    let waits: Vec<_> = at_once.iter().map(|(q, w)| (q.event_count, *w)).collect();
    assert!(waits[..waits.len() - 1].iter().all(|(_, w)| *w <= MS + 100), "{waits:?}");
}

#[test]
fn a_busy_flusher_yields_to_its_executor_between_passes() {
    // Passes that drain 256 events or more go on without a pause; they still return to the
    // executor in between, so what runs beside the flusher (the client's clock refresh, its
    // flush notifications) is not starved under load.
    let mut rig = Rig::new(8192);
    rig.limits.max_events = 5_000;
    rig.limits.max_batch_bytes = 2 << 20;
    rig.capture_at(0, 4_000);
    rig.shutdown_at(S, 1_000);
    let (stats, _) = rig.run();
    assert_eq!(stats.sent, 4_000);
    assert!(rig.world.yields.get() > 0, "never yielded");
}

#[test]
fn a_batch_of_linger_ends_at_events_goes_without_lingering() {
    let mut rig = Rig::new(4096);
    rig.limits.max_events = 5_000;
    rig.limits.max_batch_bytes = 2 << 20;
    rig.config.send_at_events = 64;
    rig.capture_at(0, fasthog::flusher::LINGER_ENDS_AT);
    rig.shutdown_at(S, 1_000);
    let (stats, _) = rig.run();
    let sent = rig.world.sent();
    assert_eq!(stats.sent, fasthog::flusher::LINGER_ENDS_AT as u64);
    assert_eq!(sent[0].event_count, fasthog::flusher::LINGER_ENDS_AT);
    assert!(sent[0].at_us < MS, "sent at {} us, not after the linger", sent[0].at_us);
}

#[test]
fn a_shutdown_grace_counts_from_the_call_not_from_when_the_flusher_sees_it() {
    // A request made at 1 s (on the flusher's timer) and seen at 2 s, with 1.5 s of grace,
    // ends at 2.5 s: the grace is the caller's, counted from its call.
    let rig = Rig::new(64);
    rig.world.reply([Reply::Hang]);
    rig.capture_at(0, 3);
    rig.flush_at(MS); // sends the 3 events into the hang
    let queue = rig.queue.clone();
    rig.world.at(2 * S, move |_| queue.control().request_shutdown_at(1_500, Some(1_000)));
    let (stats, stopped) = rig.run();
    assert!((2_500 * MS..2_510 * MS).contains(&stopped), "stopped at {stopped} us");
    assert_eq!((stats.sent, stats.failed), (0, 3));
    let heard = rig.heard.borrow();
    assert_eq!(
        *heard,
        [r#"Failed { events: 3, status: None, reason: "shutdown deadline passed" }"#],
        "the hook hears the deadline"
    );
}

#[test]
fn the_hook_hears_retries_sends_and_failures_in_order() {
    let rig = Rig::new(64);
    rig.world.reply([retry_after(503, 250), status(200), status(400)]);
    rig.capture_at(0, 2);
    rig.flush_at(MS);
    rig.capture_at(S, 1);
    rig.flush_at(S + MS);
    rig.shutdown_at(2 * S, 1_000);
    let (stats, _) = rig.run();
    assert_eq!((stats.sent, stats.failed, stats.retried), (2, 1, 1));
    let heard = rig.heard.borrow();
    assert_eq!(heard.len(), 3, "{heard:?}");
    assert!(
        heard[0].starts_with("Retrying { events: 2, attempt: 1, status: Some(503), wait_ms: "),
        "{}",
        heard[0]
    );
    let waited: u64 = heard[0].rsplit(": ").next().unwrap().trim_end_matches(" }").parse().unwrap();
    assert!(waited >= 250, "Retry-After is a minimum: {waited}");
    assert_eq!(heard[1], "Sent { events: 2, status: 200 }");
    assert_eq!(heard[2], r#"Failed { events: 1, status: Some(400), reason: "scripted 400" }"#);
}

// ---------------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------------

#[test]
fn backoff_waits_follow_the_policy() {
    let mut rig = Rig::new(64);
    rig.config.retry = RetryPolicy {
        max_attempts: 6,
        initial_backoff_ms: 100,
        max_backoff_ms: 1_000,
        max_retry_after_ms: 30_000,
    };
    rig.world.reply([status(503), status(500), status(502), status(504), status(408), status(200)]);
    rig.capture_at(0, 2);
    rig.flush_at(0);
    rig.shutdown_at(60 * S, 1_000);
    let (stats, _) = rig.run();
    let sent = rig.world.sent();
    assert_eq!(sent.iter().map(|s| s.attempt).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    // Retry k waits within [full/2, full], full = min(100 ms * 2^(k-1), 1 s): exactly, as
    // nothing else takes virtual time.
    for (k, g) in gaps(&sent).into_iter().enumerate() {
        let full = ((100 * MS) << k).min(1_000 * MS);
        assert!(
            (full / 2..=full).contains(&g),
            "retry {} waited {g} us, policy allows {}..={full}",
            k + 1,
            full / 2
        );
    }
    assert!(sent.windows(2).all(|w| w[0].uuids == w[1].uuids), "same uuids on every attempt");
    assert!(sent.windows(2).all(|w| w[0].sent_at < w[1].sent_at), "sent_at refreshed on every attempt");
    assert_eq!((stats.sent, stats.failed, stats.retried), (2, 0, 5));
}

#[test]
fn retry_after_is_a_minimum_and_clamped() {
    let mut rig = Rig::new(64);
    rig.config.retry = RetryPolicy {
        max_attempts: 4,
        initial_backoff_ms: 100,
        max_backoff_ms: 1_000,
        max_retry_after_ms: 30_000,
    };
    rig.world.reply([retry_after(429, 7_000), retry_after(503, 3_600_000), retry_after(429, 0), status(200)]);
    rig.capture_at(0, 1);
    rig.flush_at(0);
    rig.shutdown_at(120 * S, 1_000);
    let (stats, _) = rig.run();
    let g = gaps(&rig.world.sent());
    assert_eq!(g[0], 7 * S, "Retry-After 7 s beats a 100 ms backoff");
    assert_eq!(g[1], 30 * S, "an hour's Retry-After is clamped to max_retry_after_ms");
    assert!((200 * MS..=400 * MS).contains(&g[2]), "Retry-After 0 leaves the backoff: {}", g[2]);
    assert_eq!((stats.sent, stats.retried), (1, 3));
}

#[test]
fn retries_stop_after_max_attempts() {
    let rig = Rig::new(64);
    assert_eq!(rig.config.retry.max_attempts, 4);
    rig.world.reply([
        status(500),
        Reply::Error(TransportError::Connect),
        Reply::Error(TransportError::Timeout),
        status(503),
        status(200),
    ]);
    rig.capture_at(0, 3);
    rig.flush_at(0);
    rig.shutdown_at(60 * S, 1_000);
    let (stats, _) = rig.run();
    assert_eq!(rig.world.sent().len(), 4, "4 attempts in all");
    assert_eq!((stats.sent, stats.failed, stats.retried), (0, 3, 3));
    assert!(lines_of_this_thread().iter().any(|l| l.text.contains("giving up on 3 events after 4 attempts")));
    let heard = rig.heard.borrow();
    assert_eq!(
        heard.last().unwrap(),
        r#"Failed { events: 3, status: Some(503), reason: "retries exhausted" }"#
    );
}

#[test]
fn a_batch_given_up_without_an_answer_says_why_to_the_hook() {
    for (error, why) in [
        (TransportError::Connect, "could not connect"),
        (TransportError::Timeout, "timed out"),
        (TransportError::Io, "connection failed"),
    ] {
        let rig = Rig::new(64);
        rig.world.reply([status(503), status(500), status(502), Reply::Error(error)]);
        rig.capture_at(0, 2);
        rig.flush_at(0);
        rig.shutdown_at(60 * S, 1_000);
        let (stats, _) = rig.run();
        assert_eq!((stats.sent, stats.failed), (0, 2));
        let heard = rig.heard.borrow();
        let expected = format!(
            r#"Failed {{ events: 2, status: None, reason: "retries exhausted; last attempt: {why}" }}"#
        );
        assert_eq!(heard.last().unwrap(), &expected);
    }
    // A transport's own words, as they are.
    let mut rig = Rig::new(64);
    rig.config.retry.max_attempts = 1;
    rig.world.reply([Reply::Error(TransportError::Other("proxy refused the tunnel"))]);
    rig.capture_at(0, 1);
    rig.flush_at(0);
    rig.shutdown_at(60 * S, 1_000);
    rig.run();
    assert_eq!(
        rig.heard.borrow().last().unwrap(),
        r#"Failed { events: 1, status: None, reason: "proxy refused the tunnel" }"#
    );
}

#[test]
fn final_statuses_are_not_retried() {
    for code in [400, 401, 403, 404, 422] {
        let rig = Rig::new(64);
        rig.world.reply([status(code)]);
        rig.capture_at(0, 2);
        rig.flush_at(0);
        rig.shutdown_at(10 * S, 1_000);
        let (stats, _) = rig.run();
        assert_eq!(rig.world.sent().len(), 1, "{code}");
        assert_eq!((stats.sent, stats.failed, stats.retried), (0, 2, 0), "{code}");
        let logged: Vec<_> = lines_of_this_thread()
            .into_iter()
            .filter(|l| l.text.contains(&format!("scripted {code}")))
            .collect();
        assert_eq!(logged.len(), 1, "{code}: {logged:?}");
    }
}

#[test]
fn status_413_splits_down_to_the_event_too_large_alone() {
    let rig = Rig::new(64);
    // [0..4] 413 -> [0..2] 413 -> [0] ok, [1] 413 alone (failed) -> [2..4] ok.
    rig.world.reply([status(413), status(413), status(200), status(413), status(200)]);
    rig.capture_at(0, 4);
    rig.flush_at(0);
    rig.shutdown_at(10 * S, 1_000);
    let (stats, _) = rig.run();
    let sent = rig.world.sent();
    let shape: Vec<Vec<i64>> = sent.iter().map(|s| s.ids.clone()).collect();
    assert_eq!(shape, [vec![0, 1, 2, 3], vec![0, 1], vec![0], vec![1], vec![2, 3]]);
    assert_eq!(sent[0].uuids[..2], sent[1].uuids[..], "halves keep their uuids");
    assert_eq!((stats.sent, stats.failed, stats.retried), (3, 1, 0));
    assert!(lines_of_this_thread()
        .iter()
        .any(|l| l.text.contains("HTTP 413") && l.text.contains("too large on its own")));
}

// ---------------------------------------------------------------------------------------------
// Flush and shutdown
// ---------------------------------------------------------------------------------------------

#[test]
fn a_flush_request_sends_a_partial_batch_at_once() {
    let rig = Rig::new(64);
    rig.capture_at(S, 3);
    let ticket = rig.flush_at(S);
    let before = rig.flushed_at(S, &ticket);
    let after = rig.flushed_at(S + 20 * MS, &ticket);
    rig.shutdown_at(5 * S, 1_000);
    rig.run();
    let sent = rig.world.sent();
    assert!((S..S + 10 * MS).contains(&sent[0].at_us), "{}", sent[0].at_us);
    assert_eq!(sent[0].event_count, 3);
    assert_eq!(before.get(), Some(false));
    assert_eq!(after.get(), Some(true));
}

#[test]
fn a_flush_completes_while_events_keep_coming() {
    let mut rig = Rig::new(64);
    rig.pending = 16;
    rig.world.default_latency_us.set(5 * MS);
    rig.trickle(0, 3 * S, MS / 2);
    let ticket = rig.flush_at(S);
    let done = rig.flushed_at(S + 200 * MS, &ticket);
    // What was sent by then must hold every event captured before the request.
    let world = rig.world.clone();
    let delivered = Rc::new(RefCell::new(Vec::new()));
    let d = delivered.clone();
    rig.world.at(S + 200 * MS, move |_| {
        *d.borrow_mut() = world.sent().iter().flat_map(|s| s.ids.clone()).collect::<Vec<i64>>();
    });
    rig.shutdown_at(4 * S, 1_000);
    let (stats, _) = rig.run();
    assert_eq!(done.get(), Some(true), "a flush under steady capture completes");
    let delivered = delivered.borrow();
    for i in 0..2_000 {
        assert!(delivered.contains(&i), "event {i}, captured before the flush, was delivered");
    }
    assert_eq!(stats.dropped, 0);
}

#[test]
fn a_flush_covers_every_lane_while_another_lane_streams() {
    // Lane 0 streams; lane 1 captures a few events just before the flush. Lanes are drained
    // one after another, so drain order is not capture order: the flush must still wait for
    // lane 1's events, whatever lane 0 adds meanwhile.
    let mut rig = Rig::with_lanes(2, 1_024);
    // Small batches and slow polls: each drain pass takes tens of lane-0 events, many of
    // them captured after the flush request, ahead of lane 1's.
    rig.limits.max_events = 4;
    rig.pending = 64;
    rig.config.poll_min_us = 2_000;
    rig.world.default_latency_us.set(200);
    rig.trickle(900 * MS, 2_600 * MS, 200);
    let second = Rc::new(RefCell::new(HeapQueue::producer(rig.queue.clone()).expect("lane 1")));
    let mut flushes = Vec::new();
    for round in 0..5u64 {
        // Phases vary, so some requests land early in a poll tick.
        let at = S + round * 300 * MS + 150 + round * 433;
        let (p, world) = (second.clone(), rig.world.clone());
        rig.world.at(at, move |_| {
            for k in 0..5 {
                let i = 1_000_000 + (round * 10 + k) as i64;
                let _ = p.borrow_mut().capture(&Event::new("tick", "user-2").prop("i", i), &*world);
            }
        });
        let ticket = rig.flush_at(at);
        let done = rig.flushed_at(at + 100 * MS, &ticket);
        // Look every 100 us after the request: the first time the flush reads complete,
        // count how many of lane 1's events had been sent.
        let seen = Rc::new(Cell::new(None));
        for step in 1..1_000u64 {
            let (world, ticket, queue, seen2) =
                (rig.world.clone(), ticket.clone(), rig.queue.clone(), seen.clone());
            rig.world.at(at + step * 100, move |_| {
                let flushed = queue.control().is_flushed(ticket.get().unwrap());
                if flushed && seen2.get().is_none() {
                    let sent: Vec<i64> = world.sent().iter().flat_map(|s| s.ids.clone()).collect();
                    let want = (0..5).map(|k| 1_000_000 + (round * 10 + k) as i64);
                    seen2.set(Some(want.filter(|i| sent.contains(i)).count()));
                }
            });
        }
        flushes.push((done, seen));
    }
    rig.shutdown_at(4 * S, 1_000);
    let (stats, _) = rig.run();
    for (round, (done, seen)) in flushes.iter().enumerate() {
        assert_eq!(done.get(), Some(true), "round {round}: the flush completed");
        assert_eq!(
            seen.get(),
            Some(5),
            "round {round}: all of lane 1's events were sent when the flush completed"
        );
    }
    assert_eq!(stats.dropped, 0);
}

#[test]
fn shutdown_sends_what_is_batched_then_stops() {
    let rig = Rig::new(64);
    rig.capture_at(S, 3);
    rig.shutdown_at(2 * S, 1_000);
    let (stats, stopped) = rig.run();
    let sent = rig.world.sent();
    assert_eq!(sent.len(), 1);
    assert!((2 * S..2 * S + 10 * MS).contains(&sent[0].at_us));
    assert!(stopped < 2 * S + 20 * MS, "stopped at {stopped} us");
    assert_eq!(stats.sent, 3);
}

#[test]
fn shutdown_abandons_a_hung_request_at_its_deadline() {
    let mut rig = Rig::new(64);
    rig.config.flush_interval_ms = 100;
    rig.config.requests_in_flight = 1;
    rig.world.reply([Reply::Hang]);
    rig.capture_at(0, 3);
    rig.capture_at(S, 2);
    rig.shutdown_at(2 * S, 500);
    let (stats, stopped) = rig.run();
    assert_eq!(rig.world.sent().len(), 1, "one request, which hangs");
    assert!((2 * S + 500 * MS..2 * S + 510 * MS).contains(&stopped), "stopped at {stopped} us");
    assert_eq!((stats.sent, stats.failed), (0, 5));
}

#[test]
fn with_several_in_flight_a_later_batch_goes_past_a_hung_one() {
    let mut rig = Rig::new(64);
    rig.config.flush_interval_ms = 100;
    rig.world.reply([Reply::Hang]);
    rig.capture_at(0, 3);
    rig.capture_at(S, 2);
    rig.shutdown_at(2 * S, 500);
    let (stats, stopped) = rig.run();
    let sent = rig.world.sent();
    assert_eq!(sent.len(), 2, "the hung one and the next, sent while it hangs: {sent:?}");
    assert!((S..S + 110 * MS).contains(&sent[1].at_us), "{}", sent[1].at_us);
    assert!((2 * S + 500 * MS..2 * S + 510 * MS).contains(&stopped), "stopped at {stopped} us");
    assert_eq!((stats.sent, stats.failed), (2, 3));
}

#[test]
fn shutdown_cuts_a_long_retry_after_wait() {
    let rig = Rig::new(64);
    rig.world.reply([retry_after(503, 20_000)]);
    rig.capture_at(0, 2);
    rig.flush_at(0);
    rig.shutdown_at(S, 300);
    let (stats, stopped) = rig.run();
    assert_eq!(rig.world.sent().len(), 1);
    assert!((S + 300 * MS..S + 310 * MS).contains(&stopped), "stopped at {stopped} us");
    assert_eq!((stats.sent, stats.failed), (0, 2));
}

#[test]
fn shutdown_with_an_idle_flusher_is_immediate() {
    let rig = Rig::new(64);
    rig.shutdown_at(3 * S, 10_000);
    let (stats, stopped) = rig.run();
    assert!(rig.world.sent().is_empty());
    assert!(stopped < 3 * S + 20 * MS, "{stopped}");
    assert_eq!(stats.captured, 0);
}

// ---------------------------------------------------------------------------------------------
// Drops
// ---------------------------------------------------------------------------------------------

#[test]
fn drops_are_warned_about_on_the_first_then_every_hundredth() {
    let mut rig = Rig::new(2);
    rig.limits.max_events = 1;
    rig.pending = 2;
    rig.config.flush_interval_ms = 10;
    rig.config.poll_max_us = 500; // at most one event per drain below
    rig.config.requests_in_flight = 1;
    rig.world.reply([Reply::Hang]);
    // 1 in flight, 1 waiting; the flusher then takes no more (no batch has room), the lane of
    // 2 fills, and capture drops the other 446 itself. At shutdown the 4 held are failed.
    rig.trickle(10 * MS, 10 * MS + 450 * MS, MS);
    rig.shutdown_at(S, 100);
    let (stats, _) = rig.run();
    assert_eq!((stats.captured, stats.dropped, stats.failed), (450, 446, 4));
    let totals: Vec<u64> = lines_of_this_thread()
        .iter()
        .filter(|l| l.text.contains("queue full"))
        .map(|l| l.text.rsplit(": ").next().unwrap().trim_end_matches(')').parse().unwrap())
        .collect();
    assert_eq!(totals, [1, 100, 200, 300, 400]);
}

#[test]
fn a_full_lane_counts_drops_at_capture() {
    let rig = Rig::new(4);
    let outcomes = Rc::new(RefCell::new(Vec::new()));
    let (producer, world, o) = (rig.producer.clone(), rig.world.clone(), outcomes.clone());
    rig.world.at(S, move |_| {
        for i in 0..10 {
            o.borrow_mut()
                .push(producer.borrow_mut().capture(&Event::new("tick", "u").prop("i", i), &*world));
        }
    });
    rig.shutdown_at(2 * S, 1_000);
    let (stats, _) = rig.run();
    let outcomes = outcomes.borrow();
    assert_eq!(outcomes.iter().filter(|o| **o == Captured::Queued).count(), 4);
    assert_eq!(outcomes.iter().filter(|o| **o == Captured::Dropped).count(), 6);
    assert_eq!((stats.sent, stats.dropped), (4, 6));
}

// ---------------------------------------------------------------------------------------------
// Several requests in flight
// ---------------------------------------------------------------------------------------------

/// `batches` full batches of 64 captured at 0, over a server answering in 200 ms, with
/// `in_flight` requests at once; a flush requested at 0, checked every 100 ms up to 4 s.
fn slow_server_rig(in_flight: usize, batches: usize) -> (Rig, Vec<FlushCheck>) {
    let mut rig = Rig::new(4096);
    rig.pending = 8;
    rig.config.requests_in_flight = in_flight;
    rig.world.default_latency_us.set(200 * MS);
    rig.capture_at(0, 64 * batches);
    let ticket = rig.flush_at(0);
    let checks = (1..=40).map(|k| (k * 100 * MS + 1, rig.flushed_at(k * 100 * MS + 1, &ticket))).collect();
    rig.shutdown_at(5 * S, 1_000);
    (rig, checks)
}

/// When a flush was checked, and whether it was complete then.
type FlushCheck = (u64, Rc<Cell<Option<bool>>>);

/// When the flush was first seen complete.
fn flushed_by(checks: &[FlushCheck]) -> u64 {
    checks.iter().find(|(_, done)| done.get() == Some(true)).expect("the flush completed").0
}

/// Most requests whose 200 ms overlap one instant.
fn max_overlap(sent: &[Sent], latency_us: u64) -> usize {
    sent.iter()
        .map(|a| sent.iter().filter(|b| b.at_us <= a.at_us && a.at_us < b.at_us + latency_us).count())
        .max()
        .unwrap_or(0)
}

#[test]
fn several_requests_in_flight_overlap_and_multiply_throughput() {
    let (one, one_checks) = slow_server_rig(1, 16);
    let (stats_one, _) = one.run();
    let (four, four_checks) = slow_server_rig(4, 16);
    let (stats_four, _) = four.run();
    assert_eq!((stats_one.sent, stats_four.sent), (1024, 1024));
    let (s1, s4) = (one.world.sent(), four.world.sent());
    assert_eq!((s1.len(), s4.len()), (16, 16), "batches of 64 each");
    assert_eq!((max_overlap(&s1, 200 * MS), max_overlap(&s4, 200 * MS)), (1, 4));
    // Four go at once, then four more as each answer comes back.
    for (k, q) in s4.iter().enumerate() {
        let round = (k / 4) as u64 * 200 * MS;
        assert!((round..round + 2 * MS).contains(&q.at_us), "request {k} at {} us", q.at_us);
    }
    // 16 round trips against 4: the flush completes after 3.2 s with one in flight, 0.8 s
    // with four.
    let (t1, t4) = (flushed_by(&one_checks), flushed_by(&four_checks));
    assert_eq!((t1, t4), (3_200 * MS + 1, 800 * MS + 1));
    // Every event once, each batch in order within itself.
    let mut ids: Vec<i64> = s4.iter().flat_map(|q| q.ids.clone()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..1024).collect::<Vec<_>>());
}

/// 50,000 events/s for 3 s against a server answering in 200 ms, four in flight, a flush
/// requested at `flush_at_us`: the requests, and how long the flush took.
fn fifty_k_against_200_ms(flush_at_us: u64) -> (Vec<Sent>, u64) {
    let mut rig = Rig::new(1 << 16);
    rig.pending = 8;
    rig.limits.max_events = 5_000;
    rig.limits.max_batch_bytes = 2 << 20;
    rig.config.send_at_events = 64;
    rig.world.default_latency_us.set(200 * MS);
    for ms in 0..3_000 {
        rig.capture_at(ms * MS, 50);
    }
    let ticket = rig.flush_at(flush_at_us);
    let checks: Vec<FlushCheck> = (1..=100)
        .map(|k| (flush_at_us + k * 5 * MS, rig.flushed_at(flush_at_us + k * 5 * MS, &ticket)))
        .collect();
    rig.shutdown_at(4 * S, 2_000);
    let (stats, _) = rig.run();
    assert_eq!((stats.sent, stats.dropped), (150_000, 0), "{stats:?}");
    (rig.world.sent(), flushed_by(&checks) - flush_at_us)
}

#[test]
fn against_a_slow_server_requests_spread_out_and_a_flush_waits_one_response_and_a_gap() {
    // The first four requests start together (no response seen yet). Restarted as each came
    // back, they stayed together for good, so a flush made just after a round started waited
    // for that round to end before its batch could go: up to two response times. Spaced by
    // the response time / 4, a slot frees every ~50 ms: a flush waits that plus one response.
    // (That a flush itself is not spaced: `several_requests_in_flight_overlap_*`.)
    for flush_at in [2_005 * MS, 2_030 * MS, 2_055 * MS, 2_080 * MS] {
        let (sent, waited) = fifty_k_against_200_ms(flush_at);
        // After the first round trip and before the flush, starts are ~50 ms apart.
        let steady: Vec<u64> = sent.iter().map(|q| q.at_us).filter(|&t| (S..2 * S).contains(&t)).collect();
        assert!(steady.windows(2).all(|w| w[1] - w[0] >= 45 * MS), "starts {steady:?}");
        assert!(waited <= 260 * MS, "a flush at {flush_at} us took {waited} us");
    }
}

/// Four full batches captured at each of `bursts` (µs), against a server answering in 200 ms,
/// four in flight: when each request started.
fn bursts_of_four_against_200_ms(bursts: &[(u64, usize)]) -> Vec<u64> {
    let mut rig = Rig::new(4096);
    rig.pending = 8;
    rig.world.default_latency_us.set(200 * MS);
    for &(at, events) in bursts {
        rig.capture_at(at, events);
    }
    rig.shutdown_at(3 * S, 1_000);
    let (stats, _) = rig.run();
    assert_eq!(stats.failed, 0, "{stats:?}");
    rig.world.sent().iter().map(|q| q.at_us).collect()
}

#[test]
fn spacing_ends_when_no_request_is_out() {
    // The first burst's answers come back with every slot busy: spacing (50 ms) starts. With
    // nothing out since 200 ms, the burst at 1 s is not held by it: all four go at once.
    let starts = bursts_of_four_against_200_ms(&[(0, 256), (S, 256)]);
    assert_eq!(starts.len(), 8, "{starts:?}");
    assert!(starts[4..].iter().all(|&t| (S..S + 2 * MS).contains(&t)), "{starts:?}");
}

#[test]
fn spacing_is_only_for_a_server_that_keeps_every_slot_busy() {
    // Two requests out at once, of four allowed: their answers set no spacing, so the three
    // batches captured at 210 ms (one request still out) go together.
    let starts = bursts_of_four_against_200_ms(&[(0, 64), (50 * MS, 64), (210 * MS, 192)]);
    assert_eq!(starts.len(), 5, "{starts:?}");
    assert!(starts[2..].iter().all(|&t| (210 * MS..212 * MS).contains(&t)), "{starts:?}");
}

#[test]
fn a_failure_in_one_batch_while_others_succeed_is_counted_exactly() {
    let mut rig = Rig::new(4096);
    rig.pending = 8;
    rig.world.default_latency_us.set(200 * MS);
    let slow = |code| Reply::Status { code, retry_after_ms: None, latency_us: 200 * MS };
    // Four in flight: the 2nd refused for good, the 3rd retried once, the others accepted.
    rig.world.reply([slow(200), slow(400), slow(503), slow(200)]);
    rig.capture_at(0, 256);
    rig.shutdown_at(2 * S, 1_000);
    let (stats, _) = rig.run();
    assert_eq!((stats.sent, stats.failed, stats.retried), (192, 64, 1), "{stats:?}");
    let sent = rig.world.sent();
    assert_eq!(sent.len(), 5, "{sent:?}");
    assert!(sent[..4].iter().all(|q| q.at_us < 2 * MS && q.attempt == 1));
    // The retry is the 3rd batch again, alone, after its backoff (50-100 ms after its 503).
    assert_eq!((sent[4].attempt, &sent[4].ids), (2, &sent[2].ids));
    assert!((250 * MS..302 * MS).contains(&sent[4].at_us), "{}", sent[4].at_us);
    let heard = rig.heard.borrow();
    let count = |what: &str| heard.iter().filter(|h| h.starts_with(what)).count();
    assert_eq!((count("Sent"), count("Failed"), count("Retrying")), (3, 1, 1), "{heard:?}");
    assert!(heard.iter().any(|h| h.starts_with("Failed { events: 64, status: Some(400)")), "{heard:?}");
}

#[test]
fn a_413_splits_its_own_batch_while_others_are_in_flight() {
    let mut rig = Rig::new(4096);
    rig.pending = 8;
    rig.world.default_latency_us.set(200 * MS);
    let reply = |code, ms| Reply::Status { code, retry_after_ms: None, latency_us: ms * MS };
    // The 1st batch is refused as too large after 50 ms; its halves go while the other three
    // are still out.
    rig.world.reply([reply(413, 50), reply(200, 300), reply(200, 300), reply(200, 300)]);
    rig.capture_at(0, 256);
    rig.shutdown_at(2 * S, 1_000);
    let (stats, _) = rig.run();
    assert_eq!((stats.sent, stats.failed), (256, 0), "{stats:?}");
    let sent = rig.world.sent();
    assert_eq!(sent.len(), 6, "{sent:?}");
    let (first_half, second_half) = (&sent[4], &sent[5]);
    assert_eq!((first_half.event_count, second_half.event_count), (32, 32));
    assert_eq!([first_half.ids.clone(), second_half.ids.clone()].concat(), sent[0].ids);
    assert!((50 * MS..52 * MS).contains(&first_half.at_us), "{}", first_half.at_us);
    assert!(first_half.at_us < 300 * MS, "the half went while the others were in flight");
    let heard = rig.heard.borrow();
    assert_eq!(heard.iter().filter(|h| h.starts_with("Sent { events: 32")).count(), 2, "{heard:?}");
    assert_eq!(heard.iter().filter(|h| h.starts_with("Sent { events: 64")).count(), 3, "{heard:?}");
}

#[test]
fn the_shutdown_deadline_fails_every_hung_request_in_flight() {
    let mut rig = Rig::new(4096);
    rig.pending = 8;
    rig.world.reply([Reply::Hang, Reply::Hang, Reply::Hang, Reply::Hang]);
    rig.capture_at(0, 256); // four full batches, all out at once
    rig.capture_at(10 * MS, 10); // and a partial one held behind them
    rig.shutdown_at(S, 500);
    let (stats, stopped) = rig.run();
    assert_eq!(rig.world.sent().len(), 4);
    assert!((S + 500 * MS..S + 510 * MS).contains(&stopped), "stopped at {stopped} us");
    assert_eq!((stats.sent, stats.failed), (0, 266), "{stats:?}");
    let heard = rig.heard.borrow();
    let failed = heard.iter().filter(|h| h.starts_with("Failed { events: 64, status: None")).count();
    assert_eq!(failed, 4, "one outcome per abandoned batch: {heard:?}");
}

#[test]
fn a_flush_completes_only_when_the_oldest_batch_in_flight_is_delivered() {
    let mut rig = Rig::new(4096);
    rig.pending = 8;
    let reply = |ms| Reply::Status { code: 200, retry_after_ms: None, latency_us: ms * MS };
    // Answers out of order: the oldest batch last.
    rig.world.reply([reply(400), reply(100), reply(300), reply(200)]);
    rig.capture_at(0, 256);
    let ticket = rig.flush_at(0);
    let at_350 = rig.flushed_at(350 * MS, &ticket);
    let at_410 = rig.flushed_at(410 * MS, &ticket);
    rig.capture_at(380 * MS, 64); // a batch after the flush: not waited for
    rig.world.at(380 * MS, {
        let w = rig.world.clone();
        move |_| w.reply([Reply::Hang])
    });
    rig.shutdown_at(S, 100);
    let (stats, _) = rig.run();
    assert_eq!(at_350.get(), Some(false), "three of four back, the oldest still out");
    assert_eq!(at_410.get(), Some(true));
    assert_eq!((stats.sent, stats.failed), (256, 64), "{stats:?}");
}

#[test]
fn with_every_batch_in_flight_the_lanes_hold_and_capture_drops() {
    let mut rig = Rig::new(2);
    rig.limits.max_events = 1;
    rig.pending = 4;
    rig.config.requests_in_flight = 4;
    rig.config.poll_max_us = 500;
    rig.world.reply([Reply::Hang; 4]);
    // Four batches of one event, all in flight and hung: no batch has room, the drain takes
    // no more, the lane of 2 fills and capture drops the rest. At the deadline the four in
    // flight and the two in the lane are failed.
    rig.trickle(10 * MS, 10 * MS + 450 * MS, MS);
    rig.shutdown_at(S, 100);
    let (stats, stopped) = rig.run();
    assert_eq!(rig.world.sent().len(), 4);
    assert_eq!((stats.captured, stats.dropped, stats.failed, stats.sent), (450, 444, 6, 0), "{stats:?}");
    assert!((S + 100 * MS..S + 110 * MS).contains(&stopped), "stopped at {stopped} us");
}
