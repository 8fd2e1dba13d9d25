//! Byte lanes over a pool of fixed-size blocks: the only module with `unsafe`.
//!
//! An event is a variable-length *entry* of bytes. Each producer thread owns a *lane*: a chain
//! of blocks taken from one shared pool. A capture reserves exactly the bytes its entry needs,
//! contiguous in the lane's current block (never split across blocks), writes them in place
//! and publishes them with one release store of the lane's write position. When the current
//! block has no room, the producer links a fresh block from the pool; the single consumer
//! reads entries in place, block after block, and hands each finished block back to the pool.
//! So one busy thread can use most of the memory, and an idle lane holds one block at most.
//!
//! Progress, exactly:
//! - **A lane's own producer is wait-free**: a capture is a bounded number of steps whatever
//!   other threads do. Taking a block from the pool (once per block, not per event) makes at
//!   most [`POP_ATTEMPTS`] compare-and-swap attempts against other producers taking blocks at
//!   the same instant; losing them all (or an empty pool) fails the capture, which the caller
//!   counts as dropped.
//! - **Shared lanes** serve threads that found every owned lane taken: such a capture borrows a
//!   free shared lane for its duration (one CAS per lane tried, one scan), so it is wait-free
//!   too, and fails (counted as dropped) when every shared lane is busy at that instant.
//! - **The consumer is wait-free**: a drain reads what was published, never waits for a
//!   producer.
//!
//! Memory is fixed at construction: a [`StaticMemory`] array (`const`, for a `static` in
//! `no_std` builds) or, with `std`, [`HeapMemory`] sized at run time.

#![allow(unsafe_code)]

mod free;
mod gate;
mod lanes;
mod memory;

pub use gate::{register_heavy_fence, Gate};
pub use lanes::{
    try_consumer, try_producer, try_shared, Drained, HasLanes, LaneProducer, LaneTotals, Lanes,
    LanesConsumer, LanesRef,
};
#[cfg(any(feature = "std", fasthog_loom))]
pub use memory::HeapMemory;
#[cfg(not(fasthog_loom))]
pub use memory::StaticMemory;
pub use memory::{Block, Geometry, Memory};

/// Attempts a producer makes to take a block from the pool before it gives up (each failed
/// attempt means another producer took a block at the same instant).
pub const POP_ATTEMPTS: usize = 16;

/// Pointers the handles accept: `&T`, and `Arc<T>` with `std`. Sealed: the unsafe code relies
/// on every dereference of a handle's pointer reaching the same lanes, which an arbitrary
/// `Deref` implementation need not do. Any other pointer is refused:
///
/// ```compile_fail,E0277
/// let queue = Box::new(fasthog::HeapQueue::with_blocks(1, 4, 1024));
/// let _consumer = fasthog::ring::try_consumer(queue);
/// ```
pub trait SharedPtr: core::ops::Deref + sealed::Ptr {}

impl<P: core::ops::Deref + sealed::Ptr> SharedPtr for P {}

pub(crate) mod sealed {
    /// Stable-address pointers.
    pub trait Ptr {}
    impl<T: ?Sized> Ptr for &T {}
    #[cfg(feature = "std")]
    impl<T: ?Sized> Ptr for alloc::sync::Arc<T> {}
    #[cfg(fasthog_loom)]
    impl<T: ?Sized> Ptr for loom::sync::Arc<T> {}

    /// Types whose `lanes()` always returns the same lanes.
    pub trait Lanes {}

    /// Owned memory: no one else can reach its contents, and its accessors always return the
    /// same slices.
    pub trait Owned {}
}

/// No room: the lane's block is full and the pool had no free block (or every shared lane
/// was busy). Nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl core::fmt::Display for Full {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("no room in the lane")
    }
}

impl core::error::Error for Full {}

/// Pads and aligns a value to its own cache line pair (128 bytes: x86 prefetches lines in
/// pairs), so the producer's and the consumer's state never share a line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> core::ops::Deref for CachePadded<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}
