//! The rings, deterministically: order, wraparound, fullness, counters, claims, and the
//! accounting of records moved by several threads. Interleavings are explored by
//! `tests/loom.rs`; these tests check outcomes, never timings.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use fasthog::ring::{
    heap_seqs, heap_storage, try_consumer, try_producer, Empty, Full, HasLanes, LaneProducer, Lanes, Ring,
    SharedRing, Slot,
};
use fasthog::{Captured, Event, FixedClock, HeapQueue, StaticQueue};

/// A test record: who wrote it, into which ring, and its place in the writer's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rec {
    producer: u32,
    ring: u32,
    seq: u32,
}

impl Empty for Rec {
    const EMPTY: Rec = Rec { producer: u32::MAX, ring: u32::MAX, seq: u32::MAX };
}

/// `ring` value of records pushed into the shared fallback ring.
const SHARED: u32 = u32::MAX - 1;

fn rec(seq: u32) -> Rec {
    Rec { producer: 0, ring: 0, seq }
}

type Ring4 = Ring<Rec, [Slot<Rec>; 4]>;
type Lanes4<const L: usize> = Lanes<Rec, [Slot<Rec>; 4], [AtomicUsize; 4], [Ring4; L]>;
type Lanes64<const L: usize> =
    Lanes<Rec, [Slot<Rec>; 64], [AtomicUsize; 64], [Ring<Rec, [Slot<Rec>; 64]>; L]>;

fn lanes4<const L: usize>() -> Lanes4<L> {
    Lanes::from_parts([const { Ring::new() }; L], SharedRing::new())
}

fn lanes64<const L: usize>() -> Lanes64<L> {
    Lanes::from_parts([const { Ring::new() }; L], SharedRing::new())
}

// ---------------------------------------------------------------------------------------------
// Send / Sync contracts

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}

/// A `Copy` record that must not cross threads.
#[derive(Clone, Copy)]
#[allow(dead_code)]
struct NotSend(*const u8);

impl Empty for NotSend {
    const EMPTY: NotSend = NotSend(core::ptr::null());
}

/// `<T as NotSyncCheck<_>>::check` resolves only if `T` is not `Sync` (with `Sync`, both impls
/// apply and the `_` is ambiguous): a compile-time negative assertion.
trait NotSyncCheck<A> {
    fn check() {}
}
impl<T: ?Sized> NotSyncCheck<()> for T {}
impl<T: ?Sized + Sync> NotSyncCheck<u8> for T {}

/// As [`NotSyncCheck`], for `Send`.
trait NotSendCheck<A> {
    fn check() {}
}
impl<T: ?Sized> NotSendCheck<()> for T {}
impl<T: ?Sized + Send> NotSendCheck<u8> for T {}

#[test]
fn send_sync_contracts() {
    // Rings, inline and boxed, are shared between a producer and a consumer thread.
    assert_send::<Ring4>();
    assert_sync::<Ring4>();
    assert_send::<Ring<Rec, Box<[Slot<Rec>]>>>();
    assert_sync::<Ring<Rec, Box<[Slot<Rec>]>>>();
    assert_send::<SharedRing<Rec, [Slot<Rec>; 4], [AtomicUsize; 4]>>();
    assert_sync::<SharedRing<Rec, [Slot<Rec>; 4], [AtomicUsize; 4]>>();
    assert_sync::<SharedRing<Rec, Box<[Slot<Rec>]>, Box<[AtomicUsize]>>>();
    assert_send::<Lanes4<2>>();
    assert_sync::<Lanes4<2>>();
    assert_send::<StaticQueue<2, 64>>();
    assert_sync::<StaticQueue<2, 64>>();
    assert_send::<HeapQueue>();
    assert_sync::<HeapQueue>();
    // Handles move to the thread that uses them.
    assert_send::<LaneProducer<&'static StaticQueue<2, 64>>>();
    assert_sync::<LaneProducer<&'static StaticQueue<2, 64>>>();
    assert_send::<LaneProducer<Arc<HeapQueue>>>();
    assert_send::<fasthog::ring::LanesConsumer<Arc<HeapQueue>>>();
    assert_send::<fasthog::ring::Producer<&'static Ring4>>();
    assert_send::<fasthog::ring::Consumer<Arc<Ring4>>>();
    // Records that are not `Send` make rings that are neither `Send` nor `Sync`.
    <Slot<NotSend> as NotSyncCheck<_>>::check();
    <Ring<NotSend, [Slot<NotSend>; 4]> as NotSyncCheck<_>>::check();
    <Ring<NotSend, [Slot<NotSend>; 4]> as NotSendCheck<_>>::check();
    <SharedRing<NotSend, [Slot<NotSend>; 4], [AtomicUsize; 4]> as NotSyncCheck<_>>::check();
}

/// The whole point of `const fn new`: lanes in a `static`, shared by plain references.
static STATIC_LANES: Lanes4<2> = Lanes::from_parts([Ring::new(), Ring::new()], SharedRing::new());

#[test]
fn static_lanes_work_across_threads() {
    thread::scope(|s| {
        for t in 0..2u32 {
            s.spawn(move || {
                let mut p = try_producer(&STATIC_LANES).expect("two lanes for two threads");
                p.push_with(|r| *r = Rec { producer: t, ring: 0, seq: 1 }).unwrap();
            });
        }
    });
    let mut c = try_consumer(&STATIC_LANES).unwrap();
    let mut got = Vec::new();
    assert_eq!(c.drain_with(usize::MAX, |r| got.push(r.producer)), 2);
    got.sort_unstable();
    assert_eq!(got, [0, 1]);
}

// ---------------------------------------------------------------------------------------------
// SPSC `Ring`

#[test]
fn push_pop_fifo() {
    let ring = Ring4::new();
    assert_eq!(ring.capacity(), 4);
    let mut p = Ring::try_producer(&ring).unwrap();
    let mut c = Ring::try_consumer(&ring).unwrap();
    assert_eq!(c.pop(), None);
    for i in 1..=3 {
        p.push(rec(i)).unwrap();
    }
    assert_eq!(ring.len(), 3);
    assert_eq!(c.pop(), Some(rec(1)));
    p.push(rec(4)).unwrap();
    assert_eq!(c.pop(), Some(rec(2)));
    assert_eq!(c.pop(), Some(rec(3)));
    assert_eq!(c.pop(), Some(rec(4)));
    assert_eq!(c.pop(), None);
    assert!(ring.is_empty());
}

#[test]
fn wraparound_over_many_laps() {
    let ring = Ring4::new();
    let mut p = Ring::try_producer(&ring).unwrap();
    let mut c = Ring::try_consumer(&ring).unwrap();
    let (mut next_in, mut next_out) = (0u32, 0u32);
    // Batches of 1..=4 records, so every head/tail offset modulo the capacity occurs.
    for lap in 0..10_000u32 {
        let batch = lap % 4 + 1;
        for _ in 0..batch {
            p.push(rec(next_in)).unwrap();
            next_in += 1;
        }
        assert_eq!(ring.len(), batch as usize);
        let drained = c.drain_with(usize::MAX, |r| {
            assert_eq!(r.seq, next_out);
            next_out += 1;
        });
        assert_eq!(drained, batch as usize);
    }
    assert_eq!(next_out, next_in);
    assert_eq!(ring.pushed(), next_in as usize);
    assert!(ring.is_empty());
}

#[test]
fn full_ring_returns_full_and_overwrites_nothing() {
    let ring = Ring4::new();
    let mut p = Ring::try_producer(&ring).unwrap();
    let mut c = Ring::try_consumer(&ring).unwrap();
    for i in 0..4 {
        p.push(rec(i)).unwrap();
    }
    assert_eq!(p.push(rec(99)), Err(Full));
    let mut called = false;
    assert_eq!(p.push_with(|_| called = true), Err(Full));
    assert!(!called, "write must not run on a full ring");
    assert_eq!(ring.pushed(), 4, "a rejected push is not counted as pushed");
    assert_eq!(ring.len(), 4);

    // One slot freed: exactly one more push fits, and it lands after the others.
    assert_eq!(c.pop(), Some(rec(0)));
    p.push(rec(4)).unwrap();
    assert_eq!(p.push(rec(100)), Err(Full));
    let mut got = Vec::new();
    c.drain_with(usize::MAX, |r| got.push(r.seq));
    assert_eq!(got, [1, 2, 3, 4]);
}

#[test]
fn push_with_sees_previous_contents_and_drain_respects_max() {
    let ring = Ring4::new();
    let mut p = Ring::try_producer(&ring).unwrap();
    let mut c = Ring::try_consumer(&ring).unwrap();
    // A fresh slot holds EMPTY.
    p.push_with(|r| {
        assert_eq!(*r, Rec::EMPTY);
        r.seq = 7;
    })
    .unwrap();
    for i in 1..4 {
        p.push(rec(i)).unwrap();
    }
    assert_eq!(c.drain_with(0, |_| panic!("max 0 reads nothing")), 0);
    let mut got = Vec::new();
    assert_eq!(c.drain_with(2, |r| got.push(r.seq)), 2);
    assert_eq!(got, [7, 1]);
    // The slot of position 0 is reused by position 4 and still holds that record: a producer
    // writing only some fields keeps the rest.
    p.push_with(|r| {
        assert_eq!(r.seq, 7);
        r.producer = 5;
    })
    .unwrap();
    got.clear();
    assert_eq!(c.drain_with(usize::MAX, |r| got.push(r.seq)), 3);
    assert_eq!(got, [2, 3, 7]);
}

#[test]
fn ring_counters() {
    let ring = Ring4::new();
    let mut p = Ring::try_producer(&ring).unwrap();
    for _ in 0..3 {
        p.count(false);
    }
    for _ in 0..2 {
        p.count(true);
    }
    p.push(rec(0)).unwrap();
    assert_eq!((ring.pushed(), ring.dropped(), ring.rejected()), (1, 3, 2));
    // Counters belong to the ring, not the handle: they survive a re-claim.
    drop(p);
    let mut p = Ring::try_producer(&ring).unwrap();
    p.count(false);
    assert_eq!((ring.pushed(), ring.dropped(), ring.rejected()), (1, 4, 2));
}

#[test]
fn producer_claim_is_exclusive_and_reclaim_continues_at_tail() {
    let ring = Ring4::new();
    let mut c = Ring::try_consumer(&ring).unwrap();
    let mut p1 = Ring::try_producer(&ring).unwrap();
    assert!(Ring::try_producer(&ring).is_none());
    p1.push(rec(0)).unwrap();
    p1.push(rec(1)).unwrap();
    assert!(Ring::try_producer(&ring).is_none());
    drop(p1);

    let mut p2 = Ring::try_producer(&ring).expect("the claim is free again");
    assert!(Ring::try_producer(&ring).is_none());
    p2.push(rec(2)).unwrap();
    p2.push(rec(3)).unwrap();
    assert_eq!(p2.push(rec(4)), Err(Full), "the new producer knows the ring is full");
    assert_eq!(c.pop(), Some(rec(0)));
    drop(p2);

    // A third claim after the consumer moved: exactly one free slot, at the right place.
    let mut p3 = Ring::try_producer(&ring).unwrap();
    p3.push(rec(4)).unwrap();
    assert_eq!(p3.push(rec(5)), Err(Full));
    let mut got = Vec::new();
    c.drain_with(usize::MAX, |r| got.push(r.seq));
    assert_eq!(got, [1, 2, 3, 4]);
    assert_eq!(ring.pushed(), 5);
}

#[test]
fn consumer_claim_is_exclusive_and_reclaim_continues_at_head() {
    let ring = Ring4::new();
    let mut p = Ring::try_producer(&ring).unwrap();
    for i in 0..3 {
        p.push(rec(i)).unwrap();
    }
    let mut c1 = Ring::try_consumer(&ring).unwrap();
    assert!(Ring::try_consumer(&ring).is_none());
    assert_eq!(c1.pop(), Some(rec(0)));
    drop(c1);
    let mut c2 = Ring::try_consumer(&ring).expect("the claim is free again");
    assert!(Ring::try_consumer(&ring).is_none());
    assert_eq!(c2.pop(), Some(rec(1)));
    assert_eq!(c2.pop(), Some(rec(2)));
    assert_eq!(c2.pop(), None);
}

#[test]
fn heap_storage_rounds_to_a_power_of_two() {
    assert_eq!(heap_storage::<Rec>(0).len(), 2);
    assert_eq!(heap_storage::<Rec>(1).len(), 2);
    assert_eq!(heap_storage::<Rec>(5).len(), 8);
    assert_eq!(heap_storage::<Rec>(64).len(), 64);
    assert_eq!(heap_seqs(5).len(), 8);
    let seqs = heap_seqs(4);
    let starts: Vec<usize> = seqs.iter().map(|s| s.load(Ordering::Relaxed)).collect();
    assert_eq!(starts, [0, 1, 2, 3], "slot sequence numbers start at their index");
    let ring = Ring::<Rec, _>::with_storage(heap_storage(3));
    assert_eq!(ring.capacity(), 4);
}

#[test]
fn spsc_across_threads_keeps_order() {
    const N: u32 = 200_000;
    let ring = Arc::new(Ring::<Rec, _>::with_storage(heap_storage(64)));
    let mut p = Ring::try_producer(ring.clone()).unwrap();
    let mut c = Ring::try_consumer(ring.clone()).unwrap();
    let producer = thread::spawn(move || {
        let mut full = 0usize;
        for i in 0..N {
            while p.push(rec(i)).is_err() {
                full += 1;
                thread::yield_now();
            }
        }
        full
    });
    let mut next = 0u32;
    while next < N {
        if c.drain_with(usize::MAX, |r| {
            assert_eq!(r.seq, next, "records arrive in push order, none lost or repeated");
            next += 1;
        }) == 0
        {
            thread::yield_now();
        }
    }
    producer.join().unwrap();
    assert_eq!(c.pop(), None);
    assert_eq!(ring.pushed(), N as usize);
}

// ---------------------------------------------------------------------------------------------
// `SharedRing` (through `Lanes`, its only consumer)

#[test]
fn shared_ring_full_is_counted_and_overwrites_nothing() {
    let lanes = lanes4::<0>();
    let shared = lanes.shared();
    assert_eq!(shared.capacity(), 4);
    for i in 0..4 {
        shared.push_with(|r| *r = rec(i)).unwrap();
    }
    let mut called = false;
    assert_eq!(shared.push_with(|_| called = true), Err(Full));
    assert!(!called);
    shared.count(false);
    shared.count(true);
    shared.count(true);
    assert_eq!((shared.pushed(), shared.dropped(), shared.rejected()), (4, 1, 2));
    assert_eq!(shared.len(), 4);

    let mut c = try_consumer(&lanes).unwrap();
    let mut got = Vec::new();
    assert_eq!(c.drain_with(1, |r| got.push(r.seq)), 1);
    shared.push_with(|r| *r = rec(4)).unwrap();
    assert_eq!(shared.push_with(|r| *r = rec(5)), Err(Full));
    c.drain_with(usize::MAX, |r| got.push(r.seq));
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert!(shared.is_empty());
}

#[test]
fn shared_ring_wraps_over_many_laps() {
    let lanes = lanes4::<0>();
    let mut c = try_consumer(&lanes).unwrap();
    let (mut next_in, mut next_out) = (0u32, 0u32);
    for lap in 0..10_000u32 {
        for _ in 0..lap % 4 + 1 {
            lanes.shared().push_with(|r| *r = rec(next_in)).unwrap();
            next_in += 1;
        }
        c.drain_with(usize::MAX, |r| {
            assert_eq!(r.seq, next_out);
            next_out += 1;
        });
        assert_eq!(next_out, next_in);
    }
    assert_eq!(lanes.shared().pushed(), next_in as usize);
}

/// What one producer thread did: the sequence numbers it counted as dropped and rejected.
#[derive(Default)]
struct Outcome {
    dropped: BTreeSet<u32>,
    rejected: BTreeSet<u32>,
}

/// Drains `lanes` on this thread until `done` is set and a drain after it finds nothing.
fn consume_until_done<const L: usize>(lanes: &Lanes64<L>, done: &AtomicBool) -> Vec<Rec> {
    let mut c = try_consumer(lanes).expect("one consumer");
    let mut got = Vec::new();
    loop {
        // Read `done` before draining: every push finished before `done` was set is then
        // visible to this drain.
        let finished = done.load(Ordering::Acquire);
        let n = c.drain_with(64, |r| got.push(*r));
        if n == 0 {
            if finished {
                return got;
            }
            thread::yield_now();
        }
    }
}

/// Every record of every producer arrives exactly once or is counted exactly once, and the
/// records of one producer through one ring arrive in order.
fn check_accounting(got: &[Rec], outcomes: &[Outcome], per_producer: u32) {
    let mut last: BTreeMap<(u32, u32), u32> = BTreeMap::new();
    let mut seen: Vec<BTreeSet<u32>> = outcomes.iter().map(|_| BTreeSet::new()).collect();
    for r in got {
        if let Some(&prev) = last.get(&(r.producer, r.ring)) {
            assert!(prev < r.seq, "producer {} ring {}: {} after {}", r.producer, r.ring, r.seq, prev);
        }
        last.insert((r.producer, r.ring), r.seq);
        assert!(seen[r.producer as usize].insert(r.seq), "duplicate {r:?}");
    }
    for (p, (seen, outcome)) in seen.iter().zip(outcomes).enumerate() {
        assert!(seen.is_disjoint(&outcome.dropped), "producer {p}: a dropped record arrived");
        assert!(seen.is_disjoint(&outcome.rejected), "producer {p}: a rejected record arrived");
        assert!(outcome.dropped.is_disjoint(&outcome.rejected));
        let total = seen.len() + outcome.dropped.len() + outcome.rejected.len();
        assert_eq!(total, per_producer as usize, "producer {p}: records lost");
    }
}

#[test]
fn shared_ring_many_producers_lose_nothing() {
    const PRODUCERS: u32 = 4;
    const PER: u32 = 50_000;
    let lanes = Arc::new(lanes64::<0>());
    let done = AtomicBool::new(false);
    let (got, outcomes) = thread::scope(|s| {
        let consumer = s.spawn(|| consume_until_done(&lanes, &done));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let lanes = lanes.clone();
                s.spawn(move || {
                    let shared = lanes.shared();
                    let mut out = Outcome::default();
                    for seq in 0..PER {
                        let r = Rec { producer: p, ring: SHARED, seq };
                        // Even producers retry on a full ring (lossless), odd ones drop and
                        // count, like capture.
                        loop {
                            match shared.push_with(|slot| *slot = r) {
                                Ok(()) => break,
                                Err(Full) if p % 2 == 0 => thread::yield_now(),
                                Err(Full) => {
                                    shared.count(false);
                                    out.dropped.insert(seq);
                                    break;
                                }
                            }
                        }
                        if seq % 1000 == 999 {
                            // Let the others run into a full ring, and out of it.
                            thread::yield_now();
                        }
                    }
                    out
                })
            })
            .collect();
        let outcomes: Vec<Outcome> = producers.into_iter().map(|h| h.join().unwrap()).collect();
        done.store(true, Ordering::Release);
        (consumer.join().unwrap(), outcomes)
    });
    check_accounting(&got, &outcomes, PER);
    let dropped: usize = outcomes.iter().map(|o| o.dropped.len()).sum();
    assert!(outcomes[0].dropped.is_empty() && outcomes[2].dropped.is_empty());
    let totals = lanes.totals();
    assert_eq!(totals.pushed, got.len());
    assert_eq!(totals.dropped, dropped);
    assert_eq!(totals.rejected, 0);
    assert_eq!(got.len() + dropped, (PRODUCERS * PER) as usize);
    assert!(lanes.is_empty());
}

// ---------------------------------------------------------------------------------------------
// `Lanes`

#[test]
fn lanes_hand_out_distinct_lanes_then_none() {
    let lanes = lanes4::<3>();
    assert_eq!(lanes.lane_count(), 3);
    let held: Vec<_> = (0..3).map(|_| try_producer(&lanes).expect("a free lane")).collect();
    let mut indexes: Vec<usize> = held.iter().map(LaneProducer::index).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1, 2]);
    assert!(try_producer(&lanes).is_none(), "every lane is taken");
    drop(held);
    assert!(try_producer(&lanes).is_some());
}

#[test]
fn lanes_consumer_is_exclusive() {
    let lanes = lanes4::<1>();
    let c = try_consumer(&lanes).unwrap();
    assert!(try_consumer(&lanes).is_none());
    drop(c);
    assert!(try_consumer(&lanes).is_some());
}

#[test]
fn dropped_lane_goes_to_another_thread_which_continues_it() {
    let lanes = lanes4::<2>();
    let mut a = try_producer(&lanes).unwrap();
    let b = try_producer(&lanes).unwrap();
    assert!(try_producer(&lanes).is_none());
    let lane = a.index();
    a.push_with(|r| *r = Rec { producer: 0, ring: 0, seq: 0 }).unwrap();
    a.push_with(|r| *r = Rec { producer: 0, ring: 0, seq: 1 }).unwrap();
    drop(a);
    thread::scope(|s| {
        s.spawn(|| {
            let mut p = try_producer(&lanes).expect("the dropped lane is free");
            assert_eq!(p.index(), lane, "the only free lane");
            p.push_with(|r| *r = Rec { producer: 1, ring: 0, seq: 2 }).unwrap();
            p.push_with(|r| *r = Rec { producer: 1, ring: 0, seq: 3 }).unwrap();
            assert_eq!(p.push_with(|_| {}), Err(Full), "it continued after the first two");
            p.count(false);
        });
    });
    drop(b);
    let mut c = try_consumer(&lanes).unwrap();
    let mut got = Vec::new();
    c.drain_with(usize::MAX, |r| got.push((r.producer, r.seq)));
    assert_eq!(got, [(0, 0), (0, 1), (1, 2), (1, 3)]);
    let totals = lanes.totals();
    assert_eq!((totals.pushed, totals.dropped, totals.rejected), (4, 1, 0));
}

#[test]
fn lanes_drain_lanes_then_shared_within_max() {
    let lanes = lanes4::<2>();
    let mut p0 = try_producer(&lanes).unwrap();
    let mut p1 = try_producer(&lanes).unwrap();
    assert_eq!((p0.index(), p1.index()), (0, 1));
    for seq in 0..3 {
        p0.push_with(|r| *r = Rec { producer: 0, ring: 0, seq }).unwrap();
        p1.push_with(|r| *r = Rec { producer: 1, ring: 1, seq }).unwrap();
        lanes.shared().push_with(|r| *r = Rec { producer: 2, ring: SHARED, seq }).unwrap();
    }
    assert_eq!(lanes.len(), 9);
    let mut c = try_consumer(&lanes).unwrap();
    let mut got = Vec::new();
    assert_eq!(c.drain_with(4, |r| got.push((r.producer, r.seq))), 4);
    assert_eq!(got, [(0, 0), (0, 1), (0, 2), (1, 0)]);
    got.clear();
    assert_eq!(c.drain_with(usize::MAX, |r| got.push((r.producer, r.seq))), 5);
    assert_eq!(got, [(1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]);
    assert!(lanes.is_empty());
}

#[test]
fn lanes_totals_sum_every_ring() {
    let lanes = lanes4::<2>();
    let mut p0 = try_producer(&lanes).unwrap();
    let mut p1 = try_producer(&lanes).unwrap();
    for _ in 0..5 {
        // Four fit, the fifth is counted as dropped, like capture does.
        if p0.push_with(|r| *r = rec(0)).is_err() {
            p0.count(false);
        }
    }
    p1.count(true);
    p1.push_with(|r| *r = rec(1)).unwrap();
    lanes.shared().push_with(|r| *r = rec(2)).unwrap();
    lanes.shared().count(false);
    lanes.shared().count(true);
    let totals = lanes.totals();
    assert_eq!((totals.pushed, totals.dropped, totals.rejected), (6, 2, 2));
    // Draining does not change what was pushed.
    try_consumer(&lanes).unwrap().drain_with(usize::MAX, |_| {});
    assert_eq!(lanes.totals(), totals);
}

#[test]
fn lanes_many_threads_lose_nothing() {
    const PRODUCERS: u32 = 4;
    const PER: u32 = 50_000;
    let lanes = Arc::new(lanes64::<2>());
    let done = AtomicBool::new(false);
    let (got, outcomes) = thread::scope(|s| {
        let consumer = s.spawn(|| consume_until_done(&lanes, &done));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let lanes = lanes.clone();
                s.spawn(move || {
                    let mut out = Outcome::default();
                    let mut lane = None;
                    for seq in 0..PER {
                        // Give the lane back now and then, so lanes change hands between
                        // threads while holding records, and threads fall back to the shared
                        // ring while both lanes are taken.
                        if seq % 500 == 0 {
                            drop(lane.take());
                            lane = try_producer(lanes.clone());
                        }
                        if seq % 997 == 0 {
                            match &mut lane {
                                Some(lane) => lane.count(true),
                                None => lanes.shared().count(true),
                            }
                            out.rejected.insert(seq);
                            continue;
                        }
                        // Even producers retry on a full ring (lossless), odd ones drop and
                        // count, like capture.
                        loop {
                            let pushed = match &mut lane {
                                Some(lane) => {
                                    let r = Rec { producer: p, ring: lane.index() as u32, seq };
                                    lane.push_with(|slot| *slot = r)
                                }
                                None => {
                                    let r = Rec { producer: p, ring: SHARED, seq };
                                    lanes.shared().push_with(|slot| *slot = r)
                                }
                            };
                            match pushed {
                                Ok(()) => break,
                                Err(Full) if p % 2 == 0 => thread::yield_now(),
                                Err(Full) => {
                                    match &mut lane {
                                        Some(lane) => lane.count(false),
                                        None => lanes.shared().count(false),
                                    }
                                    out.dropped.insert(seq);
                                    break;
                                }
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        let outcomes: Vec<Outcome> = producers.into_iter().map(|h| h.join().unwrap()).collect();
        done.store(true, Ordering::Release);
        (consumer.join().unwrap(), outcomes)
    });
    check_accounting(&got, &outcomes, PER);
    let dropped: usize = outcomes.iter().map(|o| o.dropped.len()).sum();
    assert!(outcomes[0].dropped.is_empty() && outcomes[2].dropped.is_empty());
    let rejected: usize = outcomes.iter().map(|o| o.rejected.len()).sum();
    let totals = lanes.totals();
    assert_eq!(totals.pushed, got.len());
    assert_eq!(totals.dropped, dropped);
    assert_eq!(totals.rejected, rejected);
    assert_eq!(rejected, PRODUCERS as usize * PER.div_ceil(997) as usize);
    assert!(lanes.is_empty());
    // Every lane was given back.
    let a = try_producer(&*lanes).unwrap();
    let b = try_producer(&*lanes).unwrap();
    assert_ne!(a.index(), b.index());
}

// ---------------------------------------------------------------------------------------------
// Capture into a queue

fn names(queue: &impl HasLanes<Record = fasthog::Record>) -> Vec<(String, String)> {
    let mut c = try_consumer(queue).expect("no other consumer");
    let mut got = Vec::new();
    c.drain_with(usize::MAX, |e| got.push((e.name().to_owned(), e.distinct_id().to_owned())));
    got
}

static QUEUE: StaticQueue<2, 4> = StaticQueue::new();

#[test]
fn capture_outcomes_in_a_static_queue() {
    let clock = FixedClock(1_700_000_000_000_000_000);
    let mut p = StaticQueue::producer(&QUEUE).unwrap();
    for i in 0..4 {
        let user = format!("user-{i}");
        assert_eq!(p.capture(&Event::new("click", &user), &clock), Captured::Queued);
    }
    assert_eq!(p.capture(&Event::new("click", "user-4"), &clock), Captured::Dropped);
    assert_eq!(p.capture(&Event::new("", "user-5"), &clock), Captured::Rejected);
    assert_eq!(p.capture(&Event::new("click", "  "), &clock), Captured::Rejected);

    let totals = QUEUE.lanes().totals();
    assert_eq!((totals.pushed, totals.dropped, totals.rejected), (4, 1, 2));
    let stats = QUEUE.stats();
    assert_eq!((stats.captured, stats.dropped, stats.rejected, stats.pending), (7, 1, 2, 4));

    let got = names(&QUEUE);
    let want: Vec<_> = (0..4).map(|i| ("click".to_owned(), format!("user-{i}"))).collect();
    assert_eq!(got, want);
    // Room again.
    assert_eq!(p.capture(&Event::new("click", "user-6"), &clock), Captured::Queued);
}

#[test]
fn capture_shared_outcomes() {
    let clock = FixedClock(0);
    let queue = HeapQueue::with_capacity(1, 2);
    assert_eq!(queue.lanes().lane_count(), 1);
    assert_eq!(queue.lanes().shared().capacity(), 2);
    for i in 0..2 {
        let user = format!("u{i}");
        assert_eq!(queue.capture_shared(&Event::new("e", &user), &clock), Captured::Queued);
    }
    assert_eq!(queue.capture_shared(&Event::new("e", "u2"), &clock), Captured::Dropped);
    assert_eq!(queue.capture_shared(&Event::new("e", ""), &clock), Captured::Rejected);
    let totals = queue.lanes().totals();
    assert_eq!((totals.pushed, totals.dropped, totals.rejected), (2, 1, 1));
    assert_eq!(queue.queued(), 2);
    assert_eq!(names(&queue), [("e".to_owned(), "u0".to_owned()), ("e".to_owned(), "u1".to_owned())]);
    assert_eq!(queue.queued(), 0);
}

#[test]
fn heap_queue_lanes_round_up_and_fall_back_to_shared() {
    let clock = FixedClock(0);
    let queue = Arc::new(HeapQueue::with_capacity(2, 3));
    assert_eq!(queue.lanes().lane_count(), 2);
    assert_eq!(HeapQueue::with_capacity(0, 1).lanes().lane_count(), 1, "at least one lane");
    let mut a = HeapQueue::producer(queue.clone()).unwrap();
    let _b = HeapQueue::producer(queue.clone()).unwrap();
    assert!(HeapQueue::producer(queue.clone()).is_none());
    // Capacity 3 rounds up to 4.
    for _ in 0..4 {
        assert_eq!(a.capture(&Event::new("lane", "a"), &clock), Captured::Queued);
    }
    assert_eq!(a.capture(&Event::new("lane", "a"), &clock), Captured::Dropped);
    // A thread without a lane captures into the shared ring.
    thread::scope(|s| {
        s.spawn(|| {
            assert!(HeapQueue::producer(queue.clone()).is_none());
            assert_eq!(queue.capture_shared(&Event::new("shared", "c"), &clock), Captured::Queued);
        });
    });
    let totals = queue.lanes().totals();
    assert_eq!((totals.pushed, totals.dropped, totals.rejected), (5, 1, 0));
    let got = names(&*queue);
    assert_eq!(got.len(), 5);
    assert_eq!(got[4], ("shared".to_owned(), "c".to_owned()));
}

// ---------------------------------------------------------------------------------------------
// Bugs found in `src/ring` and their fixes. Three are now rejected at compile time, checked by
// `compile_fail` doctests in `src/ring`: a shared ring of one slot (`SharedRing::new` and
// `StaticQueue<_, 1>`), lanes over a borrowed container, and a container whose `AsRef` could
// return different rings (containers, storage and sequence numbers are sealed owned types).

#[test]
#[should_panic(expected = "power of two")]
fn ring_with_storage_rejects_three_slots() {
    // Three slots would make positions 0 and 1 share slot 0.
    let _ = Ring::<Rec, _>::with_storage([Slot::new(), Slot::new(), Slot::new()]);
}

#[test]
#[should_panic(expected = "power of two")]
fn shared_ring_with_storage_rejects_three_slots() {
    let _ = SharedRing::<Rec, _, _>::with_storage(
        [Slot::new(), Slot::new(), Slot::new()],
        [AtomicUsize::new(0), AtomicUsize::new(1), AtomicUsize::new(2)],
    );
}

#[test]
#[should_panic(expected = "at least 2")]
fn shared_ring_with_storage_rejects_one_slot() {
    let _ = SharedRing::<Rec, _, _>::with_storage([Slot::new()], [AtomicUsize::new(0)]);
}

#[test]
#[should_panic(expected = "start at their slot index")]
fn shared_ring_with_storage_rejects_wrong_sequence_numbers() {
    let _ = SharedRing::<Rec, _, _>::with_storage(
        [Slot::new(), Slot::new()],
        [AtomicUsize::new(0), AtomicUsize::new(0)],
    );
}

#[test]
fn shared_ring_survives_a_panicking_write() {
    let lanes = lanes4::<0>();
    let shared = lanes.shared();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = shared.push_with(|_| panic!("write failed"));
    }));
    assert!(panicked.is_err());
    shared.push_with(|r| *r = rec(1)).unwrap();
    let mut got = Vec::new();
    try_consumer(&lanes).unwrap().drain_with(usize::MAX, |r| got.push(r.seq));
    // The panicked position is published (with whatever the slot held), so the consumer moves
    // past it instead of waiting there for ever.
    assert!(got.contains(&1), "got {got:?}");
}
