//! Encoder throughput on one core: typical events captured into lanes with the client's
//! default clock, then drained and encoded into batches, as the flusher does.
//!
//! How it measures:
//! - Fill (untimed): one producer captures `events` typical events into a `HeapQueue` lane
//!   with a `ClientClock::Coarse` (the default clock: each tick is wall-clock nanoseconds from
//!   an atomic), refreshed every [`CoarseClock::RESOLUTION`] of wall time during the fill, as
//!   the client's flusher thread refreshes it.
//! - Encode (timed): `LanesConsumer::drain` reads each entry in place and `Batch::push`es it
//!   into a batch of the default limits (64 events, 1 MiB) with the default enrichment; a full
//!   batch is cleared (as if sent) and the entry pushed again. Only this is timed.
//! - `rounds` rounds; the report shows the median and the best (noise on a shared machine only
//!   ever slows a round down).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fasthog::batch::{Batch, Encoder, Enrichment, Envelope, Limits, Pushed};
use fasthog::client::{ClientClock, CoarseClock};
use fasthog::ring::try_consumer;
use fasthog::{Captured, HeapQueue};

use crate::peers::API_KEY;
use crate::workload::{user_id, Typical, Workload};

/// The measurement's result.
#[derive(Debug, Clone)]
pub struct EncodeResult {
    /// Events encoded per round.
    pub events: u64,
    /// Events per second of each round, sorted ascending.
    pub rates: Vec<f64>,
    /// Bytes of JSON per event.
    pub json_bytes_per_event: f64,
}

impl EncodeResult {
    /// The median round's rate, events/s.
    pub fn median(&self) -> f64 {
        self.rates.get(self.rates.len() / 2).copied().unwrap_or(0.0)
    }

    /// The fastest round's rate, events/s.
    pub fn best(&self) -> f64 {
        self.rates.last().copied().unwrap_or(0.0)
    }
}

/// Runs `rounds` rounds of `events` events.
pub fn run(events: u64, rounds: usize) -> EncodeResult {
    let user = user_id(0);
    let lane_bytes = Typical::event(&user, 0).to_entry().lane_bytes();
    let block = 64 * 1024;
    let blocks = (events as usize * lane_bytes).div_ceil(block - 8) + 4;
    let queue = HeapQueue::with_blocks(1, blocks, block);
    let coarse = Arc::new(CoarseClock::new());
    let clock = ClientClock::Coarse(coarse.clone());
    let mut consumer = try_consumer(&queue).expect("the consumer");
    let enrichment = Enrichment { environment: "bench", ..Enrichment::DEFAULT };
    let mut encoder = Encoder::new(enrichment, 42);
    let limits = Limits::DEFAULT;
    let envelope = Envelope { api_key: API_KEY, historical_migration: false };
    let mut batch: Batch<Vec<u8>, Vec<u32>> = Batch::new(
        vec![0u8; limits.max_batch_bytes],
        vec![0u32; limits.max_events],
        limits,
        envelope.overhead(),
    );
    let mut rates = Vec::with_capacity(rounds);
    let mut json_bytes = 0u64;
    let mut encoded_total = 0u64;
    for round in 0..rounds + 1 {
        {
            let mut producer = HeapQueue::producer(&queue).expect("a lane");
            let mut refreshed = Instant::now();
            for i in 0..events {
                if i % 64 == 0 && refreshed.elapsed() >= CoarseClock::RESOLUTION {
                    coarse.refresh();
                    refreshed = Instant::now();
                }
                let outcome = producer.capture(&Typical::event(&user, i), &clock);
                assert_eq!(outcome, Captured::Queued, "the encode bench's lane must hold every event");
            }
        }
        batch.clear();
        let mut encoded = 0u64;
        let start = Instant::now();
        consumer.drain(|entry| {
            let mut pushed = batch.push(&mut encoder, entry, &clock);
            if matches!(pushed, Pushed::Full) {
                json_bytes += batch.bytes_len() as u64;
                black_box(batch.bytes_len());
                batch.clear();
                pushed = batch.push(&mut encoder, entry, &clock);
            }
            encoded += u64::from(matches!(pushed, Pushed::Added(_)));
            true
        });
        let took = start.elapsed().max(Duration::from_nanos(1));
        json_bytes += batch.bytes_len() as u64;
        assert_eq!(encoded, events, "every drained entry encodes");
        // Round 0 warms up the encoder, the batch buffer and the pool's pages.
        if round > 0 {
            rates.push(events as f64 / took.as_secs_f64());
            encoded_total += encoded;
        } else {
            json_bytes = 0;
        }
    }
    rates.sort_by(f64::total_cmp);
    EncodeResult { events, rates, json_bytes_per_event: json_bytes as f64 / encoded_total.max(1) as f64 }
}
