//! Shared helpers for the encoding tests: a checker of PostHog's capture rules
//! (`/work/shared/reference/capture-api.md`), a duplicate-key scanner, and small builders.
#![allow(dead_code)]

use std::collections::HashSet;

use fasthog::batch::{Batch, Encoder, Envelope, Limits, Notes, HEAD_CAPACITY, TAIL};
use fasthog::json::Writer;
use fasthog::Clock;
use serde_json::Value;

/// PostHog refuses an event whose re-encoded form is over this (413).
pub const SERVER_MAX_EVENT_BYTES: usize = 1_000_000;
/// PostHog refuses a request body over this (413).
pub const SERVER_MAX_BODY_BYTES: usize = 20 * 1024 * 1024;
/// What the server wraps around an event when it re-encodes it (uuid, ip, now, token, field
/// names): the same estimate as `fasthog-receiver`.
pub const SERVER_EVENT_OVERHEAD: usize = 256;

/// Encodes one event alone into a fresh buffer and returns its JSON text and notes.
pub fn encode_one(
    encoder: &mut Encoder<'_>,
    event: &(impl fasthog::AsEntry + ?Sized),
    clock: &impl Clock,
) -> (String, Notes) {
    let mut buf = vec![0u8; 4 << 20];
    let mut w = Writer::new(&mut buf, 0);
    let notes = encoder.encode(event, clock, &mut w);
    assert!(!w.overflowed(), "a 4 MiB buffer holds any test event");
    let text = String::from_utf8(w.written().to_vec()).expect("encoder writes UTF-8");
    (text, notes)
}

/// A full request body: head + events + tail.
pub fn body<B, E>(envelope: &Envelope<'_>, sent_at: u64, batch: &Batch<B, E>) -> Vec<u8>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
    E: AsRef<[u32]> + AsMut<[u32]>,
{
    let mut head = [0u8; HEAD_CAPACITY];
    let n = envelope.write_head(sent_at, &mut head);
    let mut out = head[..n].to_vec();
    out.extend_from_slice(batch.events(0..batch.len()));
    out.extend_from_slice(TAIL);
    out
}

/// Keys that occur twice in one object anywhere in `json` (which must be valid JSON).
pub fn duplicate_keys(json: &str) -> Vec<String> {
    enum Frame {
        Object { keys: HashSet<String>, expect_key: bool },
        Array,
    }
    let b = json.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut dups = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => stack.push(Frame::Object { keys: HashSet::new(), expect_key: true }),
            b'[' => stack.push(Frame::Array),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => {
                if let Some(Frame::Object { expect_key, .. }) = stack.last_mut() {
                    *expect_key = true;
                }
            }
            b'"' => {
                let start = i;
                i += 1;
                while b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if let Some(Frame::Object { keys, expect_key }) = stack.last_mut() {
                    if *expect_key {
                        let key: String = serde_json::from_str(&json[start..=i]).expect("key");
                        if !keys.insert(key.clone()) {
                            dups.push(key);
                        }
                        *expect_key = false;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    dups
}

/// A canonical lowercase UUID string of version 7 and the RFC 9562 variant.
pub fn is_uuid_v7(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
        && b[14] == b'7'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, with plausible field ranges.
pub fn is_rfc3339_utc_micros(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 27 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(99);
    digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..26)
        && b[26] == b'Z'
        && (1..=12).contains(&num(5..7))
        && (1..=31).contains(&num(8..10))
        && num(11..13) < 24
        && num(14..16) < 60
        && num(17..19) < 60
}

/// The size PostHog measures for an event: its JSON embedded once more as an escaped string
/// (quotes and backslashes cost double), plus the fields the server adds.
pub fn server_event_size(event_json: &str) -> usize {
    let escapes = event_json.bytes().filter(|&b| b == b'"' || b == b'\\').count();
    event_json.len() + escapes + 2 + SERVER_EVENT_OVERHEAD
}

/// Checks one event's JSON text against the capture rules and returns it parsed.
pub fn check_event_json(text: &str) -> Value {
    let v: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("event is not JSON ({e}): {}", preview(text)));
    let dups = duplicate_keys(text);
    assert!(dups.is_empty(), "duplicate keys {dups:?} in {}", preview(text));
    check_event_value(&v);
    let size = server_event_size(text);
    assert!(
        size <= SERVER_MAX_EVENT_BYTES,
        "event re-encodes to {size} bytes on the server, over {SERVER_MAX_EVENT_BYTES} (413)"
    );
    v
}

/// Checks a parsed event against the capture rules.
pub fn check_event_value(v: &Value) {
    let obj = v.as_object().expect("event is an object");
    let event = obj.get("event").and_then(Value::as_str).expect("`event` is a string");
    assert!(!event.is_empty(), "`event` is empty");
    let did = obj.get("distinct_id").and_then(Value::as_str).expect("`distinct_id` is a string");
    assert!(!did.trim().is_empty(), "`distinct_id` is empty or whitespace: {did:?}");
    let props = obj.get("properties").expect("`properties` present");
    let props = props.as_object().expect("`properties` is an object");
    let ts = obj.get("timestamp").and_then(Value::as_str).expect("`timestamp` is a string");
    assert!(is_rfc3339_utc_micros(ts), "timestamp {ts:?} is not RFC 3339 UTC");
    let uuid = obj.get("uuid").and_then(Value::as_str).expect("`uuid` is a string");
    assert!(is_uuid_v7(uuid), "uuid {uuid:?} is not a UUIDv7");
    for key in ["$set", "$set_once"] {
        if let Some(set) = obj.get(key) {
            assert!(set.is_object(), "top-level {key} must be an object");
        }
    }
    if let Some(c) = props.get("$cookieless_mode") {
        assert!(c.is_boolean(), "$cookieless_mode must be a bool");
    }
    if let Some(offset) = obj.get("offset") {
        assert!(offset.is_i64() || offset.is_null(), "offset must be an integer");
    }
}

/// Checks a full request body against the capture rules and returns it parsed.
pub fn check_body(body: &[u8]) -> Value {
    assert!(body.len() <= SERVER_MAX_BODY_BYTES, "body over 20 MiB");
    let text = std::str::from_utf8(body).expect("body is UTF-8");
    let v: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", preview(text)));
    let dups = duplicate_keys(text);
    assert!(dups.is_empty(), "duplicate keys {dups:?}");
    let top = v.as_object().expect("body is an object");
    let key = top.get("api_key").and_then(Value::as_str).expect("api_key is a string");
    let key = key.trim();
    assert!(!key.is_empty() && key.len() <= 64 && key.is_ascii() && !key.contains('\0'));
    assert!(!key.starts_with("phx_"));
    assert!(top.get("token").is_none(), "api_key and token together are a 400");
    assert!(top.get("historical_migration").is_some_and(Value::is_boolean));
    let sent_at = top.get("sent_at").and_then(Value::as_str).expect("sent_at is a string");
    assert!(is_rfc3339_utc_micros(sent_at));
    let batch = top.get("batch").and_then(Value::as_array).expect("batch is an array");
    assert!(!batch.is_empty(), "an empty batch is a 400");
    for event in batch {
        check_event_value(event);
        let re = serde_json::to_string(event).expect("re-serialize");
        assert!(server_event_size(&re) <= SERVER_MAX_EVENT_BYTES, "event over 1 MB re-encoded");
    }
    v
}

/// Checks every event of a batch, from its own bytes, and the body as a whole. Returns the
/// parsed body.
pub fn check_batch<B, E>(envelope: &Envelope<'_>, sent_at: u64, batch: &Batch<B, E>, limits: &Limits) -> Value
where
    B: AsRef<[u8]> + AsMut<[u8]>,
    E: AsRef<[u32]> + AsMut<[u32]>,
{
    for i in 0..batch.len() {
        let raw = std::str::from_utf8(batch.events(i..i + 1)).expect("UTF-8");
        assert!(raw.len() <= limits.max_event_bytes, "event {i} over max_event_bytes");
        check_event_json(raw);
    }
    let body = body(envelope, sent_at, batch);
    assert!(
        body.len() <= limits.max_batch_bytes,
        "body of {} bytes over max_batch_bytes {}",
        body.len(),
        limits.max_batch_bytes
    );
    assert!(batch.len() <= limits.max_events);
    let v = check_body(&body);
    assert_eq!(v["batch"].as_array().unwrap().len(), batch.len());
    v
}

/// JSON equality where numbers compare as numbers (an integer and a float of the same value
/// are equal; floats within one part in 10^15, as serde_json's default float parser is not
/// always correctly rounded).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x == y {
                return true;
            }
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x == y || ((x - y).abs() <= x.abs().max(y.abs()) * 1e-15),
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Asserts [`json_eq`], printing both on failure.
#[track_caller]
pub fn assert_json_eq(actual: &Value, expected: &Value) {
    assert!(json_eq(actual, expected), "JSON differs\n  actual:   {actual}\n  expected: {expected}");
}

/// The first 300 characters of `s`, for messages.
pub fn preview(s: &str) -> String {
    s.chars().take(300).collect()
}

/// POSTs `body` to a `fasthog-receiver` (PostHog's rules) at `/batch/` and returns the status
/// and the response body.
pub fn post_to_receiver(receiver: &fasthog_receiver::Receiver, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(receiver.addr()).expect("connect");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /batch/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("response");
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}
