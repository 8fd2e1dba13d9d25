//! Closing lanes without a race: after [`Gate::close`] returns, every capture either wrote its
//! entry before (so the consumer's next drain finds it) or saw the gate closed (and counts its
//! event as dropped). No capture can land in a lane after the final drain.
//!
//! The classic way is Dekker's: the producer stores "busy", then loads "closed"; the closer
//! stores "closed", then loads every "busy". Each side needs a full fence between its store
//! and its load, and a full fence on the capture path costs 10-20 ns. So the fence is
//! asymmetric, as in folly's `asymmetricLightBarrier`: on Linux the closer runs
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which makes every running thread of the
//! process execute a full barrier, and the producer needs only a compiler fence. Elsewhere
//! (and before registration succeeds) both sides use full fences.

use super::Memory;
use crate::sync::{fence, AtomicBool, Ordering};

/// Open until closed, once.
#[derive(Debug, Default)]
pub struct Gate {
    closed: AtomicBool,
}

impl Gate {
    /// An open gate.
    #[cfg(not(fasthog_loom))]
    pub const fn new() -> Self {
        Gate { closed: AtomicBool::new(false) }
    }

    /// An open gate (loom atomics are not `const`).
    #[cfg(fasthog_loom)]
    pub fn new() -> Self {
        Gate { closed: AtomicBool::new(false) }
    }

    /// True once closed (a snapshot; captures use [`super::LaneProducer::enter`]).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the gate, then waits (calling `wait` between looks) until every capture that
    /// entered before has exited: a lane is done once it is seen idle, or seen to move on
    /// from the capture it was in (captures that enter after the close see it closed). Returns
    /// false if `wait` gave up (returned false) first.
    pub fn close<M: Memory>(&self, lanes: &super::Lanes<M>, mut wait: impl FnMut() -> bool) -> bool {
        self.closed.store(true, Ordering::Relaxed);
        heavy_fence();
        let memory = lanes.memory();
        for lane in memory.owned_lanes().iter().chain(memory.shared_lanes()) {
            let busy = lane.prod.busy.load(Ordering::Acquire);
            while busy % 2 == 1 && lane.prod.busy.load(Ordering::Acquire) == busy {
                if !wait() {
                    return false;
                }
            }
        }
        true
    }

    /// The producer's side, after marking itself busy: is the gate open?
    #[inline(always)]
    pub(crate) fn open_for_producer(&self) -> bool {
        light_fence();
        !self.closed.load(Ordering::Relaxed)
    }
}

/// Whether `membarrier` is registered for this process: then the light fence can be a
/// compiler fence. Set once, before the first client's first capture (see
/// [`register_heavy_fence`]); read on every capture (a relaxed load).
#[cfg(all(feature = "std", target_os = "linux", not(fasthog_loom)))]
static MEMBARRIER: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Registers this process for `membarrier`, so captures need no full fence. Idempotent; call
/// before the first capture with a gate (the std client does, when it is built).
pub fn register_heavy_fence() {
    #[cfg(all(feature = "std", target_os = "linux", not(fasthog_loom)))]
    if !MEMBARRIER.load(Ordering::Acquire) {
        // SAFETY: `membarrier` takes two integer arguments and touches no memory of ours.
        let r = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0) };
        if r == 0 {
            MEMBARRIER.store(true, Ordering::Release);
        }
    }
}

#[cfg(all(feature = "std", target_os = "linux", not(fasthog_loom)))]
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
#[cfg(all(feature = "std", target_os = "linux", not(fasthog_loom)))]
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

#[inline(always)]
fn light_fence() {
    #[cfg(all(feature = "std", target_os = "linux", not(fasthog_loom)))]
    if MEMBARRIER.load(Ordering::Relaxed) {
        core::sync::atomic::compiler_fence(Ordering::SeqCst);
        return;
    }
    fence(Ordering::SeqCst);
}

fn heavy_fence() {
    #[cfg(all(feature = "std", target_os = "linux", not(fasthog_loom)))]
    if MEMBARRIER.load(Ordering::Acquire) {
        // SAFETY: as in `register_heavy_fence`.
        let r = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0) };
        // After a successful registration the command is supported and permitted
        // (membarrier(2)), so it does not fail.
        debug_assert_eq!(r, 0, "membarrier after registration");
        return;
    }
    fence(Ordering::SeqCst);
}
