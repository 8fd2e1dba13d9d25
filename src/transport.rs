//! The seam to the outside: what the flusher asks of an HTTP client.
//!
//! # Contract for implementors
//! [`Transport::send`] MUST:
//! - `POST` the body — `head`, then `events`, then `tail`, concatenated — to `{host}/batch/`
//!   with `Content-Type: application/json`;
//! - if it compresses, compress the whole body and send `Content-Encoding: gzip`; otherwise
//!   send no compression hint (PostHog refuses a hint on a plain body with 400);
//! - return `Ok(Response)` for **any** HTTP status, including 4xx and 5xx: the flusher decides
//!   what to retry. Fill [`Response::retry_after_ms`] from a `Retry-After` header (use
//!   [`parse_retry_after`]) and [`Response::detail`] with the start of the response body, read
//!   with a small bound (for a 3xx, the `Location` header instead);
//! - never follow a redirect: return the 3xx (a client that follows one re-sends a `POST` as a
//!   body-less `GET`, and the flusher would count events sent that nobody received);
//! - return `Err(TransportError)` only when no HTTP status was received (connect failure,
//!   timeout, reset): the flusher retries those;
//! - bound its own time (connect and overall timeouts): the flusher also races it against
//!   the shutdown deadline and drops the future if the deadline passes;
//! - never put the API key (it is inside the body) in an error or a log line.
//!
//! The future may borrow the request; it is polled to completion or dropped.
//!
//! # Several requests at once
//! `send` takes `&self`: the flusher keeps up to
//! [`FlushConfig::requests_in_flight`](crate::flusher::FlushConfig::requests_in_flight)
//! requests in flight, each a `send` future on the same transport, polled together by the
//! flusher's own future (no task is spawned, nothing is allocated). An implementation MUST
//! let those futures make progress independently: one request waiting for its response must
//! not stop another from being sent. One that cannot (a single socket, say) may serialize
//! them behind a lock, or the user sets `requests_in_flight` to 1. State it changes (buffers,
//! a compressor, a connection pool) lives behind interior mutability, one piece per request
//! in flight, as the std `client::HttpTransport` keeps a compressor per sender.
//! For a flusher future that is `Send` (`tokio::spawn`), the transport must be `Sync`.

use core::future::Future;

/// One HTTP request's body, in three parts so a batch can be split without copying.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The envelope's head, with a fresh `sent_at`.
    pub head: &'a [u8],
    /// Comma-separated event objects.
    pub events: &'a [u8],
    /// The envelope's tail.
    pub tail: &'a [u8],
    /// How many events the body holds.
    pub event_count: usize,
    /// 1 for the first attempt, 2 for the first retry, ...
    pub attempt: u32,
}

impl Request<'_> {
    /// The body's parts in order.
    pub fn parts(&self) -> [&[u8]; 3] {
        [self.head, self.events, self.tail]
    }

    /// The body's length.
    pub fn len(&self) -> usize {
        self.head.len() + self.events.len() + self.tail.len()
    }

    /// True when the body is empty (never, for requests the flusher makes).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Bytes of the server's reason shown in a log line.
pub const DETAIL_BYTES: usize = 160;

/// Longest API key PostHog accepts (and the client allows).
pub const MAX_KEY_BYTES: usize = 64;

/// Bytes of the response body a [`Response`] keeps: the shown part and one key length more, so
/// a key that starts inside the shown part is kept whole and can be withheld before the cut.
pub const DETAIL_KEPT: usize = DETAIL_BYTES + MAX_KEY_BYTES;

/// What the server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// `Retry-After`, in milliseconds from now.
    pub retry_after_ms: Option<u64>,
    detail: [u8; DETAIL_KEPT],
    detail_len: u8,
}

impl Response {
    /// A response with this status and no details.
    pub const fn new(status: u16) -> Self {
        Response { status, retry_after_ms: None, detail: [0; DETAIL_KEPT], detail_len: 0 }
    }

    /// Sets `retry_after_ms`.
    pub const fn with_retry_after_ms(mut self, ms: Option<u64>) -> Self {
        self.retry_after_ms = ms;
        self
    }

    /// Keeps the start of the response body (up to [`DETAIL_KEPT`] bytes, cut on a UTF-8
    /// boundary; invalid UTF-8 ends it). It may hold the API key if the server echoed it:
    /// log [`Response::redacted_detail`], never this.
    pub fn with_detail(mut self, body: &[u8]) -> Self {
        let body = &body[..body.len().min(DETAIL_KEPT)];
        let text = match core::str::from_utf8(body) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&body[..e.valid_up_to()]).unwrap_or_default(),
        };
        let n = text.len();
        self.detail[..n].copy_from_slice(text.as_bytes());
        self.detail_len = n as u8;
        self
    }

    /// The start of the response body as kept (up to [`DETAIL_KEPT`] bytes). Not for logs: it
    /// may hold the key.
    pub fn detail(&self) -> &str {
        core::str::from_utf8(&self.detail[..usize::from(self.detail_len)]).unwrap_or_default()
    }

    /// The server's reason for a log line: every occurrence of `secret` replaced by
    /// `[key withheld]` on the whole kept text, *then* cut to [`DETAIL_BYTES`] on a UTF-8
    /// boundary, and a trailing start of `secret` (a key the server itself cut short) removed.
    /// (Cutting first, as an early version did, left the head of a key that straddled the
    /// cut in the line, where no whole key was left to find.)
    pub fn redacted_detail(&self, secret: &str) -> Detail {
        let mut out = Detail { text: [0; DETAIL_BYTES], len: 0 };
        let mut rest = self.detail();
        loop {
            let found = if secret.is_empty() { None } else { rest.find(secret) };
            let before = &rest[..found.unwrap_or(rest.len())];
            if !out.push(before) || found.is_none() || !out.push(Detail::WITHHELD) {
                break;
            }
            rest = &rest[before.len() + secret.len()..];
        }
        out.strip_secret_head(secret);
        out
    }

    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A server's reason with the key withheld, at most [`DETAIL_BYTES`]: see
/// [`Response::redacted_detail`]. Displays as its text.
#[derive(Clone, Copy)]
pub struct Detail {
    text: [u8; DETAIL_BYTES],
    len: usize,
}

impl Detail {
    /// What stands in for the key.
    pub const WITHHELD: &'static str = "[key withheld]";

    /// The text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.text[..self.len]).unwrap_or_default()
    }

    /// Appends as much of `s` as fits, cut on a UTF-8 boundary. False when it did not all fit.
    fn push(&mut self, s: &str) -> bool {
        let mut n = s.len().min(DETAIL_BYTES - self.len);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.text[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        n == s.len()
    }

    /// Removes a trailing start of `secret` of 4 bytes or more (`phc_` and shorter heads are
    /// not secret, and removing them would mangle ordinary words).
    fn strip_secret_head(&mut self, secret: &str) {
        let text = &self.text[..self.len];
        if let Some(k) =
            (4..=secret.len().min(self.len)).rev().find(|&k| text.ends_with(&secret.as_bytes()[..k]))
        {
            self.len -= k;
        }
    }
}

impl core::fmt::Display for Detail {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::fmt::Debug for Detail {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A request that got no HTTP status. All kinds are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportError {
    /// Could not connect (refused, unreachable, DNS).
    Connect,
    /// No complete response within the transport's timeout.
    Timeout,
    /// The connection failed mid-request.
    Io,
    /// Anything else, described without secrets.
    Other(&'static str),
}

impl core::fmt::Display for TransportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TransportError::Connect => f.write_str("could not connect"),
            TransportError::Timeout => f.write_str("timed out"),
            TransportError::Io => f.write_str("connection failed"),
            TransportError::Other(what) => f.write_str(what),
        }
    }
}

impl core::error::Error for TransportError {}

/// Sends batch requests. See the module docs for what an implementation must do.
pub trait Transport {
    /// Sends one request and reports the status, or why there was none.
    /// Several may be in flight at once (see the module docs).
    fn send(&self, request: Request<'_>) -> impl Future<Output = Result<Response, TransportError>>;
}

impl<T: Transport + ?Sized> Transport for &T {
    fn send(&self, request: Request<'_>) -> impl Future<Output = Result<Response, TransportError>> {
        (**self).send(request)
    }
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn send(&self, request: Request<'_>) -> impl Future<Output = Result<Response, TransportError>> {
        (**self).send(request)
    }
}

/// Parses a `Retry-After` value: delta-seconds, or an HTTP date in any of the three forms RFC
/// 9110 requires a recipient to accept (IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850
/// `Sunday, 06-Nov-94 08:49:37 GMT`, asctime `Sun Nov  6 08:49:37 1994`), relative to
/// `now_unix_secs`. Returns milliseconds from now (0 for a date in the past), or `None` if it
/// is neither. Delta-seconds too large for a `u64` count as for ever (`u64::MAX`).
pub fn parse_retry_after(value: &str, now_unix_secs: u64) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(value.parse::<u64>().map_or(u64::MAX, |secs| secs.saturating_mul(1000)));
    }
    let at = parse_http_date(value)?;
    Some(at.saturating_sub(now_unix_secs).saturating_mul(1000))
}

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// An HTTP date in any of its three forms to Unix seconds.
fn parse_http_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: core::ops::Range<usize>| s.get(r)?.trim_start().parse::<u64>().ok();
    let month = |r: core::ops::Range<usize>| {
        Some(MONTHS.iter().position(|m| s.get(r.clone()) == Some(m))? as u64 + 1)
    };
    // (year, month, day, "HH:MM:SS" start)
    let (year, mon, day, time) = if b.len() == 29 && &b[3..5] == b", " && s.ends_with(" GMT") {
        // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
        (num(12..16)?, month(8..11)?, num(5..7)?, 17)
    } else if b.len() == 24 && b[3] == b' ' && b[7] == b' ' {
        // asctime: `Sun Nov  6 08:49:37 1994`
        (num(20..24)?, month(4..7)?, num(8..10)?, 11)
    } else {
        // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`
        let (_, rest) = s.split_once(", ")?;
        let r = rest.as_bytes();
        if r.len() != 22 || r[2] != b'-' || r[6] != b'-' || !rest.ends_with(" GMT") {
            return None;
        }
        let at = s.len() - 22;
        let yy = num(at + 7..at + 9)?;
        (if yy < 70 { 2000 + yy } else { 1900 + yy }, month(at + 3..at + 6)?, num(at..at + 2)?, at + 10)
    };
    if b.get(time + 2) != Some(&b':') || b.get(time + 5) != Some(&b':') {
        return None;
    }
    let (h, m, sec) = (num(time..time + 2)?, num(time + 3..time + 5)?, num(time + 6..time + 8)?);
    if !(1..=31).contains(&day) || year < 1970 || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, mon, day) * 86_400 + h * 3600 + m * 60 + sec)
}

/// (year, month, day) to days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[allow(clippy::std_instead_of_alloc)] // tests run with std
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("7", 0), Some(7000));
        assert_eq!(parse_retry_after(" 0 ", 0), Some(0));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_770), Some(7000));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_800), Some(0));
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("-3", 0), None);
        // The obsolete forms RFC 9110 still requires a recipient to accept.
        assert_eq!(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", 784_111_770), Some(7000));
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", 784_111_770), Some(7000));
        assert_eq!(parse_retry_after("Thu Jan  1 00:00:10 1970", 0), Some(10_000));
        assert_eq!(parse_retry_after("Wednesday, 01-Jan-30 00:00:00 GMT", 0), Some(1_893_456_000_000));
        assert_eq!(parse_retry_after("99999999999999999999", 0), Some(u64::MAX));
        for bad in [
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sunday, 06-Nov-94 08-49-37 GMT",
            "Sun Nov 32 08:49:37 1994",
            "",
        ] {
            assert_eq!(parse_retry_after(bad, 0), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn retry_after_never_panics(value in ".{0,40}", date in "[A-Za-z]{3,9}, [0-9 -]{2}[- ][A-Za-z]{3}[- ][0-9]{2,4} [0-9:]{8} GMT") {
            let _ = parse_retry_after(&value, 0);
            let _ = parse_retry_after(&date, u64::MAX);
        }
    }

    #[test]
    fn detail_is_bounded_and_utf8() {
        let long = "é".repeat(200);
        let r = Response::new(400).with_detail(long.as_bytes());
        assert!(r.detail().len() <= DETAIL_KEPT);
        assert!(r.detail().chars().all(|c| c == 'é'));
        let shown = r.redacted_detail("phc_key");
        assert!(shown.as_str().len() <= DETAIL_BYTES && shown.as_str().len() > DETAIL_BYTES - 2);
        assert!(shown.as_str().chars().all(|c| c == 'é'));
        assert_eq!(Response::new(400).with_detail(b"bad\xffrest").detail(), "bad");
    }

    const KEY: &str = "phc_0123456789abcdefghij";

    fn shown(body: &str) -> std::string::String {
        std::string::ToString::to_string(
            &Response::new(400).with_detail(body.as_bytes()).redacted_detail(KEY),
        )
    }

    #[test]
    fn the_key_is_withheld_wherever_it_is_cut() {
        // The key starting at every offset around the cut, the body going on after it or not.
        for at in 0..DETAIL_BYTES + 8 {
            for tail in ["", " then more text"] {
                let body = std::format!("{}{KEY}{tail}", "r".repeat(at));
                let text = shown(&body);
                assert!(text.len() <= DETAIL_BYTES, "{at}: {} bytes", text.len());
                for k in 5..=KEY.len() {
                    assert!(!text.contains(&KEY[..k]), "{at}{tail:?}: {} of the key in {text:?}", k);
                }
                assert!(text.starts_with(&"r".repeat(at.min(DETAIL_BYTES))), "{at}: {text:?}");
            }
        }
        assert_eq!(shown(&std::format!("a {KEY} b {KEY} c")), "a [key withheld] b [key withheld] c");
        // A key the server cut short at the end of its body.
        assert_eq!(shown(&std::format!("token {}", &KEY[..12])), "token ");
        assert_eq!(shown("stop"), "stop", "short heads of a word are not taken for a key");
    }

    #[test]
    fn transport_error_is_an_error() {
        // Usable as `Box<dyn Error + Send + Sync>` and with `?` into error-reporting crates.
        fn source<E: core::error::Error + Send + Sync + 'static>(e: &E) -> Option<&dyn core::error::Error> {
            e.source()
        }
        assert!(source(&TransportError::Timeout).is_none());
    }
}
