//! The `std` client: per-thread lanes behind a `Clone + Send + Sync` handle, the flusher on a
//! named background thread driven by smol, the ureq transport, env configuration.

// A `std`-only module: the crate-wide `no_std` hygiene lints (prefer `core`/`alloc` paths)
// do not apply here.
#![allow(clippy::std_instead_of_alloc, clippy::std_instead_of_core)]

#[cfg(feature = "ureq")]
mod http;
mod runtime;

use core::cell::RefCell;
use core::time::Duration;
use std::string::String;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use std::vec::Vec;

#[cfg(feature = "ureq")]
pub use http::HttpTransport;
pub use runtime::{ClientClock, CoarseClock, SmolTimer, SystemClock, TscClock};

use crate::batch::{Batch, Encoder, Enrichment, Envelope, Limits};
use crate::error::{validate_api_key, validate_host, Error};
use crate::flusher::{FlushConfig, Flusher, RetryPolicy};
use crate::ring::{try_consumer, LaneProducer};
use crate::sync::Ordering;
use crate::transport::Transport;
use crate::{Captured, Event, HeapQueue, Props, Snapshot};

/// PostHog US cloud, the default host.
pub const DEFAULT_HOST: &str = "https://us.i.posthog.com";

/// Settings for a [`Client`]. Each setter's doc gives its default.
#[derive(Debug, Clone)]
pub struct Builder {
    api_key: Option<Redacted>,
    host: String,
    environment: Option<String>,
    lanes: usize,
    lane_capacity: usize,
    limits: Limits,
    flush: FlushConfig,
    #[cfg_attr(not(feature = "ureq"), allow(dead_code))]
    http_timeout: Duration,
    #[cfg_attr(not(feature = "ureq"), allow(dead_code))]
    connect_timeout: Duration,
    gzip: Option<u32>,
    pending_batches: usize,
    shutdown_timeout: Duration,
    historical_migration: bool,
    geoip_disable: bool,
    event_schema_version: u32,
    super_properties: Vec<(String, OwnedValue)>,
    precise_timestamps: bool,
}

/// A super property's value, owned by the client.
#[derive(Debug, Clone, PartialEq)]
enum OwnedValue {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
}

impl OwnedValue {
    fn from_value(v: crate::Value<'_>) -> Self {
        use crate::Value;
        match v {
            Value::Null => OwnedValue::Null,
            Value::Bool(b) => OwnedValue::Bool(b),
            Value::Int(i) => OwnedValue::Int(i),
            Value::UInt(u) => OwnedValue::UInt(u),
            Value::Float(f) => OwnedValue::Float(f),
            Value::Str(s) | Value::Static(s) => OwnedValue::Str(s.into()),
        }
    }

    fn as_value(&self) -> crate::Value<'_> {
        use crate::Value;
        match self {
            OwnedValue::Null => Value::Null,
            OwnedValue::Bool(b) => Value::Bool(*b),
            OwnedValue::Int(i) => Value::Int(*i),
            OwnedValue::UInt(u) => Value::UInt(*u),
            OwnedValue::Float(f) => Value::Float(*f),
            OwnedValue::Str(s) => Value::Str(s),
        }
    }
}

impl Builder {
    fn new(api_key: Option<String>) -> Self {
        Builder {
            api_key: api_key.map(Redacted),
            host: DEFAULT_HOST.into(),
            environment: None,
            lanes: 16,
            lane_capacity: 1024,
            limits: Limits::DEFAULT,
            flush: FlushConfig::DEFAULT,
            http_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            gzip: Some(1),
            pending_batches: 64,
            shutdown_timeout: Duration::from_secs(5),
            historical_migration: false,
            geoip_disable: true,
            event_schema_version: crate::batch::EVENT_SCHEMA_VERSION,
            super_properties: Vec::new(),
            precise_timestamps: false,
        }
    }

    /// A builder from the process environment:
    /// - `POSTHOG_API_KEY`: the project API key; unset or empty gives a disabled client;
    /// - `POSTHOG_HOST`: the base URL (defaults to [`DEFAULT_HOST`]);
    /// - the environment name, from the first set of `POSTHOG_ENVIRONMENT`, `ENVIRONMENT`,
    ///   `APP_ENV` (defaults to `development`), as the Go client's `EnvironmentFromEnv`.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut b = Builder::new(var("POSTHOG_API_KEY"));
        if let Some(host) = var("POSTHOG_HOST") {
            b.host = host;
        }
        b.environment = Some(environment_from_env());
        b
    }

    /// The PostHog base URL; batches go to `{host}/batch/`. Defaults to [`DEFAULT_HOST`].
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// The `environment` property of every event. Defaults to the process environment (see
    /// [`Builder::from_env`]).
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Per-thread lanes; threads beyond this share one lock-free ring. Defaults to 16.
    pub fn lanes(mut self, lanes: usize) -> Self {
        self.lanes = lanes;
        self
    }

    /// Events each lane holds (rounded up to a power of two); a full lane drops and counts.
    /// Defaults to 1024 (the Go client's queue size). Each event record is about 1.1 KB.
    pub fn lane_capacity(mut self, events: usize) -> Self {
        self.lane_capacity = events;
        self
    }

    /// Events per request. Defaults to 64 (the Go client's batch size).
    pub fn batch_size(mut self, events: usize) -> Self {
        self.limits.max_events = events;
        self
    }

    /// Request body bytes before compression. Defaults to 1 MiB (PostHog accepts 20 MiB).
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_batch_bytes = bytes;
        self
    }

    /// Bytes of one encoded event; larger events are rejected and counted. Defaults to
    /// 900 KB (PostHog refuses events over 1 MB).
    pub fn max_event_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_event_bytes = bytes;
        self
    }

    /// How often a partial batch is sent. Defaults to 10 s (the Go client's interval).
    pub fn flush_interval(mut self, every: Duration) -> Self {
        self.flush.flush_interval_ms = every.as_millis() as u64;
        self
    }

    /// Longest pause of the flusher's lane polling when idle. Defaults to 5 ms.
    pub fn max_poll_interval(mut self, every: Duration) -> Self {
        self.flush.poll_max_us = every.as_micros() as u64;
        self
    }

    /// Whole-request HTTP timeout. Defaults to 5 s (the Go client's).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// TCP (and TLS) connect timeout. Defaults to 2 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// gzip level 1-9 for request bodies, or `None` for plain JSON. Defaults to 1 (fastest:
    /// analytics JSON compresses ~10x even so).
    pub fn gzip(mut self, level: Option<u32>) -> Self {
        self.gzip = level;
        self
    }

    /// Retry policy. Defaults to [`RetryPolicy::DEFAULT`] (4 attempts, 100 ms doubling to
    /// 30 s with jitter, `Retry-After` honoured up to 30 s).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.flush.retry = policy;
        self
    }

    /// Batches held while the server backs us off (each up to `batch_size` events); past
    /// that, drained events are dropped and counted. Defaults to 64.
    pub fn pending_batches(mut self, batches: usize) -> Self {
        self.pending_batches = batches;
        self
    }

    /// The deadline `Drop` gives the final shutdown. Defaults to 5 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Send `historical_migration: true`, routing events to PostHog's historical ingestion
    /// (for imports). Defaults to false.
    pub fn historical_migration(mut self, on: bool) -> Self {
        self.historical_migration = on;
        self
    }

    /// Add `$geoip_disable: true` to events that do not set it: the server's IP is not the
    /// user's. Defaults to true.
    pub fn geoip_disable(mut self, on: bool) -> Self {
        self.geoip_disable = on;
        self
    }

    /// The `event_schema_version` property. Defaults to
    /// [`crate::batch::EVENT_SCHEMA_VERSION`].
    pub fn event_schema_version(mut self, version: u32) -> Self {
        self.event_schema_version = version;
        self
    }

    /// Stamp each event with the TSC at capture (nanosecond resolution, one TSC read per
    /// capture: 22.9 ns on the VM of the README's benchmarks) instead of a wall clock the flusher thread
    /// refreshes every millisecond (one relaxed load per capture). Defaults to false.
    pub fn precise_timestamps(mut self, on: bool) -> Self {
        self.precise_timestamps = on;
        self
    }

    /// A super property: sent with every event, added by the flusher when it encodes, so it
    /// costs capture nothing. An event's own property of the same name wins. None by default.
    ///
    /// ```
    /// let builder = fasthog::Client::builder("phc_example").super_property("service", "matcher").super_property("region", "eu-1");
    /// ```
    pub fn super_property<'a>(mut self, key: impl Into<String>, value: impl Into<crate::Value<'a>>) -> Self {
        let key = key.into();
        self.super_properties.retain(|(k, _)| *k != key);
        self.super_properties.push((key, OwnedValue::from_value(value.into())));
        self
    }

    /// An invalid host is echoed in the error, unless it holds the API key or looks like
    /// one (the key and host given the wrong way round): error texts never show a key.
    fn withhold_key(&self, err: Error) -> Error {
        match err {
            Error::InvalidHost { host } => {
                let key = self.api_key.as_deref().map(str::trim).filter(|k| !k.is_empty());
                let secret =
                    key.is_some_and(|k| host.contains(k)) || host.contains("phc_") || host.contains("phx_");
                let host = if secret { "(withheld: it looks like an API key)".into() } else { host };
                Error::InvalidHost { host }
            }
            other => other,
        }
    }

    fn check(&self) -> Result<(), Error> {
        let positive = |name, v: usize| {
            if v == 0 {
                Err(Error::InvalidSetting { name, expected: "at least 1" })
            } else {
                Ok(())
            }
        };
        positive("lanes", self.lanes)?;
        positive("lane_capacity", self.lane_capacity)?;
        positive("batch_size", self.limits.max_events)?;
        positive("max_event_bytes", self.limits.max_event_bytes)?;
        if self.pending_batches < 2 {
            return Err(Error::InvalidSetting { name: "pending_batches", expected: "at least 2" });
        }
        if self.limits.max_batch_bytes < 1024 {
            return Err(Error::InvalidSetting { name: "max_batch_bytes", expected: "at least 1024" });
        }
        if self.flush.retry.max_attempts == 0 {
            return Err(Error::InvalidSetting { name: "retry.max_attempts", expected: "at least 1" });
        }
        if self.gzip.is_some_and(|l| !(1..=9).contains(&l)) {
            return Err(Error::InvalidSetting { name: "gzip", expected: "a level from 1 to 9" });
        }
        validate_host(&self.host).map_err(|e| self.withhold_key(e))?;
        Ok(())
    }

    /// Builds the client: validates the settings, then starts the flusher thread with the
    /// HTTP transport. Without an API key this is [`Error::MissingApiKey`].
    #[cfg(feature = "ureq")]
    pub fn build(self) -> Result<Client, Error> {
        self.check()?;
        let transport = HttpTransport::new(&self.host, self.connect_timeout, self.http_timeout, self.gzip);
        self.build_with_transport(transport)
    }

    /// Builds the client over your own [`Transport`] (a test recorder, another HTTP client).
    pub fn build_with_transport<T: Transport + Send + 'static>(self, transport: T) -> Result<Client, Error> {
        self.check()?;
        let api_key = validate_api_key(self.api_key.as_deref().ok_or(Error::MissingApiKey)?)?.into();
        let queue = Arc::new(HeapQueue::with_capacity(self.lanes, self.lane_capacity));
        let clock = if self.precise_timestamps {
            ClientClock::Tsc(TscClock::new())
        } else {
            ClientClock::Coarse(Arc::new(CoarseClock::new()))
        };
        let flusher = spawn_flusher(&self, api_key, queue.clone(), clock.clone(), transport)?;
        Ok(Client::from_parts(queue, clock, Some(flusher), self.shutdown_timeout))
    }

    /// Builds the client, or a disabled one (accepts and counts events, sends nothing) when
    /// no API key was given.
    #[cfg(feature = "ureq")]
    pub fn build_or_disabled(self) -> Result<Client, Error> {
        if self.api_key.is_none() {
            log::info!("fasthog: no PostHog API key; events are counted and not sent");
            self.check()?;
            return Ok(Client::disabled());
        }
        self.build()
    }
}

/// The API key in a [`Builder`]: its `Debug` prints no key (the derived one did, so a
/// logged builder leaked it).
#[derive(Clone)]
struct Redacted(String);

impl core::ops::Deref for Redacted {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl core::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("\"(redacted)\"")
    }
}

/// The Go client's `EnvironmentFromEnv`: `POSTHOG_ENVIRONMENT`, `ENVIRONMENT` or `APP_ENV`,
/// else `development`.
pub fn environment_from_env() -> String {
    ["POSTHOG_ENVIRONMENT", "ENVIRONMENT", "APP_ENV"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "development".into())
}

fn spawn_flusher<T: Transport + Send + 'static>(
    b: &Builder,
    api_key: String,
    queue: Arc<HeapQueue>,
    clock: ClientClock,
    transport: T,
) -> Result<JoinHandle<()>, Error> {
    let environment = b.environment.clone().unwrap_or_else(environment_from_env);
    let (limits, flush, pending) = (b.limits, b.flush, b.pending_batches);
    let (historical, geoip, schema) = (b.historical_migration, b.geoip_disable, b.event_schema_version);
    let supers = b.super_properties.clone();
    let consumer = try_consumer(queue).expect("a new queue has no consumer yet");
    std::thread::Builder::new()
        .name("fasthog-flusher".into())
        .spawn(move || {
            let envelope = Envelope { api_key: &api_key, historical_migration: historical };
            let overhead = envelope.overhead();
            let batches: Vec<Batch<Vec<u8>, Vec<u32>>> = (0..pending)
                .map(|_| {
                    let bytes = std::vec![0u8; limits.max_batch_bytes];
                    Batch::new(bytes, std::vec![0u32; limits.max_events], limits, overhead)
                })
                .collect();
            let super_refs: Vec<(&str, crate::Value<'_>)> =
                supers.iter().map(|(k, v)| (k.as_str(), v.as_value())).collect();
            let enrichment = Enrichment {
                environment: &environment,
                event_schema_version: schema,
                geoip_disable: geoip,
                super_properties: &super_refs,
            };
            let encoder = Encoder::new(enrichment, random_seed());
            let flusher = Flusher::new(
                consumer,
                transport,
                SmolTimer::new(),
                clock.clone(),
                encoder,
                envelope,
                flush,
                batches,
            );
            smol::block_on(clock.refreshing(flusher.run()));
        })
        .map_err(Error::Spawn)
}

/// A per-process random seed for UUIDs: std's `RandomState` keys come from the OS.
fn random_seed() -> u64 {
    use core::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// A PostHog client. `Clone + Send + Sync`; clones share one queue and one flusher.
///
/// `capture` is wait-free on a thread's own lane, allocation-free and syscall-free (the
/// first capture on a thread claims a lane, which may allocate a thread-local destructor
/// slot once).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Arc<HeapQueue>,
    clock: ClientClock,
    /// Tells this client's lane claims apart in the thread-local cache.
    id: u64,
    /// Disabled, or shut down: captures are counted as dropped.
    closed: AtomicBool,
    flusher: Mutex<Option<JoinHandle<()>>>,
    shutdown_timeout: Duration,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

/// Lane claims of this thread, one per client it captured with (a few at most; the oldest is
/// released when a thread uses more clients than slots).
struct LaneCache {
    slots: [Option<(u64, LaneProducer<Arc<HeapQueue>>)>; 4],
    next_evict: usize,
}

std::thread_local! {
    static LANES: RefCell<LaneCache> = const {
        RefCell::new(LaneCache { slots: [None, None, None, None], next_evict: 0 })
    };
}

impl Client {
    /// A builder for a client sending with this project API key.
    pub fn builder(api_key: impl Into<String>) -> Builder {
        Builder::new(Some(api_key.into()))
    }

    /// A client configured from the environment (see [`Builder::from_env`]); disabled when
    /// `POSTHOG_API_KEY` is unset.
    #[cfg(feature = "ureq")]
    pub fn from_env() -> Result<Client, Error> {
        Builder::from_env().build_or_disabled()
    }

    /// A client that accepts and counts events (as `dropped`, or `rejected` if invalid) and
    /// sends nothing.
    pub fn disabled() -> Client {
        let queue = Arc::new(HeapQueue::with_capacity(1, 2));
        let client = Client::from_parts(
            queue,
            ClientClock::Coarse(Arc::new(CoarseClock::new())),
            None,
            Duration::ZERO,
        );
        client.inner.closed.store(true, Ordering::Release);
        client
    }

    fn from_parts(
        queue: Arc<HeapQueue>,
        clock: ClientClock,
        flusher: Option<JoinHandle<()>>,
        shutdown_timeout: Duration,
    ) -> Client {
        Client {
            inner: Arc::new(Inner {
                queue,
                clock,
                id: NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed),
                closed: AtomicBool::new(false),
                flusher: Mutex::new(flusher),
                shutdown_timeout,
            }),
        }
    }

    /// Captures an event: into this thread's lane (wait-free), or into the shared ring when
    /// every lane is taken (lock-free). Never blocks, allocates or makes a syscall; a full
    /// lane drops and counts the event.
    #[inline]
    pub fn capture<P: Props>(&self, event: &Event<'_, P>) -> Captured {
        let inner = &*self.inner;
        LANES
            .try_with(|cache| match cache.try_borrow_mut() {
                Ok(mut cache) => cache.capture(inner, event),
                Err(_) => inner.capture_shared(event),
            })
            .unwrap_or_else(|_| inner.capture_shared(event))
    }

    /// Counters now. `captured == sent + failed + dropped + rejected + pending`.
    pub fn stats(&self) -> Snapshot {
        self.inner.queue.stats()
    }

    /// Waits until every event captured before this call is delivered or failed, or until
    /// `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let control = self.inner.queue.control();
        let ticket = control.request_flush();
        wait_until(timeout, || control.is_flushed(ticket)).then_some(()).ok_or(Error::FlushTimeout)
    }

    /// Stops accepting events (later captures count as dropped), delivers what it can within
    /// `deadline`, fails the rest, and stops the flusher. Returns the final counters, where
    /// `pending == 0`. Safe to call more than once, from any clone.
    pub fn shutdown(&self, deadline: Duration) -> Result<Snapshot, Error> {
        self.inner.shutdown(deadline)?;
        Ok(self.stats())
    }
}

impl Inner {
    #[cold]
    fn capture_shared<P: Props>(&self, event: &Event<'_, P>) -> Captured {
        if self.closed.load(Ordering::Relaxed) {
            // No lane to count in: the shared ring's counters stand in.
            let shared = crate::ring::HasLanes::lanes(&*self.queue).shared();
            shared.count(event.is_invalid());
            return if event.is_invalid() { Captured::Rejected } else { Captured::Dropped };
        }
        self.queue.capture_shared(event, &self.clock)
    }

    fn shutdown(&self, deadline: Duration) -> Result<(), Error> {
        self.closed.store(true, Ordering::Release);
        let Some(handle) = self.flusher.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(());
        };
        let control = self.queue.control();
        control.request_shutdown(deadline.as_millis() as u64);
        // The flusher stops by the deadline (it abandons a hung request then); allow a
        // second for the thread to notice.
        if wait_until(deadline + Duration::from_secs(1), || control.is_finished()) {
            let _ = handle.join();
            self.sweep_late_captures();
            Ok(())
        } else {
            log::error!("fasthog: flusher did not stop within its deadline");
            Err(Error::ShutdownTimeout)
        }
    }
}

impl Inner {
    /// A capture that read "open" just before shutdown closed the client can land in a lane
    /// after the flusher's last drain: count such events as failed, so none stays pending.
    fn sweep_late_captures(&self) {
        if let Some(mut consumer) = try_consumer(self.queue.clone()) {
            let late = consumer.drain_with(usize::MAX, |_| {});
            if late > 0 {
                crate::stats::Counters::add(&crate::QueueParts::counters(&*self.queue).failed, late);
                log::warn!("fasthog: {late} events captured during shutdown were not sent");
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.shutdown(self.shutdown_timeout);
    }
}

impl LaneCache {
    #[inline]
    fn capture<P: Props>(&mut self, inner: &Inner, event: &Event<'_, P>) -> Captured {
        let closed = inner.closed.load(Ordering::Relaxed);
        for (id, producer) in self.slots.iter_mut().flatten() {
            if *id == inner.id {
                return if closed { producer.discard(event) } else { producer.capture(event, &inner.clock) };
            }
        }
        self.claim(inner, event)
    }

    #[cold]
    fn claim<P: Props>(&mut self, inner: &Inner, event: &Event<'_, P>) -> Captured {
        let Some(mut producer) = HeapQueue::producer(inner.queue.clone()) else {
            return inner.capture_shared(event);
        };
        let outcome = if inner.closed.load(Ordering::Relaxed) {
            producer.discard(event)
        } else {
            producer.capture(event, &inner.clock)
        };
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.next_evict = (self.next_evict + 1) % self.slots.len();
                self.next_evict
            }
        };
        self.slots[slot] = Some((inner.id, producer));
        outcome
    }
}

/// Polls `done` every millisecond until it is true or `timeout` passes.
fn wait_until(timeout: Duration, done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() >= timeout {
            return done();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
