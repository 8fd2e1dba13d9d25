//! Fault injection: each kind, the queue order, and the persistent delay.

mod common;

use std::time::{Duration, Instant};

use common::{batch, event, post, uuid, Client};
use fasthog_receiver::{Fault, Receiver, ReceiverConfig};

fn start() -> Receiver {
    Receiver::start(ReceiverConfig::default()).unwrap()
}

fn status(code: u16, retry_after: Option<&str>) -> Fault {
    Fault::Status { code, retry_after: retry_after.map(String::from) }
}

#[test]
fn status_faults_answer_in_order_and_store_nothing() {
    let r = start();
    r.push_faults([status(503, None), status(429, Some("2"))]);
    r.push_faults([status(200, None)]);
    assert_eq!(r.pending_faults(), 3);
    let body = batch(&[event(1), event(2)]);
    let mut c = Client::connect(&r);

    let first = c.post("/batch/", &[], &body);
    assert_eq!(first.status, 503);
    assert_eq!(first.code(), "injected_fault");
    assert_eq!(first.json()["type"], "injected_fault");
    assert_eq!(first.header("retry-after"), None);
    let second = c.post("/batch/", &[], &body);
    assert_eq!(second.status, 429);
    assert_eq!(second.header("retry-after"), Some("2"));
    // A 200 fault is a silent drop, like a project over quota.
    let third = c.post("/batch/", &[], &body);
    assert_eq!((third.status, third.body.as_str()), (200, r#"{"status":"Ok"}"#));
    assert_eq!(r.stats().events_accepted, 0);
    assert_eq!(r.pending_faults(), 0);

    // Queue empty: handled normally.
    assert_eq!(c.post("/batch/", &[], &body).status, 200);
    assert_eq!(r.stats().events_accepted, 2);
    let log = r.requests();
    let statuses: Vec<u16> = log.iter().map(|rec| rec.status).collect();
    assert_eq!(statuses, [503, 429, 200, 200]);
    // Faulted requests are still logged with what they carried.
    assert_eq!(log[0].event_count, 2);
    assert_eq!(log[0].uuids, vec![uuid(1), uuid(2)]);
}

#[test]
fn faults_come_before_validation() {
    let r = start();
    r.push_faults([status(502, None)]);
    let resp = post(&r, b"not json");
    assert_eq!(resp.status, 502);
    assert_eq!(post(&r, b"not json").status, 400);
}

#[test]
fn status_with_body_and_http_date_retry_after() {
    let r = start();
    let date = "Wed, 21 Oct 2015 07:28:00 GMT";
    r.push_faults([Fault::StatusBody {
        code: 429,
        retry_after: Some(date.into()),
        body: r#"{"type":"rate_limited"}"#.into(),
    }]);
    let resp = post(&r, &batch(&[event(1)]));
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("retry-after"), Some(date));
    assert_eq!(resp.body, r#"{"type":"rate_limited"}"#);
}

#[test]
fn store_then_status_is_a_partial_write() {
    let r = start();
    r.push_faults([Fault::StoreThen(503)]);
    let body = batch(&[event(1), event(2)]);
    let mut c = Client::connect(&r);
    assert_eq!(c.post("/batch/", &[], &body).status, 503);
    assert_eq!(r.stats().events_accepted, 2);
    // The client retries the same events: the duplicates are visible by uuid.
    assert_eq!(c.post("/batch/", &[], &body).status, 200);
    let stats = r.stats();
    assert_eq!((stats.events_accepted, stats.unique_uuids), (4, 2));
    assert_eq!(r.events().len(), 4);

    // An invalid request under StoreThen stores nothing but still gets the code.
    r.push_faults([Fault::StoreThen(503)]);
    assert_eq!(c.post("/batch/", &[], b"{}").status, 503);
    assert_eq!(r.stats().events_accepted, 4);
}

#[test]
fn delay_fault_then_normal_handling() {
    let r = start();
    r.push_faults([Fault::Delay(Duration::from_millis(250))]);
    let mut c = Client::connect(&r);
    let t = Instant::now();
    assert_eq!(c.post("/batch/", &[], &batch(&[event(1)])).status, 200);
    assert!(t.elapsed() >= Duration::from_millis(250));
    assert_eq!(r.stats().events_accepted, 1);
    let t = Instant::now();
    assert_eq!(c.post("/batch/", &[], &batch(&[event(2)])).status, 200);
    assert!(t.elapsed() < Duration::from_millis(250));
}

#[test]
fn persistent_delay_applies_to_every_request() {
    let r = Receiver::start(ReceiverConfig { delay: Some(Duration::from_millis(100)), ..Default::default() })
        .unwrap();
    let mut c = Client::connect(&r);
    for i in 0..2 {
        let t = Instant::now();
        assert_eq!(c.post("/batch/", &[], &batch(&[event(i)])).status, 200);
        assert!(t.elapsed() >= Duration::from_millis(100));
    }
    r.set_delay(None);
    let t = Instant::now();
    assert_eq!(c.post("/batch/", &[], &batch(&[event(3)])).status, 200);
    assert!(t.elapsed() < Duration::from_millis(100));
}

#[test]
fn drop_closes_without_answering() {
    let r = start();
    r.push_faults([Fault::Drop]);
    let mut c = Client::connect(&r);
    c.send("/batch/", &[], &batch(&[event(1)])).unwrap();
    assert!(c.read_response().is_err());
    assert!(c.is_closed());
    assert_eq!(r.stats().events_accepted, 0);
    assert_eq!(r.stats().status(0), 1);
    assert_eq!(r.requests()[0].status, 0);
    // A new connection is served normally.
    assert_eq!(post(&r, &batch(&[event(1)])).status, 200);
}

#[test]
fn hang_holds_the_connection_until_shutdown() {
    let r = start();
    r.push_faults([Fault::Hang]);
    let mut hung = Client::connect(&r);
    hung.set_read_timeout(Duration::from_millis(200));
    hung.send("/batch/", &[], &batch(&[event(1)])).unwrap();
    let err = hung.read_response().unwrap_err();
    assert!(matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{err:?}");
    // Other connections are unaffected, and the hung request is logged as unanswered.
    assert_eq!(post(&r, &batch(&[event(2)])).status, 200);
    assert_eq!(r.stats().events_accepted, 1);
    assert_eq!(r.stats().status(0), 1);

    let t = Instant::now();
    r.shutdown();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    hung.set_read_timeout(Duration::from_secs(2));
    assert!(hung.is_closed());
}

#[test]
fn shutdown_interrupts_a_long_delay() {
    let r = start();
    r.push_faults([Fault::Delay(Duration::from_secs(60))]);
    let mut c = Client::connect(&r);
    c.send("/batch/", &[], &batch(&[event(1)])).unwrap();
    // Let the request reach its delay.
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    r.shutdown();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(c.read_response().is_err());
}
