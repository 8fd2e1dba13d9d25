//! Raw loopback HTTP servers that misbehave in ways `fasthog-receiver` does not: redirects,
//! endless headers or bodies, garbage, resets. Each connection's request is read (head, then a
//! `Content-Length` body), then the server acts out the [`Reply`] its function picks for that
//! request's number (0-based). Nothing leaves 127.0.0.1.
//!
//! Included with `#[path = "common/faults.rs"] mod faults;`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Send these bytes as they are, then close.
    Raw(Vec<u8>),
    /// A status line, then header lines for ever (until the client goes away).
    EndlessHeaders,
    /// This status with a chunked body that never ends.
    EndlessBody(u16),
    /// Never answer; hold the connection until the server is dropped.
    Hang,
    /// Close at once with the request unread (the kernel answers with a reset).
    Reset,
}

/// A complete response with `Content-Length` and `Connection: close`.
pub fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut out =
        format!("HTTP/1.1 {status} Fault\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    Reply::Raw(out.into_bytes())
}

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `POST`, `GET`...
    pub method: String,
    /// The request target.
    pub path: String,
    /// Body bytes read.
    pub body_len: usize,
}

/// See the module docs. Stops (and releases hung connections) when dropped.
pub struct FaultServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
}

impl FaultServer {
    /// Starts a server on a free loopback port.
    pub fn start(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let reply = Arc::new(reply);
        let (stop2, seen2, conns2) = (stop.clone(), seen.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::Acquire) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let n = conns2.fetch_add(1, Ordering::AcqRel);
                let (reply, stop, seen) = (reply.clone(), stop2.clone(), seen2.clone());
                std::thread::spawn(move || serve(stream, n, &*reply, &stop, &seen));
            }
        });
        FaultServer { addr, stop, seen, connections }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests read so far (a [`Reply::Reset`] one counts when its head was read).
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
        // wake accept
    }
}

fn serve(
    mut stream: TcpStream,
    n: usize,
    reply: &(dyn Fn(usize) -> Reply + Send + Sync),
    stop: &AtomicBool,
    seen: &Mutex<Vec<Seen>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let reply = reply(n);
    if let Reply::Reset = reply {
        let mut one = [0u8; 1];
        let _ = stream.read(&mut one);
        return; // dropped with the rest of the request unread: a reset
    }
    let Some(request) = read_request(&mut stream) else { return };
    seen.lock().unwrap().push(request);
    match reply {
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes);
            let _ = stream.flush();
            let _ = stream.shutdown(std::net::Shutdown::Write);
            // Let the client read before the socket goes away.
            let mut sink = [0u8; 256];
            while matches!(stream.read(&mut sink), Ok(k) if k > 0) {}
        }
        Reply::EndlessHeaders => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n");
            let mut i = 0u64;
            while !stop.load(Ordering::Acquire)
                && stream.write_all(format!("X-Endless-{i}: {}\r\n", "h".repeat(64)).as_bytes()).is_ok()
            {
                i += 1;
            }
        }
        Reply::EndlessBody(status) => {
            let head = format!("HTTP/1.1 {status} Fault\r\nTransfer-Encoding: chunked\r\n\r\n");
            if stream.write_all(head.as_bytes()).is_ok() {
                let chunk = format!("400\r\n{}\r\n", "b".repeat(0x400));
                while !stop.load(Ordering::Acquire) && stream.write_all(chunk.as_bytes()).is_ok() {}
            }
        }
        Reply::Hang => {
            while !stop.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Reply::Reset => unreachable!(),
    }
}

/// Reads a request head and its `Content-Length` body; `None` if the client went away first.
fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut words = head.split_whitespace();
    let (method, path) = (words.next()?.to_string(), words.next()?.to_string());
    let len = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).ok()?;
    Some(Seen { method, path, body_len: len })
}
