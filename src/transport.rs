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
//!   with a small bound;
//! - return `Err(TransportError)` only when no HTTP status was received (connect failure,
//!   timeout, reset): the flusher retries those;
//! - bound its own time (connect and overall timeouts): the flusher also races it against
//!   the shutdown deadline and drops the future if the deadline passes;
//! - never put the API key (it is inside the body) in an error or a log line.
//!
//! The future may borrow the request; it is polled to completion or dropped.

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

/// Bytes of the response body kept for logs.
pub const DETAIL_BYTES: usize = 160;

/// What the server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// `Retry-After`, in milliseconds from now.
    pub retry_after_ms: Option<u64>,
    detail: [u8; DETAIL_BYTES],
    detail_len: u8,
}

impl Response {
    /// A response with this status and no details.
    pub const fn new(status: u16) -> Self {
        Response { status, retry_after_ms: None, detail: [0; DETAIL_BYTES], detail_len: 0 }
    }

    /// Sets `retry_after_ms`.
    pub const fn with_retry_after_ms(mut self, ms: Option<u64>) -> Self {
        self.retry_after_ms = ms;
        self
    }

    /// Keeps the start of the response body (up to [`DETAIL_BYTES`], cut on a UTF-8
    /// boundary; invalid UTF-8 is replaced by nothing).
    pub fn with_detail(mut self, body: &[u8]) -> Self {
        let text = match core::str::from_utf8(body) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&body[..e.valid_up_to()]).unwrap_or_default(),
        };
        let mut n = text.len().min(DETAIL_BYTES);
        while !text.is_char_boundary(n) {
            n -= 1;
        }
        self.detail[..n].copy_from_slice(&text.as_bytes()[..n]);
        self.detail_len = n as u8;
        self
    }

    /// The start of the response body, for logs.
    pub fn detail(&self) -> &str {
        core::str::from_utf8(&self.detail[..usize::from(self.detail_len)]).unwrap_or_default()
    }

    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
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
    fn send(&mut self, request: Request<'_>) -> impl Future<Output = Result<Response, TransportError>>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn send(&mut self, request: Request<'_>) -> impl Future<Output = Result<Response, TransportError>> {
        (**self).send(request)
    }
}

/// Parses a `Retry-After` value: delta-seconds, or an HTTP date (IMF-fixdate,
/// `Sun, 06 Nov 1994 08:49:37 GMT`) relative to `now_unix_secs`. Returns milliseconds from
/// now (0 for a date in the past), or `None` if it is neither.
pub fn parse_retry_after(value: &str, now_unix_secs: u64) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    let at = parse_imf_fixdate(value)?;
    Some(at.saturating_sub(now_unix_secs).saturating_mul(1000))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` to Unix seconds.
fn parse_imf_fixdate(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 29 || &b[3..5] != b", " || &b[25..] != b" GMT" {
        return None;
    }
    let num = |r: core::ops::Range<usize>| s.get(r)?.parse::<u64>().ok();
    let day = num(5..7)?;
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| s.get(8..11) == Some(m))? as u64 + 1;
    let year = num(12..16)?;
    let (h, m, sec) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if !(1..=31).contains(&day) || year < 1970 || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
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
    }

    #[test]
    fn detail_is_bounded_and_utf8() {
        let long = "é".repeat(200);
        let r = Response::new(400).with_detail(long.as_bytes());
        assert!(r.detail().len() <= DETAIL_BYTES);
        assert!(r.detail().chars().all(|c| c == 'é'));
        assert_eq!(Response::new(400).with_detail(b"bad\xffrest").detail(), "bad");
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
