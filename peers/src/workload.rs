//! The typical event every peer captures: a `'static` name, a 36-character distinct_id, and
//! four properties (two integers, a float, a short string), all derived from a counter `i`.

use std::collections::HashMap;
use std::time::SystemTime;

use fasthog::{Entry, Event, Record, Static};

/// The event name.
pub const NAME: &str = "order_filled";

/// A 36-character, UUID-shaped distinct_id, different per producer thread.
pub fn user_id(thread: usize) -> String {
    let id = format!("{:08x}-7a34-4a63-9d0b-{:012x}", 0x2f1c_8f5e_u32 ^ thread as u32, 0x0c5b_8d1f_2e3a_u64);
    debug_assert_eq!(id.len(), 36);
    id
}

/// The builder type of the typical event: four entries.
pub type Typical<'u> = Event<'u, (((((), Entry<'u>), Entry<'u>), Entry<'u>), Entry<'u>)>;

/// The typical event as a fasthog builder (what `Client::capture` takes).
#[inline(always)]
pub fn fasthog_event(user: &str, i: u64) -> Typical<'_> {
    Event::new(NAME, user)
        .prop("qty", (i % 100) as i64)
        .prop("seq", i as i64)
        .prop("price", 101.25 + (i % 7) as f64)
        .prop("venue", Static("XNAS"))
}

/// The typical event as the fixed ~1.1 KB record a fasthog lane holds: what every ring and
/// queue peer carries, so they all move the same bytes.
#[inline(always)]
pub fn fasthog_record(user: &str, i: u64) -> Record {
    fasthog_event(user, i).to_record()
}

/// The Go client's event, as its design carries it: owned strings, a time stamp taken at
/// enqueue, and a map of properties built per event.
#[derive(Debug, Clone)]
pub struct GoEvent {
    /// Event name.
    pub event: String,
    /// distinct_id.
    pub distinct_id: String,
    /// `time.Now()` at enqueue.
    pub timestamp: SystemTime,
    /// `map[string]interface{}`.
    pub properties: HashMap<String, serde_json::Value>,
}

/// The typical event, built the Go client's way.
#[inline(always)]
pub fn go_event(user: &str, i: u64) -> GoEvent {
    let mut properties = HashMap::new();
    properties.insert("qty".to_string(), serde_json::Value::from((i % 100) as i64));
    properties.insert("seq".to_string(), serde_json::Value::from(i as i64));
    properties.insert("price".to_string(), serde_json::Value::from(101.25 + (i % 7) as f64));
    properties.insert("venue".to_string(), serde_json::Value::from("XNAS"));
    GoEvent {
        event: NAME.to_string(),
        distinct_id: user.to_string(),
        timestamp: SystemTime::now(),
        properties,
    }
}

/// The typical event as a posthog-rs 0.30 `Event` (its own builder: `Event::new` stamps a
/// UUIDv7, `insert_prop` serializes each value to a `serde_json::Value`).
#[inline(always)]
pub fn posthog_event(user: &str, i: u64) -> posthog_rs::Event {
    let mut e = posthog_rs::Event::new(NAME, user);
    // `insert_prop` fails only for values serde cannot serialize; these always can.
    let _ = e.insert_prop("qty", (i % 100) as i64);
    let _ = e.insert_prop("seq", i as i64);
    let _ = e.insert_prop("price", 101.25 + (i % 7) as f64);
    let _ = e.insert_prop("venue", "XNAS");
    e
}
