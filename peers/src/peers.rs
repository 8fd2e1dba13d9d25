//! fasthog and its peers behind one producer trait, each with its consumer.
//!
//! The ring and queue peers carry the same data as fasthog, not fasthog's format: each pushes
//! a compact `#[repr(C)]` record of the event's values by value ([`Workload::Record`]: 128
//! bytes for the typical event, 384 for 16 properties), built from the same inputs. fasthog
//! writes its variable-length entry in place in its lane from the builder. The Go-design peer
//! and posthog-rs build their own event types from the same inputs, as those designs do.

use std::collections::VecDeque;
use std::hint::black_box;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fasthog::client::{ClientClock, CoarseClock};
use fasthog::ring::LaneProducer;
use fasthog::{Captured, Client, Event, HeapQueue};
use ringbuf::traits::{Consumer as _, Producer as _, Split as _};

use crate::workload::{GoEvent, Workload};

/// One producer's side of a peer: build the event for counter `i`, and enqueue it.
pub trait Capture: Send {
    /// The peer's event representation (it may borrow the distinct_id).
    type Ev<'u>;
    /// Builds the event (not timed in "capture call only" mode).
    fn build<'u>(&mut self, user: &'u str, i: u64) -> Self::Ev<'u>;
    /// Enqueues it; false when the queue refused it (full).
    fn capture(&mut self, ev: Self::Ev<'_>) -> bool;
}

/// Which peer. The order is the report's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `fasthog::Client::capture`, the real flusher sending to a receiver.
    FasthogClient,
    /// A `HeapQueue` lane (`LaneProducer::capture`) with a busy consumer.
    FasthogLane,
    /// ringbuf `HeapRb::try_push` of the compact record.
    Ringbuf,
    /// rtrb `Producer::push` of the compact record.
    Rtrb,
    /// crossbeam-queue `ArrayQueue::push` of the compact record.
    ArrayQueue,
    /// crossbeam-channel `bounded` `try_send` of the compact record.
    CrossbeamChannel,
    /// std `sync_channel` `try_send` of the compact record.
    StdSyncChannel,
    /// `Mutex<VecDeque>` `push_back` of the compact record (bounded by a length check).
    MutexVecDeque,
    /// The Go client's design: a bounded channel of an owned event with a property map.
    GoDesign,
    /// posthog-rs 0.30 `Client::capture`, its worker sending to a receiver.
    PosthogRs,
}

impl Kind {
    /// Every peer, fasthog first.
    pub const ALL: [Kind; 10] = [
        Kind::FasthogClient,
        Kind::FasthogLane,
        Kind::Ringbuf,
        Kind::Rtrb,
        Kind::ArrayQueue,
        Kind::CrossbeamChannel,
        Kind::StdSyncChannel,
        Kind::MutexVecDeque,
        Kind::GoDesign,
        Kind::PosthogRs,
    ];

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Kind::FasthogClient => "fasthog Client::capture",
            Kind::FasthogLane => "fasthog LaneProducer::capture",
            Kind::Ringbuf => "ringbuf 0.6 try_push",
            Kind::Rtrb => "rtrb 0.4 push",
            Kind::ArrayQueue => "crossbeam ArrayQueue push",
            Kind::CrossbeamChannel => "crossbeam-channel try_send",
            Kind::StdSyncChannel => "std sync_channel try_send",
            Kind::MutexVecDeque => "Mutex<VecDeque> push_back",
            Kind::GoDesign => "Go design (chan of map event)",
            Kind::PosthogRs => "posthog-rs 0.30 capture",
        }
    }

    /// What the consumer is, for the report.
    pub fn consumer(self) -> &'static str {
        match self {
            Kind::FasthogClient => "fasthog flusher (encode, gzip, HTTP to receiver)",
            Kind::PosthogRs => "posthog-rs worker (serde, HTTP to receiver)",
            Kind::FasthogLane => "drain thread, reads each entry in place",
            Kind::Ringbuf | Kind::Rtrb => "drain thread, one SPSC ring per producer",
            _ => "drain thread, one shared queue",
        }
    }

    /// True when the peer needs a receiver URL.
    pub fn needs_receiver(self) -> bool {
        matches!(self, Kind::FasthogClient | Kind::PosthogRs)
    }

    /// Parses a name as given on the command line (`fasthog-client`, `ringbuf`, ...).
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "fasthog-client" | "client" => Kind::FasthogClient,
            "fasthog-lane" | "lane" => Kind::FasthogLane,
            "ringbuf" => Kind::Ringbuf,
            "rtrb" => Kind::Rtrb,
            "arrayqueue" | "array-queue" => Kind::ArrayQueue,
            "crossbeam-channel" => Kind::CrossbeamChannel,
            "sync-channel" | "std" => Kind::StdSyncChannel,
            "mutex" => Kind::MutexVecDeque,
            "go" | "go-design" => Kind::GoDesign,
            "posthog-rs" | "posthog" => Kind::PosthogRs,
            _ => return None,
        })
    }
}

// ---- producers -------------------------------------------------------------------------

/// `fasthog::Client::capture`.
pub struct ClientProducer<W>(pub Client, PhantomData<W>);
impl<W: Workload> Capture for ClientProducer<W> {
    type Ev<'u> = Event<'u, W::Props>;
    #[inline(always)]
    fn build<'u>(&mut self, user: &'u str, i: u64) -> Self::Ev<'u> {
        W::event(user, i)
    }
    #[inline(always)]
    fn capture(&mut self, ev: Self::Ev<'_>) -> bool {
        self.0.capture(&ev) == Captured::Queued
    }
}

/// A claimed lane of a `HeapQueue`, stamping with the client's default (coarse) clock.
pub struct LaneCapture<W> {
    producer: LaneProducer<Arc<HeapQueue>>,
    clock: ClientClock,
    _w: PhantomData<W>,
}
impl<W: Workload> Capture for LaneCapture<W> {
    type Ev<'u> = Event<'u, W::Props>;
    #[inline(always)]
    fn build<'u>(&mut self, user: &'u str, i: u64) -> Self::Ev<'u> {
        W::event(user, i)
    }
    #[inline(always)]
    fn capture(&mut self, ev: Self::Ev<'_>) -> bool {
        self.producer.capture(&ev, &self.clock) == Captured::Queued
    }
}

/// A record peer: `$push(queue, record)` of the workload's compact record.
macro_rules! record_peer {
    ($(#[$doc:meta])* $name:ident, $queue:ty, |$q:ident, $r:ident| $push:expr) => {
        $(#[$doc])*
        pub struct $name<W: Workload>($queue);
        impl<W: Workload> Capture for $name<W> {
            type Ev<'u> = W::Record;
            #[inline(always)]
            fn build(&mut self, user: &str, i: u64) -> W::Record {
                W::record(user, i)
            }
            #[inline(always)]
            fn capture(&mut self, ev: W::Record) -> bool {
                let ($q, $r) = (&mut self.0, ev);
                $push
            }
        }
    };
}

type RbProd<T> = ringbuf::CachingProd<Arc<ringbuf::HeapRb<T>>>;
type RbCons<T> = ringbuf::CachingCons<Arc<ringbuf::HeapRb<T>>>;

record_peer!(
    /// ringbuf `try_push`.
    RingbufPush, RbProd<W::Record>, |q, r| q.try_push(r).is_ok()
);
record_peer!(
    /// rtrb `push`.
    RtrbPush, rtrb::Producer<W::Record>, |q, r| q.push(r).is_ok()
);
record_peer!(
    /// crossbeam `ArrayQueue::push`.
    ArrayQueuePush, Arc<crossbeam_queue::ArrayQueue<W::Record>>, |q, r| q.push(r).is_ok()
);
record_peer!(
    /// crossbeam-channel `try_send`.
    CrossbeamSend, crossbeam_channel::Sender<W::Record>, |q, r| q.try_send(r).is_ok()
);
record_peer!(
    /// std `SyncSender::try_send`.
    StdSend, std::sync::mpsc::SyncSender<W::Record>, |q, r| q.try_send(r).is_ok()
);
record_peer!(
    /// A bounded `Mutex<VecDeque>`.
    MutexPush, Arc<(Mutex<VecDeque<W::Record>>, usize)>, |q, r| {
        let (queue, cap) = &**q;
        let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() < *cap {
            q.push_back(r);
            true
        } else {
            false
        }
    }
);

/// The Go client's design: build an owned event with a property map, `select` it into a
/// bounded channel with a `default` (here `try_send`).
pub struct GoSend<W>(crossbeam_channel::Sender<GoEvent>, PhantomData<W>);
impl<W: Workload> Capture for GoSend<W> {
    type Ev<'u> = GoEvent;
    #[inline(always)]
    fn build(&mut self, user: &str, i: u64) -> GoEvent {
        W::go(user, i)
    }
    #[inline(always)]
    fn capture(&mut self, ev: GoEvent) -> bool {
        self.0.try_send(ev).is_ok()
    }
}

/// posthog-rs 0.30 `Client::capture` (fire-and-forget; returns nothing, so a drop on a full
/// queue is invisible here and checked through `pending_events` by the harness).
pub struct PosthogCapture<W>(pub Arc<posthog_rs::Client>, PhantomData<W>);
impl<W: Workload> Capture for PosthogCapture<W> {
    type Ev<'u> = posthog_rs::Event;
    #[inline(always)]
    fn build(&mut self, user: &str, i: u64) -> posthog_rs::Event {
        W::posthog(user, i)
    }
    #[inline(always)]
    fn capture(&mut self, ev: posthog_rs::Event) -> bool {
        self.0.capture(ev);
        true
    }
}

// ---- consumers -------------------------------------------------------------------------

/// A drain thread: while active it drains the peer's queue(s) in a loop (spinning, then
/// yielding when it finds nothing); while inactive it parks.
pub struct Spinner {
    active: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    consumed: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl Spinner {
    /// Starts a drain thread around `drain` (returns how many records it took). With `poll`
    /// it drains everything, then sleeps that long, like a flusher; without, it spins.
    pub fn spawn(name: &str, poll: Option<Duration>, mut drain: Box<dyn FnMut() -> usize + Send>) -> Spinner {
        let active = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let consumed = Arc::new(AtomicU64::new(0));
        let (a, s, c) = (active.clone(), stop.clone(), consumed.clone());
        let handle = std::thread::Builder::new()
            .name(format!("drain-{name}"))
            .spawn(move || {
                let mut idle = 0u32;
                while !s.load(Ordering::Acquire) {
                    if !a.load(Ordering::Acquire) {
                        std::thread::park_timeout(Duration::from_millis(2));
                        continue;
                    }
                    let n = drain();
                    if n > 0 {
                        c.fetch_add(n as u64, Ordering::Release);
                        idle = 0;
                    } else if let Some(poll) = poll {
                        std::thread::sleep(poll);
                    } else {
                        idle += 1;
                        if idle > 64 {
                            std::thread::yield_now();
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                }
                // Leave nothing behind.
                loop {
                    let n = drain();
                    if n == 0 {
                        break;
                    }
                    c.fetch_add(n as u64, Ordering::Release);
                }
            })
            .expect("spawn drain thread");
        Spinner { active, stop, consumed, handle: Some(handle) }
    }

    /// Starts draining.
    pub fn activate(&self) {
        self.active.store(true, Ordering::Release);
        if let Some(h) = &self.handle {
            h.thread().unpark();
        }
    }

    /// Stops draining (the thread parks).
    pub fn deactivate(&self) {
        self.active.store(false, Ordering::Release);
    }

    /// Records taken so far.
    pub fn consumed(&self) -> u64 {
        self.consumed.load(Ordering::Acquire)
    }

    /// Waits until `total` records were taken; false on timeout.
    pub fn wait_consumed(&self, total: u64, timeout: Duration) -> bool {
        let start = Instant::now();
        while self.consumed() < total {
            if start.elapsed() > timeout {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

/// How a peer's queue is emptied between bursts.
pub enum Drainer {
    /// A [`Spinner`] of ours.
    Spinner(Spinner),
    /// The client's own background sender; `settle` blocks until it delivered everything
    /// captured so far, `lost` says how many events it dropped so far (if it can tell).
    External {
        /// Waits for delivery.
        settle: Box<dyn Fn() + Send + Sync>,
        /// Events dropped so far.
        lost: Box<dyn Fn() -> u64 + Send + Sync>,
    },
}

/// A peer ready to run: one producer per thread, and its consumer.
pub struct Setup<P> {
    /// Which peer.
    pub kind: Kind,
    /// One per producer thread.
    pub producers: Vec<P>,
    /// The consumer.
    pub drainer: Drainer,
}

/// Records a drain touches per call (per ring).
const DRAIN_CHUNK: usize = 256;

/// Settings shared by the setups.
#[derive(Debug, Clone)]
pub struct Params {
    /// Producer threads.
    pub producers: usize,
    /// Events each queue holds (per ring for the SPSC peers; fasthog: its lanes' memory holds
    /// this many per producer, at least).
    pub capacity: usize,
    /// The receiver's base URL, for the two real clients.
    pub receiver_url: Option<String>,
    /// `None`: drain threads spin (a busy consumer); `Some(d)`: they drain, then sleep `d`
    /// when they find nothing (a consumer that polls, like a flusher).
    pub poll: Option<Duration>,
}

/// The API key the clients send (the receiver accepts any well-formed key).
pub const API_KEY: &str = "phc_fasthog_bench_0000000000000000000000000";

/// A fasthog `Client` for the harness: default settings (16 lanes, 8 MiB), except the host,
/// and more memory only if `capacity` events of `lane_bytes` per producer would not fit in
/// half the default.
pub fn fasthog_client(url: &str, capacity: usize, producers: usize, lane_bytes: usize) -> Client {
    let needed = 2 * capacity * producers.max(1) * lane_bytes;
    let mut b = Client::builder(API_KEY).host(url).environment("bench");
    if needed > fasthog::client::DEFAULT_MEMORY {
        b = b.memory(needed.next_power_of_two());
    }
    if producers > 16 {
        b = b.lanes(producers);
    }
    b.build().expect("build fasthog client")
}

/// A posthog-rs client for the harness: defaults except the host and a queue as large as
/// `max_queue` (so it does not drop during a burst).
pub fn posthog_client(url: &str, max_queue: usize, gzip: bool) -> posthog_rs::Client {
    let mut b = posthog_rs::ClientOptionsBuilder::default();
    b.api_key(API_KEY.to_string()).host(url.to_string()).max_queue_size(max_queue);
    if gzip {
        b.capture_compression(posthog_rs::CaptureCompression::Gzip);
    }
    posthog_rs::client(b.build().expect("posthog-rs options"))
}

macro_rules! spsc_drain {
    ($consumers:expr, $pop:expr) => {{
        let mut consumers = $consumers;
        Box::new(move || {
            let mut n: usize = 0;
            for c in consumers.iter_mut() {
                for _ in 0..DRAIN_CHUNK {
                    match $pop(c) {
                        Some(ev) => {
                            black_box(&ev);
                            n += 1;
                        }
                        None => break,
                    }
                }
            }
            n
        }) as Box<dyn FnMut() -> usize + Send>
    }};
}

/// Calls `visit` with each requested peer set up for `params` (dispatch to monomorphic code).
pub trait Visit {
    /// Receives one peer.
    fn visit<P: Capture + 'static>(&mut self, setup: Setup<P>);
}

/// Sets up `kind` for workload `W` and hands it to `v`.
pub fn setup<W: Workload>(kind: Kind, params: &Params, v: &mut impl Visit) {
    let n = params.producers.max(1);
    let cap = params.capacity;
    let name = kind.name();
    let spinner = |drain| Drainer::Spinner(Spinner::spawn(name, params.poll, drain));
    match kind {
        Kind::FasthogClient => {
            let url = params.receiver_url.as_deref().expect("a receiver url");
            let lane_bytes = W::event(&crate::workload::user_id(0), 0).to_entry().lane_bytes();
            let client = fasthog_client(url, cap, n, lane_bytes);
            let producers = (0..n).map(|_| ClientProducer::<W>(client.clone(), PhantomData)).collect();
            let (c1, c2) = (client.clone(), client);
            v.visit(Setup {
                kind,
                producers,
                drainer: Drainer::External {
                    settle: Box::new(move || {
                        let _ = c1.flush(Duration::from_secs(60));
                    }),
                    lost: Box::new(move || {
                        let s = c2.stats();
                        s.dropped + s.failed + s.rejected
                    }),
                },
            });
        }
        Kind::FasthogLane => {
            // Blocks of 16 KiB (entries up to 8 KiB), enough for `cap` events per lane, plus
            // the block each lane holds and slack.
            let lane_bytes = W::event(&crate::workload::user_id(0), 0).to_entry().lane_bytes();
            let block = 16 * 1024;
            let blocks = (n * cap * lane_bytes).div_ceil(block - 8) + 3 * (n + 1);
            let queue = Arc::new(HeapQueue::with_blocks(n, blocks, block));
            // The client's default clock, refreshed by the drain thread every millisecond as
            // the client's flusher thread does.
            let coarse = Arc::new(CoarseClock::new());
            let producers = (0..n)
                .map(|_| LaneCapture::<W> {
                    producer: HeapQueue::producer(queue.clone()).expect("a free lane"),
                    clock: ClientClock::Coarse(coarse.clone()),
                    _w: PhantomData,
                })
                .collect();
            let mut consumer = fasthog::ring::try_consumer(queue).expect("the consumer");
            let mut refreshed = Instant::now();
            // Reads every byte of each entry in place, as an encoder does.
            let drain = Box::new(move || {
                if refreshed.elapsed() >= CoarseClock::RESOLUTION {
                    coarse.refresh();
                    refreshed = Instant::now();
                }
                consumer
                    .drain(|e| {
                        black_box(e.iter().fold(0u8, |a, b| a ^ b));
                        true
                    })
                    .events
            });
            v.visit(Setup { kind, producers, drainer: spinner(drain) });
        }
        Kind::Ringbuf => {
            let (producers, consumers): (Vec<_>, Vec<RbCons<W::Record>>) =
                (0..n).map(|_| ringbuf::HeapRb::<W::Record>::new(cap).split()).unzip();
            let drain = spsc_drain!(consumers, |c: &mut RbCons<W::Record>| c.try_pop());
            v.visit(Setup {
                kind,
                producers: producers.into_iter().map(RingbufPush::<W>).collect(),
                drainer: spinner(drain),
            });
        }
        Kind::Rtrb => {
            let (producers, consumers): (Vec<_>, Vec<_>) =
                (0..n).map(|_| rtrb::RingBuffer::<W::Record>::new(cap)).unzip();
            let drain = spsc_drain!(consumers, |c: &mut rtrb::Consumer<W::Record>| c.pop().ok());
            v.visit(Setup {
                kind,
                producers: producers.into_iter().map(RtrbPush::<W>).collect(),
                drainer: spinner(drain),
            });
        }
        Kind::ArrayQueue => {
            let q = Arc::new(crossbeam_queue::ArrayQueue::<W::Record>::new(cap * n));
            let producers = (0..n).map(|_| ArrayQueuePush::<W>(q.clone())).collect();
            let drain = spsc_drain!([q], |c: &mut Arc<crossbeam_queue::ArrayQueue<W::Record>>| c.pop());
            v.visit(Setup { kind, producers, drainer: spinner(drain) });
        }
        Kind::CrossbeamChannel => {
            let (tx, rx) = crossbeam_channel::bounded::<W::Record>(cap * n);
            let producers = (0..n).map(|_| CrossbeamSend::<W>(tx.clone())).collect();
            let drain = spsc_drain!([rx], |c: &mut crossbeam_channel::Receiver<W::Record>| c.try_recv().ok());
            v.visit(Setup { kind, producers, drainer: spinner(drain) });
        }
        Kind::StdSyncChannel => {
            let (tx, rx) = std::sync::mpsc::sync_channel::<W::Record>(cap * n);
            let producers = (0..n).map(|_| StdSend::<W>(tx.clone())).collect();
            let drain = spsc_drain!([rx], |c: &mut std::sync::mpsc::Receiver<W::Record>| c.try_recv().ok());
            v.visit(Setup { kind, producers, drainer: spinner(drain) });
        }
        Kind::MutexVecDeque => {
            let q = Arc::new((Mutex::new(VecDeque::with_capacity(cap * n)), cap * n));
            let producers = (0..n).map(|_| MutexPush::<W>(q.clone())).collect();
            let drain = Box::new(move || {
                let mut q = q.0.lock().unwrap_or_else(|e| e.into_inner());
                let mut taken = 0;
                while taken < DRAIN_CHUNK {
                    match q.pop_front() {
                        Some(ev) => {
                            black_box(&ev);
                            taken += 1;
                        }
                        None => break,
                    }
                }
                taken
            });
            v.visit(Setup { kind, producers, drainer: spinner(drain) });
        }
        Kind::GoDesign => {
            let (tx, rx) = crossbeam_channel::bounded::<GoEvent>(cap * n);
            let producers = (0..n).map(|_| GoSend::<W>(tx.clone(), PhantomData)).collect();
            let drain = spsc_drain!([rx], |c: &mut crossbeam_channel::Receiver<GoEvent>| c.try_recv().ok());
            v.visit(Setup { kind, producers, drainer: spinner(drain) });
        }
        Kind::PosthogRs => {
            let url = params.receiver_url.as_deref().expect("a receiver url");
            // Room for two bursts of every producer, so it does not drop during a burst.
            let client = Arc::new(posthog_client(url, cap * n * 2, false));
            let producers = (0..n).map(|_| PosthogCapture::<W>(client.clone(), PhantomData)).collect();
            let c1 = client.clone();
            v.visit(Setup {
                kind,
                producers,
                drainer: Drainer::External {
                    settle: Box::new(move || c1.flush()),
                    // posthog-rs counts no drops; the queue is sized so none happen.
                    lost: Box::new(|| 0),
                },
            });
        }
    }
}
