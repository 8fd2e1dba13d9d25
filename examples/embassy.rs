//! The embedded path, exercised on this machine: a `static` queue, explicit producer handles,
//! the flusher as an embassy task on embassy-executor's std platform with embassy-time, and a
//! custom transport (plain HTTP/1.1 written by hand, as a firmware would over its TCP stack).
//!
//! ```text
//! cargo run --example embassy --features embassy
//! ```
//! It ships to the local receiver it starts itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use embassy_executor::{Executor, Spawner};
use fasthog::batch::{Batch, Encoder, Enrichment, Envelope, Limits};
use fasthog::flusher::{FlushConfig, Flusher};
use fasthog::transport::{parse_retry_after, Request, Response, Transport, TransportError};
use fasthog::{EmbassyClock, EmbassyTimer, Event, StaticQueue};

/// Four lanes (and a shared one) over 32 blocks of 4 KiB, in a `static`: no allocator needed.
static QUEUE: StaticQueue<4, 32, 4096> = StaticQueue::new();

/// A minimal HTTP/1.1 transport: what a firmware would write over its TCP socket. Blocking
/// I/O inside an async fn is acceptable here only because this executor runs nothing
/// latency-sensitive; a real firmware would use its network stack's async socket.
struct PlainHttp {
    addr: String,
}

impl Transport for PlainHttp {
    async fn send(&self, request: Request<'_>) -> Result<Response, TransportError> {
        let mut stream = TcpStream::connect(&self.addr).map_err(|_| TransportError::Connect)?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|_| TransportError::Io)?;
        let head = format!(
            "POST /batch/ HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            request.len()
        );
        let io = |_| TransportError::Io;
        stream.write_all(head.as_bytes()).map_err(io)?;
        for part in request.parts() {
            stream.write_all(part).map_err(io)?;
        }
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).map_err(io)?;
        let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or(TransportError::Io)?;
        let mut retry_after = None;
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(io)? == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("retry-after") {
                    retry_after = parse_retry_after(value, 0);
                }
            }
        }
        let mut body = Vec::new();
        reader.take(512).read_to_end(&mut body).map_err(io)?;
        Ok(Response::new(status).with_retry_after_ms(retry_after).with_detail(&body))
    }
}

type Buffers = [Batch<&'static mut [u8], &'static mut [u32]>; 4];
type StaticFlusher =
    Flusher<'static, &'static StaticQueue<4, 32, 4096>, PlainHttp, EmbassyTimer, EmbassyClock, Buffers>;

#[embassy_executor::task]
async fn flush(flusher: StaticFlusher) {
    flusher.run().await;
}

#[embassy_executor::task(pool_size = 2)]
async fn sensor(device: &'static str, clock: EmbassyClock) {
    let mut lane = StaticQueue::producer(&QUEUE).expect("a free lane");
    for reading in 0..500u32 {
        let event = Event::new("sensor_reading", device)
            .prop("celsius", 20.0 + f64::from(reading % 50) / 10.0)
            .prop("seq", reading);
        let _ = lane.capture(&event, &clock);
        if reading % 50 == 49 {
            embassy_time::Timer::after_millis(20).await;
        }
    }
}

#[embassy_executor::task]
async fn stop_after(ms: u64, spawner: Spawner) {
    let _ = spawner;
    embassy_time::Timer::after_millis(ms).await;
    QUEUE.control().request_shutdown(2_000);
}

fn main() {
    let receiver = fasthog_receiver::Receiver::start(Default::default()).expect("local receiver");
    let addr = receiver.addr().to_string();
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let clock = EmbassyClock::anchored_now(wall);

    // On a microcontroller these would be `static_cell`s; on the std platform, leaking is
    // the simplest way to get `'static mut` buffers without `unsafe`.
    let limits = Limits { max_events: 64, max_batch_bytes: 64 * 1024, ..Limits::DEFAULT };
    let envelope = Envelope { api_key: "phc_fasthog_embassy_demo", historical_migration: false };
    let batch = || {
        let bytes: &'static mut [u8] = Vec::leak(vec![0u8; limits.max_batch_bytes]);
        let ends: &'static mut [u32] = Vec::leak(vec![0u32; limits.max_events]);
        Batch::new(bytes, ends, limits, envelope.overhead())
    };
    let encoder =
        Encoder::new(Enrichment { environment: "embedded", ..Enrichment::DEFAULT }, wall ^ 0x9e37_79b9);
    let consumer = fasthog::ring::try_consumer(&QUEUE).expect("one consumer");
    let config = FlushConfig { flush_interval_ms: 200, ..FlushConfig::DEFAULT };
    let flusher = Flusher::new(
        consumer,
        PlainHttp { addr },
        EmbassyTimer,
        clock,
        encoder,
        envelope,
        config,
        [batch(), batch(), batch(), batch()],
    );

    let executor: &'static mut Executor = Box::leak(Box::new(Executor::new()));
    executor.run_until(
        |spawner| {
            spawner.spawn(flush(flusher).expect("spawn flusher"));
            spawner.spawn(sensor("thermo-1", clock).expect("spawn sensor"));
            spawner.spawn(sensor("thermo-2", clock).expect("spawn sensor"));
            spawner.spawn(stop_after(1000, spawner).expect("spawn stopper"));
        },
        || QUEUE.control().is_finished(),
    );

    let stats = QUEUE.stats();
    println!("{stats:#?}");
    println!("receiver stored {}", receiver.stats().events_accepted);
    assert_eq!(stats.captured, 1000);
    assert_eq!(stats.sent + stats.failed + stats.dropped + stats.rejected, stats.captured);
    assert_eq!(receiver.stats().events_accepted, stats.sent);
}
