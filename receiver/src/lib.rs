#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod capture;
mod http;
mod server;
mod state;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use server::{lock, Shared};

/// How a [`Receiver`] is set up. Build it with struct update syntax over `Default`.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Where to listen. Defaults to `127.0.0.1:0` (a free port; see [`Receiver::addr`]).
    pub addr: SocketAddr,
    /// Largest request body as sent (compressed or not); larger is a 413. Defaults to 20 MiB,
    /// PostHog's limit. Can be changed while running with [`Receiver::set_body_limit`].
    pub max_body_bytes: usize,
    /// Largest event, measured as PostHog re-encodes it; larger is a 413. Defaults to
    /// 1,000,000 bytes.
    pub max_event_bytes: usize,
    /// Where accepted events go. Defaults to [`Store::Memory`].
    pub store: Store,
    /// A delay before handling every `/batch` request. Defaults to none.
    pub delay: Option<Duration>,
    /// If set, only this api key is accepted; any other (valid) key is a 401. Defaults to
    /// none: any key that passes PostHog's token rules is accepted.
    pub expected_api_key: Option<String>,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            max_body_bytes: 20 * 1024 * 1024,
            max_event_bytes: 1_000_000,
            store: Store::Memory,
            delay: None,
            expected_api_key: None,
        }
    }
}

/// Where accepted events go. Api keys are never stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Store {
    /// In memory, readable with [`Receiver::events`].
    #[default]
    Memory,
    /// Appended to this file, one event per line (the file is created if missing). Not kept
    /// in memory.
    Jsonl(PathBuf),
    /// Validate and count only (with the set of uuids): for high-throughput runs. Request
    /// records then carry no uuid strings.
    CountOnly,
}

/// A scripted answer to one `/batch` request. Faults are queued with
/// [`Receiver::push_faults`] and consumed one per request, before validation; with the queue
/// empty, requests are handled normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with `code` (and `Retry-After: retry_after` verbatim, if set); store nothing.
    /// A 2xx answers `{"status":"Ok"}`, like PostHog dropping events of a project over quota.
    Status {
        /// The HTTP status to answer.
        code: u16,
        /// The `Retry-After` header value, sent as is (seconds or an HTTP date).
        retry_after: Option<String>,
    },
    /// Like [`Fault::Status`], with this response body.
    StatusBody {
        /// The HTTP status to answer.
        code: u16,
        /// The `Retry-After` header value, sent as is.
        retry_after: Option<String>,
        /// The response body, sent as is with `Content-Type: application/json`.
        body: String,
    },
    /// Store the events (if the request is valid), then answer `code`: a partial write, as a
    /// 503 from PostHog can be.
    StoreThen(u16),
    /// Wait this long, then handle the request normally.
    Delay(Duration),
    /// Read the request and never answer; the connection stays open until the receiver shuts
    /// down.
    Hang,
    /// Read the request and close the connection without answering.
    Drop,
}

/// Counts since the receiver started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// Requests read, on any path.
    pub requests: u64,
    /// Requests by the status answered; `0` counts requests never answered ([`Fault::Hang`],
    /// [`Fault::Drop`]).
    pub by_status: BTreeMap<u16, u64>,
    /// Events stored (by accepted requests and [`Fault::StoreThen`]), duplicates included.
    pub events_accepted: u64,
    /// Distinct `uuid`s among the events stored: `events_accepted - unique_uuids` events were
    /// duplicates (retries), when every event carries a uuid.
    pub unique_uuids: u64,
    /// Requests whose body was gzip.
    pub gzip_requests: u64,
    /// Request body bytes, as sent.
    pub bytes_received: u64,
}

impl ReceiverStats {
    /// Requests answered with `status`.
    pub fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

impl fmt::Display for ReceiverStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "requests={} events={} unique_uuids={} gzip={} bytes={} status:",
            self.requests, self.events_accepted, self.unique_uuids, self.gzip_requests, self.bytes_received
        )?;
        for (status, n) in &self.by_status {
            write!(f, " {status}={n}")?;
        }
        Ok(())
    }
}

/// One request, as logged by the receiver. The api key is never recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// The status answered; `0` if none was ([`Fault::Hang`], [`Fault::Drop`]).
    pub status: u16,
    /// The request path, without the query.
    pub path: String,
    /// The body was gzip (by its magic bytes).
    pub gzip: bool,
    /// The `Content-Encoding` header.
    pub content_encoding: Option<String>,
    /// The query string, without `?`.
    pub query: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The body size as sent.
    pub body_len: usize,
    /// Events in the body (0 if it did not parse).
    pub event_count: usize,
    /// The envelope's `sent_at`.
    pub sent_at: Option<String>,
    /// The events' uuids (lowercase, hyphenated), in order; events without one are skipped.
    /// Empty with [`Store::CountOnly`].
    pub uuids: Vec<String>,
    /// The token passed PostHog's rules (and matched `expected_api_key`, if set).
    pub api_key_ok: bool,
    /// When the request head had been read.
    pub at: Instant,
}

/// A running receiver. Dropping it shuts it down: hung and idle connections are released and
/// every thread is joined.
pub struct Receiver {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Binds `cfg.addr` and starts serving. Fails if the address cannot be bound or the JSONL
    /// file cannot be opened.
    pub fn start(cfg: ReceiverConfig) -> std::io::Result<Receiver> {
        let listener = TcpListener::bind(cfg.addr)?;
        let addr = listener.local_addr()?;
        let state = state::State::open(&cfg.store)?;
        let shared = Arc::new(Shared::new(cfg, state));
        let accept = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("fasthog-receiver-accept".into())
                .spawn(move || server::accept_loop(shared, listener))?
        };
        Ok(Receiver { shared, addr, accept: Some(accept) })
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`; events go to `{url}/batch/`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address listened on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues faults for the next requests, one per request, in order.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.shared.faults).extend(faults);
    }

    /// Faults queued and not yet consumed.
    pub fn pending_faults(&self) -> usize {
        lock(&self.shared.faults).len()
    }

    /// Changes the body size limit (bytes as sent) for the next requests.
    pub fn set_body_limit(&self, bytes: usize) {
        self.shared.body_limit.store(bytes, Ordering::Relaxed);
    }

    /// Changes the limit on a gzip body's inflated size (over it is a 400) for the next
    /// requests. Defaults to 100 MiB, PostHog's limit.
    pub fn set_inflated_limit(&self, bytes: usize) {
        self.shared.inflated_limit.store(bytes, Ordering::Relaxed);
    }

    /// Changes the delay before handling every `/batch` request.
    pub fn set_delay(&self, delay: Option<Duration>) {
        *lock(&self.shared.delay) = delay;
    }

    /// The counts so far.
    pub fn stats(&self) -> ReceiverStats {
        lock(&self.shared.state).stats().clone()
    }

    /// The events stored so far, in arrival order, without api keys. Empty unless the store
    /// is [`Store::Memory`].
    pub fn events(&self) -> Vec<serde_json::Value> {
        lock(&self.shared.state).events().to_vec()
    }

    /// The log of requests so far, in the order they finished.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.state).records().to_vec()
    }

    /// Waits until at least `n` events have been stored (`events_accepted >= n`). Returns
    /// false on timeout.
    pub fn wait_for_events(&self, n: u64, timeout: Duration) -> bool {
        let state = lock(&self.shared.state);
        let (state, _) = self
            .shared
            .stored
            .wait_timeout_while(state, timeout, |s| s.stats().events_accepted < n)
            .unwrap_or_else(PoisonError::into_inner);
        state.stats().events_accepted >= n
    }

    /// Shuts down, as dropping does.
    pub fn shutdown(self) {}
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.begin_shutdown();
        server::wake_listener(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let _ = lock(&self.shared.state).flush();
    }
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").field("addr", &self.addr).finish()
    }
}
