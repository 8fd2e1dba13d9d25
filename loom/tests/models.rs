//! Loom models of the byte lanes: every interleaving (up to a preemption bound) of small
//! producer and consumer threads over a pool of a few 64-byte blocks, with loom checking each
//! access to the pool's 8-byte cells against the happens-before order the atomics establish.
//! A missing release/acquire pair shows up as a "causality violation" on a cell, or as an
//! entry lost, repeated, reordered or corrupted.
//!
//! ```text
//! RUSTFLAGS="--cfg fasthog_loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p fasthog-loom --release
//! ```
//!
//! Entries are `[len][payload][pad]`; every payload here is `[thread, seq, pattern...]` with a
//! pattern derived from both, so the consumer checks each entry is intact where it reads it.

#![cfg(fasthog_loom)]

use loom::sync::Arc;
use loom::thread;

use fasthog::ring::{
    try_consumer, try_producer, try_shared, Full, Geometry, HeapMemory, LaneProducer, Lanes,
};

type TestLanes = Lanes<HeapMemory>;
type Producer = LaneProducer<Arc<TestLanes>>;
type Consumer = fasthog::ring::LanesConsumer<Arc<TestLanes>>;

/// A payload of 28 bytes takes 32 lane bytes: with `max_entry` 32, one per 64-byte block (a
/// block keeps its last 8 bytes for the link), so every entry after a lane's first switches
/// blocks.
const BIG: usize = 28;
/// A payload of 20 bytes takes 24 lane bytes: two per block, the third switches.
const SMALL: usize = 20;

/// `blocks` blocks of 64 bytes, entries of at most 32 lane bytes.
fn lanes(blocks: usize, owned: usize, shared: usize) -> Arc<TestLanes> {
    let geometry = Geometry { block_bytes: 64, blocks, max_entry: 32 };
    Arc::new(Lanes::new(HeapMemory::new(geometry, owned, shared).expect("a valid geometry")))
}

fn pattern(thread: u8, seq: u8, i: usize) -> u8 {
    thread.wrapping_mul(31).wrapping_add(seq.wrapping_mul(7)).wrapping_add(i as u8)
}

/// Writes entry `(thread, seq)` of `len` payload bytes; `Full` when the pool has no block.
fn put(p: &mut Producer, thread: u8, seq: u8, len: usize) -> Result<(), Full> {
    p.write(|buf, _last| {
        let buf = buf.get_mut(..len)?;
        buf[0] = thread;
        buf[1] = seq;
        for (i, b) in buf.iter_mut().enumerate().skip(2) {
            *b = pattern(thread, seq, i);
        }
        Some(len)
    })
}

/// Checks an entry is intact and returns its `(thread, seq)`.
fn check(payload: &[u8]) -> (u8, u8) {
    assert!(payload.len() == BIG || payload.len() == SMALL, "length {}", payload.len());
    let (thread, seq) = (payload[0], payload[1]);
    for (i, &b) in payload.iter().enumerate().skip(2) {
        assert_eq!(b, pattern(thread, seq, i), "entry ({thread}, {seq}) corrupt at byte {i}");
    }
    (thread, seq)
}

/// Drains once, appending what arrived; how many entries that was.
fn drain(c: &mut Consumer, got: &mut Vec<(u8, u8)>) -> usize {
    let d = c.drain(|payload| {
        got.push(check(payload));
        true
    });
    assert!(!d.stopped);
    d.events
}

/// Runs `f` under loom with at most `preemption_bound` preemptions per execution, which keeps
/// each model to seconds while still covering the bugs that need few preemptions (nearly all).
fn model(preemption_bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = preemption_bound;
    builder.check(f);
}

/// Every entry arrived exactly once, intact (checked in `drain`), and in order per thread;
/// `got` and `dropped` together are exactly `want`.
fn assert_once_in_order(got: &[(u8, u8)], dropped: &[(u8, u8)], want: &[(u8, u8)]) {
    for t in want.iter().map(|e| e.0) {
        let mine: Vec<u8> = got.iter().filter(|e| e.0 == t).map(|e| e.1).collect();
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "thread {t} out of order or repeated: {got:?}");
    }
    let mut all: Vec<(u8, u8)> = got.iter().chain(dropped).copied().collect();
    all.sort_unstable();
    let mut want = want.to_vec();
    want.sort_unstable();
    assert_eq!(all, want, "got {got:?}, dropped {dropped:?}");
}

/// One producer and the consumer over two blocks. Three entries of one block each: the second
/// links block 1 after block 0, the third needs block 0 again, which only the consumer can
/// hand back once it has followed the link. So this covers reserve/commit, the link, the
/// consumer following it and freeing the block, and the block's reuse (the producer's writes
/// into block 0 must come after the consumer's reads of it).
#[test]
fn block_crossing_link_free_reuse() {
    model(Some(4), || {
        let lanes = lanes(2, 1, 1);
        let mut p = try_producer(lanes.clone()).unwrap();
        let mut c = try_consumer(lanes.clone()).unwrap();
        let producer = thread::spawn(move || {
            for seq in 1..=3 {
                while put(&mut p, 1, seq, BIG) == Err(Full) {
                    thread::yield_now();
                }
            }
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            if drain(&mut c, &mut got) == 0 {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(got, [(1, 1), (1, 2), (1, 3)]);
        assert_eq!(drain(&mut c, &mut got), 0);
        assert_eq!(lanes.totals().pushed, 3);
        // The lane keeps its current block; the other is free.
        assert_eq!(lanes.free_blocks(), 1);
    });
}

/// Two producers on two lanes, three blocks, two entries of one block each: four blocks are
/// wanted, so the producers' pops race for the last free block (pop vs pop), and against the
/// consumer handing a block back (pop vs push). A producer that finds no block drops its entry
/// and counts it. Nothing is lost, repeated, reordered or overwritten, and afterwards every
/// block not held by a lane is free. (When one thread is done before the other claims, the
/// second gets the same lane and continues it.)
#[test]
fn two_lanes_compete_for_the_last_blocks() {
    model(Some(2), || {
        let lanes = lanes(3, 2, 1);
        let mut c = try_consumer(lanes.clone()).unwrap();
        let producers: Vec<_> = (1..=2u8)
            .map(|t| {
                let lanes = lanes.clone();
                thread::spawn(move || {
                    // A lane per thread; the same lane when one thread ends before the other
                    // claims.
                    let mut p = try_producer(lanes).expect("a free lane");
                    let mut dropped = Vec::new();
                    for seq in 1..=2 {
                        if put(&mut p, t, seq, BIG) == Err(Full) {
                            p.count(false);
                            dropped.push((t, seq));
                        }
                    }
                    (p.index(), dropped)
                })
            })
            .collect();
        let mut got = Vec::new();
        // Let the threads start first (loom runs a spawned thread before this one's next
        // steps only once this one yields or blocks), so the drain below meets them mid-way.
        thread::yield_now();
        drain(&mut c, &mut got);
        let (mut used, mut dropped) = (Vec::new(), Vec::new());
        for p in producers {
            let (lane, lost) = p.join().unwrap();
            used.push(lane);
            dropped.extend(lost);
        }
        drain(&mut c, &mut got);
        assert_once_in_order(&got, &dropped, &[(1, 1), (1, 2), (2, 1), (2, 2)]);
        // Each first entry takes one of three blocks: only a second entry can find none.
        assert!(dropped.iter().all(|e| e.1 == 2), "{dropped:?}");
        let totals = lanes.totals();
        assert_eq!((totals.pushed, totals.dropped), (got.len(), dropped.len()));
        used.dedup();
        assert_eq!(lanes.free_blocks(), 3 - used.len(), "every block but the lanes' current ones came back");
    });
}

/// Two threads each try once to claim the one owned lane, write two entries and release it,
/// while the consumer drains. When both claims succeed, the second continues where the first
/// stopped (two small entries fill most of a block, so its first entry links a new block): a
/// stale write position would overwrite unread entries. Every entry arrives once, one claim's
/// entries after the other's.
#[test]
fn lane_handoff_continues_where_the_last_holder_stopped() {
    model(None, || {
        let lanes = lanes(2, 1, 1);
        let mut c = try_consumer(lanes.clone()).unwrap();
        let spawn = |t: u8| {
            let lanes = lanes.clone();
            thread::spawn(move || {
                let mut p = try_producer(lanes)?;
                for seq in 1..=2 {
                    put(&mut p, t, seq, SMALL).expect("two blocks hold four small entries");
                }
                Some(t)
            })
        };
        let (a, b) = (spawn(1), spawn(2));
        let mut got = Vec::new();
        // Let the threads start first (loom runs a spawned thread before this one's next
        // steps only once this one yields or blocks), so the drain below meets them mid-way.
        thread::yield_now();
        drain(&mut c, &mut got);
        let claimed: Vec<u8> = [a, b].into_iter().filter_map(|h| h.join().unwrap()).collect();
        drain(&mut c, &mut got);
        assert!(!claimed.is_empty(), "the first claim always succeeds");
        // One claim at a time: all of one holder's entries, then all of the other's.
        let mut runs: Vec<u8> = got.iter().map(|e| e.0).collect();
        runs.dedup();
        assert_eq!(runs.len(), claimed.len(), "{got:?}");
        let want: Vec<(u8, u8)> = claimed.iter().flat_map(|&t| [(t, 1), (t, 2)]).collect();
        assert_once_in_order(&got, &[], &want);
        assert_eq!(lanes.totals().pushed, want.len());
        assert!(try_producer(lanes.clone()).is_some(), "the lane was released");
    });
}

/// The pool runs full: two blocks, one entry each; the third entry finds no free block unless
/// the consumer, draining concurrently, has already followed the link out of block 0. On
/// `Full` nothing was written (the two entries arrive intact), and once the consumer has freed
/// the block the same entry fits.
#[test]
fn full_pool_fails_then_succeeds_after_a_block_is_freed() {
    model(None, || {
        let lanes = lanes(2, 1, 1);
        let mut p = try_producer(lanes.clone()).unwrap();
        let c = try_consumer(lanes.clone()).unwrap();
        let consumer = thread::spawn(move || {
            let mut c = c;
            let mut got = Vec::new();
            drain(&mut c, &mut got);
            (c, got)
        });
        thread::yield_now(); // let the consumer start first (see above)
        put(&mut p, 1, 1, BIG).expect("block 0");
        put(&mut p, 1, 2, BIG).expect("block 1");
        let third = put(&mut p, 1, 3, BIG);
        if third.is_err() {
            p.count(false);
        }
        let (mut c, mut got) = consumer.join().unwrap();
        drain(&mut c, &mut got);
        if third.is_err() {
            assert_eq!(got, [(1, 1), (1, 2)], "nothing written on Full");
            assert_eq!(lanes.free_blocks(), 1, "the drain freed block 0");
            put(&mut p, 1, 3, BIG).expect("a block is free again");
            drain(&mut c, &mut got);
        }
        assert_eq!(got, [(1, 1), (1, 2), (1, 3)]);
        let totals = lanes.totals();
        assert_eq!((totals.pushed, totals.dropped), (3, usize::from(third.is_err())));
    });
}

/// A shared lane borrowed by two threads, one capture per borrow, two captures each, while the
/// consumer drains: a borrow finding the lane busy drops its entry (counted where no lane can
/// count it). Small entries, so the third entry in the lane links a second block. Every entry
/// arrives once, intact, in order per thread.
#[test]
fn shared_lane_borrowed_by_two_threads() {
    model(Some(4), || {
        let lanes = lanes(2, 0, 1);
        let mut c = try_consumer(lanes.clone()).unwrap();
        let producers: Vec<_> = (1..=2u8)
            .map(|t| {
                let lanes = lanes.clone();
                thread::spawn(move || {
                    let mut dropped = Vec::new();
                    for seq in 1..=2 {
                        match try_shared(lanes.clone()) {
                            Some(mut p) => put(&mut p, t, seq, SMALL).expect("room for four"),
                            None => {
                                lanes.count_unlaned(false);
                                dropped.push((t, seq));
                            }
                        }
                    }
                    dropped
                })
            })
            .collect();
        let mut got = Vec::new();
        // Let the threads start first (loom runs a spawned thread before this one's next
        // steps only once this one yields or blocks), so the drain below meets them mid-way.
        thread::yield_now();
        drain(&mut c, &mut got);
        let dropped: Vec<(u8, u8)> = producers.into_iter().flat_map(|p| p.join().unwrap()).collect();
        drain(&mut c, &mut got);
        assert_once_in_order(&got, &dropped, &[(1, 1), (1, 2), (2, 1), (2, 2)]);
        assert!(!got.is_empty(), "the first borrow always succeeds");
        let totals = lanes.totals();
        assert_eq!((totals.pushed, totals.dropped), (got.len(), dropped.len()));
        assert!(try_shared(lanes.clone()).is_some(), "every borrow was released");
    });
}

/// The consumer handed from thread to thread: two threads each try once to claim it, drain
/// and drop it, while a producer writes three entries across a block boundary; then this
/// thread claims it and drains the rest. A later consumer continues where the last one stopped
/// (its read position and the blocks it handed back): every entry arrives once, in order.
#[test]
fn consumer_handoff_continues_where_the_last_one_stopped() {
    model(Some(3), || {
        let lanes = lanes(3, 1, 1);
        let mut p = try_producer(lanes.clone()).unwrap();
        let producer = thread::spawn(move || {
            for seq in 1..=3 {
                put(&mut p, 1, seq, BIG).expect("three blocks");
            }
        });
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let lanes = lanes.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    if let Some(mut c) = try_consumer(lanes) {
                        drain(&mut c, &mut got);
                    }
                    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
                    got
                })
            })
            .collect();
        let mut got: Vec<(u8, u8)> = Vec::new();
        producer.join().unwrap();
        for c in consumers {
            got.extend(c.join().unwrap());
        }
        let mut c = try_consumer(lanes.clone()).expect("every consumer was dropped");
        let mut rest = Vec::new();
        drain(&mut c, &mut rest);
        // The two threads' shares may be joined in either order: sort by sequence.
        got.sort_unstable();
        got.extend(rest);
        assert_eq!(got, [(1, 1), (1, 2), (1, 3)]);
        assert_eq!(lanes.free_blocks(), 2, "both finished blocks came back, once each");
    });
}
