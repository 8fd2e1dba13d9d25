//! End-to-end throughput: events per second delivered to a local receiver, fasthog against
//! posthog-rs, with and without gzip; resident memory and CPU time of the client process.
//!
//! Each run is its own process (the bench binary re-executed with `--e2e ...`), so memory and
//! allocation counts belong to one client alone; the receiver is another process
//! (`--receiver`), so its work is not counted against either client.
//!
//! The producer (one thread) captures the typical event as fast as the client delivers it for a
//! fixed time, then shuts the client down (fasthog) or flushes it (posthog-rs). Neither client
//! pushes back on a producer that outruns its sender: posthog-rs drops at its queue bound, and
//! fasthog's flusher drains lanes into its batch buffers and drops (counted) when those are
//! full. So the producer holds both to the same bound: before every 256 captures it waits while
//! the client has [`MAX_IN_FLIGHT`] events not yet delivered (fasthog: `stats().pending`;
//! posthog-rs: `pending_events()`, its `test-harness` feature). A fasthog capture that finds
//! its lane full anyway is retried after a yield (and shows in fasthog's `dropped` counter, so
//! it is subtracted). Throughput is events the receiver stored over the time from the first
//! capture to the end of shutdown; `lost` must be 0.
//!
//! A burst run ([`E2eArgs::burst`]) instead captures a fixed number of typical events back to
//! back, unpaced, into a client with default settings (only the host given), and counts what
//! capture dropped because the client's memory was full; then it shuts the client down.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fasthog::{Captured, Client};
use fasthog_receiver::{Receiver, ReceiverConfig, Store};

use crate::peers::API_KEY;
use crate::workload::{fasthog_event, posthog_event_typical as posthog_event, user_id};

/// Events the producer lets either client hold at once (not yet delivered). Below both
/// clients' own bounds (posthog-rs: a 10 000-event queue; fasthog: 8 MiB of lanes, about
/// 60 000 typical events, plus its pending batches), so neither drops.
pub const MAX_IN_FLIGHT: u64 = 4096;
/// Events captured between checks of the bound.
const CHUNK: u64 = 256;
/// How long the producer sleeps when a client is at the bound (sleeping, not spinning, so
/// the process's CPU time is the client's work).
const WAIT: Duration = Duration::from_micros(20);

/// Which client an end-to-end run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// fasthog `Client`.
    Fasthog,
    /// posthog-rs 0.30 blocking client.
    PosthogRs,
}

/// What an end-to-end run is for (decides how the producer is held back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The throughput table: unpaced, held to [`MAX_IN_FLIGHT`] undelivered events.
    Table,
    /// Issue 10's sustained-throughput target: as `Table`, for a longer time, default
    /// settings (only gzip given).
    Sustained,
    /// Issue 10's CPU target: paced at [`E2eArgs::rate`], default settings, still held to
    /// [`MAX_IN_FLIGHT`] (so a client slower than the pace delivers what it can without loss:
    /// posthog-rs; fasthog never reaches the bound at 200k/s, its `full_waits` says so).
    Paced,
    /// Issue 10's slow-server target: paced at [`E2eArgs::rate`], default settings, not held
    /// back at all: what the client cannot keep is dropped and counted. posthog-rs is not
    /// flushed at the end (its queue would take minutes at 200 ms per 100 events): what it did
    /// not deliver during the run is lost.
    Slow,
}

impl Role {
    fn word(self) -> &'static str {
        match self {
            Role::Table => "table",
            Role::Sustained => "sustained",
            Role::Paced => "paced",
            Role::Slow => "slow",
        }
    }

    fn from_word(w: &str) -> Option<Role> {
        [Role::Table, Role::Sustained, Role::Paced, Role::Slow].into_iter().find(|r| r.word() == w)
    }

    /// Whether the producer waits while the client holds [`MAX_IN_FLIGHT`] events.
    fn bounded(self) -> bool {
        self != Role::Slow
    }
}

/// One end-to-end run's settings.
#[derive(Debug, Clone)]
pub struct E2eArgs {
    /// The client.
    pub which: Which,
    /// gzip level (fasthog: 1-9; posthog-rs: any `Some` means its fixed default level 6).
    pub gzip: Option<u32>,
    /// Receiver base URL.
    pub url: String,
    /// Capture for this long.
    pub secs: f64,
    /// Events per request, for both clients; 0: each client's default.
    pub batch: usize,
    /// What the run is for.
    pub role: Role,
    /// Events per second the producer is paced at (in chunks of 256); 0: unpaced.
    pub rate: u64,
    /// Count allocations (slower; a separate run).
    pub count_allocs: bool,
    /// `Some(n)`: capture `n` events back to back, unpaced, into a client with default
    /// settings, instead of capturing for `secs` under the in-flight bound.
    pub burst: Option<u64>,
}

impl E2eArgs {
    /// As command-line words after `--e2e`.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            match self.which {
                Which::Fasthog => "fasthog".into(),
                Which::PosthogRs => "posthog-rs".into(),
            },
            self.gzip.map_or("plain".into(), |l| format!("gzip{l}")),
            self.url.clone(),
            self.secs.to_string(),
            self.batch.to_string(),
            if self.count_allocs { "count".into() } else { "nocount".into() },
            self.burst.map_or("paced".into(), |n| format!("burst{n}")),
            self.role.word().into(),
            self.rate.to_string(),
        ]
    }

    /// From the words after `--e2e`.
    pub fn parse(args: &[String]) -> Option<E2eArgs> {
        let which = match args.first()?.as_str() {
            "fasthog" => Which::Fasthog,
            "posthog-rs" => Which::PosthogRs,
            _ => return None,
        };
        let gzip = match args.get(1)?.as_str() {
            "plain" => None,
            g => Some(g.strip_prefix("gzip")?.parse().ok()?),
        };
        Some(E2eArgs {
            which,
            gzip,
            url: args.get(2)?.clone(),
            secs: args.get(3)?.parse().ok()?,
            batch: args.get(4)?.parse().ok()?,
            count_allocs: args.get(5)? == "count",
            burst: match args.get(6)?.as_str() {
                "paced" => None,
                b => Some(b.strip_prefix("burst")?.parse().ok()?),
            },
            role: Role::from_word(args.get(7)?)?,
            rate: args.get(8)?.parse().ok()?,
        })
    }
}

/// A run's results, as `key=value` pairs on one line (`E2E ...`).
#[derive(Debug, Clone, Default)]
pub struct E2eResult {
    /// Events given to capture (accepted by the client).
    pub captured: u64,
    /// Events the client says it delivered (fasthog); posthog-rs: captured minus pending at
    /// the end (the receiver's count is the check).
    pub delivered: u64,
    /// Times the producer found the client holding [`MAX_IN_FLIGHT`] events (or, fasthog, its
    /// lane full) and waited.
    pub full_waits: u64,
    /// fasthog: captures refused because the lane was full (then retried).
    pub lane_full: u64,
    /// Events accepted by the client and not delivered (dropped or failed after capture).
    pub lost: u64,
    /// Burst runs: captures the client refused (fasthog: `Captured::Dropped`, its memory
    /// full; posthog-rs: events it never delivered, as it does not tell).
    pub dropped: u64,
    /// Seconds from first capture to end of shutdown.
    pub secs: f64,
    /// Seconds spent capturing.
    pub capture_secs: f64,
    /// VmRSS before the client was built, kB.
    pub rss_start_kb: u64,
    /// VmRSS after the client was built, kB.
    pub rss_built_kb: u64,
    /// Highest VmRSS sampled (every 20 ms) during the run, kB.
    pub rss_peak_kb: u64,
    /// Highest VmRSS sampled in the first half of the capture time, kB (timed runs).
    pub rss_half_kb: u64,
    /// VmRSS after shutdown and drop, kB.
    pub rss_end_kb: u64,
    /// Process CPU time (user + system) during the run, µs.
    pub cpu_us: u64,
    /// fasthog, timed runs without allocation counting: CPU µs of the flusher thread, the
    /// sender threads (`fasthog-sender`) and the producer thread, from build to the end of capture.
    pub cpu_threads_us: (u64, u64, u64),
    /// Allocations on the producer thread during capture.
    pub producer_allocs: u64,
    /// Allocations in the whole process from build to the end of shutdown.
    pub process_allocs: u64,
}

impl E2eResult {
    fn line(&self) -> String {
        format!(
            "E2E captured={} delivered={} full_waits={} lane_full={} lost={} dropped={} secs={:.4} capture_secs={:.4} rss_start_kb={} rss_built_kb={} rss_peak_kb={} rss_half_kb={} rss_end_kb={} cpu_us={} cpu_flusher_us={} cpu_senders_us={} cpu_producer_us={} producer_allocs={} process_allocs={}",
            self.captured,
            self.delivered,
            self.full_waits,
            self.lane_full,
            self.lost,
            self.dropped,
            self.secs,
            self.capture_secs,
            self.rss_start_kb,
            self.rss_built_kb,
            self.rss_peak_kb,
            self.rss_half_kb,
            self.rss_end_kb,
            self.cpu_us,
            self.cpu_threads_us.0,
            self.cpu_threads_us.1,
            self.cpu_threads_us.2,
            self.producer_allocs,
            self.process_allocs
        )
    }

    /// Parses [`E2eResult::line`] output.
    pub fn parse(line: &str) -> Option<E2eResult> {
        let rest = line.strip_prefix("E2E ")?;
        let mut r = E2eResult::default();
        for kv in rest.split_whitespace() {
            let (k, v) = kv.split_once('=')?;
            let u = || v.parse::<u64>().ok();
            match k {
                "captured" => r.captured = u()?,
                "delivered" => r.delivered = u()?,
                "full_waits" => r.full_waits = u()?,
                "lane_full" => r.lane_full = u()?,
                "lost" => r.lost = u()?,
                "dropped" => r.dropped = u()?,
                "secs" => r.secs = v.parse().ok()?,
                "capture_secs" => r.capture_secs = v.parse().ok()?,
                "rss_start_kb" => r.rss_start_kb = u()?,
                "rss_built_kb" => r.rss_built_kb = u()?,
                "rss_peak_kb" => r.rss_peak_kb = u()?,
                "rss_half_kb" => r.rss_half_kb = u()?,
                "rss_end_kb" => r.rss_end_kb = u()?,
                "cpu_us" => r.cpu_us = u()?,
                "cpu_flusher_us" => r.cpu_threads_us.0 = u()?,
                "cpu_senders_us" => r.cpu_threads_us.1 = u()?,
                "cpu_producer_us" => r.cpu_threads_us.2 = u()?,
                "producer_allocs" => r.producer_allocs = u()?,
                "process_allocs" => r.process_allocs = u()?,
                _ => {}
            }
        }
        Some(r)
    }
}

/// Samples VmRSS every 20 ms until dropped; keeps the highest, and the highest in the first
/// `half` of the run. (On its own thread: reading /proc allocates, and the producer thread's
/// allocations are counted.)
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    half_peak: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(half: Duration) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(crate::sys::rss_kb()));
        let half_peak = Arc::new(AtomicU64::new(0));
        let (s, p, h) = (stop.clone(), peak.clone(), half_peak.clone());
        let started = Instant::now();
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(crate::sys::rss_kb(), Ordering::Relaxed);
                if started.elapsed() <= half {
                    h.store(p.load(Ordering::Relaxed), Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssSampler { stop, peak, half_peak, handle: Some(handle) }
    }

    /// The highest sample in the first half of the run.
    fn half_peak(&self) -> u64 {
        self.half_peak.load(Ordering::Relaxed)
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.peak.load(Ordering::Relaxed).max(crate::sys::rss_kb())
    }
}

/// Runs one end-to-end measurement in this process and prints its `E2E` line.
pub fn child_main(args: &E2eArgs) {
    let r = run(args);
    println!("{}", r.line());
}

fn run(a: &E2eArgs) -> E2eResult {
    let mut r = E2eResult { rss_start_kb: crate::sys::rss_kb(), ..Default::default() };
    // The sampler starts just before the client is built: its half is about the capture's.
    let sampler = RssSampler::start(Duration::from_secs_f64(a.secs / 2.0));
    crate::alloc::set_counting(a.count_allocs);
    let process0 = crate::alloc::process_allocs();
    let user = user_id(0);
    let deadline = Duration::from_secs_f64(a.secs);
    let cpu0;
    let start;
    match a.which {
        Which::Fasthog if a.burst.is_some() => {
            // Default settings: only the host is given.
            let client = Client::builder(API_KEY).host(a.url.as_str()).build().expect("fasthog client");
            r.rss_built_kb = crate::sys::rss_kb();
            cpu0 = crate::sys::cpu_us();
            start = Instant::now();
            let a0 = crate::alloc::thread_allocs();
            let n = a.burst.unwrap_or(0);
            for i in 0..n {
                if client.capture(&fasthog_event(&user, i)) == Captured::Dropped {
                    r.dropped += 1;
                }
            }
            r.producer_allocs = crate::alloc::thread_allocs() - a0;
            r.capture_secs = start.elapsed().as_secs_f64();
            r.captured = n;
            let stats = client.shutdown(Duration::from_secs(60)).expect("fasthog shutdown");
            r.delivered = stats.sent;
            r.lost = (stats.dropped - r.dropped) + stats.failed + stats.rejected;
            drop(client);
        }
        Which::PosthogRs if a.burst.is_some() => {
            // Default settings (a 10 000-event queue): only the host is given.
            let mut b = posthog_rs::ClientOptionsBuilder::default();
            b.api_key(API_KEY.to_string()).host(a.url.clone());
            let client = posthog_rs::client(b.build().expect("posthog-rs options"));
            r.rss_built_kb = crate::sys::rss_kb();
            cpu0 = crate::sys::cpu_us();
            start = Instant::now();
            let a0 = crate::alloc::thread_allocs();
            let n = a.burst.unwrap_or(0);
            for i in 0..n {
                client.capture(posthog_event(&user, i));
            }
            r.producer_allocs = crate::alloc::thread_allocs() - a0;
            r.capture_secs = start.elapsed().as_secs_f64();
            r.captured = n;
            client.flush();
            client.shutdown();
            // posthog-rs does not tell what it dropped: the parent takes it from the
            // receiver's count.
            drop(client);
        }
        Which::Fasthog => {
            let mut b = Client::builder(API_KEY).host(a.url.as_str()).environment("bench").gzip(a.gzip);
            if a.batch > 0 {
                b = b.batch_size(a.batch);
            }
            let client = b.build().expect("fasthog client");
            r.rss_built_kb = crate::sys::rss_kb();
            cpu0 = crate::sys::cpu_us();
            start = Instant::now();
            let a0 = crate::alloc::thread_allocs();
            let mut i = 0u64;
            while start.elapsed() < deadline {
                pace(start, a.rate, i);
                while a.role.bounded() && client.stats().pending + CHUNK > MAX_IN_FLIGHT {
                    r.full_waits += 1;
                    std::thread::sleep(WAIT);
                }
                for _ in 0..CHUNK {
                    let ev = fasthog_event(&user, i);
                    if a.role.bounded() {
                        while client.capture(&ev) == Captured::Dropped {
                            r.full_waits += 1;
                            r.lane_full += 1;
                            std::thread::yield_now();
                        }
                    } else if client.capture(&ev) == Captured::Dropped {
                        r.dropped += 1;
                    }
                    i += 1;
                }
            }
            r.producer_allocs = crate::alloc::thread_allocs() - a0;
            r.capture_secs = start.elapsed().as_secs_f64();
            r.captured = i;
            if !a.count_allocs {
                // Where the CPU went (the threads are idle from here to shutdown).
                r.cpu_threads_us = crate::sys::thread_cpu_us();
            }
            let stats = client.shutdown(Duration::from_secs(60)).expect("fasthog shutdown");
            r.delivered = stats.sent;
            // Drops at capture are the producer's retries (counted in `lane_full`) or, unbounded,
            // the run's `dropped`; any other drop or failure is a lost event.
            r.lost = (stats.dropped - r.lane_full - r.dropped) + stats.failed + stats.rejected;
            drop(client);
        }
        Which::PosthogRs => {
            let max_queue = 10_000; // posthog-rs's default
            let mut b = posthog_rs::ClientOptionsBuilder::default();
            b.api_key(API_KEY.to_string()).host(a.url.clone()).max_queue_size(max_queue);
            if a.batch > 0 {
                b.max_batch_size(a.batch).flush_at(a.batch);
            }
            if a.gzip.is_some() {
                b.capture_compression(posthog_rs::CaptureCompression::Gzip);
            }
            let client = posthog_rs::client(b.build().expect("posthog-rs options"));
            r.rss_built_kb = crate::sys::rss_kb();
            cpu0 = crate::sys::cpu_us();
            start = Instant::now();
            let a0 = crate::alloc::thread_allocs();
            let mut i = 0u64;
            while start.elapsed() < deadline {
                pace(start, a.rate, i);
                while a.role.bounded() && client.pending_events() as u64 + CHUNK > MAX_IN_FLIGHT {
                    r.full_waits += 1;
                    std::thread::sleep(WAIT);
                }
                for _ in 0..CHUNK {
                    client.capture(posthog_event(&user, i));
                    i += 1;
                }
            }
            r.producer_allocs = crate::alloc::thread_allocs() - a0;
            r.capture_secs = start.elapsed().as_secs_f64();
            r.captured = i;
            if a.role == Role::Slow {
                // Not flushed (see `Role::Slow`): the parent counts what the receiver stored.
                // The child exits right after printing, dropping the queue.
                r.secs = start.elapsed().as_secs_f64();
                r.cpu_us = crate::sys::cpu_us() - cpu0;
                r.rss_half_kb = sampler.half_peak();
                r.rss_peak_kb = sampler.finish();
                r.rss_end_kb = crate::sys::rss_kb();
                r.lost = client.pending_events() as u64;
                println!("{}", r.line());
                let _ = std::io::stdout().flush();
                std::process::exit(0);
            }
            client.flush();
            let pending = client.pending_events() as u64;
            client.shutdown();
            r.delivered = i - pending;
            r.lost = pending;
            drop(client);
        }
    }
    r.secs = start.elapsed().as_secs_f64();
    r.cpu_us = crate::sys::cpu_us() - cpu0;
    r.process_allocs = crate::alloc::process_allocs() - process0;
    crate::alloc::set_counting(false);
    r.rss_half_kb = sampler.half_peak();
    r.rss_peak_kb = sampler.finish();
    r.rss_end_kb = crate::sys::rss_kb();
    r
}

/// Paced runs: sleeps until event `i` is due at `rate` events/s from `start` (0: unpaced).
/// Called once per chunk, so the producer sleeps between chunks instead of spinning.
fn pace(start: Instant, rate: u64, i: u64) {
    if rate == 0 {
        return;
    }
    let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

/// Runs one end-to-end measurement in a child process of this binary.
pub fn spawn_run(a: &E2eArgs) -> std::io::Result<E2eResult> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe).arg("--e2e").args(a.to_args()).stderr(Stdio::inherit()).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(E2eResult::parse).ok_or_else(|| {
        std::io::Error::other(format!("e2e child printed no result (status {}): {text}", out.status))
    })
}

/// Counts a receiver child reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverCounts {
    /// Events stored.
    pub events: u64,
    /// Requests read.
    pub requests: u64,
    /// Requests with a gzip body.
    pub gzip: u64,
    /// Body bytes as sent.
    pub bytes: u64,
    /// Requests answered with a status other than 200.
    pub not_ok: u64,
}

/// Runs a receiver in this process for a parent (`--receiver CPU|any DELAY_MS`): prints
/// `URL <url>`, answers each `stats` line on stdin with a `STATS ...` line, exits at end of
/// input. `DELAY_MS` > 0: every response takes that long (the receiver's `delay`).
pub fn receiver_child_main(cpu: Option<usize>, delay_ms: u64) {
    if let Some(cpu) = cpu {
        crate::sys::pin(&[cpu]);
    }
    let delay = (delay_ms > 0).then(|| Duration::from_millis(delay_ms));
    let receiver = Receiver::start(ReceiverConfig { store: Store::CountOnly, delay, ..Default::default() })
        .expect("start receiver");
    println!("URL {}", receiver.url());
    let _ = std::io::stdout().flush();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "stats" {
            let s = receiver.stats();
            let not_ok: u64 = s.by_status.iter().filter(|(k, _)| **k != 200).map(|(_, v)| v).sum();
            println!(
                "STATS events={} requests={} gzip={} bytes={} not_ok={}",
                s.events_accepted, s.requests, s.gzip_requests, s.bytes_received, not_ok
            );
            let _ = std::io::stdout().flush();
        }
    }
}

/// A receiver running as a child process.
pub struct ReceiverChild {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    url: String,
}

impl ReceiverChild {
    /// Starts `current_exe --receiver CPU|any DELAY_MS`.
    pub fn start(cpu: Option<usize>, delay_ms: u64) -> std::io::Result<ReceiverChild> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.arg("--receiver");
        cmd.arg(cpu.map_or("any".to_string(), |c| c.to_string()));
        cmd.arg(delay_ms.to_string());
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("URL ")
            .ok_or_else(|| std::io::Error::other(format!("receiver said {line:?}")))?
            .to_string();
        Ok(ReceiverChild { child, stdin, stdout, url })
    }

    /// The receiver's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its counts now.
    pub fn counts(&mut self) -> ReceiverCounts {
        let mut c = ReceiverCounts::default();
        let Some(stdin) = self.stdin.as_mut() else {
            return c;
        };
        if writeln!(stdin, "stats").and_then(|_| stdin.flush()).is_err() {
            return c;
        }
        let mut line = String::new();
        if self.stdout.read_line(&mut line).is_err() {
            return c;
        }
        for kv in line.trim().trim_start_matches("STATS ").split_whitespace() {
            if let Some((k, v)) = kv.split_once('=') {
                let v = v.parse().unwrap_or(0);
                match k {
                    "events" => c.events = v,
                    "requests" => c.requests = v,
                    "gzip" => c.gzip = v,
                    "bytes" => c.bytes = v,
                    "not_ok" => c.not_ok = v,
                    _ => {}
                }
            }
        }
        c
    }
}

impl Drop for ReceiverChild {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
