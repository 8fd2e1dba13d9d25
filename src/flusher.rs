//! The flush loop: drain the lanes into batches, send them, retry what failed, account for
//! every event. An executor-agnostic future over a [`Transport`] and a [`Timer`]: the `std`
//! client runs it on a thread of its own; smol, tokio and embassy run it just as well.

use core::future::{poll_fn, Future};
use core::ops::ControlFlow;
use core::pin::{pin, Pin};
use core::task::Poll;

use crate::batch::{Batch, Batches, Encoder, Envelope, Pushed, HEAD_CAPACITY, TAIL};
use crate::filter::{Filter, Filtered};
use crate::queue::QueueParts;
use crate::ring::{HasLanes, LanesConsumer, LanesRef};
use crate::stats::Counters;
use crate::sync::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use crate::transport::{Request, Response, Transport, TransportError};
use crate::uuid::splitmix64;
use crate::Clock;
use atomic_waker::AtomicWaker;

/// Monotonic time and sleeping, from whatever executor runs the flusher.
pub trait Timer {
    /// Monotonic microseconds since any fixed point.
    fn now_us(&self) -> u64;
    /// Completes after about `us` microseconds.
    fn sleep_us(&self, us: u64) -> impl Future<Output = ()>;
}

impl<T: Timer + ?Sized> Timer for &T {
    fn now_us(&self) -> u64 {
        (**self).now_us()
    }
    fn sleep_us(&self, us: u64) -> impl Future<Output = ()> {
        (**self).sleep_us(us)
    }
}

/// Requests from the client to the flusher: flush, shut down. All methods are lock-free; a
/// request also wakes the flusher if it sleeps (an [`AtomicWaker`]: on `std`, one futex wake,
/// a syscall that flush and shutdown may make and capture never does).
#[derive(Debug, Default)]
pub struct Control {
    flush_requested: AtomicUsize,
    flush_completed: AtomicUsize,
    shutdown: AtomicBool,
    shutdown_grace_ms: AtomicUsize,
    /// When the shutdown was requested, in milliseconds of the flusher's [`Timer`], or
    /// `usize::MAX` for "when the flusher sees it".
    shutdown_requested_ms: AtomicUsize,
    finished: AtomicBool,
    /// Set with each request, cleared by the flusher when it wakes for it.
    woken: AtomicBool,
    waker: AtomicWaker,
}

impl Control {
    /// No requests yet.
    #[cfg(not(fasthog_loom))]
    pub const fn new() -> Self {
        Control {
            flush_requested: AtomicUsize::new(0),
            flush_completed: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            shutdown_grace_ms: AtomicUsize::new(0),
            shutdown_requested_ms: AtomicUsize::new(usize::MAX),
            finished: AtomicBool::new(false),
            woken: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    /// Asks for everything captured before this call to be delivered or failed, and wakes
    /// the flusher. Returns a ticket for [`Control::is_flushed`].
    pub fn request_flush(&self) -> usize {
        let ticket = self.flush_requested.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        self.wake();
        ticket
    }

    /// True once the flush with this ticket is complete (or the flusher has finished).
    pub fn is_flushed(&self, ticket: usize) -> bool {
        let done = self.flush_completed.load(Ordering::Acquire);
        done.wrapping_sub(ticket) as isize >= 0 || self.is_finished()
    }

    /// How many flushes have completed (wrapping): it changes whenever a flush completes, so a
    /// waiter can tell progress from a spurious wake-up.
    pub fn flushes_completed(&self) -> usize {
        self.flush_completed.load(Ordering::Acquire)
    }

    /// Asks the flusher to deliver what it can within `grace_ms` of when it sees the request
    /// (at once: the request wakes it), fail the rest, and stop. The first request's grace
    /// holds; later ones only wake the flusher again.
    pub fn request_shutdown(&self, grace_ms: u64) {
        self.request_shutdown_at(grace_ms, None);
    }

    /// [`Control::request_shutdown`], the grace counted from `now_ms`: the time of the call on
    /// the flusher's own [`Timer`] (in milliseconds), when the caller can read it.
    pub fn request_shutdown_at(&self, grace_ms: u64, now_ms: Option<u64>) {
        if !self.shutdown.load(Ordering::Acquire) {
            let grace = usize::try_from(grace_ms).unwrap_or(usize::MAX);
            let at = now_ms.and_then(|ms| usize::try_from(ms).ok()).filter(|&ms| ms != usize::MAX);
            self.shutdown_grace_ms.store(grace, Ordering::Relaxed);
            self.shutdown_requested_ms.store(at.unwrap_or(usize::MAX), Ordering::Relaxed);
            self.shutdown.store(true, Ordering::Release);
        }
        self.wake();
    }

    /// True once the flusher has stopped; then every captured event is counted.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// The grace and the request time (see [`Control::request_shutdown_at`]), once requested.
    fn shutdown_grace(&self) -> Option<(u64, Option<u64>)> {
        self.shutdown.load(Ordering::Acquire).then(|| {
            let at = self.shutdown_requested_ms.load(Ordering::Relaxed);
            (self.shutdown_grace_ms.load(Ordering::Relaxed) as u64, (at != usize::MAX).then_some(at as u64))
        })
    }

    fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Ready once a request was made since the last time this returned ready.
    fn poll_woken(&self, cx: &mut core::task::Context<'_>) -> Poll<()> {
        if self.woken.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        if self.woken.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// When and how often to retry. Defaults: 4 attempts in all, 100 ms doubling to 30 s with
/// jitter, `Retry-After` honoured as a minimum up to 30 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Wait before the first retry.
    pub initial_backoff_ms: u64,
    /// Longest wait between attempts.
    pub max_backoff_ms: u64,
    /// Longest `Retry-After` obeyed.
    pub max_retry_after_ms: u64,
}

impl RetryPolicy {
    /// The defaults.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        max_attempts: 4,
        initial_backoff_ms: 100,
        max_backoff_ms: 30_000,
        max_retry_after_ms: 30_000,
    };

    /// The wait before retry number `retry` (1-based): exponential, with the upper half
    /// jittered so clients that failed together do not retry together.
    pub fn backoff_ms(&self, retry: u32, random: u64) -> u64 {
        let exp = self.initial_backoff_ms.saturating_mul(1u64 << retry.saturating_sub(1).min(40));
        let full = exp.min(self.max_backoff_ms);
        full / 2 + random % (full / 2 + 1)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A drain pass that takes fewer events than this lengthens the next pause (while events
/// flow): see the flusher's loop.
const FEW_EVENTS: usize = 64;
/// The longest pause while events flow: 1 ms lets at most a millisecond of captures wait in
/// the lanes (8 MiB hold ~60,000 typical events by default), and sends start within 1 ms.
const BUSY_POLL_MAX_US: u64 = 1_000;

/// How the flusher paces itself. Defaults: flush every 10 s (the Go client's interval); poll
/// the lanes every 50 µs while events flow, backing off to every 5 ms when idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushConfig {
    /// Send a partial batch this often.
    pub flush_interval_ms: u64,
    /// Shortest pause between drains while events flow.
    pub poll_min_us: u64,
    /// Longest pause between drains when idle. Lanes must not fill in this time.
    pub poll_max_us: u64,
    /// Send the filling batch once it holds this many events, without waiting for it to be
    /// full. While every request slot is busy (or request spacing holds the next start back:
    /// see [`Flusher::run`]) the next batch keeps filling past this, up to the
    /// batch's capacity (its `Limits::max_events`), so a slow server gets bigger bodies, not
    /// more drops (posthog-node's `flushAt` and `maxBatchSize`). `usize::MAX`: only when full.
    pub send_at_events: usize,
    /// How long a batch that holds `send_at_events` may wait for more events, counted from the
    /// pass that drained its first event, unless it holds [`LINGER_ENDS_AT`] first. Under load
    /// this makes fewer, bigger requests (each costs more client CPU than compressing its
    /// events); a quiet client's batches go when they reach `send_at_events`, as they have
    /// waited longer than this already. 0: send at `send_at_events` at once.
    pub linger_us: u64,
    /// Retries.
    pub retry: RetryPolicy,
    /// Requests in flight at once, 1 to [`MAX_IN_FLIGHT`] (clamped into that range): batches
    /// sent while earlier ones wait for their responses, each retried, backed off and split
    /// on its own. With a server that takes 200 ms per response, one in flight delivers one
    /// batch per 200 ms; four deliver four. Each request in flight holds one of the batches
    /// until it is answered. Defaults to 4.
    pub requests_in_flight: usize,
}

/// Events that end a batch's linger (see [`FlushConfig::linger_us`]): ~400 KB of typical
/// events, enough for the per-request cost to be small, and four such batches in flight keep a
/// producer that waits on delivery (the sustained benchmark's) busy.
pub const LINGER_ENDS_AT: usize = 1_024;

/// Most requests one flusher keeps in flight: the flusher's future holds this many request
/// slots (each a `send` future and its retry state), used or not.
pub const MAX_IN_FLIGHT: usize = 8;

/// The longest that request spacing (see [`Spacing`]) delays a start: an answer that took
/// long (a timeout) must not hold the next requests back for as long.
const MAX_SPACING_US: u64 = 250_000;

/// Spaces request starts at least one response time divided by the requests in flight apart,
/// outside a flush. Against a server that answers slowly, requests that start together come
/// back together and, restarted at once, stay together: each flush then waited for a whole
/// round of them to end before its last batch could go (up to two response times). Spaced,
/// a slot frees every response time / `requests_in_flight`, and a flush or shutdown waits at
/// most that plus one response. No effect on throughput: `requests_in_flight` requests per
/// response time is already the most a server that slow takes.
#[derive(Debug, Default)]
struct Spacing {
    /// When the last request started (timer microseconds).
    last_start_us: u64,
    /// The spacing: the last response time / requests in flight, at most [`MAX_SPACING_US`];
    /// 0 until a response arrives.
    gap_us: u64,
}

impl Spacing {
    /// When the next request may start.
    fn next_start_us(&self) -> u64 {
        self.last_start_us.saturating_add(self.gap_us)
    }

    fn allows(&self, now_us: u64) -> bool {
        now_us >= self.next_start_us()
    }

    fn started(&mut self, now_us: u64) {
        self.last_start_us = now_us;
    }

    /// A response that took `response_us`, with `in_flight` requests allowed at once, all of
    /// them out (`saturated`; a slot only spacing keeps free counts as out) or not. Only a
    /// server that keeps every slot busy is spaced for: otherwise the requests are not what
    /// holds events back, and a delayed start would be (the sustained benchmark's producer,
    /// waiting on deliveries, fell from ~850k to ~670k events/s with spacing always on).
    fn answered(&mut self, response_us: u64, in_flight: usize, saturated: bool) {
        self.gap_us = if saturated { (response_us / in_flight as u64).min(MAX_SPACING_US) } else { 0 };
    }

    /// No request is out: the server holds nothing back now, so the next burst's requests go
    /// together (a gap left from a busy spell spaced them by up to 7 × 250 ms).
    fn idle(&mut self) {
        self.gap_us = 0;
    }
}

impl FlushConfig {
    /// The defaults.
    pub const DEFAULT: FlushConfig = FlushConfig {
        flush_interval_ms: 10_000,
        poll_min_us: 50,
        poll_max_us: 5_000,
        send_at_events: usize::MAX,
        linger_us: 5_000,
        retry: RetryPolicy::DEFAULT,
        requests_in_flight: 4,
    };
}

impl Default for FlushConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Batches in ring order: `sealed` from `head` (the first `in_flight` of them taken out to be
/// sent, each slot holding a placeholder until its batch comes back), then the one filling.
#[derive(Debug)]
struct Pool<P> {
    batches: P,
    head: usize,
    /// Sealed batches from `head`, those in flight included: in `0 ..= len`.
    sealed: usize,
    /// Of the sealed, how many from `head` were taken to be sent (some may be back, done,
    /// waiting for the ones before them): in `0 ..= sealed`.
    in_flight: usize,
    /// Batches sealed so far (wrapping): tells one filling batch from the next.
    seals: usize,
}

/// A batch taken from the pool and being delivered in a request slot.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    /// Its place in the pool's ring.
    ring: usize,
    /// Its `seq` (see [`Intake::flushed_through`]).
    seq: usize,
    /// Its events, all unconfirmed at the start.
    events: usize,
}

/// What the flusher does with drained events: everything but I/O.
struct Intake<'e, R: LanesRef, P> {
    consumer: LanesConsumer<R>,
    encoder: Encoder<'e>,
    pool: Pool<P>,
    /// Records drained so far (wrapping).
    drained: usize,
    /// Drops seen, for logging every 100th.
    dropped_logged: usize,
    /// When a requested shutdown must be done (timer microseconds).
    deadline: Option<u64>,
    /// The before-send filter, if any.
    filter: Option<Filter<'e>>,
}

/// A batch back from its request slot (its events all counted), and how long its last request
/// took to be answered, in timer microseconds.
struct Delivered<B, E> {
    batch: Batch<B, E>,
    response_us: u64,
}

/// How one delivery ended, or that it will be retried: what [`Flusher::on_delivery`] hears,
/// on the flusher's own thread (never on the capture path), once per outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome<'a> {
    /// The server accepted `events` with this 2xx status: they are counted `sent`.
    Sent {
        /// Events in the request.
        events: usize,
        /// The HTTP status.
        status: u16,
    },
    /// `events` are counted `failed`: the server refused them (`status`), or they got no
    /// answer in time (`status` is `None`, or the last one seen before giving up).
    Failed {
        /// Events failed.
        events: usize,
        /// The HTTP status that decided it, if any.
        status: Option<u16>,
        /// Why: the server's reason, the API key withheld (see
        /// [`Response::redacted_detail`]), or fasthog's own words (for a batch given up without
        /// an answer, they name the last attempt's [`TransportError`]).
        reason: &'a str,
    },
    /// An attempt failed and `events` will be sent again after `wait_ms`.
    Retrying {
        /// Events in the request.
        events: usize,
        /// The attempt that failed (1 for the first).
        attempt: u32,
        /// Its HTTP status; `None` for a transport error.
        status: Option<u16>,
        /// The wait before the next attempt.
        wait_ms: u64,
    },
}

/// The flush loop. Build it with [`Flusher::new`], then `.await` [`Flusher::run`] on any
/// executor. It returns after a shutdown request, once every captured event is counted.
pub struct Flusher<'e, R: LanesRef, T, Tm, C, P> {
    intake: Intake<'e, R, P>,
    jitter: u64,
    shared: Shared<'e, T, Tm, C>,
}

/// What the request slots share with the loop: the I/O, settings, and counts they add to
/// (atomics, so the flusher's future is `Send` when its parts are `Sync`), which the loop
/// moves into the queue's counters after each wake-up.
struct Shared<'e, T, Tm, C> {
    transport: T,
    timer: Tm,
    clock: C,
    envelope: Envelope<'e>,
    config: FlushConfig,
    on_delivery: Option<&'e (dyn Fn(&Outcome<'_>) + Sync)>,
    logged_final: AtomicU32,
    sent: AtomicUsize,
    failed: AtomicUsize,
    retried: AtomicUsize,
    /// Per slot: events of its batch counted sent or failed so far (the rest are failed if the
    /// shutdown deadline abandons it).
    settled: [AtomicUsize; MAX_IN_FLIGHT],
}

/// Declares `$slots`, an array of pinned, empty request slots (`Option` of one future type,
/// inferred from the first `set`), one pinned local each: pinned by `pin!`, with no `Pin::new_unchecked`.
macro_rules! pinned_slots {
    ($slots:ident; $($s:ident),+) => {
        $(let $s = pin!(None);)+
        let mut $slots = [$($s),+];
    };
}

impl<'e, R, T, Tm, C, P> Flusher<'e, R, T, Tm, C, P>
where
    R: LanesRef<Target: HasLanes + QueueParts>,
    T: Transport,
    Tm: Timer,
    C: Clock,
    P: Batches,
{
    /// A flusher draining `consumer`'s queue into `batches` (at least two; build each with
    /// [`Batch::new`] and the limits wanted), sending through `transport`. The batches hold
    /// events while requests are in flight or backing off (those in flight among them): give
    /// more than [`FlushConfig::requests_in_flight`], or every batch can be out with none
    /// filling. Past that, events wait in the lanes, and when they fill, capture drops and
    /// counts. The future `run` returns holds [`MAX_IN_FLIGHT`] request slots, each with a
    /// `send` future of `transport` and a 512-byte envelope head.
    #[allow(clippy::too_many_arguments)] // each part is its own type parameter; a builder would add types for no gain
    pub fn new(
        consumer: LanesConsumer<R>,
        transport: T,
        timer: Tm,
        clock: C,
        encoder: Encoder<'e>,
        envelope: Envelope<'e>,
        config: FlushConfig,
        batches: P,
    ) -> Self {
        let jitter = splitmix64(timer.now_us() ^ 0x5eed);
        Flusher {
            intake: Intake {
                consumer,
                encoder,
                pool: Pool { batches, head: 0, sealed: 0, in_flight: 0, seals: 0 },
                drained: 0,
                dropped_logged: 0,
                deadline: None,
                filter: None,
            },
            jitter,
            shared: Shared {
                transport,
                timer,
                clock,
                envelope,
                config,
                on_delivery: None,
                logged_final: AtomicU32::new(0),
                sent: AtomicUsize::new(0),
                failed: AtomicUsize::new(0),
                retried: AtomicUsize::new(0),
                settled: core::array::from_fn(|_| AtomicUsize::new(0)),
            },
        }
    }

    /// Calls `hook` for every [`Outcome`]: each batch (or part of a split batch) sent or
    /// failed, and each retry. It runs on the flusher's task (while the flusher polls its
    /// requests), so it should be quick (count, alert, forward to a channel); the flusher does
    /// not catch its panics.
    pub fn on_delivery(mut self, hook: &'e (dyn Fn(&Outcome<'_>) + Sync)) -> Self {
        self.shared.on_delivery = Some(hook);
        self
    }

    /// Runs `filter` on every event before encoding it (see [`crate::filter`]): events it
    /// drops are counted `filtered`, properties it removes `redacted`. It runs on the
    /// flusher's task; the flusher does not catch its panics (the std client does).
    pub fn before_send(mut self, filter: Filter<'e>) -> Self {
        self.intake.filter = Some(filter);
        self
    }

    /// Runs until shutdown is requested and done. Sends a batch as soon as it is full, and
    /// whatever is batched every flush interval, on a flush request and at shutdown, with up
    /// to [`FlushConfig::requests_in_flight`] requests at once; it drains the lanes while they
    /// are out. While a slow server keeps every request busy, starts are spaced by its response
    /// time / `requests_in_flight` (never during a flush or shutdown), so requests do not go
    /// and come back in rounds.
    pub async fn run(self) {
        let Flusher { intake, jitter, shared } = self;
        let mut state = Loop::new(intake, jitter, shared.config, shared.timer.now_us());
        pinned_slots!(slots; s0, s1, s2, s3, s4, s5, s6, s7);
        loop {
            let deadline = state.note_requests(shared.timer.now_us());
            let drained = state.drain(&shared.clock);
            let pass = state.seal_if_due(shared.timer.now_us(), deadline, drained);
            let pass = state.start_requests(pass, |i, batch, jitter| {
                shared.settled[i].store(0, Ordering::Relaxed);
                slots[i].set(Some(shared.deliver(i, batch, jitter)));
            });
            if pass.past_deadline {
                state.fail_unconfirmed(&shared, &mut slots);
                break;
            }
            if state.check_flush(pass).is_break() {
                break;
            }
            let pause_us = state.choose_pause(pass);
            let saturated = state.saturated(pass);
            let sleep = pin!((pause_us > 0).then(|| shared.timer.sleep_us(pause_us)));
            state.wait(&mut slots, sleep).await;
            state.take_back(saturated);
            shared.settle_counters(state.intake.counters());
        }
        state.finish(&shared);
    }
}

/// [`Flusher::run`]'s state from one pass to the next: the intake, what each request slot
/// holds, and the pacing. The slots' futures themselves stay pinned in `run`.
struct Loop<'e, R: LanesRef, P: Batches> {
    intake: Intake<'e, R, P>,
    config: FlushConfig,
    /// `config.requests_in_flight`, clamped to `1 ..= MAX_IN_FLIGHT`.
    in_flight: usize,
    /// The flush interval in microseconds.
    interval_us: u64,
    /// When the interval next makes the filling batch due (timer microseconds).
    next_flush: u64,
    /// The pause between passes (see [`Loop::choose_pause`]).
    poll_us: u64,
    /// When the filling batch took its first event (timer microseconds), and which batch
    /// that was (the pool's seal count then).
    filling_since: Option<(usize, u64)>,
    /// A flush in progress: (ticket, push count to drain, drain count to deliver; see
    /// `Intake::flushed_through`).
    flush: Option<(usize, usize, Option<usize>)>,
    /// `meta[i]` describes the batch whose delivery request slot `i` runs, and `done[i]`
    /// holds it when it comes back.
    meta: [Option<InFlight>; MAX_IN_FLIGHT],
    done: [Option<Delivered<P::Bytes, P::Ends>>; MAX_IN_FLIGHT],
    spacing: Spacing,
    /// Seeds each request's retry jitter.
    jitter: u64,
}

/// What one pass found and decided, for its later steps. Passed by value: borrowed, it would
/// be kept in the flusher's future across the wait.
#[derive(Clone, Copy)]
struct Pass {
    /// The pass's time (timer microseconds), read after draining.
    now: u64,
    /// When a requested shutdown must be done.
    deadline: Option<u64>,
    /// `now` is at or past the deadline: fail what is unconfirmed and stop.
    past_deadline: bool,
    /// Events the drain took.
    drained: usize,
    /// Request slots in use.
    active: usize,
    /// A flush (or shutdown) is in progress: it sends at once; otherwise starts are spaced.
    flushing: bool,
    /// The filling batch is due (the interval, a flush, `send_at_events`).
    due: bool,
    /// When the filling batch's linger ends, if only the linger keeps it from being due.
    linger_ends: Option<u64>,
    /// A slot is free for a due or waiting batch, but spacing holds the start back.
    held_by_spacing: bool,
}

// The steps `run` calls every pass are `#[inline(always)]`: as calls they cost ~20 more
// instructions a pass (callgrind, tests/flusher_clock.rs), as the loop was one function.
impl<'e, R, P> Loop<'e, R, P>
where
    R: LanesRef<Target: HasLanes + QueueParts>,
    P: Batches,
{
    fn new(intake: Intake<'e, R, P>, jitter: u64, config: FlushConfig, now_us: u64) -> Self {
        let interval_us = config.flush_interval_ms.saturating_mul(1000);
        Loop {
            intake,
            config,
            in_flight: config.requests_in_flight.clamp(1, MAX_IN_FLIGHT),
            interval_us,
            next_flush: now_us.saturating_add(interval_us),
            poll_us: config.poll_min_us,
            filling_since: None,
            flush: None,
            meta: [None; MAX_IN_FLIGHT],
            done: core::array::from_fn(|_| None),
            spacing: Spacing::default(),
            jitter,
        }
    }

    /// Notes a shutdown request (returns its deadline) and a flush request (starts a flush).
    #[inline(always)]
    fn note_requests(&mut self, now_us: u64) -> Option<u64> {
        let deadline = self.intake.deadline(now_us);
        let control = self.intake.control();
        let requested = control.flush_requested.load(Ordering::Acquire);
        // A flush's target is fixed when the flush starts: re-reading it on every pass made
        // it move ahead of the flusher while other threads kept capturing, so `flush`
        // never completed under steady load. Requests made meanwhile are served by the
        // next flush (its target is later, so it covers them). At shutdown the target
        // follows every push, as capture is closed by then.
        if deadline.is_some()
            || (self.flush.is_none() && requested != control.flush_completed.load(Ordering::Relaxed))
        {
            // Everything pushed so far (acquired above, after the request) must go out.
            let target = self.intake.queue_parts_pushed();
            self.flush = Some((requested, target, None));
        }
        deadline
    }

    /// Drains the lanes into batches and notes when a flush's target is drained. Returns
    /// events taken.
    #[inline(always)]
    fn drain(&mut self, clock: &impl Clock) -> usize {
        let drained = self.intake.drain(clock);
        if let Some((_, pushed, seq @ None)) = &mut self.flush {
            *seq = self.intake.drained_past(*pushed);
        }
        drained
    }

    /// Seals the filling batch when it is due (the interval, a flush, `send_at_events`) and
    /// a request slot is free for it at once. While every slot is busy it keeps filling, up
    /// to its capacity: a slow server gets bigger bodies, not a queue of small ones. (The
    /// interval restarts when it is served: it used to restart only on an idle pass, so a
    /// steady trickle made one small request per round trip.)
    #[inline(always)]
    fn seal_if_due(&mut self, now: u64, deadline: Option<u64>, drained: usize) -> Pass {
        let active = self.meta.iter().flatten().count();
        if active == 0 {
            self.spacing.idle();
        }
        let interval_due = now >= self.next_flush;
        let (full_enough, linger_ends) = self.full_enough(now);
        let flushing = self.flush.is_some();
        let due = interval_due || flushing || full_enough;
        // A flush (or shutdown) sends at once; otherwise starts are spaced.
        if due
            && (flushing || self.spacing.allows(now))
            && active < self.in_flight
            && self.intake.pool.waiting() == 0
        {
            if interval_due {
                self.next_flush = now.saturating_add(self.interval_us);
            }
            self.intake.seal_filling();
        }
        let past_deadline = deadline.is_some_and(|d| now >= d);
        Pass {
            now,
            deadline,
            past_deadline,
            drained,
            active,
            flushing,
            due,
            linger_ends,
            held_by_spacing: false,
        }
    }

    /// Whether the filling batch holds `send_at_events` and has lingered long enough (or
    /// holds [`LINGER_ENDS_AT`]); if it holds them but lingers on, when its linger ends.
    #[inline(always)]
    fn full_enough(&mut self, now: u64) -> (bool, Option<u64>) {
        let config = &self.config;
        let filling = self.intake.pool.filling().map_or(0, |b| b.len());
        // Keyed by the pool's seal count, so a batch sealed anywhere (here, or full inside
        // `drain`) starts the next one's linger afresh.
        let seals = self.intake.pool.seals;
        if filling == 0 {
            self.filling_since = None;
        } else if self.filling_since.is_none_or(|(of, _)| of != seals) {
            self.filling_since = Some((seals, now));
        }
        let lingering = self.filling_since.map(|(_, since)| since);
        let full_enough = filling >= config.send_at_events
            && (filling >= LINGER_ENDS_AT.max(config.send_at_events)
                || lingering.is_some_and(|since| now.saturating_sub(since) >= config.linger_us));
        let linger_ends = lingering
            .filter(|_| filling >= config.send_at_events && !full_enough)
            .map(|since| since.saturating_add(config.linger_us));
        (full_enough, linger_ends)
    }

    /// Takes each sealed batch waiting, while slots are free (and spacing allows, outside a
    /// flush), and hands it to `start` with its slot and a retry jitter; none past the
    /// deadline.
    #[inline(always)]
    fn start_requests(
        &mut self,
        mut pass: Pass,
        mut start: impl FnMut(usize, Batch<P::Bytes, P::Ends>, u64),
    ) -> Pass {
        let now = pass.now;
        while !pass.past_deadline
            && pass.active < self.in_flight
            && self.intake.pool.waiting() > 0
            && (pass.flushing || self.spacing.allows(now))
        {
            let (ring, batch) = self.intake.pool.take_next();
            let i = self.meta.iter().position(Option::is_none).unwrap_or_default();
            self.meta[i] = Some(InFlight { ring, seq: batch.seq, events: batch.len() });
            self.jitter = splitmix64(self.jitter);
            start(i, batch, self.jitter);
            self.spacing.started(now);
            pass.active += 1;
        }
        pass.held_by_spacing = pass.active < self.in_flight
            && (pass.due || self.intake.pool.waiting() > 0)
            && !(pass.flushing || self.spacing.allows(now));
        pass
    }

    /// At the shutdown deadline: drops every request and fails what no response confirmed in
    /// time, batch by batch.
    fn fail_unconfirmed<T, Tm, C, F>(
        &mut self,
        shared: &Shared<'_, T, Tm, C>,
        slots: &mut [Pin<&mut Option<F>>; MAX_IN_FLIGHT],
    ) {
        shared.settle_counters(self.intake.counters());
        let mut left = 0;
        for (i, (slot, m)) in slots.iter_mut().zip(&mut self.meta).enumerate() {
            slot.set(None); // the request is dropped
            let Some(InFlight { events, .. }) = m.take() else { continue };
            let unconfirmed = events.saturating_sub(shared.settled[i].load(Ordering::Relaxed));
            if unconfirmed > 0 {
                left += unconfirmed;
                let reason = "shutdown deadline passed";
                shared.report(Outcome::Failed { events: unconfirmed, status: None, reason });
            }
        }
        Counters::add(&self.intake.counters().failed, left);
        if left > 0 {
            log::warn!("fasthog: shutdown deadline passed, {left} events in flight not confirmed");
        }
    }

    /// Completes the flush in progress once all it covers is delivered or failed; at
    /// shutdown, breaks once that is so and no request is out.
    #[inline(always)]
    fn check_flush(&mut self, pass: Pass) -> ControlFlow<()> {
        let Some((ticket, pushed, seq)) = self.flush else { return ControlFlow::Continue(()) };
        if self.intake.flushed_through(pushed, seq, &self.meta) {
            if pass.deadline.is_some() {
                if pass.active == 0 {
                    return ControlFlow::Break(());
                }
            } else {
                self.intake.control().flush_completed.store(ticket, Ordering::Release);
                self.flush = None;
            }
        } else {
            // Producers still writing into claimed shared slots: look again soon.
            self.poll_us = self.config.poll_min_us;
        }
        ControlFlow::Continue(())
    }

    /// The pause before the next pass (0: none, only a yield), cut short by the deadline, a
    /// lingering batch's end and the spacing.
    #[inline(always)]
    fn choose_pause(&mut self, pass: Pass) -> u64 {
        let config = &self.config;
        // Events flowing fast: poll the requests and drain again without sleeping. Flowing
        // slowly: lengthen the pause until a pass drains a few dozen events (up to 1 ms),
        // as each wake-up costs more than the events it drains at lower rates (paced at
        // 200k/s, 50 µs pauses drained ~10 events each: README design notes). Four times
        // longer per pass, not twice: a completed request resets the pause to the shortest
        // (a producer waiting on delivery refills at once), and climbing back to 1 ms by
        // doubling took five wake-ups, each making a small request of its own.
        let busy_max_us = BUSY_POLL_MAX_US.min(config.poll_max_us).max(config.poll_min_us);
        if pass.drained >= 256 {
            return 0;
        }
        if pass.drained >= FEW_EVENTS {
            self.poll_us = self.poll_us.min(busy_max_us);
        } else if pass.drained > 0 {
            self.poll_us = self.poll_us.saturating_mul(4).clamp(config.poll_min_us, busy_max_us);
        } else {
            self.poll_us = self.poll_us.saturating_mul(2).min(config.poll_max_us.max(1));
        }
        let now = pass.now;
        let mut pause = pass.deadline.map_or(self.poll_us, |d| self.poll_us.min(d - now));
        if let Some(ends) = pass.linger_ends {
            pause = pause.min(ends.saturating_sub(now));
        }
        if pass.held_by_spacing {
            pause = pause.min(self.spacing.next_start_us().saturating_sub(now));
        }
        pause.max(1)
    }

    /// Every slot busy, or the one free only held back by spacing (see [`Spacing::answered`]),
    /// as the pass leaves them (the wait only fills `done`).
    #[inline(always)]
    fn saturated(&self, pass: Pass) -> bool {
        pass.active + usize::from(pass.held_by_spacing) >= self.in_flight
    }

    /// Waits for a request to end (its batch goes to `done`), a flush or shutdown request,
    /// or the `sleep` (with none, yields once). Not an `async fn`: its own state machine, a
    /// state inside `run`'s, cost ~30 instructions a pass.
    fn wait<'a, 'b, F, S>(
        &'a mut self,
        slots: &'a mut [Pin<&'b mut Option<F>>; MAX_IN_FLIGHT],
        mut sleep: Pin<&'a mut Option<S>>,
    ) -> impl Future<Output = ()> + use<'a, 'b, R, P, F, S>
    where
        F: Future<Output = Delivered<P::Bytes, P::Ends>>,
        S: Future<Output = ()>,
    {
        let control = self.intake.control();
        let done = &mut self.done;
        let mut yielded = false;
        poll_fn(move |cx| {
            let mut ready = false;
            for (slot, out) in slots.iter_mut().zip(&mut *done) {
                if let Some(fut) = slot.as_mut().as_pin_mut() {
                    if let Poll::Ready(back) = fut.poll(cx) {
                        *out = Some(back);
                        slot.set(None);
                        ready = true;
                    }
                }
            }
            if ready || control.poll_woken(cx).is_ready() {
                return Poll::Ready(());
            }
            match sleep.as_mut().as_pin_mut() {
                Some(sleep) => sleep.poll(cx),
                None if yielded => Poll::Ready(()),
                None => {
                    // No pause: yield to the executor once rather than loop inside one
                    // poll, so what runs beside the flusher on its executor (the client's
                    // clock refresh and flush notifications) runs between busy passes.
                    yielded = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }
        })
    }

    /// Batches back from their requests go back to the pool, emptied; their response times
    /// set the spacing.
    #[inline(always)]
    fn take_back(&mut self, saturated: bool) {
        for (m, out) in self.meta.iter_mut().zip(&mut self.done) {
            if let Some(Delivered { mut batch, response_us }) = out.take() {
                self.spacing.answered(response_us, self.in_flight, saturated);
                let ring = m.take().map_or(0, |m| m.ring);
                batch.clear();
                self.intake.pool.put_back(ring, batch);
                self.poll_us = self.config.poll_min_us;
            }
        }
        let meta = &self.meta;
        self.intake.pool.advance(|ring| meta.iter().flatten().any(|m| m.ring == ring));
    }

    /// After the last pass: fails what is left, completes every flush, and marks the
    /// flusher finished.
    fn finish<T, Tm, C>(mut self, shared: &Shared<'_, T, Tm, C>) {
        shared.settle_counters(self.intake.counters());
        let left = self.intake.fail_everything_left();
        if left > 0 {
            shared.report(Outcome::Failed { events: left, status: None, reason: "stopped before delivery" });
        }
        let control = self.intake.control();
        control.flush_completed.store(control.flush_requested.load(Ordering::Acquire), Ordering::Release);
        control.finished.store(true, Ordering::Release);
    }
}

impl<T, Tm, C> Shared<'_, T, Tm, C> {
    fn report(&self, outcome: Outcome<'_>) {
        if let Some(hook) = self.on_delivery {
            hook(&outcome);
        }
    }

    /// Moves what the requests counted into the queue's counters.
    fn settle_counters(&self, counters: &Counters) {
        Counters::add(&counters.sent, self.sent.swap(0, Ordering::Relaxed));
        Counters::add(&counters.failed, self.failed.swap(0, Ordering::Relaxed));
        Counters::add(&counters.retried, self.retried.swap(0, Ordering::Relaxed));
    }

    /// `n` events of slot `slot`'s batch sent (or, with `sent` false, failed).
    fn settle(&self, slot: usize, n: usize, sent: bool) {
        let to = if sent { &self.sent } else { &self.failed };
        to.fetch_add(n, Ordering::Relaxed);
        self.settled[slot].fetch_add(n, Ordering::Relaxed);
    }
}

impl<'e, T, Tm, C> Shared<'e, T, Tm, C>
where
    T: Transport,
    Tm: Timer,
    C: Clock,
{
    /// Delivers one batch in request slot `slot`, with retries, backoff and 413 splitting,
    /// and hands it back. The flusher drops the future at the shutdown deadline and
    /// fails what `settled[slot]` does not cover.
    async fn deliver<B2, E2>(&self, slot: usize, batch: Batch<B2, E2>, mut jitter: u64) -> Delivered<B2, E2>
    where
        B2: AsRef<[u8]> + AsMut<[u8]>,
        E2: AsRef<[u32]> + AsMut<[u32]>,
    {
        // Ranges still to send, as a stack: a 413 replaces a range by its halves. Depth is at
        // most log2(events) + 1.
        let mut stack = [(0usize, 0usize); 40];
        stack[0] = (0, batch.len());
        let mut depth = 1;
        // Whether the server accepted any part of this batch. A 413 for a single event is only
        // "too large on its own" when it did: a server that refused every half down to one
        // event refuses any body, and is backed off like a 5xx (splitting on with no pause
        // made 127 requests of each 64-event batch, thousands a second).
        let mut accepted_any = false;
        let mut response_us = 0;
        while depth > 0 {
            depth -= 1;
            let (start, end) = stack[depth];
            let n = end - start;
            let mut attempt = 0;
            loop {
                attempt += 1;
                let mut head = [0u8; HEAD_CAPACITY];
                let now_unix = self.clock.unix_nanos(self.clock.tick());
                let head_len = self.envelope.write_head(now_unix, &mut head);
                let request = Request {
                    head: &head[..head_len],
                    events: batch.events(start..end),
                    tail: TAIL,
                    event_count: n,
                    attempt,
                };
                let asked_us = self.timer.now_us();
                let outcome = self.transport.send(request).await;
                response_us = self.timer.now_us().saturating_sub(asked_us);
                let retry_after = match outcome {
                    Ok(resp) if resp.is_success() => {
                        self.settle(slot, n, true);
                        accepted_any = true;
                        self.report(Outcome::Sent { events: n, status: resp.status });
                        break;
                    }
                    Ok(resp) if resp.status == 413 && n > 1 => {
                        let mid = start + n / 2;
                        stack[depth] = (mid, end);
                        stack[depth + 1] = (start, mid);
                        depth += 2;
                        break;
                    }
                    Ok(resp) if resp.status == 413 && !accepted_any => resp.retry_after_ms,
                    Ok(resp) if !is_retryable(resp.status) => {
                        self.settle(slot, n, false);
                        self.log_final(&resp, n);
                        let reason = resp.redacted_detail(self.envelope.api_key);
                        let status = Some(resp.status);
                        self.report(Outcome::Failed { events: n, status, reason: reason.as_str() });
                        break;
                    }
                    Ok(resp) => resp.retry_after_ms,
                    Err(err) => {
                        log::debug!("fasthog: attempt {attempt} failed: {err}");
                        None
                    }
                };
                if attempt >= self.config.retry.max_attempts {
                    if matches!(outcome, Ok(resp) if resp.status == 413) {
                        // Refused even alone, every time, and nothing of the batch accepted:
                        // the rest of the batch would fare no better.
                        let left: usize = n + stack[..depth].iter().map(|(s, e)| e - s).sum::<usize>();
                        self.settle(slot, left, false);
                        log::warn!(
                            "fasthog: PostHog refused even a single event with HTTP 413, {attempt} times; \
                             giving up on the {left} events left of this batch"
                        );
                        let reason = "refused even a single event (413), every attempt";
                        self.report(Outcome::Failed { events: left, status: Some(413), reason });
                        return Delivered { batch, response_us };
                    }
                    self.settle(slot, n, false);
                    log::warn!("fasthog: giving up on {n} events after {attempt} attempts");
                    let (status, reason) = match outcome {
                        Ok(resp) => (Some(resp.status), "retries exhausted"),
                        Err(err) => (None, exhausted_reason(err)),
                    };
                    self.report(Outcome::Failed { events: n, status, reason });
                    break;
                }
                self.retried.fetch_add(1, Ordering::Relaxed);
                jitter = splitmix64(jitter);
                let policy = self.config.retry;
                let mut wait_ms = policy.backoff_ms(attempt, jitter);
                if let Some(ms) = retry_after {
                    wait_ms = wait_ms.max(ms.min(policy.max_retry_after_ms));
                }
                let status = outcome.ok().map(|r| r.status);
                self.report(Outcome::Retrying { events: n, attempt, status, wait_ms });
                let until = self.timer.now_us().saturating_add(wait_ms.saturating_mul(1000));
                sleep_until(&self.timer, until).await;
            }
        }
        Delivered { batch, response_us }
    }

    /// Logs a final (not retried) refusal: the first of each, then every 100th, with the
    /// server's reason, the API key withheld from it.
    fn log_final(&self, resp: &Response, n: usize) {
        let logged = self.logged_final.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if logged % 100 != 1 {
            return;
        }
        let detail = resp.redacted_detail(self.envelope.api_key);
        let hint = match resp.status {
            300..=399 => " (a redirect, not followed: set the host to where it points)",
            401 => " (check the project API key)",
            413 => " (one event is too large on its own)",
            _ => "",
        };
        log::error!("fasthog: PostHog refused {n} events with HTTP {}{hint}: {detail}", resp.status);
    }
}

impl<'e, R, P> Intake<'e, R, P>
where
    R: LanesRef<Target: HasLanes + QueueParts>,
    P: Batches,
{
    fn control(&self) -> &Control {
        self.consumer.owner().control()
    }

    /// The shutdown deadline, fixed when the request is first seen. Checked between polls of
    /// an in-flight request and during backoff too (before, a shutdown that arrived then was
    /// only seen after the request finished: up to the HTTP timeout, or a whole backoff).
    fn deadline(&mut self, now_us: u64) -> Option<u64> {
        if self.deadline.is_none() {
            if let Some((grace_ms, at_ms)) = self.control().shutdown_grace() {
                // From the call when the caller said when it was (never later than now).
                let from = at_ms.map_or(now_us, |ms| ms.saturating_mul(1000).min(now_us));
                self.deadline = Some(from.saturating_add(grace_ms.saturating_mul(1000)));
            }
        }
        self.deadline
    }

    fn counters(&self) -> &Counters {
        self.consumer.owner().counters()
    }

    fn queue_parts_pushed(&self) -> usize {
        self.consumer.owner().lanes().totals().pushed
    }

    /// Encodes waiting entries into the filling batch, sealing batches as they fill. Takes
    /// only what the batches have room for: the rest waits in the lanes, and when they fill,
    /// capture itself reports `Dropped` (rather than `Queued` for an event the flusher would
    /// then drop). Returns entries taken.
    fn drain(&mut self, clock: &impl Clock) -> usize {
        let Intake { consumer, encoder, pool, drained, filter, .. } = self;
        let mut notes = crate::batch::Notes::default();
        let (mut rejected, mut filtered, mut redacted) = (0, 0, 0);
        let taken = consumer.drain(|entry| {
            // Filter only an entry a batch can take now (one that waits would be filtered
            // again), before encoding it.
            if pool.filling().is_none() {
                return false;
            }
            // Removals are counted once the entry is in a batch: one left waiting in its lane
            // is filtered again on a later pass.
            let (entry, removed) = match filter.as_mut().map(|f| f.apply(entry)) {
                None => (entry, 0),
                Some(Filtered::Send { entry, removed }) => (entry, removed),
                Some(Filtered::Drop) => {
                    *drained = drained.wrapping_add(1);
                    filtered += 1;
                    return true;
                }
            };
            loop {
                let seq = drained.wrapping_add(1);
                let Some(batch) = pool.filling() else {
                    return false; // every batch is sealed: leave the entry first in its lane
                };
                match batch.push(encoder, entry, clock) {
                    Pushed::Added(n) => {
                        *drained = seq;
                        redacted += removed;
                        if batch.len() == 1 {
                            batch.seq = seq;
                        }
                        notes.non_finite += n.non_finite;
                        notes.truncated += n.truncated;
                        notes.props_dropped += n.props_dropped;
                        if batch.is_full() {
                            pool.seal();
                        }
                        return true;
                    }
                    Pushed::Full => pool.seal(), // then try the next batch
                    Pushed::TooLarge | Pushed::Invalid => {
                        *drained = seq;
                        rejected += 1;
                        return true;
                    }
                }
            }
        });
        let counters = self.counters();
        Counters::add(&counters.non_finite, notes.non_finite);
        Counters::add(&counters.truncated, notes.truncated);
        Counters::add(&counters.props_dropped, notes.props_dropped);
        Counters::add(&counters.rejected, rejected);
        Counters::add(&counters.filtered, filtered);
        Counters::add(&counters.redacted, redacted);
        if rejected > 0 {
            log::warn!("fasthog: rejected {rejected} events over the per-event size limit or refused by PostHog's rules");
        }
        self.log_drops();
        taken.events
    }

    /// The Go client's warning on the 1st, 101st, 201st... dropped event, logged here rather
    /// than on the capture path (a log call may allocate and make syscalls).
    fn log_drops(&mut self) {
        let total = self.consumer.owner().stats().dropped as usize;
        if total / 100 != self.dropped_logged / 100 || (total > 0 && self.dropped_logged == 0) {
            log::warn!("fasthog: queue full, dropping events (total dropped: {total})");
            self.dropped_logged = total;
        }
    }

    fn seal_filling(&mut self) {
        if self.pool.filling().is_some_and(|b| !b.is_empty()) {
            self.pool.seal();
        }
    }

    /// The drain count now, once `pushed` records (a push count read after a flush request)
    /// have been drained; `None` before. Every record captured before the request has then
    /// been drained, so its `seq` is at most the count returned.
    fn drained_past(&self, pushed: usize) -> Option<usize> {
        ((self.drained.wrapping_sub(pushed) as isize) >= 0).then_some(self.drained)
    }

    /// True when every record captured before a flush request has been delivered or failed:
    /// `pushed` records are drained and no batch holds one drained at or before `seq` (from
    /// [`Intake::drained_past`]; with `None`, only an empty pool will do).
    ///
    /// `seq` is in drain order, which is not push order across lanes (lanes are drained one
    /// after another), so it must not be compared with a push count: that let a flush
    /// complete while an earlier event from a later-drained lane was still unsent.
    fn flushed_through(&mut self, pushed: usize, seq: Option<usize>, in_flight: &[Option<InFlight>]) -> bool {
        if (self.drained.wrapping_sub(pushed) as isize) < 0 {
            return false;
        }
        let oldest = self
            .pool
            .oldest_unsent(|ring| in_flight.iter().flatten().find(|m| m.ring == ring).map(|m| m.seq));
        match (oldest, seq) {
            (None, _) => true,
            (Some(oldest), Some(seq)) => (oldest.wrapping_sub(seq) as isize) > 0,
            (Some(_), None) => false,
        }
    }

    /// At the end: every event still batched or waiting in a lane is failed. Returns how many.
    fn fail_everything_left(&mut self) -> usize {
        let mut left = self.pool.clear_all();
        left += self.consumer.drain(|_| true).events;
        Counters::add(&self.counters().failed, left);
        if left > 0 {
            log::warn!("fasthog: stopped with {left} events undelivered");
        }
        left
    }
}

impl<P: Batches> Pool<P> {
    fn len(&mut self) -> usize {
        self.batches.batches().len()
    }

    /// The batch being filled, unless every other slot is sealed.
    fn filling(&mut self) -> Option<&mut Batch<P::Bytes, P::Ends>> {
        let len = self.len();
        if self.sealed >= len {
            return None;
        }
        let i = (self.head + self.sealed) % len;
        Some(&mut self.batches.batches()[i])
    }

    /// Seals the filling batch. With every slot sealed, `filling` returns `None` (and events
    /// are dropped) until the head is sent.
    fn seal(&mut self) {
        if self.sealed < self.len() {
            self.sealed += 1;
            self.seals = self.seals.wrapping_add(1);
        }
    }

    /// Sealed batches not yet taken to be sent.
    fn waiting(&self) -> usize {
        self.sealed - self.in_flight
    }

    /// Takes the oldest sealed batch not in flight (there must be one), leaving a placeholder;
    /// returns its place in the ring.
    fn take_next(&mut self) -> (usize, Batch<P::Bytes, P::Ends>) {
        debug_assert!(self.waiting() > 0);
        let ring = (self.head + self.in_flight) % self.len();
        self.in_flight += 1;
        (ring, core::mem::take(&mut self.batches.batches()[ring]))
    }

    /// Puts a delivered (emptied) batch back in its place. Its slot is reused once every
    /// batch before it is back too ([`Pool::advance`]).
    fn put_back(&mut self, ring: usize, batch: Batch<P::Bytes, P::Ends>) {
        self.batches.batches()[ring] = batch;
    }

    /// Frees the slots at `head` whose batches are back (`out(ring)` is false), in order.
    fn advance(&mut self, out: impl Fn(usize) -> bool) {
        while self.in_flight > 0 && !out(self.head) {
            self.head = (self.head + 1) % self.len();
            self.sealed -= 1;
            self.in_flight -= 1;
        }
        debug_assert!(self.in_flight <= self.sealed && self.sealed <= self.len());
    }

    /// The `seq` of the oldest batch holding undelivered events, in flight (`in_flight(ring)`
    /// gives its `seq`: its slot holds a placeholder) or not.
    fn oldest_unsent(&mut self, in_flight: impl Fn(usize) -> Option<usize>) -> Option<usize> {
        let len = self.len();
        let (head, sealed, taken) = (self.head, self.sealed.min(len - 1), self.in_flight);
        let batches = self.batches.batches();
        (0..=sealed).find_map(|k| {
            let ring = (head + k) % len;
            if k < taken {
                return in_flight(ring);
            }
            let b = &batches[ring];
            (!b.is_empty()).then_some(b.seq)
        })
    }

    fn clear_all(&mut self) -> usize {
        let mut n = 0;
        for b in self.batches.batches() {
            n += b.len();
            b.clear();
        }
        self.sealed = 0;
        self.in_flight = 0;
        n
    }
}

/// Why a batch was given up when its last attempt got no answer: what [`Outcome::Failed`]
/// reports (a transport's own words as they are).
fn exhausted_reason(err: TransportError) -> &'static str {
    match err {
        TransportError::Connect => "retries exhausted; last attempt: could not connect",
        TransportError::Timeout => "retries exhausted; last attempt: timed out",
        TransportError::Io => "retries exhausted; last attempt: connection failed",
        TransportError::Other(what) => what,
    }
}

/// 408, 429 and 5xx are worth retrying; other statuses will not change.
fn is_retryable(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

async fn sleep_until(timer: &impl Timer, until_us: u64) {
    let now = timer.now_us();
    if until_us > now {
        timer.sleep_us(until_us - now).await;
    }
}
