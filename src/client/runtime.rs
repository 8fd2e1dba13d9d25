//! The `std` runtime pieces: clocks for capture, and the flusher thread's executor and timer.

use core::cell::Cell;
use core::future::Future;
use core::pin::{pin, Pin};
use core::task::{Context, Poll, Waker};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Wake;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::flusher::Timer;
use crate::Clock;

/// A TSC clock (`quanta`): a capture reads the counter (a few nanoseconds, no syscall); the
/// encoder converts ticks to wall time from an anchor taken when the clock was made.
#[derive(Debug, Clone)]
pub struct TscClock {
    clock: quanta::Clock,
    anchor_raw: u64,
    anchor_unix_nanos: u64,
}

impl TscClock {
    /// Calibrates the TSC (once per process, done by `quanta`) and anchors it to now.
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let anchor_raw = clock.raw();
        let anchor_unix_nanos =
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        TscClock { clock, anchor_raw, anchor_unix_nanos }
    }
}

impl Default for TscClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TscClock {
    #[inline(always)]
    fn tick(&self) -> u64 {
        self.clock.raw()
    }

    fn unix_nanos(&self, tick: u64) -> u64 {
        self.anchor_unix_nanos + self.clock.delta_as_nanos(self.anchor_raw, tick)
    }
}

/// The wall clock through `SystemTime`: a syscall-free vDSO read on Linux but ~40 ns; for
/// tests and for platforms where the TSC is not usable.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn tick(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    }
    fn unix_nanos(&self, tick: u64) -> u64 {
        tick
    }
}

/// A flusher timer on smol (async-io), for a [`Flusher`](crate::flusher::Flusher) run on a
/// smol executor. The client's own flusher thread uses a cheaper one of its own.
#[derive(Debug, Clone, Copy)]
pub struct SmolTimer {
    start: Instant,
}

impl SmolTimer {
    /// A timer counting from now.
    pub fn new() -> Self {
        SmolTimer { start: Instant::now() }
    }
}

impl Default for SmolTimer {
    fn default() -> Self {
        Self::new()
    }
}

impl Timer for SmolTimer {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    async fn sleep_us(&self, us: u64) {
        smol::Timer::after(Duration::from_micros(us)).await;
    }
}

std::thread_local! {
    /// The earliest instant a [`ParkTimer`] sleep polled in this pass of [`block_on`] waits for.
    static WAKE_AT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `future` to its end on this thread: polls it, then parks the thread until a waker
/// fires or the earliest [`ParkTimer`] sleep polled in that pass is due. The flusher thread's
/// executor: a pause is one wait on a parker (a futex), where async-io's `block_on` and
/// timers spent six system calls on it (a reactor wake-up for each new timer, epoll
/// re-arming, the timerfd: README design notes).
///
/// Sleeps are registered per pass, so the future must poll every sleep it waits on each time
/// it is polled: `poll_fn` and `or` do, which is all the flusher thread runs.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(parking::Unparker);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    // A parker of its own, not the thread's: a user's filter, hook or logger that parks on
    // this thread would take the thread's token, and a wake-up with it.
    let (parker, unparker) = parking::pair();
    let waker = Waker::from(Arc::new(Unpark(unparker)));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        WAKE_AT.set(None);
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        match WAKE_AT.get() {
            Some(at) => {
                parker.park_deadline(at);
            }
            None => parker.park(),
        }
    }
}

/// The flusher thread's timer: its sleeps wake only under [`block_on`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParkTimer {
    start: Instant,
}

impl ParkTimer {
    /// A timer counting from now.
    pub(crate) fn new() -> Self {
        ParkTimer { start: Instant::now() }
    }

    /// Has this pass of [`block_on`] park no later than `at`.
    fn wake_by(at: Instant) {
        WAKE_AT.set(Some(WAKE_AT.get().map_or(at, |earliest| earliest.min(at))));
    }
}

impl Timer for ParkTimer {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    async fn sleep_us(&self, us: u64) {
        Sleep { at: Instant::now() + Duration::from_micros(us) }.await;
    }
}

/// See [`ParkTimer`].
struct Sleep {
    at: Instant,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        ParkTimer::wake_by(self.at);
        Poll::Pending
    }
}

fn now_unix_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Wall time kept in an atomic that the flusher thread refreshes every
/// [`CoarseClock::RESOLUTION`]: a capture reads it with one relaxed load (about a nanosecond)
/// instead of reading the TSC (48 cycles, 22.9 ns, on the VM this crate is benchmarked on).
/// Events captured within one refresh share a timestamp; their uuids still order them.
#[derive(Debug)]
#[repr(align(128))] // its own cache lines: captures read it, only the flusher writes it
pub struct CoarseClock {
    now_unix_nanos: AtomicU64,
}

impl CoarseClock {
    /// How often the flusher thread refreshes the time.
    pub const RESOLUTION: Duration = Duration::from_millis(1);

    /// A clock reading now.
    pub fn new() -> Self {
        CoarseClock { now_unix_nanos: AtomicU64::new(now_unix_nanos()) }
    }

    /// Sets the time to now (the flusher thread calls this every [`Self::RESOLUTION`]).
    pub fn refresh(&self) {
        self.now_unix_nanos.fetch_max(now_unix_nanos(), Ordering::Relaxed);
    }
}

impl Default for CoarseClock {
    fn default() -> Self {
        Self::new()
    }
}

/// The client's clock: coarse by default, the TSC with `Builder::precise_timestamps(true)`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientClock {
    /// Millisecond resolution, one relaxed load per capture.
    Coarse(Arc<CoarseClock>),
    /// Nanosecond resolution, one TSC read per capture.
    Tsc(TscClock),
}

impl Clock for ClientClock {
    #[inline(always)]
    fn tick(&self) -> u64 {
        match self {
            ClientClock::Coarse(c) => c.now_unix_nanos.load(Ordering::Relaxed),
            ClientClock::Tsc(t) => t.tick(),
        }
    }

    fn unix_nanos(&self, tick: u64) -> u64 {
        match self {
            ClientClock::Coarse(_) => tick,
            ClientClock::Tsc(t) => t.unix_nanos(tick),
        }
    }
}

impl ClientClock {
    /// Keeps a coarse clock fresh while `until` runs, and returns `until`'s output. Runs under
    /// [`block_on`]: the clock is refreshed on every pass, and wakes the thread itself only
    /// when nothing else did for [`CoarseClock::RESOLUTION`] (a timer of its own woke the
    /// flusher thread a thousand times a second more, out of step with the flusher's pauses).
    pub(crate) async fn refreshing<F: Future>(&self, until: F) -> F::Output {
        let ClientClock::Coarse(c) = self else { return until.await };
        let mut until = pin!(until);
        core::future::poll_fn(move |cx| {
            c.refresh();
            if let Poll::Ready(output) = until.as_mut().poll(cx) {
                return Poll::Ready(output);
            }
            ParkTimer::wake_by(Instant::now() + CoarseClock::RESOLUTION);
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleep_lasts_at_least_its_time() {
        let timer = ParkTimer::new();
        let start = Instant::now();
        block_on(timer.sleep_us(3_000));
        assert!(start.elapsed() >= Duration::from_micros(3_000));
        assert!(timer.now_us() >= 3_000);
    }

    #[test]
    fn the_earliest_of_two_sleeps_wakes_the_thread() {
        let timer = ParkTimer::new();
        let first = futures_lite::future::or(
            async {
                timer.sleep_us(60_000_000).await;
                "the minute"
            },
            async {
                timer.sleep_us(1_000).await;
                "the millisecond"
            },
        );
        assert_eq!(block_on(first), "the millisecond");
    }

    #[test]
    fn a_waker_on_another_thread_ends_an_untimed_park() {
        let (send, recv) = async_channel::bounded(1);
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            send.send_blocking(7).unwrap();
        });
        assert_eq!(block_on(recv.recv()), Ok(7));
        sender.join().unwrap();
    }

    #[test]
    fn code_that_parks_the_flusher_thread_does_not_take_its_wake_up() {
        // On its first poll the future hands its waker to a thread that wakes it 10 ms later,
        // then parks this thread for up to 500 ms, as a filter or logger that blocks on a
        // channel would. That wake must still end `block_on`'s own untimed park.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut polls = 0;
            block_on(core::future::poll_fn(|cx| {
                polls += 1;
                if polls > 1 {
                    return Poll::Ready(());
                }
                let waker = cx.waker().clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(10));
                    waker.wake();
                });
                std::thread::park_timeout(Duration::from_millis(500));
                Poll::Pending
            }));
            let _ = done.send(());
        });
        assert!(finished.recv_timeout(Duration::from_secs(10)).is_ok(), "the wake-up was lost");
    }

    #[test]
    fn a_coarse_clock_is_refreshed_while_the_future_runs() {
        let coarse = Arc::new(CoarseClock::new());
        let clock = ClientClock::Coarse(coarse.clone());
        let until = clock.tick() + 5_000_000;
        // A future that waits for the coarse clock to pass `until` and registers no waker or
        // sleep: only the refresh's own wake-ups can get it polled again.
        let advanced =
            core::future::poll_fn(|_| if clock.tick() >= until { Poll::Ready(()) } else { Poll::Pending });
        block_on(clock.refreshing(advanced));
        assert!(coarse.now_unix_nanos.load(Ordering::Relaxed) >= until);
    }
}
