//! The wait-free single-producer single-consumer ring (the per-thread lane).

use core::marker::PhantomData;
use core::ops::Deref;

use super::{CachePadded, Empty, Full, SharedPtr, Slot, Storage};
use crate::sync::{AtomicBool, AtomicUsize, Ordering};

/// State written by the producer (plus counters it alone writes), on its own cache line.
#[derive(Debug)]
struct ProducerSide {
    /// Records ever pushed; wrapping. Only the producer stores it. `tail - head` is in
    /// `0..=capacity`.
    tail: AtomicUsize,
    /// Whether a producer handle exists.
    claimed: AtomicBool,
    /// Records the producer counted as dropped (ring full). Only the producer stores it.
    dropped: AtomicUsize,
    /// Records the producer counted as rejected (invalid input). Only the producer stores it.
    rejected: AtomicUsize,
}

/// State written by the consumer, on its own cache line.
#[derive(Debug)]
struct ConsumerSide {
    /// Records ever consumed; wrapping. Only the consumer stores it.
    head: AtomicUsize,
    /// Whether a consumer handle exists.
    claimed: AtomicBool,
}

/// A fixed-capacity SPSC ring of `T` records. Push and drain are wait-free.
///
/// Use [`Ring::try_producer`] and [`Ring::try_consumer`] to get the one handle of each side.
#[derive(Debug)]
pub struct Ring<T, S> {
    prod: CachePadded<ProducerSide>,
    cons: CachePadded<ConsumerSide>,
    slots: S,
    _records: PhantomData<T>,
}

// SAFETY: records are `Copy` (no drop glue, no shared ownership) and move between threads only
// through the release/acquire handoff on `tail`/`head`; each slot is accessed by one side at a
// time, which the claim flags and the index protocol enforce.
unsafe impl<T: Send, S: Send> Send for Ring<T, S> {}
// SAFETY: as for `Send`: all shared mutation goes through atomics or through slots that the
// index protocol gives to exactly one side at a time.
unsafe impl<T: Send, S: Sync> Sync for Ring<T, S> {}

impl<T: Empty, const N: usize> Ring<T, [Slot<T>; N]> {
    /// An empty ring with inline storage, usable in a `static`. `N` must be a power of two.
    #[cfg(not(fasthog_loom))]
    pub const fn new() -> Self {
        const { assert!(N.is_power_of_two(), "ring capacity must be a power of two") };
        Self::from_checked([const { Slot::new() }; N])
    }
}

#[cfg(not(fasthog_loom))]
impl<T: Empty, const N: usize> Default for Ring<T, [Slot<T>; N]> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, S: Storage<T>> Ring<T, S> {
    /// A ring over the given storage (an array, or with `std` a boxed slice).
    ///
    /// # Panics
    /// If the storage's length is not a power of two: positions would alias slots.
    pub fn with_storage(slots: S) -> Self {
        let n = slots.slots().len();
        assert!(n.is_power_of_two(), "ring capacity must be a power of two, not {n}");
        Self::from_checked(slots)
    }

    /// A ring over storage whose length is known to be a power of two.
    #[cfg(not(fasthog_loom))]
    const fn from_checked(slots: S) -> Self {
        Ring {
            prod: CachePadded(ProducerSide {
                tail: AtomicUsize::new(0),
                claimed: AtomicBool::new(false),
                dropped: AtomicUsize::new(0),
                rejected: AtomicUsize::new(0),
            }),
            cons: CachePadded(ConsumerSide { head: AtomicUsize::new(0), claimed: AtomicBool::new(false) }),
            slots,
            _records: PhantomData,
        }
    }

    /// As above (loom atomics are not `const`).
    #[cfg(fasthog_loom)]
    fn from_checked(slots: S) -> Self {
        Ring {
            prod: CachePadded(ProducerSide {
                tail: AtomicUsize::new(0),
                claimed: AtomicBool::new(false),
                dropped: AtomicUsize::new(0),
                rejected: AtomicUsize::new(0),
            }),
            cons: CachePadded(ConsumerSide { head: AtomicUsize::new(0), claimed: AtomicBool::new(false) }),
            slots,
            _records: PhantomData,
        }
    }

    /// How many records the ring holds.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.slots.slots().len()
    }

    /// Records pushed and not yet consumed (a snapshot; exact only when both sides are idle).
    pub fn len(&self) -> usize {
        let head = self.cons.head.load(Ordering::Acquire);
        let tail = self.prod.tail.load(Ordering::Acquire);
        tail.wrapping_sub(head)
    }

    /// True when [`Ring::len`] is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records ever pushed (wrapping).
    pub fn pushed(&self) -> usize {
        self.prod.tail.load(Ordering::Acquire)
    }

    /// Records the producer counted as dropped (wrapping).
    pub fn dropped(&self) -> usize {
        self.prod.dropped.load(Ordering::Acquire)
    }

    /// Records the producer counted as rejected (wrapping).
    pub fn rejected(&self) -> usize {
        self.prod.rejected.load(Ordering::Acquire)
    }

    /// The producer handle, unless one exists. Dropping it releases the claim; a later claim
    /// continues where it stopped, and the consumer never notices.
    pub fn try_producer<R: RingRef<Record = T, Storage = S>>(ring: R) -> Option<Producer<R>> {
        let tail = ring.try_claim_producer()?;
        let cached_head = ring.cons.head.load(Ordering::Acquire);
        Some(Producer { ring, tail, cached_head })
    }

    /// The consumer handle, unless one exists.
    pub fn try_consumer<R: RingRef<Record = T, Storage = S>>(ring: R) -> Option<Consumer<R>> {
        ring.cons.claimed.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).ok()?;
        Some(Consumer { ring })
    }

    /// Claims the producer side: one CAS, never retried. Returns the current tail.
    pub(super) fn try_claim_producer(&self) -> Option<usize> {
        self.prod.claimed.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).ok()?;
        // Acquire on the claim orders this after the previous producer's last tail store.
        Some(self.prod.tail.load(Ordering::Relaxed))
    }

    pub(super) fn release_producer(&self) {
        self.prod.claimed.store(false, Ordering::Release);
    }

    /// Writes one record. `tail` and `cached_head` are the producer's private copies.
    ///
    /// # Safety
    /// The caller holds the producer claim of this ring, and `tail` is the ring's tail.
    #[inline(always)]
    pub(super) unsafe fn push_claimed(
        &self,
        tail: &mut usize,
        cached_head: &mut usize,
        write: impl FnOnce(&mut T),
    ) -> Result<(), Full> {
        let slots = self.slots.slots();
        let capacity = slots.len();
        debug_assert!(capacity.is_power_of_two());
        debug_assert_eq!(*tail, self.prod.tail.load(Ordering::Relaxed));
        if tail.wrapping_sub(*cached_head) == capacity {
            // Only re-read the consumer's index when the cached one says "full": the common
            // push touches no cache line the consumer writes.
            *cached_head = self.cons.head.load(Ordering::Acquire);
            if tail.wrapping_sub(*cached_head) == capacity {
                return Err(Full);
            }
        }
        let slot = &slots[*tail & (capacity - 1)];
        // SAFETY: the caller is the only producer. The slot at `tail` is outside
        // `head..tail`, so the consumer does not read it: its previous record was consumed
        // before `head` passed it (acquired above or at claim time), and the consumer will not
        // read it until the release store of `tail + 1` below.
        slot.0.with_mut(|record| write(unsafe { &mut *record }));
        *tail = tail.wrapping_add(1);
        self.prod.tail.store(*tail, Ordering::Release);
        Ok(())
    }

    /// Adds one to a producer-owned counter with a plain load and store (no RMW: one writer).
    ///
    /// # Safety
    /// The caller holds the producer claim of this ring.
    #[inline(always)]
    pub(super) unsafe fn count_claimed(&self, rejected: bool) {
        let counter = if rejected { &self.prod.rejected } else { &self.prod.dropped };
        counter.store(counter.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
    }

    /// Reads up to `max` records in place, oldest first, and frees their slots.
    ///
    /// # Safety
    /// The caller is the only consumer of this ring.
    pub(super) unsafe fn drain_claimed(&self, max: usize, mut read: impl FnMut(&T)) -> usize {
        let slots = self.slots.slots();
        let mask = slots.len() - 1;
        let mut head = self.cons.head.load(Ordering::Relaxed);
        // One acquire of the producer's index per drain, not per record.
        let tail = self.prod.tail.load(Ordering::Acquire);
        let n = tail.wrapping_sub(head).min(max);
        for _ in 0..n {
            let slot = &slots[head & mask];
            // SAFETY: `head < tail` (acquired above), so the producer finished writing this
            // slot and will not touch it again until our release store of `head + 1`.
            slot.0.with(|record| read(unsafe { &*record }));
            head = head.wrapping_add(1);
            self.cons.head.store(head, Ordering::Release);
        }
        n
    }
}

/// `&Ring` or `Arc<Ring>`: what ring handles hold (see [`super::SharedPtr`]).
pub trait RingRef: SharedPtr + Deref<Target = Ring<Self::Record, Self::Storage>> {
    /// The ring's record type.
    type Record;
    /// The ring's storage type.
    type Storage: Storage<Self::Record>;
}

impl<T, S: Storage<T>, R: SharedPtr + Deref<Target = Ring<T, S>>> RingRef for R {
    type Record = T;
    type Storage = S;
}

/// The producer side of a [`Ring`]. There is at most one at a time.
#[derive(Debug)]
pub struct Producer<R: RingRef> {
    ring: R,
    tail: usize,
    cached_head: usize,
}

impl<R: RingRef> Producer<R> {
    /// Writes one record in place through `write`, which sees the slot's previous contents.
    /// Wait-free. On [`Full`], `write` is not called.
    #[inline]
    pub fn push_with(&mut self, write: impl FnOnce(&mut R::Record)) -> Result<(), Full> {
        // SAFETY: this handle is the ring's one producer claim, and `self.tail` is its tail.
        unsafe { self.ring.push_claimed(&mut self.tail, &mut self.cached_head, write) }
    }

    /// Pushes a copy of `record`. Wait-free.
    #[inline]
    pub fn push(&mut self, record: R::Record) -> Result<(), Full>
    where
        R::Record: Copy,
    {
        self.push_with(|slot| *slot = record)
    }

    /// Counts a record this producer dropped, or rejected, in the ring's counters.
    #[inline]
    pub fn count(&mut self, rejected: bool) {
        // SAFETY: this handle is the ring's one producer claim.
        unsafe { self.ring.count_claimed(rejected) }
    }

    /// The ring.
    pub fn ring(&self) -> &Ring<R::Record, R::Storage> {
        &self.ring
    }
}

impl<R: RingRef> Drop for Producer<R> {
    fn drop(&mut self) {
        self.ring.release_producer();
    }
}

/// The consumer side of a [`Ring`]. There is at most one at a time.
#[derive(Debug)]
pub struct Consumer<R: RingRef> {
    ring: R,
}

impl<R: RingRef> Consumer<R> {
    /// Reads up to `max` records in place, oldest first, and frees their slots. Wait-free.
    pub fn drain_with(&mut self, max: usize, read: impl FnMut(&R::Record)) -> usize {
        // SAFETY: this handle is the ring's one consumer claim.
        unsafe { self.ring.drain_claimed(max, read) }
    }

    /// Takes the oldest record, if any.
    pub fn pop(&mut self) -> Option<R::Record>
    where
        R::Record: Copy,
    {
        let mut out = None;
        self.drain_with(1, |record| out = Some(*record));
        out
    }

    /// The ring.
    pub fn ring(&self) -> &Ring<R::Record, R::Storage> {
        &self.ring
    }
}

impl<R: RingRef> Drop for Consumer<R> {
    fn drop(&mut self) {
        self.ring.cons.claimed.store(false, Ordering::Release);
    }
}
