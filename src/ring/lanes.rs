//! Per-thread lanes: one wait-free SPSC [`Ring`] per producer, a [`SharedRing`] fallback for
//! producers that find every lane taken, and one consumer that drains them all.

use core::ops::Deref;

use super::mpsc::Seqs;
use super::{sealed, Full, Ring, SharedPtr, SharedRing, Storage};
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

/// The lanes' container: an array of rings or (`std`) a boxed slice. Sealed: the unsafe code
/// relies on the rings being owned by the lanes (no standalone handle can reach them) and
/// on `rings()` always returning the same rings. A borrowed container, whose rings could get a
/// second consumer of their own, is refused:
///
/// ```compile_fail,E0277
/// use fasthog::ring::{Lanes, Ring, SharedRing, Slot};
/// use fasthog::Record;
/// use core::sync::atomic::AtomicUsize;
/// static RINGS: [Ring<Record, [Slot<Record>; 4]>; 1] = [Ring::new()];
/// let lanes = Lanes::from_parts(&RINGS, SharedRing::<Record, _, [AtomicUsize; 4]>::new());
/// let _consumer = fasthog::ring::try_consumer(&lanes);
/// ```
pub trait Rings<T, S>: sealed::Owned {
    /// The rings.
    fn rings(&self) -> &[Ring<T, S>];
}

impl<T, S, const L: usize> Rings<T, S> for [Ring<T, S>; L] {
    #[inline(always)]
    fn rings(&self) -> &[Ring<T, S>] {
        self
    }
}

#[cfg(feature = "std")]
impl<T, S> Rings<T, S> for alloc::boxed::Box<[Ring<T, S>]> {
    #[inline(always)]
    fn rings(&self) -> &[Ring<T, S>] {
        self
    }
}

/// Types that contain one [`Lanes`] (the lanes themselves, or a crate type built around
/// them). Sealed: the unsafe code relies on `lanes()` always returning the same lanes.
pub trait HasLanes: sealed::Lanes {
    /// The record type.
    type Record;
    /// The rings' slot storage.
    type Slots: Storage<Self::Record>;
    /// The shared ring's sequence storage.
    type Seqs: Seqs;
    /// The lanes' container.
    type Rings: Rings<Self::Record, Self::Slots>;
    /// The lanes.
    fn lanes(&self) -> &Lanes<Self::Record, Self::Slots, Self::Seqs, Self::Rings>;
}

impl<T, S, Q, C> sealed::Lanes for Lanes<T, S, Q, C> {}

impl<T, S: Storage<T>, Q: Seqs, C: Rings<T, S>> HasLanes for Lanes<T, S, Q, C> {
    type Record = T;
    type Slots = S;
    type Seqs = Q;
    type Rings = C;
    #[inline(always)]
    fn lanes(&self) -> &Self {
        self
    }
}

/// `&X` or `Arc<X>` where `X` has lanes: what lane handles hold.
pub trait LanesRef: SharedPtr + Deref<Target: HasLanes> {}

impl<R: SharedPtr + Deref<Target: HasLanes>> LanesRef for R {}

type RecordOf<R> = <<R as Deref>::Target as HasLanes>::Record;

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

impl<T, S: Storage<T>, Q: Seqs, C: Rings<T, S>> Lanes<T, S, Q, C> {
    /// Lanes over the given rings and fallback ring.
    #[cfg(not(fasthog_loom))]
    pub const fn from_parts(lanes: C, shared: SharedRing<T, S, Q>) -> Self {
        Lanes { lanes, shared, consumer_claimed: AtomicBool::new(false) }
    }

    /// Lanes over the given rings and fallback ring (loom atomics are not `const`).
    #[cfg(fasthog_loom)]
    pub fn from_parts(lanes: C, shared: SharedRing<T, S, Q>) -> Self {
        Lanes { lanes, shared, consumer_claimed: AtomicBool::new(false) }
    }

    /// The per-thread rings. Private: a ring reachable from outside could be given a second
    /// consumer through [`Ring::try_consumer`].
    fn rings(&self) -> &[Ring<T, S>] {
        self.lanes.rings()
    }

    /// The fallback ring.
    pub fn shared(&self) -> &SharedRing<T, S, Q> {
        &self.shared
    }

    /// How many per-thread lanes there are.
    pub fn lane_count(&self) -> usize {
        self.rings().len()
    }

    /// Records waiting in all rings (a snapshot).
    pub fn len(&self) -> usize {
        self.rings().iter().map(Ring::len).sum::<usize>() + self.shared.len()
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
        for ring in self.rings() {
            t.pushed = t.pushed.wrapping_add(ring.pushed());
            t.dropped = t.dropped.wrapping_add(ring.dropped());
            t.rejected = t.rejected.wrapping_add(ring.rejected());
        }
        t
    }
}

/// Claims a free lane of `owner`'s lanes: one CAS per lane, at most once each, so wait-free
/// and bounded by the number of lanes. `None` when every lane is taken: capture into the
/// shared ring then.
pub fn try_producer<R: LanesRef>(owner: R) -> Option<LaneProducer<R>> {
    let lanes = owner.lanes();
    let (index, tail) =
        lanes.rings().iter().enumerate().find_map(|(i, ring)| Some((i, ring.try_claim_producer()?)))?;
    let cached_head = tail.wrapping_sub(lanes.rings()[index].len());
    Some(LaneProducer { owner, index, tail, cached_head })
}

/// The one consumer of every lane and of the fallback ring of `owner`, unless it exists.
pub fn try_consumer<R: LanesRef>(owner: R) -> Option<LanesConsumer<R>> {
    owner
        .lanes()
        .consumer_claimed
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .ok()?;
    Some(LanesConsumer { owner })
}

/// A producer's claim on one lane. Dropping it frees the lane for another thread; records it
/// pushed stay in the lane until the consumer drains them.
#[derive(Debug)]
pub struct LaneProducer<R: LanesRef> {
    owner: R,
    index: usize,
    tail: usize,
    cached_head: usize,
}

impl<R: LanesRef> LaneProducer<R> {
    /// Writes one record in place. Wait-free. On [`Full`], `write` is not called.
    #[inline]
    pub fn push_with(&mut self, write: impl FnOnce(&mut RecordOf<R>)) -> Result<(), Full> {
        let ring = &self.owner.lanes().rings()[self.index];
        // SAFETY: this handle holds lane `index`'s producer claim (sealed pointer types always
        // reach the same lanes), and `self.tail` is its tail.
        unsafe { ring.push_claimed(&mut self.tail, &mut self.cached_head, write) }
    }

    /// Counts a record dropped, or rejected, in this lane's counters. Wait-free.
    #[inline]
    pub fn count(&mut self, rejected: bool) {
        // SAFETY: this handle holds lane `index`'s producer claim.
        unsafe { self.owner.lanes().rings()[self.index].count_claimed(rejected) }
    }

    /// Which lane this is.
    pub fn index(&self) -> usize {
        self.index
    }

    /// What the lanes belong to.
    pub fn owner(&self) -> &R {
        &self.owner
    }
}

impl<R: LanesRef> Drop for LaneProducer<R> {
    fn drop(&mut self) {
        self.owner.lanes().rings()[self.index].release_producer();
    }
}

/// The one consumer of a [`Lanes`].
#[derive(Debug)]
pub struct LanesConsumer<R: LanesRef> {
    owner: R,
}

impl<R: LanesRef> LanesConsumer<R> {
    /// Reads up to `max` records in place from every lane, then the fallback ring, and frees
    /// their slots. Returns how many were read. Wait-free.
    pub fn drain_with(&mut self, max: usize, mut read: impl FnMut(&RecordOf<R>)) -> usize {
        let lanes = self.owner.lanes();
        let mut n = 0;
        for ring in lanes.rings() {
            // SAFETY: this handle is the one consumer of every ring of these lanes: the rings
            // are private to `Lanes`, so no standalone `Consumer` of them can exist.
            n += unsafe { ring.drain_claimed(max - n, &mut read) };
        }
        // SAFETY: as above, for the fallback ring.
        n + unsafe { lanes.shared().drain_claimed(max - n, &mut read) }
    }

    /// What the lanes belong to.
    pub fn owner(&self) -> &R {
        &self.owner
    }
}

impl<R: LanesRef> Drop for LanesConsumer<R> {
    fn drop(&mut self) {
        self.owner.lanes().consumer_claimed.store(false, Ordering::Release);
    }
}
