//! PostHog's capture rules: each refusal, its status and its code; nothing refused is stored.

mod common;

use common::{batch, event, gzip, post, Client, KEY};
use fasthog_receiver::{Receiver, ReceiverConfig};
use serde_json::{json, Value};

fn start() -> Receiver {
    Receiver::start(ReceiverConfig::default()).unwrap()
}

/// Posts `body` and checks the status and error code, that nothing was stored and that the
/// key was not echoed.
fn refused(r: &Receiver, body: &[u8], status: u16, code: &str) {
    let before = r.stats().events_accepted;
    let resp = post(r, body);
    let text = String::from_utf8_lossy(body);
    assert_eq!(resp.status, status, "{text:.200} -> {}", resp.body);
    let json = resp.json();
    assert_eq!(json["type"], "validation_error");
    assert_eq!(json["code"], code, "{text:.200} -> {}", resp.body);
    assert!(json["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(!resp.body.contains(KEY), "key echoed: {}", resp.body);
    assert_eq!(r.stats().events_accepted, before, "refused events were stored");
}

/// A batch of one good event and `bad`: the whole request must be refused.
fn with_bad_event(bad: Value) -> Vec<u8> {
    batch(&[event(1), bad])
}

#[test]
fn envelope_rules() {
    let r = start();
    refused(&r, b"not json", 400, "invalid_payload");
    refused(&r, b"\"a string\"", 400, "invalid_payload");
    refused(&r, b"{\"api_key\": \"phc_x\", \"batch\": [", 400, "invalid_payload");
    let both = json!({"api_key": KEY, "token": KEY, "batch": [event(1)]});
    refused(&r, both.to_string().as_bytes(), 400, "both_api_key_and_token");
    let empty = json!({"api_key": KEY, "batch": []});
    refused(&r, empty.to_string().as_bytes(), 400, "empty_batch");
    let missing = json!({"api_key": KEY});
    refused(&r, missing.to_string().as_bytes(), 400, "missing_batch");
    let bad_item = json!({"api_key": KEY, "batch": [1]});
    refused(&r, bad_item.to_string().as_bytes(), 400, "invalid_payload");
    let sent_at = json!({"api_key": KEY, "batch": [event(1)], "sent_at": 5});
    refused(&r, sent_at.to_string().as_bytes(), 400, "invalid_sent_at");
    // Every refusal was logged with its status.
    assert_eq!(r.stats().status(400), 8);
}

#[test]
fn token_rules_are_401() {
    let r = start();
    let with_key = |key: Value| json!({"api_key": key, "batch": [event(1)]}).to_string();
    let no_key = json!({"batch": [event(1)]}).to_string();
    refused(&r, no_key.as_bytes(), 401, "missing_token");
    refused(&r, with_key(Value::Null).as_bytes(), 401, "missing_token");
    for bad in [
        json!("   "),
        json!(""),
        json!("a".repeat(65)),
        json!("phc_é"),
        json!("phc_\u{0}x"),
        json!("phx_personal"),
        json!(" phx_personal"),
        json!(123),
    ] {
        refused(&r, with_key(bad).as_bytes(), 401, "invalid_token");
    }
    // Trimmed, 64 bytes is fine; `token` works as well as `api_key`.
    let padded = with_key(json!(format!("  {}  ", "a".repeat(64))));
    assert_eq!(post(&r, padded.as_bytes()).status, 200);
    let token = json!({"token": KEY, "batch": [event(1)]}).to_string();
    assert_eq!(post(&r, token.as_bytes()).status, 200);
    assert!(r.requests().iter().all(|rec| rec.api_key_ok == (rec.status == 200)));
}

#[test]
fn event_rules_refuse_the_whole_request() {
    let r = start();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"distinct_id": "d"}), "missing_event"),
        (json!({"event": "", "distinct_id": "d"}), "invalid_event"),
        (json!({"event": 5, "distinct_id": "d"}), "invalid_event"),
        (json!({"event": "e"}), "missing_distinct_id"),
        (json!({"event": "e", "distinct_id": null}), "missing_distinct_id"),
        (json!({"event": "e", "distinct_id": ""}), "missing_distinct_id"),
        (json!({"event": "e", "distinct_id": " \t\n"}), "missing_distinct_id"),
        (json!({"event": "e", "distinct_id": true}), "invalid_distinct_id"),
        (json!({"event": "e", "distinct_id": "d", "properties": null}), "invalid_properties"),
        (json!({"event": "e", "distinct_id": "d", "properties": [1]}), "invalid_properties"),
        (json!({"event": "e", "distinct_id": "d", "timestamp": 1714564800}), "invalid_timestamp"),
        (json!({"event": "e", "distinct_id": "d", "uuid": "not-a-uuid"}), "invalid_uuid"),
        (json!({"event": "e", "distinct_id": "d", "uuid": 7}), "invalid_uuid"),
        (
            json!({"event": "e", "distinct_id": "d", "properties": {"$cookieless_mode": "yes"}}),
            "invalid_cookieless_mode",
        ),
        (json!({"event": "e", "distinct_id": "d", "offset": "1"}), "invalid_offset"),
        (json!({"event": "e", "distinct_id": "d", "$set": "x"}), "invalid_set"),
    ];
    for (bad, code) in cases {
        refused(&r, &with_bad_event(bad), 400, code);
    }
    assert!(r.events().is_empty());
    // The detail names the offending event.
    let resp = post(&r, &with_bad_event(json!({"event": "e"})));
    assert!(resp.json()["detail"].as_str().unwrap().starts_with("batch[1]"));
}

#[test]
fn oversized_event_is_413() {
    let r = start();
    let mut big = event(2);
    big["properties"]["blob"] = json!("x".repeat(1_000_000));
    refused(&r, &with_bad_event(big), 413, "event_too_large");
    // Quotes count twice, as PostHog re-encodes the event as a string.
    let mut quoted = event(3);
    quoted["properties"]["blob"] = json!("\"".repeat(350_000));
    refused(&r, &with_bad_event(quoted), 413, "event_too_large");
    let mut fine = event(4);
    fine["properties"]["blob"] = json!("x".repeat(400_000));
    assert_eq!(post(&r, &batch(&[fine])).status, 200);

    // The limit is configurable.
    let small = Receiver::start(ReceiverConfig { max_event_bytes: 2_000, ..Default::default() }).unwrap();
    let mut e = event(5);
    e["properties"]["blob"] = json!("x".repeat(2_000));
    refused(&small, &batch(&[e]), 413, "event_too_large");
    assert_eq!(post(&small, &batch(&[event(6)])).status, 200);
}

#[test]
fn body_limit_is_413_and_keeps_the_connection() {
    let r = start();
    r.set_body_limit(1_000);
    let big = batch(&(0..50).map(event).collect::<Vec<_>>());
    assert!(big.len() > 1_000);
    let mut c = Client::connect(&r);
    let resp = c.post("/batch/", &[], &big);
    assert_eq!(resp.status, 413);
    assert_eq!(resp.code(), "payload_too_large");
    // The body was drained: the same connection goes on.
    assert_eq!(c.post("/batch/", &[], &batch(&[event(1)])).status, 200);
    // The limit is on the body as sent: compressed, it fits.
    assert!(gzip(&big).len() < 1_000);
    assert_eq!(c.post("/batch/", &[], &gzip(&big)).status, 200);
    assert_eq!(r.stats().events_accepted, 51);
    assert_eq!(r.requests()[0].body_len, big.len());

    let cfg = ReceiverConfig { max_body_bytes: 100, ..Default::default() };
    let configured = Receiver::start(cfg).unwrap();
    assert_eq!(post(&configured, &batch(&[event(1)])).status, 413);
}

#[test]
fn gzip_rules() {
    let r = start();
    let plain = batch(&[event(1)]);
    let mut c = Client::connect(&r);
    for (path, headers) in [
        ("/batch/", &[("Content-Encoding", "gzip")][..]),
        ("/batch/?compression=gzip", &[][..]),
        ("/batch/?v=3&compression=gzip-js", &[][..]),
    ] {
        let resp = c.post(path, headers, &plain);
        assert_eq!(resp.status, 400, "{path} {headers:?}");
        assert_eq!(resp.code(), "gzip_hint_on_plain_body");
    }
    // Magic bytes, then garbage.
    let resp = c.post("/batch/", &[], b"\x1f\x8b\x08garbage");
    assert_eq!(resp.status, 400);
    assert_eq!(resp.code(), "invalid_gzip");
    assert_eq!(r.stats().events_accepted, 0);
    assert_eq!(r.stats().gzip_requests, 1);
}

#[test]
fn inflated_limit_is_400() {
    let r = start();
    // PostHog's 100 MiB takes too long to inflate in a debug build; the rule is the same.
    r.set_inflated_limit(1024 * 1024);
    let mut json = batch(&[event(1)]);
    json.resize(json.len() + 1024 * 1024, b' ');
    let body = gzip(&json);
    assert!(body.len() < 64 * 1024);
    let resp = post(&r, &body);
    assert_eq!(resp.status, 400);
    assert_eq!(resp.code(), "decompressed_too_large");
    // Exactly at the limit inflates fine (trailing whitespace is valid JSON).
    json.truncate(1024 * 1024);
    assert_eq!(post(&r, &gzip(&json)).status, 200);
}
