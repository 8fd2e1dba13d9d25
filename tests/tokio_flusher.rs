//! The executor-agnostic flusher on tokio: a `Timer` over `tokio::time`, the real ureq
//! `HttpTransport` to the local receiver, and the flusher future handed to `tokio::spawn` —
//! which compiles only if that future is `Send + 'static` with these concrete types.
#![cfg(feature = "std")]

#[path = "common/delivery.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use fasthog::batch::{Batch, Encoder, Enrichment, Envelope, Limits};
use fasthog::client::{HttpTransport, SystemClock};
use fasthog::flusher::{FlushConfig, Flusher, Timer};
use fasthog::ring::{try_consumer, LaneProducer};
use fasthog::{Captured, Event, HeapQueue, Snapshot};
use fasthog_receiver::{Fault, Receiver, ReceiverConfig};
use support::{assert_accounted, assert_no_key_logged, install_logger, FAST_RETRY, KEY};

/// The flusher's timer on tokio.
#[derive(Debug, Clone, Copy)]
struct TokioTimer {
    start: tokio::time::Instant,
}

impl TokioTimer {
    fn new() -> Self {
        TokioTimer { start: tokio::time::Instant::now() }
    }
}

impl Timer for TokioTimer {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    async fn sleep_us(&self, us: u64) {
        tokio::time::sleep(Duration::from_micros(us)).await;
    }
}

/// A queue with a flusher spawned on the current tokio runtime.
struct Running {
    queue: Arc<HeapQueue>,
    flusher: tokio::task::JoinHandle<()>,
}

fn spawn(url: &str, config: FlushConfig, http_timeout: Duration) -> Running {
    let queue = Arc::new(HeapQueue::with_blocks(4, 64, 8192));
    let consumer = try_consumer(queue.clone()).expect("one consumer");
    let transport = HttpTransport::new(url, Duration::from_secs(1), http_timeout, Some(1));
    // 'static borrows, as `tokio::spawn` needs: a literal key and environment.
    let envelope = Envelope { api_key: KEY, historical_migration: false };
    let limits = Limits { max_events: 16, ..Limits::DEFAULT };
    let batches: Vec<Batch<Vec<u8>, Vec<u32>>> = (0..4)
        .map(|_| Batch::new(vec![0u8; 64 << 10], vec![0u32; limits.max_events], limits, envelope.overhead()))
        .collect();
    let encoder = Encoder::new(Enrichment { environment: "tokio", ..Enrichment::DEFAULT }, 42);
    let flusher =
        Flusher::new(consumer, transport, TokioTimer::new(), SystemClock, encoder, envelope, config, batches);
    // The point of this file: the flusher future is Send with concrete types.
    let flusher = tokio::spawn(flusher.run());
    Running { queue, flusher }
}

fn capture(producer: &mut LaneProducer<Arc<HeapQueue>>, n: usize, name: &'static str) {
    for i in 0..n {
        let outcome = producer.capture(&Event::new(name, "tokio-user").prop("i", i as i64), &SystemClock);
        assert_eq!(outcome, Captured::Queued);
    }
}

async fn flush(queue: &HeapQueue, timeout: Duration) -> bool {
    let ticket = queue.control().request_flush();
    tokio::time::timeout(timeout, async {
        while !queue.control().is_flushed(ticket) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .is_ok()
}

async fn shutdown(running: Running, grace: Duration) -> Snapshot {
    running.queue.control().request_shutdown(grace.as_millis() as u64);
    tokio::time::timeout(grace + Duration::from_secs(1), running.flusher)
        .await
        .expect("the flusher stops by its deadline")
        .expect("the flusher task does not panic");
    let stats = running.queue.stats();
    assert_accounted(&stats);
    assert_no_key_logged();
    stats
}

fn fast_config() -> FlushConfig {
    FlushConfig { retry: FAST_RETRY, ..FlushConfig::DEFAULT }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_on_tokio_with_the_http_transport() {
    install_logger();
    let r = Receiver::start(ReceiverConfig::default()).unwrap();
    let running = spawn(&r.url(), fast_config(), Duration::from_secs(3));
    let mut producer = HeapQueue::producer(running.queue.clone()).unwrap();
    capture(&mut producer, 40, "tokio_event");
    assert!(flush(&running.queue, Duration::from_secs(5)).await, "flush on tokio");
    assert_eq!(r.stats().events_accepted, 40);
    assert!(r.requests().iter().all(|q| q.gzip && q.content_encoding.as_deref() == Some("gzip")));
    assert_eq!(r.events()[0]["properties"]["environment"], "tokio");
    drop(producer);
    let stats = shutdown(running, Duration::from_secs(2)).await;
    assert_eq!((stats.sent, stats.failed), (40, 0));
}

#[tokio::test(flavor = "current_thread")]
async fn retries_on_a_current_thread_runtime() {
    install_logger();
    let r = Receiver::start(ReceiverConfig::default()).unwrap();
    r.push_faults([Fault::Status { code: 503, retry_after: None }, Fault::Drop]);
    let running = spawn(&r.url(), fast_config(), Duration::from_secs(3));
    let mut producer = HeapQueue::producer(running.queue.clone()).unwrap();
    capture(&mut producer, 5, "tokio_retry");
    assert!(flush(&running.queue, Duration::from_secs(5)).await);
    let statuses: Vec<u16> = r.requests().iter().map(|q| q.status).collect();
    assert_eq!(statuses, [503, 0, 200]);
    let stats = shutdown(running, Duration::from_secs(2)).await;
    assert_eq!((stats.sent, stats.failed, stats.retried), (5, 0, 2));
    assert_eq!(r.stats().unique_uuids, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_on_tokio_abandons_a_hung_request_by_its_deadline() {
    install_logger();
    let r = Receiver::start(ReceiverConfig::default()).unwrap();
    r.push_faults([Fault::Hang, Fault::Hang]);
    let config = FlushConfig { flush_interval_ms: 20, ..fast_config() };
    let running = spawn(&r.url(), config, Duration::from_secs(30));
    let mut producer = HeapQueue::producer(running.queue.clone()).unwrap();
    capture(&mut producer, 6, "tokio_hang");
    tokio::time::timeout(Duration::from_secs(5), async {
        while r.stats().requests == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("a request in flight");
    let started = tokio::time::Instant::now();
    let stats = shutdown(running, Duration::from_millis(300)).await;
    assert!(started.elapsed() < Duration::from_millis(1_300), "{:?}", started.elapsed());
    assert_eq!((stats.sent, stats.failed), (0, 6));
}
