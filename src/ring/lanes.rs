//! Lanes: per-producer chains of blocks in one pool, and the one consumer that drains them.
//!
//! A lane's bytes, block after block: entries `[len: u32][payload][pad to 8]`, and where a
//! block ends early, a link `[u32::MAX][next block: u32]` (8 bytes are kept free at the end
//! of every block for it). The producer's `published` position says how far the lane is
//! written; everything before it, in its block and in the blocks linked before it, is
//! complete.

use core::ops::Deref;

use super::free::FreeRing;
use super::memory::{Bytes, LaneState, NONE};
use super::{sealed, Full, Memory, SharedPtr};
use crate::sync::{AtomicBool, AtomicUsize, Ordering};

/// The length word that marks a link to the next block.
const LINK: u32 = u32::MAX;

/// Lanes over one pool of blocks: owned lanes (one producer thread each), shared lanes
/// (borrowed for a capture at a time) and one consumer.
#[derive(Debug)]
pub struct Lanes<M> {
    memory: M,
    free: FreeRing,
    consumer_claimed: AtomicBool,
    /// Events counted where no lane could count them (every shared lane busy, or a closed
    /// client without a lane). RMWs, off the lanes' fast path.
    unlaned_dropped: AtomicUsize,
    unlaned_rejected: AtomicUsize,
    /// log2 of the block size.
    shift: u32,
    max_entry: usize,
}

/// Types that contain one [`Lanes`]. Sealed: the unsafe code relies on `lanes()` always
/// returning the same lanes.
pub trait HasLanes: sealed::Lanes {
    /// The memory the lanes are built on.
    type Memory: Memory;
    /// The lanes.
    fn lanes(&self) -> &Lanes<Self::Memory>;
}

impl<M> sealed::Lanes for Lanes<M> {}

impl<M: Memory> HasLanes for Lanes<M> {
    type Memory = M;
    #[inline(always)]
    fn lanes(&self) -> &Self {
        self
    }
}

/// `&X` or `Arc<X>` where `X` has lanes: what lane handles hold.
pub trait LanesRef: SharedPtr + Deref<Target: HasLanes> {}

impl<R: SharedPtr + Deref<Target: HasLanes>> LanesRef for R {}

/// Totals over every lane, each wrapping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaneTotals {
    /// Entries written.
    pub pushed: usize,
    /// Events counted as dropped (no room).
    pub dropped: usize,
    /// Events counted as rejected (invalid input).
    pub rejected: usize,
    /// Events counted as sampled out (see [`crate::Sampler`]).
    pub sampled: usize,
}

/// What a drain did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    /// Entries read and taken.
    pub events: usize,
    /// True when the reader refused an entry: it stays in its lane, first in line.
    pub stopped: bool,
}

/// New lanes over `memory` of geometry `g` (a macro, so the `const` constructor for statics
/// and the one for loom's non-`const` atomics share it).
macro_rules! lanes_over {
    ($memory:expr, $g:expr) => {
        Lanes {
            free: FreeRing::full($g.blocks),
            consumer_claimed: AtomicBool::new(false),
            unlaned_dropped: AtomicUsize::new(0),
            unlaned_rejected: AtomicUsize::new(0),
            shift: $g.block_bytes.trailing_zeros(),
            max_entry: $g.max_entry,
            memory: $memory,
        }
    };
}

const fn align8(n: usize) -> usize {
    (n + 7) & !7
}

#[cfg(not(fasthog_loom))]
impl<const L: usize, const B: usize, const N: usize> Lanes<super::StaticMemory<L, B, N>> {
    /// Lanes over inline memory, usable in a `static`.
    pub const fn new_static(memory: super::StaticMemory<L, B, N>) -> Self {
        let g = memory.geometry_const();
        lanes_over!(memory, g)
    }
}

impl<M: Memory> Lanes<M> {
    /// Lanes over `memory`.
    pub fn new(memory: M) -> Self {
        let g = memory.geometry();
        lanes_over!(memory, g)
    }

    /// The memory.
    pub fn memory(&self) -> &M {
        &self.memory
    }

    /// The largest entry, in lane bytes (its 4-byte length included).
    #[inline(always)]
    pub fn max_entry(&self) -> usize {
        self.max_entry
    }

    /// Owned lanes.
    pub fn lane_count(&self) -> usize {
        self.memory.owned_lanes().len()
    }

    /// Free blocks now (a snapshot).
    pub fn free_blocks(&self) -> usize {
        self.free.len()
    }

    fn all(&self) -> impl Iterator<Item = &LaneState> {
        self.memory.owned_lanes().iter().chain(self.memory.shared_lanes())
    }

    #[inline(always)]
    fn lane(&self, index: usize) -> &LaneState {
        let owned = self.memory.owned_lanes();
        match owned.get(index) {
            Some(lane) => lane,
            None => &self.memory.shared_lanes()[index - owned.len()],
        }
    }

    /// Counters summed over every lane. Read the consumer's own counters *before* this, so a
    /// snapshot never shows more outcomes than captures.
    pub fn totals(&self) -> LaneTotals {
        let mut t = LaneTotals {
            pushed: 0,
            dropped: self.unlaned_dropped.load(Ordering::Acquire),
            rejected: self.unlaned_rejected.load(Ordering::Acquire),
            sampled: 0,
        };
        for lane in self.all() {
            t.pushed = t.pushed.wrapping_add(lane.prod.events.load(Ordering::Acquire));
            t.dropped = t.dropped.wrapping_add(lane.prod.dropped.load(Ordering::Acquire));
            t.rejected = t.rejected.wrapping_add(lane.prod.rejected.load(Ordering::Acquire));
            t.sampled = t.sampled.wrapping_add(lane.prod.sampled.load(Ordering::Acquire));
        }
        t
    }

    /// Counts an event that found no lane to count it in (a shared RMW: slow path only).
    pub fn count_unlaned(&self, rejected: bool) {
        let counter = if rejected { &self.unlaned_rejected } else { &self.unlaned_dropped };
        counter.fetch_add(1, Ordering::AcqRel);
    }

    /// Where the link of the block holding `pos` goes: the block's last 8 bytes.
    #[inline(always)]
    fn block_end(&self, pos: usize) -> usize {
        ((pos >> self.shift) << self.shift) + (1 << self.shift) - 8
    }

    /// Reads the length word at `at`.
    ///
    /// # Safety
    /// The 4 bytes at `at` are published and not yet handed back to the pool.
    #[inline(always)]
    unsafe fn read_u32(bytes: &Bytes<'_>, at: usize) -> u32 {
        // SAFETY: the caller's guarantee: published, so no producer writes them.
        unsafe { bytes.read(at, 4, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])) }
    }
}

/// Claims a free owned lane: one CAS per lane, at most once each, so wait-free and bounded by
/// the lane count. `None` when every owned lane is taken: borrow a shared lane then
/// ([`try_shared`]).
pub fn try_producer<R: LanesRef>(owner: R) -> Option<LaneProducer<R>> {
    let owned = owner.lanes().lane_count();
    claim_any(owner, 0..owned)
}

/// Borrows a free shared lane for one capture (drop it right after): one CAS per shared lane,
/// at most once each. `None` when every shared lane is busy at this instant.
pub fn try_shared<R: LanesRef>(owner: R) -> Option<LaneProducer<R>> {
    let lanes = owner.lanes();
    let owned = lanes.lane_count();
    let all = owned + lanes.memory.shared_lanes().len();
    claim_any(owner, owned..all)
}

fn claim_any<R: LanesRef>(owner: R, range: core::ops::Range<usize>) -> Option<LaneProducer<R>> {
    let index = range.into_iter().find(|&i| {
        let claimed = &owner.lanes().lane(i).prod.claimed;
        claimed.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
    })?;
    let lanes = owner.lanes();
    // Acquire on the claim orders this after the previous producer's last store.
    let pos = lanes.lane(index).prod.published.load(Ordering::Relaxed);
    let end = if pos == NONE { NONE } else { lanes.block_end(pos) };
    Some(LaneProducer { owner, index, pos, end })
}

/// The one consumer of `owner`'s lanes, unless it exists.
pub fn try_consumer<R: LanesRef>(owner: R) -> Option<LanesConsumer<R>> {
    owner
        .lanes()
        .consumer_claimed
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .ok()?;
    Some(LanesConsumer { owner })
}

/// A producer's claim on one lane. Dropping it frees the lane for another thread; what it
/// wrote stays in the lane until the consumer drains it.
#[derive(Debug)]
pub struct LaneProducer<R: LanesRef> {
    owner: R,
    index: usize,
    /// The write position (a pool offset), or [`NONE`] before the lane's first block.
    pos: usize,
    /// Where the current block's link goes: `pos <= end`.
    end: usize,
}

impl<R: LanesRef> LaneProducer<R> {
    /// Writes one entry in place. **Wait-free.**
    ///
    /// `write(area, last)` writes the entry's payload at the start of `area` and returns its
    /// length, or `None` when it needs more than `area`. `last` is true when `area` is as
    /// large as an entry may be ([`Lanes::max_entry`] less the length word): then `write` must
    /// make it fit (cutting what it must) or the entry is not written (`Full`, and no block is
    /// taken for it). It may be called twice: again, in a fresh block, when the first area was
    /// too small.
    #[inline]
    pub fn write(&mut self, mut write: impl FnMut(&mut [u8], bool) -> Option<usize>) -> Result<(), Full> {
        let max = self.owner.lanes().max_entry;
        if self.pos != NONE {
            let area = (self.end - self.pos).min(max);
            if area > 4 {
                let bytes = self.owner.lanes().memory.bytes();
                // SAFETY: `pos..pos + area` is in this lane's current block, past `published`:
                // no consumer reads it, and this handle is the lane's one producer.
                let len = unsafe { bytes.write(self.pos + 4, area - 4, |buf| write(buf, area == max)) };
                if let Some(len) = len {
                    self.commit(len);
                    return Ok(());
                }
                if area == max {
                    return Err(Full); // refused the largest area: a fresh block has no more
                }
            }
        }
        self.next_block()?;
        let bytes = self.owner.lanes().memory.bytes();
        // SAFETY: as above, in the fresh block this producer just took from the pool.
        let len = unsafe { bytes.write(self.pos + 4, max - 4, |buf| write(buf, true)) };
        self.commit(len.ok_or(Full)?);
        Ok(())
    }

    /// Publishes the entry of `len` payload bytes at `pos`.
    #[inline(always)]
    fn commit(&mut self, len: usize) {
        let lanes = self.owner.lanes();
        let lane = lanes.lane(self.index);
        // A real check, not a debug one: `write` is safe, and a length past the area would move
        // `pos` out of the block, so the next entry would be written over another lane's bytes.
        assert!(
            4 + len <= (self.end - self.pos).min(lanes.max_entry),
            "write returned a length past its area"
        );
        // SAFETY: the length word is ours like the payload (see `write`).
        unsafe {
            lanes.memory.bytes().write(self.pos, 4, |b| b.copy_from_slice(&(len as u32).to_le_bytes()))
        };
        self.pos += align8(4 + len);
        let events = &lane.prod.events;
        events.store(events.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        // The one release store of a capture: the entry, its length and the event count
        // become visible to the consumer together.
        lane.prod.published.store(self.pos, Ordering::Release);
    }

    /// Takes a fresh block from the pool and links it after the current one (or makes it the
    /// lane's first). Publishes its start, so the consumer can follow the link.
    #[cold]
    fn next_block(&mut self) -> Result<(), Full> {
        let lanes = self.owner.lanes();
        let lane = lanes.lane(self.index);
        let block = lanes.free.pop(lanes.memory.free_slots()).ok_or(Full)?;
        if self.pos == NONE {
            lane.prod.first.store(block as u32, Ordering::Relaxed);
        } else {
            let link = ((LINK as u64) | ((block as u64) << 32)).to_le_bytes();
            // SAFETY: the 8 bytes at `pos` are this lane's, unpublished: `pos <= end`, and the
            // block keeps 8 bytes past `end`.
            unsafe { lanes.memory.bytes().write(self.pos, 8, |b| b.copy_from_slice(&link)) };
        }
        self.pos = block << lanes.shift;
        self.end = lanes.block_end(self.pos);
        lane.prod.published.store(self.pos, Ordering::Release);
        Ok(())
    }

    /// Starts a capture that `gate` may close: marks the lane busy and tells whether the gate
    /// is open. Call [`LaneProducer::exit`] when the capture is done, whatever this returned.
    #[inline(always)]
    pub fn enter(&mut self, gate: &super::Gate) -> bool {
        let busy = &self.owner.lanes().lane(self.index).prod.busy;
        busy.store(busy.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        gate.open_for_producer()
    }

    /// Ends a capture started with [`LaneProducer::enter`].
    #[inline(always)]
    pub fn exit(&mut self) {
        let busy = &self.owner.lanes().lane(self.index).prod.busy;
        busy.store(busy.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
    }

    /// Counts an event this producer dropped, or rejected, in the lane's counters (a plain
    /// load and store: one writer). Wait-free.
    #[inline]
    pub fn count(&mut self, rejected: bool) {
        let lane = self.owner.lanes().lane(self.index);
        let counter = if rejected { &lane.prod.rejected } else { &lane.prod.dropped };
        counter.store(counter.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
    }

    /// Counts an event that sampling left out, in the lane's counter (a plain load and
    /// store: one writer). Wait-free.
    #[inline]
    pub fn count_sampled(&mut self) {
        let counter = &self.owner.lanes().lane(self.index).prod.sampled;
        counter.store(counter.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
    }

    /// Captures this lane has counted so far, each written, dropped, rejected or sampled out
    /// (wrapping): a number that moves by one with every capture on the lane, read from the
    /// producer's own cache line. Sampling draws its random numbers from it.
    #[inline]
    pub fn captures(&self) -> usize {
        let p = &self.owner.lanes().lane(self.index).prod;
        let written = p.events.load(Ordering::Relaxed).wrapping_add(p.dropped.load(Ordering::Relaxed));
        written
            .wrapping_add(p.rejected.load(Ordering::Relaxed))
            .wrapping_add(p.sampled.load(Ordering::Relaxed))
    }

    /// Which lane this is (owned lanes first, then shared).
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
        self.owner.lanes().lane(self.index).prod.claimed.store(false, Ordering::Release);
    }
}

/// The one consumer of a [`Lanes`]. Dropping it frees the claim: a new consumer continues
/// where this one stopped.
#[derive(Debug)]
pub struct LanesConsumer<R: LanesRef> {
    owner: R,
}

impl<R: LanesRef> LanesConsumer<R> {
    /// Reads published entries in place, lane after lane, oldest first in each, handing every
    /// finished block back to the pool. `read` returns `false` to refuse an entry: it stays
    /// first in its lane and the drain stops. Wait-free.
    pub fn drain(&mut self, mut read: impl FnMut(&[u8]) -> bool) -> Drained {
        let lanes = self.owner.lanes();
        let mut drained = Drained::default();
        for lane in lanes.all() {
            // SAFETY: this handle is the lanes' one consumer (claimed in `try_consumer`).
            unsafe { drain_lane(lanes, lane, &mut read, &mut drained) };
            if drained.stopped {
                break;
            }
        }
        drained
    }

    /// What the lanes belong to.
    pub fn owner(&self) -> &R {
        &self.owner
    }
}

impl<R: LanesRef> Drop for LanesConsumer<R> {
    fn drop(&mut self) {
        // Release: the next consumer (claimed with an acquire) sees this one's read positions.
        self.owner.lanes().consumer_claimed.store(false, Ordering::Release);
    }
}

/// Drains one lane.
///
/// # Safety
/// The caller is the lanes' one consumer.
unsafe fn drain_lane<M: Memory>(
    lanes: &Lanes<M>,
    lane: &LaneState,
    read: &mut impl FnMut(&[u8]) -> bool,
    drained: &mut Drained,
) {
    let published = lane.prod.published.load(Ordering::Acquire);
    if published == NONE {
        return;
    }
    let mut at = lane.cons.read.load(Ordering::Relaxed);
    if at == NONE {
        // `first` was stored before the `published` acquired above.
        at = (lane.prod.first.load(Ordering::Relaxed) as usize) << lanes.shift;
    }
    let bytes = lanes.memory.bytes();
    let max_payload = lanes.max_entry - 4;
    loop {
        let same_block = at >> lanes.shift == published >> lanes.shift;
        if same_block && at >= published {
            break;
        }
        // SAFETY: `at` is before `published` in its block, or in a block the producer left
        // (it wrote the link before publishing a position past it): written, not yet freed.
        let len = unsafe { Lanes::<M>::read_u32(&bytes, at) };
        if len == LINK {
            debug_assert!(!same_block);
            // SAFETY: as above; the link's second word was written with the first.
            let next = unsafe { Lanes::<M>::read_u32(&bytes, at + 4) } as usize;
            if !lanes.free.push(lanes.memory.free_slots(), at >> lanes.shift) {
                break; // the pool's slot is still being emptied: hand it back next time
            }
            at = next << lanes.shift;
            continue;
        }
        let len = len as usize;
        // Entries never reach into the 8 bytes kept for the link: a length that does is a bug,
        // and reading it would leave the block.
        assert!(len <= max_payload && align8(4 + len) <= lanes.block_end(at) - at, "corrupt lane entry");
        // SAFETY: a published entry (see above); freed only after the consumer moves past it.
        let taken = unsafe { bytes.read(at + 4, len, |payload| read(payload)) };
        if !taken {
            drained.stopped = true;
            break;
        }
        drained.events += 1;
        at += align8(4 + len);
    }
    lane.cons.read.store(at, Ordering::Relaxed);
}
