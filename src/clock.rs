//! Clocks: a cheap monotonic tick on the capture path, converted to wall time when encoding.

/// Time source for events. `tick` runs on every capture, so it must be cheap (a TSC read, a
/// hardware timer); `unix_nanos` runs on the consumer when an event is encoded.
pub trait Clock {
    /// A monotonic tick, in the clock's own unit.
    fn tick(&self) -> u64;
    /// The wall time of a tick from this clock, in nanoseconds since the Unix epoch (UTC).
    fn unix_nanos(&self, tick: u64) -> u64;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn tick(&self) -> u64 {
        (**self).tick()
    }
    fn unix_nanos(&self, tick: u64) -> u64 {
        (**self).unix_nanos(tick)
    }
}

/// A clock that always reads the same instant: for tests, and for events that carry their own
/// timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn tick(&self) -> u64 {
        self.0
    }
    fn unix_nanos(&self, tick: u64) -> u64 {
        tick
    }
}

/// `embassy_time::Instant` ticks, anchored to a wall time the caller learned at boot (from
/// an RTC, GNSS or NTP): `unix_nanos = anchor_unix_nanos + (tick - anchor_tick)` in the
/// embassy tick rate.
#[cfg(feature = "embassy")]
#[derive(Debug, Clone, Copy)]
pub struct EmbassyClock {
    anchor_tick: u64,
    anchor_unix_nanos: u64,
}

#[cfg(feature = "embassy")]
impl EmbassyClock {
    /// A clock that says "now" is `unix_nanos`.
    pub fn anchored_now(unix_nanos: u64) -> Self {
        EmbassyClock { anchor_tick: embassy_time::Instant::now().as_ticks(), anchor_unix_nanos: unix_nanos }
    }
}

#[cfg(feature = "embassy")]
impl Clock for EmbassyClock {
    fn tick(&self) -> u64 {
        embassy_time::Instant::now().as_ticks()
    }
    fn unix_nanos(&self, tick: u64) -> u64 {
        let ticks = tick.wrapping_sub(self.anchor_tick);
        let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(embassy_time::TICK_HZ);
        self.anchor_unix_nanos.wrapping_add(nanos as u64)
    }
}
