//! Per-thread lanes: one wait-free SPSC [`Ring`] per producer, a [`SharedRing`] fallback for
//! producers that find every lane taken, and one consumer that drains them all.

use core::ops::Deref;

use super::mpsc::Seqs;
use super::{Full, Ring, SharedRing, Storage};
use crate::sync::{AtomicBool, Ordering};

/// A set of lanes and a shared fallback ring, all holding `T` records.
///
/// `C` is the lanes' container (`[Ring<T, S>; L]`, or a boxed slice with `std`); `S` and `Q`
/// are the rings' storage (see [`Storage`], [`Seqs`]).
#[derive(Debug)]
pub struct Lanes<T, S, Q, C> {
    lanes: C,
    shared: SharedRing<T, S, Q>,
    consumer_claimed: AtomicBool,
}

/// Anything that dereferences to [`Lanes`] (`&'static Lanes`, `Arc<Lanes>`, ...).
pub trait LanesRef: Deref<Target = Lanes<Self::Record, Self::Slots, Self::Seqs, Self::Rings>> {
    /// The record type.
    type Record;
    /// The rings' slot storage.
    type Slots: Storage<Self::Record>;
    /// The shared ring's sequence storage.
    type Seqs: Seqs;
    /// The lanes' container.
    type Rings: AsRef<[Ring<Self::Record, Self::Slots>]>;
}

impl<T, S, Q, C, R> LanesRef for R
where
    S: Storage<T>,
    Q: Seqs,
    C: AsRef<[Ring<T, S>]>,
    R: Deref<Target = Lanes<T, S, Q, C>>,
{
    type Record = T;
    type Slots = S;
    type Seqs = Q;
    type Rings = C;
}

/// Totals over every ring of a [`Lanes`], each wrapping like the ring counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaneTotals {
    /// Records written into a ring.
    pub pushed: usize,
    /// Records counted as dropped (ring full).
    pub dropped: usize,
    /// Records counted as rejected (invalid input).
    pub rejected: usize,
}

impl<T, S: Storage<T>, Q: Seqs, C: AsRef<[Ring<T, S>]>> Lanes<T, S, Q, C> {
    /// Lanes over the given rings and fallback ring.
    #[cfg(not(loom))]
    pub const fn from_parts(lanes: C, shared: SharedRing<T, S, Q>) -> Self {
        Lanes { lanes, shared, consumer_claimed: AtomicBool::new(false) }
    }

    /// Lanes over the given rings and fallback ring (loom atomics are not `const`).
    #[cfg(loom)]
    pub fn from_parts(lanes: C, shared: SharedRing<T, S, Q>) -> Self {
        Lanes { lanes, shared, consumer_claimed: AtomicBool::new(false) }
    }

    /// The per-thread rings. Private: a ring reachable from outside could be given a second
    /// consumer through [`Ring::try_consumer`].
    fn lanes(&self) -> &[Ring<T, S>] {
        self.lanes.as_ref()
    }

    /// The fallback ring.
    pub fn shared(&self) -> &SharedRing<T, S, Q> {
        &self.shared
    }

    /// Claims a free lane: one CAS per lane, at most once each, so wait-free and bounded by
    /// the number of lanes. `None` when every lane is taken: use [`Lanes::shared`] then.
    pub fn try_producer<R>(lanes: R) -> Option<LaneProducer<R>>
    where
        R: LanesRef<Record = T, Slots = S, Seqs = Q, Rings = C>,
    {
        let (index, tail) = lanes
            .lanes()
            .iter()
            .enumerate()
            .find_map(|(i, ring)| Some((i, ring.try_claim_producer()?)))?;
        let cached_head = tail.wrapping_sub(lanes.lanes()[index].len());
        Some(LaneProducer { lanes, index, tail, cached_head })
    }

    /// The one consumer of every lane and of the fallback ring, unless it exists already.
    pub fn try_consumer<R>(lanes: R) -> Option<LanesConsumer<R>>
    where
        R: LanesRef<Record = T, Slots = S, Seqs = Q, Rings = C>,
    {
        lanes
            .consumer_claimed
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some(LanesConsumer { lanes })
    }

    /// How many per-thread lanes there are.
    pub fn lane_count(&self) -> usize {
        self.lanes().len()
    }

    /// Records waiting in all rings (a snapshot).
    pub fn len(&self) -> usize {
        self.lanes().iter().map(Ring::len).sum::<usize>() + self.shared.len()
    }

    /// True when no ring holds a record (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counters summed over every ring. Read the consumer's own counters *before* this, so a
    /// snapshot never shows more outcomes than captures.
    pub fn totals(&self) -> LaneTotals {
        let mut t = LaneTotals {
            pushed: self.shared.pushed(),
            dropped: self.shared.dropped(),
            rejected: self.shared.rejected(),
        };
        for ring in self.lanes() {
            t.pushed = t.pushed.wrapping_add(ring.pushed());
            t.dropped = t.dropped.wrapping_add(ring.dropped());
            t.rejected = t.rejected.wrapping_add(ring.rejected());
        }
        t
    }
}

/// A producer's claim on one lane. Dropping it frees the lane for another thread; records it
/// pushed stay in the lane until the consumer drains them.
#[derive(Debug)]
pub struct LaneProducer<R: LanesRef> {
    lanes: R,
    index: usize,
    tail: usize,
    cached_head: usize,
}

impl<R: LanesRef> LaneProducer<R> {
    /// Writes one record in place. Wait-free. On [`Full`], `write` is not called.
    #[inline]
    pub fn push_with(&mut self, write: impl FnOnce(&mut R::Record)) -> Result<(), Full> {
        let ring = &self.lanes.lanes()[self.index];
        // SAFETY: this handle holds lane `index`'s producer claim, and `self.tail` is its tail.
        unsafe { ring.push_claimed(&mut self.tail, &mut self.cached_head, write) }
    }

    /// Counts a record dropped, or rejected, in this lane's counters. Wait-free.
    #[inline]
    pub fn count(&mut self, rejected: bool) {
        // SAFETY: this handle holds lane `index`'s producer claim.
        unsafe { self.lanes.lanes()[self.index].count_claimed(rejected) }
    }

    /// Which lane this is.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The lanes this producer belongs to.
    pub fn lanes(&self) -> &R {
        &self.lanes
    }
}

impl<R: LanesRef> Drop for LaneProducer<R> {
    fn drop(&mut self) {
        self.lanes.lanes()[self.index].release_producer();
    }
}

/// The one consumer of a [`Lanes`].
#[derive(Debug)]
pub struct LanesConsumer<R: LanesRef> {
    lanes: R,
}

impl<R: LanesRef> LanesConsumer<R> {
    /// Reads up to `max` records in place from every lane, then the fallback ring, and frees
    /// their slots. Returns how many were read.
    pub fn drain_with(&mut self, max: usize, mut read: impl FnMut(&R::Record)) -> usize {
        let mut n = 0;
        for ring in self.lanes.lanes() {
            // SAFETY: this handle is the one consumer of every ring of these lanes: the lanes
            // are not reachable as standalone rings, so no `Consumer` of them exists.
            n += unsafe { ring.drain_claimed(max - n, &mut read) };
        }
        // SAFETY: as above, for the fallback ring.
        n + unsafe { self.lanes.shared().drain_claimed(max - n, &mut read) }
    }

    /// The lanes.
    pub fn lanes(&self) -> &R {
        &self.lanes
    }
}

impl<R: LanesRef> Drop for LanesConsumer<R> {
    fn drop(&mut self) {
        self.lanes.consumer_claimed.store(false, Ordering::Release);
    }
}
