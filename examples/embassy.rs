//! The embedded path, exercised on this machine: a `StaticQueue` in a `static`, explicit
//! producer handles, the flusher as an embassy task (embassy-executor's std platform,
//! embassy-time), and a `Transport` on [reqwless] over the [embedded-nal-async] traits,
//! written as firmware writes it.
//!
//! ```text
//! cargo run --example embassy --no-default-features --features embassy   # to a receiver it starts
//! cargo run -p fasthog-receiver -- --api-key phc_demo   # or to one you start (it prints its URL):
//! POSTHOG_HOST=http://127.0.0.1:PORT POSTHOG_API_KEY=phc_demo \
//!     cargo run --example embassy --no-default-features --features embassy
//! ```
//!
//! fasthog is built as on a board: its `no_std` core and `embassy`, no `std` feature. The
//! program exits non-zero unless every event captured was accepted by the server (`sent`).
//!
//! # What is firmware, what is host
//! `mod reqwless_transport` is what a board compiles: no std and no allocator (it has no
//! prelude, so every name it uses is imported from `core` or a `no_std` crate), fixed
//! buffers, a `heapless::String` for the URL, embassy-time for its timeouts. It is generic
//! over embedded-nal-async's `TcpConnect` and `Dns`: on a board, pass embassy-net's
//! `TcpClient` and `DnsSocket`; here, `std_embedded_nal_async::Stack` (the OS's sockets, Unix
//! only) stands in for them. The queue is a `static`, the batch buffers a `ConstStaticCell`
//! (in `.bss`, as on a board). Host only: `main`'s reading of the environment, the local
//! receiver, the executor's making, and the `String::leak` of the API key (on a board, a
//! `&'static str` constant).
//!
//! # Requests in flight
//! Each `send` opens its own connection, with its own buffers inside its future (the flusher
//! polls up to `requests_in_flight` of them at once, no allocation). embassy-net's
//! `TcpClient<'_, N, TX, RX>` has `N` sockets: set `requests_in_flight` to at most `N`, or a
//! connect beyond them fails (and is retried).
//!
//! The flusher's future holds `flusher::MAX_IN_FLIGHT` (8) request slots whatever
//! `requests_in_flight` is, each with room for a `send` future: mind this transport's buffers
//! (1 KiB for the response head, 512 B for writes, 224 B for the detail) when sizing them; the
//! program prints the flusher task's size.
//!
//! # No gzip
//! Bodies go uncompressed and without a compression hint, as the `Transport` contract asks
//! of an uncompressed body. miniz_oxide's deflate needs an allocator and keeps about 300 KiB of
//! state per compressor (its `deflate/buffer.rs`), one per request in flight: more RAM than most
//! boards have, to shrink 16 KiB bodies. Batching already cuts what costs on a radio link, the
//! round trips.
//!
//! # TLS on a board
//! This runs plain `http://` (the host has no TLS here, and `reqwless` is built without its
//! `embedded-tls` feature). For PostHog's `https://` endpoints on a board: enable reqwless's
//! default `embedded-tls` feature and, in `exchange`, make the client with
//! `HttpClient::new_with_tls(&self.tcp, &self.dns, TlsConfig::new(seed, &mut tls_read,
//! &mut tls_write, TlsVerify::Certificate { ca, cert: None, key: None }))`: `seed` from the
//! board's hardware RNG, `ca` the DER root certificate that signs the PostHog host, a read
//! buffer of 16,640 bytes (the largest TLS record) and a smaller write buffer (4 KiB; either
//! must hold the handshake). embedded-tls speaks TLS 1.3 only (`TLS_AES_128_GCM_SHA256`).
//! A connection borrows the buffers mutably: keep one pair per request in flight (a pool
//! behind an `embassy_sync` mutex), or set `requests_in_flight` to 1 and keep one pair. `new`
//! would then accept `https://` too.
//!
//! [reqwless]: https://docs.rs/reqwless
//! [embedded-nal-async]: https://docs.rs/embedded-nal-async

#[cfg(not(unix))]
compile_error!("the host's stand-in for embassy-net, std-embedded-nal-async, is Unix only");

use std::process::ExitCode;

use embassy_executor::Executor;
use fasthog::batch::{Batch, Encoder, Enrichment, Envelope, Limits};
use fasthog::flusher::{FlushConfig, Flusher};
use fasthog::{EmbassyClock, EmbassyTimer, Event, StaticQueue};
use reqwless_transport::ReqwlessTransport;
use static_cell::{ConstStaticCell, StaticCell};
use std_embedded_nal_async::Stack;

/// The transport, as a board compiles it.
mod reqwless_transport {
    // No prelude: String, Vec, Box and the rest of std cannot come in unnoticed; every name is
    // imported here, from core and no_std crates.
    #![no_implicit_prelude]

    use ::core::cmp::Ord;
    use ::core::fmt::Debug;
    use ::core::iter::Iterator;
    use ::core::option::Option::{self, None, Some};
    use ::core::result::Result::{self, Err, Ok};
    use ::embassy_time::{with_timeout, Duration};
    use ::embedded_io_async::{Read, Write};
    use ::embedded_nal_async::{Dns, TcpConnect};
    use ::fasthog::transport::{
        parse_retry_after, Request, Response, Transport, TransportError, DETAIL_KEPT,
    };
    use ::fasthog::{Clock, EmbassyClock};
    use ::reqwless::client::HttpClient;
    use ::reqwless::headers::ContentType;
    use ::reqwless::request::{Method, RequestBody, RequestBuilder};
    use ::reqwless::Error as HttpError;

    /// Longest `{host}/batch/` URL kept.
    pub const URL_BYTES: usize = 128;

    /// Room for the response's status line and headers (reqwless fails a longer head with
    /// `BufferTooSmall`, retried like a lost connection).
    const HEAD_BYTES: usize = 1024;

    /// The write buffer in front of the socket.
    const OUT_BYTES: usize = 512;

    /// What `POSTHOG_HOST` can be wrong with.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum HostError {
        /// Not `http://...` (this transport has no TLS: see the example's docs).
        NotHttp,
        /// The URL with `/batch/` is longer than [`URL_BYTES`].
        TooLong,
    }

    /// Batches over reqwless: one connection per request, `POST {host}/batch/`, JSON, no
    /// compression, a bounded connect and a bounded whole exchange.
    pub struct ReqwlessTransport<T, D> {
        tcp: T,
        dns: D,
        url: ::heapless::String<URL_BYTES>,
        /// For `Retry-After` dates.
        clock: EmbassyClock,
        connect_timeout: Duration,
        timeout: Duration,
    }

    impl<T: TcpConnect, D: Dns> ReqwlessTransport<T, D> {
        /// A transport to `host` (`http://name-or-ip[:port]`), with the std client's timeouts:
        /// 2 s to connect, 5 s for the whole exchange.
        pub fn new(tcp: T, dns: D, host: &str, clock: EmbassyClock) -> Result<Self, HostError> {
            let host = host.trim_end_matches('/');
            if !host.starts_with("http://") {
                return Err(HostError::NotHttp);
            }
            let mut url = ::heapless::String::new();
            url.push_str(host).and_then(|()| url.push_str("/batch/")).map_err(|_| HostError::TooLong)?;
            let (connect_timeout, timeout) = (Duration::from_secs(2), Duration::from_secs(5));
            Ok(ReqwlessTransport { tcp, dns, url, clock, connect_timeout, timeout })
        }

        async fn exchange(&self, request: Request<'_>) -> Result<Response, TransportError> {
            // The client only borrows the stack: one per request, so requests in flight share
            // nothing but the sockets' pool.
            let mut client = HttpClient::new(&self.tcp, &self.dns);
            let handle =
                match with_timeout(self.connect_timeout, client.request(Method::POST, &self.url)).await {
                    Err(_) => return Err(TransportError::Timeout),
                    Ok(Err(HttpError::InvalidUrl(_))) => {
                        return Err(TransportError::Other("host is not a valid URL"))
                    }
                    Ok(Err(_)) => return Err(TransportError::Connect),
                    Ok(Ok(handle)) => handle,
                };
            // reqwless writes the head a few bytes at a time ("POST", " ", "/batch/", ...):
            // buffered, it leaves in one write (on the host one syscall, not 25 per request)
            // and large body parts still go straight through.
            let mut out = [0u8; OUT_BYTES];
            // `Connection: close`: the next request opens its own connection anyway.
            let mut handle = handle
                .into_buffered(&mut out)
                .content_type(ContentType::ApplicationJson)
                .headers(&[("Connection", "close")])
                .body(Body(request));
            let mut head = [0u8; HEAD_BYTES];
            let response = handle.send(&mut head).await.map_err(lost)?;
            let status = response.status.0;
            let now_secs = self.clock.unix_nanos(self.clock.tick()) / 1_000_000_000;
            let retry_after =
                header(response.headers(), "retry-after").and_then(|v| parse_retry_after(v, now_secs));
            // A redirect is returned, not followed (reqwless never follows one); its detail is
            // where it points.
            let mut detail = [0u8; DETAIL_KEPT];
            let location = if (300..400).contains(&status) {
                header(response.headers(), "location").map(|to| copy_into(to.as_bytes(), &mut detail))
            } else {
                None
            };
            let n = match location {
                Some(n) => n,
                // The status is the answer: a body cut short only shortens the detail.
                None => read_up_to(&mut response.body().reader(), &mut detail).await,
            };
            Ok(Response::new(status).with_retry_after_ms(retry_after).with_detail(&detail[..n]))
        }
    }

    impl<T: TcpConnect, D: Dns> Transport for ReqwlessTransport<T, D> {
        async fn send(&self, request: Request<'_>) -> Result<Response, TransportError> {
            match with_timeout(self.timeout, self.exchange(request)).await {
                Ok(result) => result,
                Err(_) => Err(TransportError::Timeout),
            }
        }
    }

    /// The batch's three parts written in order: no copy into one buffer.
    struct Body<'a>(Request<'a>);

    impl RequestBody for Body<'_> {
        fn len(&self) -> Option<usize> {
            Some(self.0.len())
        }

        async fn write<W: Write>(&self, writer: &mut W) -> Result<(), W::Error> {
            for part in self.0.parts() {
                writer.write_all(part).await?;
            }
            Ok(())
        }
    }

    /// A failure after the connection was made, before a status: retried.
    fn lost(e: HttpError) -> TransportError {
        match e {
            HttpError::BufferTooSmall => TransportError::Other("response head over 1 KiB"),
            HttpError::Codec => TransportError::Other("malformed HTTP response"),
            _ => TransportError::Io,
        }
    }

    /// A response header's value, if present and UTF-8.
    fn header<'h>(mut headers: ::reqwless::response::HeaderIterator<'h>, name: &str) -> Option<&'h str> {
        let (_, value) = headers.find(|(n, _)| n.eq_ignore_ascii_case(name))?;
        ::core::str::from_utf8(value).ok()
    }

    fn copy_into(from: &[u8], to: &mut [u8]) -> usize {
        let n = from.len().min(to.len());
        to[..n].copy_from_slice(&from[..n]);
        n
    }

    /// Reads until `buf` is full, the body ends, or the connection fails.
    async fn read_up_to<R: Read>(body: &mut R, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            match body.read(&mut buf[n..]).await {
                Ok(0) | Err(_) => break,
                Ok(read) => n += read,
            }
        }
        n
    }
}

/// Two lanes (and a shared one) over 32 blocks of 4 KiB, in a `static`: no allocator needed.
static QUEUE: StaticQueue<2, 32, 4096> = StaticQueue::new();

/// Readings each of the two sensors captures.
const READINGS: u32 = 500;

/// Batches held at once: those in flight, and those filling or waiting.
const BATCHES: usize = 4;
/// Bytes of one request body.
const BATCH_BYTES: usize = 16 * 1024;
/// Events of one request body.
const BATCH_EVENTS: usize = 64;

/// The batches' buffers (body bytes, event ends), zeroed in `.bss` as on a board: `take`
/// hands them out once.
static BATCH_BUFFERS: ConstStaticCell<[([u8; BATCH_BYTES], [u32; BATCH_EVENTS]); BATCHES]> =
    ConstStaticCell::new([([0; BATCH_BYTES], [0; BATCH_EVENTS]); BATCHES]);

/// Host only: a board's `#[embassy_executor::main]` makes the executor.
static EXECUTOR: StaticCell<Executor> = StaticCell::new();

type Buffers = [Batch<&'static mut [u8], &'static mut [u32]>; BATCHES];
type StaticFlusher = Flusher<
    'static,
    &'static StaticQueue<2, 32, 4096>,
    ReqwlessTransport<Stack, Stack>,
    EmbassyTimer,
    EmbassyClock,
    Buffers,
>;

#[embassy_executor::task]
async fn flush(flusher: StaticFlusher) {
    let run = flusher.run();
    // The task's RAM (in the executor's static task pool on a board; defmt there, not println).
    println!("flusher task future: {} bytes", core::mem::size_of_val(&run));
    run.await;
}

#[embassy_executor::task(pool_size = 2)]
async fn sensor(device: &'static str, clock: EmbassyClock) {
    let mut lane = StaticQueue::producer(&QUEUE).expect("a free lane (two lanes, two sensors)");
    for reading in 0..READINGS {
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
async fn stop_after(ms: u64) {
    embassy_time::Timer::after_millis(ms).await;
    QUEUE.control().request_shutdown(2_000);
}

/// The batches, over the static buffers.
fn batches(limits: Limits, envelope: Envelope<'_>) -> Buffers {
    BATCH_BUFFERS
        .take()
        .each_mut()
        .map(|(bytes, ends)| Batch::new(&mut bytes[..], &mut ends[..], limits, envelope.overhead()))
}

fn main() -> ExitCode {
    // Host only: where to ship. Without POSTHOG_HOST, a receiver in this process.
    let local = std::env::var("POSTHOG_HOST")
        .is_err()
        .then(|| fasthog_receiver::Receiver::start(Default::default()).expect("a local receiver"));
    let host = match &local {
        Some(receiver) => format!("http://{}", receiver.addr()),
        None => std::env::var("POSTHOG_HOST").unwrap_or_default(),
    };
    let key: &'static str = match std::env::var("POSTHOG_API_KEY") {
        Ok(key) => key.leak(),
        Err(_) if local.is_some() => "phc_fasthog_embassy_demo",
        Err(_) => {
            eprintln!("POSTHOG_HOST is set: set POSTHOG_API_KEY too");
            return ExitCode::FAILURE;
        }
    };
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;

    // From here on, as on a board (the wall time from an RTC, GNSS or NTP).
    let clock = EmbassyClock::anchored_now(wall);
    let transport = match ReqwlessTransport::new(Stack::default(), Stack::default(), &host, clock) {
        Ok(transport) => transport,
        Err(e) => {
            eprintln!("POSTHOG_HOST {host:?}: {e:?} (this example speaks plain http://)");
            return ExitCode::FAILURE;
        }
    };
    let limits = Limits { max_events: BATCH_EVENTS, max_batch_bytes: BATCH_BYTES, ..Limits::DEFAULT };
    let envelope = Envelope { api_key: key, historical_migration: false };
    let encoder =
        Encoder::new(Enrichment { environment: "embedded", ..Enrichment::DEFAULT }, wall ^ 0x9e37_79b9);
    let consumer = fasthog::ring::try_consumer(&QUEUE).expect("one consumer");
    // gzip: none (see the docs above). Two requests in flight: two sockets' worth.
    let config = FlushConfig { flush_interval_ms: 200, requests_in_flight: 2, ..FlushConfig::DEFAULT };
    let flusher = Flusher::new(
        consumer,
        transport,
        EmbassyTimer,
        clock,
        encoder,
        envelope,
        config,
        batches(limits, envelope),
    );

    EXECUTOR.init(Executor::new()).run_until(
        |spawner| {
            spawner.spawn(flush(flusher).expect("spawn flusher"));
            spawner.spawn(sensor("thermo-1", clock).expect("spawn sensor"));
            spawner.spawn(sensor("thermo-2", clock).expect("spawn sensor"));
            spawner.spawn(stop_after(1000).expect("spawn stopper"));
        },
        || QUEUE.control().is_finished(),
    );

    let stats = QUEUE.stats();
    println!("{stats:#?}");
    let accounted = stats.outcomes() == stats.captured && stats.pending == 0;
    // `sent` counts what the server accepted; the local receiver can also say what it stored.
    let stored = local.as_ref().map_or(stats.sent, |receiver| receiver.stats().events_accepted);
    println!("shipped to {host}: sent {} of {} captured; stored {stored}", stats.sent, stats.captured);
    if stats.captured == u64::from(2 * READINGS)
        && accounted
        && stats.sent == stats.captured
        && stored == stats.sent
    {
        ExitCode::SUCCESS
    } else {
        eprintln!("FAIL: not every captured event was sent (and stored)");
        ExitCode::FAILURE
    }
}
