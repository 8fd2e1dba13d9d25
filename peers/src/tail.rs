//! The tail-latency harness: per-call latency of capture for fasthog and each peer, with a
//! concurrent consumer, timed with the TSC.
//!
//! How it measures:
//! - One persistent thread per producer, pinned to a CPU (producer `k` on CPU `k`); every other
//!   thread of the process (drain threads, fasthog's flusher, posthog-rs's worker) and the
//!   receiver process run on the last CPU. With one producer on a 2-CPU machine that puts the
//!   consumer on the other core; with two, the consumer shares CPU 1 with producer 1.
//! - Work comes in bursts: each producer captures `burst` events, each call timed on its own
//!   with two `quanta::Clock::raw()` reads (`rdtsc`), calls paced [`Config::pace`] apart (the
//!   producer spins until that long after the previous call started; a call that takes longer
//!   delays the next); then the harness waits until the consumer has taken (or the client
//!   delivered) everything, and moves to the next peer.
//!   Rounds rotate through all peers, so noise on the shared machine spreads over all of them.
//! - The cost of the two clock reads (median of 200 000 back-to-back pairs, measured on each
//!   producer thread) is subtracted from every sample.
//! - Queues hold `2 * burst` events per producer, so no capture is refused (checked and
//!   reported: `refused` must be 0).
//! - Every peer captures the same event shape ([`Config::shape`]); the ring and queue peers push
//!   a compact record of its values (see `crate::workload`).
//! - Two warm-up rounds (untimed) first: lane claims, thread-locals, page faults of every slot.
//! - A final round with the counting allocator on gives allocations per capture (producer
//!   thread only).

use std::hint::black_box;
use std::sync::atomic::{compiler_fence, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use crate::hist::Hist;
use crate::peers::{setup, Capture, Drainer, Kind, Params, Setup, Visit};
use crate::workload::{user_id, Props16, Shape, Typical};

/// What the timed region covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Building the event and capturing it: the cost of a call site.
    CallSite,
    /// Capturing an event built beforehand (the enqueue alone).
    Prebuilt,
}

impl Mode {
    /// For tables.
    pub fn label(self) -> &'static str {
        match self {
            Mode::CallSite => "build + capture (call site)",
            Mode::Prebuilt => "capture only (event prebuilt)",
        }
    }
}

/// A harness run's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Producer threads (1 or 2).
    pub producers: usize,
    /// What is timed.
    pub mode: Mode,
    /// Timed rounds (each: one burst per peer).
    pub rounds: usize,
    /// Captures per producer per burst.
    pub burst: usize,
    /// Peers to run.
    pub kinds: Vec<Kind>,
    /// Receiver base URL for the two real clients.
    pub receiver_url: Option<String>,
    /// Pin threads (see the module doc).
    pub pin: bool,
    /// Drain threads spin (`None`) or poll every so often (`Some`); see [`Params::poll`].
    pub poll: Option<Duration>,
    /// The event every peer captures.
    pub shape: Shape,
    /// Calls start this far apart (`ZERO`: back to back).
    pub pace: Duration,
}

impl Config {
    /// "busy consumers" or "consumers polling every 1 ms".
    pub fn consumer_label(&self) -> String {
        match self.poll {
            None => "peers' drain threads spin".into(),
            Some(d) => format!("peers' drain threads poll every {} µs", d.as_micros()),
        }
    }
}

/// One peer's numbers.
#[derive(Debug, Clone)]
pub struct PeerResult {
    /// Which peer.
    pub kind: Kind,
    /// Per-call latency, all producers merged, timer overhead subtracted.
    pub hist: Hist,
    /// Captures refused or dropped (must be 0 for a fair comparison).
    pub refused: u64,
    /// Allocations per capture on the producer thread (counting allocator).
    pub allocs_per_capture: Option<f64>,
}

/// A run's numbers.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Settings.
    pub config: Config,
    /// Per peer, in `config.kinds` order.
    pub peers: Vec<PeerResult>,
    /// Timer overhead subtracted, per producer thread (median ns of two back-to-back reads).
    pub overhead_ns: Vec<u64>,
    /// Minimum and 99th percentile of the same overhead samples, producer 0.
    pub overhead_spread: (u64, u64),
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// Timing arguments of one burst.
struct BurstArgs<'a> {
    clock: &'a quanta::Clock,
    overhead: u64,
    user: &'a str,
    start: u64,
    n: u64,
    mode: Mode,
    record: bool,
    pace_ns: u64,
}

/// A producer, type-erased at burst granularity (the timed loop inside is monomorphic).
trait ProducerDyn: Send {
    fn burst(&mut self, a: &BurstArgs<'_>, hist: &mut Hist) -> (u64, u64);
}

impl<P: Capture> ProducerDyn for P {
    fn burst(&mut self, a: &BurstArgs<'_>, hist: &mut Hist) -> (u64, u64) {
        let (mut queued, mut refused) = (0u64, 0u64);
        let clock = a.clock;
        let mut last = clock.raw();
        for k in 0..a.n {
            let i = a.start + k;
            if a.pace_ns > 0 {
                while clock.delta_as_nanos(last, clock.raw()) < a.pace_ns {
                    std::hint::spin_loop();
                }
            }
            let (t0, ok, t1) = match a.mode {
                Mode::CallSite => {
                    compiler_fence(Ordering::SeqCst);
                    let t0 = clock.raw();
                    compiler_fence(Ordering::SeqCst);
                    // `i` passes through t0, so the event cannot be built before the read.
                    let i = black_box((t0, i)).1;
                    let ev = self.build(a.user, i);
                    let ok = self.capture(ev);
                    black_box(ok);
                    compiler_fence(Ordering::SeqCst);
                    let t1 = clock.raw();
                    compiler_fence(Ordering::SeqCst);
                    (t0, ok, t1)
                }
                Mode::Prebuilt => {
                    let ev = black_box(self.build(a.user, i));
                    compiler_fence(Ordering::SeqCst);
                    let t0 = clock.raw();
                    compiler_fence(Ordering::SeqCst);
                    let ok = self.capture(ev);
                    black_box(ok);
                    compiler_fence(Ordering::SeqCst);
                    let t1 = clock.raw();
                    compiler_fence(Ordering::SeqCst);
                    (t0, ok, t1)
                }
            };
            last = t0;
            if a.record {
                hist.record(clock.delta_as_nanos(t0, t1).saturating_sub(a.overhead));
            }
            if ok {
                queued += 1;
            } else {
                refused += 1;
            }
        }
        (queued, refused)
    }
}

/// A set-up peer with erased producer type.
struct Erased {
    kind: Kind,
    producers: Vec<Box<dyn ProducerDyn>>,
    drainer: Drainer,
}

struct Collect<'a>(&'a mut Vec<Erased>);
impl Visit for Collect<'_> {
    fn visit<P: Capture + 'static>(&mut self, s: Setup<P>) {
        self.0.push(Erased {
            kind: s.kind,
            producers: s.producers.into_iter().map(|p| Box::new(p) as Box<dyn ProducerDyn>).collect(),
            drainer: s.drainer,
        });
    }
}

/// Median, minimum and 99th percentile of two back-to-back clock reads, in ns.
pub fn timer_overhead(clock: &quanta::Clock) -> (u64, u64, u64) {
    let mut v: Vec<u64> = (0..200_000)
        .map(|_| {
            compiler_fence(Ordering::SeqCst);
            let t0 = clock.raw();
            compiler_fence(Ordering::SeqCst);
            compiler_fence(Ordering::SeqCst);
            let t1 = clock.raw();
            compiler_fence(Ordering::SeqCst);
            clock.delta_as_nanos(t0, t1)
        })
        .collect();
    v.sort_unstable();
    (v[v.len() / 2], v[0], v[v.len() * 99 / 100])
}

/// Per-thread state handed back at the end.
struct ThreadOut {
    hists: Vec<Hist>,
    overhead: (u64, u64, u64),
    allocs: Vec<Option<f64>>,
}

/// Runs the harness.
pub fn run(cfg: &Config) -> RunResult {
    let started = Instant::now();
    let cpus = crate::sys::nproc().max(1);
    let n = cfg.producers.max(1);
    let last_cpu = cpus - 1;
    // Everything spawned from here on (drain threads, flushers, workers) runs on the last CPU.
    if cfg.pin {
        crate::sys::pin(&[last_cpu]);
    }
    let params = Params {
        producers: n,
        capacity: cfg.burst * 2,
        receiver_url: cfg.receiver_url.clone(),
        poll: cfg.poll,
    };
    let mut peers = Vec::new();
    for &kind in &cfg.kinds {
        match cfg.shape {
            Shape::Typical => setup::<Typical>(kind, &params, &mut Collect(&mut peers)),
            Shape::Props16 => setup::<Props16>(kind, &params, &mut Collect(&mut peers)),
        }
    }
    // Hand each producer thread its producer of every peer.
    let mut per_thread: Vec<Vec<Box<dyn ProducerDyn>>> = (0..n).map(|_| Vec::new()).collect();
    let mut drainers = Vec::new();
    for p in peers {
        for (t, prod) in p.producers.into_iter().enumerate() {
            per_thread[t].push(prod);
        }
        drainers.push((p.kind, p.drainer));
    }
    let peer_count = drainers.len();
    let counting = crate::alloc::installed();

    let barrier = Arc::new(Barrier::new(n + 1));
    let current = Arc::new(AtomicUsize::new(usize::MAX));
    // Commands: the round's phase (warm-up, timed, counting) and its first counter.
    let phase = Arc::new(Mutex::new((false, 0u64)));
    let queued_total = Arc::new(Mutex::new(vec![(0u64, 0u64); peer_count]));
    let clock = quanta::Clock::new();

    let outs: Vec<ThreadOut> = std::thread::scope(|s| {
        let handles: Vec<_> = per_thread
            .into_iter()
            .enumerate()
            .map(|(t, mut producers)| {
                let (barrier, current, phase, queued_total, clock) =
                    (barrier.clone(), current.clone(), phase.clone(), queued_total.clone(), clock.clone());
                let pin = cfg.pin;
                let (burst, mode) = (cfg.burst as u64, cfg.mode);
                let pace_ns = cfg.pace.as_nanos() as u64;
                s.spawn(move || {
                    if pin {
                        crate::sys::pin(&[t % cpus]);
                    }
                    let user = user_id(t);
                    let overhead = timer_overhead(&clock);
                    let mut hists: Vec<Hist> = (0..producers.len()).map(|_| Hist::new()).collect();
                    let mut allocs = vec![None; producers.len()];
                    let mut scratch = Hist::new();
                    loop {
                        barrier.wait();
                        let idx = current.load(Ordering::Acquire);
                        if idx == usize::MAX {
                            break;
                        }
                        let (record, start) = *phase.lock().unwrap();
                        let count = crate::alloc::is_counting();
                        let a0 = crate::alloc::thread_allocs();
                        let args = BurstArgs {
                            clock: &clock,
                            overhead: overhead.0,
                            user: &user,
                            start,
                            n: burst,
                            mode,
                            record,
                            pace_ns,
                        };
                        let hist = if record { &mut hists[idx] } else { &mut scratch };
                        let (q, r) = producers[idx].burst(&args, hist);
                        if count {
                            allocs[idx] = Some((crate::alloc::thread_allocs() - a0) as f64 / burst as f64);
                        }
                        {
                            let mut qt = queued_total.lock().unwrap();
                            qt[idx].0 += q;
                            qt[idx].1 += r;
                        }
                        barrier.wait();
                    }
                    // Producers (lane claims, senders) are dropped here, on their own thread.
                    drop(producers);
                    ThreadOut { hists, overhead, allocs }
                })
            })
            .collect();

        let warmup = 2;
        let total_rounds = warmup + cfg.rounds + usize::from(counting);
        for round in 0..total_rounds {
            let record = round >= warmup && round < warmup + cfg.rounds;
            let count_allocs = counting && round == total_rounds - 1;
            for j in 0..peer_count {
                // Rotate the order every round.
                let idx = (j + round) % peer_count;
                *phase.lock().unwrap() = (record, (round * cfg.burst) as u64);
                current.store(idx, Ordering::Release);
                if let Drainer::Spinner(sp) = &drainers[idx].1 {
                    sp.activate();
                }
                crate::alloc::set_counting(count_allocs);
                barrier.wait(); // go
                barrier.wait(); // burst done on every producer
                crate::alloc::set_counting(false);
                match &drainers[idx].1 {
                    Drainer::Spinner(sp) => {
                        let want = queued_total.lock().unwrap()[idx].0;
                        if !sp.wait_consumed(want, Duration::from_secs(30)) {
                            eprintln!("warning: {} consumer did not catch up", drainers[idx].0.name());
                        }
                        sp.deactivate();
                    }
                    Drainer::External { settle, .. } => settle(),
                }
            }
        }
        current.store(usize::MAX, Ordering::Release);
        barrier.wait();
        handles.into_iter().map(|h| h.join().expect("producer thread")).collect()
    });

    let qt = queued_total.lock().unwrap().clone();
    let mut results = Vec::new();
    for (idx, (kind, drainer)) in drainers.iter().enumerate() {
        let mut hist = Hist::new();
        for o in &outs {
            hist.merge(&o.hists[idx]);
        }
        let lost = match drainer {
            Drainer::External { lost, .. } => lost(),
            Drainer::Spinner(_) => 0,
        };
        let allocs = outs
            .iter()
            .filter_map(|o| o.allocs[idx])
            .fold(None, |acc: Option<f64>, a| Some(acc.unwrap_or(0.0).max(a)));
        results.push(PeerResult { kind: *kind, hist, refused: qt[idx].1 + lost, allocs_per_capture: allocs });
    }
    drop(drainers);
    if cfg.pin {
        crate::sys::pin(&(0..cpus).collect::<Vec<_>>());
    }
    RunResult {
        config: cfg.clone(),
        peers: results,
        overhead_ns: outs.iter().map(|o| o.overhead.0).collect(),
        overhead_spread: outs.first().map_or((0, 0), |o| (o.overhead.1, o.overhead.2)),
        elapsed: started.elapsed(),
    }
}

/// A plain-text table of a run, for the terminal.
pub fn table(r: &RunResult) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}, {} producer(s), {}, {}, calls paced {} ns; {} rounds x {} per producer; timer overhead subtracted: {:?} ns",
        r.config.shape.label(),
        r.config.producers,
        r.config.mode.label(),
        r.config.consumer_label(),
        r.config.pace.as_nanos(),
        r.config.rounds,
        r.config.burst,
        r.overhead_ns
    );
    let _ = writeln!(
        s,
        "{:<32} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9} {:>8} {:>8}",
        "peer", "p50 ns", "p90", "p99", "p99.9", "max", "mean", "allocs", "refused"
    );
    for p in &r.peers {
        let h = &p.hist;
        let _ = writeln!(
            s,
            "{:<32} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9.1} {:>8} {:>8}",
            p.kind.name(),
            h.quantile(0.5),
            h.quantile(0.9),
            h.quantile(0.99),
            h.quantile(0.999),
            h.max(),
            h.mean(),
            p.allocs_per_capture.map_or("-".to_string(), |a| format!("{a:.2}")),
            p.refused
        );
    }
    s
}
