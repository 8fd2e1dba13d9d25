//! Loom model of capture racing close (the `Gate` in `src/ring/gate.rs`): a capture either
//! lands before the closer's final drain, or sees the gate closed. Under loom both fences are
//! `fence(SeqCst)` (the membarrier stands in for the producer's fence in real builds).
//!
//! ```text
//! RUSTFLAGS="--cfg fasthog_loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p fasthog-loom --release --test close
//! ```

#![cfg(fasthog_loom)]

use loom::sync::Arc;
use loom::thread;

use fasthog::ring::{try_consumer, try_producer, Gate, Geometry, HeapMemory, Lanes};

fn lanes() -> Lanes<HeapMemory> {
    let geometry = Geometry { block_bytes: 64, blocks: 2, max_entry: 32 };
    Lanes::new(HeapMemory::new(geometry, 1, 1).expect("a valid geometry"))
}

#[test]
fn a_capture_lands_before_the_final_drain_or_sees_the_gate_closed() {
    loom::model(|| {
        let lanes = Arc::new(lanes());
        let gate = Arc::new(Gate::new());
        let producer = {
            let (lanes, gate) = (lanes.clone(), gate.clone());
            thread::spawn(move || {
                let mut lane = try_producer(lanes).expect("a free lane");
                let open = lane.enter(&gate);
                if open {
                    lane.write(|buf, _| {
                        buf[0] = 7;
                        Some(1)
                    })
                    .expect("room");
                }
                lane.exit();
                open
            })
        };
        // The closer: close, wait for captures in progress, then the final drain.
        assert!(gate.close(&lanes, || {
            thread::yield_now();
            true
        }));
        let mut consumer = try_consumer(lanes.clone()).expect("one consumer");
        let mut got = Vec::new();
        consumer.drain(|entry| {
            got.push(entry[0]);
            true
        });
        let queued = producer.join().unwrap();
        if queued {
            assert_eq!(got, [7], "a capture that saw the gate open is in the final drain");
        } else {
            assert!(got.is_empty());
        }
    });
}
