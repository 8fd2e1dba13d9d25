//! Just enough HTTP/1.1 for a capture endpoint: request heads, bodies by `Content-Length` or
//! `chunked`, and small responses. Works on any `BufRead`/`Write`, so it knows nothing of
//! sockets.

use std::io::{self, BufRead, Read, Write};

/// A request head is refused above this size (request line plus headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How much of a too-large body is read and thrown away so the connection can be kept; above
/// this the connection is closed instead.
const MAX_DRAIN_BYTES: u64 = 64 * 1024 * 1024;

/// The parts of a request head the receiver uses.
#[derive(Debug, Default)]
pub(crate) struct Head {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The client did not ask to close (HTTP/1.1 default), or asked to keep alive (HTTP/1.0).
    pub keep_alive: bool,
    pub content_length: Option<u64>,
    pub chunked: bool,
    pub expect_continue: bool,
    pub content_encoding: Option<String>,
    pub content_type: Option<String>,
}

impl Head {
    /// `Content-Encoding: gzip` or `?compression=gzip|gzip-js`.
    pub fn gzip_hint(&self) -> bool {
        let header =
            self.content_encoding.as_deref().is_some_and(|v| v.to_ascii_lowercase().contains("gzip"));
        let query = self
            .query
            .as_deref()
            .is_some_and(|q| q.split('&').any(|kv| matches!(kv, "compression=gzip" | "compression=gzip-js")));
        header || query
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads one request head. `Ok(None)` when the peer closed cleanly between requests.
pub(crate) fn read_head<R: BufRead>(r: &mut R, line: &mut Vec<u8>) -> io::Result<Option<Head>> {
    let mut budget = MAX_HEAD_BYTES;
    // Tolerate blank lines before a request (RFC 9112 2.2).
    loop {
        if !read_line(r, line, &mut budget)? {
            return Ok(None);
        }
        if !line.is_empty() {
            break;
        }
    }
    let request_line = std::str::from_utf8(line).map_err(|_| invalid("request line"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("request line"));
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (target, None),
    };
    let mut head = Head {
        method: method.to_string(),
        path: path.to_string(),
        query,
        keep_alive: version == "HTTP/1.1",
        ..Head::default()
    };
    if !version.starts_with("HTTP/1.") {
        return Err(invalid("version"));
    }
    loop {
        if !read_line(r, line, &mut budget)? {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if line.is_empty() {
            return Ok(Some(head));
        }
        let text = std::str::from_utf8(line).map_err(|_| invalid("header"))?;
        let (name, value) = text.split_once(':').ok_or_else(|| invalid("header"))?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                let n = value.parse().map_err(|_| invalid("content-length"))?;
                if head.content_length.is_some_and(|old| old != n) {
                    return Err(invalid("conflicting content-length"));
                }
                head.content_length = Some(n);
            }
            "transfer-encoding" => {
                head.chunked = value.to_ascii_lowercase().ends_with("chunked");
            }
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    head.keep_alive = false;
                } else if v.contains("keep-alive") {
                    head.keep_alive = true;
                }
            }
            "expect" => head.expect_continue = value.eq_ignore_ascii_case("100-continue"),
            "content-encoding" => head.content_encoding = Some(value.to_string()),
            "content-type" => head.content_type = Some(value.to_string()),
            _ => {}
        }
    }
}

/// Reads one line without its CRLF into `line`. Returns false on EOF before any byte.
fn read_line<R: BufRead>(r: &mut R, line: &mut Vec<u8>, budget: &mut usize) -> io::Result<bool> {
    line.clear();
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return if line.is_empty() { Ok(false) } else { Err(io::ErrorKind::UnexpectedEof.into()) };
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        if chunk.len() > *budget {
            return Err(invalid("request head too large"));
        }
        *budget -= chunk.len();
        line.extend_from_slice(chunk);
        let n = chunk.len();
        r.consume(n);
        if done {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(true);
        }
    }
}

/// How reading a body ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// The whole body is in the buffer.
    Read,
    /// Over the limit: the buffer holds nothing useful. `drained` says whether the rest was read
    /// (the connection can go on) or not (it must be closed).
    TooLarge { drained: bool },
}

/// Reads the body of `head` into `buf` (cleared first), up to `limit` bytes. Returns the bytes
/// as sent and how it ended.
pub(crate) fn read_body<R: BufRead>(
    r: &mut R,
    head: &Head,
    limit: usize,
    buf: &mut Vec<u8>,
) -> io::Result<(u64, Body)> {
    buf.clear();
    if head.chunked {
        return read_chunked(r, limit, buf);
    }
    let n = head.content_length.unwrap_or(0);
    if n > limit as u64 {
        if n > limit as u64 + MAX_DRAIN_BYTES {
            return Ok((n, Body::TooLarge { drained: false }));
        }
        discard(r, n)?;
        return Ok((n, Body::TooLarge { drained: true }));
    }
    buf.resize(n as usize, 0);
    r.read_exact(buf)?;
    Ok((n, Body::Read))
}

fn read_chunked<R: BufRead>(r: &mut R, limit: usize, buf: &mut Vec<u8>) -> io::Result<(u64, Body)> {
    let mut line = Vec::new();
    let mut budget = usize::MAX;
    let mut total: u64 = 0;
    loop {
        if !read_line(r, &mut line, &mut budget)? {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let text = std::str::from_utf8(&line).map_err(|_| invalid("chunk size"))?;
        let size = text.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size, 16).map_err(|_| invalid("chunk size"))?;
        if size == 0 {
            break;
        }
        total = total.saturating_add(size);
        if total > limit as u64 + MAX_DRAIN_BYTES {
            return Ok((total, Body::TooLarge { drained: false }));
        }
        if total > limit as u64 {
            buf.clear();
            discard(r, size)?;
        } else {
            let start = buf.len();
            buf.resize(start + size as usize, 0);
            r.read_exact(&mut buf[start..])?;
        }
        read_line(r, &mut line, &mut budget)?; // CRLF after the data
        if !line.is_empty() {
            return Err(invalid("chunk framing"));
        }
    }
    // Trailers, up to the blank line.
    let mut budget = MAX_HEAD_BYTES;
    while read_line(r, &mut line, &mut budget)? && !line.is_empty() {}
    let body = if total > limit as u64 { Body::TooLarge { drained: true } } else { Body::Read };
    Ok((total, body))
}

fn discard<R: BufRead>(r: &mut R, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut Read::take(r, n), &mut io::sink())?;
    if copied < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Writes a whole response in one `write_all`, so it leaves in one segment.
pub(crate) fn write_response<W: Write>(
    w: &mut W,
    status: u16,
    extra_headers: &[(&str, &str)],
    body: &str,
    keep_alive: bool,
) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    if !body.is_empty() {
        out.push_str("Content-Type: application/json\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    let connection = if keep_alive { "keep-alive" } else { "close" };
    out.push_str(&format!("Connection: {connection}\r\n"));
    for (name, value) in extra_headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    w.write_all(out.as_bytes())?;
    w.flush()
}

/// The interim answer to `Expect: 100-continue`.
pub(crate) fn write_continue<W: Write>(w: &mut W) -> io::Result<()> {
    w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        read_head(&mut text.as_bytes(), &mut Vec::new()).unwrap().unwrap()
    }

    #[test]
    fn parses_head() {
        let h = head(
            "POST /batch/?compression=gzip-js&v=1 HTTP/1.1\r\nContent-Length: 5\r\n\
             Content-Type: application/json\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(h.method, "POST");
        assert_eq!(h.path, "/batch/");
        assert_eq!(h.content_length, Some(5));
        assert!(!h.keep_alive);
        assert!(h.gzip_hint());
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
    }

    #[test]
    fn reads_chunked_with_extensions_and_trailers() {
        let h = head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        let mut body: &[u8] = b"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: 1\r\n\r\nNEXT";
        let mut buf = Vec::new();
        assert_eq!(read_body(&mut body, &h, 100, &mut buf).unwrap(), (5, Body::Read));
        assert_eq!(buf, b"abcde");
        assert_eq!(body, b"NEXT");
        let mut body: &[u8] = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT";
        assert_eq!(read_body(&mut body, &h, 4, &mut buf).unwrap(), (5, Body::TooLarge { drained: true }));
        assert_eq!(body, b"NEXT");
    }

    #[test]
    fn rejects_oversized_head() {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert!(read_head(&mut big.as_bytes(), &mut Vec::new()).is_err());
    }
}
