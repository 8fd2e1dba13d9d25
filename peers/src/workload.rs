//! The events every peer captures, all derived from a counter `i`:
//!
//! - [`Typical`]: a `'static` name, a 36-character distinct_id, and four properties (two
//!   integers, a float, a short string);
//! - [`Props16`]: the same four kinds of property four times over (16 properties).
//!
//! Each comes in every peer's own representation: a fasthog builder, the compact `#[repr(C)]`
//! record a ring or queue peer would push for it ([`TypicalRecord`], 128 bytes;
//! [`Props16Record`], 384 bytes: the same values, strings inline with their length), the Go
//! client's event (owned strings and a property map), and a posthog-rs `Event`.

use std::collections::HashMap;
use std::time::SystemTime;

use fasthog::{Event, Prop, Props};

/// The event name.
pub const NAME: &str = "order_filled";

/// A 36-character, UUID-shaped distinct_id, different per producer thread.
pub fn user_id(thread: usize) -> String {
    let id = format!("{:08x}-7a34-4a63-9d0b-{:012x}", 0x2f1c_8f5e_u32 ^ thread as u32, 0x0c5b_8d1f_2e3a_u64);
    debug_assert_eq!(id.len(), 36);
    id
}

/// One event shape, in each peer's representation.
pub trait Workload: Send + Sync + 'static {
    /// For tables: "typical event", "16 properties".
    const LABEL: &'static str;
    /// The fasthog builder's property chain.
    type Props: Props;
    /// The compact record a ring or queue peer pushes.
    type Record: Copy + Send + 'static;
    /// The event as a fasthog builder (what `Client::capture` takes).
    fn event(user: &str, i: u64) -> Event<'_, Self::Props>;
    /// The event as a compact record of the same values.
    fn record(user: &str, i: u64) -> Self::Record;
    /// The event built the Go client's way.
    fn go(user: &str, i: u64) -> GoEvent;
    /// The event as a posthog-rs 0.30 `Event`.
    fn posthog(user: &str, i: u64) -> posthog_rs::Event;
}

/// Which [`Workload`] a run uses (for configs and command lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// [`Typical`].
    Typical,
    /// [`Props16`].
    Props16,
}

impl Shape {
    /// For tables.
    pub fn label(self) -> &'static str {
        match self {
            Shape::Typical => Typical::LABEL,
            Shape::Props16 => Props16::LABEL,
        }
    }

    /// Bytes of the compact record the ring and queue peers push.
    pub fn record_bytes(self) -> usize {
        match self {
            Shape::Typical => size_of::<TypicalRecord>(),
            Shape::Props16 => size_of::<Props16Record>(),
        }
    }

    /// Lane bytes fasthog's entry of this event takes (`to_entry().lane_bytes()` of the
    /// event the harness captures; the numbers are fixed-width, so every `i` gives the same).
    pub fn lane_bytes(self) -> usize {
        let user = user_id(0);
        match self {
            Shape::Typical => Typical::event(&user, 0).to_entry().lane_bytes(),
            Shape::Props16 => Props16::event(&user, 0).to_entry().lane_bytes(),
        }
    }
}

type K = &'static str;
/// The typical event's four properties after `P`.
type Four<P> = ((((P, Prop<K, i64>), Prop<K, i64>), Prop<K, f64>), Prop<K, &'static str>);

/// The typical event: `qty`, `seq` (ints), `price` (float), `venue` ("XNAS").
#[derive(Debug, Clone, Copy)]
pub struct Typical;

/// The 16-property event: the typical four, then `k4`..`k15` of the same kinds.
#[derive(Debug, Clone, Copy)]
pub struct Props16;

#[inline(always)]
fn values(i: u64) -> (i64, i64, f64) {
    ((i % 100) as i64, i as i64, 101.25 + (i % 7) as f64)
}

/// `s` inline: its first `N` bytes and its length.
#[inline(always)]
fn inline<const N: usize>(s: &str) -> ([u8; N], u8) {
    let n = s.len().min(N).min(255);
    let mut bytes = [0u8; N];
    bytes[..n].copy_from_slice(&s.as_bytes()[..n]);
    (bytes, n as u8)
}

/// The typical event as a compact record: the static name as a reference, the numbers, the
/// distinct_id and the short string inline with their lengths. 128 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TypicalRecord {
    /// The event name (`'static`).
    pub name: &'static str,
    /// `qty`.
    pub qty: i64,
    /// `seq`.
    pub seq: i64,
    /// `price`.
    pub price: f64,
    /// Bytes of `id` used.
    pub id_len: u8,
    /// Bytes of `venue` used.
    pub venue_len: u8,
    /// The distinct_id.
    pub id: [u8; 64],
    /// `venue`.
    pub venue: [u8; 22],
}

const _: () = assert!(size_of::<TypicalRecord>() == 128);

/// The 16-property event as a compact record: the name, 12 numbers, the distinct_id and the
/// four short strings inline with their lengths. 384 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Props16Record {
    /// The event name (`'static`).
    pub name: &'static str,
    /// `qty`, `k4`, `k8`, `k12`.
    pub qty: [i64; 4],
    /// `seq`, `k5`, `k9`, `k13`.
    pub seq: [i64; 4],
    /// `price`, `k6`, `k10`, `k14`.
    pub price: [f64; 4],
    /// Bytes of `id` used.
    pub id_len: u8,
    /// Bytes of each `venue` used.
    pub venue_len: [u8; 4],
    /// The distinct_id.
    pub id: [u8; 64],
    /// `venue`, `k7`, `k11`, `k15`.
    pub venue: [[u8; 50]; 4],
}

const _: () = assert!(size_of::<Props16Record>() == 384);

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

const KEYS16: [[&str; 4]; 4] = [
    ["qty", "seq", "price", "venue"],
    ["k4", "k5", "k6", "k7"],
    ["k8", "k9", "k10", "k11"],
    ["k12", "k13", "k14", "k15"],
];

fn go_event<const N: usize>(user: &str, i: u64, keys: &[[&str; 4]; N]) -> GoEvent {
    let (q, s, p) = values(i);
    let mut properties = HashMap::new();
    for k in keys {
        properties.insert(k[0].to_string(), serde_json::Value::from(q));
        properties.insert(k[1].to_string(), serde_json::Value::from(s));
        properties.insert(k[2].to_string(), serde_json::Value::from(p));
        properties.insert(k[3].to_string(), serde_json::Value::from("XNAS"));
    }
    GoEvent {
        event: NAME.to_string(),
        distinct_id: user.to_string(),
        timestamp: SystemTime::now(),
        properties,
    }
}

fn posthog_event<const N: usize>(user: &str, i: u64, keys: &[[&str; 4]; N]) -> posthog_rs::Event {
    let (q, s, p) = values(i);
    let mut e = posthog_rs::Event::new(NAME, user);
    // `insert_prop` fails only for values serde cannot serialize; these always can.
    for k in keys {
        let _ = e.insert_prop(k[0], q);
        let _ = e.insert_prop(k[1], s);
        let _ = e.insert_prop(k[2], p);
        let _ = e.insert_prop(k[3], "XNAS");
    }
    e
}

impl Workload for Typical {
    const LABEL: &'static str = "typical event";
    type Props = Four<()>;
    type Record = TypicalRecord;

    #[inline(always)]
    fn event(user: &str, i: u64) -> Event<'_, Self::Props> {
        let (q, s, p) = values(i);
        Event::new(NAME, user).prop("qty", q).prop("seq", s).prop("price", p).prop("venue", "XNAS")
    }

    #[inline(always)]
    fn record(user: &str, i: u64) -> TypicalRecord {
        let (qty, seq, price) = values(i);
        let (id, id_len) = inline(user);
        let (venue, venue_len) = inline("XNAS");
        TypicalRecord { name: NAME, qty, seq, price, id_len, venue_len, id, venue }
    }

    fn go(user: &str, i: u64) -> GoEvent {
        go_event(user, i, &[KEYS16[0]])
    }

    fn posthog(user: &str, i: u64) -> posthog_rs::Event {
        posthog_event(user, i, &[KEYS16[0]])
    }
}

impl Workload for Props16 {
    const LABEL: &'static str = "16 properties";
    type Props = Four<Four<Four<Four<()>>>>;
    type Record = Props16Record;

    #[inline(always)]
    fn event(user: &str, i: u64) -> Event<'_, Self::Props> {
        let (q, s, p) = values(i);
        Event::new(NAME, user)
            .prop("qty", q)
            .prop("seq", s)
            .prop("price", p)
            .prop("venue", "XNAS")
            .prop("k4", q)
            .prop("k5", s)
            .prop("k6", p)
            .prop("k7", "XNAS")
            .prop("k8", q)
            .prop("k9", s)
            .prop("k10", p)
            .prop("k11", "XNAS")
            .prop("k12", q)
            .prop("k13", s)
            .prop("k14", p)
            .prop("k15", "XNAS")
    }

    #[inline(always)]
    fn record(user: &str, i: u64) -> Props16Record {
        let (q, s, p) = values(i);
        let (id, id_len) = inline(user);
        let (v, n) = inline::<50>("XNAS");
        Props16Record {
            name: NAME,
            qty: [q; 4],
            seq: [s; 4],
            price: [p; 4],
            id_len,
            venue_len: [n; 4],
            id,
            venue: [v; 4],
        }
    }

    fn go(user: &str, i: u64) -> GoEvent {
        go_event(user, i, &KEYS16)
    }

    fn posthog(user: &str, i: u64) -> posthog_rs::Event {
        posthog_event(user, i, &KEYS16)
    }
}

/// The typical event as a fasthog builder.
#[inline(always)]
pub fn fasthog_event(user: &str, i: u64) -> Event<'_, <Typical as Workload>::Props> {
    Typical::event(user, i)
}

/// The typical event as a posthog-rs 0.30 `Event` (its own builder: `Event::new` stamps a
/// UUIDv7, `insert_prop` serializes each value to a `serde_json::Value`).
pub fn posthog_event_typical(user: &str, i: u64) -> posthog_rs::Event {
    Typical::posthog(user, i)
}
