//! The one place atomics and cells come from, so `cfg(fasthog_loom)` can swap in loom's checked versions.

#[cfg(fasthog_loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(fasthog_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize};

#[cfg(not(fasthog_loom))]
pub(crate) use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize};

pub(crate) use core::sync::atomic::Ordering;

/// `core::cell::UnsafeCell` with loom's closure API, so ring code reads the same under both.
#[cfg(not(fasthog_loom))]
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(fasthog_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }
}
