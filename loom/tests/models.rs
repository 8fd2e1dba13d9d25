//! Loom models of the rings: every interleaving (up to a preemption bound) of small producer
//! and consumer threads, with loom checking each slot access against the happens-before
//! order the atomics establish. A missing release/acquire pair shows up as a "causality
//! violation" on a slot, or as a lost, repeated or reordered record.
//!
//! ```text
//! RUSTFLAGS="--cfg fasthog_loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p fasthog-loom --release
//! ```

#![cfg(fasthog_loom)]

use loom::sync::atomic::AtomicUsize;
use loom::sync::Arc;
use loom::thread;

use fasthog::ring::{try_consumer, try_producer, Empty, Full, Lanes, Ring, SharedRing, Slot};

/// A record; 0 is the empty slot, so every record pushed is non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rec(u32);

impl Empty for Rec {
    const EMPTY: Rec = Rec(0);
}

type Ring2 = Ring<Rec, [Slot<Rec>; 2]>;
type Shared2 = SharedRing<Rec, [Slot<Rec>; 2], [AtomicUsize; 2]>;

fn ring2() -> Ring2 {
    Ring::with_storage([Slot::new(), Slot::new()])
}

fn shared2() -> Shared2 {
    SharedRing::with_storage([Slot::new(), Slot::new()], [AtomicUsize::new(0), AtomicUsize::new(1)])
}

/// Runs `f` under loom: every interleaving when `preemption_bound` is `None`; with a bound,
/// those with at most that many preemptions, which keeps a larger model to seconds while
/// still covering the bugs that need few preemptions (nearly all of them).
fn model(preemption_bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = preemption_bound;
    builder.check(f);
}

/// Pops until `n` records arrived, yielding while the ring is empty.
fn pop_n<R: fasthog::ring::RingRef<Record = Rec>>(c: &mut fasthog::ring::Consumer<R>, n: usize) -> Vec<u32> {
    let mut got = Vec::new();
    while got.len() < n {
        match c.pop() {
            Some(r) => got.push(r.0),
            None => thread::yield_now(),
        }
    }
    got
}

/// SPSC across two threads with capacity 2: three records go through, so the producer wraps
/// onto a slot the consumer must have finished reading.
#[test]
fn spsc_wraparound() {
    model(None, || {
        let ring = Arc::new(ring2());
        let mut p = Ring::try_producer(ring.clone()).unwrap();
        let mut c = Ring::try_consumer(ring.clone()).unwrap();
        let producer = thread::spawn(move || {
            for i in 1..=3 {
                while p.push(Rec(i)) == Err(Full) {
                    thread::yield_now();
                }
            }
        });
        let got = pop_n(&mut c, 3);
        producer.join().unwrap();
        assert_eq!(got, [1, 2, 3]);
        assert_eq!(c.pop(), None);
        assert_eq!(ring.pushed(), 3);
    });
}

/// A full ring while the consumer lags: the producer sees `Full` (and then counts a drop)
/// rather than writing over a record the consumer has not read, or is reading.
#[test]
fn spsc_full_overwrites_nothing() {
    model(None, || {
        let ring = Arc::new(ring2());
        let mut p = Ring::try_producer(ring.clone()).unwrap();
        let mut c = Ring::try_consumer(ring.clone()).unwrap();
        let consumer = thread::spawn(move || {
            let first = c.pop();
            (first, c)
        });
        p.push(Rec(1)).unwrap();
        p.push(Rec(2)).unwrap();
        let third = p.push(Rec(3));
        if third == Err(Full) {
            p.count(false);
        }
        let (first, mut c) = consumer.join().unwrap();
        if first.is_none() {
            assert_eq!(third, Err(Full), "nothing was consumed, so the third push cannot fit");
        }
        let mut got: Vec<u32> = first.into_iter().map(|r| r.0).collect();
        c.drain_with(usize::MAX, |r| got.push(r.0));
        let want: &[u32] = if third.is_ok() { &[1, 2, 3] } else { &[1, 2] };
        assert_eq!(got, want);
        assert_eq!(ring.dropped(), usize::from(third.is_err()));
        assert_eq!(ring.pushed(), want.len());
    });
}

/// Two threads each try once to claim the producer, push two records (counting a drop on
/// `Full`) and release it, while the consumer drains. When both claims succeed, the second
/// producer must continue at the first one's tail: with capacity 2 a stale tail would write
/// over an unread record (lost, or a racy slot access loom reports). No spinning, so loom
/// explores every interleaving of claim, push, release and drain.
#[test]
fn spsc_producer_handoff() {
    model(None, || {
        let ring = Arc::new(ring2());
        let mut c = Ring::try_consumer(ring.clone()).unwrap();
        let spawn = |id: u32| {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut p = Ring::try_producer(ring)?;
                // A producer-only counter (plain load and store): the claim handoff must
                // order the two producers' updates.
                p.count(true);
                let mut dropped = Vec::new();
                for i in 1..=2 {
                    if p.push(Rec(id * 10 + i)) == Err(Full) {
                        p.count(false);
                        dropped.push(id * 10 + i);
                    }
                }
                Some(dropped)
            })
        };
        let a = spawn(1);
        let b = spawn(2);
        let mut got = Vec::new();
        c.drain_with(usize::MAX, |r| got.push(r.0));
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        c.drain_with(usize::MAX, |r| got.push(r.0));

        assert!(a.is_some() || b.is_some(), "the first claim always succeeds");
        let claims = usize::from(a.is_some()) + usize::from(b.is_some());
        // One claim at a time: all of one producer's records, then all of the other's.
        let mut runs: Vec<u32> = got.iter().map(|r| r / 10).collect();
        runs.dedup();
        assert!(runs.len() <= 2, "records of the two claims interleave: {got:?}");
        let mut pushed = Vec::new();
        let mut dropped = 0;
        for (id, outcome) in [(1, a), (2, b)] {
            let Some(lost) = outcome else { continue };
            let mine: Vec<u32> = got.iter().copied().filter(|r| r / 10 == id).collect();
            let want: Vec<u32> = (1..=2).map(|i| id * 10 + i).filter(|r| !lost.contains(r)).collect();
            assert_eq!(mine, want, "producer {id}: got {got:?}, dropped {lost:?}");
            pushed.extend(want);
            dropped += lost.len();
        }
        // Nothing else arrived, and the first push of the first claimer always fits.
        assert_eq!(got.len(), pushed.len(), "{got:?}");
        assert!(!got.is_empty());
        assert_eq!((ring.pushed(), ring.dropped(), ring.rejected()), (got.len(), dropped, claims));
        assert!(Ring::try_producer(ring.clone()).is_some(), "every claim was released");
    });
}

/// Two threads claiming lanes at once, with two lanes: both get one, and not the same one.
#[test]
fn lanes_concurrent_claims_are_distinct() {
    model(None, || {
        let lanes = Arc::new(Lanes::from_parts([ring2(), ring2()], shared2()));
        let claim = || {
            let lanes = lanes.clone();
            thread::spawn(move || {
                let mut p = try_producer(lanes).expect("a lane per thread");
                let lane = p.index() as u32;
                p.push_with(|r| *r = Rec(lane + 1)).unwrap();
                p
            })
        };
        let a = claim();
        let b = claim();
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert_ne!(a.index(), b.index());
        assert!(try_producer(lanes.clone()).is_none(), "both lanes are held");
        drop(a);
        drop(b);
        let mut got = Vec::new();
        try_consumer(lanes.clone()).unwrap().drain_with(usize::MAX, |r| got.push(r.0));
        assert_eq!(got, [1, 2]);
    });
}

/// Three threads, two lanes: each claims a lane (or, finding both taken, uses the shared
/// ring), pushes, and releases, while the consumer drains concurrently. Released lanes go to
/// the next thread, which must see the previous holder's tail.
#[test]
fn lanes_claim_release_three_threads() {
    model(Some(4), || {
        let lanes = Arc::new(Lanes::from_parts([ring2(), ring2()], shared2()));
        let threads: Vec<_> = (1..=3)
            .map(|id| {
                let lanes = lanes.clone();
                thread::spawn(move || {
                    let in_lane = try_producer(lanes.clone())
                        .is_some_and(|mut p| p.push_with(|r| *r = Rec(id)).is_ok());
                    if !in_lane {
                        // No lane, or a lane already holding two records: the fallback,
                        // which three records can never fill (the first claim always wins).
                        lanes.shared().push_with(|r| *r = Rec(id)).expect("shared has room");
                    }
                })
            })
            .collect();
        let mut c = try_consumer(lanes.clone()).unwrap();
        let mut got = Vec::new();
        c.drain_with(usize::MAX, |r| got.push(r.0));
        for t in threads {
            t.join().unwrap();
        }
        c.drain_with(usize::MAX, |r| got.push(r.0));
        got.sort_unstable();
        assert_eq!(got, [1, 2, 3]);
        let totals = lanes.totals();
        assert_eq!((totals.pushed, totals.dropped, totals.rejected), (3, 0, 0));
        let a = try_producer(lanes.clone()).expect("every lane was released");
        let b = try_producer(lanes.clone()).expect("every lane was released");
        assert_ne!(a.index(), b.index());
    });
}

/// Two producers on the shared ring (capacity 2) and a consumer draining concurrently. Each
/// pushes two records and counts a drop on `Full`: every record arrives once or is counted,
/// per-producer order holds, and nothing is overwritten.
#[test]
fn shared_two_producers_drop_on_full() {
    model(None, || {
        let lanes = Arc::new(Lanes::<Rec, _, _, [Ring2; 0]>::from_parts([], shared2()));
        let producers: Vec<_> = (1..=2)
            .map(|id| {
                let lanes = lanes.clone();
                thread::spawn(move || {
                    let shared = lanes.shared();
                    let mut dropped = Vec::new();
                    for i in 1..=2 {
                        if shared.push_with(|r| *r = Rec(id * 10 + i)) == Err(Full) {
                            shared.count(false);
                            dropped.push(id * 10 + i);
                        }
                    }
                    dropped
                })
            })
            .collect();
        let mut c = try_consumer(lanes.clone()).unwrap();
        let mut got = Vec::new();
        c.drain_with(usize::MAX, |r| got.push(r.0));
        let mut dropped: Vec<u32> = Vec::new();
        for p in producers {
            dropped.extend(p.join().unwrap());
        }
        c.drain_with(usize::MAX, |r| got.push(r.0));
        for id in [1, 2] {
            let mine: Vec<u32> = got.iter().copied().filter(|r| r / 10 == id).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "producer {id} out of order: {got:?}");
        }
        let mut all: Vec<u32> = got.iter().chain(&dropped).copied().collect();
        all.sort_unstable();
        assert_eq!(all, [11, 12, 21, 22], "got {got:?}, dropped {dropped:?}");
        let shared = lanes.shared();
        assert_eq!((shared.pushed(), shared.dropped()), (got.len(), dropped.len()));
        assert!(shared.is_empty());
    });
}

/// One producer pushing three records through the shared ring of capacity 2 while the
/// consumer drains: slots are reused on the next lap only after the consumer has published
/// their new sequence number. Both sides retry a bounded number of times (loom needs
/// bounded loops); what does not fit is counted as dropped.
#[test]
fn shared_wraparound() {
    model(None, || {
        let lanes = Arc::new(Lanes::<Rec, _, _, [Ring2; 0]>::from_parts([], shared2()));
        let producer = {
            let lanes = lanes.clone();
            thread::spawn(move || {
                let shared = lanes.shared();
                let mut dropped = Vec::new();
                for i in 1..=3 {
                    let mut attempts = 0;
                    while shared.push_with(|r| *r = Rec(i)) == Err(Full) {
                        attempts += 1;
                        if attempts == 2 {
                            shared.count(false);
                            dropped.push(i);
                            break;
                        }
                        thread::yield_now();
                    }
                }
                dropped
            })
        };
        let mut c = try_consumer(lanes.clone()).unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            if c.drain_with(usize::MAX, |r| got.push(r.0)) == 0 {
                thread::yield_now();
            }
        }
        let dropped = producer.join().unwrap();
        c.drain_with(usize::MAX, |r| got.push(r.0));
        let want: Vec<u32> = (1..=3).filter(|i| !dropped.contains(i)).collect();
        assert_eq!(got, want, "dropped {dropped:?}");
        let shared = lanes.shared();
        assert_eq!((shared.pushed(), shared.dropped()), (got.len(), dropped.len()));
    });
}
