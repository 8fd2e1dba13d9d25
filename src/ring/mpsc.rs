//! The lock-free multi-producer single-consumer ring: the fallback lane when per-thread lanes
//! run out (Dmitry Vyukov's bounded queue, single consumer).

use core::marker::PhantomData;

use super::{CachePadded, Full, Slot, Storage};
use crate::sync::{AtomicUsize, Ordering};

/// A fixed-capacity MPSC ring. Push is **lock-free, not wait-free**: a producer retries its CAS
/// when another producer claimed the same position first, so under contention one producer can
/// be delayed by others (never by a stalled one). Drain is wait-free.
///
/// `S` holds the records; `Q` holds one sequence number per slot (same length).
#[derive(Debug)]
pub struct SharedRing<T, S, Q> {
    /// Next position producers claim; wrapping.
    tail: CachePadded<AtomicUsize>,
    /// Next position the consumer reads; wrapping. Only the consumer stores it.
    head: CachePadded<AtomicUsize>,
    /// Per slot: `pos` when free for the producer of position `pos`, `pos + 1` when written.
    seqs: Q,
    slots: S,
    /// Records dropped because the ring was full (shared by producers: an RMW, off the lanes'
    /// fast path).
    dropped: AtomicUsize,
    /// Records rejected as invalid input by producers of this ring.
    rejected: AtomicUsize,
    _records: PhantomData<T>,
}

/// Where a [`SharedRing`] keeps its slot sequence numbers: an array or (`std`) a boxed
/// slice. Sealed, like [`Storage`].
pub trait Seqs: super::sealed::Owned {
    /// One sequence number per slot, initialised to its index.
    fn seqs(&self) -> &[AtomicUsize];
}

impl<const N: usize> Seqs for [AtomicUsize; N] {
    #[inline(always)]
    fn seqs(&self) -> &[AtomicUsize] {
        self
    }
}

#[cfg(feature = "std")]
impl Seqs for alloc::boxed::Box<[AtomicUsize]> {
    #[inline(always)]
    fn seqs(&self) -> &[AtomicUsize] {
        self
    }
}

/// Boxed sequence numbers for a [`SharedRing`] of `capacity` slots (rounded like
/// [`super::heap_storage`]).
#[cfg(feature = "std")]
pub fn heap_seqs(capacity: usize) -> alloc::boxed::Box<[AtomicUsize]> {
    let capacity = capacity.max(2).next_power_of_two();
    (0..capacity).map(AtomicUsize::new).collect()
}

// SAFETY: records are `Copy`, and each slot is handed between threads by the release/acquire
// protocol on its sequence number, so one thread at a time accesses it.
unsafe impl<T: Send, S: Send, Q: Send> Send for SharedRing<T, S, Q> {}
// SAFETY: as for `Send`; all shared mutation is through atomics or handed-over slots.
unsafe impl<T: Send, S: Sync, Q: Sync> Sync for SharedRing<T, S, Q> {}

#[cfg(not(fasthog_loom))]
impl<T: super::Empty, const N: usize> SharedRing<T, [Slot<T>; N], [AtomicUsize; N]> {
    /// An empty ring with inline storage, usable in a `static`. `N` must be a power of two,
    /// and at least 2 (with one slot, "written for position p" and "free for p + 1" would be
    /// the same sequence number):
    ///
    /// ```compile_fail,E0080
    /// static ONE: fasthog::StaticQueue<1, 1> = fasthog::StaticQueue::new();
    /// ```
    pub const fn new() -> Self {
        const { assert!(N.is_power_of_two() && N >= 2, "shared ring capacity must be a power of two, at least 2") };
        let mut seqs = [const { AtomicUsize::new(0) }; N];
        let mut i = 0;
        while i < N {
            seqs[i] = AtomicUsize::new(i);
            i += 1;
        }
        Self::from_checked([const { Slot::new() }; N], seqs)
    }
}

#[cfg(not(fasthog_loom))]
impl<T: super::Empty, const N: usize> Default for SharedRing<T, [Slot<T>; N], [AtomicUsize; N]> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, S: Storage<T>, Q: Seqs> SharedRing<T, S, Q> {
    /// A ring over the given storage.
    ///
    /// # Panics
    /// Unless both have the same power-of-two length of at least 2 and `seqs[i]` is `i`:
    /// otherwise positions would alias slots.
    pub fn with_storage(slots: S, seqs: Q) -> Self {
        let (n, q) = (slots.slots().len(), seqs.seqs());
        assert!(
            n.is_power_of_two() && n >= 2,
            "shared ring capacity must be a power of two, at least 2, not {n}"
        );
        assert_eq!(q.len(), n, "one sequence number per slot");
        assert!(
            q.iter().enumerate().all(|(i, s)| s.load(Ordering::Relaxed) == i),
            "sequence numbers must start at their slot index"
        );
        Self::from_checked(slots, seqs)
    }

    #[cfg(not(fasthog_loom))]
    const fn from_checked(slots: S, seqs: Q) -> Self {
        SharedRing {
            tail: CachePadded(AtomicUsize::new(0)),
            head: CachePadded(AtomicUsize::new(0)),
            seqs,
            slots,
            dropped: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
            _records: PhantomData,
        }
    }

    #[cfg(fasthog_loom)]
    fn from_checked(slots: S, seqs: Q) -> Self {
        SharedRing {
            tail: CachePadded(AtomicUsize::new(0)),
            head: CachePadded(AtomicUsize::new(0)),
            seqs,
            slots,
            dropped: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
            _records: PhantomData,
        }
    }

    /// How many records the ring holds.
    pub fn capacity(&self) -> usize {
        self.slots.slots().len()
    }

    /// Records pushed and not yet consumed (a snapshot). Counts positions claimed by producers
    /// that are still writing.
    pub fn len(&self) -> usize {
        let head = self.head.load(Ordering::Acquire);
        self.tail.load(Ordering::Acquire).wrapping_sub(head)
    }

    /// True when [`SharedRing::len`] is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Positions ever claimed by producers (wrapping): records pushed, or being pushed.
    pub fn pushed(&self) -> usize {
        self.tail.load(Ordering::Acquire)
    }

    /// Records counted as dropped (wrapping).
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Acquire)
    }

    /// Records counted as rejected (wrapping).
    pub fn rejected(&self) -> usize {
        self.rejected.load(Ordering::Acquire)
    }

    /// Counts one record as dropped, or rejected.
    pub fn count(&self, rejected: bool) {
        let counter = if rejected { &self.rejected } else { &self.dropped };
        counter.fetch_add(1, Ordering::AcqRel);
    }

    /// Writes one record in place from any thread. Lock-free; on [`Full`] nothing is written.
    pub fn push_with(&self, write: impl FnOnce(&mut T)) -> Result<(), Full> {
        let slots = self.slots.slots();
        let seqs = self.seqs.seqs();
        let mask = slots.len() - 1;
        let mut pos = self.tail.load(Ordering::Relaxed);
        loop {
            let seq = seqs[pos & mask].load(Ordering::Acquire);
            match (seq as isize).wrapping_sub(pos as isize) {
                0 => match self.tail.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(now) => pos = now,
                },
                // The slot still holds the record from one lap ago: full.
                d if d < 0 => return Err(Full),
                // Another producer took `pos`; catch up.
                _ => pos = self.tail.load(Ordering::Relaxed),
            }
        }
        let i = pos & mask;
        // Publishes the position even if `write` panics, so the consumer never waits forever
        // on it (it then reads whatever `write` left in the slot: records are plain data).
        struct Publish<'s>(&'s AtomicUsize, usize);
        impl Drop for Publish<'_> {
            fn drop(&mut self) {
                self.0.store(self.1, Ordering::Release);
            }
        }
        let _publish = Publish(&seqs[i], pos.wrapping_add(1));
        // SAFETY: the CAS gave this producer position `pos` alone, and `seqs[i] == pos`
        // (acquired) says the consumer has finished with the slot's previous record. The
        // consumer will not read it before `_publish` stores `pos + 1` (release) on drop.
        slots[i].0.with_mut(|record| write(unsafe { &mut *record }));
        Ok(())
    }

    /// Reads up to `max` records in place, oldest first, and frees their slots. Stops early at
    /// a position a producer has claimed but not yet written.
    ///
    /// # Safety
    /// The caller is the only consumer of this ring.
    pub(super) unsafe fn drain_claimed(&self, max: usize, mut read: impl FnMut(&T)) -> usize {
        let slots = self.slots.slots();
        let seqs = self.seqs.seqs();
        let mask = slots.len() - 1;
        let mut head = self.head.load(Ordering::Relaxed);
        let mut n = 0;
        while n < max {
            let i = head & mask;
            if seqs[i].load(Ordering::Acquire) != head.wrapping_add(1) {
                break;
            }
            // SAFETY: the acquired sequence `head + 1` says the producer of `head` finished
            // writing; producers do not touch the slot again until we store `head + capacity`.
            slots[i].0.with(|record| read(unsafe { &*record }));
            seqs[i].store(head.wrapping_add(slots.len()), Ordering::Release);
            head = head.wrapping_add(1);
            self.head.store(head, Ordering::Release);
            n += 1;
        }
        n
    }
}
