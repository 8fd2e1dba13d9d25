//! The main job: capture events from several threads at a high rate, ship them, and account
//! for every one; or, with `POSTHOG_API_KEY` set, send one small session to a real project.
//!
//! ```text
//! cargo run --release --example demo                  # throughput run to a local receiver
//! POSTHOG_API_KEY=phc_... cargo run --release --example demo   # one small session to PostHog
//! POSTHOG_API_KEY=phc_... cargo run --release --example demo -- --events 5000   # more, on purpose
//! cargo run --release --example demo -- --threads 4 --events 500000 --rate 400000
//! ```
//!
//! Without a key, the demo starts the local receiver (`receiver/`, count-only) in a child
//! process, so this process holds only the client: its CPU time (`getrusage`) is the client's,
//! and its RSS is the client's. It exits 1 if any event is unaccounted for (`captured` is not
//! the sum of every outcome, `pending != 0`, or the receiver stored a different count than
//! `sent`), and 2 on a bad flag.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fasthog::flusher::Outcome;
use fasthog::{Captured, Client, Event, Snapshot};
use fasthog_receiver::{Receiver, ReceiverConfig, Store};
use hdrhistogram::Histogram;

/// The default total rate of the throughput run, events/s: 0 dropped on the 2-core machine
/// this was measured on, with headroom (see the README).
const DEFAULT_RATE: u64 = 100_000;
const DEFAULT_EVENTS: u64 = 1_000_000;
const DEFAULT_THREADS: usize = 2;
/// Set in the child process that runs the receiver.
const RECEIVER_CHILD: &str = "FASTHOG_DEMO_RECEIVER_CHILD";

const USAGE: &str = "\
usage: demo [--threads N] [--events N] [--rate N] [-h|--help]

Without POSTHOG_API_KEY: a throughput run to a local receiver (in a child process), then the
accounting, client CPU per delivered event, events/s and RSS.
  --threads N  producer threads (1-256; default 2)
  --events N   events in all (default 1000000)
  --rate N     total events/s the producers are paced to (0: unpaced; default 100000)

With POSTHOG_API_KEY (and optionally POSTHOG_HOST) set: one small session (an identify, a
group, a few events) to that project. --events N sends a throughput run of N events there
instead (--threads and --rate apply to it).";

struct Args {
    threads: usize,
    events: Option<u64>,
    rate: u64,
    rate_or_threads_given: bool,
}

fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut a =
        Args { threads: DEFAULT_THREADS, events: None, rate: DEFAULT_RATE, rate_or_threads_given: false };
    let mut argv = argv.into_iter();
    while let Some(arg) = argv.next() {
        if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg, None),
        };
        if !matches!(flag.as_str(), "--threads" | "--events" | "--rate") {
            return Err(format!("unknown argument `{flag}`"));
        }
        let value = inline.or_else(|| argv.next()).ok_or(format!("{flag} needs a value"))?;
        let n: u64 = value.parse().map_err(|_| format!("{flag}: `{value}` is not a whole number"))?;
        match flag.as_str() {
            "--threads" if (1..=256).contains(&n) => a.threads = n as usize,
            "--threads" => return Err(format!("--threads: {n} is not from 1 to 256")),
            "--events" if n >= 1 => a.events = Some(n),
            "--events" => return Err("--events: at least 1".into()),
            _ => a.rate = n,
        }
        a.rate_or_threads_given |= flag != "--events";
    }
    Ok(a)
}

fn main() {
    if std::env::var_os(RECEIVER_CHILD).is_some() {
        serve_receiver();
    }
    let args = parse_args(std::env::args().skip(1)).unwrap_or_else(|e| {
        eprintln!("demo: {e}\n\n{USAGE}");
        std::process::exit(2);
    });
    let remote = std::env::var("POSTHOG_API_KEY").is_ok_and(|k| !k.trim().is_empty());
    if !remote {
        std::process::exit(local_run(&args));
    }
    match args.events {
        Some(events) => std::process::exit(remote_run(&args, events)),
        None if args.rate_or_threads_given => {
            eprintln!(
                "demo: with POSTHOG_API_KEY set the demo sends one small session; --threads and \
                 --rate apply only to a throughput run, which needs --events N"
            );
            std::process::exit(2);
        }
        None => std::process::exit(remote_session()),
    }
}

/// The client of both modes, with the library's defaults (under load a batch lingers up to
/// 5 ms and requests carry ~1,000 events); events given up on are reported (with the server's
/// reason, the API key withheld), since the demo installs no logger.
fn build(builder: fasthog::Builder) -> Client {
    builder
        .on_delivery(|outcome| {
            if let Outcome::Failed { events, status, reason } = outcome {
                let status = status.map_or("no answer".into(), |s| format!("HTTP {s}"));
                eprintln!("demo: {events} events failed ({status}): {reason}");
            }
        })
        .build()
        .unwrap_or_else(|e| {
            eprintln!("demo: {e}");
            std::process::exit(1);
        })
}

fn local_run(args: &Args) -> i32 {
    let events = args.events.unwrap_or(DEFAULT_EVENTS);
    let rss_start = rss_kib("VmRSS");
    let mut receiver = ReceiverChild::start().unwrap_or_else(|e| {
        eprintln!("demo: could not start the local receiver: {e}");
        std::process::exit(1);
    });
    let client = build(Client::builder("phc_fasthog_local_demo").host(&receiver.url).environment("demo"));
    let rss_built = rss_kib("VmRSS");
    println!(
        "shipping {events} events from {} threads at {} to the local receiver at {} (child pid {})",
        args.threads,
        rate_text(args.rate),
        receiver.url,
        receiver.child.id()
    );
    let run = throughput(&client, args.threads, events, args.rate, "order_filled", |t| format!("user-{t}"));
    let Some(stats) = shut_down(&client) else { return 1 };
    let stored = receiver.finish();
    report(&run, &stats);
    println!(
        "RSS       start {} MiB, client built {} MiB, peak {} MiB, after shutdown {} MiB",
        mib(rss_start),
        mib(rss_built),
        mib(rss_kib("VmHWM")),
        mib(rss_kib("VmRSS"))
    );
    let mut code = check(&stats);
    match stored {
        Some(r) => {
            let agree = if r.accepted == stats.sent { "equals sent" } else { "DIFFERS from sent" };
            println!("stored    {:>10}  (receiver, {} requests; {agree})", r.accepted, r.requests);
            if let Some(cpu) = r.cpu.filter(|_| stats.sent > 0) {
                println!(
                    "receiver  {:>10.2} µs CPU per stored event (its own process, not counted above)",
                    micros(cpu) / stats.sent as f64
                );
            }
            if r.accepted != stats.sent {
                code = 1;
            }
        }
        None => {
            eprintln!("demo: the receiver did not report its count");
            code = 1;
        }
    }
    if stats.dropped > 0 {
        println!("note: the producers outran delivery on this machine: try a lower --rate");
    }
    code
}

/// A throughput run to the project of `POSTHOG_API_KEY`, asked for with `--events N`.
fn remote_run(args: &Args, events: u64) -> i32 {
    let host = remote_host();
    let client = build(fasthog::Builder::from_env());
    let run_id = run_id();
    println!(
        "shipping {events} events from {} threads at {} to PostHog at {host}",
        args.threads,
        rate_text(args.rate)
    );
    let run = throughput(&client, args.threads, events, args.rate, "demo_load", |t| {
        format!("fasthog-demo-{run_id}-load-{t}")
    });
    let Some(stats) = shut_down(&client) else { return 1 };
    report(&run, &stats);
    println!(
        "see them at {}/activity/explore (distinct_ids fasthog-demo-{run_id}-load-0 to -{})",
        ui_host(&host),
        args.threads - 1
    );
    check(&stats)
}

/// One small, realistic session to the project of `POSTHOG_API_KEY`: a person identified
/// with properties, their company as a group, and a few events with properties.
fn remote_session() -> i32 {
    let host = remote_host();
    let client = build(fasthog::Builder::from_env());
    let user = format!("fasthog-demo-{}", run_id());
    let company = "fasthog-demo-acme";
    let pages = [("/", "Home"), ("/pricing", "Pricing"), ("/dashboard", "Dashboard")];
    // Capture's outcome is in the counts printed after the shutdown.
    let _ = client.capture(
        &Event::identify(&user)
            .set("email", "ada@example.com")
            .set("name", "Ada Lovelace")
            .set("plan", "pro")
            .set_once("first_seen_with", "fasthog demo"),
    );
    let _ = client.capture(
        &Event::group_identify("company", company).group_set("name", "Acme Corp").group_set("seats", 40),
    );
    for (path, title) in pages {
        let url = format!("https://app.example.com{path}");
        let _ = client.capture(
            &Event::new("$pageview", &user)
                .prop("$current_url", &url)
                .prop("$pathname", path)
                .prop("title", title)
                .group("company", company),
        );
    }
    let _ = client.capture(
        &Event::new("project_created", &user)
            .prop("template", "trading-desk")
            .prop("members", 3)
            .group("company", company),
    );
    for (qty, price, venue) in [(3, 101.25, "XNAS"), (10, 99.5, "XNYS"), (1, 250.0, "XLON")] {
        let _ = client.capture(
            &Event::new("order_filled", &user)
                .prop("qty", qty)
                .prop("price", price)
                .prop("venue", venue)
                .group("company", company),
        );
    }
    let _ = client.capture(
        &Event::new("invoice_paid", &user)
            .prop("amount", 1200)
            .prop("currency", "USD")
            .set("plan", "enterprise")
            .group("company", company),
    );
    println!("sending {} events to PostHog at {host} as {user}", client.stats().captured);
    let Some(stats) = shut_down(&client) else { return 1 };
    print_counts(&stats);
    let code = check(&stats);
    if stats.sent < stats.captured {
        eprintln!("demo: {} of {} events were not delivered", stats.captured - stats.sent, stats.captured);
        return 1;
    }
    let ui = ui_host(&host);
    println!("person    {user} (group company/{company})");
    println!("see them at {ui}/activity/explore or {ui}/person/{user} (ingestion can take a minute)");
    code
}

struct Run {
    histograms: Vec<Histogram<u64>>,
    overhead: u64,
    capture_secs: f64,
    started: Instant,
    /// CPU time of the whole process from just before the producers started.
    cpu_start: Option<Duration>,
    /// The producer threads' own CPU time, summed.
    producer_cpu: Option<Duration>,
}

fn throughput(
    client: &Client,
    threads: usize,
    events: u64,
    rate: u64,
    name: &'static str,
    user: impl Fn(usize) -> String,
) -> Run {
    let clock = quanta::Clock::new();
    let overhead = timer_overhead(&clock);
    let users: Vec<String> = (0..threads).map(user).collect();
    let cpu_start = process_cpu();
    let started = Instant::now();
    let results: Vec<(Histogram<u64>, Option<Duration>)> = std::thread::scope(|s| {
        let handles: Vec<_> = users
            .iter()
            .enumerate()
            .map(|(t, user)| {
                // Spread the remainder: every one of `events` is captured.
                let share = events / threads as u64 + u64::from((t as u64) < events % threads as u64);
                let (client, clock) = (client.clone(), clock.clone());
                let thread_rate = match rate {
                    0 => 0,
                    _ => (rate / threads as u64 + u64::from((t as u64) < rate % threads as u64)).max(1),
                };
                std::thread::Builder::new()
                    .name(format!("demo-producer-{t}"))
                    .spawn_scoped(s, move || {
                        let hist = produce(&client, &clock, name, user, share, thread_rate, overhead);
                        (hist, thread_cpu())
                    })
                    .expect("spawn a producer thread")
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("producer thread")).collect()
    });
    let capture_secs = started.elapsed().as_secs_f64();
    let producer_cpu = results.iter().map(|(_, cpu)| *cpu).sum();
    Run {
        histograms: results.into_iter().map(|(h, _)| h).collect(),
        overhead,
        capture_secs,
        started,
        cpu_start,
        producer_cpu,
    }
}

fn shut_down(client: &Client) -> Option<Snapshot> {
    match client.shutdown(Duration::from_secs(10)) {
        Ok(stats) => Some(stats),
        Err(e) => {
            eprintln!("demo: shutdown: {e}; {:?}", client.stats());
            None
        }
    }
}

fn print_counts(stats: &Snapshot) {
    println!("captured  {:>10}", stats.captured);
    println!("sent      {:>10}", stats.sent);
    println!("failed    {:>10}", stats.failed);
    println!("dropped   {:>10}", stats.dropped);
    println!("rejected  {:>10}", stats.rejected);
    println!("pending   {:>10}", stats.pending);
}

fn report(run: &Run, stats: &Snapshot) {
    let total_secs = run.started.elapsed().as_secs_f64();
    let cpu = match (run.cpu_start, process_cpu()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    print_counts(stats);
    println!(
        "capture   {:>10.0} events/s over {:.2} s",
        stats.captured as f64 / run.capture_secs,
        run.capture_secs
    );
    println!(
        "delivered {:>10.0} events/s including shutdown ({total_secs:.2} s)",
        stats.sent as f64 / total_secs
    );
    match (cpu, run.producer_cpu) {
        (Some(cpu), Some(producers)) if stats.sent > 0 => {
            let per = |d: Duration| micros(d) / stats.sent as f64;
            println!(
                "client    {:>10.2} µs CPU per delivered event ({:.2} producer threads: capture and \
                 this loop; {:.2} flusher, gzip and HTTP; {:.2} s CPU over {total_secs:.2} s)",
                per(cpu),
                per(producers),
                per(cpu.saturating_sub(producers)),
                cpu.as_secs_f64()
            );
        }
        _ => println!("client    CPU per delivered event: not measured on this platform"),
    }
    let mut merged = new_histogram();
    for h in &run.histograms {
        // Same bounds: every value fits.
        merged.add(h).expect("histograms with the same bounds");
    }
    println!(
        "capture latency (timer overhead {} ns subtracted): p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        run.overhead,
        merged.value_at_quantile(0.50),
        merged.value_at_quantile(0.99),
        merged.value_at_quantile(0.999),
        merged.max(),
    );
}

/// 0 if every event is accounted for, else 1.
fn check(stats: &Snapshot) -> i32 {
    let accounted = stats.outcomes();
    if accounted != stats.captured || stats.pending != 0 {
        eprintln!(
            "demo: UNACCOUNTED: captured {} != every outcome {accounted}, or pending {} != 0",
            stats.captured, stats.pending
        );
        return 1;
    }
    0
}

/// A capture-latency histogram: 1 ns to 1 s, 3 significant digits, fixed size (recording
/// on a producer thread never allocates); slower samples are recorded as 1 s.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 1_000_000_000, 3).expect("valid histogram bounds")
}

fn produce(
    client: &Client,
    clock: &quanta::Clock,
    name: &str,
    user: &str,
    events: u64,
    rate: u64,
    overhead: u64,
) -> Histogram<u64> {
    let mut hist = new_histogram();
    let started = Instant::now();
    for i in 0..events {
        if rate > 0 && i % 256 == 0 {
            // Pace in steps of 256 events, sleeping off any lead over the target rate.
            let due = Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(ahead) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
        let t0 = clock.raw();
        let outcome = client.capture(
            &Event::new(name, user)
                .prop("qty", (i % 100) as i64)
                .prop("seq", i)
                .prop("price", 101.25 + (i % 7) as f64)
                .prop("venue", "XNAS"),
        );
        let t1 = clock.raw();
        hist.saturating_record(clock.delta_as_nanos(t0, t1).saturating_sub(overhead));
        debug_assert!(outcome != Captured::Rejected);
    }
    hist
}

/// The local receiver, in a child process (this program again, with `RECEIVER_CHILD` set):
/// it prints its URL, serves until its stdin closes, then prints what it stored.
struct ReceiverChild {
    child: Child,
    stdout: BufReader<ChildStdout>,
    url: String,
}

struct Stored {
    accepted: u64,
    requests: u64,
    cpu: Option<Duration>,
}

impl ReceiverChild {
    fn start() -> std::io::Result<ReceiverChild> {
        let mut child = Command::new(std::env::current_exe()?)
            .env(RECEIVER_CHILD, "1")
            .env_remove("POSTHOG_API_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut url = String::new();
        stdout.read_line(&mut url)?;
        let url = url.trim().to_string();
        if !url.starts_with("http://") {
            return Err(std::io::Error::other(format!("the child printed `{url}`, not its URL")));
        }
        Ok(ReceiverChild { child, stdout, url })
    }

    /// Closes the child's stdin and reads its counts.
    fn finish(&mut self) -> Option<Stored> {
        drop(self.child.stdin.take());
        let mut line = String::new();
        self.stdout.read_line(&mut line).ok()?;
        let _ = self.child.wait();
        let mut n = line.split_whitespace().map(|w| w.parse::<u64>().ok());
        let (accepted, requests, cpu_us) = (n.next()??, n.next()??, n.next().flatten());
        Some(Stored { accepted, requests, cpu: cpu_us.map(Duration::from_micros) })
    }
}

fn serve_receiver() -> ! {
    let receiver = Receiver::start(ReceiverConfig { store: Store::CountOnly, ..Default::default() })
        .unwrap_or_else(|e| {
            eprintln!("demo receiver: {e}");
            std::process::exit(1);
        });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", receiver.url()).and_then(|_| out.flush());
    // Serve until the demo closes our stdin (or exits).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let stats = receiver.stats();
    let cpu = process_cpu().map_or(String::new(), |d| d.as_micros().to_string());
    let _ = writeln!(out, "{} {} {cpu}", stats.events_accepted, stats.requests).and_then(|_| out.flush());
    std::process::exit(0);
}

fn remote_host() -> String {
    std::env::var("POSTHOG_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or(fasthog::client::DEFAULT_HOST.into())
        .trim_end_matches('/')
        .to_string()
}

/// The app's address for an ingestion host: PostHog Cloud ingests at `us.i.posthog.com`
/// and shows at `us.posthog.com`; a self-hosted instance does both at one host.
fn ui_host(host: &str) -> String {
    host.replace("://us.i.posthog.com", "://us.posthog.com")
        .replace("://eu.i.posthog.com", "://eu.posthog.com")
}

/// Distinct per run, so each run's person is new.
fn run_id() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{:x}", now.as_millis())
}

fn rate_text(rate: u64) -> String {
    if rate == 0 {
        "full speed (unpaced)".into()
    } else {
        format!("{rate} events/s")
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The process's user + system CPU time, every thread (including exited ones).
#[cfg(target_os = "linux")]
fn process_cpu() -> Option<Duration> {
    rusage(libc::RUSAGE_SELF)
}

/// The calling thread's user + system CPU time.
#[cfg(target_os = "linux")]
fn thread_cpu() -> Option<Duration> {
    rusage(libc::RUSAGE_THREAD)
}

#[cfg(target_os = "linux")]
fn rusage(who: libc::c_int) -> Option<Duration> {
    // SAFETY: getrusage writes a `rusage` into the zeroed value we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return None;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Some(tv(ru.ru_utime) + tv(ru.ru_stime))
}

#[cfg(not(target_os = "linux"))]
fn process_cpu() -> Option<Duration> {
    None
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu() -> Option<Duration> {
    None
}

/// A `/proc/self/status` field in KiB (`VmRSS`: resident now; `VmHWM`: the peak).
fn rss_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line[field.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok()
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// The cost of the two clock reads around a capture, measured the same way (median).
fn timer_overhead(clock: &quanta::Clock) -> u64 {
    let mut v: Vec<u64> = (0..10_001)
        .map(|_| {
            let t0 = clock.raw();
            let t1 = clock.raw();
            clock.delta_as_nanos(t0, t1)
        })
        .collect();
    v.sort_unstable();
    v[v.len() / 2]
}
