//! The HTTP transport on ureq 3: gzip by default, rustls for https, reused connections,
//! bounded response reads, and the blocking call moved off the flusher's executor.
//!
//! Proxy, CA and TLS settings are ureq's: [`HttpTransport::new`] keeps ureq's defaults (a proxy
//! from `ALL_PROXY`/`HTTPS_PROXY`/`HTTP_PROXY`, minus `NO_PROXY`; Mozilla's roots, or the
//! system's with the `platform-verifier` feature), and [`HttpTransport::with_agent`] takes an
//! agent configured any other way.

use std::io::Write as _;
use std::string::String;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use std::vec::Vec;

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::transport::{parse_retry_after, Request, Response, Transport, TransportError, DETAIL_BYTES};

/// `POST {host}/batch/` over ureq. Each send compresses the body on the calling thread and
/// runs the blocking HTTP exchange on the `blocking` thread pool, so the flusher keeps draining
/// lanes (and can abandon the request at a shutdown deadline) while it waits.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    agent: ureq::Agent,
    url: Arc<str>,
    gzip: Option<Compression>,
    /// Buffers reused between sends (lost, and made anew, when a send is abandoned).
    plain: Vec<u8>,
    gzipped: Vec<u8>,
}

impl HttpTransport {
    /// A transport posting to `{host}/batch/` with these timeouts. `gzip_level` 1-9, or `None`
    /// for plain JSON (no compression hint is ever sent with a plain body).
    pub fn new(host: &str, connect_timeout: Duration, timeout: Duration, gzip_level: Option<u32>) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(connect_timeout))
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("fasthog/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(4);
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
        Self::with_agent(config.build().into(), host, gzip_level)
    }

    /// A transport posting to `{host}/batch/` through an agent you configured: a proxy, an
    /// extra CA, client certificates, native-tls. Use [`crate::ureq`] (the ureq this crate is
    /// built with) to make it, and pass the transport to
    /// [`Builder::build_with_transport`](crate::Builder::build_with_transport). The agent's
    /// timeouts apply (set `timeout_global`: the builder's are not used); HTTP error statuses
    /// are returned to the flusher whatever the agent's `http_status_as_error`.
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
        HttpTransport {
            agent,
            url: batch_url(host).into(),
            gzip: gzip_level.map(|l| Compression::new(l.clamp(1, 9))),
            plain: Vec::new(),
            gzipped: Vec::new(),
        }
    }

    /// The request body, concatenated into a reused buffer (a memcpy; compression happens
    /// later, off the flusher's thread).
    fn body(&mut self, request: &Request<'_>) -> Vec<u8> {
        let mut body = core::mem::take(&mut self.plain);
        body.clear();
        body.reserve(request.len());
        for part in request.parts() {
            body.extend_from_slice(part);
        }
        body
    }
}

/// `{host}/batch/`, tolerating a trailing slash on the host.
pub(crate) fn batch_url(host: &str) -> String {
    let mut url = String::from(host.trim_end_matches('/'));
    url.push_str("/batch/");
    url
}

impl Transport for HttpTransport {
    async fn send(&mut self, request: Request<'_>) -> Result<Response, TransportError> {
        let plain = self.body(&request);
        let mut gzipped = core::mem::take(&mut self.gzipped);
        let (agent, url, level) = (self.agent.clone(), self.url.clone(), self.gzip);
        // Compression and the HTTP exchange both run on the blocking pool: the flusher's
        // thread goes on draining lanes and encoding the next batch meanwhile.
        let (result, plain, gzipped) = blocking::unblock(move || {
            let result = match level {
                Some(level) => {
                    gzipped.clear();
                    let mut gz = GzEncoder::new(gzipped, level);
                    // Writing to a Vec cannot fail.
                    let _ = gz.write_all(&plain);
                    gzipped = gz.finish().unwrap_or_default();
                    post(&agent, &url, &gzipped, true)
                }
                None => post(&agent, &url, &plain, false),
            };
            (result, plain, gzipped)
        })
        .await;
        self.plain = plain;
        self.gzipped = gzipped;
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
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now));
    let detail =
        resp.body_mut().with_config().limit(DETAIL_BYTES as u64 * 4).read_to_vec().unwrap_or_default();
    Ok(Response::new(resp.status().as_u16()).with_retry_after_ms(retry_after).with_detail(&detail))
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
