//! The pool's free blocks: a bounded ring of block indices (Vyukov's bounded queue) with one
//! pusher, the consumer, handing finished blocks back, and many poppers, the producers taking
//! a fresh block. A pop makes a bounded number of attempts, so it never spins.

use super::memory::FreeSlot;
use super::POP_ATTEMPTS;
use crate::sync::{AtomicUsize, Ordering};

/// The ring's two positions. Slot `p % n` holds position `p`: its `seq` is `p + 1` once the
/// consumer wrote it, and `p + n` once a producer took it (free for position `p + n`).
#[derive(Debug)]
pub(crate) struct FreeRing {
    /// Next position producers take; advanced by CAS.
    pub(crate) head: super::CachePadded<AtomicUsize>,
    /// Next position the consumer writes. Only the consumer stores it.
    pub(crate) tail: super::CachePadded<AtomicUsize>,
}

impl FreeRing {
    /// A ring whose `n` slots hold every block (see `FreeSlot::initial`).
    #[cfg(not(fasthog_loom))]
    pub(crate) const fn full(n: usize) -> Self {
        FreeRing {
            head: super::CachePadded(AtomicUsize::new(0)),
            tail: super::CachePadded(AtomicUsize::new(n)),
        }
    }

    #[cfg(fasthog_loom)]
    pub(crate) fn full(n: usize) -> Self {
        FreeRing {
            head: super::CachePadded(AtomicUsize::new(0)),
            tail: super::CachePadded(AtomicUsize::new(n)),
        }
    }

    /// Takes a free block: `None` when there is none, or after [`POP_ATTEMPTS`] lost races.
    pub(crate) fn pop(&self, slots: &[FreeSlot]) -> Option<usize> {
        let n = slots.len();
        let mut head = self.head.load(Ordering::Relaxed);
        for _ in 0..POP_ATTEMPTS {
            let slot = &slots[head % n];
            let seq = slot.seq.load(Ordering::Acquire);
            let lag = seq.wrapping_sub(head.wrapping_add(1)) as isize;
            if lag < 0 {
                return None; // not written yet: the ring is empty
            }
            if lag > 0 {
                head = self.head.load(Ordering::Relaxed); // another producer took it
                continue;
            }
            match self.head.compare_exchange(head, head.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    // The acquire of `seq` above ordered this after the consumer's write.
                    let block = slot.block.load(Ordering::Relaxed) as usize;
                    slot.seq.store(head.wrapping_add(n), Ordering::Release);
                    return Some(block);
                }
                Err(now) => head = now,
            }
        }
        None
    }

    /// Hands `block` back. Consumer only. `false` when its slot is still being taken by a
    /// producer (between its CAS and its release): try again later.
    pub(crate) fn push(&self, slots: &[FreeSlot], block: usize) -> bool {
        let n = slots.len();
        let tail = self.tail.load(Ordering::Relaxed);
        let slot = &slots[tail % n];
        if slot.seq.load(Ordering::Acquire) != tail {
            return false;
        }
        slot.block.store(block as u32, Ordering::Relaxed);
        slot.seq.store(tail.wrapping_add(1), Ordering::Release);
        self.tail.store(tail.wrapping_add(1), Ordering::Relaxed);
        true
    }

    /// Free blocks now (a snapshot).
    pub(crate) fn len(&self) -> usize {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Relaxed);
        tail.wrapping_sub(head).min(isize::MAX as usize)
    }
}
