//! The `std` runtime pieces: a TSC clock for capture, and smol's timer for the flusher.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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

/// The flusher's timer on smol (async-io).
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
    /// Keeps a coarse clock fresh while `until` runs, and returns `until`'s output.
    pub(crate) async fn refreshing<F: core::future::Future>(&self, until: F) -> F::Output {
        match self {
            ClientClock::Tsc(_) => until.await,
            ClientClock::Coarse(c) => {
                let refresh = async {
                    loop {
                        c.refresh();
                        smol::Timer::after(CoarseClock::RESOLUTION).await;
                    }
                };
                futures_lite::future::or(until, refresh).await
            }
        }
    }
}
