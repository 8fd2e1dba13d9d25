//! The `std` client: per-thread lanes behind a `Clone + Send + Sync` handle, the flusher on a
//! named background thread (its own small executor: it parks with a timeout between passes), the
//! ureq transport, env configuration.

// A `std`-only module: the crate-wide `no_std` hygiene lints (prefer `core`/`alloc` paths)
// do not apply here.
#![allow(clippy::std_instead_of_alloc, clippy::std_instead_of_core)]

#[cfg(feature = "ureq")]
mod gzip;
#[cfg(feature = "ureq")]
mod http;
mod lifecycle;
#[cfg(feature = "ureq")]
mod resolve;
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
pub use gzip::GzipBody;
#[cfg(feature = "ureq")]
pub use http::HttpTransport;
use runtime::ParkTimer;
pub use runtime::{ClientClock, CoarseClock, SmolTimer, SystemClock, TscClock};

use crate::batch::{Batch, Encoder, Enrichment, Envelope, Limits};
use crate::error::{validate_api_key, validate_host, Error};
use crate::filter::{EventView, Filter, Verdict};
use crate::flusher::{FlushConfig, Flusher, Outcome, RetryPolicy};
use crate::ring::{try_consumer, LaneProducer};
use crate::sync::Ordering;
use crate::transport::Transport;
use crate::{Captured, Event, HeapQueue, Props, Rate, Sampler, Snapshot};
use lifecycle::Lifecycle;

/// Most events in one request by default (see [`Builder::max_batch_events`]).
const DEFAULT_MAX_BATCH_EVENTS: usize = 5_000;
/// Request body bytes before compression by default (see [`Builder::max_batch_bytes`]).
const DEFAULT_MAX_BATCH_BYTES: usize = 2 << 20;
/// Batches held by default (see [`Builder::pending_batches`]).
const DEFAULT_PENDING_BATCHES: usize = 16;
/// The default memory for waiting events: 8 MiB.
pub const DEFAULT_MEMORY: usize = 8 << 20;

/// The most memory `Builder::memory` accepts: it is allocated and zeroed when the client is
/// built.
pub const MAX_MEMORY: usize = 16 << 30;

/// PostHog US cloud, the default host.
pub const DEFAULT_HOST: &str = "https://us.i.posthog.com";

/// Settings for a [`Client`]. Each setter's doc gives its default.
#[derive(Debug, Clone)]
pub struct Builder {
    api_key: Option<Redacted>,
    host: String,
    environment: Option<String>,
    lanes: usize,
    memory: usize,
    max_event_bytes: usize,
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
    on_delivery: Option<DeliveryHook>,
    max_batch_events: Option<usize>,
    sample_all: f64,
    sample_rules: Vec<(String, f64)>,
    sample_by_distinct_id: bool,
    before_send: Option<BeforeSend>,
}

/// A user's [`Builder::before_send`] filter.
#[derive(Clone)]
struct BeforeSend(Arc<dyn Fn(&EventView<'_>) -> Verdict + Send + Sync>);

impl core::fmt::Debug for BeforeSend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("BeforeSend")
    }
}

/// A user's [`Builder::on_delivery`] hook.
#[derive(Clone)]
struct DeliveryHook(Arc<dyn Fn(&Outcome<'_>) + Send + Sync>);

impl core::fmt::Debug for DeliveryHook {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("DeliveryHook")
    }
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
            Value::Str(s) => OwnedValue::Str(s.into()),
            // Super properties are scalars: a nested value is sent as null.
            _ => OwnedValue::Null,
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
            memory: DEFAULT_MEMORY,
            max_event_bytes: crate::DEFAULT_MAX_EVENT_BYTES,
            limits: Limits { max_batch_bytes: DEFAULT_MAX_BATCH_BYTES, ..Limits::DEFAULT },
            flush: FlushConfig { send_at_events: 64, ..FlushConfig::DEFAULT },
            http_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            gzip: Some(1),
            pending_batches: DEFAULT_PENDING_BATCHES,
            shutdown_timeout: Duration::from_secs(5),
            historical_migration: false,
            geoip_disable: true,
            event_schema_version: crate::batch::EVENT_SCHEMA_VERSION,
            super_properties: Vec::new(),
            precise_timestamps: false,
            on_delivery: None,
            max_batch_events: None,
            sample_all: 1.0,
            sample_rules: Vec::new(),
            sample_by_distinct_id: false,
            before_send: None,
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

    /// Lanes that producer threads own (a thread claims one on its first capture and keeps
    /// it); threads beyond this borrow one of a quarter as many shared lanes per capture.
    /// Defaults to 16. From 1 to 4096.
    pub fn lanes(mut self, lanes: usize) -> Self {
        self.lanes = lanes;
        self
    }

    /// Bytes of memory for events waiting to be sent, shared by all lanes: when it is full,
    /// capture drops and counts. Taken up front. Defaults to 8 MiB (about 60,000 typical
    /// events of ~136 lane bytes; one busy thread can use nearly all of it). At least two
    /// blocks (twice `max_event_bytes`, rounded up to a power of two) per lane; at most
    /// 16 GiB.
    pub fn memory(mut self, bytes: usize) -> Self {
        self.memory = bytes;
        self
    }

    /// Events that trigger a send, from 1 to 10,000: a batch goes once it holds this many
    /// (or at the flush interval), within [`Builder::batch_linger`] of its first event (as the
    /// flusher first drains it: at most one poll pause, 1 ms while events flow, after its
    /// capture). While
    /// every request slot is busy the next batch keeps filling, up to
    /// [`Builder::max_batch_events`]. Defaults to 64 (the Go client's batch size).
    pub fn batch_size(mut self, events: usize) -> Self {
        self.flush.send_at_events = events;
        self
    }

    /// How long a batch that holds `batch_size` events may wait for more, counted from when
    /// the flusher drained its first event, from 0 to 1 s; it goes at once when it holds 1,024
    /// ([`LINGER_ENDS_AT`](crate::flusher::LINGER_ENDS_AT)). Events arriving slower than
    /// `batch_size` per linger are sent as the Go client sends them, one batch each time
    /// `batch_size` is reached; faster, they go in fewer, bigger requests (each request costs
    /// more client CPU than compressing its events: at 200k events/s, 5 ms cut the CPU per
    /// event by a quarter, README design notes). Defaults to 5 ms; 0 sends at `batch_size`
    /// at once.
    pub fn batch_linger(mut self, linger: Duration) -> Self {
        self.flush.linger_us = u64::try_from(linger.as_micros()).unwrap_or(u64::MAX);
        self
    }

    /// Most events in one request, from `batch_size` to 10,000 (and always within
    /// `max_batch_bytes`): under load, while every request slot is busy, the next one grows past
    /// `batch_size` up to this, so a slow server gets bigger bodies instead of more drops
    /// (posthog-node's `flushAt` and `maxBatchSize`).
    ///
    /// Defaults to 5,000 (or `batch_size`, if larger): with four requests in flight and a
    /// server that takes 200 ms per response, that is room for 100,000 events/s (1,000 gave
    /// 20,000, README design notes). The flusher takes an event from a lane
    /// only when a batch has room for its bytes, so a large value never drops a `Queued`
    /// event: what does not fit waits in its lane.
    pub fn max_batch_events(mut self, events: usize) -> Self {
        self.max_batch_events = Some(events);
        self
    }

    /// The batches' limits: their capacity is `max_batch_events`.
    fn batch_limits(&self) -> Limits {
        let max_events =
            self.max_batch_events.unwrap_or(self.flush.send_at_events.max(DEFAULT_MAX_BATCH_EVENTS));
        Limits { max_events, ..self.limits }
    }

    /// Request body bytes before compression, from 1 KiB to 20 MiB (PostHog's limit). Each
    /// of the `pending_batches` holds this much. Defaults to 2 MiB (5,000 typical events).
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_batch_bytes = bytes;
        self
    }

    /// Lane bytes one event may use: past it, capture cuts strings (on a UTF-8 boundary) and
    /// drops properties, and counts both (`truncated`, `props_dropped`). Defaults to 32 KiB
    /// (room for a 2 KiB user agent, a URL and a stack trace). From 64 bytes to 8 MiB.
    pub fn max_event_bytes(mut self, bytes: usize) -> Self {
        self.max_event_bytes = bytes;
        self
    }

    /// How often a partial batch is sent, from 1 ms to 24 h. Defaults to 10 s (the Go
    /// client's interval).
    pub fn flush_interval(mut self, every: Duration) -> Self {
        self.flush.flush_interval_ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Longest pause of the flusher's lane polling when idle, from 50 µs to 1 h (a flush or
    /// shutdown wakes it at once whatever this is; lanes must not fill in this time).
    /// Defaults to 5 ms.
    pub fn max_poll_interval(mut self, every: Duration) -> Self {
        self.flush.poll_max_us = u64::try_from(every.as_micros()).unwrap_or(u64::MAX);
        self
    }

    /// Whole-request HTTP timeout, from 1 ms to 1 h. Defaults to 5 s (the Go client's).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// TCP (and TLS) connect timeout, from 1 ms to 1 h. Defaults to 2 s.
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

    /// Retry policy: `max_attempts` from 1 to 100, each wait (`initial_backoff_ms`,
    /// `max_backoff_ms`, `max_retry_after_ms`) at most 1 h. Defaults to
    /// [`RetryPolicy::DEFAULT`] (4 attempts, 100 ms doubling to 30 s with jitter,
    /// `Retry-After` honoured up to 30 s).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.flush.retry = policy;
        self
    }

    /// Requests in flight at once, from 1 to [`MAX_IN_FLIGHT`](crate::flusher::MAX_IN_FLIGHT)
    /// (8): while one batch waits for its response (or backs off), the next ones are sent,
    /// each on its own connection and sender thread, each retried, backed off and
    /// split on a 413 on its own. With a server that takes 200 ms per response, one request in
    /// flight delivers one batch per 200 ms; four deliver four. They count among the
    /// `pending_batches`. Defaults to 4.
    pub fn requests_in_flight(mut self, requests: usize) -> Self {
        self.flush.requests_in_flight = requests;
        self
    }

    /// Batches held while the server backs us off (each up to `max_batch_events` events within
    /// `max_batch_bytes`), from 2 to 1024, and at most 1 GiB with `max_batch_bytes` each (they
    /// are allocated up front). Defaults to 16 (with 2 MiB each, 32 MiB at most; under load
    /// four are in flight and one fills).
    pub fn pending_batches(mut self, batches: usize) -> Self {
        self.pending_batches = batches;
        self
    }

    /// The deadline `Drop` gives the final shutdown: any duration (`Duration::MAX` waits as
    /// long as delivery takes). Defaults to 5 s.
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

    /// The pool's shape and the shared lane count these settings make.
    fn geometry(&self) -> Result<(crate::ring::Geometry, usize), Error> {
        if !(64..=8 << 20).contains(&self.max_event_bytes) {
            return Err(Error::InvalidSetting {
                name: "max_event_bytes",
                expected: "from 64 bytes to 8 MiB",
            });
        }
        if self.lanes > 4096 {
            return Err(Error::InvalidSetting { name: "lanes", expected: "from 1 to 4096" });
        }
        let max_entry = (self.max_event_bytes + 7) & !7;
        let block_bytes = (2 * max_entry).next_power_of_two().max(4096);
        let shared = self.lanes.div_ceil(4).max(1);
        let blocks = self.memory / block_bytes;
        if self.memory > MAX_MEMORY {
            return Err(Error::InvalidSetting { name: "memory", expected: "at most 16 GiB" });
        }
        if blocks < 2 * (self.lanes + shared) || blocks > u32::MAX as usize {
            return Err(Error::InvalidSetting {
                name: "memory",
                expected: "at least two blocks (2 x max_event_bytes, a power of two) per lane, shared lanes included",
            });
        }
        Ok((crate::ring::Geometry { block_bytes, blocks, max_entry }, shared))
    }

    /// Calls `hook` on the flusher's thread (never on the capture path) for every delivery
    /// [`Outcome`]: each batch, or part of a split batch, `Sent` or `Failed` (with the status
    /// and the server's reason, the API key withheld) and each `Retrying`, as the counters
    /// move. For alerts on loss and delivery metrics. Keep it quick: the flusher waits for it.
    /// A panic in it is caught and logged, and delivery goes on. None by default.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use fasthog::flusher::Outcome;
    ///
    /// let lost = Arc::new(AtomicU64::new(0));
    /// let counter = lost.clone();
    /// let builder = fasthog::Client::builder("phc_example").on_delivery(move |outcome| {
    ///     if let Outcome::Failed { events, .. } = outcome {
    ///         counter.fetch_add(*events as u64, Ordering::Relaxed);
    ///     }
    /// });
    /// ```
    pub fn on_delivery(mut self, hook: impl Fn(&Outcome<'_>) + Send + Sync + 'static) -> Self {
        self.on_delivery = Some(DeliveryHook(Arc::new(hook)));
        self
    }

    /// Keep only `rate` (in (0, 1]) of the events named `name`, whatever
    /// [`Builder::sample_all`] says: the rest are counted `sampled` and capture returns
    /// [`Captured::Sampled`]. Decided at capture, wait-free (a fixed table of up to
    /// [`MAX_SAMPLE_RULES`](crate::MAX_SAMPLE_RULES) names of up to 64 bytes; a second rule
    /// for a name replaces the first). A rate outside (0, 1], an empty or longer name, or too
    /// many names make `build()` return [`Error::InvalidSetting`] (`"sample"`). None by
    /// default.
    ///
    /// ```
    /// let builder = fasthog::Client::builder("phc_example")
    ///     .sample("page_scrolled", 0.1)   // 10% of these
    ///     .sample_all(0.5)                // half of every other event
    ///     .sample("$identify", 1.0)       // but every identify
    ///     .sample_by_distinct_id(true);   // the same users each time
    /// ```
    pub fn sample(mut self, name: impl Into<String>, rate: f64) -> Self {
        let name = name.into();
        self.sample_rules.retain(|(n, _)| *n != name);
        self.sample_rules.push((name, rate));
        self
    }

    /// Keep only `rate` (in (0, 1]) of the events that no [`Builder::sample`] rule names.
    /// Defaults to 1 (every event). Outside (0, 1]: `build()` returns
    /// [`Error::InvalidSetting`] (`"sample_all"`).
    pub fn sample_all(mut self, rate: f64) -> Self {
        self.sample_all = rate;
        self
    }

    /// Sample by a stable hash of the distinct_id ([`crate::distinct_id_hash`]: the same on
    /// every machine and run) instead of at random, so each user's events under a rate are
    /// kept or dropped together and their funnels stay whole. Defaults to false (each event
    /// drawn at random, from the capturing lane's own counter).
    pub fn sample_by_distinct_id(mut self, on: bool) -> Self {
        self.sample_by_distinct_id = on;
        self
    }

    /// The sampler these settings make, or the setting that is out of range.
    fn sampler(&self) -> Result<Sampler, Error> {
        let invalid = |name, e: crate::SampleError| Error::InvalidSetting { name, expected: e.expected() };
        let all = Rate::new(self.sample_all).map_err(|e| invalid("sample_all", e))?;
        let mut sampler = Sampler::new().all(all).by_distinct_id(self.sample_by_distinct_id);
        for (name, rate) in &self.sample_rules {
            let rate = Rate::new(*rate).map_err(|e| invalid("sample", e))?;
            sampler = sampler.event(name, rate).map_err(|e| invalid("sample", e))?;
        }
        Ok(sampler.seed(random_seed()))
    }

    /// Runs `filter` on the flusher's thread (never on the capture path) on every event just
    /// before it is encoded: [`Verdict::Keep`] sends it, [`Verdict::Drop`] drops it (counted
    /// `filtered`), [`Verdict::Remove`] sends it without the named top-level properties
    /// (each counted `redacted`), so PII keys never leave the process. It sees the event as
    /// captured ([`EventView`]: name, distinct_id, property lookup). No allocation per event.
    ///
    /// A panic in it is caught and logged once; that event is **dropped** (counted `filtered`
    /// and `filter_panics`), never sent unfiltered: a redaction filter that fails must not leak
    /// what it was to remove. Keep it quick and pure: the flusher waits for it, and may call it
    /// again for an event it could not yet take. None by default.
    ///
    /// ```
    /// use fasthog::filter::Verdict;
    /// let builder = fasthog::Client::builder("phc_example").before_send(|event| match event.name() {
    ///     "health_check" => Verdict::Drop,
    ///     _ => Verdict::Remove(&["email", "phone"]),
    /// });
    /// ```
    pub fn before_send(mut self, filter: impl Fn(&EventView<'_>) -> Verdict + Send + Sync + 'static) -> Self {
        self.before_send = Some(BeforeSend(Arc::new(filter)));
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

    /// Every setting against its documented range: a value outside one would panic the
    /// flusher thread (an allocation of `usize::MAX`, a time overflow) or stall it.
    fn check(&self) -> Result<(), Error> {
        fn within<T: PartialOrd>(
            name: &'static str,
            v: T,
            lo: T,
            hi: T,
            expected: &'static str,
        ) -> Result<(), Error> {
            if v < lo || v > hi {
                return Err(Error::InvalidSetting { name, expected });
            }
            Ok(())
        }
        const HOUR_MS: u64 = 3_600_000;
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let positive = |name, v: usize| within(name, v, 1, usize::MAX, "at least 1");
        positive("lanes", self.lanes)?;
        self.geometry()?;
        within("batch_size", self.flush.send_at_events, 1, 10_000, "from 1 to 10000")?;
        within("batch_linger", self.flush.linger_us, 0, 1_000_000, "from 0 to 1 s")?;
        let max_events = self.batch_limits().max_events;
        within(
            "max_batch_events",
            max_events,
            self.flush.send_at_events,
            10_000,
            "from batch_size to 10000",
        )?;
        within(
            "max_batch_bytes",
            self.limits.max_batch_bytes,
            1024,
            20 << 20,
            "from 1024 to 20971520 (20 MiB)",
        )?;
        within("pending_batches", self.pending_batches, 2, 1024, "from 2 to 1024")?;
        within(
            "requests_in_flight",
            self.flush.requests_in_flight,
            1,
            crate::flusher::MAX_IN_FLIGHT,
            "from 1 to 8",
        )?;
        within(
            "pending_batches",
            self.pending_batches.saturating_mul(self.limits.max_batch_bytes),
            0,
            1 << 30,
            "at most 1073741824 bytes (1 GiB) with max_batch_bytes each",
        )?;
        within("flush_interval", self.flush.flush_interval_ms, 1, 24 * HOUR_MS, "from 1 ms to 24 h")?;
        within("max_poll_interval", self.flush.poll_max_us, 50, HOUR_MS * 1000, "from 50 us to 1 h")?;
        within("http_timeout", ms(self.http_timeout), 1, HOUR_MS, "from 1 ms to 1 h")?;
        within("connect_timeout", ms(self.connect_timeout), 1, HOUR_MS, "from 1 ms to 1 h")?;
        let retry = self.flush.retry;
        within("retry.max_attempts", retry.max_attempts, 1, 100, "from 1 to 100")?;
        within("retry.initial_backoff_ms", retry.initial_backoff_ms, 0, HOUR_MS, "at most 3600000 (1 h)")?;
        within("retry.max_backoff_ms", retry.max_backoff_ms, 0, HOUR_MS, "at most 3600000 (1 h)")?;
        within("retry.max_retry_after_ms", retry.max_retry_after_ms, 0, HOUR_MS, "at most 3600000 (1 h)")?;
        if self.gzip.is_some_and(|l| !(1..=9).contains(&l)) {
            return Err(Error::InvalidSetting { name: "gzip", expected: "a level from 1 to 9" });
        }
        self.sampler()?;
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
        let (geometry, shared) = self.geometry()?;
        crate::ring::register_heavy_fence();
        let queue = HeapQueue::with_geometry(geometry, self.lanes, shared).map_err(|_| {
            Error::InvalidSetting { name: "memory", expected: "an amount this process can allocate" }
        })?;
        let queue = Arc::new(queue);
        let clock = if self.precise_timestamps {
            ClientClock::Tsc(TscClock::new())
        } else {
            ClientClock::Coarse(Arc::new(CoarseClock::new()))
        };
        let (life, timer) = (Lifecycle::new(), ParkTimer::new());
        let sampler = self.sampler()?;
        let flusher = spawn_flusher(&self, api_key, queue.clone(), clock.clone(), transport, &life, timer)?;
        Ok(Client::from_parts(queue, clock, sampler, Some(flusher), self.shutdown_timeout, life, timer))
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
    life: &Arc<Lifecycle>,
    timer: ParkTimer,
) -> Result<JoinHandle<()>, Error> {
    let life = life.clone();
    let environment = b.environment.clone().unwrap_or_else(environment_from_env);
    let (limits, flush, pending) = (b.batch_limits(), b.flush, b.pending_batches);
    let (historical, geoip, schema) = (b.historical_migration, b.geoip_disable, b.event_schema_version);
    let supers = b.super_properties.clone();
    let hook = b.on_delivery.clone();
    let before_send = b.before_send.clone();
    let consumer = try_consumer(queue.clone()).expect("a new queue has no consumer yet");
    let max_entry = crate::ring::HasLanes::lanes(&*queue).max_entry();
    std::thread::Builder::new()
        .name("fasthog-flusher".into())
        .spawn(move || {
            // Dropped last, after the flusher (and its lane consumer), even by a panic.
            let _exit = life.exit_guard();
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
            // The user's hook, its panics caught: a bug in it must not stop delivery.
            let hook_panicked = AtomicBool::new(false);
            let guarded = |outcome: &Outcome<'_>| {
                if let Some(DeliveryHook(hook)) = &hook {
                    let call = std::panic::AssertUnwindSafe(|| hook(outcome));
                    if std::panic::catch_unwind(call).is_err() && !hook_panicked.swap(true, Ordering::Relaxed)
                    {
                        log::error!("fasthog: the on_delivery hook panicked (logged once); delivery goes on");
                    }
                }
            };
            let flusher =
                Flusher::new(consumer, transport, timer, clock.clone(), encoder, envelope, flush, batches);
            let flusher = if hook.is_some() { flusher.on_delivery(&guarded) } else { flusher };
            // The user's filter, its panics caught and the event dropped: an unfiltered event
            // could carry what the filter was to remove.
            let filter_panicked = AtomicBool::new(false);
            let counters = crate::QueueParts::counters(&*queue);
            let filter = |event: &EventView<'_>| match &before_send {
                Some(BeforeSend(f)) => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(event))) {
                    Ok(verdict) => verdict,
                    Err(_) => {
                        crate::stats::Counters::add(&counters.filter_panics, 1);
                        if !filter_panicked.swap(true, Ordering::Relaxed) {
                            log::error!("fasthog: the before_send filter panicked (logged once); such events are dropped");
                        }
                        Verdict::Drop
                    }
                },
                None => Verdict::Keep,
            };
            let mut scratch = std::vec![0u8; if before_send.is_some() { max_entry } else { 0 }];
            let flusher = match before_send {
                Some(_) => flusher.before_send(Filter::new(&filter, &mut scratch)),
                None => flusher,
            };
            let control = queue.control();
            let run = futures_lite::future::or(flusher.run(), life.relay(control));
            runtime::block_on(clock.refreshing(run));
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
    /// Which events capture keeps ([`Sampler::OFF`]: all).
    sampler: Sampler,
    /// Tells this client's lane claims apart in the thread-local cache.
    id: u64,
    /// Taken (and joined) by the shutdown that finds the flusher thread ended first.
    flusher: Mutex<Option<JoinHandle<()>>>,
    shutdown_timeout: Duration,
    life: Arc<Lifecycle>,
    /// The flusher's timer (a copy: the same start), so a shutdown's grace counts from the call.
    timer: ParkTimer,
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
        let queue = Arc::new(HeapQueue::with_blocks(1, 2, 4096));
        let client = Client::from_parts(
            queue,
            ClientClock::Coarse(Arc::new(CoarseClock::new())),
            Sampler::OFF,
            None,
            Duration::ZERO,
            Lifecycle::none(),
            ParkTimer::new(),
        );
        // Disabled: the gate is closed from the start (no capture can be busy yet).
        client.inner.queue.gate().close(crate::ring::HasLanes::lanes(&*client.inner.queue), || true);
        client
    }

    fn from_parts(
        queue: Arc<HeapQueue>,
        clock: ClientClock,
        sampler: Sampler,
        flusher: Option<JoinHandle<()>>,
        shutdown_timeout: Duration,
        life: Arc<Lifecycle>,
        timer: ParkTimer,
    ) -> Client {
        Client {
            inner: Arc::new(Inner {
                queue,
                clock,
                sampler,
                id: NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed),
                flusher: Mutex::new(flusher),
                shutdown_timeout,
                life,
                timer,
            }),
        }
    }

    /// Captures an event: into this thread's lane (wait-free), or into the shared ring when
    /// every lane is taken (lock-free). Never blocks, allocates or makes a syscall; a full
    /// lane drops and counts the event, and the builder's sampling rates may leave it out
    /// ([`Captured::Sampled`], counted).
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

    /// Counters now. `captured == sent + failed + dropped + rejected + sampled + filtered +
    /// pending` ([`Snapshot::outcomes`] sums the outcomes).
    pub fn stats(&self) -> Snapshot {
        self.inner.queue.stats()
    }

    /// Waits until every event captured before this call is delivered or failed, or until
    /// `timeout` (any duration: `Duration::MAX` waits as long as it takes). Wakes the flusher
    /// at once, and waits on a notification, not a polling loop. Blocks the calling thread:
    /// in an async task, use [`Client::flush_async`] (and see there what `Drop` does in one).
    ///
    /// [`Error::FlushTimeout`] when the time ran out; [`Error::FlusherPanicked`] when the
    /// flusher thread has died (its events are counted `failed` at shutdown).
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let until = Instant::now().checked_add(timeout);
        let Some(ticket) = self.inner.request_flush() else { return Ok(()) };
        let (control, life) = (self.inner.queue.control(), &*self.inner.life);
        let done = life.wait(until, || control.is_flushed(ticket) || life.exited());
        self.inner.flush_result(done)
    }

    /// Stops accepting events (later captures count as dropped), delivers what it can within
    /// `deadline`, fails the rest, and stops the flusher. Returns the final counters, where
    /// `pending == 0`. Safe to call more than once, from any clone and any thread at once:
    /// every call returns when the flusher has stopped and every event is counted, or with
    /// [`Error::ShutdownTimeout`] when its own `deadline` (plus a second for the thread to
    /// end) has passed first. Any duration: `Duration::MAX` waits as long as it takes. Blocks
    /// the calling thread: in an async task, use [`Client::shutdown_async`].
    pub fn shutdown(&self, deadline: Duration) -> Result<Snapshot, Error> {
        self.inner.shutdown(deadline)?;
        Ok(self.stats())
    }
}

/// Async flush and shutdown. Their futures park no thread: a tokio or smol task can await
/// them on the runtime's own threads (they wait on the same notification as the blocking
/// versions; the time limit is an `async-io` timer, which works under any runtime).
///
/// **`Drop` inside an async runtime.** Dropping the last clone of a client that was not shut
/// down runs a *blocking* shutdown with the builder's `shutdown_timeout` (5 s by default), on
/// whatever thread drops it: inside a task, that blocks a runtime thread for up to that long
/// plus a second while the flusher delivers what is left. To avoid it, `await`
/// [`Client::shutdown_async`] before the last clone goes: `Drop` then finds the flusher
/// stopped and returns at once. Otherwise drop the client where blocking is fine (tokio's
/// `spawn_blocking`, smol's `unblock`), or build it with a short `shutdown_timeout`, which
/// counts what it could not deliver as `failed`.
///
/// ```no_run
/// # async fn run() -> Result<(), fasthog::Error> {
/// let client = fasthog::Client::builder("phc_...").build()?;
/// client.capture(&fasthog::Event::new("job_done", "worker-1"));
/// client.flush_async(std::time::Duration::from_secs(5)).await?;
/// let stats = client.shutdown_async(std::time::Duration::from_secs(5)).await?;
/// assert_eq!(stats.pending, 0);
/// # Ok(()) }
/// ```
impl Client {
    /// [`Client::flush`] as a future that does not block the executor's thread.
    pub async fn flush_async(&self, timeout: Duration) -> Result<(), Error> {
        let until = Instant::now().checked_add(timeout);
        let Some(ticket) = self.inner.request_flush() else { return Ok(()) };
        let (control, life) = (self.inner.queue.control(), &*self.inner.life);
        let done = life.wait_async(until, || control.is_flushed(ticket) || life.exited()).await;
        self.inner.flush_result(done)
    }

    /// [`Client::shutdown`] as a future that does not block the executor's thread while the
    /// flusher delivers. (At the end it joins the flusher thread, which has ended by then, and
    /// counts what it left: microseconds.)
    pub async fn shutdown_async(&self, deadline: Duration) -> Result<Snapshot, Error> {
        let until = self.inner.begin_shutdown(deadline);
        let life = &*self.inner.life;
        if !life.wait_async(until, || life.exited()).await {
            return Err(self.inner.shutdown_timed_out());
        }
        self.inner.end_shutdown();
        Ok(self.stats())
    }
}

impl Inner {
    /// Asks for a flush (waking the flusher); `None` when closed (nothing to wait for).
    fn request_flush(&self) -> Option<usize> {
        if self.queue.gate().is_closed() {
            return None;
        }
        Some(self.queue.control().request_flush())
    }

    fn flush_result(&self, done: bool) -> Result<(), Error> {
        if self.life.panicked() {
            Err(Error::FlusherPanicked)
        } else if done {
            Ok(())
        } else {
            Err(Error::FlushTimeout)
        }
    }

    /// Closes the client and asks the flusher to stop, the grace counted from now; returns
    /// when the waiting must end (`None`: no limit).
    fn begin_shutdown(&self, deadline: Duration) -> Option<Instant> {
        // The flusher stops by the deadline (it abandons a hung request then); allow a
        // second for the thread to end.
        let until = Instant::now().checked_add(deadline.saturating_add(Duration::from_secs(1)));
        // Close capture first, and wait for captures already writing: after this every event
        // is in a lane the flusher's final drain will read, or was counted as dropped. (A
        // capture is a bounded number of steps: this waits only on a preempted one.)
        let lanes = crate::ring::HasLanes::lanes(&*self.queue);
        self.queue.gate().close(lanes, || {
            std::thread::yield_now();
            until.is_none_or(|u| Instant::now() < u)
        });
        if !self.life.exited() {
            let grace_ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX);
            let now_ms = crate::flusher::Timer::now_us(&self.timer) / 1000;
            self.queue.control().request_shutdown_at(grace_ms, Some(now_ms));
        }
        until
    }

    fn shutdown(&self, deadline: Duration) -> Result<(), Error> {
        let until = self.begin_shutdown(deadline);
        let life = &*self.life;
        if !life.wait(until, || life.exited()) {
            return Err(self.shutdown_timed_out());
        }
        self.end_shutdown();
        Ok(())
    }

    fn shutdown_timed_out(&self) -> Error {
        log::error!("fasthog: flusher did not stop within its deadline");
        Error::ShutdownTimeout
    }

    /// Once the flusher thread has ended: joins it and counts what it left. The first caller
    /// does it; concurrent callers wait on the lock until it is done, so none returns early.
    fn end_shutdown(&self) {
        let mut handle = self.flusher.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = handle.take() {
            let _ = handle.join(); // the thread has ended: this does not wait
            self.sweep_late_captures();
            if self.life.panicked() {
                self.fail_what_a_dead_flusher_held();
            }
        }
    }

    /// A flusher that panicked left events in its batches, neither sent nor failed.
    fn fail_what_a_dead_flusher_held(&self) {
        let held = self.queue.stats().pending as usize;
        if held > 0 {
            crate::stats::Counters::add(&crate::QueueParts::counters(&*self.queue).failed, held);
            log::warn!("fasthog: {held} events held by the flusher when it panicked were not sent");
        }
    }
}

impl Inner {
    #[cold]
    fn capture_shared<P: Props>(&self, event: &Event<'_, P>) -> Captured {
        self.queue.capture_shared_sampled(event, &self.clock, &self.sampler)
    }
}

impl Inner {
    /// A capture still writing when the gate's wait gave up (the deadline passed first) can
    /// land after the flusher's last drain: count such events as failed, so none stays
    /// pending.
    fn sweep_late_captures(&self) {
        if let Some(mut consumer) = try_consumer(self.queue.clone()) {
            let late = consumer.drain(|_| true).events;
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
        for (id, producer) in self.slots.iter_mut().flatten() {
            if *id == inner.id {
                return gated_capture(producer, inner, event);
            }
        }
        self.claim(inner, event)
    }

    #[cold]
    fn claim<P: Props>(&mut self, inner: &Inner, event: &Event<'_, P>) -> Captured {
        // Lanes of clients that were shut down (or dropped) hold their memory alive: let go
        // of them here, on the cold path, rather than keep them until this thread exits.
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|(_, p)| p.owner().gate().is_closed()) {
                *slot = None;
            }
        }
        let Some(mut producer) = HeapQueue::producer(inner.queue.clone()) else {
            return inner.capture_shared(event);
        };
        let outcome = gated_capture(&mut producer, inner, event);
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

/// A capture that shutdown's gate can close: it lands before the final drain, or is counted
/// as dropped (see [`crate::ring::Gate`]).
#[inline(always)]
fn gated_capture<P: Props>(
    producer: &mut LaneProducer<Arc<HeapQueue>>,
    inner: &Inner,
    event: &Event<'_, P>,
) -> Captured {
    let open = producer.enter(inner.queue.gate());
    let outcome = if open {
        producer.capture_sampled(event, &inner.clock, &inner.sampler)
    } else {
        producer.discard(event)
    };
    producer.exit();
    outcome
}

/// Error tracking (see [`Event::exception`]).
impl Client {
    /// Captures an `$exception` event for `error` and its `source()` chain, as
    /// [`Client::capture`] does: wait-free, without allocating.
    ///
    /// To set the level, `handled`, a fingerprint, a backtrace or more properties, capture
    /// [`Event::exception`] yourself.
    #[inline]
    pub fn capture_exception<E: crate::AsError + ?Sized>(&self, error: &E, distinct_id: &str) -> Captured {
        self.capture(&Event::exception(error, distinct_id))
    }
}
