//! Accepted requests: what is answered, stored, counted and logged.

mod common;

use std::time::{Duration, Instant};

use common::{batch, event, gzip, post, uuid, Client, KEY};
use fasthog_receiver::{Receiver, ReceiverConfig, Store};
use serde_json::json;

fn start() -> Receiver {
    Receiver::start(ReceiverConfig::default()).unwrap()
}

#[test]
fn plain_batch_is_stored_without_the_key() {
    let r = start();
    assert!(r.url().starts_with("http://127.0.0.1:"));
    let body = batch(&[event(1), event(2)]);
    let resp = post(&r, &body);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json(), json!({"status": "Ok"}));
    assert_eq!(resp.header("content-length"), Some("15"));
    assert_eq!(resp.header("connection"), Some("keep-alive"));

    assert_eq!(r.events(), vec![event(1), event(2)]);
    let stats = r.stats();
    assert_eq!(stats.requests, 1);
    assert_eq!(stats.status(200), 1);
    assert_eq!(stats.events_accepted, 2);
    assert_eq!(stats.unique_uuids, 2);
    assert_eq!(stats.gzip_requests, 0);
    assert_eq!(stats.bytes_received, body.len() as u64);

    let log = r.requests();
    assert_eq!(log.len(), 1);
    let rec = &log[0];
    assert_eq!(rec.status, 200);
    assert_eq!(rec.path, "/batch/");
    assert!(!rec.gzip);
    assert!(rec.api_key_ok);
    assert_eq!(rec.body_len, body.len());
    assert_eq!(rec.event_count, 2);
    assert_eq!(rec.sent_at.as_deref(), Some("2024-05-01T12:00:01Z"));
    assert_eq!(rec.uuids, vec![uuid(1), uuid(2)]);
    assert_eq!(rec.content_type.as_deref(), Some("application/json"));
    assert_eq!(rec.content_encoding, None);
    assert!(!format!("{log:?}").contains(KEY));
}

#[test]
fn gzip_batch_with_and_without_hints() {
    let r = start();
    let body = gzip(&batch(&[event(1)]));
    let mut c = Client::connect(&r);
    assert_eq!(c.post("/batch/", &[], &body).status, 200);
    let hinted = [("Content-Encoding", "gzip")];
    assert_eq!(c.post("/batch/", &hinted, &body).status, 200);
    assert_eq!(c.post("/batch/?compression=gzip-js", &[], &body).status, 200);

    let stats = r.stats();
    assert_eq!(stats.gzip_requests, 3);
    assert_eq!(stats.events_accepted, 3);
    assert_eq!(stats.unique_uuids, 1, "the same event three times");
    assert_eq!(stats.bytes_received, 3 * body.len() as u64);
    let log = r.requests();
    assert!(log.iter().all(|rec| rec.gzip && rec.event_count == 1));
    assert_eq!(log[1].content_encoding.as_deref(), Some("gzip"));
    assert_eq!(log[2].query.as_deref(), Some("compression=gzip-js"));
    assert_eq!(r.events(), vec![event(1); 3]);
}

#[test]
fn batch_path_without_slash_and_other_shapes() {
    let r = start();
    let mut c = Client::connect(&r);
    assert_eq!(c.post("/batch", &[], &batch(&[event(1)])).status, 200);
    // A bare array and a single event carry the key on the event.
    let mut e = event(2);
    e["api_key"] = json!(KEY);
    let array = serde_json::to_vec(&json!([e])).unwrap();
    assert_eq!(c.post("/batch/", &[], &array).status, 200);
    let mut single = event(3);
    single["token"] = json!(KEY);
    let single = serde_json::to_vec(&single).unwrap();
    assert_eq!(c.post("/batch/", &[], &single).status, 200);
    assert_eq!(r.events(), vec![event(1), event(2), event(3)]);
}

#[test]
fn numeric_distinct_id_and_empty_uuid_are_accepted() {
    let r = start();
    let events = [
        json!({"event": "e", "distinct_id": 42, "uuid": ""}),
        json!({"event": "e", "distinct_id": "d", "properties": {"$cookieless_mode": true}}),
    ];
    assert_eq!(post(&r, &batch(&events)).status, 200);
    let stats = r.stats();
    assert_eq!(stats.events_accepted, 2);
    assert_eq!(stats.unique_uuids, 0);
    assert!(r.requests()[0].uuids.is_empty());
}

#[test]
fn count_only_keeps_counts_and_uuids() {
    let cfg = ReceiverConfig { store: Store::CountOnly, ..Default::default() };
    let r = Receiver::start(cfg).unwrap();
    let mut c = Client::connect(&r);
    let first = gzip(&batch(&[event(1), event(2), event(3)]));
    let retry = gzip(&batch(&[event(3), event(4)]));
    assert_eq!(c.post("/batch/", &[], &first).status, 200);
    assert_eq!(c.post("/batch/", &[], &retry).status, 200);
    let stats = r.stats();
    assert_eq!(stats.events_accepted, 5);
    assert_eq!(stats.unique_uuids, 4, "one duplicate is visible");
    assert!(r.events().is_empty());
    let log = r.requests();
    assert_eq!(log[0].event_count, 3);
    assert!(log[0].uuids.is_empty());
}

#[test]
fn jsonl_appends_one_event_per_line_without_keys() {
    let path = std::env::temp_dir().join(format!("fasthog-receiver-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let cfg = ReceiverConfig { store: Store::Jsonl(path.clone()), ..Default::default() };
    let r = Receiver::start(cfg).unwrap();
    let mut keyed = event(2);
    keyed["api_key"] = json!(KEY);
    assert_eq!(post(&r, &batch(&[event(1), keyed])).status, 200);
    assert_eq!(r.stats().events_accepted, 2);
    r.shutdown();

    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(!text.contains(KEY));
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, vec![event(1), event(2)]);
}

#[test]
fn expected_api_key_refuses_other_keys() {
    let cfg = ReceiverConfig { expected_api_key: Some("phc_right".into()), ..Default::default() };
    let r = Receiver::start(cfg).unwrap();
    let wrong = post(&r, &batch(&[event(1)]));
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.code(), "unknown_token");
    assert!(!wrong.body.contains(KEY));
    let right = json!({"api_key": " phc_right ", "batch": [event(1)]}).to_string();
    assert_eq!(post(&r, right.as_bytes()).status, 200);
    let log = r.requests();
    assert!(!log[0].api_key_ok);
    assert!(log[1].api_key_ok);
}

#[test]
fn wait_for_events_sees_events_from_another_thread() {
    let r = start();
    assert!(!r.wait_for_events(1, Duration::from_millis(20)));
    let addr = r.addr();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let body = batch(&[event(1), event(2), event(3)]);
        let head =
            format!("POST /batch/ HTTP/1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        std::io::Write::write_all(&mut s, &[head.as_bytes(), &body].concat()).unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut s, &mut out).unwrap();
        out
    });
    let t = Instant::now();
    assert!(r.wait_for_events(3, Duration::from_secs(10)));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(!r.wait_for_events(4, Duration::from_millis(20)));
    assert!(sender.join().unwrap().starts_with("HTTP/1.1 200 OK"));
}
