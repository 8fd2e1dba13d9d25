//! A test recorder for your own test suites: a [`Transport`] that keeps what would have been
//! delivered, so a test can assert on the events its code captured.
//!
//! - [`BufRecorder`] (no `std`, no allocator): appends each delivered event as one JSON line
//!   to a buffer you give it.
//! - [`Recorder`] (`std`): a cloneable handle; give one clone to
//!   [`crate::Builder::build_with_transport`] and keep the other to read [`RecordedEvent`]s.

use crate::transport::{Request, Response, Transport, TransportError};

/// Splits the comma-separated event objects of a request body into single objects.
pub fn split_events(events: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = events;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = top_level_end(rest);
        let (event, tail) = rest.split_at(end);
        rest = tail.strip_prefix(b",").unwrap_or(tail);
        Some(event)
    })
}

/// Index just past the first complete JSON value of `s` (a string, object, array or scalar).
fn top_level_end(s: &[u8]) -> usize {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for (i, &b) in s.iter().enumerate() {
        if in_str {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => {
                    in_str = false;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            // At depth 0 this closes the enclosing container: a scalar value ended before it.
            b'}' | b']' if depth == 0 => return i,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            b',' if depth == 0 => return i,
            _ => {}
        }
    }
    s.len()
}

/// The raw JSON text of the value at `path` (object keys from the top), if present. Keys are
/// compared as written (fasthog writes keys with escapes only for control characters, quotes
/// and backslashes).
pub fn json_get<'j>(json: &'j str, path: &[&str]) -> Option<&'j str> {
    let mut value = json.trim();
    for key in path {
        value = object_get(value, key)?;
    }
    Some(value)
}

fn object_get<'j>(obj: &'j str, key: &str) -> Option<&'j str> {
    let b = obj.as_bytes();
    if b.first() != Some(&b'{') {
        return None;
    }
    let mut i = 1;
    loop {
        while b.get(i).is_some_and(|c| c.is_ascii_whitespace() || *c == b',') {
            i += 1;
        }
        if b.get(i)? == &b'}' {
            return None;
        }
        let key_len = top_level_end(&b[i..]);
        let this_key = &obj[i + 1..i + key_len - 1];
        i += key_len;
        while b.get(i).is_some_and(|c| c.is_ascii_whitespace() || *c == b':') {
            i += 1;
        }
        let value_len = top_level_end(&b[i..]);
        if this_key == key {
            return Some(obj[i..i + value_len].trim());
        }
        i += value_len;
    }
}

/// Appends each delivered event as a JSON line to a fixed buffer, and answers 200. Events
/// that do not fit are counted in [`BufRecorder::overflowed`], not stored.
#[derive(Debug)]
pub struct BufRecorder<B> {
    // Interior mutability: `Transport::send` takes `&self` (several requests may be in
    // flight); each send writes in one go, never across an `.await`.
    buf: core::cell::RefCell<B>,
    used: core::cell::Cell<usize>,
    events: core::cell::Cell<usize>,
    overflowed: core::cell::Cell<usize>,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> BufRecorder<B> {
    /// A recorder writing into `buf`.
    pub fn new(buf: B) -> Self {
        BufRecorder {
            buf: core::cell::RefCell::new(buf),
            used: core::cell::Cell::new(0),
            events: core::cell::Cell::new(0),
            overflowed: core::cell::Cell::new(0),
        }
    }

    /// The recorded events, one JSON object per item. (`&mut self`: no send is running.)
    pub fn events(&mut self) -> impl Iterator<Item = &str> {
        let used = self.used.get();
        let buf: &B = self.buf.get_mut();
        let text = core::str::from_utf8(&buf.as_ref()[..used]).unwrap_or_default();
        text.lines()
    }

    /// How many events were recorded.
    pub fn len(&self) -> usize {
        self.events.get()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.events.get() == 0
    }

    /// Events delivered but not stored for lack of room.
    pub fn overflowed(&self) -> usize {
        self.overflowed.get()
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Transport for BufRecorder<B> {
    async fn send(&self, request: Request<'_>) -> Result<Response, TransportError> {
        let mut buf = self.buf.borrow_mut();
        let buf = buf.as_mut();
        for event in split_events(request.events) {
            let used = self.used.get();
            match buf.get_mut(used..used + event.len() + 1) {
                Some(dst) => {
                    dst[..event.len()].copy_from_slice(event);
                    dst[event.len()] = b'\n';
                    self.used.set(used + event.len() + 1);
                    self.events.set(self.events.get() + 1);
                }
                None => self.overflowed.set(self.overflowed.get() + 1),
            }
        }
        Ok(Response::new(200))
    }
}

#[cfg(feature = "std")]
pub use with_std::{RecordedEvent, Recorder};

#[cfg(feature = "std")]
mod with_std {
    use alloc::collections::VecDeque;
    use alloc::string::String;
    use alloc::sync::Arc;
    use alloc::vec::Vec;
    use std::sync::{Mutex, MutexGuard};

    use super::{json_get, split_events};
    use crate::transport::{Request, Response, Transport, TransportError};

    /// One delivered event.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RecordedEvent {
        /// The event object as sent.
        pub json: String,
    }

    impl RecordedEvent {
        /// The raw JSON of the value at `path`, e.g. `["properties", "qty"]`.
        pub fn get(&self, path: &[&str]) -> Option<&str> {
            json_get(&self.json, path)
        }

        /// The string at `path`, unescaped (`None` if absent or not a string).
        pub fn get_str(&self, path: &[&str]) -> Option<String> {
            unescape(self.get(path)?)
        }

        /// The event name.
        pub fn name(&self) -> String {
            self.get_str(&["event"]).unwrap_or_default()
        }

        /// The distinct_id.
        pub fn distinct_id(&self) -> String {
            self.get_str(&["distinct_id"]).unwrap_or_default()
        }

        /// The raw JSON of a property.
        pub fn property(&self, key: &str) -> Option<&str> {
            self.get(&["properties", key])
        }
    }

    /// Parsed with `serde_json` (feature `serde_json`): values to compare with `json!`.
    #[cfg(feature = "serde_json")]
    impl RecordedEvent {
        /// The whole event as sent. An error means the encoder wrote invalid JSON.
        pub fn value(&self) -> Result<serde_json::Value, serde_json::Error> {
            serde_json::from_str(&self.json)
        }

        /// The value at `path`, e.g. `["properties", "$set", "plan"]`; `None` if absent (or if
        /// the event is not valid JSON: [`RecordedEvent::value`] says why).
        pub fn value_at(&self, path: &[&str]) -> Option<serde_json::Value> {
            let mut value = self.value().ok()?;
            for key in path {
                value = value.get_mut(*key)?.take();
            }
            Some(value)
        }

        /// A property's value: `property_value("plan") == Some(json!("pro"))` where
        /// [`RecordedEvent::property`] gives the JSON text `"\"pro\""`.
        pub fn property_value(&self, key: &str) -> Option<serde_json::Value> {
            self.value_at(&["properties", key])
        }
    }

    /// Unescapes a JSON string literal.
    fn unescape(lit: &str) -> Option<String> {
        let inner = lit.strip_prefix('"')?.strip_suffix('"')?;
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let unit = hex4(&mut chars)?;
                    let code = match unit {
                        // A high surrogate: the low one follows as another `\uXXXX`.
                        0xD800..=0xDBFF => {
                            if (chars.next()?, chars.next()?) != ('\\', 'u') {
                                return None;
                            }
                            let low = hex4(&mut chars)?;
                            if !(0xDC00..=0xDFFF).contains(&low) {
                                return None;
                            }
                            0x1_0000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                        }
                        _ => unit,
                    };
                    out.push(char::from_u32(code)?);
                }
                other => out.push(other),
            }
        }
        Some(out)
    }

    /// Four hex digits of a `\u` escape.
    fn hex4(chars: &mut core::str::Chars<'_>) -> Option<u32> {
        let mut unit = 0;
        for _ in 0..4 {
            unit = unit * 16 + chars.next()?.to_digit(16)?;
        }
        Some(unit)
    }

    #[derive(Debug, Default)]
    struct State {
        events: Vec<RecordedEvent>,
        requests: usize,
        script: VecDeque<u16>,
    }

    /// A transport that keeps delivered events in memory. Clones share the same record.
    ///
    /// ```
    /// use std::time::Duration;
    /// use fasthog::{recorder::Recorder, Client, Event};
    /// let recorder = Recorder::new();
    /// let client = Client::builder("phc_test").build_with_transport(recorder.clone()).unwrap();
    /// let _ = client.capture(&Event::new("signed_up", "user-1").prop("plan", "pro"));
    /// client.flush(Duration::from_secs(5)).unwrap();
    /// let events = recorder.events();
    /// assert_eq!(events[0].name(), "signed_up");
    /// assert_eq!(events[0].property("plan"), Some("\"pro\""));
    /// // With the `serde_json` feature, values to compare with `json!`:
    /// # #[cfg(feature = "serde_json")]
    /// assert_eq!(events[0].property_value("plan"), Some(serde_json::json!("pro")));
    /// ```
    #[derive(Debug, Clone, Default)]
    pub struct Recorder {
        state: Arc<Mutex<State>>,
    }

    impl Recorder {
        /// An empty recorder that answers 200.
        pub fn new() -> Self {
            Self::default()
        }

        fn state(&self) -> MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// Answers the next requests with these statuses (then 200 again). Events of a non-2xx
        /// answer are not recorded.
        pub fn respond_with(&self, statuses: impl IntoIterator<Item = u16>) {
            self.state().script.extend(statuses);
        }

        /// Every event delivered so far, in order.
        pub fn events(&self) -> Vec<RecordedEvent> {
            self.state().events.clone()
        }

        /// The names of the events delivered so far.
        pub fn names(&self) -> Vec<String> {
            self.state().events.iter().map(RecordedEvent::name).collect()
        }

        /// How many requests were made.
        pub fn requests(&self) -> usize {
            self.state().requests
        }

        /// Forgets what was recorded.
        pub fn clear(&self) {
            self.state().events.clear();
        }
    }

    impl Transport for Recorder {
        async fn send(&self, request: Request<'_>) -> Result<Response, TransportError> {
            let mut state = self.state();
            state.requests += 1;
            let status = state.script.pop_front().unwrap_or(200);
            if (200..300).contains(&status) {
                for event in split_events(request.events) {
                    let json = String::from_utf8_lossy(event).into_owned();
                    state.events.push(RecordedEvent { json });
                }
            }
            Ok(Response::new(status))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_events_and_reads_paths() {
        let body = br#"{"a":"x,}","b":{"c":[1,{"d":2}]}},{"a":"\"q\\"},{}"#;
        let events: alloc::vec::Vec<&[u8]> = split_events(body).collect();
        assert_eq!(events.len(), 3);
        let first = core::str::from_utf8(events[0]).unwrap();
        assert_eq!(json_get(first, &["a"]), Some("\"x,}\""));
        assert_eq!(json_get(first, &["b", "c"]), Some("[1,{\"d\":2}]"));
        assert_eq!(json_get(first, &["b", "missing"]), None);
        assert_eq!(core::str::from_utf8(events[1]).unwrap(), r#"{"a":"\"q\\"}"#);
    }

    #[cfg(feature = "std")]
    #[test]
    fn unescapes_strings_with_surrogate_pairs() {
        let event = RecordedEvent { json: r#"{"event":"a\"b\\c\n\u00e9\ud83d\ude00!"}"#.into() };
        assert_eq!(event.name(), "a\"b\\c\né😀!");
        let lone = |lit: &str| RecordedEvent { json: alloc::format!(r#"{{"event":"{lit}"}}"#) };
        assert_eq!(lone(r"\ud83d").get_str(&["event"]), None);
        assert_eq!(lone(r"\ud83dx").get_str(&["event"]), None);
        assert_eq!(lone(r"\ud83d\u0041").get_str(&["event"]), None);
        assert_eq!(lone(r"\u12").get_str(&["event"]), None);
    }

    #[cfg(feature = "serde_json")]
    #[test]
    fn values_as_serde_json() {
        use serde_json::json;
        let event = RecordedEvent {
            json: r#"{"event":"e\ud83d\ude00","properties":{"n":3,"$set":{"plan":"pro"},"l":[1.5,null]}}"#
                .into(),
        };
        assert_eq!(event.value().unwrap()["event"], json!("e😀"));
        assert_eq!(event.property_value("n"), Some(json!(3)));
        assert_eq!(event.property_value("l"), Some(json!([1.5, null])));
        assert_eq!(event.value_at(&["properties", "$set", "plan"]), Some(json!("pro")));
        assert_eq!(event.property_value("missing"), None);
        assert!(RecordedEvent { json: "{".into() }.value().is_err());
    }

    #[test]
    fn a_scalar_last_in_its_object() {
        let json = r#"{"properties":{"items":3,"total":59.9},"n":true}"#;
        assert_eq!(json_get(json, &["properties", "items"]), Some("3"));
        assert_eq!(json_get(json, &["properties", "total"]), Some("59.9"));
        assert_eq!(json_get(json, &["n"]), Some("true"));
        assert_eq!(json_get("[1,2]", &[]), Some("[1,2]"));
    }
}
