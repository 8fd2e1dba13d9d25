//! The HTTP transport on ureq 3: gzip by default, rustls for https, reused connections,
//! bounded response reads, the blocking call on sender threads of its own (off the flusher's
//! executor), and the host looked up once a minute rather than per request.
//!
//! Proxy, CA and TLS settings are ureq's: [`HttpTransport::new`] keeps ureq's defaults (a proxy
//! from `ALL_PROXY`/`HTTPS_PROXY`/`HTTP_PROXY`, minus `NO_PROXY`, and never for a host on this
//! machine; Mozilla's roots, or the system's with the `platform-verifier` feature), and
//! [`HttpTransport::with_agent`] takes an agent configured any other way.

use std::string::String;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use std::vec::Vec;

use super::gzip::GzipBody;
use super::resolve::CachingResolver;

use crate::transport::{Request, Response, Transport, TransportError, DETAIL_KEPT};

/// `POST {host}/batch/` over ureq. Each send hands the body to a *sender*: a thread of the
/// transport's own (`fasthog-sender`) that compresses it and runs the blocking HTTP exchange,
/// so the flusher keeps draining lanes (and can abandon the request at a shutdown deadline)
/// while it waits. Sends run concurrently, one sender each, up to the flusher's
/// `requests_in_flight`. A sender lives as long as the transport, parked while idle, and
/// reuses its body buffers, its gzip compressor and (through the agent) a connection from
/// one request to the next: no thread is started per request.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    agent: ureq::Agent,
    url: Arc<str>,
    /// Senders not in use. One is started when every existing one is busy, so there are as
    /// many as requests were ever in flight at once (one lost, and started anew, for each
    /// send abandoned at a shutdown deadline: its thread ends when that request does).
    idle: Arc<Mutex<Vec<Sender>>>,
    gzip_level: Option<u32>,
    /// The host's addresses, looked up once a minute (not per request, as ureq would), and
    /// forgotten when a request is refused or times out. `None` for an agent the user
    /// configured.
    resolver: Option<CachingResolver>,
}

/// The flusher's end of a sender thread.
struct Sender {
    /// The body's buffers while the sender is idle (they travel with each request).
    body: Option<Body>,
    to_thread: async_channel::Sender<Body>,
    from_thread: async_channel::Receiver<(Result<Response, TransportError>, Body)>,
}

/// What one request needs, reused: the body, its compressed form, the compressor.
struct Body {
    plain: Vec<u8>,
    gzipped: Vec<u8>,
    gzip: Option<GzipBody>,
}

/// Lengths only: the buffers hold the last request, and with it the API key.
impl core::fmt::Debug for Sender {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let idle = self.body.as_ref().map(|b| (b.plain.capacity(), b.gzipped.capacity(), b.gzip.is_some()));
        f.debug_struct("Sender").field("idle (plain, gzipped capacity; gzip)", &idle).finish_non_exhaustive()
    }
}

/// Idle connections the agent keeps per host: one per request in flight, at the most.
const IDLE_CONNECTIONS: usize = crate::flusher::MAX_IN_FLIGHT;

impl HttpTransport {
    /// A transport posting to `{host}/batch/` with these timeouts. `gzip_level` 1-9, or `None`
    /// for plain JSON (no compression hint is ever sent with a plain body).
    pub fn new(host: &str, connect_timeout: Duration, timeout: Duration, gzip_level: Option<u32>) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(connect_timeout))
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            // Never follow a redirect: ureq would follow a 301/302/303 as a body-less GET, the
            // target would answer 200, and every event would be counted sent. A 3xx is returned
            // as it is, and the flusher fails the batch naming the `Location`.
            .max_redirects(0)
            .user_agent(concat!("fasthog/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(IDLE_CONNECTIONS)
            .max_idle_connections(IDLE_CONNECTIONS.max(10))
            .proxy(proxy_for(host, ureq::Proxy::try_from_env()));
        #[cfg(not(feature = "rustls"))]
        if host.starts_with("https://") {
            log::warn!(
                "fasthog: {host} needs TLS, and fasthog was built without a TLS feature \
                 (`rustls`): every request will fail; enable it or use HttpTransport::with_agent"
            );
        }
        #[cfg(feature = "platform-verifier")]
        let config = config.tls_config(
            ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build(),
        );
        let resolver = CachingResolver::default();
        let connector = ureq::unversioned::transport::DefaultConnector::new();
        let agent = ureq::Agent::with_parts(config.build(), connector, resolver.clone());
        HttpTransport { resolver: Some(resolver), ..Self::with_agent(agent, host, gzip_level) }
    }

    /// A transport posting to `{host}/batch/` through an agent you configured: a proxy, an
    /// extra CA, client certificates, native-tls. Use [`crate::ureq`] (the ureq this crate is
    /// built with) to make it, and pass the transport to
    /// [`Builder::build_with_transport`](crate::Builder::build_with_transport). The agent's
    /// timeouts apply (set `timeout_global`: the builder's are not used); HTTP error statuses
    /// are returned to the flusher whatever the agent's `http_status_as_error`. Give the agent
    /// `max_idle_connections_per_host` of at least the client's `requests_in_flight`, or
    /// requests beyond it open a new connection each. Such an agent resolves the host as ureq
    /// does, before every request (with a timeout set, on a thread started for the lookup);
    /// [`HttpTransport::new`]'s remembers the addresses for a minute.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use fasthog::{client::HttpTransport, ureq, Client};
    ///
    /// let agent: ureq::Agent = ureq::Agent::config_builder()
    ///     .proxy(Some(ureq::Proxy::new("http://proxy.internal:3128")?))
    ///     .timeout_global(Some(Duration::from_secs(5)))
    ///     .build()
    ///     .into();
    /// let host = "https://eu.i.posthog.com";
    /// let transport = HttpTransport::with_agent(agent, host, Some(1));
    /// let client = Client::builder("phc_project_key").host(host).build_with_transport(transport)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_agent(agent: ureq::Agent, host: &str, gzip_level: Option<u32>) -> Self {
        HttpTransport { agent, url: batch_url(host).into(), idle: Arc::default(), gzip_level, resolver: None }
    }

    /// An idle sender, or a new one when all are busy.
    fn take_sender(&self) -> Result<Sender, TransportError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(sender) => Ok(sender),
            None => Sender::start(self.agent.clone(), self.url.clone(), self.gzip_level),
        }
    }
}

impl Sender {
    /// Starts a sender thread: it posts each body it is given and answers with the outcome.
    /// It ends when the transport drops its `Sender`, or when a send abandoned at a shutdown
    /// deadline is no longer there to take the answer.
    fn start(agent: ureq::Agent, url: Arc<str>, gzip_level: Option<u32>) -> Result<Sender, TransportError> {
        let (to_thread, bodies) = async_channel::bounded::<Body>(1);
        let (outcomes, from_thread) = async_channel::bounded(1);
        std::thread::Builder::new()
            .name("fasthog-sender".into())
            .spawn(move || {
                while let Ok(mut body) = bodies.recv_blocking() {
                    let result = body.post(&agent, &url);
                    if outcomes.send_blocking((result, body)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|_| TransportError::Other("could not start a sender thread"))?;
        let body = Body { plain: Vec::new(), gzipped: Vec::new(), gzip: gzip_level.map(GzipBody::new) };
        Ok(Sender { body: Some(body), to_thread, from_thread })
    }

    /// Posts `request` on this sender's thread and waits for the outcome.
    async fn send(&mut self, request: &Request<'_>) -> Result<Response, TransportError> {
        let Some(mut body) = self.body.take() else {
            return Err(TransportError::Other("sender lost its buffers"));
        };
        body.fill(request);
        let gone = || TransportError::Other("sender thread ended");
        self.to_thread.send(body).await.map_err(|_| gone())?;
        let (result, body) = self.from_thread.recv().await.map_err(|_| gone())?;
        self.body = Some(body);
        result
    }
}

impl Body {
    /// Concatenates the request into the reused buffer (a memcpy; compression happens on the
    /// sender's thread).
    fn fill(&mut self, request: &Request<'_>) {
        self.plain.clear();
        self.plain.reserve(request.len());
        for part in request.parts() {
            self.plain.extend_from_slice(part);
        }
    }

    /// Compresses (when set to) and posts the body: the sender thread's work.
    fn post(&mut self, agent: &ureq::Agent, url: &str) -> Result<Response, TransportError> {
        let Body { plain, gzipped, gzip } = self;
        match gzip {
            Some(gz) => {
                gz.compress(plain, gzipped);
                post(agent, url, gzipped, true)
            }
            None => post(agent, url, plain, false),
        }
    }
}

/// The environment's proxy (`from_env`), unless `host` is on this machine: a proxy would reach
/// its own loopback, not ours (Go's `http.ProxyFromEnvironment` makes the same exception).
fn proxy_for(host: &str, from_env: Option<ureq::Proxy>) -> Option<ureq::Proxy> {
    from_env.filter(|_| !is_loopback(host))
}

/// True for a URL whose host is `localhost`, in 127.0.0.0/8 (IPv4-mapped too) or `::1`.
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let name = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let name = name.strip_suffix('.').unwrap_or(name); // a fully qualified `localhost.`
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// `{host}/batch/`, tolerating a trailing slash on the host.
pub(crate) fn batch_url(host: &str) -> String {
    let mut url = String::from(host.trim_end_matches('/'));
    url.push_str("/batch/");
    url
}

impl Transport for HttpTransport {
    async fn send(&self, request: Request<'_>) -> Result<Response, TransportError> {
        let mut sender = self.take_sender()?;
        let result = sender.send(&request).await;
        // The host may have moved (a refused connection, or one that timed out: an old
        // address that drops packets). A slow server's timeout costs one more lookup.
        if let (Err(TransportError::Connect | TransportError::Timeout), Some(resolver)) =
            (&result, &self.resolver)
        {
            resolver.forget();
        }
        // A sender whose thread ended (it cannot, short of a panic in ureq) is not kept.
        if sender.body.is_some() {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(sender);
        }
        result
    }
}

fn post(agent: &ureq::Agent, url: &str, body: &[u8], gzip: bool) -> Result<Response, TransportError> {
    // Statuses are the flusher's to judge, whatever the agent says.
    let mut req = agent.post(url).config().http_status_as_error(false).build();
    req = req.header("Content-Type", "application/json");
    if gzip {
        req = req.header("Content-Encoding", "gzip");
    }
    let mut resp = req.send(body).map_err(map_error)?;
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after_ms(v, SystemTime::now()));
    if resp.status().is_redirection() {
        // What the user needs to fix the host: where the server points.
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("(none)");
        let detail = std::format!("Location: {location}");
        return Ok(Response::new(resp.status().as_u16()).with_detail(detail.as_bytes()));
    }
    // The start of the body, whatever its length (a limit on the whole body read nothing from
    // a long one); a read error keeps what came before it.
    let mut detail = Vec::with_capacity(DETAIL_KEPT);
    let _ = std::io::Read::read_to_end(
        &mut std::io::Read::take(resp.body_mut().as_reader(), DETAIL_KEPT as u64),
        &mut detail,
    );
    Ok(Response::new(resp.status().as_u16()).with_retry_after_ms(retry_after).with_detail(&detail))
}

/// A `Retry-After` value in milliseconds from `now`: delta-seconds, or an HTTP date in any of
/// the three forms RFC 9110 requires a recipient to accept (IMF-fixdate
/// `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`, asctime
/// `Sun Nov  6 08:49:37 1994`), through `httpdate`. 0 for a date in the past. (The core's
/// `no_std` [`crate::transport::parse_retry_after`] reads the same forms for transports without
/// `std`.)
pub(crate) fn retry_after_ms(value: &str, now: SystemTime) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Delta-seconds; more than u64 holds is as good as for ever (the policy caps it).
        return Some(value.parse::<u64>().map_or(u64::MAX, |secs| secs.saturating_mul(1000)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
}

/// ureq's errors, mapped to the contract's kinds. The texts name no URL or key.
fn map_error(err: ureq::Error) -> TransportError {
    match err {
        ureq::Error::Timeout(_) => TransportError::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => TransportError::Connect,
        ureq::Error::Io(e) => match e.kind() {
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound => TransportError::Connect,
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => TransportError::Timeout,
            _ => TransportError::Io,
        },
        // Also an `https://` host without a TLS feature (no TLS connector).
        ureq::Error::Tls(_) | ureq::Error::TlsRequired => TransportError::Other("TLS error"),
        #[cfg(feature = "rustls")]
        ureq::Error::Rustls(_) => TransportError::Other("TLS error"),
        _ => TransportError::Other("HTTP protocol error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn a_host_on_this_machine_is_not_reached_through_the_environments_proxy() {
        let proxy = || Some(ureq::Proxy::new("http://proxy.invalid:3128").unwrap());
        for host in [
            "http://127.0.0.1:8000",
            "http://localhost",
            "https://LOCALHOST:443/",
            "http://127.8.9.10",
            "http://[::1]:8000/",
            "http://user:pw@127.0.0.1:1/x",
            "http://localhost.:8000",
            "http://[::ffff:127.0.0.1]:8000",
        ] {
            assert!(proxy_for(host, proxy()).is_none(), "{host}");
        }
        for host in [
            "https://us.i.posthog.com",
            "http://10.0.0.1:8000",
            "http://[::2]",
            "http://localhost.example.com",
        ] {
            assert!(proxy_for(host, proxy()).is_some(), "{host}");
        }
        assert!(proxy_for("https://us.i.posthog.com", None).is_none());
    }

    /// A loopback server that answers one request with 200, then closes its connection and
    /// its port. (The packaged crate's tests cannot use the workspace's receiver.)
    fn serve_one_request() -> (String, std::thread::JoinHandle<()>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = std::format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else { return };
            let mut reader = BufReader::new(stream);
            let (mut line, mut length) = (String::new(), 0);
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let _ = reader.by_ref().take(length).read_to_end(&mut Vec::new());
            let _ = reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
        });
        (url, server)
    }

    #[test]
    fn debug_output_never_holds_the_last_body() {
        // The buffers keep the last request, `"api_key"` included, for the next one.
        let (url, server) = serve_one_request();
        let transport = HttpTransport::new(&url, Duration::from_secs(2), Duration::from_secs(5), Some(1));
        let head = b"{\"api_key\":\"phc_secret_debug_key_000000000000000000\",\"batch\":[";
        let request = Request { head, events: b"{\"event\":\"e\"}", tail: b"]}", event_count: 1, attempt: 1 };
        assert_eq!(futures_lite::future::block_on(transport.send(request)).expect("sent").status, 200);
        server.join().unwrap();
        let idle = transport.idle.lock().unwrap();
        assert_eq!(idle.len(), 1, "the sender is back, with the body in its buffers");
        let body = idle[0].body.as_ref().expect("buffers");
        assert!(body.plain.windows(6).any(|w| w == b"secret"), "the body is kept");
        drop(idle);
        let debug = std::format!("{transport:?}");
        assert!(!debug.contains("secret") && !debug.contains("112, 104, 99"), "{debug}"); // "phc" as bytes
        assert!(debug.contains("Sender"), "{debug}");
    }

    #[test]
    fn the_agent_looks_the_host_up_through_the_remembering_resolver() {
        // (ureq's own resolver starts a thread and makes a lookup for every request.)
        let (url, server) = serve_one_request();
        let transport = HttpTransport::new(&url, Duration::from_secs(2), Duration::from_secs(5), None);
        let resolver = transport.resolver.clone().expect("HttpTransport::new's own resolver");
        let uri: ureq::http::Uri = transport.url.parse().unwrap();
        assert!(resolver.remembered(&uri, std::time::Instant::now()).is_none());
        let head = b"{\"api_key\":\"phc_test_key_0000000000000000000000000\",\"batch\":[";
        let request = Request {
            head,
            events: b"{\"event\":\"e\",\"distinct_id\":\"u\"}",
            tail: b"]}",
            event_count: 1,
            attempt: 1,
        };
        let response = futures_lite::future::block_on(transport.send(request)).expect("sent");
        assert_eq!(response.status, 200);
        assert!(resolver.remembered(&uri, std::time::Instant::now()).is_some(), "the agent asked it");
        // A connection refused (the server is gone) forgets the address.
        server.join().unwrap();
        let refused = futures_lite::future::block_on(transport.send(request));
        assert!(matches!(refused, Err(TransportError::Connect)), "{refused:?}");
        assert!(
            resolver.remembered(&uri, std::time::Instant::now()).is_none(),
            "forgotten after a refused connection"
        );

        // A request that times out (an address that takes the connection and never answers)
        // forgets it too.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap(); // never accepts
        let url = std::format!("http://{}", silent.local_addr().unwrap());
        let transport = HttpTransport::new(&url, Duration::from_secs(2), Duration::from_millis(300), None);
        let resolver = transport.resolver.clone().expect("HttpTransport::new's own resolver");
        let uri: ureq::http::Uri = transport.url.parse().unwrap();
        let config = ureq::config::Config::default();
        ureq::unversioned::resolver::Resolver::resolve(&resolver, &uri, &config, Default::default())
            .expect("resolved");
        assert!(resolver.remembered(&uri, std::time::Instant::now()).is_some());
        let timed_out = futures_lite::future::block_on(transport.send(request));
        assert!(matches!(timed_out, Err(TransportError::Timeout)), "{timed_out:?}");
        assert!(resolver.remembered(&uri, std::time::Instant::now()).is_none(), "forgotten after a timeout");
    }

    #[test]
    fn retry_after_in_every_http_date_form() {
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        for date in
            ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"]
        {
            assert_eq!(retry_after_ms(date, now), Some(7000), "{date}");
            assert_eq!(retry_after_ms(date, now + Duration::from_secs(60)), Some(0), "{date} in the past");
        }
        assert_eq!(retry_after_ms(" 12 ", now), Some(12_000));
        assert_eq!(retry_after_ms("99999999999999999999", now), Some(u64::MAX));
        assert_eq!(retry_after_ms("soon", now), None);
        assert_eq!(retry_after_ms("-3", now), None);
    }
}
