//! Where lanes keep their bytes and their state: a `const` array for a `static`, or a heap
//! allocation sized at run time. Also the one place that turns a byte range of the pool into a
//! slice.

use super::{sealed, CachePadded};
use crate::sync::{AtomicBool, AtomicU32, AtomicUsize, UnsafeCell};

/// No block, no position.
pub(crate) const NONE: usize = usize::MAX;

/// How a pool is cut up. Block sizes are powers of two; entries are 8-byte aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes per block.
    pub block_bytes: usize,
    /// Blocks in the pool.
    pub blocks: usize,
    /// The most lane bytes one entry may take, its 4-byte length included: at most a block
    /// minus the 8 bytes kept at every block's end for the link to the next block.
    pub max_entry: usize,
}

impl Geometry {
    /// The smallest block.
    pub const MIN_BLOCK: usize = 64;
    /// The largest block (positions inside a block fit in `u32`).
    pub const MAX_BLOCK: usize = 1 << 24;

    /// Checks a geometry: a power-of-two block of [`Geometry::MIN_BLOCK`] to
    /// [`Geometry::MAX_BLOCK`] bytes, at least two blocks, whose byte count fits `usize`, and
    /// `max_entry` a multiple of 8 from 16 to a block less 8 bytes. The error names the rule
    /// broken.
    pub const fn check(self) -> Result<Geometry, &'static str> {
        let b = self.block_bytes;
        if !b.is_power_of_two() || b < Self::MIN_BLOCK || b > Self::MAX_BLOCK {
            return Err("block size must be a power of two from 64 bytes to 16 MiB");
        }
        if self.blocks < 2 || self.blocks > u32::MAX as usize {
            return Err("a pool needs at least two blocks (and fewer than 2^32)");
        }
        if self.blocks.checked_mul(b).is_none() || self.blocks * b == usize::MAX {
            return Err("the pool's size overflows usize");
        }
        if self.max_entry % 8 != 0 || self.max_entry < 16 || self.max_entry > b - 8 {
            return Err("max entry must be a multiple of 8 from 16 bytes to a block less 8 bytes");
        }
        Ok(self)
    }

    /// Total bytes of the pool.
    pub const fn bytes(&self) -> usize {
        self.blocks * self.block_bytes
    }
}

/// One lane's state: what its producer writes on one cache line pair, what the consumer writes
/// on another.
#[derive(Debug)]
pub struct LaneState {
    pub(crate) prod: CachePadded<ProducerSide>,
    pub(crate) cons: CachePadded<ConsumerSide>,
}

#[derive(Debug)]
pub(crate) struct ProducerSide {
    /// The producer's write position: a byte offset into the pool, inside the lane's current
    /// block; [`NONE`] before the lane's first block. Only the producer stores it (release:
    /// everything written before it is readable by the consumer that acquires it).
    pub(crate) published: AtomicUsize,
    /// The lane's first block, stored once before the first `published`.
    pub(crate) first: AtomicU32,
    /// Whether a producer handle exists.
    pub(crate) claimed: AtomicBool,
    /// Counts [`super::LaneProducer::enter`] and `exit` calls: odd while a capture that a
    /// gate may close is writing (see `gate.rs`). Producer-owned.
    pub(crate) busy: AtomicUsize,
    /// Entries written (wrapping). Producer-owned, like the three below.
    pub(crate) events: AtomicUsize,
    /// Events counted as dropped (no room).
    pub(crate) dropped: AtomicUsize,
    /// Events counted as rejected (invalid input).
    pub(crate) rejected: AtomicUsize,
    /// Events counted as sampled out (see `crate::Sampler`).
    pub(crate) sampled: AtomicUsize,
}

#[derive(Debug)]
pub(crate) struct ConsumerSide {
    /// Where the consumer reads next (a pool offset); [`NONE`] before it first reads the lane.
    /// Only the consumer touches it.
    pub(crate) read: AtomicUsize,
}

impl LaneState {
    /// A lane that never held a block.
    #[cfg(not(fasthog_loom))]
    pub const fn new() -> Self {
        LaneState {
            prod: CachePadded(ProducerSide {
                published: AtomicUsize::new(NONE),
                first: AtomicU32::new(u32::MAX),
                claimed: AtomicBool::new(false),
                busy: AtomicUsize::new(0),
                events: AtomicUsize::new(0),
                dropped: AtomicUsize::new(0),
                rejected: AtomicUsize::new(0),
                sampled: AtomicUsize::new(0),
            }),
            cons: CachePadded(ConsumerSide { read: AtomicUsize::new(NONE) }),
        }
    }

    /// A lane that never held a block (loom atomics are not `const`).
    #[cfg(fasthog_loom)]
    pub fn new() -> Self {
        LaneState {
            prod: CachePadded(ProducerSide {
                published: AtomicUsize::new(NONE),
                first: AtomicU32::new(u32::MAX),
                claimed: AtomicBool::new(false),
                busy: AtomicUsize::new(0),
                events: AtomicUsize::new(0),
                dropped: AtomicUsize::new(0),
                rejected: AtomicUsize::new(0),
                sampled: AtomicUsize::new(0),
            }),
            cons: CachePadded(ConsumerSide { read: AtomicUsize::new(NONE) }),
        }
    }
}

impl Default for LaneState {
    fn default() -> Self {
        Self::new()
    }
}

/// One slot of the free-block ring (see `free.rs`): a sequence number and a block index.
#[derive(Debug)]
pub struct FreeSlot {
    pub(crate) seq: AtomicUsize,
    pub(crate) block: AtomicU32,
}

impl FreeSlot {
    /// Slot `i` of a new pool: holds block `i`, written for position `i`.
    #[cfg(not(fasthog_loom))]
    const fn initial(i: usize) -> Self {
        FreeSlot { seq: AtomicUsize::new(i + 1), block: AtomicU32::new(i as u32) }
    }

    #[cfg(fasthog_loom)]
    fn initial(i: usize) -> Self {
        FreeSlot { seq: AtomicUsize::new(i + 1), block: AtomicU32::new(i as u32) }
    }
}

/// What lanes are built on. Sealed: the unsafe code relies on the memory being owned by the
/// lanes and its accessors always returning the same slices, so no other type can be memory:
///
/// ```compile_fail,E0277
/// struct Mine;
/// impl fasthog::ring::Memory for Mine {}
/// ```
pub trait Memory: sealed::Owned {
    /// The pool's shape (checked at construction).
    fn geometry(&self) -> Geometry;
    /// Lanes that producer threads own.
    fn owned_lanes(&self) -> &[LaneState];
    /// Lanes borrowed for one capture at a time.
    fn shared_lanes(&self) -> &[LaneState];
    /// The free-block ring's slots, one per block.
    fn free_slots(&self) -> &[FreeSlot];
    /// The pool's bytes.
    #[doc(hidden)]
    fn bytes(&self) -> Bytes<'_>;
}

/// A block of inline storage, cache-line aligned.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Block<const N: usize>(UnsafeCell<[u8; N]>);

/// Inline memory for a `static`: `LANES` owned lanes and one shared lane over `BLOCKS` blocks
/// of `BLOCK` bytes each, with entries of at most `MAX_ENTRY` bytes.
#[cfg(not(fasthog_loom))]
#[derive(Debug)]
pub struct StaticMemory<const LANES: usize, const BLOCKS: usize, const BLOCK: usize> {
    owned: [LaneState; LANES],
    shared: [LaneState; 1],
    free: [FreeSlot; BLOCKS],
    blocks: [Block<BLOCK>; BLOCKS],
    geometry: Geometry,
}

#[cfg(not(fasthog_loom))]
impl<const LANES: usize, const BLOCKS: usize, const BLOCK: usize> StaticMemory<LANES, BLOCKS, BLOCK> {
    /// Empty memory; entries may use up to half a block. Fails to compile (in a `const`
    /// context) if the geometry is not valid (see [`Geometry::check`]): one block, or a block
    /// that is not a power of two:
    ///
    /// ```compile_fail,E0080
    /// static ONE_BLOCK: fasthog::StaticQueue<1, 1, 64> = fasthog::StaticQueue::new();
    /// ```
    /// ```compile_fail,E0080
    /// static ODD_BLOCK: fasthog::StaticQueue<1, 4, 100> = fasthog::StaticQueue::new();
    /// ```
    pub const fn new() -> Self {
        let geometry = Geometry { block_bytes: BLOCK, blocks: BLOCKS, max_entry: BLOCK / 2 };
        let geometry = match geometry.check() {
            Ok(g) => g,
            Err(why) => panic!("{}", why),
        };
        let mut free = [const { FreeSlot::initial(0) }; BLOCKS];
        let mut i = 0;
        while i < BLOCKS {
            free[i] = FreeSlot::initial(i);
            i += 1;
        }
        StaticMemory {
            owned: [const { LaneState::new() }; LANES],
            shared: [const { LaneState::new() }],
            free,
            blocks: [const { Block(UnsafeCell::new([0; BLOCK])) }; BLOCKS],
            geometry,
        }
    }
}

#[cfg(not(fasthog_loom))]
impl<const L: usize, const B: usize, const N: usize> StaticMemory<L, B, N> {
    pub(crate) const fn geometry_const(&self) -> Geometry {
        self.geometry
    }
}

#[cfg(not(fasthog_loom))]
impl<const L: usize, const B: usize, const N: usize> Default for StaticMemory<L, B, N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(fasthog_loom))]
impl<const L: usize, const B: usize, const N: usize> sealed::Owned for StaticMemory<L, B, N> {}

#[cfg(not(fasthog_loom))]
impl<const L: usize, const B: usize, const N: usize> Memory for StaticMemory<L, B, N> {
    #[inline(always)]
    fn geometry(&self) -> Geometry {
        self.geometry
    }
    #[inline(always)]
    fn owned_lanes(&self) -> &[LaneState] {
        &self.owned
    }
    #[inline(always)]
    fn shared_lanes(&self) -> &[LaneState] {
        &self.shared
    }
    #[inline(always)]
    fn free_slots(&self) -> &[FreeSlot] {
        &self.free
    }
    #[inline(always)]
    fn bytes(&self) -> Bytes<'_> {
        // A pointer derived from the whole array keeps the provenance of every block; the
        // bytes sit in `UnsafeCell`s, so writing through it from `&self` is allowed.
        Bytes { base: self.blocks.as_ptr() as *mut u8, len: B * N, _memory: core::marker::PhantomData }
    }
}

/// 64 bytes of heap storage (8 under loom, so that loom tracks accesses per 8-byte word and
/// entries, which are 8-byte aligned, never share a cell).
#[cfg(all(feature = "std", not(fasthog_loom)))]
#[repr(C, align(64))]
struct Chunk(UnsafeCell<[u8; CHUNK]>);
#[cfg(fasthog_loom)]
struct Chunk(UnsafeCell<[u8; CHUNK]>);

/// Bytes per chunk (not `size_of::<Chunk>()`: loom's cell is larger than its contents).
#[cfg(all(feature = "std", not(fasthog_loom)))]
const CHUNK: usize = 64;
#[cfg(fasthog_loom)]
const CHUNK: usize = 8;

/// Memory sized at run time: owned and shared lanes over a pool on the heap.
#[cfg(any(feature = "std", fasthog_loom))]
pub struct HeapMemory {
    owned: alloc::boxed::Box<[LaneState]>,
    shared: alloc::boxed::Box<[LaneState]>,
    free: alloc::boxed::Box<[FreeSlot]>,
    chunks: alloc::boxed::Box<[Chunk]>,
    geometry: Geometry,
}

#[cfg(any(feature = "std", fasthog_loom))]
impl core::fmt::Debug for HeapMemory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HeapMemory")
            .field("owned_lanes", &self.owned.len())
            .field("shared_lanes", &self.shared.len())
            .field("geometry", &self.geometry)
            .finish()
    }
}

#[cfg(any(feature = "std", fasthog_loom))]
impl HeapMemory {
    /// Memory of this geometry (checked: see [`Geometry::check`]) with `owned` and `shared`
    /// lanes (at least one shared). Allocation failure is an error, not an abort.
    pub fn new(geometry: Geometry, owned: usize, shared: usize) -> Result<Self, &'static str> {
        let geometry = geometry.check()?;
        if shared == 0 {
            return Err("at least one shared lane is needed");
        }
        if geometry.block_bytes < CHUNK {
            return Err("block size below the heap chunk size");
        }
        let chunks = geometry.bytes() / CHUNK;
        Ok(HeapMemory {
            owned: try_boxed(owned, |_| LaneState::new())?,
            shared: try_boxed(shared, |_| LaneState::new())?,
            free: try_boxed(geometry.blocks, FreeSlot::initial)?,
            chunks: try_boxed(chunks, |_| Chunk(UnsafeCell::new([0; CHUNK])))?,
            geometry,
        })
    }
}

/// A boxed slice of `n` values, or an error if the allocation fails.
#[cfg(any(feature = "std", fasthog_loom))]
fn try_boxed<T>(n: usize, f: impl FnMut(usize) -> T) -> Result<alloc::boxed::Box<[T]>, &'static str> {
    let mut v = alloc::vec::Vec::new();
    v.try_reserve_exact(n).map_err(|_| "not enough memory for the lanes")?;
    v.extend((0..n).map(f));
    Ok(v.into_boxed_slice())
}

#[cfg(any(feature = "std", fasthog_loom))]
impl sealed::Owned for HeapMemory {}

#[cfg(any(feature = "std", fasthog_loom))]
impl Memory for HeapMemory {
    #[inline(always)]
    fn geometry(&self) -> Geometry {
        self.geometry
    }
    #[inline(always)]
    fn owned_lanes(&self) -> &[LaneState] {
        &self.owned
    }
    #[inline(always)]
    fn shared_lanes(&self) -> &[LaneState] {
        &self.shared
    }
    #[inline(always)]
    fn free_slots(&self) -> &[FreeSlot] {
        &self.free
    }
    #[cfg(not(fasthog_loom))]
    #[inline(always)]
    fn bytes(&self) -> Bytes<'_> {
        // As for `StaticMemory`: one pointer over all chunks, whose bytes are in `UnsafeCell`s.
        Bytes {
            base: self.chunks.as_ptr() as *mut u8,
            len: self.chunks.len() * CHUNK,
            _memory: core::marker::PhantomData,
        }
    }
    #[cfg(fasthog_loom)]
    fn bytes(&self) -> Bytes<'_> {
        Bytes { chunks: &self.chunks }
    }
}

/// The pool's bytes, read and written by range.
#[cfg(not(fasthog_loom))]
#[doc(hidden)]
pub struct Bytes<'m> {
    base: *mut u8,
    len: usize,
    _memory: core::marker::PhantomData<&'m [u8]>,
}

#[cfg(fasthog_loom)]
#[doc(hidden)]
pub struct Bytes<'m> {
    chunks: &'m [Chunk],
}

#[cfg(not(fasthog_loom))]
impl Bytes<'_> {
    /// Calls `f` with bytes `at..at + len` to write.
    ///
    /// # Safety
    /// No one else reads or writes any of these bytes until `f` returns (the caller's index
    /// protocol gives them to this thread alone).
    #[inline(always)]
    pub(crate) unsafe fn write<R>(&self, at: usize, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        debug_assert!(at <= self.len && len <= self.len - at);
        // SAFETY: the range is inside the pool (asserted in debug builds; the protocols keep
        // every range inside one block), and the caller holds it exclusively.
        f(unsafe { core::slice::from_raw_parts_mut(self.base.add(at), len) })
    }

    /// Calls `f` with bytes `at..at + len` to read.
    ///
    /// # Safety
    /// No one writes any of these bytes until `f` returns.
    #[inline(always)]
    pub(crate) unsafe fn read<R>(&self, at: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        debug_assert!(at <= self.len && len <= self.len - at);
        // SAFETY: inside the pool, and no writer while `f` runs (the caller's guarantee).
        f(unsafe { core::slice::from_raw_parts(self.base.add(at), len) })
    }
}

#[cfg(fasthog_loom)]
impl Bytes<'_> {
    /// Loom's version: copies through each 8-byte cell, so loom checks every access against
    /// the happens-before order (the cells are what a missing acquire would race on).
    pub(crate) unsafe fn write<R>(&self, at: usize, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let (first, last) = (at / CHUNK, (at + len).div_ceil(CHUNK));
        let mut buf = std::vec![0u8; (last - first) * CHUNK];
        for (i, c) in self.chunks[first..last].iter().enumerate() {
            // SAFETY: loom checks this access; the caller holds the range exclusively.
            c.0.with(|p| buf[i * CHUNK..(i + 1) * CHUNK].copy_from_slice(unsafe { &*p }));
        }
        let off = at - first * CHUNK;
        let out = f(&mut buf[off..off + len]);
        for (i, c) in self.chunks[first..last].iter().enumerate() {
            // SAFETY: as above.
            c.0.with_mut(|p| unsafe { &mut *p }.copy_from_slice(&buf[i * CHUNK..(i + 1) * CHUNK]));
        }
        out
    }

    pub(crate) unsafe fn read<R>(&self, at: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        let (first, last) = (at / CHUNK, (at + len).div_ceil(CHUNK));
        let mut buf = std::vec![0u8; (last - first) * CHUNK];
        for (i, c) in self.chunks[first..last].iter().enumerate() {
            // SAFETY: loom checks this access; no writer holds the range.
            c.0.with(|p| buf[i * CHUNK..(i + 1) * CHUNK].copy_from_slice(unsafe { &*p }));
        }
        let off = at - first * CHUNK;
        f(&buf[off..off + len])
    }
}

// SAFETY: the raw pointer refers to memory the `Memory` owns; `Bytes` is only a view of it for
// the lifetime of the borrow, and access is governed by the lanes' protocols.
unsafe impl Send for Bytes<'_> {}

// SAFETY: `Block` is a byte array in a cell; access to it goes through `Bytes`, whose callers
// hold the lanes' protocol guarantees (one writer, no reader of a range being written).
unsafe impl<const N: usize> Sync for Block<N> {}
// SAFETY: as for `Block`.
#[cfg(any(feature = "std", fasthog_loom))]
unsafe impl Sync for Chunk {}
