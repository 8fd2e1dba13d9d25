//! HTTP/1.1 behaviour: keep-alive, chunked bodies, routing, framing errors, shutdown.

mod common;

use std::time::{Duration, Instant};

use common::{batch, event, gzip, Client};
use fasthog_receiver::{Receiver, ReceiverConfig};

fn start() -> Receiver {
    Receiver::start(ReceiverConfig::default()).unwrap()
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let r = start();
    let mut c = Client::connect(&r);
    for i in 0..5 {
        let resp = c.post("/batch/", &[], &batch(&[event(i)]));
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("connection"), Some("keep-alive"));
    }
    // A refused request does not end the connection either.
    assert_eq!(c.post("/batch/", &[], b"{\"batch\": []}").status, 401);
    assert_eq!(c.post("/batch/", &[], &batch(&[event(9)])).status, 200);
    assert_eq!(r.stats().events_accepted, 6);
    assert_eq!(r.stats().requests, 7);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let r = start();
    let mut c = Client::connect(&r);
    c.send("/batch/", &[], &batch(&[event(1)])).unwrap();
    c.send("/nope", &[], b"xyz").unwrap();
    c.send("/batch/", &[], &batch(&[event(2)])).unwrap();
    let statuses: Vec<u16> = (0..3).map(|_| c.read_response().unwrap().status).collect();
    assert_eq!(statuses, [200, 404, 200]);
    assert_eq!(r.events(), vec![event(1), event(2)]);
}

#[test]
fn connection_close_is_honoured() {
    let r = start();
    let mut c = Client::connect(&r);
    let resp = c.post("/batch/", &[("Connection", "close")], &batch(&[event(1)]));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(c.is_closed());

    // HTTP/1.0 closes unless asked to keep alive.
    let mut c = Client::connect(&r);
    c.send_raw(b"POST /batch/ HTTP/1.0\r\nContent-Length: 2\r\n\r\n[]").unwrap();
    let resp = c.read_response().unwrap();
    assert_eq!(resp.status, 401);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(c.is_closed());
}

#[test]
fn chunked_body_is_accepted() {
    let r = start();
    let body = gzip(&batch(&[event(1), event(2)]));
    let mut raw = b"POST /batch/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in body.chunks(7) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let mut c = Client::connect(&r);
    c.send_raw(&raw).unwrap();
    assert_eq!(c.read_response().unwrap().status, 200);
    // The connection stays usable after a chunked body.
    assert_eq!(c.post("/batch/", &[], &batch(&[event(3)])).status, 200);
    assert_eq!(r.events(), vec![event(1), event(2), event(3)]);
    let rec = &r.requests()[0];
    assert!(rec.gzip);
    assert_eq!(rec.body_len, body.len());
}

#[test]
fn expect_continue_gets_an_interim_response() {
    let r = start();
    let body = batch(&[event(1)]);
    let mut c = Client::connect(&r);
    let head =
        format!("POST /batch/ HTTP/1.1\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n", body.len());
    c.send_raw(head.as_bytes()).unwrap();
    assert_eq!(c.read_response().unwrap().status, 100);
    c.send_raw(&body).unwrap();
    assert_eq!(c.read_response().unwrap().status, 200);
}

#[test]
fn other_paths_and_methods_are_refused() {
    let r = start();
    let mut c = Client::connect(&r);
    let resp = c.post("/e/", &[], &batch(&[event(1)]));
    assert_eq!(resp.status, 404);
    assert_eq!(resp.code(), "not_found");
    c.send_raw(b"GET /batch/ HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let resp = c.read_response().unwrap();
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("POST"));
    assert_eq!(c.post("/batch/", &[], &batch(&[event(1)])).status, 200);
    let stats = r.stats();
    assert_eq!((stats.status(404), stats.status(405), stats.status(200)), (1, 1, 1));
    assert_eq!(r.requests()[0].path, "/e/");
}

#[test]
fn malformed_request_is_400_and_closed() {
    let r = start();
    let mut c = Client::connect(&r);
    c.send_raw(b"this is not http\r\n\r\n").unwrap();
    let resp = c.read_response().unwrap();
    assert_eq!(resp.status, 400);
    assert_eq!(resp.code(), "bad_request");
    assert!(c.is_closed());
}

#[test]
fn shutdown_releases_idle_connections_quickly() {
    let r = start();
    let mut clients: Vec<Client> = (0..3).map(|_| Client::connect(&r)).collect();
    for c in &mut clients {
        assert_eq!(c.post("/batch/", &[], &batch(&[event(1)])).status, 200);
    }
    let t = Instant::now();
    r.shutdown();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    for c in &mut clients {
        assert!(c.is_closed());
    }
}
