//! Fixed-capacity lock-free rings of `Copy` records: the only module with `unsafe`.
//!
//! - [`Ring`]: single-producer single-consumer. Push and drain are **wait-free**: a bounded
//!   number of steps whatever the other side does, no CAS, no retry loop.
//! - [`SharedRing`]: multi-producer single-consumer (Vyukov's bounded queue). Push is only
//!   **lock-free**: a producer may retry its CAS while other producers win theirs.
//! - [`Lanes`]: one [`Ring`] per producer thread plus a [`SharedRing`] fallback, drained by one
//!   consumer. Claiming a lane scans the lanes once (wait-free, bounded by the lane count).
//!
//! Slots always hold an initialized `T` (rings start filled with [`Empty::EMPTY`]), so a
//! producer can write just the parts of a record it uses and the consumer can read records in
//! place: a capture copies the bytes an event uses, not the whole fixed-size record.

#![allow(unsafe_code)]

mod lanes;
mod mpsc;
mod spsc;

pub use lanes::{
    try_consumer, try_producer, HasLanes, LaneProducer, LaneTotals, Lanes, LanesConsumer, LanesRef, Rings,
};
#[cfg(feature = "std")]
pub use mpsc::heap_seqs;
pub use mpsc::{Seqs, SharedRing};
pub use spsc::{Consumer, Producer, Ring, RingRef};

use crate::sync::UnsafeCell;

/// Pointers the handles accept: `&T`, and `Arc<T>` with `std`. Sealed: the unsafe code relies
/// on every dereference of a handle's pointer reaching the same ring, which an arbitrary
/// `Deref` implementation need not do.
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

    /// Owned storage: an array or a boxed slice, whose contents no one else can reach and
    /// whose accessors always return the same slice.
    pub trait Owned {}
    impl<T, const N: usize> Owned for [T; N] {}
    #[cfg(feature = "std")]
    impl<T> Owned for alloc::boxed::Box<[T]> {}
}

/// A record type's cheap, `const` "nothing here" value, used to fill new rings.
pub trait Empty: Copy {
    /// The value every slot starts with.
    const EMPTY: Self;
}

/// The ring is full: the record was not written. Nothing was overwritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl core::fmt::Display for Full {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ring is full")
    }
}

/// One record cell of a ring.
#[derive(Debug)]
pub struct Slot<T>(UnsafeCell<T>);

// SAFETY: a slot's cell is private to this module and only reached through the rings' index
// protocols, which give it to one thread at a time; records cross threads, hence `T: Send`.
// Without this, `[Slot<T>; N]` and `Box<[Slot<T>]>` are not `Sync`, so no ring built on them
// (and no `StaticLanes` in a `static`) is `Sync`.
unsafe impl<T: Send> Sync for Slot<T> {}

impl<T: Empty> Slot<T> {
    /// An empty slot, for building storage by hand.
    #[cfg(not(fasthog_loom))]
    pub const fn new() -> Self {
        Slot(UnsafeCell::new(T::EMPTY))
    }

    /// An empty slot (loom cells are not `const`).
    #[cfg(fasthog_loom)]
    pub fn new() -> Self {
        Slot(UnsafeCell::new(T::EMPTY))
    }
}

impl<T: Empty> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a ring keeps its slots: an inline array (`const`-constructible, for `static`s) or,
/// with `std`, a boxed slice sized at run time. The length must be a power of two. Sealed:
/// the unsafe code relies on the slots being owned by the ring and always the same.
pub trait Storage<T>: sealed::Owned {
    /// The slots.
    fn slots(&self) -> &[Slot<T>];
}

impl<T, const N: usize> Storage<T> for [Slot<T>; N] {
    #[inline(always)]
    fn slots(&self) -> &[Slot<T>] {
        self
    }
}

#[cfg(feature = "std")]
impl<T> Storage<T> for alloc::boxed::Box<[Slot<T>]> {
    #[inline(always)]
    fn slots(&self) -> &[Slot<T>] {
        self
    }
}

/// Boxed storage of `capacity` empty slots (rounded up to a power of two, at least 2).
#[cfg(feature = "std")]
pub fn heap_storage<T: Empty>(capacity: usize) -> alloc::boxed::Box<[Slot<T>]> {
    let capacity = capacity.max(2).next_power_of_two();
    (0..capacity).map(|_| Slot::new()).collect()
}

/// Pads and aligns a value to its own cache line pair (128 bytes: x86 prefetches lines in
/// pairs), so the producer's and the consumer's indices never share a line.
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
