//! The one-command report: runs the tail-latency harness and the end-to-end runs, then writes
//! `bench-report/REPORT.md` and `bench-report/latency.svg`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::e2e::{self, E2eArgs, E2eResult, ReceiverChild, ReceiverCounts, Which};
use crate::peers::Kind;
use crate::sys::{self, Machine};
use crate::tail::{self, Config, Mode, RunResult};

/// Command-line settings of `bench-report`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Output folder.
    pub out: PathBuf,
    /// Timed rounds per tail run.
    pub rounds: usize,
    /// Captures per producer per burst.
    pub burst: usize,
    /// Seconds of capture per end-to-end run.
    pub e2e_secs: f64,
    /// Pin threads.
    pub pin: bool,
    /// Skip the end-to-end runs.
    pub skip_e2e: bool,
}

impl Options {
    /// Defaults, then flags: `--out DIR --rounds N --burst N --secs S --no-pin --skip-e2e --quick`.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            out: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../bench-report")),
            rounds: 600,
            burst: 512,
            e2e_secs: 4.0,
            pin: true,
            skip_e2e: false,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut val = || it.next().cloned().ok_or_else(|| format!("{a} needs a value"));
            match a.as_str() {
                "--out" => o.out = PathBuf::from(val()?),
                "--rounds" => o.rounds = val()?.parse().map_err(|e| format!("--rounds: {e}"))?,
                "--burst" => o.burst = val()?.parse().map_err(|e| format!("--burst: {e}"))?,
                "--secs" => o.e2e_secs = val()?.parse().map_err(|e| format!("--secs: {e}"))?,
                "--no-pin" => o.pin = false,
                "--skip-e2e" => o.skip_e2e = true,
                "--quick" => {
                    o.rounds = 4;
                    o.burst = 1024;
                    o.e2e_secs = 0.5;
                }
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown flag {other}")),
            }
        }
        Ok(o)
    }
}

/// How often the peers' drain threads poll in the like-for-like runs: fasthog's flusher polls
/// its lanes every 50 µs while events flow (backing off to 5 ms when idle).
pub const POLL: Duration = Duration::from_micros(50);

/// Usage text.
pub const USAGE: &str =
    "usage: bench-report [--out DIR] [--rounds N] [--burst N] [--secs S] [--no-pin] [--skip-e2e] [--quick]
  Runs the tail-latency harness (fasthog and every peer, 1 and 2 producers) and the end-to-end
  throughput runs (fasthog vs posthog-rs, gzip and plain), then writes DIR/REPORT.md and
  DIR/latency.svg (DIR defaults to bench-report/ at the workspace root).";

/// Handles the child-process roles (`--receiver`, `--e2e`); true when this process was one.
pub fn child_role(args: &[String]) -> bool {
    match args.first().map(String::as_str) {
        Some("--receiver") => {
            e2e::receiver_child_main(args.get(1).and_then(|c| c.parse().ok()));
            true
        }
        Some("--e2e") => {
            match E2eArgs::parse(&args[1..]) {
                Some(a) => e2e::child_main(&a),
                None => {
                    eprintln!("bad --e2e arguments: {:?}", &args[1..]);
                    std::process::exit(2);
                }
            }
            true
        }
        _ => false,
    }
}

/// One end-to-end run with the receiver's view of it.
#[derive(Debug, Clone)]
pub struct E2eRow {
    /// Settings.
    pub args: E2eArgs,
    /// What the client process measured.
    pub result: E2eResult,
    /// What the receiver counted during the run.
    pub receiver: ReceiverCounts,
}

/// Runs everything and writes the report. Returns the report's path.
pub fn run(o: &Options) -> std::io::Result<PathBuf> {
    let started = Instant::now();
    let date = sys::utc_now();
    let machine = Machine::read();
    let load_start = sys::loadavg();
    let clock = quanta::Clock::new();
    let tsc = sys::quanta_uses_tsc(&clock);
    let counting = crate::alloc::installed();
    if !counting {
        eprintln!(
            "warning: the counting allocator is not installed in this binary; allocations not measured"
        );
    }
    let cpus = machine.nproc.max(1);
    eprintln!(
        "bench-report: {} on {} CPUs ({}), TSC {}",
        date,
        cpus,
        machine.cpu_model,
        if tsc { "yes" } else { "NO" }
    );

    // Tail latency, the receiver pinned with the consumers on the last CPU.
    let mut runs = Vec::new();
    {
        let receiver = ReceiverChild::start(o.pin.then_some(cpus - 1))?;
        let polling = Some(POLL);
        for (producers, mode, poll) in [
            (1, Mode::CallSite, polling),
            (1, Mode::Prebuilt, polling),
            (1, Mode::CallSite, None),
            (2, Mode::CallSite, None),
        ] {
            let cfg = Config {
                producers,
                mode,
                rounds: o.rounds,
                burst: o.burst,
                kinds: Kind::ALL.to_vec(),
                receiver_url: Some(receiver.url().to_string()),
                pin: o.pin,
                poll,
            };
            let r = tail::run(&cfg);
            eprintln!("{}(took {:.1} s)\n", tail::table(&r), r.elapsed.as_secs_f64());
            runs.push(r);
        }
    }

    // End to end, nothing pinned.
    let mut rows = Vec::new();
    if !o.skip_e2e {
        let mut receiver = ReceiverChild::start(None)?;
        let batch = 100;
        let mut plan = Vec::new();
        // Every configuration twice, interleaved; the faster run of each is kept (noise on a
        // shared machine only ever slows a run down).
        for _ in 0..E2E_REPEATS {
            for (which, gzip) in [
                (Which::Fasthog, Some(1)),
                (Which::Fasthog, Some(6)),
                (Which::Fasthog, None),
                (Which::PosthogRs, Some(6)),
                (Which::PosthogRs, None),
            ] {
                plan.push(E2eArgs {
                    which,
                    gzip,
                    url: receiver.url().to_string(),
                    secs: o.e2e_secs,
                    batch,
                    count_allocs: false,
                });
            }
        }
        if counting {
            for (which, gzip) in [(Which::Fasthog, Some(1)), (Which::PosthogRs, Some(6))] {
                plan.push(E2eArgs {
                    which,
                    gzip,
                    url: receiver.url().to_string(),
                    secs: (o.e2e_secs / 4.0).max(0.25),
                    batch,
                    count_allocs: true,
                });
            }
        }
        for args in plan {
            let before = receiver.counts();
            let result = e2e::spawn_run(&args)?;
            let after = receiver.counts();
            let d = ReceiverCounts {
                events: after.events - before.events,
                requests: after.requests - before.requests,
                gzip: after.gzip - before.gzip,
                bytes: after.bytes - before.bytes,
                not_ok: after.not_ok - before.not_ok,
            };
            eprintln!(
                "e2e {:?} {:?}{}: {:.0} events/s delivered (receiver stored {} of {} captured), RSS peak {} kB",
                args.which,
                args.gzip,
                if args.count_allocs { " (counting allocations)" } else { "" },
                d.events as f64 / result.secs,
                d.events,
                result.captured,
                result.rss_peak_kb
            );
            rows.push(E2eRow { args, result, receiver: d });
        }
        rows = best_runs(rows);
    }

    let load_end = sys::loadavg();
    let took = started.elapsed();
    std::fs::create_dir_all(&o.out)?;
    let md = markdown(
        &Facts { date, machine, tsc, load_start, load_end, took, options: o.clone(), counting },
        &runs,
        &rows,
    );
    let path = o.out.join("REPORT.md");
    std::fs::write(&path, md)?;
    std::fs::write(o.out.join("latency.svg"), svg(&runs))?;
    eprintln!("wrote {} and latency.svg in {:.0} s", path.display(), took.as_secs_f64());
    Ok(path)
}

/// Runs of each end-to-end configuration, interleaved.
const E2E_REPEATS: usize = 2;

/// Keeps the fastest run of each configuration (first-seen order).
fn best_runs(rows: Vec<E2eRow>) -> Vec<E2eRow> {
    let rate = |r: &E2eRow| r.receiver.events as f64 / r.result.secs.max(1e-9);
    let key = |r: &E2eRow| (r.args.which, r.args.gzip, r.args.count_allocs);
    let mut best: Vec<E2eRow> = Vec::new();
    for row in rows {
        match best.iter_mut().find(|b| key(b) == key(&row)) {
            Some(b) if rate(&row) > rate(b) => *b = row,
            Some(_) => {}
            None => best.push(row),
        }
    }
    best
}

struct Facts {
    date: String,
    machine: Machine,
    tsc: bool,
    load_start: String,
    load_end: String,
    took: Duration,
    options: Options,
    counting: bool,
}

fn find(run: &RunResult, kind: Kind) -> Option<&tail::PeerResult> {
    run.peers.iter().find(|p| p.kind == kind)
}

/// "MET" or "MISSED BY x%" for `value <= target`.
fn at_most(value: f64, target: f64) -> String {
    if value <= target {
        "**MET**".into()
    } else {
        format!("**MISSED BY {:.0}%**", (value / target - 1.0) * 100.0)
    }
}

/// "MET" or "MISSED BY x%" for `value >= target`.
fn at_least(value: f64, target: f64) -> String {
    if value >= target {
        "**MET**".into()
    } else {
        format!("**MISSED BY {:.0}%**", (1.0 - value / target) * 100.0)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    a.max(1) as f64 / b.max(1) as f64
}

fn targets(md: &mut String, runs: &[RunResult], rows: &[E2eRow]) {
    let _ = writeln!(md, "## The issue's targets\n");
    let _ = writeln!(
        md,
        "fasthog = `Client::capture` of the typical event, one producer thread, the real flusher draining \
         on the other core. Latencies are per call, timer overhead subtracted. \"Call site\" times \
         building the event and capturing it (what a line `client.capture(&Event::new(..).prop(..))` \
         costs); \"prebuilt\" times the capture of an event built beforehand. Ratios compare p50s \
         from the same run. In the like-for-like runs the peers' drain threads poll every 50 µs, as \
         fasthog's flusher polls while events flow (each drain reads the records whole, as an \
         encoder must read them); in the \
         \"spin\" runs they drain in a busy loop, the usual SPSC benchmark setting, which also \
         costs the producer a cache-line transfer of the ring's tail index per push.\n"
    );
    let _ = writeln!(md, "| target | mode | measured | verdict |");
    let _ = writeln!(md, "|---|---|---|---|");
    for run in runs.iter().filter(|r| r.config.producers == 1) {
        let mode = format!(
            "{}; {}",
            match run.config.mode {
                Mode::CallSite => "call site",
                Mode::Prebuilt => "prebuilt",
            },
            match run.config.poll {
                Some(_) => "peers' consumers poll (like-for-like)",
                None => "peers' consumers spin",
            }
        );
        let Some(fh) = find(run, Kind::FasthogClient) else {
            continue;
        };
        let p50 = fh.hist.quantile(0.5);
        let p999 = fh.hist.quantile(0.999);
        let _ = writeln!(md, "| capture p50 <= 25 ns | {mode} | {p50} ns | {} |", at_most(p50 as f64, 25.0));
        let _ = writeln!(
            md,
            "| capture p99.9 <= 150 ns | {mode} | {p999} ns | {} |",
            at_most(p999 as f64, 150.0)
        );
        if let Some(rb) = find(run, Kind::Ringbuf) {
            let r = ratio(p50, rb.hist.quantile(0.5));
            let _ = writeln!(
                md,
                "| <= 1.2x a bare ringbuf push of the same bytes (p50) | {mode} | {r:.2}x ({p50} vs {} ns) | {} |",
                rb.hist.quantile(0.5),
                at_most(r, 1.2)
            );
        }
        if let Some(aq) = find(run, Kind::ArrayQueue) {
            let r = ratio(aq.hist.quantile(0.5), p50);
            let _ = writeln!(
                md,
                "| >= 6x faster than crossbeam ArrayQueue (p50) | {mode} | {r:.2}x ({} vs {p50} ns) | {} |",
                aq.hist.quantile(0.5),
                at_least(r, 6.0)
            );
        }
        if let Some(ph) = find(run, Kind::PosthogRs) {
            let r = ratio(ph.hist.quantile(0.5), p50);
            let _ = writeln!(
                md,
                "| >= 10x faster than posthog-rs (p50) | {mode} | {r:.1}x ({} vs {p50} ns) | {} |",
                ph.hist.quantile(0.5),
                at_least(r, 10.0)
            );
        }
        if let Some(a) = fh.allocs_per_capture {
            let _ = writeln!(
                md,
                "| zero allocations per capture | {mode} | {a} per capture ({} captures counted) | {} |",
                run.config.burst,
                if a == 0.0 { "**MET**".to_string() } else { "**MISSED**".to_string() }
            );
        }
    }
    for row in rows.iter().filter(|r| r.args.count_allocs && r.args.which == Which::Fasthog) {
        let r = &row.result;
        let _ = writeln!(
            md,
            "| zero allocations per capture | end to end, {} captures | {} allocations on the producer thread | {} |",
            r.captured,
            r.producer_allocs,
            if r.producer_allocs == 0 {
                "**MET**".to_string()
            } else {
                format!("{} (the thread's first capture claims a lane once)", if r.producer_allocs <= 2 { "**MET** after the first" } else { "**MISSED**" })
            }
        );
    }
    md.push('\n');
}

fn tail_table(md: &mut String, run: &RunResult) {
    let c = &run.config;
    let _ = writeln!(
        md,
        "### {} producer{}, {}, {}\n",
        c.producers,
        if c.producers == 1 { "" } else { "s" },
        c.mode.label(),
        c.consumer_label()
    );
    let _ = writeln!(
        md,
        "{} rounds x {} captures per producer per peer ({} samples per peer); timer overhead \
         subtracted per thread: {:?} ns (producer 0: min {} ns, p99 {} ns); run took {:.1} s.\n",
        c.rounds,
        c.burst,
        c.rounds * c.burst * c.producers,
        run.overhead_ns,
        run.overhead_spread.0,
        run.overhead_spread.1,
        run.elapsed.as_secs_f64()
    );
    let reference = find(run, Kind::FasthogClient).map(|p| (p.hist.quantile(0.5), p.hist.quantile(0.999)));
    let _ = writeln!(
        md,
        "| peer | consumer | p50 ns | p90 | p99 | p99.9 | p99.99 | max | mean | allocs/capture | refused | p50 / fasthog p50 | p99.9 / fasthog p99.9 |"
    );
    let _ = writeln!(md, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for p in &run.peers {
        let h = &p.hist;
        let (r50, r999) = match reference {
            Some((f50, f999)) => (
                format!("{:.2}x", ratio(h.quantile(0.5), f50)),
                format!("{:.2}x", ratio(h.quantile(0.999), f999)),
            ),
            None => ("-".into(), "-".into()),
        };
        let name = if p.kind == Kind::FasthogClient {
            format!("**{}**", p.kind.name())
        } else {
            p.kind.name().to_string()
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} |",
            name,
            p.kind.consumer(),
            h.quantile(0.5),
            h.quantile(0.9),
            h.quantile(0.99),
            h.quantile(0.999),
            h.quantile(0.9999),
            h.max(),
            h.mean(),
            p.allocs_per_capture.map_or("-".to_string(), |a| format!("{a:.2}")),
            p.refused,
            r50,
            r999
        );
    }
    md.push('\n');
}

fn e2e_table(md: &mut String, rows: &[E2eRow]) {
    let _ = writeln!(md, "## End to end: events/s delivered to the local receiver\n");
    let _ = writeln!(
        md,
        "One producer thread captures the typical event for the run's time, keeping at most {} \
         events undelivered in the client (it sleeps 20 µs while at that bound, see below), then the client shuts down (fasthog) or flushes \
         (posthog-rs); delivered/s = events the receiver stored / (first capture .. end of \
         shutdown); each configuration ran twice, interleaved with the others, and the faster \
         run is shown. Both clients send batches of 100 events (posthog-rs's default; fasthog's \
         default is 64). gzip: fasthog at the level given (its default is 1), posthog-rs at its \
         fixed level (flate2's default, 6); both use the same flate2 backend in this build. The \
         receiver is a separate process on the same 2 cores, so it competes for CPU with the client. \
         Client CPU = user + system time of the client process. RSS = VmRSS of the client process. \
         Why the bound: both clients drop under sustained overload (fasthog at capture, counted \
         and returned as `Dropped` once its lanes are full; posthog-rs silently at its queue \
         bound, one warning per episode), and this table measures delivery without loss. \
         `lost` = events a client accepted and did not deliver (must be 0).\n",
        e2e::MAX_IN_FLIGHT
    );
    let _ = writeln!(
        md,
        "| client | body | delivered events/s | vs posthog-rs (same body) | stored / captured | lost | client CPU µs per event | requests | bytes/event sent | RSS start | RSS built | RSS peak | RSS after |"
    );
    let _ = writeln!(md, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let rate = |r: &E2eRow| r.receiver.events as f64 / r.result.secs.max(1e-9);
    let mb = |kb: u64| format!("{:.1} MB", kb as f64 / 1024.0);
    for row in rows.iter().filter(|r| !r.args.count_allocs) {
        let peer = rows.iter().find(|p| {
            !p.args.count_allocs
                && p.args.which == Which::PosthogRs
                && p.args.gzip.is_some() == row.args.gzip.is_some()
        });
        let vs = match (row.args.which, peer) {
            (Which::Fasthog, Some(p)) => format!("{:.2}x", rate(row) / rate(p).max(1e-9)),
            _ => "-".into(),
        };
        let r = &row.result;
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {} | {} / {}{} | {} | {:.2} | {} | {:.0} | {} | {} | {} | {} |",
            match row.args.which {
                Which::Fasthog => "fasthog",
                Which::PosthogRs => "posthog-rs 0.30",
            },
            match (row.args.which, row.args.gzip) {
                (_, None) => "plain JSON".to_string(),
                (Which::Fasthog, Some(l)) => format!("gzip level {l}"),
                (Which::PosthogRs, Some(_)) => "gzip (level 6)".to_string(),
            },
            rate(row),
            vs,
            row.receiver.events,
            r.captured,
            if row.receiver.not_ok > 0 {
                format!(" ({} non-200)", row.receiver.not_ok)
            } else {
                String::new()
            },
            r.lost,
            r.cpu_us as f64 / row.receiver.events.max(1) as f64,
            row.receiver.requests,
            row.receiver.bytes as f64 / row.receiver.events.max(1) as f64,
            mb(r.rss_start_kb),
            mb(r.rss_built_kb),
            mb(r.rss_peak_kb),
            mb(r.rss_end_kb)
        );
    }
    md.push('\n');
}

fn alloc_table(md: &mut String, runs: &[RunResult], rows: &[E2eRow]) {
    let _ = writeln!(md, "## Allocations\n");
    let _ = writeln!(
        md,
        "Counted by a counting global allocator in the harness binary (`alloc`, `alloc_zeroed`, \
         `realloc` each count one). Per call site: on the producer thread, during the harness's \
         counting round, building the event included (the Go design's and posthog-rs's allocations \
         are almost all in building their event; posthog-rs's `capture` adds one `Box`). Per delivered event: every \
         thread of the client process (producer, flusher or worker, HTTP pools) from building the \
         client to the end of its shutdown, divided by events delivered, in a separate short run.\n"
    );
    let _ = writeln!(md, "| peer | allocs per call site (build + capture, 1 producer) |");
    let _ = writeln!(md, "|---|--:|");
    let call = runs.iter().find(|r| r.config.producers == 1 && r.config.mode == Mode::CallSite);
    if let Some(call) = call {
        for p in &call.peers {
            let f = |a: Option<f64>| a.map_or("-".to_string(), |a| format!("{a:.2}"));
            let _ = writeln!(md, "| {} | {} |", p.kind.name(), f(p.allocs_per_capture));
        }
    }
    md.push('\n');
    let counted: Vec<_> = rows.iter().filter(|r| r.args.count_allocs).collect();
    if !counted.is_empty() {
        let _ = writeln!(md, "| client (end to end, gzip) | captures | allocs on producer thread | per capture | events delivered | allocs in process | per delivered event |");
        let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|");
        for row in counted {
            let r = &row.result;
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.4} | {} | {} | {:.2} |",
                match row.args.which {
                    Which::Fasthog => "fasthog",
                    Which::PosthogRs => "posthog-rs 0.30",
                },
                r.captured,
                r.producer_allocs,
                r.producer_allocs as f64 / r.captured.max(1) as f64,
                row.receiver.events,
                r.process_allocs,
                r.process_allocs as f64 / row.receiver.events.max(1) as f64
            );
        }
        md.push('\n');
    }
}

fn markdown(f: &Facts, runs: &[RunResult], rows: &[E2eRow]) -> String {
    let mut md = String::new();
    let m = &f.machine;
    let _ = writeln!(md, "# fasthog capture benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `cargo run --release -p fasthog-peers --bin bench-report` (or `scripts/bench-report`) on {}; \
         the run took {:.0} s.\n",
        f.date,
        f.took.as_secs_f64()
    );
    let _ = writeln!(md, "## Machine\n");
    let _ = writeln!(md, "| fact | value |\n|---|---|");
    let _ = writeln!(md, "| CPU (/proc/cpuinfo) | {} |", m.cpu_model);
    let _ = writeln!(md, "| CPU detail | {} |", m.cpu_detail);
    let _ = writeln!(md, "| nproc | {} |", m.nproc);
    let _ = writeln!(md, "| virtualized | {} |", if m.virtualized { "yes (hypervisor flag)" } else { "no" });
    let _ = writeln!(md, "| memory | {} |", m.mem_total);
    let _ = writeln!(md, "| kernel | {} |", m.kernel);
    let _ = writeln!(
        md,
        "| clock source | {}; quanta reads the TSC: {} |",
        m.clocksource,
        if f.tsc { "yes" } else { "NO (OS clock fallback)" }
    );
    let _ = writeln!(md, "| rustc | {} |", m.rustc);
    let _ = writeln!(
        md,
        "| build | {} |",
        if cfg!(debug_assertions) { "DEBUG (numbers meaningless)" } else { "optimized" }
    );
    let _ = writeln!(md, "| load average at start / end | {} / {} |", f.load_start, f.load_end);
    let _ = writeln!(
        md,
        "| threads pinned | {} |",
        if f.options.pin { "yes: producer k on CPU k, everything else on the last CPU" } else { "no" }
    );
    let _ =
        writeln!(md, "| counting allocator | {} |\n", if f.counting { "installed" } else { "NOT installed" });

    targets(&mut md, runs, rows);

    let _ = writeln!(md, "## Per-call capture latency (tail harness)\n");
    let _ = writeln!(
        md,
        "Every peer captures the same typical event: name `order_filled` (static), a 36-character \
         distinct_id, properties `qty` (int), `seq` (int), `price` (float), `venue` (\"XNAS\"). The ring \
         and queue peers all carry the record a fasthog lane holds, a `fasthog::Record` (about 1.1 KB, \
         `Copy`), built by the same code (`Event::to_record`) and pushed by value; fasthog writes \
         the same record in place in its lane slot from the builder; the Go-design peer builds an owned struct with a `HashMap<String, \
         serde_json::Value>` of the four properties and a `SystemTime::now()` stamp, sent with \
         `try_send` into a bounded crossbeam channel; posthog-rs builds its `Event` with \
         `insert_prop` and calls `capture`. Each call is timed with two `quanta::Clock::raw()` (rdtsc) \
         reads; the median cost of two back-to-back reads is measured on each producer thread and \
         subtracted. Bursts of captures alternate with waits for the consumer to catch up; every \
         peer's queue holds two bursts, so nothing is refused. Rounds rotate through the peers so \
         machine noise spreads over all of them. See `peers/src/tail.rs`.\n"
    );
    let _ = writeln!(md, "![latency CDFs](latency.svg)\n");
    for run in runs {
        tail_table(&mut md, run);
    }
    if !rows.is_empty() {
        e2e_table(&mut md, rows);
    }
    alloc_table(&mut md, runs, rows);
    let _ = writeln!(md, "## Criterion benches\n");
    let _ = writeln!(
        md,
        "Mean times per call, with confidence intervals, for the same comparisons and more variants \
         (0/4/16 properties, static vs copied strings, encoder throughput): `cargo bench -p fasthog \
         --bench capture` and `cargo bench -p fasthog-peers --bench peers` (a few minutes each); \
         `cargo bench --workspace -- --test` runs each once as a smoke test.\n"
    );
    md
}

const COLORS: [&str; 11] = [
    "#d62728", "#ff7f0e", "#8c564b", "#1f77b4", "#17becf", "#2ca02c", "#9467bd", "#bcbd22", "#7f7f7f",
    "#e377c2", "#000000",
];

/// CDF plots of each run, x = latency (log ns), y = percentile on a "nines" scale.
pub fn svg(runs: &[RunResult]) -> String {
    let (w, panel_h, left, right, top, gap) = (1060.0, 380.0, 70.0, 380.0, 40.0, 70.0);
    let plot_w = w - left - right;
    let plot_h = panel_h - 60.0;
    let h = top + runs.len() as f64 * (panel_h + gap);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="22" font-size="15" font-weight="bold">Per-call capture latency, CDF (timer overhead subtracted)</text>"#
    );
    let max_ns = runs.iter().flat_map(|r| r.peers.iter().map(|p| p.hist.max())).max().unwrap_or(1000).max(10);
    let x_max_dec = (max_ns as f64).log10().ceil().max(2.0);
    let y_max = 5.0; // p99.999
    for (ri, run) in runs.iter().enumerate() {
        let y0 = top + ri as f64 * (panel_h + gap) + 20.0;
        let x = |ns: f64| left + (ns.max(1.0).log10() / x_max_dec) * plot_w;
        let y = |f: f64| {
            let nines = if f >= 1.0 { y_max } else { (-(1.0 - f).log10()).min(y_max) };
            y0 + plot_h - nines / y_max * plot_h
        };
        let _ = writeln!(
            s,
            r#"<text x="{left}" y="{}" font-size="13" font-weight="bold">{} producer{}, {}, {}</text>"#,
            y0 - 6.0,
            run.config.producers,
            if run.config.producers == 1 { "" } else { "s" },
            run.config.mode.label(),
            xml(&run.config.consumer_label())
        );
        let _ = writeln!(
            s,
            r##"<rect x="{left}" y="{y0}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>"##
        );
        for d in 0..=(x_max_dec as i32) {
            let xx = x(10f64.powi(d));
            let label = match d {
                0 => "1 ns".to_string(),
                1 => "10 ns".into(),
                2 => "100 ns".into(),
                3 => "1 µs".into(),
                4 => "10 µs".into(),
                5 => "100 µs".into(),
                6 => "1 ms".into(),
                7 => "10 ms".into(),
                8 => "100 ms".into(),
                d => format!("1e{d} ns"),
            };
            let _ = writeln!(
                s,
                r##"<line x1="{xx}" y1="{y0}" x2="{xx}" y2="{}" stroke="#ddd"/><text x="{xx}" y="{}" text-anchor="middle">{label}</text>"##,
                y0 + plot_h,
                y0 + plot_h + 16.0
            );
        }
        for (f, label) in [
            (0.5, "p50"),
            (0.9, "p90"),
            (0.99, "p99"),
            (0.999, "p99.9"),
            (0.9999, "p99.99"),
            (0.99999, "p99.999"),
        ] {
            let yy = y(f);
            let _ = writeln!(
                s,
                r##"<line x1="{left}" y1="{yy}" x2="{}" y2="{yy}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{label}</text>"##,
                left + plot_w,
                left - 6.0,
                yy + 4.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">latency per call (log scale)</text>"#,
            left + plot_w / 2.0,
            y0 + plot_h + 34.0
        );
        for (pi, p) in run.peers.iter().enumerate() {
            let color = COLORS[pi % COLORS.len()];
            let mut pts = String::new();
            let mut prev_f = 0.0;
            for (ns, f) in p.hist.cdf() {
                // A step: up at this value from the previous fraction.
                let _ = write!(pts, "{:.1},{:.1} {:.1},{:.1} ", x(ns as f64), y(prev_f), x(ns as f64), y(f));
                prev_f = f;
            }
            let width = if p.kind == Kind::FasthogClient { 3.0 } else { 1.5 };
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{color}" stroke-width="{width}" points="{pts}"/>"#
            );
            let ly = y0 + 14.0 + pi as f64 * 17.0;
            let lx = left + plot_w + 16.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" y1="{}" x2="{}" y2="{}" stroke="{color}" stroke-width="{width}"/><text x="{}" y="{}">{} (p50 {} ns)</text>"#,
                ly - 4.0,
                lx + 22.0,
                ly - 4.0,
                lx + 28.0,
                ly,
                xml(p.kind.name()),
                p.hist.quantile(0.5)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
