//! Delivery end to end: the real `Client` (smol flusher thread, ureq transport) against the
//! local receiver over loopback, with faults. Each scenario ends with a shutdown that must
//! account for every event (`captured == outcomes()` (sent + failed + dropped + rejected + sampled + filtered), `pending == 0`)
//! and a check that no log line holds the API key.
//!
//! Timing: no assertion depends on a tight bound; waits are asserted as minimums (Retry-After)
//! or against generous ceilings (a shutdown deadline + 1 s).
#![cfg(feature = "std")]

#[path = "common/delivery.rs"]
mod support;

#[path = "common/faults.rs"]
mod faults;

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fasthog::flusher::RetryPolicy;
use fasthog::{Builder, Captured, Client, Error, Event, Static};
use fasthog_receiver::{Fault, Receiver, ReceiverConfig, RequestRecord};
use support::*;

const FLUSH: Duration = Duration::from_secs(10);
const DEADLINE: Duration = Duration::from_secs(5);

fn receiver() -> Receiver {
    install_logger();
    Receiver::start(ReceiverConfig::default()).expect("a loopback port")
}

fn status(code: u16) -> Fault {
    Fault::Status { code, retry_after: None }
}

fn uuid_set(records: &[RequestRecord]) -> HashSet<String> {
    records.iter().flat_map(|r| r.uuids.iter().cloned()).collect()
}

fn is_uuid_v7(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && b.iter().enumerate().all(|(i, c)| [8, 13, 18, 23].contains(&i) || c.is_ascii_hexdigit())
        && b[14] == b'7'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

// ---------------------------------------------------------------------------------------------
// Normal delivery
// ---------------------------------------------------------------------------------------------

#[test]
fn gzip_delivery_sends_header_and_gzip_body_with_enrichment() {
    let r = receiver();
    let client = builder(&r.url()).build().unwrap();
    let ids = capture_n(&client, 20, "gz");
    client.flush(FLUSH).expect("flush");
    let requests = r.requests();
    assert!(!requests.is_empty());
    for req in &requests {
        assert_eq!(req.status, 200);
        assert_eq!(req.path, "/batch/");
        assert!(req.gzip, "gzip by default: {req:?}");
        assert_eq!(req.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(req.content_type.as_deref(), Some("application/json"));
        assert!(req.api_key_ok);
        assert!(req.sent_at.is_some(), "sent_at in every request");
    }
    let events = r.events();
    assert_eq!(events.len(), 20);
    let mut uuids = HashSet::new();
    for e in &events {
        let uuid = e["uuid"].as_str().expect("a uuid");
        assert!(is_uuid_v7(uuid), "uuid {uuid} is a v7");
        assert!(uuids.insert(uuid.to_string()), "uuid {uuid} unique");
        assert_eq!(e["event"], "delivery_test");
        assert!(e["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        let p = &e["properties"];
        let id = e["distinct_id"].as_str().unwrap();
        assert!(ids.iter().any(|x| x == id));
        assert_eq!(p["$lib"], "fasthog");
        assert_eq!(p["$lib_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(p["environment"], "delivery-test");
        assert_eq!(p["event_schema_version"], 1);
        assert_eq!(p["is_demo"], false);
        assert_eq!(p["user_id"], id);
        assert_eq!(p["$geoip_disable"], true);
        assert!(p["i"].is_i64());
        assert!(e.get("api_key").is_none());
    }
    let s = finish(&client, DEADLINE);
    assert_eq!((s.captured, s.sent, s.failed, s.retried), (20, 20, 0, 0));
}

#[test]
fn plain_delivery_sends_no_content_encoding() {
    let r = receiver();
    let client = builder(&r.url()).gzip(None).build().unwrap();
    capture_n(&client, 5, "plain");
    client.flush(FLUSH).expect("flush");
    let requests = r.requests();
    assert!(!requests.is_empty());
    for req in &requests {
        assert_eq!(req.status, 200);
        assert!(!req.gzip, "a plain body: {req:?}");
        assert_eq!(req.content_encoding, None, "no compression hint with a plain body");
        assert_eq!(req.query, None, "no ?compression= hint either");
    }
    assert_eq!(r.events().len(), 5);
    let s = finish(&client, DEADLINE);
    assert_eq!((s.sent, s.failed), (5, 0));
}

#[test]
fn uuids_stay_and_sent_at_is_refreshed_on_retry() {
    let r = receiver();
    r.push_faults([status(503), status(503)]);
    let client = builder(&r.url()).build().unwrap();
    capture_n(&client, 7, "retry");
    client.flush(FLUSH).expect("flush");
    let requests = r.requests();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    assert_eq!(requests.iter().map(|q| q.status).collect::<Vec<_>>(), [503, 503, 200]);
    assert_eq!(requests[0].uuids.len(), 7);
    assert_eq!(requests[0].uuids, requests[1].uuids, "a retry resends the same uuids");
    assert_eq!(requests[1].uuids, requests[2].uuids);
    let sent_at: Vec<&str> = requests.iter().map(|q| q.sent_at.as_deref().expect("sent_at")).collect();
    assert!(sent_at[0] < sent_at[1] && sent_at[1] < sent_at[2], "sent_at refreshed per attempt: {sent_at:?}");
    let st = r.stats();
    assert_eq!((st.events_accepted, st.unique_uuids), (7, 7));
    let s = finish(&client, DEADLINE);
    assert_eq!((s.sent, s.failed, s.retried), (7, 0, 2));
}

#[test]
fn flush_returns_once_everything_before_it_is_delivered() {
    let r = receiver();
    // Small batches: several requests, all of which must be in before flush returns.
    let client = builder(&r.url()).batch_size(16).build().unwrap();
    let ids = capture_n(&client, 100, "flush");
    client.flush(FLUSH).expect("flush");
    // No waiting: the receiver logs each request before answering it.
    assert_eq!(r.stats().events_accepted, 100);
    let got: HashSet<String> =
        r.events().iter().map(|e| e["distinct_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(got, ids.into_iter().collect::<HashSet<_>>());
    // A second flush with nothing new returns at once.
    let t = Instant::now();
    client.flush(FLUSH).expect("empty flush");
    assert!(t.elapsed() < Duration::from_secs(2));
    let s = finish(&client, DEADLINE);
    assert_eq!(s.sent, 100);
}

#[test]
fn flush_completes_while_other_threads_keep_capturing() {
    let r = receiver();
    let client = builder(&r.url()).build().unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    // Stops the producer even if an assertion below fails (the scope joins it first).
    struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        // A steady stream from another thread, paced so the lanes never fill.
        s.spawn(|| {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = client.capture(&Event::new("background", "bg").prop("i", i));
                i += 1;
                if i > 2_000_000 {
                    break; // a ceiling, whatever happens
                }
                // At most ~1000 events/s: about one per round trip, and light enough for a
                // debug build on a busy machine, so nothing is dropped and every round's
                // events must be delivered. (The deterministic version of this test, with a
                // stream denser than the round trips, is in `flusher_clock.rs`.)
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        for round in 0..5 {
            let ids = capture_n(&client, 10, &format!("round{round}"));
            let t = Instant::now();
            let result = client.flush(Duration::from_secs(5));
            assert!(result.is_ok(), "flush under steady capture: {result:?} after {:?}", t.elapsed());
            let got: HashSet<String> =
                r.events().iter().filter_map(|e| e["distinct_id"].as_str().map(String::from)).collect();
            let missing: Vec<&String> = ids.iter().filter(|id| !got.contains(*id)).collect();
            if !missing.is_empty() {
                std::thread::sleep(Duration::from_millis(200));
                let later: HashSet<String> =
                    r.events().iter().filter_map(|e| e["distinct_id"].as_str().map(String::from)).collect();
                panic!(
                    "round {round}: {missing:?} not delivered before flush returned (after 200 ms more: {:?}); {:?}",
                    missing.iter().filter(|id| !later.contains(**id)).collect::<Vec<_>>(),
                    client.stats()
                );
            }
        }
    });
    let s = finish(&client, DEADLINE);
    assert_eq!((s.failed, s.dropped), (0, 0), "the stream is paced well below what delivery keeps up with");
    assert_eq!(s.sent, r.stats().events_accepted);
}

// ---------------------------------------------------------------------------------------------
// Every status and its outcome
// ---------------------------------------------------------------------------------------------

#[test]
fn status_200_is_sent() {
    let r = receiver();
    let client = builder(&r.url()).build().unwrap();
    capture_n(&client, 3, "ok");
    client.flush(FLUSH).unwrap();
    assert_eq!(r.requests().len(), 1);
    let s = finish(&client, DEADLINE);
    assert_eq!((s.sent, s.failed, s.retried), (3, 0, 0));
}

/// A final refusal: exactly one request, every event failed, one error line with the
/// server's reason (a marker unique to this test) and never the key.
fn final_refusal(code: u16) {
    let r = receiver();
    let marker = format!("reason-marker-{code}-x7");
    r.push_faults([Fault::StatusBody {
        code,
        retry_after: None,
        body: format!(r#"{{"type":"validation_error","code":"test","detail":"{marker}"}}"#),
    }]);
    let client = builder(&r.url()).build().unwrap();
    capture_n(&client, 4, &format!("final{code}"));
    client.flush(FLUSH).unwrap();
    // Give a wrongly scheduled retry time to show up.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(r.requests().len(), 1, "{code} is not retried");
    let s = finish(&client, DEADLINE);
    assert_eq!((s.sent, s.failed, s.retried), (0, 4, 0));
    assert_eq!(r.requests().len(), 1);
    let logged = lines_containing(&marker);
    assert_eq!(logged.len(), 1, "logged once: {logged:?}");
    assert!(logged[0].contains(&format!("HTTP {code}")), "{}", logged[0]);
    assert!(logged[0].contains("4 events"), "{}", logged[0]);
}

#[test]
fn status_400_fails_without_retry_and_logs_the_reason_once() {
    final_refusal(400);
}

#[test]
fn status_401_fails_without_retry_and_logs_the_reason_once() {
    final_refusal(401);
}

#[test]
fn real_401_for_an_unknown_key_names_the_reason_and_hints_at_the_key() {
    install_logger();
    let r = Receiver::start(ReceiverConfig {
        expected_api_key: Some("phc_some_other_project".into()),
        ..Default::default()
    })
    .unwrap();
    let client = builder(&r.url()).build().unwrap();
    capture_n(&client, 2, "unknown-key");
    client.flush(FLUSH).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(r.requests().len(), 1);
    assert_eq!(r.requests()[0].status, 401);
    let s = finish(&client, DEADLINE);
    assert_eq!((s.sent, s.failed), (0, 2));
    let logged = lines_containing("unknown_token");
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].contains("check the project API key"), "{}", logged[0]);
}

#[test]
fn a_server_reason_that_echoes_the_key_is_withheld() {
    let r = receiver();
    r.push_faults([Fault::StatusBody {
        code: 400,
        retry_after: None,
        body: format!(r#"{{"detail":"bad request for token {KEY}","marker":"echo-marker"}}"#),
    }]);
    let client = builder(&r.url()).build().unwrap();
    capture_n(&client, 1, "echo");
    client.flush(FLUSH).unwrap();
    let s = finish(&client, DEADLINE);
    assert_eq!(s.failed, 1);
    let withheld = lines_containing("withheld");
    assert!(!withheld.is_empty(), "the refusal is still logged, without its detail");
}

#[test]
fn a_key_straddling_the_reason_cut_is_withheld_whole() {
    // 140 bytes of text, then the key: a reason cut to 160 bytes before the check held the
    // key's first 20 bytes, and no whole key to find.
    let r = receiver();
    let body = format!("{}{KEY} and more text after the key", "r".repeat(140));
    r.push_faults([Fault::StatusBody { code: 400, retry_after: None, body }]);
    let client = builder(&r.url()).build().unwrap();
    capture_n(&client, 1, "straddle");
    client.flush(FLUSH).unwrap();
    let s = finish(&client, DEADLINE); // checks no fragment of the key was logged
    assert_eq!(s.failed, 1);
    let logged = lines_containing(&"r".repeat(140));
    assert_eq!(logged.len(), 1, "the refusal is logged with the text before the key: {logged:?}");
    assert!(logged[0].contains("withheld"), "{}", logged[0]);
}

#[test]
fn a_redirect_is_not_followed_and_fails_naming_the_location() {
    install_logger();
    // A target that accepts anything: a followed redirect (a body-less GET) would be counted
    // sent though no event reached anyone.
    let target = faults::FaultServer::start(|_| faults::response(200, &[], r#"{"status":"Ok"}"#));
    for code in [301, 302, 303, 307, 308] {
        let location = format!("{}/moved-{code}/batch/", target.url());
        let loc = location.clone();
        let server = faults::FaultServer::start(move |_| faults::response(code, &[("Location", &loc)], ""));
        let client = builder(&server.url()).build().unwrap();
        capture_n(&client, 3, &format!("redirect{code}"));
        client.flush(FLUSH).unwrap();
        let s = finish(&client, DEADLINE);
        assert_eq!((s.sent, s.failed, s.retried), (0, 3, 0), "{code}: a failed delivery, not retried");
        assert_eq!(server.seen().len(), 1, "{code}: one request");
        let logged: Vec<String> = lines()
            .into_iter()
            .filter(|l| l.target.starts_with("fasthog") && l.level == log::Level::Error)
            .map(|l| l.text)
            .filter(|t| t.contains(&location))
            .collect();
        assert_eq!(logged.len(), 1, "{code}: one error line names the Location: {logged:?}");
        assert!(logged[0].contains(&format!("HTTP {code}")), "{}", logged[0]);
    }
    assert!(target.seen().is_empty(), "no redirect followed: {:?}", target.seen());
}

#[test]
fn a_redirect_location_holding_the_key_is_withheld_from_fasthog_lines() {
    install_logger();
    // A key of its own: ureq logs the response head at Debug (the README says so), and this
    // server echoes the key in a header, so the shared key would be found in ureq's line by
    // every other test's check. Only fasthog's lines are checked here.
    const ECHOED: &str = "phc_echoed_in_location_7Qx9";
    let server = faults::FaultServer::start(|_| {
        faults::response(301, &[("Location", &format!("http://127.0.0.1:9/?token={ECHOED}&x=1"))], "")
    });
    let client = Client::builder(ECHOED).host(server.url()).retry(FAST_RETRY).build().unwrap();
    capture_n(&client, 1, "redirect-key");
    client.flush(FLUSH).unwrap();
    assert_eq!(client.shutdown(DEADLINE).unwrap().failed, 1);
    let ours: Vec<String> =
        lines().into_iter().filter(|l| l.target.starts_with("fasthog")).map(|l| l.text).collect();
    assert!(ours.iter().all(|t| !t.contains("echoed_in")), "{ours:?}");
    let named: Vec<&String> = ours.iter().filter(|t| t.contains("?token=[key withheld]&x=1")).collect();
    assert_eq!(named.len(), 1, "{ours:?}");
}

macro_rules! retried_then_sent {
    ($($name:ident: $code:expr,)*) => {$(
        #[test]
        fn $name() {
            let r = receiver();
            r.push_faults([status($code)]);
            let client = builder(&r.url()).build().unwrap();
            capture_n(&client, 5, concat!("retry-", stringify!($code)));
            client.flush(FLUSH).unwrap();
            let requests = r.requests();
            assert_eq!(requests.iter().map(|q| q.status).collect::<Vec<_>>(), [$code, 200]);
            assert_eq!(requests[0].uuids, requests[1].uuids);
            let st = r.stats();
            assert_eq!((st.events_accepted, st.unique_uuids), (5, 5));
            let s = finish(&client, DEADLINE);
            assert_eq!((s.sent, s.failed, s.retried), (5, 0, 1));
        }
    )*};
}

retried_then_sent! {
    status_408_is_retried_then_sent: 408,
    status_429_is_retried_then_sent: 429,
    status_500_is_retried_then_sent: 500,
    status_502_is_retried_then_sent: 502,
    status_503_is_retried_then_sent: 503,
    status_504_is_retried_then_sent: 504,
}

#[test]
fn retryable_statuses_fail_after_four_attempts() {
    assert_eq!(RetryPolicy::DEFAULT.max_attempts, 4, "4 attempts in all by default");
    for code in [408, 429, 500, 502, 503, 504] {
        let r = receiver();
        r.push_faults((0..6).map(|_| status(code)));
        let client = builder(&r.url()).build().unwrap();
        capture_n(&client, 3, &format!("exhaust{code}"));
        client.flush(FLUSH).unwrap();
        assert_eq!(r.requests().len(), 4, "{code}: 4 attempts in all");
        assert!(r.requests().iter().all(|q| q.status == code));
        let s = finish(&client, DEADLINE);
        assert_eq!((s.sent, s.failed, s.retried), (0, 3, 3), "{code}");
        assert_eq!(r.requests().len(), 4);
    }
}

#[test]
fn status_413_splits_the_batch_in_halves_and_sends_both() {
    let r = receiver();
    r.push_faults([status(413)]);
    let client = builder(&r.url()).build().unwrap();
    capture_n(&client, 8, "split");
    client.flush(FLUSH).unwrap();
    let requests = r.requests();
    let shape: Vec<(u16, usize)> = requests.iter().map(|q| (q.status, q.event_count)).collect();
    assert_eq!(shape, [(413, 8), (200, 4), (200, 4)]);
    assert_eq!(uuid_set(&requests[1..]), requests[0].uuids.iter().cloned().collect());
    assert_eq!(r.stats().unique_uuids, 8);
    let s = finish(&client, DEADLINE);
    assert_eq!((s.sent, s.failed, s.retried), (8, 0, 0));
}

#[test]
fn status_413_from_the_body_limit_fails_only_the_event_too_large_alone() {
    let r = receiver();
    let client = builder(&r.url()).gzip(None).build().unwrap();
    let big: &'static str = Box::leak("x".repeat(4000).into_boxed_str());
    let small = || Event::new("sized", "same-length-id").prop("blob", Static("-"));
    let large = || Event::new("sized", "same-length-id").prop("blob", Static(big));
    // Learn the body sizes of each alone.
    assert_eq!(client.capture(&small()), Captured::Queued);
    client.flush(FLUSH).unwrap();
    assert_eq!(client.capture(&large()), Captured::Queued);
    client.flush(FLUSH).unwrap();
    let sizes: Vec<usize> = r.requests().iter().map(|q| q.body_len).collect();
    let (small_len, large_len) = (sizes[0], sizes[1]);
    assert!(large_len > small_len + 3000, "{sizes:?}");
    // Now small fits and large does not: [small, large, small, small] splits down to the
    // large one, which alone is refused.
    r.set_body_limit(small_len * 2 + 500);
    for e in [small(), large(), small(), small()] {
        assert_eq!(client.capture(&e), Captured::Queued);
    }
    client.flush(FLUSH).unwrap();
    // Bodies refused for size are not parsed: their event counts are unknown (0).
    let shape: Vec<(u16, usize)> = r.requests()[2..].iter().map(|q| (q.status, q.event_count)).collect();
    assert_eq!(shape, [(413, 0), (413, 0), (200, 1), (413, 0), (200, 2)], "4 -> 2+2 -> 1+1, 2");
    let s = finish(&client, DEADLINE);
    assert_eq!((s.sent, s.failed, s.retried), (5, 1, 0));
    assert_eq!(r.stats().events_accepted, 5);
    assert!(!lines_containing("one event is too large on its own").is_empty());
}

#[test]
fn a_server_refusing_every_body_with_413_is_backed_off_not_flooded() {
    let r = receiver();
    r.set_body_limit(10); // any body is "too large"
    let client = builder(&r.url()).build().unwrap();
    capture_n(&client, 64, "always413");
    client.flush(FLUSH).unwrap();
    let q = r.requests();
    assert!(q.iter().all(|q| q.status == 413));
    // Halves down to one event (64, 32, ... 1: 7 requests), then that one retried with
    // backoff as for a 5xx (3 more); the batch is then failed. Splitting on without a pause
    // made 127 requests.
    assert_eq!(q.len(), 7 + 3, "{} requests", q.len());
    for w in q[6..].windows(2) {
        assert!(
            w[1].at - w[0].at >= Duration::from_millis(5),
            "backed off between retries: {:?}",
            w[1].at - w[0].at
        );
    }
    let s = finish(&client, DEADLINE);
    assert_eq!((s.sent, s.failed, s.retried), (0, 64, 3));
    assert!(!lines_containing("refused even a single event with HTTP 413").is_empty());
}

fn wall(at: Instant, anchor: (Instant, SystemTime)) -> f64 {
    let t = if at >= anchor.0 { anchor.1 + (at - anchor.0) } else { anchor.1 - (anchor.0 - at) };
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn retry_after_seconds_is_a_minimum_wait() {
    let r = receiver();
    r.push_faults([Fault::Status { code: 429, retry_after: Some("1".into()) }]);
    let client = builder(&r.url()).build().unwrap();
    capture_n(&client, 2, "ra-secs");
    client.flush(FLUSH).unwrap();
    let q = r.requests();
    assert_eq!(q.iter().map(|q| q.status).collect::<Vec<_>>(), [429, 200]);
    let gap = q[1].at - q[0].at;
    assert!(gap >= Duration::from_secs(1), "waited {gap:?}, Retry-After: 1");
    assert!(gap < Duration::from_secs(3), "waited {gap:?}");
    finish(&client, DEADLINE);
}

#[test]
fn retry_after_http_date_is_a_minimum_wait() {
    let r = receiver();
    let anchor = (Instant::now(), SystemTime::now());
    let now = anchor.1.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let until = now + 3; // between 2 and 3 s away
    r.push_faults([Fault::Status { code: 503, retry_after: Some(imf_fixdate(until)) }]);
    let client = builder(&r.url()).build().unwrap();
    capture_n(&client, 2, "ra-date");
    client.flush(FLUSH).unwrap();
    let q = r.requests();
    assert_eq!(q.iter().map(|q| q.status).collect::<Vec<_>>(), [503, 200]);
    let retried_at = wall(q[1].at, anchor);
    assert!(retried_at >= until as f64 - 0.05, "retried at {retried_at}, Retry-After date {until}");
    assert!(q[1].at - q[0].at >= Duration::from_secs(1));
    finish(&client, DEADLINE);
}

#[test]
fn retry_after_rfc850_date_is_a_minimum_wait() {
    // The obsolete forms count too (RFC 9110 5.6.7): before, only IMF-fixdate was read and
    // this date was ignored (a 10 ms backoff instead of 2-3 s).
    let r = receiver();
    let anchor = (Instant::now(), SystemTime::now());
    let until = anchor.1.duration_since(UNIX_EPOCH).unwrap().as_secs() + 3;
    r.push_faults([Fault::Status { code: 503, retry_after: Some(rfc850_date(until)) }]);
    let client = builder(&r.url()).build().unwrap();
    capture_n(&client, 2, "ra-rfc850");
    client.flush(FLUSH).unwrap();
    let q = r.requests();
    assert_eq!(q.iter().map(|q| q.status).collect::<Vec<_>>(), [503, 200]);
    let retried_at = wall(q[1].at, anchor);
    assert!(retried_at >= until as f64 - 0.05, "retried at {retried_at}, Retry-After date {until}");
    finish(&client, DEADLINE);
}

#[test]
fn retry_after_is_clamped_by_max_retry_after() {
    let r = receiver();
    r.push_faults([Fault::Status { code: 429, retry_after: Some("3600".into()) }]);
    let policy = RetryPolicy { max_retry_after_ms: 300, ..FAST_RETRY };
    let client = builder(&r.url()).retry(policy).build().unwrap();
    capture_n(&client, 2, "ra-clamp");
    client.flush(FLUSH).unwrap();
    let q = r.requests();
    assert_eq!(q.iter().map(|q| q.status).collect::<Vec<_>>(), [429, 200]);
    let gap = q[1].at - q[0].at;
    assert!(gap >= Duration::from_millis(300), "clamped wait still a minimum: {gap:?}");
    assert!(gap < Duration::from_secs(3), "an hour's Retry-After clamped to 300 ms: {gap:?}");
    finish(&client, DEADLINE);
}

#[test]
fn partial_write_then_503_resends_the_same_uuids() {
    let r = receiver();
    r.push_faults([Fault::StoreThen(503)]);
    let client = builder(&r.url()).build().unwrap();
    capture_n(&client, 6, "partial");
    client.flush(FLUSH).unwrap();
    let q = r.requests();
    assert_eq!(q.iter().map(|q| q.status).collect::<Vec<_>>(), [503, 200]);
    assert_eq!(q[0].uuids, q[1].uuids);
    let st = r.stats();
    assert_eq!(st.events_accepted, 12, "the receiver stored both copies");
    assert_eq!(st.unique_uuids, 6, "duplicates by uuid only: the server can dedup");
    let s = finish(&client, DEADLINE);
    assert_eq!((s.sent, s.failed), (6, 0), "counted sent once");
}

// ---------------------------------------------------------------------------------------------
// Transport errors
// ---------------------------------------------------------------------------------------------

#[test]
fn connection_refused_is_retried_then_failed() {
    install_logger();
    let port = closed_port();
    let client = builder(&format!("http://{}", port.addr)).build().unwrap();
    capture_n(&client, 3, "refused");
    client.flush(FLUSH).expect("flush returns once the events failed");
    let s = finish(&client, DEADLINE);
    assert_eq!((s.sent, s.failed, s.retried), (0, 3, 3));
    assert!(!lines_containing("could not connect").is_empty());
}

#[test]
fn connect_timeout_is_retried_then_failed() {
    install_logger();
    let Some(backlog) = full_backlog() else {
        eprintln!("skipped: this kernel answers connects beyond the listen backlog");
        return;
    };
    let client = builder(&format!("http://{}", backlog.addr))
        .connect_timeout(Duration::from_millis(200))
        .http_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    capture_n(&client, 2, "connect-timeout");
    let t = Instant::now();
    client.flush(FLUSH).expect("flush");
    assert!(t.elapsed() < Duration::from_secs(5), "4 bounded attempts: {:?}", t.elapsed());
    let s = finish(&client, DEADLINE);
    assert_eq!((s.sent, s.failed, s.retried), (0, 2, 3));
}

#[test]
fn a_request_timeout_is_retried_then_sent() {
    let r = receiver();
    r.push_faults([Fault::Hang]);
    let client = builder(&r.url()).http_timeout(Duration::from_millis(300)).build().unwrap();
    capture_n(&client, 4, "timeout");
    client.flush(FLUSH).unwrap();
    let q = r.requests();
    assert_eq!(q.iter().map(|q| q.status).collect::<Vec<_>>(), [0, 200]);
    assert_eq!(q[0].uuids, q[1].uuids);
    let s = finish(&client, DEADLINE);
    assert_eq!((s.sent, s.failed, s.retried), (4, 0, 1));
}

#[test]
fn a_dropped_connection_is_retried_then_sent() {
    let r = receiver();
    r.push_faults([Fault::Drop, Fault::Drop]);
    let client = builder(&r.url()).build().unwrap();
    capture_n(&client, 4, "drop");
    client.flush(FLUSH).unwrap();
    let q = r.requests();
    assert_eq!(q.iter().map(|q| q.status).collect::<Vec<_>>(), [0, 0, 200]);
    assert_eq!(r.stats().unique_uuids, 4);
    let s = finish(&client, DEADLINE);
    assert_eq!((s.sent, s.failed, s.retried), (4, 0, 2));
}

#[test]
fn shutdown_with_a_hung_server_returns_by_its_deadline_and_fails_everything() {
    let r = receiver();
    r.push_faults((0..8).map(|_| Fault::Hang));
    let client = builder(&r.url())
        .http_timeout(Duration::from_secs(30))
        .flush_interval(Duration::from_millis(20))
        .batch_size(4)
        .build()
        .unwrap();
    capture_n(&client, 10, "hung");
    assert!(wait_for(Duration::from_secs(5), || r.stats().requests >= 1), "a request in flight");
    let deadline = Duration::from_millis(500);
    let t = Instant::now();
    let s = finish(&client, deadline);
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(400), "it waited for the hung request: {took:?}");
    assert!(took <= deadline + Duration::from_secs(1), "{took:?}");
    assert_eq!((s.sent, s.failed), (0, 10));
    assert!(r.stats().events_accepted == 0);
}

// ---------------------------------------------------------------------------------------------
// Drops
// ---------------------------------------------------------------------------------------------

#[test]
fn drops_are_counted_and_warned_about_rate_limited() {
    let r = receiver();
    r.push_faults((0..4).map(|_| Fault::Hang));
    let client = builder(&r.url())
        .lanes(1)
        .max_event_bytes(512)
        .memory(4 * 4096) // four blocks of 4 KiB (the smallest): a lane holds about 250 events
        .batch_size(2)
        .max_batch_events(2)
        .pending_batches(2)
        .http_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut dropped = 0;
    for i in 0..2000u64 {
        if client.capture(&Event::new("flood", "f").prop("i", i)) == Captured::Dropped {
            dropped += 1;
        }
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(dropped > 100, "a stalled server and tiny lanes drop: {dropped}");
    // Let the flusher notice the last drops, then stop it.
    std::thread::sleep(Duration::from_millis(50));
    let s = finish(&client, Duration::from_millis(300));
    assert!(s.dropped >= dropped, "{s:?}");
    let warned = lines_containing("queue full, dropping events");
    assert!(!warned.is_empty(), "a drop warning");
    let totals: Vec<u64> = warned
        .iter()
        .map(|l| l.rsplit(": ").next().unwrap().trim_end_matches(')').parse().unwrap())
        .collect();
    // The 1st, then once per hundred crossed, never more.
    assert!(totals.windows(2).all(|w| w[1] / 100 > w[0] / 100), "{totals:?}");
    assert!(totals.len() as u64 <= s.dropped / 100 + 1, "{} warnings for {} drops", totals.len(), s.dropped);
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

#[test]
fn no_log_line_ever_holds_the_key() {
    let r = receiver();
    r.push_faults([
        status(400),
        status(401),
        status(503),
        Fault::StoreThen(500),
        Fault::Drop,
        Fault::StatusBody { code: 400, retry_after: None, body: format!("echo {KEY}") },
    ]);
    let client = builder(&r.url()).batch_size(2).max_batch_events(2).build().unwrap();
    capture_n(&client, 12, "secret");
    client.flush(FLUSH).unwrap();
    let s = finish(&client, DEADLINE);
    assert!(s.failed > 0 && s.sent > 0, "{s:?}");

    let port = closed_port();
    let client = builder(&format!("http://{}", port.addr)).build().unwrap();
    capture_n(&client, 2, "secret-refused");
    client.flush(FLUSH).unwrap();
    finish(&client, DEADLINE);

    assert!(!lines().is_empty(), "the logger captured something");
    assert_no_key_logged();
}

#[test]
fn error_texts_never_hold_the_key() {
    install_logger();
    let long = format!("{KEY}{}", "0".repeat(64));
    let cases: Vec<(Builder, &str)> = vec![
        (Client::builder(format!("phx_{KEY}")), "personal"),
        (Client::builder(long), "too long"),
        (Client::builder(format!("{KEY}é")), "non-ASCII"),
        (Client::builder(format!("{KEY}\0")), "NUL"),
        (Client::builder(""), "empty"),
        (Client::builder("   "), "blank"),
        (Client::builder(KEY).host("ftp://example.invalid"), "bad host"),
        // Arguments swapped by mistake: the key given as the host.
        (Client::builder("https://us.i.posthog.com").host(KEY), "key as host"),
        (Client::builder(KEY).host(format!("http:// {KEY}")), "key inside a bad host"),
    ];
    for (builder, what) in cases {
        // The builder's Debug redacts the key (it shows the host as given, so not the swapped
        // cases, where the key *is* the host).
        let debug = format!("{builder:?}");
        assert!(
            what.contains("host") || !debug.contains(KEY_MARK),
            "{what}: builder Debug shows the key: {debug}"
        );
        let err = builder.build().expect_err(what);
        let (text, debug) = (err.to_string(), format!("{err:?}"));
        assert!(!text.contains(KEY_MARK), "{what}: {text}");
        assert!(!debug.contains(KEY_MARK), "{what}: {debug}");
    }
    assert_no_key_logged();
}

// ---------------------------------------------------------------------------------------------
// Build-time validation, disabled clients
// ---------------------------------------------------------------------------------------------

#[test]
fn builder_settings_are_validated_with_typed_errors() {
    install_logger();
    let b = || Client::builder(KEY).host("http://127.0.0.1:9");
    let err = |b: Builder| b.build().expect_err("invalid");
    assert!(matches!(err(Client::builder("")), Error::EmptyApiKey));
    assert!(matches!(err(Client::builder(" \t ")), Error::EmptyApiKey));
    assert!(matches!(err(Client::builder("phx_personal")), Error::PersonalApiKey));
    assert!(matches!(err(Client::builder("x".repeat(65))), Error::ApiKeyTooLong { len: 65 }));
    assert!(matches!(err(Client::builder("phc_é")), Error::ApiKeyNotAscii));
    assert!(matches!(err(Client::builder("phc_\0")), Error::ApiKeyNotAscii));
    for host in [
        "",
        "us.i.posthog.com",
        "ftp://x",
        "http://",
        "https:///batch",
        "http://a b",
        // Would post to `/prefix?x=1/batch/`.
        "https://proxy.example/prefix?x=1",
        "https://proxy.example/#frag",
        "https://proxy.example?",
    ] {
        assert!(matches!(err(b().host(host)), Error::InvalidHost { .. }), "{host:?}");
    }
    let setting = |b: Builder| match err(b) {
        Error::InvalidSetting { name, .. } => name,
        other => panic!("expected InvalidSetting, got {other:?}"),
    };
    assert_eq!(setting(b().lanes(0)), "lanes");
    assert_eq!(setting(b().lanes(5000)), "lanes");
    assert_eq!(setting(b().memory(0)), "memory");
    assert_eq!(setting(b().memory(1 << 40)), "memory", "a terabyte would be allocated and zeroed");
    assert_eq!(setting(b().memory(1 << 20)), "memory", "16 lanes and 4 shared need 40 blocks of 64 KiB");
    assert_eq!(setting(b().batch_size(0)), "batch_size");
    assert_eq!(setting(b().max_event_bytes(0)), "max_event_bytes");
    assert_eq!(setting(b().max_event_bytes(9 << 20)), "max_event_bytes");
    assert_eq!(setting(b().pending_batches(1)), "pending_batches");
    assert_eq!(setting(b().max_batch_bytes(100)), "max_batch_bytes");
    assert_eq!(
        setting(b().retry(RetryPolicy { max_attempts: 0, ..RetryPolicy::DEFAULT })),
        "retry.max_attempts"
    );
    assert_eq!(setting(b().gzip(Some(0))), "gzip");
    assert_eq!(setting(b().gzip(Some(10))), "gzip");
    // No key at all: build() refuses, build_or_disabled() gives a disabled client.
    std::env::remove_var("POSTHOG_API_KEY");
    assert!(matches!(Builder::from_env().build(), Err(Error::MissingApiKey)));
    // A valid key and settings build (and shut down at once: nothing listens on port 9).
    let client = b().build().expect("valid settings");
    finish(&client, Duration::from_millis(100));
}

#[test]
fn every_setting_out_of_range_is_refused_naming_it_and_its_range() {
    install_logger();
    let b = || Client::builder(KEY).host("http://127.0.0.1:9");
    let retry = |f: fn(&mut RetryPolicy)| {
        let mut p = RetryPolicy::DEFAULT;
        f(&mut p);
        p
    };
    let huge = Duration::MAX;
    let cases: Vec<(Builder, &str)> = vec![
        (b().batch_size(usize::MAX), "batch_size"),
        (b().batch_linger(Duration::from_millis(1_001)), "batch_linger"),
        (b().batch_linger(huge), "batch_linger"),
        (b().max_batch_events(10_001), "max_batch_events"),
        (b().batch_size(100).max_batch_events(99), "max_batch_events"),
        (b().max_batch_bytes(usize::MAX), "max_batch_bytes"),
        (b().flush_interval(huge), "flush_interval"),
        (b().flush_interval(Duration::ZERO), "flush_interval"),
        (b().max_poll_interval(huge), "max_poll_interval"),
        (b().max_poll_interval(Duration::ZERO), "max_poll_interval"),
        (b().http_timeout(huge), "http_timeout"),
        (b().http_timeout(Duration::ZERO), "http_timeout"),
        (b().connect_timeout(huge), "connect_timeout"),
        (b().connect_timeout(Duration::ZERO), "connect_timeout"),
        (b().retry(retry(|p| p.max_attempts = u32::MAX)), "retry.max_attempts"),
        (b().retry(retry(|p| p.initial_backoff_ms = u64::MAX)), "retry.initial_backoff_ms"),
        (b().retry(retry(|p| p.max_backoff_ms = u64::MAX)), "retry.max_backoff_ms"),
        (b().retry(retry(|p| p.max_retry_after_ms = u64::MAX)), "retry.max_retry_after_ms"),
        (b().pending_batches(usize::MAX), "pending_batches"),
        (b().pending_batches(1024).max_batch_bytes(20 << 20), "pending_batches"),
        (b().requests_in_flight(0), "requests_in_flight"),
        (b().requests_in_flight(9), "requests_in_flight"),
    ];
    for (builder, name) in cases {
        match builder.build() {
            Err(Error::InvalidSetting { name: got, expected }) => {
                assert_eq!(got, name);
                let text = Error::InvalidSetting { name: got, expected }.to_string();
                assert!(text.contains(name) && text.chars().any(|c| c.is_ascii_digit()), "{text}");
            }
            other => panic!("{name}: expected InvalidSetting, got {other:?}"),
        }
    }
}

#[test]
fn the_edges_of_every_range_deliver_without_a_panic() {
    let r = receiver();
    let top = RetryPolicy {
        max_attempts: 100,
        initial_backoff_ms: 3_600_000,
        max_backoff_ms: 3_600_000,
        max_retry_after_ms: 3_600_000,
    };
    let edges = [
        builder(&r.url())
            .batch_size(10_000)
            .max_batch_bytes(20 << 20)
            .pending_batches(2)
            .requests_in_flight(8)
            .flush_interval(Duration::from_secs(24 * 3600))
            .max_poll_interval(Duration::from_secs(3600))
            .http_timeout(Duration::from_secs(3600))
            .connect_timeout(Duration::from_secs(3600))
            .retry(top)
            .shutdown_timeout(Duration::MAX),
        builder(&r.url())
            .batch_size(1)
            .max_batch_bytes(1024)
            .pending_batches(2)
            .requests_in_flight(1)
            .flush_interval(Duration::from_millis(1))
            .max_poll_interval(Duration::from_micros(50))
            .retry(RetryPolicy {
                max_attempts: 1,
                initial_backoff_ms: 0,
                max_backoff_ms: 0,
                max_retry_after_ms: 0,
            }),
    ];
    let mut sent = 0;
    for (i, b) in edges.into_iter().enumerate() {
        let client = b.build().expect("settings at the edges of their ranges");
        capture_n(&client, 20, &format!("edge{i}"));
        client.flush(FLUSH).expect("flush");
        let s = finish(&client, DEADLINE);
        assert_eq!((s.sent, s.failed), (20, 0), "{i}: {s:?}");
        sent += 20;
    }
    assert_eq!(r.stats().events_accepted, sent);
}

#[test]
fn from_env_without_a_key_is_disabled_and_counts_drops() {
    install_logger();
    std::env::remove_var("POSTHOG_API_KEY");
    let client = Client::from_env().expect("a disabled client, not an error");
    assert_eq!(client.capture(&Event::new("e", "u")), Captured::Dropped);
    assert_eq!(client.capture(&Event::new("e", "u")), Captured::Dropped);
    assert_eq!(client.capture(&Event::new("e", "")), Captured::Rejected);
    client.flush(Duration::from_millis(10)).expect("nothing to flush");
    let s = finish(&client, Duration::from_millis(10));
    assert_eq!((s.captured, s.dropped, s.rejected, s.sent), (3, 2, 1, 0));
}

#[test]
fn a_disabled_client_sends_nothing_from_any_thread() {
    install_logger();
    let client = Client::disabled();
    std::thread::scope(|s| {
        for t in 0..4 {
            let client = &client;
            s.spawn(move || {
                for i in 0..100u64 {
                    let _ = client.capture(&Event::new("e", "u").prop("t", t as u64).prop("i", i));
                }
            });
        }
    });
    let s = finish(&client, Duration::from_millis(10));
    assert_eq!((s.captured, s.dropped, s.sent, s.failed), (400, 400, 0, 0));
}

#[test]
fn captures_after_shutdown_are_counted_as_dropped() {
    let r = receiver();
    let client = builder(&r.url()).build().unwrap();
    capture_n(&client, 3, "before");
    let s = finish(&client, DEADLINE);
    assert_eq!(s.sent, 3, "shutdown delivers what was captured");
    assert_eq!(client.capture(&Event::new("late", "u")), Captured::Dropped);
    let s = client.stats();
    assert_accounted(&s);
    assert_eq!((s.captured, s.dropped), (4, 1));
    assert_eq!(r.stats().events_accepted, 3);
}

/// Four threads on two owned lanes: two capture into their own lanes (never dropped with the
/// default memory), two borrow the one shared lane per capture and may find it busy (dropped
/// and counted: wait-free by design, see README design notes). Every queued event is sent
/// exactly once and every dropped one is counted.
#[test]
fn every_queued_event_is_sent_exactly_once_from_many_threads() {
    let r = receiver();
    let client = builder(&r.url()).lanes(2).build().unwrap();
    let outcomes: Vec<(String, Captured)> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let client = &client;
                s.spawn(move || {
                    (0..250)
                        .map(|i| {
                            let id = format!("t{t}-{i}");
                            let outcome =
                                client.capture(&Event::new("delivery_test", &id).prop("i", i as i64));
                            (id, outcome)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    let queued: HashSet<String> =
        outcomes.iter().filter(|(_, o)| *o == Captured::Queued).map(|(id, _)| id.clone()).collect();
    let dropped = outcomes.iter().filter(|(_, o)| *o == Captured::Dropped).count();
    assert_eq!(queued.len() + dropped, 1000, "every capture is queued or dropped");
    assert!(queued.len() >= 500, "the two threads with owned lanes never drop: {} queued", queued.len());
    client.flush(FLUSH).unwrap();
    let st = r.stats();
    let n = queued.len() as u64;
    assert_eq!((st.events_accepted, st.unique_uuids), (n, n));
    let ids: HashSet<String> = r.events().iter().map(|e| e["distinct_id"].as_str().unwrap().into()).collect();
    assert_eq!(ids, queued, "exactly the queued events arrived");
    let s = finish(&client, DEADLINE);
    assert_eq!((s.sent, s.dropped), (queued.len() as u64, dropped as u64));
}

// ---------------------------------------------------------------------------------------------
// Shutdown and flush: concurrent callers, wake-ups, extreme deadlines, a dead flusher
// ---------------------------------------------------------------------------------------------

#[test]
fn concurrent_shutdowns_all_wait_for_the_flusher() {
    let r = receiver();
    r.push_faults((0..64).map(|_| Fault::Hang));
    let client = builder(&r.url()).http_timeout(Duration::from_secs(30)).build().unwrap();
    for i in 0..1000u64 {
        let _ = client.capture(&Event::new("concurrent_shutdown", "u").prop("i", i));
    }
    let deadline = Duration::from_millis(500);
    let results: Vec<_> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..3)
            .map(|_| {
                let client = &client;
                s.spawn(move || {
                    let t = Instant::now();
                    (client.shutdown(deadline), t.elapsed())
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for (result, took) in results {
        let s = result.expect("every caller's shutdown succeeds");
        assert_accounted(&s);
        assert!(took <= deadline + Duration::from_secs(1), "{took:?}");
    }
    let s = client.stats();
    assert_eq!((s.pending, s.captured), (0, 1000), "{s:?}");
    assert_no_key_logged();
}

#[test]
fn duration_max_deadlines_do_not_overflow() {
    let r = receiver();
    let client = builder(&r.url()).shutdown_timeout(Duration::MAX).build().unwrap();
    capture_n(&client, 3, "max");
    client.flush(Duration::MAX).expect("flush");
    let s = client.shutdown(Duration::MAX).expect("shutdown");
    assert_accounted(&s);
    assert_eq!(s.sent, 3);
    // And the Drop of a client whose shutdown_timeout is Duration::MAX.
    let client = builder(&r.url()).shutdown_timeout(Duration::MAX).build().unwrap();
    capture_n(&client, 2, "max-drop");
    drop(client);
    assert_eq!(r.stats().events_accepted, 5);
    assert_no_key_logged();
}

#[test]
fn shutdown_and_flush_wake_an_idle_flusher_at_once() {
    let r = receiver();
    // An idle flusher sleeps up to max_poll_interval between looks at the lanes.
    let client = builder(&r.url()).max_poll_interval(Duration::from_secs(10)).build().unwrap();
    capture_n(&client, 3, "wake-a");
    std::thread::sleep(Duration::from_millis(300)); // long enough for the sleeps to grow
    capture_n(&client, 3, "wake-b");
    client.flush(Duration::from_secs(2)).expect("flush wakes the flusher");
    assert_eq!(r.stats().events_accepted, 6);
    std::thread::sleep(Duration::from_millis(300));
    capture_n(&client, 3, "wake-c");
    let s = finish(&client, Duration::from_secs(2)); // within 2 s + 1 s, with pending == 0
    assert_eq!(s.sent, 9);
}

/// A transport that panics: the flusher thread dies.
struct Panicking;

impl fasthog::transport::Transport for Panicking {
    async fn send(
        &self,
        _: fasthog::transport::Request<'_>,
    ) -> Result<fasthog::transport::Response, fasthog::transport::TransportError> {
        panic!("a transport bug (this panic is part of the test)")
    }
}

#[test]
fn a_flusher_that_panics_is_noticed_and_its_events_failed() {
    install_logger();
    let client = Client::builder(KEY).batch_size(4).build_with_transport(Panicking).unwrap();
    capture_n(&client, 10, "panic");
    let t = Instant::now();
    let flushed = client.flush(Duration::from_secs(5));
    assert!(matches!(flushed, Err(Error::FlusherPanicked)), "{flushed:?}");
    assert!(t.elapsed() < Duration::from_secs(4), "flush noticed the dead flusher: {:?}", t.elapsed());
    // Captured after the flusher died: they wait in the lanes and are failed at shutdown.
    capture_n(&client, 5, "after-panic");
    let t = Instant::now();
    let s = client.shutdown(Duration::from_secs(5)).expect("a shutdown with a dead flusher succeeds");
    assert!(t.elapsed() < Duration::from_secs(4), "shutdown returned promptly: {:?}", t.elapsed());
    assert_accounted(&s);
    assert_eq!((s.captured, s.sent, s.failed), (15, 0, 15), "{s:?}");
    assert!(!lines_containing("flusher thread panicked").is_empty());
    assert_no_key_logged();
}

// ---------------------------------------------------------------------------------------------
// The delivery outcome hook
// ---------------------------------------------------------------------------------------------

#[test]
fn on_delivery_hears_every_outcome_on_the_flusher_thread() {
    use fasthog::flusher::Outcome;
    use std::sync::{Arc, Mutex};
    let r = receiver();
    r.push_faults([
        status(503),
        Fault::StatusBody { code: 400, retry_after: None, body: format!("bad batch hook-marker {KEY}") },
    ]);
    let heard: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = heard.clone();
    let client = builder(&r.url())
        .on_delivery(move |o: &Outcome<'_>| {
            let thread = std::thread::current().name().unwrap_or("?").to_string();
            let what = match *o {
                Outcome::Sent { events, status } => format!("sent {events} {status}"),
                Outcome::Failed { events, status, reason } => format!("failed {events} {status:?} {reason}"),
                Outcome::Retrying { events, attempt, status, .. } => {
                    format!("retrying {events} attempt {attempt} {status:?}")
                }
                _ => "other".into(),
            };
            sink.lock().unwrap().push((thread, what));
        })
        .build()
        .unwrap();
    capture_n(&client, 5, "hook-a");
    client.flush(FLUSH).unwrap();
    capture_n(&client, 3, "hook-b");
    client.flush(FLUSH).unwrap();
    let s = finish(&client, DEADLINE);
    // The 503's retry meets the 400: the first batch fails, the second is sent.
    assert_eq!((s.sent, s.failed, s.retried), (3, 5, 1));
    let heard = heard.lock().unwrap().clone();
    assert!(heard.iter().all(|(t, _)| t == "fasthog-flusher"), "on the flusher's thread: {heard:?}");
    let what: Vec<&str> = heard.iter().map(|(_, w)| w.as_str()).collect();
    assert_eq!(
        what,
        [
            "retrying 5 attempt 1 Some(503)",
            "failed 5 Some(400) bad batch hook-marker [key withheld]",
            "sent 3 200",
        ]
    );
}

#[test]
fn a_panicking_on_delivery_hook_does_not_stop_delivery() {
    let r = receiver();
    let client = builder(&r.url())
        .batch_size(2)
        .on_delivery(|_| panic!("a bug in the user's hook (this panic is part of the test)"))
        .build()
        .unwrap();
    capture_n(&client, 6, "hook-panic");
    client.flush(FLUSH).expect("the flusher lives on");
    let s = finish(&client, DEADLINE);
    assert_eq!((s.sent, s.failed), (6, 0));
    assert_eq!(lines_containing("on_delivery hook panicked").len(), 1, "logged once");
}

#[test]
fn max_batch_events_lets_requests_grow_past_batch_size_while_one_is_in_flight() {
    install_logger();
    let r = Receiver::start(ReceiverConfig { delay: Some(Duration::from_millis(200)), ..Default::default() })
        .expect("a loopback port");
    let client = builder(&r.url()).batch_size(64).max_batch_events(1000).build().unwrap();
    capture_n(&client, 2000, "grow");
    client.flush(FLUSH).unwrap();
    let sizes: Vec<usize> = r.requests().iter().map(|q| q.event_count).collect();
    assert!(sizes.iter().all(|&n| n <= 1000), "{sizes:?}");
    assert!(sizes.iter().any(|&n| n > 64), "requests grew past batch_size under load: {sizes:?}");
    let s = finish(&client, DEADLINE);
    assert_eq!((s.sent, s.dropped), (2000, 0));
}

/// 1,024 events in batches of 64 to a receiver that takes 200 ms per request, with `in_flight`
/// requests at once: (the flush's time, the most requests in the receiver at once, requests).
fn deliver_through_a_slow_receiver(in_flight: usize) -> (Duration, usize, usize) {
    let latency = Duration::from_millis(200);
    let r = Receiver::start(ReceiverConfig { delay: Some(latency), ..Default::default() })
        .expect("a loopback port");
    let client =
        builder(&r.url()).batch_size(64).max_batch_events(64).requests_in_flight(in_flight).build().unwrap();
    capture_n(&client, 1024, "in-flight");
    let started = Instant::now();
    client.flush(FLUSH).unwrap();
    let took = started.elapsed();
    let s = finish(&client, DEADLINE);
    assert_eq!((s.sent, s.failed, s.dropped), (1024, 0, 0));
    let requests = r.requests();
    assert!(requests.iter().all(|q| q.event_count == 64), "batches of 64");
    // When each request's head was read: at most `latency` apart means both were in the
    // receiver together (each is answered `latency` after its head).
    let overlap = requests
        .iter()
        .map(|a| requests.iter().filter(|b| b.at <= a.at && a.at.duration_since(b.at) < latency).count())
        .max()
        .unwrap_or(0);
    (took, overlap, requests.len())
}

#[test]
fn several_requests_in_flight_overlap_at_a_slow_receiver() {
    install_logger();
    let (one, one_overlap, one_requests) = deliver_through_a_slow_receiver(1);
    let (four, four_overlap, four_requests) = deliver_through_a_slow_receiver(4);
    eprintln!("1,024 events at 200 ms per request: 1 in flight {one:?}, 4 in flight {four:?}");
    assert_eq!((one_requests, four_requests), (16, 16));
    assert_eq!(one_overlap, 1, "one at a time");
    assert_eq!(four_overlap, 4, "four in the receiver at once");
    // 16 round trips against 4: about 3.2 s against 0.8 s. Allow a loaded machine slack.
    assert!(one >= Duration::from_millis(3_200), "{one:?}");
    assert!(four < Duration::from_millis(1_600), "{four:?}");
    assert!(one.as_secs_f64() / four.as_secs_f64() > 2.5, "{one:?} against {four:?}");
}

/// Regression: a `flush` right after `build` waited its whole timeout. The flusher completed
/// that flush in its very first poll, before the notification relay beside it had read the
/// completion count, so the waiter was never woken (it returned `Ok` only when its timeout
/// ran out). The bound is generous: the lost wake-up waited all 30 s.
#[test]
fn a_flush_right_after_build_is_woken_when_it_completes() {
    for _ in 0..5 {
        let recorder = fasthog::recorder::Recorder::new();
        let client = Client::builder(KEY).build_with_transport(recorder.clone()).unwrap();
        let _ = client.capture(&Event::new("first", "user-1"));
        let t = Instant::now();
        client.flush(Duration::from_secs(30)).expect("flushed");
        assert!(t.elapsed() < Duration::from_secs(10), "the flush waited {:?}", t.elapsed());
        assert_eq!(recorder.events().len(), 1);
        finish(&client, DEADLINE);
    }
}
