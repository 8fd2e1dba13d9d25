//! A thread's lane cache and the memory of shut-down clients (reliability issue). A test
//! binary of its own: its live-bytes allocator would count other tests' clients too.

use std::sync::atomic::Ordering;
use std::time::Duration;

use fasthog::recorder::Recorder;
use fasthog::{Client, Event};

/// Bytes allocated and not yet freed, over the whole test binary.
struct Live;
static LIVE: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl std::alloc::GlobalAlloc for Live {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's layout, passed on.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Live = Live;

/// A thread's lane cache lets go of lanes of clients that were shut down (reliability issue:
/// 78.7 MB stayed allocated after many clients in one thread pool): the next capture with
/// another client releases them, so each shut-down client's 8 MiB of lanes is freed.
/// (A thread that never captures again keeps the last one until it exits.)
#[test]
fn a_threads_lane_cache_lets_go_of_shut_down_clients() {
    // On a thread of its own: the other test's threads allocate too, but this one's cache
    // holds only what this thread claimed.
    std::thread::spawn(|| {
        let baseline = LIVE.load(Ordering::Relaxed);
        for _ in 0..8 {
            let client = Client::builder("phc_test").build_with_transport(Recorder::new()).unwrap();
            let _ = client.capture(&Event::new("e", "u"));
            client.shutdown(Duration::from_secs(5)).unwrap();
        }
        // Each claim let go of the previous shut-down client: one pool (8 MiB) is left, not
        // the four the cache has slots for.
        let stale = LIVE.load(Ordering::Relaxed) - baseline;
        assert!(stale < 12 << 20, "{stale} bytes still allocated after 8 clients were shut down");
        let last = Client::builder("phc_test").build_with_transport(Recorder::new()).unwrap();
        let before = LIVE.load(Ordering::Relaxed);
        let _ = last.capture(&Event::new("e", "u"));
        let freed = before - LIVE.load(Ordering::Relaxed);
        assert!(freed >= 8 << 20, "the last shut-down client's lanes are freed: {freed} bytes");
        last.shutdown(Duration::from_secs(5)).unwrap();
    })
    .join()
    .unwrap();
}
