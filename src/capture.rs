//! The capture path: validate, stamp, copy into a lane. Wait-free, allocation-free,
//! syscall-free.

use crate::event::{Event, Time};
use crate::ring::{LaneProducer, Lanes, LanesRef, Seqs, Storage};
use crate::Clock;

/// What capture did with an event. Every outcome is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "an event may have been dropped or rejected (it is counted either way)"]
pub enum Captured {
    /// In a lane, waiting for the flusher.
    Queued,
    /// The lane was full: dropped and counted (`dropped`).
    Dropped,
    /// Empty or whitespace-only name or distinct_id: counted (`rejected`), never sent.
    Rejected,
}

/// The event's time: its own, or the clock's tick now.
#[inline(always)]
fn stamp(event: &Event, clock: &impl Clock) -> Time {
    match event.time {
        Time::Now => Time::Tick(clock.tick()),
        given => given,
    }
}

impl<R: LanesRef<Record = Event>> LaneProducer<R> {
    /// Captures `event` into this producer's lane. **Wait-free**: a bounded number of steps
    /// whatever other threads do; no lock, no CAS, no allocation, no syscall.
    #[inline]
    pub fn capture(&mut self, event: &Event, clock: &impl Clock) -> Captured {
        if event.is_invalid() {
            self.count(true);
            return Captured::Rejected;
        }
        let time = stamp(event, clock);
        match self.push_with(|slot| {
            event.copy_to(slot);
            slot.time = time;
        }) {
            Ok(()) => Captured::Queued,
            Err(_) => {
                self.count(false);
                Captured::Dropped
            }
        }
    }
}

impl<S: Storage<Event>, Q: Seqs, C: AsRef<[crate::ring::Ring<Event, S>]>> Lanes<Event, S, Q, C> {
    /// Captures `event` into the shared fallback ring, from any thread. **Lock-free, not
    /// wait-free** (see [`crate::ring::SharedRing`]); no allocation, no syscall.
    pub fn capture_shared(&self, event: &Event, clock: &impl Clock) -> Captured {
        if event.is_invalid() {
            self.shared().count(true);
            return Captured::Rejected;
        }
        let time = stamp(event, clock);
        match self.shared().push_with(|slot| {
            event.copy_to(slot);
            slot.time = time;
        }) {
            Ok(()) => Captured::Queued,
            Err(_) => {
                self.shared().count(false);
                Captured::Dropped
            }
        }
    }
}

/// Lanes of [`Event`]s with inline storage, for a `static` in `no_std` builds: `L` lanes of `N`
/// records each, plus a shared fallback ring of `N`.
///
/// ```
/// use fasthog::{Event, FixedClock, StaticLanes, Captured};
/// static LANES: StaticLanes<2, 64> = StaticLanes::new();
/// let mut producer = fasthog::ring::Lanes::try_producer(&LANES).unwrap();
/// let clock = FixedClock(1_700_000_000_000_000_000);
/// assert_eq!(producer.capture(&Event::new("boot", "device-7"), &clock), Captured::Queued);
/// ```
pub type StaticLanes<const L: usize, const N: usize> = Lanes<
    Event,
    [crate::ring::Slot<Event>; N],
    [crate::sync::AtomicUsize; N],
    [crate::ring::Ring<Event, [crate::ring::Slot<Event>; N]>; L],
>;

#[cfg(not(loom))]
impl<const L: usize, const N: usize> StaticLanes<L, N> {
    /// Empty lanes, usable in a `static`.
    pub const fn new() -> Self {
        Lanes::from_parts(
            [const { crate::ring::Ring::new() }; L],
            crate::ring::SharedRing::new(),
        )
    }
}

/// Lanes of [`Event`]s sized at run time (`std`).
#[cfg(feature = "std")]
pub type HeapLanes = Lanes<
    Event,
    std::boxed::Box<[crate::ring::Slot<Event>]>,
    std::boxed::Box<[crate::sync::AtomicUsize]>,
    std::boxed::Box<[crate::ring::Ring<Event, std::boxed::Box<[crate::ring::Slot<Event>]>>]>,
>;

/// `lanes` lanes of `capacity` records each (rounded up to a power of two), plus a shared
/// fallback ring of the same capacity.
#[cfg(feature = "std")]
pub fn heap_lanes(lanes: usize, capacity: usize) -> HeapLanes {
    use crate::ring::{heap_seqs, heap_storage, Ring, SharedRing};
    let rings = (0..lanes.max(1)).map(|_| Ring::with_storage(heap_storage(capacity))).collect();
    Lanes::from_parts(rings, SharedRing::with_storage(heap_storage(capacity), heap_seqs(capacity)))
}
