//! The server: one accept thread, one thread per connection (at most [`MAX_CONNECTIONS`]),
//! and the per-request flow: read, apply the next fault, check, store, answer, record.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::capture::{self, Rejection, Rules};
use crate::http::{self, Body, Head};
use crate::state::State;
use crate::{Fault, ReceiverConfig, RequestRecord, Store};

/// Connection threads at once; further connections wait in the listen backlog.
pub(crate) const MAX_CONNECTIONS: usize = 64;

const OK_BODY: &str = r#"{"status":"Ok"}"#;

/// State shared by the handle, the accept thread and the connection threads.
pub(crate) struct Shared {
    pub store: Store,
    pub max_event_bytes: usize,
    pub expected_api_key: Option<String>,
    pub body_limit: AtomicUsize,
    pub inflated_limit: AtomicUsize,
    pub delay: Mutex<Option<Duration>>,
    pub faults: Mutex<VecDeque<Fault>>,
    pub state: Mutex<State>,
    /// Signalled whenever events are stored.
    pub stored: Condvar,
    shutdown: Mutex<bool>,
    /// Wakes sleeping (`Delay`) and hung (`Hang`) connections at shutdown.
    shutdown_signal: Condvar,
    conns: Mutex<Conns>,
    conn_closed: Condvar,
}

/// Live connections: a handle to each socket (to cut it at shutdown) and the threads to join.
#[derive(Default)]
struct Conns {
    next_id: u64,
    sockets: HashMap<u64, TcpStream>,
    threads: Vec<JoinHandle<()>>,
}

/// Locks, ignoring poison: a panicking connection thread must not take the receiver down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn new(cfg: ReceiverConfig, state: State) -> Shared {
        Shared {
            store: cfg.store,
            max_event_bytes: cfg.max_event_bytes,
            expected_api_key: cfg.expected_api_key,
            body_limit: AtomicUsize::new(cfg.max_body_bytes),
            inflated_limit: AtomicUsize::new(capture::MAX_INFLATED_BYTES),
            delay: Mutex::new(cfg.delay),
            faults: Mutex::new(VecDeque::new()),
            state: Mutex::new(state),
            stored: Condvar::new(),
            shutdown: Mutex::new(false),
            shutdown_signal: Condvar::new(),
            conns: Mutex::new(Conns::default()),
            conn_closed: Condvar::new(),
        }
    }

    fn is_shut_down(&self) -> bool {
        *lock(&self.shutdown)
    }

    /// Sleeps for `d`, or less if the receiver shuts down. Returns false on shutdown.
    fn sleep(&self, d: Duration) -> bool {
        let guard = lock(&self.shutdown);
        let (guard, _) = self
            .shutdown_signal
            .wait_timeout_while(guard, d, |down| !*down)
            .unwrap_or_else(PoisonError::into_inner);
        !*guard
    }

    /// Blocks until the receiver shuts down.
    fn wait_for_shutdown(&self) {
        let guard = lock(&self.shutdown);
        drop(self.shutdown_signal.wait_while(guard, |down| !*down).unwrap_or_else(PoisonError::into_inner));
    }

    /// Starts shutting down: wakes sleepers, hung requests and a waiting accept loop.
    pub fn begin_shutdown(&self) {
        *lock(&self.shutdown) = true;
        self.shutdown_signal.notify_all();
        // Take the conns lock so the accept loop is either waiting (and gets woken) or will
        // see the flag before it waits.
        let _conns = lock(&self.conns);
        self.conn_closed.notify_all();
    }
}

/// Accepts connections until shutdown, then cuts every live connection and joins its thread.
pub(crate) fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    for stream in listener.incoming() {
        if shared.is_shut_down() {
            break;
        }
        let Ok(stream) = stream else {
            // Out of file descriptors, most likely: give clients time to let go.
            if !shared.sleep(Duration::from_millis(10)) {
                break;
            }
            continue;
        };
        if !spawn_connection(&shared, stream) {
            break;
        }
    }
    let threads = {
        let mut conns = lock(&shared.conns);
        for socket in conns.sockets.values() {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
        std::mem::take(&mut conns.threads)
    };
    for t in threads {
        let _ = t.join();
    }
}

/// Waits for a free slot, then serves `stream` on its own thread. False on shutdown.
fn spawn_connection(shared: &Arc<Shared>, stream: TcpStream) -> bool {
    let mut conns = lock(&shared.conns);
    while conns.sockets.len() >= MAX_CONNECTIONS {
        if shared.is_shut_down() {
            return false;
        }
        conns = shared.conn_closed.wait(conns).unwrap_or_else(PoisonError::into_inner);
    }
    if shared.is_shut_down() {
        return false;
    }
    let Ok(handle) = stream.try_clone() else {
        return true;
    };
    let id = conns.next_id;
    conns.next_id += 1;
    conns.sockets.insert(id, handle);
    conns.threads.retain(|t| !t.is_finished());
    let shared = Arc::clone(shared);
    let spawned = thread::Builder::new().name("fasthog-receiver-conn".into()).spawn(move || {
        serve(&shared, stream);
        lock(&shared.conns).sockets.remove(&id);
        shared.conn_closed.notify_all();
    });
    match spawned {
        Ok(t) => conns.threads.push(t),
        Err(_) => drop(conns.sockets.remove(&id)),
    }
    true
}

/// Buffers reused across the requests of one connection.
#[derive(Default)]
struct Buffers {
    line: Vec<u8>,
    body: Vec<u8>,
    inflated: Vec<u8>,
}

/// Serves requests on one connection until either side closes it.
fn serve(shared: &Shared, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let mut writer = stream;
    let mut bufs = Buffers::default();
    while !shared.is_shut_down() {
        match handle_request(shared, &mut reader, &mut writer, &mut bufs) {
            Ok(true) => {}
            Ok(false) | Err(_) => break,
        }
    }
}

/// Handles one request. Returns whether the connection stays open.
fn handle_request(
    shared: &Shared,
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    bufs: &mut Buffers,
) -> io::Result<bool> {
    let head = match http::read_head(reader, &mut bufs.line) {
        Ok(Some(head)) => head,
        Ok(None) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            let r = Rejection::new(400, "bad_request", format!("malformed HTTP request: {e}"));
            http::write_response(writer, 400, &[], &r.body(), false)?;
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    let mut record = RequestRecord::new(&head, Instant::now());
    if !is_batch_path(&head.path) || head.method != "POST" {
        return refuse_route(shared, reader, writer, bufs, &head, record);
    }

    let limit = shared.body_limit.load(Ordering::Relaxed);
    if head.expect_continue {
        if head.content_length.is_some_and(|n| n > limit as u64) {
            // The client waits for our word before sending: refuse, and close to skip its body.
            finish(shared, record, 413, 0);
            too_large(writer, limit, false)?;
            return Ok(false);
        }
        http::write_continue(writer)?;
    }
    let (sent, body) = http::read_body(reader, &head, limit, &mut bufs.body)?;
    record.body_len = sent as usize;
    if let Body::TooLarge { drained } = body {
        let keep = head.keep_alive && drained;
        finish(shared, record, 413, sent);
        too_large(writer, limit, keep)?;
        return Ok(keep);
    }

    // Faults are consumed one per request, before validation.
    let fault = lock(&shared.faults).pop_front();
    let fault_delay = match fault {
        Some(Fault::Delay(d)) => Some(d),
        _ => None,
    };
    let delay = *lock(&shared.delay);
    for d in [delay, fault_delay].into_iter().flatten() {
        if !shared.sleep(d) {
            return Ok(false);
        }
    }

    // Checked even under a fault, so that the log says what the request carried.
    record.gzip = capture::is_gzip(&bufs.body);
    let max_inflated = shared.inflated_limit.load(Ordering::Relaxed);
    let checked =
        capture::decode(&bufs.body, head.gzip_hint(), max_inflated, &mut bufs.inflated).map(|json| {
            let rules = Rules {
                max_event_bytes: shared.max_event_bytes,
                expected_api_key: shared.expected_api_key.as_deref(),
            };
            let checked = capture::check(json, &rules);
            record.fill(&checked, !matches!(shared.store, Store::CountOnly));
            (json, checked)
        });

    let reply = match fault {
        Some(Fault::Hang) => {
            finish(shared, record, 0, sent);
            shared.wait_for_shutdown();
            return Ok(false);
        }
        Some(Fault::Drop) => {
            finish(shared, record, 0, sent);
            return Ok(false);
        }
        Some(Fault::Status { code, retry_after }) => Reply::fault(code, retry_after),
        Some(Fault::StatusBody { code, retry_after, body }) => Reply { status: code, retry_after, body },
        Some(Fault::StoreThen(code)) => {
            if let Ok((json, c)) = &checked {
                if c.verdict.is_ok() {
                    let _ = store(shared, json, c);
                }
            }
            Reply::fault(code, None)
        }
        Some(Fault::Delay(_)) | None => accept(shared, checked),
    };
    let retry_after: Vec<(&str, &str)> =
        reply.retry_after.iter().map(|v| ("Retry-After", v.as_str())).collect();
    finish(shared, record, reply.status, sent);
    http::write_response(writer, reply.status, &retry_after, &reply.body, head.keep_alive)?;
    Ok(head.keep_alive)
}

fn is_batch_path(path: &str) -> bool {
    path == "/batch" || path == "/batch/"
}

/// Answers a request that is not `POST /batch`: 404, or 405 on `/batch`.
fn refuse_route(
    shared: &Shared,
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    bufs: &mut Buffers,
    head: &Head,
    mut record: RequestRecord,
) -> io::Result<bool> {
    // Read the body anyway, to keep the connection in step.
    let (sent, body) = http::read_body(reader, head, 0, &mut bufs.body)?;
    record.body_len = sent as usize;
    let keep = head.keep_alive && body != (Body::TooLarge { drained: false });
    let (status, code, allow) = if is_batch_path(&head.path) {
        (405, "method_not_allowed", &[("Allow", "POST")][..])
    } else {
        (404, "not_found", &[][..])
    };
    let r = Rejection::new(status, code, format!("{} {}", head.method, head.path));
    finish(shared, record, status, sent);
    http::write_response(writer, status, allow, &r.body(), keep)?;
    Ok(keep)
}

/// The answer to a `/batch` request.
struct Reply {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

impl Reply {
    fn refusal(r: &Rejection) -> Reply {
        Reply { status: r.status, retry_after: None, body: r.body() }
    }

    /// An injected status: `{"status":"Ok"}` for a 2xx (a silent drop, like a project over
    /// quota), an error body otherwise.
    fn fault(status: u16, retry_after: Option<String>) -> Reply {
        let body = if (200..300).contains(&status) {
            OK_BODY.to_string()
        } else {
            let detail = format!("fault injected by the receiver: {status}");
            Rejection::new(status, "injected_fault", detail).body()
        };
        Reply { status, retry_after, body }
    }
}

/// The normal answer: store and 200 if the request passed the checks, else the refusal.
fn accept(shared: &Shared, checked: Result<(&[u8], capture::Checked), Rejection>) -> Reply {
    let (json, checked) = match checked {
        Ok(ok) => ok,
        Err(r) => return Reply::refusal(&r),
    };
    if let Err(r) = &checked.verdict {
        return Reply::refusal(r);
    }
    match store(shared, json, &checked) {
        Ok(()) => Reply { status: 200, retry_after: None, body: OK_BODY.to_string() },
        Err(e) => Reply::refusal(&Rejection::new(500, "store_failed", e.to_string())),
    }
}

fn too_large(writer: &mut TcpStream, limit: usize, keep: bool) -> io::Result<()> {
    let r = Rejection::new(413, "payload_too_large", format!("body is over {limit} bytes"));
    http::write_response(writer, 413, &[], &r.body(), keep)
}

/// Stores an accepted request's events and wakes `wait_for_events`.
fn store(shared: &Shared, json: &[u8], checked: &capture::Checked) -> io::Result<()> {
    let prepared = State::prepare(&shared.store, json);
    lock(&shared.state).store(prepared, checked.events, &checked.uuids)?;
    shared.stored.notify_all();
    Ok(())
}

/// Counts and logs a finished request (status 0: no response was sent). Called before the
/// response is written, so a client that has its answer sees its request counted.
fn finish(shared: &Shared, mut record: RequestRecord, status: u16, bytes: u64) {
    record.status = status;
    lock(&shared.state).record(record, bytes);
}

impl RequestRecord {
    fn new(head: &Head, at: Instant) -> RequestRecord {
        RequestRecord {
            status: 0,
            path: head.path.clone(),
            gzip: false,
            content_encoding: head.content_encoding.clone(),
            query: head.query.clone(),
            content_type: head.content_type.clone(),
            body_len: 0,
            event_count: 0,
            sent_at: None,
            uuids: Vec::new(),
            api_key_ok: false,
            at,
        }
    }

    /// Copies what the check learned; uuid strings only when `with_uuids` (not in counting
    /// mode, where they would cost more than the request).
    fn fill(&mut self, checked: &capture::Checked, with_uuids: bool) {
        self.event_count = checked.events;
        self.sent_at = checked.sent_at.clone();
        self.api_key_ok = checked.api_key_ok;
        if with_uuids {
            self.uuids = checked.uuids.iter().map(|&u| capture::format_uuid(u)).collect();
        }
    }
}

/// Connects to the listener once so that a blocked `accept` returns and sees the shutdown.
pub(crate) fn wake_listener(addr: SocketAddr) {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
}
