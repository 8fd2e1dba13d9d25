//! The capture path: validate, stamp, copy into a lane. Wait-free, allocation-free,
//! syscall-free.

use crate::event::{Event, Props};
use crate::flusher::Control;
use crate::record::Record;
use crate::ring::{sealed, HasLanes, LaneProducer, Lanes, LanesRef, Rings, Seqs, Storage};
use crate::{Clock, Counters, Snapshot};

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

impl<R> LaneProducer<R>
where
    R: LanesRef<Target: HasLanes<Record = Record>>,
{
    /// Captures `event` into this producer's lane. **Wait-free**: a bounded number of steps
    /// whatever other threads do; no lock, no CAS, no allocation, no syscall.
    #[inline]
    pub fn capture<P: Props>(&mut self, event: &Event<'_, P>, clock: &impl Clock) -> Captured {
        if event.is_invalid() {
            self.count(true);
            return Captured::Rejected;
        }
        match self.push_with(|slot| event.write_to(slot, || clock.tick())) {
            Ok(()) => Captured::Queued,
            Err(_) => {
                self.count(false);
                Captured::Dropped
            }
        }
    }
}

impl<R: LanesRef> LaneProducer<R> {
    /// Counts `event` without queueing it: rejected if invalid, else dropped. For clients
    /// that are disabled or shut down. Wait-free.
    #[inline]
    pub fn discard<P: Props>(&mut self, event: &Event<'_, P>) -> Captured {
        let rejected = event.is_invalid();
        self.count(rejected);
        if rejected {
            Captured::Rejected
        } else {
            Captured::Dropped
        }
    }
}

/// Everything producers and the flusher share: the lanes, the flusher's counters, and the
/// flush/shutdown control. Lives in a `static` ([`StaticQueue`]) or an `Arc` ([`HeapQueue`]).
#[derive(Debug)]
pub struct Queue<S, Q, C> {
    lanes: Lanes<Record, S, Q, C>,
    counters: Counters,
    control: Control,
}

impl<S, Q, C> sealed::Lanes for Queue<S, Q, C> {}

impl<S: Storage<Record>, Q: Seqs, C: Rings<Record, S>> HasLanes for Queue<S, Q, C> {
    type Record = Record;
    type Slots = S;
    type Seqs = Q;
    type Rings = C;
    #[inline(always)]
    fn lanes(&self) -> &Lanes<Record, S, Q, C> {
        &self.lanes
    }
}

/// What the flusher needs of a [`Queue`] besides its lanes. Sealed.
pub trait QueueParts: sealed::Lanes {
    /// The flusher's counters.
    fn counters(&self) -> &Counters;
    /// Flush and shutdown requests.
    fn control(&self) -> &Control;
    /// A consistent snapshot of the counters.
    fn stats(&self) -> Snapshot;
}

impl<S: Storage<Record>, Q: Seqs, C: Rings<Record, S>> QueueParts for Queue<S, Q, C> {
    fn counters(&self) -> &Counters {
        &self.counters
    }
    fn control(&self) -> &Control {
        &self.control
    }
    fn stats(&self) -> Snapshot {
        Queue::stats(self)
    }
}

impl<S: Storage<Record>, Q: Seqs, C: Rings<Record, S>> Queue<S, Q, C> {
    /// Claims a lane for one producer thread (see [`crate::ring::try_producer`]). `None`
    /// when all lanes are taken: use [`Queue::capture_shared`] then.
    pub fn producer<R: LanesRef<Target = Self>>(queue: R) -> Option<LaneProducer<R>> {
        crate::ring::try_producer(queue)
    }

    /// Captures `event` into the shared fallback ring, from any thread. **Lock-free, not
    /// wait-free** (see [`crate::ring::SharedRing`]); no allocation, no syscall.
    pub fn capture_shared<P: Props>(&self, event: &Event<'_, P>, clock: &impl Clock) -> Captured {
        let shared = self.lanes.shared();
        if event.is_invalid() {
            shared.count(true);
            return Captured::Rejected;
        }
        match shared.push_with(|slot| event.write_to(slot, || clock.tick())) {
            Ok(()) => Captured::Queued,
            Err(_) => {
                shared.count(false);
                Captured::Dropped
            }
        }
    }

    /// The counters, consistently: every outcome counted has its capture counted too.
    pub fn stats(&self) -> Snapshot {
        self.counters.snapshot(|| self.lanes.totals())
    }

    /// Flush and shutdown requests to the flusher.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// Events waiting in lanes (a snapshot).
    pub fn queued(&self) -> usize {
        self.lanes.len()
    }
}

/// A [`Queue`] with inline storage, for a `static` in `no_std` builds: `L` lanes of `N`
/// records each, plus a shared fallback ring of `N`.
///
/// ```
/// use fasthog::{Captured, Event, FixedClock, StaticQueue};
/// static QUEUE: StaticQueue<2, 64> = StaticQueue::new();
/// let mut producer = StaticQueue::producer(&QUEUE).unwrap();
/// let clock = FixedClock(1_700_000_000_000_000_000);
/// assert_eq!(producer.capture(&Event::new("boot", "device-7"), &clock), Captured::Queued);
/// assert_eq!(QUEUE.stats().captured, 1);
/// ```
pub type StaticQueue<const L: usize, const N: usize> = Queue<
    [crate::ring::Slot<Record>; N],
    [crate::sync::AtomicUsize; N],
    [crate::ring::Ring<Record, [crate::ring::Slot<Record>; N]>; L],
>;

#[cfg(not(fasthog_loom))]
impl<const L: usize, const N: usize> Default for StaticQueue<L, N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(fasthog_loom))]
impl<const L: usize, const N: usize> StaticQueue<L, N> {
    /// An empty queue, usable in a `static`.
    pub const fn new() -> Self {
        Queue {
            lanes: Lanes::from_parts([const { crate::ring::Ring::new() }; L], crate::ring::SharedRing::new()),
            counters: Counters::new(),
            control: Control::new(),
        }
    }
}

/// A [`Queue`] sized at run time (`std`).
#[cfg(feature = "std")]
pub type HeapQueue = Queue<
    alloc::boxed::Box<[crate::ring::Slot<Record>]>,
    alloc::boxed::Box<[crate::sync::AtomicUsize]>,
    alloc::boxed::Box<[crate::ring::Ring<Record, alloc::boxed::Box<[crate::ring::Slot<Record>]>>]>,
>;

#[cfg(feature = "std")]
impl HeapQueue {
    /// `lanes` lanes of `capacity` records each (rounded up to a power of two), plus a shared
    /// fallback ring of the same capacity.
    pub fn with_capacity(lanes: usize, capacity: usize) -> Self {
        use crate::ring::{heap_seqs, heap_storage, SharedRing};
        let rings =
            (0..lanes.max(1)).map(|_| crate::ring::Ring::with_storage(heap_storage(capacity))).collect();
        let shared = SharedRing::with_storage(heap_storage(capacity), heap_seqs(capacity));
        Queue {
            lanes: Lanes::from_parts(rings, shared),
            counters: Counters::default(),
            control: Control::default(),
        }
    }
}
