//! embassy-time glue for embedded builds: a [`Clock`] on `embassy_time::Instant` and a
//! flusher [`Timer`] on `embassy_time::Timer`.

use crate::flusher::Timer;
use crate::Clock;

/// `embassy_time::Instant` ticks, anchored to a wall time the caller learned at boot (from an
/// RTC, GNSS or NTP): `unix_nanos = anchor + (tick - anchor_tick)` at embassy's tick rate.
#[derive(Debug, Clone, Copy)]
pub struct EmbassyClock {
    anchor_tick: u64,
    anchor_unix_nanos: u64,
}

impl EmbassyClock {
    /// A clock that says "now" is `unix_nanos`.
    pub fn anchored_now(unix_nanos: u64) -> Self {
        EmbassyClock { anchor_tick: embassy_time::Instant::now().as_ticks(), anchor_unix_nanos: unix_nanos }
    }
}

impl Clock for EmbassyClock {
    #[inline]
    fn tick(&self) -> u64 {
        embassy_time::Instant::now().as_ticks()
    }

    fn unix_nanos(&self, tick: u64) -> u64 {
        let ticks = tick.wrapping_sub(self.anchor_tick);
        let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(embassy_time::TICK_HZ);
        self.anchor_unix_nanos.wrapping_add(nanos as u64)
    }
}

/// The flusher's timer on `embassy_time`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmbassyTimer;

impl Timer for EmbassyTimer {
    fn now_us(&self) -> u64 {
        embassy_time::Instant::now().as_micros()
    }

    async fn sleep_us(&self, us: u64) {
        embassy_time::Timer::after_micros(us).await;
    }
}
