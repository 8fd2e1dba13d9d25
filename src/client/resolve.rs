//! A name resolver that remembers. ureq 3 resolves the host before every request, even one
//! that reuses a pooled connection, and with a request timeout set it does so on a thread of
//! its own: a thread started, and a lookup made, per request (3,844 threads in a 5 s run at
//! 760 requests/s, found with `strace -c`). This one asks ureq's resolver once per
//! [`TTL`], and again after a connection failed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a host's addresses are used before they are looked up again: DNS changes reach
/// the client within a minute, as they do a browser's.
pub(crate) const TTL: Duration = Duration::from_secs(60);

/// ureq's resolver behind a one-entry cache (a client posts to one host). Clones share it.
#[derive(Debug, Default, Clone)]
pub(crate) struct CachingResolver {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    last: Mutex<Option<Resolved>>,
    lookup: DefaultResolver,
}

#[derive(Debug)]
struct Resolved {
    uri: Uri,
    at: Instant,
    addrs: ResolvedSocketAddrs,
}

impl CachingResolver {
    /// Drops the remembered addresses: the next request looks the host up again.
    pub(crate) fn forget(&self) {
        *self.last() = None;
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Option<Resolved>> {
        self.shared.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn remembered(&self, uri: &Uri, now: Instant) -> Option<ResolvedSocketAddrs> {
        let last = self.last();
        let r = last.as_ref()?;
        let same_host = r.uri.scheme() == uri.scheme() && r.uri.authority() == uri.authority();
        (same_host && now.saturating_duration_since(r.at) < TTL).then(|| r.addrs.clone())
    }
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let now = Instant::now();
        if let Some(addrs) = self.remembered(uri, now) {
            return Ok(addrs);
        }
        let addrs = self.shared.lookup.resolve(uri, config, timeout)?;
        *self.last() = Some(Resolved { uri: uri.clone(), at: now, addrs: addrs.clone() });
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    fn resolve(r: &CachingResolver, uri: &str) -> ResolvedSocketAddrs {
        let uri: Uri = uri.parse().unwrap();
        r.resolve(&uri, &Config::default(), NextTimeout::default()).expect("resolved")
    }

    #[test]
    fn remembers_one_host_for_its_ttl_and_forgets_on_request() {
        let r = CachingResolver::default();
        let (a, now) = ("http://127.0.0.1:8010/batch/".parse::<Uri>().unwrap(), Instant::now());
        assert!(r.remembered(&a, now).is_none(), "nothing before the first lookup");
        let addrs = resolve(&r, "http://127.0.0.1:8010/batch/");
        assert_eq!(addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["127.0.0.1:8010"]);
        let now = Instant::now();
        assert!(r.remembered(&a, now).is_some(), "the same host: remembered");
        assert!(r.remembered(&"http://127.0.0.1:8010/other".parse().unwrap(), now).is_some(), "any path");
        assert!(
            r.remembered(&"http://127.0.0.1:8011/batch/".parse().unwrap(), now).is_none(),
            "another port"
        );
        assert!(
            r.remembered(&"https://127.0.0.1:8010/batch/".parse().unwrap(), now).is_none(),
            "another scheme"
        );
        assert!(r.remembered(&a, now + TTL).is_none(), "stale after the TTL");
        r.clone().forget();
        assert!(r.remembered(&a, now).is_none(), "forgotten (clones share the cache)");
        // Another host replaces the one remembered.
        resolve(&r, "http://127.0.0.1:8011/batch/");
        assert!(r.remembered(&a, Instant::now()).is_none());
    }
}
