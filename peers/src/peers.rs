//! fasthog and its peers behind one producer trait, each with its consumer.
//!
//! Every ring or queue peer carries the same record a fasthog lane holds, `fasthog::Record`
//! (about 1.1 KB, `Copy`), built by the same [`crate::workload::fasthog_record`]; fasthog
//! itself writes the same record in place in its lane from the builder. The Go-design peer and posthog-rs build
//! their own event types from the same inputs, as those designs do.

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fasthog::client::TscClock;
use fasthog::ring::{heap_storage, LaneProducer, Ring, Slot};
use fasthog::{Captured, Client, HeapQueue, Record};
use ringbuf::traits::{Consumer as _, Producer as _, Split as _};

use crate::workload::{fasthog_event, fasthog_record, go_event, posthog_event, GoEvent, Typical};

/// One producer's side of a peer: build the typical event for counter `i`, and enqueue it.
pub trait Capture: Send {
    /// The peer's event representation (it may borrow the distinct_id).
    type Ev<'u>;
    /// Builds the typical event (not timed in "capture call only" mode).
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
    /// `fasthog::ring::Ring` `Producer::push` of the whole record.
    FasthogRing,
    /// ringbuf `HeapRb::try_push`.
    Ringbuf,
    /// rtrb `Producer::push`.
    Rtrb,
    /// crossbeam-queue `ArrayQueue::push`.
    ArrayQueue,
    /// crossbeam-channel `bounded` `try_send`.
    CrossbeamChannel,
    /// std `sync_channel` `try_send`.
    StdSyncChannel,
    /// `Mutex<VecDeque>` `push_back` (bounded by a length check).
    MutexVecDeque,
    /// The Go client's design: a bounded channel of an owned event with a property map.
    GoDesign,
    /// posthog-rs 0.30 `Client::capture`, its worker sending to a receiver.
    PosthogRs,
}

impl Kind {
    /// Every peer, fasthog first.
    pub const ALL: [Kind; 11] = [
        Kind::FasthogClient,
        Kind::FasthogLane,
        Kind::FasthogRing,
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
            Kind::FasthogLane => "fasthog lane capture",
            Kind::FasthogRing => "fasthog::ring::Ring push",
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
            Kind::Ringbuf | Kind::Rtrb | Kind::FasthogRing | Kind::FasthogLane => {
                "drain thread, one SPSC ring per producer"
            }
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
            "fasthog-ring" => Kind::FasthogRing,
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
pub struct ClientProducer(pub Client);
impl Capture for ClientProducer {
    type Ev<'u> = Typical<'u>;
    #[inline(always)]
    fn build<'u>(&mut self, user: &'u str, i: u64) -> Typical<'u> {
        fasthog_event(user, i)
    }
    #[inline(always)]
    fn capture(&mut self, ev: Typical<'_>) -> bool {
        self.0.capture(&ev) == Captured::Queued
    }
}

/// A claimed lane of a `HeapQueue`.
pub struct LaneCapture {
    producer: LaneProducer<Arc<HeapQueue>>,
    clock: TscClock,
}
impl Capture for LaneCapture {
    type Ev<'u> = Typical<'u>;
    #[inline(always)]
    fn build<'u>(&mut self, user: &'u str, i: u64) -> Typical<'u> {
        fasthog_event(user, i)
    }
    #[inline(always)]
    fn capture(&mut self, ev: Typical<'_>) -> bool {
        self.producer.capture(&ev, &self.clock) == Captured::Queued
    }
}

type HeapRing = Ring<Record, Box<[Slot<Record>]>>;

/// `fasthog::ring::Producer::push` of a whole record.
pub struct RingPush(fasthog::ring::Producer<Arc<HeapRing>>);
impl Capture for RingPush {
    type Ev<'u> = Record;
    #[inline(always)]
    fn build(&mut self, user: &str, i: u64) -> Record {
        fasthog_record(user, i)
    }
    #[inline(always)]
    fn capture(&mut self, ev: Record) -> bool {
        self.0.push(ev).is_ok()
    }
}

type RbProd = ringbuf::CachingProd<Arc<ringbuf::HeapRb<Record>>>;
type RbCons = ringbuf::CachingCons<Arc<ringbuf::HeapRb<Record>>>;

/// ringbuf `try_push`.
pub struct RingbufPush(RbProd);
impl Capture for RingbufPush {
    type Ev<'u> = Record;
    #[inline(always)]
    fn build(&mut self, user: &str, i: u64) -> Record {
        fasthog_record(user, i)
    }
    #[inline(always)]
    fn capture(&mut self, ev: Record) -> bool {
        self.0.try_push(ev).is_ok()
    }
}

/// rtrb `push`.
pub struct RtrbPush(rtrb::Producer<Record>);
impl Capture for RtrbPush {
    type Ev<'u> = Record;
    #[inline(always)]
    fn build(&mut self, user: &str, i: u64) -> Record {
        fasthog_record(user, i)
    }
    #[inline(always)]
    fn capture(&mut self, ev: Record) -> bool {
        self.0.push(ev).is_ok()
    }
}

/// crossbeam `ArrayQueue::push`.
pub struct ArrayQueuePush(Arc<crossbeam_queue::ArrayQueue<Record>>);
impl Capture for ArrayQueuePush {
    type Ev<'u> = Record;
    #[inline(always)]
    fn build(&mut self, user: &str, i: u64) -> Record {
        fasthog_record(user, i)
    }
    #[inline(always)]
    fn capture(&mut self, ev: Record) -> bool {
        self.0.push(ev).is_ok()
    }
}

/// crossbeam-channel `try_send`.
pub struct CrossbeamSend(crossbeam_channel::Sender<Record>);
impl Capture for CrossbeamSend {
    type Ev<'u> = Record;
    #[inline(always)]
    fn build(&mut self, user: &str, i: u64) -> Record {
        fasthog_record(user, i)
    }
    #[inline(always)]
    fn capture(&mut self, ev: Record) -> bool {
        self.0.try_send(ev).is_ok()
    }
}

/// std `SyncSender::try_send`.
pub struct StdSend(std::sync::mpsc::SyncSender<Record>);
impl Capture for StdSend {
    type Ev<'u> = Record;
    #[inline(always)]
    fn build(&mut self, user: &str, i: u64) -> Record {
        fasthog_record(user, i)
    }
    #[inline(always)]
    fn capture(&mut self, ev: Record) -> bool {
        self.0.try_send(ev).is_ok()
    }
}

/// A bounded `Mutex<VecDeque>`.
pub struct MutexPush(Arc<(Mutex<VecDeque<Record>>, usize)>);
impl Capture for MutexPush {
    type Ev<'u> = Record;
    #[inline(always)]
    fn build(&mut self, user: &str, i: u64) -> Record {
        fasthog_record(user, i)
    }
    #[inline(always)]
    fn capture(&mut self, ev: Record) -> bool {
        let (queue, cap) = &*self.0;
        let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() < *cap {
            q.push_back(ev);
            true
        } else {
            false
        }
    }
}

/// The Go client's design: build an owned event with a property map, `select` it into a
/// bounded channel with a `default` (here `try_send`).
pub struct GoSend(crossbeam_channel::Sender<GoEvent>);
impl Capture for GoSend {
    type Ev<'u> = GoEvent;
    #[inline(always)]
    fn build(&mut self, user: &str, i: u64) -> GoEvent {
        go_event(user, i)
    }
    #[inline(always)]
    fn capture(&mut self, ev: GoEvent) -> bool {
        self.0.try_send(ev).is_ok()
    }
}

/// posthog-rs 0.30 `Client::capture` (fire-and-forget; returns nothing, so a drop on a full
/// queue is invisible here and checked through `pending_events` by the harness).
pub struct PosthogCapture(pub Arc<posthog_rs::Client>);
impl Capture for PosthogCapture {
    type Ev<'u> = posthog_rs::Event;
    #[inline(always)]
    fn build(&mut self, user: &str, i: u64) -> posthog_rs::Event {
        posthog_event(user, i)
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
    /// Records each queue holds (per ring for the SPSC peers; per lane for fasthog).
    pub capacity: usize,
    /// The receiver's base URL, for the two real clients.
    pub receiver_url: Option<String>,
    /// `None`: drain threads spin (a busy consumer); `Some(d)`: they drain, then sleep `d`
    /// when they find nothing (a consumer that polls, like a flusher).
    pub poll: Option<Duration>,
}

/// The API key the clients send (the receiver accepts any well-formed key).
pub const API_KEY: &str = "phc_fasthog_bench_0000000000000000000000000";

/// A fasthog `Client` for the harness: defaults except `lanes` (enough for the producers) and
/// `lane_capacity` (`capacity`, so a burst never fills a lane).
pub fn fasthog_client(url: &str, capacity: usize, producers: usize) -> Client {
    Client::builder(API_KEY)
        .host(url)
        .environment("bench")
        .lanes(producers.max(1) * 2)
        .lane_capacity(capacity)
        .build()
        .expect("build fasthog client")
}

/// A posthog-rs client for the harness: defaults except the host and a queue as large as
/// fasthog's lanes together (so neither drops during a burst).
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

/// Sets up `kind` and hands it to `v`.
pub fn setup(kind: Kind, params: &Params, v: &mut impl Visit) {
    let n = params.producers.max(1);
    let cap = params.capacity;
    let name = kind.name();
    match kind {
        Kind::FasthogClient => {
            let url = params.receiver_url.as_deref().expect("a receiver url");
            let client = fasthog_client(url, cap, n);
            let producers = (0..n).map(|_| ClientProducer(client.clone())).collect();
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
            let queue = Arc::new(HeapQueue::with_capacity(n, cap));
            let clock = TscClock::new();
            let producers = (0..n)
                .map(|_| LaneCapture {
                    producer: HeapQueue::producer(queue.clone()).expect("a free lane"),
                    clock: clock.clone(),
                })
                .collect();
            let mut consumer = fasthog::ring::try_consumer(queue).expect("the consumer");
            // Read each record out whole, as the ring peers' `pop` does.
            let drain = Box::new(move || {
                consumer.drain_with(DRAIN_CHUNK * n, |e| {
                    let record: Record = *e;
                    black_box(&record);
                })
            });
            v.visit(Setup {
                kind,
                producers,
                drainer: Drainer::Spinner(Spinner::spawn(name, params.poll, drain)),
            });
        }
        Kind::FasthogRing => {
            let rings: Vec<Arc<HeapRing>> =
                (0..n).map(|_| Arc::new(Ring::with_storage(heap_storage(cap)))).collect();
            let producers =
                rings.iter().map(|r| RingPush(Ring::try_producer(r.clone()).expect("producer"))).collect();
            let consumers: Vec<_> =
                rings.into_iter().map(|r| Ring::try_consumer(r).expect("consumer")).collect();
            let drain = Box::new({
                let mut consumers = consumers;
                move || {
                    consumers
                        .iter_mut()
                        .map(|c| {
                            c.drain_with(DRAIN_CHUNK, |e| {
                                let record: Record = *e;
                                black_box(&record);
                            })
                        })
                        .sum()
                }
            });
            v.visit(Setup {
                kind,
                producers,
                drainer: Drainer::Spinner(Spinner::spawn(name, params.poll, drain)),
            });
        }
        Kind::Ringbuf => {
            let (producers, consumers): (Vec<RbProd>, Vec<RbCons>) =
                (0..n).map(|_| ringbuf::HeapRb::<Record>::new(cap).split()).unzip();
            let drain = spsc_drain!(consumers, |c: &mut RbCons| c.try_pop());
            v.visit(Setup {
                kind,
                producers: producers.into_iter().map(RingbufPush).collect(),
                drainer: Drainer::Spinner(Spinner::spawn(name, params.poll, drain)),
            });
        }
        Kind::Rtrb => {
            let (producers, consumers): (Vec<_>, Vec<_>) =
                (0..n).map(|_| rtrb::RingBuffer::<Record>::new(cap)).unzip();
            let drain = spsc_drain!(consumers, |c: &mut rtrb::Consumer<Record>| c.pop().ok());
            v.visit(Setup {
                kind,
                producers: producers.into_iter().map(RtrbPush).collect(),
                drainer: Drainer::Spinner(Spinner::spawn(name, params.poll, drain)),
            });
        }
        Kind::ArrayQueue => {
            let q = Arc::new(crossbeam_queue::ArrayQueue::<Record>::new(cap * n));
            let producers = (0..n).map(|_| ArrayQueuePush(q.clone())).collect();
            let drain = spsc_drain!([q], |c: &mut Arc<crossbeam_queue::ArrayQueue<Record>>| c.pop());
            v.visit(Setup {
                kind,
                producers,
                drainer: Drainer::Spinner(Spinner::spawn(name, params.poll, drain)),
            });
        }
        Kind::CrossbeamChannel => {
            let (tx, rx) = crossbeam_channel::bounded::<Record>(cap * n);
            let producers = (0..n).map(|_| CrossbeamSend(tx.clone())).collect();
            let drain = spsc_drain!([rx], |c: &mut crossbeam_channel::Receiver<Record>| c.try_recv().ok());
            v.visit(Setup {
                kind,
                producers,
                drainer: Drainer::Spinner(Spinner::spawn(name, params.poll, drain)),
            });
        }
        Kind::StdSyncChannel => {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Record>(cap * n);
            let producers = (0..n).map(|_| StdSend(tx.clone())).collect();
            let drain = spsc_drain!([rx], |c: &mut std::sync::mpsc::Receiver<Record>| c.try_recv().ok());
            v.visit(Setup {
                kind,
                producers,
                drainer: Drainer::Spinner(Spinner::spawn(name, params.poll, drain)),
            });
        }
        Kind::MutexVecDeque => {
            let q = Arc::new((Mutex::new(VecDeque::with_capacity(cap * n)), cap * n));
            let producers = (0..n).map(|_| MutexPush(q.clone())).collect();
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
            v.visit(Setup {
                kind,
                producers,
                drainer: Drainer::Spinner(Spinner::spawn(name, params.poll, drain)),
            });
        }
        Kind::GoDesign => {
            let (tx, rx) = crossbeam_channel::bounded::<GoEvent>(cap * n);
            let producers = (0..n).map(|_| GoSend(tx.clone())).collect();
            let drain = spsc_drain!([rx], |c: &mut crossbeam_channel::Receiver<GoEvent>| c.try_recv().ok());
            v.visit(Setup {
                kind,
                producers,
                drainer: Drainer::Spinner(Spinner::spawn(name, params.poll, drain)),
            });
        }
        Kind::PosthogRs => {
            let url = params.receiver_url.as_deref().expect("a receiver url");
            // Room for every lane fasthog gets, so neither client drops during a burst.
            let client = Arc::new(posthog_client(url, cap * n * 2, false));
            let producers = (0..n).map(|_| PosthogCapture(client.clone())).collect();
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
