//! What reusing the gzip compressor saves per request body: a new `GzEncoder` per body (what
//! the ureq transport did) against one `GzipBody` reset per body (what it does now), on
//! 64-event bodies of typical events, gzip level 1 (the default).
//!
//! ```text
//! cargo run --release --example gzip_reuse
//! ```

use std::hint::black_box;
use std::io::Write as _;
use std::time::Instant;

use fasthog::batch::{Batch, Encoder, Enrichment, Envelope, Limits, HEAD_CAPACITY, TAIL};
use fasthog::client::GzipBody;
use fasthog::{Event, FixedClock, Static};

/// A request body of 64 typical events, as the flusher builds it.
fn body(k: i64) -> Vec<u8> {
    let envelope = Envelope { api_key: "phc_example_key_0123456789", historical_migration: false };
    let limits = Limits::DEFAULT;
    let mut batch =
        Batch::new(vec![0u8; limits.max_batch_bytes], vec![0u32; 64], limits, envelope.overhead());
    let mut encoder = Encoder::new(Enrichment { environment: "production", ..Enrichment::DEFAULT }, 7);
    let clock = FixedClock(1_764_000_000_000_000_000);
    for i in 0..64 {
        let user = format!("2f1c8f5e-7a34-4a63-9d0b-{:012}", k * 64 + i);
        let event = Event::new("order_filled", &user)
            .prop("qty", i)
            .prop("price", 101.25)
            .prop("venue", Static("XNAS"))
            .prop("seq", k);
        let _ = batch.push(&mut encoder, &event, &clock);
    }
    let mut head = [0u8; HEAD_CAPACITY];
    let n = envelope.write_head(1_764_000_000_000_000_000, &mut head);
    let mut out = head[..n].to_vec();
    out.extend_from_slice(batch.events(0..batch.len()));
    out.extend_from_slice(TAIL);
    out
}

/// Median nanoseconds per body over `rounds` rounds of all `bodies`.
fn median_ns(rounds: usize, bodies: &[Vec<u8>], mut one: impl FnMut(&[u8]) -> usize) -> f64 {
    let mut per_body: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for b in bodies {
                black_box(one(black_box(b)));
            }
            t.elapsed().as_nanos() as f64 / bodies.len() as f64
        })
        .collect();
    per_body.sort_by(f64::total_cmp);
    per_body[rounds / 2]
}

fn main() {
    let bodies: Vec<Vec<u8>> = (0..200).map(body).collect();
    let plain = bodies.iter().map(Vec::len).sum::<usize>() / bodies.len();
    let fresh = median_ns(21, &bodies, |b| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
        let _ = gz.write_all(b);
        gz.finish().map_or(0, |v| v.len())
    });
    let mut reused = GzipBody::new(1);
    let mut out = Vec::new();
    let reset = median_ns(21, &bodies, |b| {
        reused.compress(b, &mut out);
        out.len()
    });
    reused.compress(&bodies[0], &mut out);
    println!("64-event bodies of {plain} bytes, gzip level 1, to {} bytes:", out.len());
    println!("  new GzEncoder per body: {:>8.0} ns per body", fresh);
    println!(
        "  reused GzipBody:        {:>8.0} ns per body ({:.0}% less)",
        reset,
        100.0 * (1.0 - reset / fresh)
    );
}
