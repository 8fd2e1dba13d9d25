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
