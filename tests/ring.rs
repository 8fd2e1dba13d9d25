//! The byte lanes, deterministically: entries round-trip byte-exact, block boundaries and
//! links, the `last` mode of the write closure, the pool running full and blocks coming back,
//! counters, claims, and the accounting of entries moved by many threads. Interleavings are
//! explored by the loom models (`loom/tests/models.rs`); these tests check outcomes, never
//! timings.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use fasthog::batch::{Encoder, Enrichment};
use fasthog::json::Writer;
use fasthog::ring::{
    try_consumer, try_producer, try_shared, Drained, Full, Geometry, HasLanes, HeapMemory, LaneProducer,
    Lanes, LanesConsumer, LanesRef, Memory, StaticMemory,
};
use fasthog::{Captured, Event, FixedClock, HeapQueue, StaticQueue};

type Heap = Lanes<HeapMemory>;

/// `blocks` blocks of `block` bytes, entries of at most `max_entry` lane bytes, `owned` owned
/// lanes and `shared` shared ones.
fn heap(block: usize, blocks: usize, max_entry: usize, owned: usize, shared: usize) -> Heap {
    let geometry = Geometry { block_bytes: block, blocks, max_entry };
    Lanes::new(HeapMemory::new(geometry, owned, shared).expect("a valid geometry"))
}

/// Lane bytes of an entry with `len` payload bytes.
fn lane_bytes(len: usize) -> usize {
    (4 + len).div_ceil(8) * 8
}

/// A payload of `len` bytes (at least 12) that says who wrote it, through which lane, its
/// place in the writer's sequence, and whose every byte is checkable.
fn payload(writer: u32, lane: u32, seq: u32, len: usize) -> Vec<u8> {
    assert!(len >= 12);
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&writer.to_le_bytes());
    v.extend_from_slice(&lane.to_le_bytes());
    v.extend_from_slice(&seq.to_le_bytes());
    v.extend((12..len).map(|i| fill(writer, seq, i)));
    v
}

fn fill(writer: u32, seq: u32, i: usize) -> u8 {
    (writer.wrapping_mul(131) ^ seq.wrapping_mul(31)).wrapping_add(i as u32) as u8
}

/// A payload checked intact: `(writer, lane, seq)`.
fn parse(p: &[u8]) -> (u32, u32, u32) {
    assert!(p.len() >= 12, "short entry of {} bytes", p.len());
    let word = |i: usize| u32::from_le_bytes(p[i..i + 4].try_into().unwrap());
    let (writer, lane, seq) = (word(0), word(4), word(8));
    for (i, &b) in p.iter().enumerate().skip(12) {
        assert_eq!(b, fill(writer, seq, i), "entry {writer}/{lane}/{seq} corrupt at byte {i}");
    }
    (writer, lane, seq)
}

/// Writes `bytes` as one entry; `Full` when it does not fit and no block is free.
fn put<R: LanesRef>(p: &mut LaneProducer<R>, bytes: &[u8]) -> Result<(), Full> {
    p.write(|buf, _last| {
        let area = buf.get_mut(..bytes.len())?;
        area.copy_from_slice(bytes);
        Some(bytes.len())
    })
}

/// Everything published, as owned payloads.
fn take_all<R: LanesRef>(c: &mut LanesConsumer<R>) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let d = c.drain(|p| {
        got.push(p.to_vec());
        true
    });
    assert_eq!(d, Drained { events: got.len(), stopped: false });
    got
}

// ---------------------------------------------------------------------------------------------
// Send / Sync contracts, construction, geometry

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}

#[test]
fn send_sync_contracts() {
    assert_send::<Heap>();
    assert_sync::<Heap>();
    assert_send::<Lanes<StaticMemory<2, 4, 64>>>();
    assert_sync::<Lanes<StaticMemory<2, 4, 64>>>();
    assert_send::<StaticQueue<2, 4, 64>>();
    assert_sync::<StaticQueue<2, 4, 64>>();
    assert_send::<HeapQueue>();
    assert_sync::<HeapQueue>();
    // Handles move to the thread that uses them.
    assert_send::<LaneProducer<&'static StaticQueue<2, 4, 64>>>();
    assert_send::<LaneProducer<Arc<HeapQueue>>>();
    assert_send::<LanesConsumer<Arc<HeapQueue>>>();
    assert_send::<LanesConsumer<&'static Lanes<StaticMemory<2, 4, 64>>>>();
}

#[test]
fn geometry_is_checked() {
    let ok = Geometry { block_bytes: 64, blocks: 2, max_entry: 56 };
    assert_eq!(ok.check(), Ok(ok));
    assert_eq!(ok.bytes(), 128);
    let bad = [
        Geometry { block_bytes: 96, ..ok },                // not a power of two
        Geometry { block_bytes: 32, max_entry: 24, ..ok }, // below the smallest block
        Geometry { block_bytes: 1 << 25, ..ok },           // above the largest
        Geometry { blocks: 1, ..ok },                      // one block
        Geometry { max_entry: 60, ..ok },                  // not a multiple of 8
        Geometry { max_entry: 64, ..ok },                  // into the link's 8 bytes
        Geometry { max_entry: 8, ..ok },                   // below 16
        Geometry { blocks: usize::MAX / 32, ..ok },        // 2^32 blocks or more
    ];
    for g in bad {
        assert!(g.check().is_err(), "{g:?} accepted");
        assert!(HeapMemory::new(g, 1, 1).is_err(), "{g:?} accepted by HeapMemory");
    }
    assert!(HeapMemory::new(ok, 1, 0).is_err(), "at least one shared lane");
    assert!(HeapQueue::with_geometry(Geometry { blocks: 1, ..ok }, 1, 1).is_err());
}

#[test]
fn capacity_of_new_lanes() {
    let lanes = heap(256, 16, 128, 3, 2);
    assert_eq!(lanes.lane_count(), 3);
    assert_eq!(lanes.max_entry(), 128);
    assert_eq!(lanes.free_blocks(), 16, "every block starts free");
    assert_eq!(lanes.totals(), Default::default());
    assert_eq!(lanes.memory().geometry(), Geometry { block_bytes: 256, blocks: 16, max_entry: 128 });
    let q = HeapQueue::with_blocks(2, 8, 1024);
    assert_eq!(q.lanes().lane_count(), 2);
    assert_eq!(q.lanes().max_entry(), 512, "entries up to half a block");
    static Q: StaticQueue<2, 8, 1024> = StaticQueue::new();
    assert_eq!(Q.lanes().max_entry(), 512);
    assert_eq!(Q.lanes().free_blocks(), 8);
}

/// The whole point of `const fn new`: lanes in a `static`, shared by plain references.
static STATIC_LANES: Lanes<StaticMemory<2, 16, 256>> = Lanes::new_static(StaticMemory::new());

#[test]
fn static_lanes_work_across_threads() {
    thread::scope(|s| {
        for t in 0..2u32 {
            s.spawn(move || {
                let mut p = try_producer(&STATIC_LANES).expect("two lanes for two threads");
                let lane = p.index() as u32;
                for seq in 0..10 {
                    put(&mut p, &payload(t, lane, seq, 40)).unwrap();
                }
            });
        }
    });
    let mut c = try_consumer(&STATIC_LANES).unwrap();
    let got: Vec<_> = take_all(&mut c).iter().map(|p| parse(p)).collect();
    assert_eq!(got.len(), 20);
    for t in 0..2 {
        let seqs: Vec<u32> = got.iter().filter(|e| e.0 == t).map(|e| e.2).collect();
        assert_eq!(seqs, (0..10).collect::<Vec<_>>());
    }
}

// ---------------------------------------------------------------------------------------------
// Entries and blocks

#[test]
fn entries_of_every_size_round_trip_byte_exact() {
    let lanes = heap(256, 8, 128, 1, 1);
    let mut p = try_producer(&lanes).unwrap();
    let mut c = try_consumer(&lanes).unwrap();
    // Every payload length an entry may have, 0 to max_entry - 4, with bytes that differ
    // from one entry to the next; drained every few entries so blocks cycle through the pool.
    let max = lanes.max_entry() - 4;
    let mut want = Vec::new();
    let mut got = Vec::new();
    for round in 0..3u8 {
        for len in 0..=max {
            let bytes: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(7) ^ round ^ len as u8).collect();
            put(&mut p, &bytes).unwrap_or_else(|_| panic!("length {len}"));
            want.push(bytes);
            if len % 7 == 0 {
                got.extend(take_all(&mut c));
            }
        }
    }
    got.extend(take_all(&mut c));
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "entry {i}");
    }
    assert_eq!(lanes.totals().pushed, want.len());
}

#[test]
fn an_entry_exactly_filling_a_block() {
    // 128-byte blocks: 120 bytes for entries, 8 kept for the link.
    let lanes = heap(128, 4, 64, 1, 1);
    let mut p = try_producer(&lanes).unwrap();
    let mut c = try_consumer(&lanes).unwrap();
    let mut areas = Vec::new();
    let mut put_seen = |p: &mut LaneProducer<&Heap>, len: usize, tag: u8| {
        p.write(|buf, last| {
            areas.push((buf.len(), last));
            let area = buf.get_mut(..len)?;
            area.fill(tag);
            Some(len)
        })
    };
    put_seen(&mut p, 60, 1).unwrap(); // 64 lane bytes
    put_seen(&mut p, 52, 2).unwrap(); // 56: exactly the rest of the block
    assert_eq!(lanes.free_blocks(), 3, "both in the lane's first block");
    put_seen(&mut p, 4, 3).unwrap(); // no room left: the next block
    assert_eq!(lanes.free_blocks(), 2);
    // A fresh block offers a whole entry (last); then the 56 bytes left, less than an entry
    // may take; then nothing, so the next block, in last mode.
    assert_eq!(areas, [(60, true), (52, false), (60, true)]);
    let got = take_all(&mut c);
    assert_eq!(got, [vec![1; 60], vec![2; 52], vec![3; 4]]);
    assert_eq!(lanes.free_blocks(), 3, "the first block came back");

    // A block filled with the largest entries the geometry allows (a block less 8 bytes).
    let lanes = heap(64, 2, 56, 1, 1);
    let mut p = try_producer(&lanes).unwrap();
    let mut c = try_consumer(&lanes).unwrap();
    for round in 0..10u8 {
        put(&mut p, &[round; 52]).unwrap();
        assert_eq!(take_all(&mut c), [vec![round; 52]]);
    }
    assert_eq!(lanes.free_blocks(), 1);
}

#[test]
fn entries_larger_than_max_entry_use_the_last_mode() {
    let lanes = heap(256, 4, 64, 1, 1);
    let max = lanes.max_entry() - 4;
    let mut p = try_producer(&lanes).unwrap();
    let mut c = try_consumer(&lanes).unwrap();
    put(&mut p, &[9; 180]).expect_err("an entry larger than max_entry is not written as is");
    // A writer that cuts in last mode: what it is given is the largest area an entry may have.
    let cut = |p: &mut LaneProducer<&Heap>, want: usize, calls: &mut Vec<(usize, bool)>| {
        p.write(|buf, last| {
            calls.push((buf.len(), last));
            if want <= buf.len() {
                buf[..want].fill(7);
                Some(want)
            } else if last {
                buf.fill(8);
                Some(buf.len())
            } else {
                None
            }
        })
    };
    let mut calls = Vec::new();
    cut(&mut p, 500, &mut calls).unwrap();
    assert_eq!(calls, [(max, true)], "a fresh block offers max_entry at once");
    // Fill the block (248 bytes for entries) up to 32 bytes before its end: 64 + 64 + 64 + 24.
    put(&mut p, &[1; 60]).unwrap();
    put(&mut p, &[2; 60]).unwrap();
    put(&mut p, &[3; 20]).unwrap();
    calls.clear();
    cut(&mut p, 500, &mut calls).unwrap();
    assert_eq!(calls, [(28, false), (max, true)], "too small, then a fresh block in last mode");
    let got = take_all(&mut c);
    assert_eq!(got, [vec![8; max], vec![1; 60], vec![2; 60], vec![3; 20], vec![8; max]]);
    assert!(got.iter().all(|e| lane_bytes(e.len()) <= lanes.max_entry()));
}

/// Found by this test: an entry its writer refused even in last mode made the producer take a
/// fresh block and try again, so every refused entry cost a block (and a lane at a block's
/// start could empty the pool by refusing entries, making other lanes' captures fail).
#[test]
fn an_entry_refused_in_last_mode_takes_no_block() {
    let lanes = heap(64, 4, 32, 2, 1);
    let mut p = try_producer(&lanes).unwrap();
    let mut other = try_producer(&lanes).unwrap();
    put(&mut p, &[1; 8]).unwrap();
    assert_eq!(lanes.free_blocks(), 3);
    // 40 bytes left in the block, more than max_entry: the first area is already the largest.
    for _ in 0..10 {
        let mut calls = 0;
        assert_eq!(
            p.write(|_, last| {
                calls += 1;
                assert!(last);
                None
            }),
            Err(Full)
        );
        assert_eq!(calls, 1, "a fresh block would not have more room");
    }
    assert_eq!(lanes.free_blocks(), 3, "refused entries took no block");
    put(&mut other, &[2; 8]).expect("the pool still has blocks for the other lane");
    put(&mut p, &[3; 8]).unwrap();
    let mut c = try_consumer(&lanes).unwrap();
    assert_eq!(take_all(&mut c), [vec![1; 8], vec![3; 8], vec![2; 8]]);
}

/// Found by this test: `write` is safe and trusted the length its closure returned, so a
/// length past the area moved the write position out of the lane's block (in release builds),
/// and the next entry was written over another lane's block or outside the pool. Now such a
/// length panics before anything is published, and the lane stays usable.
#[test]
fn a_write_claiming_more_than_its_area_panics_and_publishes_nothing() {
    let lanes = heap(64, 4, 32, 1, 1);
    let mut p = try_producer(&lanes).unwrap();
    put(&mut p, &[1; 8]).unwrap();
    for bogus in [29, 100, 10_000] {
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = p.write(|buf, _| Some(buf.len() + bogus));
        }));
        assert!(panicked.is_err(), "a length {bogus} past the area was accepted");
    }
    put(&mut p, &[2; 8]).unwrap();
    let mut c = try_consumer(&lanes).unwrap();
    assert_eq!(take_all(&mut c), [vec![1; 8], vec![2; 8]]);
    assert_eq!(lanes.totals().pushed, 2);
}

#[test]
fn one_busy_lane_can_take_most_blocks() {
    const BLOCKS: usize = 64;
    let lanes = heap(256, BLOCKS, 128, 4, 1);
    let mut c = try_consumer(&lanes).unwrap();
    let mut idle: Vec<_> = (0..3).map(|_| try_producer(&lanes).unwrap()).collect();
    for (i, p) in idle.iter_mut().enumerate() {
        put(p, &payload(i as u32 + 1, p.index() as u32, 0, 16)).unwrap();
    }
    let mut busy = try_producer(&lanes).unwrap();
    let lane = busy.index() as u32;
    let mut n = 0;
    while put(&mut busy, &payload(0, lane, n, 116)).is_ok() {
        n += 1;
    }
    // Two 120-byte entries per block (248 bytes for entries): the busy lane holds every block
    // the idle lanes do not.
    assert_eq!(n as usize, 2 * (BLOCKS - 3));
    assert_eq!(lanes.free_blocks(), 0);
    let mut shared = try_shared(&lanes).unwrap();
    assert_eq!(put(&mut shared, &payload(9, 4, 0, 12)), Err(Full), "no block for a lane without one");
    drop(shared);
    let got: Vec<_> = take_all(&mut c).iter().map(|p| parse(p)).collect();
    assert_eq!(got.len(), n as usize + 3);
    let busy_seqs: Vec<u32> = got.iter().filter(|e| e.0 == 0).map(|e| e.2).collect();
    assert_eq!(busy_seqs, (0..n).collect::<Vec<_>>());
    assert_eq!(lanes.free_blocks(), BLOCKS - 4, "all but the four lanes' current blocks");
    put(&mut busy, &payload(0, lane, n, 116)).expect("room again");
}

#[test]
fn blocks_come_back_over_many_rounds() {
    const BLOCKS: usize = 16;
    let lanes = heap(128, BLOCKS, 64, 3, 1);
    let mut c = try_consumer(&lanes).unwrap();
    let mut ps: Vec<_> = (0..3).map(|_| try_producer(&lanes).unwrap()).collect();
    let mut next = [0u32; 3];
    let mut total = 0;
    for round in 0..2_000u32 {
        // Lanes take turns being busy; sizes vary so entries end at every offset in a block.
        for (w, p) in ps.iter_mut().enumerate() {
            let count = if (round as usize) % 3 == w { 9 } else { round % 3 };
            for _ in 0..count {
                let len = 12 + (next[w] as usize * 5) % 49;
                put(p, &payload(w as u32, p.index() as u32, next[w], len)).unwrap();
                next[w] += 1;
                total += 1;
            }
        }
        let mut seen = [None::<u32>; 3];
        for e in take_all(&mut c) {
            let (w, _, seq) = parse(&e);
            if let Some(prev) = seen[w as usize] {
                assert_eq!(seq, prev + 1);
            }
            seen[w as usize] = Some(seq);
        }
        let holding = next.iter().filter(|&&n| n > 0).count();
        assert_eq!(lanes.free_blocks(), BLOCKS - holding, "round {round}: a block leaked");
    }
    assert_eq!(lanes.totals().pushed, total);
    // A lane given back keeps its block until its next holder fills it.
    drop(ps);
    assert_eq!(lanes.free_blocks(), BLOCKS - 3);
}

#[test]
fn a_refused_entry_stays_first_in_its_lane() {
    let lanes = heap(128, 4, 64, 2, 1);
    let mut a = try_producer(&lanes).unwrap();
    let mut b = try_producer(&lanes).unwrap();
    assert_eq!((a.index(), b.index()), (0, 1));
    for seq in 0..3 {
        put(&mut a, &payload(0, 0, seq, 40)).unwrap();
        put(&mut b, &payload(1, 1, seq, 40)).unwrap();
    }
    let mut c = try_consumer(&lanes).unwrap();
    let mut got = Vec::new();
    let d = c.drain(|p| {
        let e = parse(p);
        if e == (0, 0, 1) {
            return false;
        }
        got.push(e);
        true
    });
    assert_eq!(d, Drained { events: 1, stopped: true }, "the drain stops at the refusal");
    assert_eq!(got, [(0, 0, 0)]);
    got.clear();
    c.drain(|p| {
        got.push(parse(p));
        true
    });
    assert_eq!(got, [(0, 0, 1), (0, 0, 2), (1, 1, 0), (1, 1, 1), (1, 1, 2)], "owned lanes in order");
}

#[test]
fn drain_reads_owned_lanes_then_shared() {
    let lanes = heap(256, 8, 64, 2, 2);
    let mut p0 = try_producer(&lanes).unwrap();
    let mut p1 = try_producer(&lanes).unwrap();
    for seq in 0..3 {
        put(&mut p1, &payload(1, 1, seq, 20)).unwrap();
        put(&mut p0, &payload(0, 0, seq, 20)).unwrap();
        let mut s = try_shared(&lanes).expect("a shared lane");
        let lane = s.index() as u32;
        assert!(lane >= 2, "shared lanes come after the owned ones");
        put(&mut s, &payload(2, lane, seq, 20)).unwrap();
    }
    let got: Vec<_> = take_all(&mut try_consumer(&lanes).unwrap()).iter().map(|p| parse(p)).collect();
    let writers: Vec<u32> = got.iter().map(|e| e.0).collect();
    assert_eq!(writers, [0, 0, 0, 1, 1, 1, 2, 2, 2]);
}

// ---------------------------------------------------------------------------------------------
// Counters

#[test]
fn totals_count_every_lane() {
    let lanes = heap(64, 2, 32, 2, 1);
    let mut p0 = try_producer(&lanes).unwrap();
    let mut p1 = try_producer(&lanes).unwrap();
    let mut pushed = 0;
    let mut dropped = 0;
    for seq in 0..5 {
        // One 32-byte entry per block and two blocks: two fit, the rest are counted as dropped,
        // as capture does.
        match put(&mut p0, &payload(0, 0, seq, 28)) {
            Ok(()) => pushed += 1,
            Err(Full) => {
                p0.count(false);
                dropped += 1;
            }
        }
    }
    assert_eq!((pushed, dropped), (2, 3));
    assert_eq!(put(&mut p1, &payload(1, 1, 0, 12)), Err(Full), "no block for the second lane");
    p1.count(false);
    p1.count(true);
    {
        let mut s = try_shared(&lanes).unwrap();
        s.count(true);
        s.count(false);
    }
    lanes.count_unlaned(false);
    lanes.count_unlaned(true);
    lanes.count_unlaned(true);
    let totals = lanes.totals();
    assert_eq!((totals.pushed, totals.dropped, totals.rejected), (2, 3 + 1 + 1 + 1, 1 + 1 + 2));
    // Counters belong to the lane, not the handle: they survive a re-claim.
    drop(p1);
    let mut p1 = try_producer(&lanes).unwrap();
    assert_eq!(p1.index(), 1);
    p1.count(true);
    assert_eq!(lanes.totals().rejected, 5);
    // Draining does not change what was pushed.
    let mut c = try_consumer(&lanes).unwrap();
    assert_eq!(take_all(&mut c).len(), 2);
    assert_eq!(lanes.totals().pushed, 2);
}

// ---------------------------------------------------------------------------------------------
// Claims

#[test]
fn lanes_hand_out_distinct_lanes_then_none() {
    let lanes = heap(64, 4, 32, 3, 2);
    let held: Vec<_> = (0..3).map(|_| try_producer(&lanes).expect("a free lane")).collect();
    let mut indexes: Vec<usize> = held.iter().map(LaneProducer::index).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1, 2]);
    assert!(try_producer(&lanes).is_none(), "every lane is taken");
    let s1 = try_shared(&lanes).expect("shared lanes are separate");
    let s2 = try_shared(&lanes).expect("two shared lanes");
    assert_eq!((s1.index(), s2.index()), (3, 4));
    assert!(try_shared(&lanes).is_none(), "every shared lane is busy");
    drop(s1);
    assert_eq!(try_shared(&lanes).map(|s| s.index()), Some(3));
    drop(held);
    assert!(try_producer(&lanes).is_some());
}

#[test]
fn the_consumer_is_exclusive_and_a_new_one_continues() {
    let lanes = heap(64, 4, 32, 1, 1);
    let mut p = try_producer(&lanes).unwrap();
    for seq in 0..3 {
        put(&mut p, &payload(0, 0, seq, 20)).unwrap();
    }
    let mut c1 = try_consumer(&lanes).unwrap();
    assert!(try_consumer(&lanes).is_none());
    let mut first = true;
    c1.drain(|_| std::mem::take(&mut first));
    drop(c1);
    let mut c2 = try_consumer(&lanes).expect("the claim is free again");
    assert!(try_consumer(&lanes).is_none());
    let seqs: Vec<u32> = take_all(&mut c2).iter().map(|p| parse(p).2).collect();
    assert_eq!(seqs, [1, 2]);
}

#[test]
fn a_released_lane_goes_to_another_thread_which_continues_it() {
    let lanes = heap(128, 3, 64, 2, 1);
    let mut a = try_producer(&lanes).unwrap();
    let b = try_producer(&lanes).unwrap();
    let lane = a.index() as u32;
    put(&mut a, &payload(0, lane, 0, 40)).unwrap();
    put(&mut a, &payload(0, lane, 1, 40)).unwrap();
    drop(a);
    thread::scope(|s| {
        s.spawn(|| {
            let mut p = try_producer(&lanes).expect("the released lane is free");
            assert_eq!(p.index() as u32, lane, "the only free lane");
            // Two 48-byte entries per 128-byte block (120 for entries): the first holder's two
            // filled the lane's block, so the next two go in a second block, the next two in
            // the last one, and then the pool is empty (no one drained).
            put(&mut p, &payload(1, lane, 2, 40)).unwrap();
            put(&mut p, &payload(1, lane, 3, 40)).unwrap();
            assert_eq!(lanes.free_blocks(), 1);
            put(&mut p, &payload(1, lane, 4, 40)).unwrap();
            put(&mut p, &payload(1, lane, 5, 40)).unwrap();
            assert_eq!(lanes.free_blocks(), 0);
            assert_eq!(put(&mut p, &payload(1, lane, 6, 40)), Err(Full));
            p.count(false);
        });
    });
    drop(b);
    let mut c = try_consumer(&lanes).unwrap();
    let got: Vec<_> = take_all(&mut c).iter().map(|p| parse(p)).map(|e| (e.0, e.2)).collect();
    assert_eq!(got, [(0, 0), (0, 1), (1, 2), (1, 3), (1, 4), (1, 5)]);
    let totals = lanes.totals();
    assert_eq!((totals.pushed, totals.dropped, totals.rejected), (6, 1, 0));
    assert_eq!(lanes.free_blocks(), 2);
}

/// Drains `lanes` on this thread until `done` is set and a drain after it finds nothing,
/// checking each entry intact.
fn consume_until_done(lanes: &Heap, done: &AtomicBool) -> Vec<(u32, u32, u32)> {
    let mut c = try_consumer(lanes).expect("one consumer");
    let mut got = Vec::new();
    loop {
        // Read `done` before draining: every write finished before `done` was set is then
        // visible to this drain.
        let finished = done.load(Ordering::Acquire);
        let d = c.drain(|p| {
            got.push(parse(p));
            true
        });
        if d.events == 0 {
            if finished {
                return got;
            }
            thread::yield_now();
        }
    }
}

#[test]
fn twenty_thousand_short_lived_threads_claim_and_release_lanes() {
    const THREADS: u32 = 20_000;
    const AT_ONCE: u32 = 8;
    let lanes = heap(256, 32, 64, 4, 1);
    let done = AtomicBool::new(false);
    let got = thread::scope(|s| {
        let consumer = s.spawn(|| consume_until_done(&lanes, &done));
        for wave in 0..THREADS / AT_ONCE {
            thread::scope(|s| {
                for t in 0..AT_ONCE {
                    let id = wave * AT_ONCE + t;
                    let lanes = &lanes;
                    s.spawn(move || loop {
                        // An owned lane, else the shared one; every thread gives its lane back.
                        let Some(mut p) = try_producer(lanes).or_else(|| try_shared(lanes)) else {
                            thread::yield_now();
                            continue;
                        };
                        let bytes = payload(id, p.index() as u32, 0, 12 + id as usize % 40);
                        if put(&mut p, &bytes).is_ok() {
                            break;
                        }
                        drop(p);
                        thread::yield_now(); // the pool is full: let the consumer catch up
                    });
                }
            });
        }
        done.store(true, Ordering::Release);
        consumer.join().unwrap()
    });
    let ids: BTreeSet<u32> = got.iter().map(|e| e.0).collect();
    assert_eq!(got.len(), THREADS as usize, "one entry per thread");
    assert_eq!(ids.len(), THREADS as usize, "each exactly once");
    assert_eq!(lanes.totals().pushed, THREADS as usize);
    // Every claim was released.
    let held: Vec<_> = (0..4).map(|_| try_producer(&lanes).expect("a released lane")).collect();
    assert!(try_shared(&lanes).is_some());
    let used: BTreeSet<u32> = got.iter().map(|e| e.1).collect();
    assert_eq!(lanes.free_blocks(), 32 - used.len(), "no block leaked");
    drop(held);
}

/// What one producer thread did: the sequence numbers it counted as dropped and rejected.
#[derive(Default)]
struct Outcome {
    dropped: BTreeSet<u32>,
    rejected: BTreeSet<u32>,
}

#[test]
fn many_threads_owned_and_shared_lanes_lose_nothing() {
    const PRODUCERS: u32 = 6;
    const PER: u32 = 30_000;
    const BLOCKS: usize = 48;
    let lanes = Arc::new(heap(512, BLOCKS, 256, 2, 2));
    let done = AtomicBool::new(false);
    let (got, outcomes) = thread::scope(|s| {
        let consumer = s.spawn(|| consume_until_done(&lanes, &done));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|w| {
                let lanes = lanes.clone();
                s.spawn(move || {
                    let mut out = Outcome::default();
                    let mut lane: Option<LaneProducer<Arc<Heap>>> = None;
                    for seq in 0..PER {
                        // Give the lane back now and then, so lanes change hands between threads
                        // while holding entries, and threads without one borrow a shared lane
                        // per entry.
                        if seq % 400 == 0 {
                            drop(lane.take());
                            lane = try_producer(lanes.clone());
                        }
                        let len = 12 + (seq as usize * 7 + w as usize) % 240;
                        if seq % 997 == 0 {
                            match &mut lane {
                                Some(p) => p.count(true),
                                None => lanes.count_unlaned(true),
                            }
                            out.rejected.insert(seq);
                            continue;
                        }
                        // Even producers retry on Full (lossless), odd ones drop and count, as
                        // capture does.
                        loop {
                            let mut borrowed;
                            let p = match &mut lane {
                                Some(p) => p,
                                None => match try_shared(lanes.clone()) {
                                    Some(s) => {
                                        borrowed = s;
                                        &mut borrowed
                                    }
                                    None if w % 2 == 0 => {
                                        thread::yield_now();
                                        continue;
                                    }
                                    None => {
                                        lanes.count_unlaned(false);
                                        out.dropped.insert(seq);
                                        break;
                                    }
                                },
                            };
                            match put(p, &payload(w, p.index() as u32, seq, len)) {
                                Ok(()) => break,
                                Err(Full) if w % 2 == 0 => thread::yield_now(),
                                Err(Full) => {
                                    p.count(false);
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
    // Every entry arrived once or was counted once, and the entries of one writer through one
    // lane arrived in order.
    let mut last: BTreeMap<(u32, u32), u32> = BTreeMap::new();
    let mut seen: Vec<BTreeSet<u32>> = outcomes.iter().map(|_| BTreeSet::new()).collect();
    for &(w, lane, seq) in &got {
        if let Some(&prev) = last.get(&(w, lane)) {
            assert!(prev < seq, "writer {w} lane {lane}: {seq} after {prev}");
        }
        last.insert((w, lane), seq);
        assert!(seen[w as usize].insert(seq), "duplicate {w}/{lane}/{seq}");
    }
    for (w, (seen, out)) in seen.iter().zip(&outcomes).enumerate() {
        assert!(seen.is_disjoint(&out.dropped), "writer {w}: a dropped entry arrived");
        assert!(seen.is_disjoint(&out.rejected), "writer {w}: a rejected entry arrived");
        assert_eq!(seen.len() + out.dropped.len() + out.rejected.len(), PER as usize, "writer {w}");
        if w % 2 == 0 {
            assert!(out.dropped.is_empty(), "writer {w} retries");
        }
    }
    assert!(last.keys().any(|&(_, lane)| lane >= 2), "some entries went through shared lanes");
    let dropped: usize = outcomes.iter().map(|o| o.dropped.len()).sum();
    let rejected: usize = outcomes.iter().map(|o| o.rejected.len()).sum();
    let totals = lanes.totals();
    assert_eq!((totals.pushed, totals.dropped, totals.rejected), (got.len(), dropped, rejected));
    assert_eq!(rejected, (PRODUCERS * PER.div_ceil(997)) as usize);
    let used: BTreeSet<u32> = got.iter().map(|e| e.1).collect();
    assert_eq!(lanes.free_blocks(), BLOCKS - used.len(), "no block leaked");
    // Every lane was given back.
    let a = try_producer(&*lanes).unwrap();
    let b = try_producer(&*lanes).unwrap();
    assert_ne!(a.index(), b.index());
}

// ---------------------------------------------------------------------------------------------
// Capture into a queue

/// `(event, distinct_id)` of every entry drained, read back from the JSON the encoder makes.
fn names(queue: &impl HasLanes) -> Vec<(String, String)> {
    let mut c = try_consumer(queue).expect("no other consumer");
    let mut encoder = Encoder::new(Enrichment::DEFAULT, 1);
    let mut buf = vec![0u8; 1 << 16];
    let mut got = Vec::new();
    c.drain(|bytes| {
        let mut w = Writer::new(&mut buf, 0);
        encoder.encode(bytes, &FixedClock(0), &mut w);
        let v: serde_json::Value = serde_json::from_slice(w.written()).expect("valid JSON");
        got.push((v["event"].as_str().unwrap().to_owned(), v["distinct_id"].as_str().unwrap().to_owned()));
        true
    });
    got
}

static QUEUE: StaticQueue<2, 2, 128> = StaticQueue::new();

#[test]
fn capture_outcomes_in_a_static_queue() {
    let clock = FixedClock(1_700_000_000_000_000_000);
    let mut p = StaticQueue::producer(&QUEUE).unwrap();
    let mut queued = 0;
    let mut outcome = Captured::Queued;
    while outcome == Captured::Queued {
        let user = format!("user-{queued}");
        outcome = p.capture(&Event::new("click", &user), &clock);
        queued += usize::from(outcome == Captured::Queued);
    }
    assert_eq!(outcome, Captured::Dropped, "two blocks run full");
    assert!(queued >= 2, "{queued}");
    assert_eq!(p.capture(&Event::new("", "user-x"), &clock), Captured::Rejected);
    assert_eq!(p.capture(&Event::new("click", "  "), &clock), Captured::Rejected);
    let totals = QUEUE.lanes().totals();
    assert_eq!((totals.pushed, totals.dropped, totals.rejected), (queued, 1, 2));
    let stats = QUEUE.stats();
    assert_eq!(
        (stats.captured, stats.dropped, stats.rejected, stats.pending),
        (queued as u64 + 3, 1, 2, queued as u64)
    );

    let got = names(&QUEUE);
    let want: Vec<_> = (0..queued).map(|i| ("click".to_owned(), format!("user-{i}"))).collect();
    assert_eq!(got, want);
    // Room again.
    assert_eq!(p.capture(&Event::new("click", "user-again"), &clock), Captured::Queued);
}

#[test]
fn capture_shared_outcomes() {
    let clock = FixedClock(0);
    let queue = HeapQueue::with_blocks(1, 4, 1024);
    for i in 0..3 {
        let user = format!("u{i}");
        assert_eq!(queue.capture_shared(&Event::new("e", &user), &clock), Captured::Queued);
    }
    assert_eq!(queue.capture_shared(&Event::new("e", ""), &clock), Captured::Rejected);
    // While the one shared lane is borrowed, a shared capture finds none: dropped, counted.
    let held = try_shared(&queue).unwrap();
    assert_eq!(queue.capture_shared(&Event::new("e", "u9"), &clock), Captured::Dropped);
    drop(held);
    let totals = queue.lanes().totals();
    assert_eq!((totals.pushed, totals.dropped, totals.rejected), (3, 1, 1));
    let want: Vec<_> = (0..3).map(|i| ("e".to_owned(), format!("u{i}"))).collect();
    assert_eq!(names(&queue), want);
}

#[test]
fn heap_queue_falls_back_to_shared_lanes() {
    let clock = FixedClock(0);
    let queue = Arc::new(HeapQueue::with_blocks(2, 8, 1024));
    let mut a = HeapQueue::producer(queue.clone()).unwrap();
    let _b = HeapQueue::producer(queue.clone()).unwrap();
    assert!(HeapQueue::producer(queue.clone()).is_none());
    assert_eq!(a.capture(&Event::new("lane", "a"), &clock), Captured::Queued);
    // A thread without a lane captures into the shared lane.
    thread::scope(|s| {
        s.spawn(|| {
            assert!(HeapQueue::producer(queue.clone()).is_none());
            assert_eq!(queue.capture_shared(&Event::new("shared", "c"), &clock), Captured::Queued);
        });
    });
    assert_eq!(names(&*queue), [("lane".to_owned(), "a".to_owned()), ("shared".to_owned(), "c".to_owned())]);
}
