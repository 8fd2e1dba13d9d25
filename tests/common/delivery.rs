//! Helpers for the delivery tests (`tests/delivery.rs`, `tests/flusher_clock.rs`,
//! `tests/tokio_flusher.rs`): a capturing logger, the accounting check every scenario ends
//! with, a distinctive API key that must never be logged, and loopback-only network tricks.
//!
//! Included with `#[path = "common/delivery.rs"] mod support;` so it does not depend on (or
//! clash with) `tests/common/mod.rs`.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Mutex, Once};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use fasthog::flusher::RetryPolicy;
use fasthog::{Captured, Client, Event, Snapshot};

/// The API key every test uses. No log line or error text may contain it.
pub const KEY: &str = "phc_SECRET_do_not_log_123";
/// The part of [`KEY`] looked for in logs: catches a truncated or re-quoted key too.
pub const KEY_MARK: &str = "SECRET_do_not_log";

/// Fast retries for tests: 4 attempts in all (the default count), waits of 10..40 ms,
/// `Retry-After` obeyed up to 3 s.
pub const FAST_RETRY: RetryPolicy =
    RetryPolicy { max_attempts: 4, initial_backoff_ms: 10, max_backoff_ms: 40, max_retry_after_ms: 3_000 };

/// One captured log line.
#[derive(Debug, Clone)]
pub struct Line {
    /// The thread that logged it.
    pub thread: ThreadId,
    /// Its level.
    pub level: log::Level,
    /// Its target (module path of the logger call).
    pub target: String,
    /// The formatted message.
    pub text: String,
}

struct Capture {
    lines: Mutex<Vec<Line>>,
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = Line {
            thread: std::thread::current().id(),
            level: record.level(),
            target: record.target().to_string(),
            text: record.args().to_string(),
        };
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture { lines: Mutex::new(Vec::new()) };

/// Installs the capturing logger (once per test binary), at `Trace`: every crate's lines
/// (fasthog, ureq, rustls...) are kept and checked for the key.
pub fn install_logger() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&CAPTURE).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Every line logged so far, by any thread.
pub fn lines() -> Vec<Line> {
    CAPTURE.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The texts of lines logged so far that contain `needle`.
pub fn lines_containing(needle: &str) -> Vec<String> {
    lines().into_iter().filter(|l| l.text.contains(needle)).map(|l| l.text).collect()
}

/// The texts of lines logged so far by this thread.
pub fn lines_of_this_thread() -> Vec<Line> {
    let me = std::thread::current().id();
    lines().into_iter().filter(|l| l.thread == me).collect()
}

/// Bytes of the key's secret part (after `phc_`) that may not appear together in a log line:
/// catches a key cut short (a prefix at the end of a truncated reason) as well as a whole one.
pub const KEY_FRAGMENT: usize = 8;

/// True when `text` holds the key, or any [`KEY_FRAGMENT`] consecutive bytes of its secret part.
pub fn holds_key_fragment(text: &str) -> bool {
    let secret = &KEY.as_bytes()[4..];
    text.contains(KEY_MARK)
        || secret.windows(KEY_FRAGMENT).any(|w| text.contains(std::str::from_utf8(w).expect("ASCII key")))
}

/// Panics if any line logged so far contains the API key, or a fragment of it (see
/// [`holds_key_fragment`]).
///
/// One exemption, documented in the README: at `Trace`, ureq-proto dumps every byte it writes
/// and reads as hex rows (target `ureq_proto::util`): a plain request body, which holds the
/// key, and a response that echoes it. No client on top of ureq can prevent that; users keep
/// that target below `Trace`.
pub fn assert_no_key_logged() {
    for line in lines() {
        if line.level == log::Level::Trace && line.target.starts_with("ureq_proto") {
            continue;
        }
        assert!(
            !holds_key_fragment(&line.text) && !holds_key_fragment(&line.target),
            "a log line contains the API key or part of it: [{}] {}",
            line.target,
            line.text
        );
    }
}

/// The accounting invariant after a shutdown: nothing pending, every capture has exactly one
/// outcome.
#[track_caller]
pub fn assert_accounted(s: &Snapshot) {
    assert_eq!(s.pending, 0, "events still pending after shutdown: {s:?}");
    assert_eq!(
        s.captured,
        s.sent + s.failed + s.dropped + s.rejected + s.sampled + s.filtered,
        "captured != sent + failed + dropped + rejected + sampled + filtered: {s:?}"
    );
    assert_eq!(s.outcomes() + s.pending, s.captured, "Snapshot::outcomes disagrees: {s:?}");
}

/// Shuts `client` down (must succeed within `deadline` + 1 s), checks the accounting and that
/// no log line holds the key, and returns the final counters.
#[track_caller]
pub fn finish(client: &Client, deadline: Duration) -> Snapshot {
    let started = Instant::now();
    let stats = client.shutdown(deadline).expect("shutdown within its deadline");
    assert!(started.elapsed() <= deadline + Duration::from_secs(1), "shutdown took {:?}", started.elapsed());
    assert_accounted(&stats);
    assert_no_key_logged();
    stats
}

/// A client builder for a receiver at `url`: the test key, fast retries, short timeouts, and
/// the default 10 s flush interval (tests call `flush`).
pub fn builder(url: &str) -> fasthog::Builder {
    Client::builder(KEY)
        .host(url)
        .environment("delivery-test")
        .retry(FAST_RETRY)
        .connect_timeout(Duration::from_secs(1))
        .http_timeout(Duration::from_secs(3))
}

/// Captures `n` events named `delivery_test` with distinct ids `{prefix}-{i}`; asserts each
/// was queued. Returns the distinct ids.
#[track_caller]
pub fn capture_n(client: &Client, n: usize, prefix: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let outcome = client.capture(&Event::new("delivery_test", &id).prop("i", i as i64));
            assert_eq!(outcome, Captured::Queued, "capture {i} of {n}");
            id
        })
        .collect()
}

/// A loopback port where nothing listens and that nobody else can take while the guard
/// lives: the local end of a connected socket. A connect to it is refused (RST) at once.
pub struct ClosedPort {
    pub addr: SocketAddr,
    _listener: TcpListener,
    _client: TcpStream,
    _server: TcpStream,
}

/// See [`ClosedPort`].
pub fn closed_port() -> ClosedPort {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect loopback");
    let (server, _) = listener.accept().expect("accept loopback");
    let addr = client.local_addr().unwrap();
    ClosedPort { addr, _listener: listener, _client: client, _server: server }
}

/// A loopback listener whose accept queue is full: further connects get no answer (the
/// kernel drops their SYNs), so a client's connect times out. Nothing leaves the machine.
/// `None` if the queue could not be filled (a kernel that answers anyway).
pub struct FullBacklog {
    pub addr: SocketAddr,
    _listener: TcpListener,
    _held: Vec<TcpStream>,
}

/// See [`FullBacklog`].
pub fn full_backlog() -> Option<FullBacklog> {
    let listener = TcpListener::bind("127.0.0.1:0").ok()?;
    let addr = listener.local_addr().ok()?;
    let mut held = Vec::new();
    // std listens with a backlog of 128; the kernel queues a few more than the backlog.
    for _ in 0..4096 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => held.push(s),
            Err(_) => return Some(FullBacklog { addr, _listener: listener, _held: held }),
        }
    }
    None
}

/// `unix_secs` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), for `Retry-After`.
pub fn imf_fixdate(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix_secs / 86_400;
    let sod = unix_secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// `unix_secs` as an RFC 850 date (`Sunday, 06-Nov-94 08:49:37 GMT`), the obsolete form
/// RFC 9110 still requires a recipient to accept.
pub fn rfc850_date(unix_secs: u64) -> String {
    let imf = imf_fixdate(unix_secs);
    let p: Vec<&str> = imf.split(' ').collect(); // ["Sun,", "06", "Nov", "1994", "08:49:37", "GMT"]
    let day = match p[0] {
        "Mon," => "Monday",
        "Tue," => "Tuesday",
        "Wed," => "Wednesday",
        "Thu," => "Thursday",
        "Fri," => "Friday",
        "Sat," => "Saturday",
        _ => "Sunday",
    };
    format!("{day}, {}-{}-{} {} GMT", p[1], p[2], &p[3][2..], p[4])
}

/// Polls `done` every 2 ms until true or `timeout`; returns whether it became true.
pub fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn imf_fixdate_formats_the_rfc_example() {
    assert_eq!(imf_fixdate(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(rfc850_date(784_111_777), "Sunday, 06-Nov-94 08:49:37 GMT");
    assert_eq!(imf_fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
}
