#![no_std]

use fasthog::batch::{Batch, Encoder, Enrichment, Envelope, Limits, Pushed};
use fasthog::{Captured, Event, FixedClock, StaticQueue};

static QUEUE: StaticQueue<2, 8, 1024> = StaticQueue::new(); // 8 KiB, no allocator

/// Captures one event and encodes it into a caller's buffer: the whole core path, no std.
#[no_mangle]
pub extern "C" fn fasthog_nostd_smoke(out: *mut u8, len: usize) -> usize {
    let _ = (out, len);
    let clock = FixedClock(1_700_000_000_000_000_000);
    let Some(mut lane) = StaticQueue::producer(&QUEUE) else { return 0 };
    if lane.capture(&Event::new("boot", "device-7").prop("v", 1), &clock) != Captured::Queued {
        return 0;
    }
    let mut bytes = [0u8; 2048];
    let mut ends = [0u32; 4];
    let envelope = Envelope { api_key: "phc_x", historical_migration: false };
    let mut batch = Batch::new(&mut bytes[..], &mut ends[..], Limits::DEFAULT, envelope.overhead());
    let mut encoder = Encoder::new(Enrichment::DEFAULT, 7);
    let Some(mut consumer) = fasthog::ring::try_consumer(&QUEUE) else { return 0 };
    let mut added = 0;
    consumer.drain(|entry| {
        if matches!(batch.push(&mut encoder, entry, &clock), Pushed::Added(_)) {
            added += 1;
        }
        true
    });
    added
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
