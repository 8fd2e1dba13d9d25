//! The HTTP transport on ureq 3: gzip by default, rustls for https, reused connections,
//! bounded response reads, and the blocking call moved off the flusher's executor.
//!
//! Proxy, CA and TLS settings are ureq's: [`HttpTransport::new`] keeps ureq's defaults (a proxy
//! from `ALL_PROXY`/`HTTPS_PROXY`/`HTTP_PROXY`, minus `NO_PROXY`; Mozilla's roots, or the
//! system's with the `platform-verifier` feature), and [`HttpTransport::with_agent`] takes an
//! agent configured any other way.

use std::string::String;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use std::vec::Vec;

use super::gzip::GzipBody;

use crate::transport::{Request, Response, Transport, TransportError, DETAIL_KEPT};

/// `POST {host}/batch/` over ureq. Each send copies the body into a buffer and runs the
/// compression and the blocking HTTP exchange on the `blocking` thread pool, so the flusher
/// keeps draining lanes (and can abandon the request at a shutdown deadline) while it waits.
/// The buffers and the gzip compressor are reused from one send to the next.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    agent: ureq::Agent,
    url: Arc<str>,
    /// Buffers and compressor reused between sends (lost, and made anew, when a send is
    /// abandoned at a shutdown deadline).
    plain: Vec<u8>,
    gzipped: Vec<u8>,
    gzip: Option<GzipBody>,
    gzip_level: Option<u32>,
}

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
            plain: Vec::new(),
            gzipped: Vec::new(),
            gzip: gzip_level.map(GzipBody::new),
            gzip_level,
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
        // Taken for the send; a send abandoned at the deadline loses it (a new one is made).
        let mut gzip = self.gzip.take().or_else(|| self.gzip_level.map(GzipBody::new));
        let (agent, url) = (self.agent.clone(), self.url.clone());
        // Compression and the HTTP exchange both run on the blocking pool: the flusher's
        // thread goes on draining lanes and encoding the next batch meanwhile.
        let (result, plain, gzipped, gzip) = blocking::unblock(move || {
            let result = match &mut gzip {
                Some(gz) => {
                    gz.compress(&plain, &mut gzipped);
                    post(&agent, &url, &gzipped, true)
                }
                None => post(&agent, &url, &plain, false),
            };
            (result, plain, gzipped, gzip)
        })
        .await;
        self.plain = plain;
        self.gzipped = gzipped;
        self.gzip = gzip;
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
/// `no_std` [`crate::transport::parse_retry_after`] reads IMF-fixdate only.)
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
