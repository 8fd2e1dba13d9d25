//! A counting global allocator, installed by the harness binaries (not by the criterion
//! benches, which time peers without it).
//!
//! Counting is off until [`set_counting`] turns it on, so timed runs pay one relaxed load per
//! allocation and nothing else. When on, each allocation (`alloc`, `alloc_zeroed`, `realloc`)
//! adds one to the calling thread's own counter ([`thread_allocs`]) and to a per-thread slot
//! summed by [`process_allocs`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Install with `#[global_allocator] static A: Counting = Counting;`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
const SLOTS: usize = 512;

#[repr(align(128))]
struct Padded(AtomicU64);

static PER_THREAD: [Padded; SLOTS] = [const { Padded(AtomicU64::new(0)) }; SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // Const-initialised and without destructors: usable from inside the allocator.
    static MINE: Cell<u64> = const { Cell::new(0) };
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn note() {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let _ = MINE.try_with(|m| m.set(m.get() + 1));
    let slot = SLOT
        .try_with(|s| {
            if s.get() == usize::MAX {
                s.set(NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % SLOTS);
            }
            s.get()
        })
        .unwrap_or(SLOTS - 1);
    PER_THREAD[slot].0.fetch_add(1, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` unchanged; counting touches only atomics and
// const thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Turns counting on or off (process-wide).
pub fn set_counting(on: bool) {
    ON.store(on, Ordering::SeqCst);
}

/// Allocations counted on this thread so far.
pub fn thread_allocs() -> u64 {
    MINE.with(Cell::get)
}

/// Allocations counted on all threads so far.
pub fn process_allocs() -> u64 {
    PER_THREAD.iter().map(|p| p.0.load(Ordering::Relaxed)).sum()
}

/// True when this binary's global allocator is [`Counting`] (an allocation with counting on
/// moved this thread's counter).
pub fn installed() -> bool {
    let was = ON.load(Ordering::SeqCst);
    set_counting(true);
    let before = thread_allocs();
    drop(std::hint::black_box(Box::new(0u64)));
    let after = thread_allocs();
    set_counting(was);
    after > before
}

/// True when counting is on right now.
pub fn is_counting() -> bool {
    ON.load(Ordering::SeqCst)
}
