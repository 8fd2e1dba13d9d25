//! The capture path: validate, stamp, write into a lane. Wait-free, allocation-free,
//! syscall-free.

use crate::event::{Event, Props};
use crate::flusher::Control;
use crate::ring::{sealed, Gate, HasLanes, LaneProducer, Lanes, LanesRef, Memory};
use crate::{Clock, Counters, Sampler, Snapshot};

/// What capture did with an event. Every outcome is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Captured {
    /// In a lane, waiting for the flusher: it will be sent, or counted `failed` after the
    /// retry policy.
    Queued,
    /// No room in the lanes: dropped and counted (`dropped`).
    Dropped,
    /// Invalid (see [`Event::is_invalid`]): counted (`rejected`), never sent.
    Rejected,
    /// Left out by sampling (see [`Sampler`]): counted (`sampled`), never sent.
    Sampled,
}

impl<R: LanesRef> LaneProducer<R> {
    /// Captures `event` into this producer's lane. **Wait-free**: a bounded number of steps
    /// whatever other threads do; no lock, no allocation, no syscall.
    #[inline]
    pub fn capture<P: Props>(&mut self, event: &Event<'_, P>, clock: &impl Clock) -> Captured {
        self.capture_sampled(event, clock, &Sampler::OFF)
    }

    /// [`LaneProducer::capture`], keeping only what `sampler` keeps (the rest is counted
    /// `sampled`). Wait-free: the sampler's table is fixed, and its draw reads this lane's own
    /// counters.
    #[inline]
    pub fn capture_sampled<P: Props>(
        &mut self,
        event: &Event<'_, P>,
        clock: &impl Clock,
        sampler: &Sampler,
    ) -> Captured {
        if event.is_invalid() {
            self.count(true);
            return Captured::Rejected;
        }
        if sampler.is_on() && !self.sample(event, sampler) {
            self.count_sampled();
            return Captured::Sampled;
        }
        let stamp = event.stamp(|| clock.tick());
        match self.write(|buf, last| event.write_entry(buf, last, stamp)) {
            Ok(()) => Captured::Queued,
            Err(_) => {
                self.count(false);
                Captured::Dropped
            }
        }
    }

    /// Whether `sampler` keeps `event`, captured now on this lane.
    #[inline]
    fn sample<P: Props>(&self, event: &Event<'_, P>, sampler: &Sampler) -> bool {
        sampler.decide(event.name(), || event.distinct_id_hash(), || (self.index(), self.captures()))
    }

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
pub struct Queue<M> {
    lanes: Lanes<M>,
    counters: Counters,
    control: Control,
    gate: Gate,
}

impl<M> sealed::Lanes for Queue<M> {}

impl<M: Memory> HasLanes for Queue<M> {
    type Memory = M;
    #[inline(always)]
    fn lanes(&self) -> &Lanes<M> {
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

impl<M: Memory> QueueParts for Queue<M> {
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

impl<M: Memory> Queue<M> {
    /// A queue over `memory`.
    pub fn with_memory(memory: M) -> Self {
        Queue {
            lanes: Lanes::new(memory),
            counters: Counters::default(),
            control: Control::default(),
            gate: Gate::default(),
        }
    }

    /// The gate that closes capture (see [`Gate`]): [`Queue::capture_shared`] and the std
    /// client check it; a [`LaneProducer`] checks it with `enter`/`exit`.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Claims a lane for one producer thread (see [`crate::ring::try_producer`]). `None`
    /// when all lanes are taken: use [`Queue::capture_shared`] then.
    pub fn producer<R: LanesRef<Target = Self>>(queue: R) -> Option<LaneProducer<R>> {
        crate::ring::try_producer(queue)
    }

    /// Captures `event` from any thread by borrowing a shared lane for the call. Wait-free
    /// (one CAS per shared lane, at most once each); when every shared lane is busy at that
    /// instant, or the gate is closed, the event is dropped and counted. No allocation, no
    /// syscall.
    pub fn capture_shared<P: Props>(&self, event: &Event<'_, P>, clock: &impl Clock) -> Captured {
        self.capture_shared_sampled(event, clock, &Sampler::OFF)
    }

    /// [`Queue::capture_shared`], keeping only what `sampler` keeps. An event that finds no
    /// shared lane is dropped before sampling (counted `dropped`).
    pub fn capture_shared_sampled<P: Props>(
        &self,
        event: &Event<'_, P>,
        clock: &impl Clock,
        sampler: &Sampler,
    ) -> Captured {
        match crate::ring::try_shared(self) {
            Some(mut lane) => {
                let open = lane.enter(&self.gate);
                let outcome =
                    if open { lane.capture_sampled(event, clock, sampler) } else { lane.discard(event) };
                lane.exit();
                outcome
            }
            None => {
                let rejected = event.is_invalid();
                self.lanes.count_unlaned(rejected);
                if rejected {
                    Captured::Rejected
                } else {
                    Captured::Dropped
                }
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
}

/// A [`Queue`] in inline memory, for a `static` in `no_std` builds: `LANES` lanes (plus one
/// shared) over `BLOCKS` blocks of `BLOCK` bytes. An event may take up to half a block.
///
/// ```
/// use fasthog::{Captured, Event, FixedClock, StaticQueue};
/// static QUEUE: StaticQueue<2, 8, 1024> = StaticQueue::new(); // 8 KiB
/// let mut producer = StaticQueue::producer(&QUEUE).unwrap();
/// let clock = FixedClock(1_700_000_000_000_000_000);
/// assert_eq!(producer.capture(&Event::new("boot", "device-7"), &clock), Captured::Queued);
/// assert_eq!(QUEUE.stats().captured, 1);
/// ```
#[cfg(not(fasthog_loom))]
pub type StaticQueue<const LANES: usize, const BLOCKS: usize, const BLOCK: usize> =
    Queue<crate::ring::StaticMemory<LANES, BLOCKS, BLOCK>>;

#[cfg(not(fasthog_loom))]
impl<const L: usize, const B: usize, const N: usize> Default for StaticQueue<L, B, N> {
    fn default() -> Self {
        Self::new_static()
    }
}

#[cfg(not(fasthog_loom))]
impl<const L: usize, const B: usize, const N: usize> StaticQueue<L, B, N> {
    /// An empty queue, usable in a `static`.
    pub const fn new() -> Self {
        Self::new_static()
    }

    const fn new_static() -> Self {
        Queue {
            lanes: Lanes::new_static(crate::ring::StaticMemory::new()),
            counters: Counters::new(),
            control: Control::new(),
            gate: Gate::new(),
        }
    }
}

/// A [`Queue`] sized at run time (`std`).
#[cfg(feature = "std")]
pub type HeapQueue = Queue<crate::ring::HeapMemory>;

#[cfg(feature = "std")]
impl HeapQueue {
    /// `owned` lanes (and `shared` ones) over a pool of `geometry`. Fails with the reason when
    /// the geometry is invalid or the memory cannot be had.
    pub fn with_geometry(
        geometry: crate::ring::Geometry,
        owned: usize,
        shared: usize,
    ) -> Result<Self, &'static str> {
        Ok(Queue::with_memory(crate::ring::HeapMemory::new(geometry, owned, shared)?))
    }

    /// A small queue for tests: `lanes` lanes and one shared over `blocks` blocks of `block`
    /// bytes (entries up to half a block).
    ///
    /// # Panics
    /// If the geometry is invalid.
    pub fn with_blocks(lanes: usize, blocks: usize, block: usize) -> Self {
        let geometry = crate::ring::Geometry { block_bytes: block, blocks, max_entry: block / 2 };
        Self::with_geometry(geometry, lanes, 1).expect("a valid geometry")
    }
}
