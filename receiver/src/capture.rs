//! PostHog's capture rules: a request body in, a verdict out. Pure: no I/O, no shared state.
//!
//! Validation borrows from the body (`&RawValue` per field) so that accepting an event costs one
//! pass of the JSON parser and no `Value` tree; only storing events builds `Value`s.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::GzDecoder;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Decompressed bodies above this are refused with 400, as PostHog does.
pub(crate) const MAX_INFLATED_BYTES: usize = 100 * 1024 * 1024;

/// What the server wraps around an event's data when it re-encodes it (uuid, distinct_id, ip,
/// now, token, field names), counted against `max_event_bytes`.
const EVENT_OVERHEAD_BYTES: usize = 256;

/// Why a request was refused: the HTTP status and the JSON error body's `code` and `detail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub status: u16,
    pub code: &'static str,
    pub detail: String,
}

impl Rejection {
    pub fn new(status: u16, code: &'static str, detail: impl Into<String>) -> Self {
        Rejection { status, code, detail: detail.into() }
    }

    fn bad(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(400, code, detail)
    }

    fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(401, code, detail)
    }

    /// The response body: `{"type":..,"code":..,"detail":..}`, with PostHog's error types.
    pub fn body(&self) -> String {
        let kind = match self.code {
            "injected_fault" => "injected_fault",
            _ if self.status >= 500 => "server_error",
            _ => "validation_error",
        };
        serde_json::json!({
            "type": kind,
            "code": self.code,
            "detail": self.detail,
        })
        .to_string()
    }
}

/// True if the body starts with the gzip magic (`1f 8b`) and the deflate method (`08`).
pub(crate) fn is_gzip(body: &[u8]) -> bool {
    body.starts_with(&[0x1f, 0x8b, 0x08])
}

/// Returns the JSON text of `body`, inflating it into `scratch` (at most `max_inflated`
/// bytes) if it is gzip.
///
/// `hinted` is true when the request claimed gzip (`Content-Encoding` or `?compression=`):
/// PostHog refuses such a claim on a body that is not gzip.
pub(crate) fn decode<'b>(
    body: &'b [u8],
    hinted: bool,
    max_inflated: usize,
    scratch: &'b mut Vec<u8>,
) -> Result<&'b [u8], Rejection> {
    if !is_gzip(body) {
        if hinted {
            return Err(Rejection::bad(
                "gzip_hint_on_plain_body",
                "request says gzip but the body is not gzip",
            ));
        }
        return Ok(body);
    }
    scratch.clear();
    // One byte over the limit is enough to know the limit was passed.
    let mut decoder = GzDecoder::new(body).take(max_inflated as u64 + 1);
    if let Err(e) = decoder.read_to_end(scratch) {
        return Err(Rejection::bad("invalid_gzip", format!("gzip: {e}")));
    }
    if scratch.len() > max_inflated {
        return Err(Rejection::bad(
            "decompressed_too_large",
            format!("body inflates to more than {max_inflated} bytes"),
        ));
    }
    Ok(scratch)
}

/// Limits and policy for [`check`].
pub(crate) struct Rules<'a> {
    pub max_event_bytes: usize,
    /// If set, any other (valid) token is a 401.
    pub expected_api_key: Option<&'a str>,
}

/// What [`check`] learned about a request, whether or not it was accepted.
#[derive(Debug)]
pub(crate) struct Checked {
    /// Events in the request (0 if it did not parse).
    pub events: usize,
    pub sent_at: Option<String>,
    /// Parsed `uuid`s of the events that carry one, in order.
    pub uuids: Vec<u128>,
    /// The token was present, passed the rules and matched `expected_api_key`.
    pub api_key_ok: bool,
    pub verdict: Result<(), Rejection>,
}

/// Applies the capture rules to the (decompressed) JSON text of a request.
pub(crate) fn check(json: &[u8], rules: &Rules<'_>) -> Checked {
    let mut out = Checked { events: 0, sent_at: None, uuids: Vec::new(), api_key_ok: false, verdict: Ok(()) };
    out.verdict = check_into(json, rules, &mut out);
    out
}

fn check_into(json: &[u8], rules: &Rules<'_>, out: &mut Checked) -> Result<(), Rejection> {
    let (token, events) = parse_shape(json, out)?;
    out.events = events.len();
    check_token(token, rules.expected_api_key)?;
    out.api_key_ok = true;
    if events.is_empty() {
        return Err(Rejection::bad("empty_batch", "batch has no events"));
    }
    out.uuids.reserve(events.len());
    for (i, event) in events.iter().enumerate() {
        if let Some(uuid) = check_event(event).map_err(|e| at_index(e, i))? {
            out.uuids.push(uuid);
        }
    }
    // Sizes last: PostHog validates every event before its sink measures them.
    for (i, event) in events.iter().enumerate() {
        let size = event.encoded_size(rules.max_event_bytes);
        if size > rules.max_event_bytes {
            return Err(Rejection::new(
                413,
                "event_too_large",
                format!("batch[{i}] re-encodes to about {size} bytes, over {}", rules.max_event_bytes),
            ));
        }
    }
    Ok(())
}

fn at_index(mut e: Rejection, i: usize) -> Rejection {
    e.detail = format!("batch[{i}]: {}", e.detail);
    e
}

/// The request envelope. Fields are raw so that a wrong type gets our own error (and so that
/// no serde message can echo the api key).
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    api_key: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    token: Option<&'a RawValue>,
    #[serde(borrow, default)]
    batch: Option<Vec<EventRef<'a>>>,
    #[serde(borrow, default, deserialize_with = "present")]
    sent_at: Option<&'a RawValue>,
    #[serde(default)]
    #[allow(dead_code)] // Only its type is checked.
    historical_migration: Option<bool>,
    /// Present when the body is a single event rather than a batch.
    #[serde(borrow, default, deserialize_with = "present")]
    event: Option<&'a RawValue>,
}

/// One event, each field kept as its raw JSON text. Unknown fields are skipped, as PostHog
/// drops them.
#[derive(Deserialize)]
struct EventRef<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    event: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    distinct_id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    properties: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    uuid: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    offset: Option<&'a RawValue>,
    #[serde(rename = "$set", borrow, default, deserialize_with = "present")]
    set: Option<&'a RawValue>,
    #[serde(rename = "$set_once", borrow, default, deserialize_with = "present")]
    set_once: Option<&'a RawValue>,
    // Where the token lives in the bare-array and single-event shapes.
    #[serde(borrow, default, deserialize_with = "present")]
    api_key: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    token: Option<&'a RawValue>,
}

/// The one property PostHog type-checks.
#[derive(Deserialize)]
struct PropsRef<'a> {
    #[serde(rename = "$cookieless_mode", borrow, default, deserialize_with = "present")]
    cookieless_mode: Option<&'a RawValue>,
}

/// Deserializes a field that is present, keeping `null` as raw `null` (where `Option` alone
/// would fold it into "absent": `"properties": null` is a 400, a missing one is not).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Parses the body as one of the three shapes: `{"batch": [..]}`, `[..]` or a single event.
/// Returns the token (raw) and the events.
fn parse_shape<'a>(
    json: &'a [u8],
    out: &mut Checked,
) -> Result<(Option<&'a RawValue>, Vec<EventRef<'a>>), Rejection> {
    let first = json.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let events: Vec<EventRef<'a>> = from_json(json)?;
        // The token rides on the events; the first one speaks for the request.
        let token = match events.first() {
            Some(e) => one_token(e.api_key, e.token)?,
            None => None,
        };
        return Ok((token, events));
    }
    if first != Some(&b'{') {
        return Err(Rejection::bad("invalid_payload", "body must be a JSON object or array"));
    }
    let env: Envelope<'a> = from_json(json)?;
    if let Some(raw) = env.sent_at {
        match json_str(raw) {
            Some(s) => out.sent_at = Some(s.into_owned()),
            None if raw.get() == "null" => {}
            None => return Err(Rejection::bad("invalid_sent_at", "sent_at must be a string")),
        }
    }
    let token = one_token(env.api_key, env.token)?;
    match env.batch {
        Some(events) => Ok((token, events)),
        None if env.event.is_some() => {
            let event: EventRef<'a> = from_json(json)?;
            Ok((token, vec![event]))
        }
        None => Err(Rejection::bad("missing_batch", "body has no batch array")),
    }
}

fn from_json<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Result<T, Rejection> {
    serde_json::from_slice(json).map_err(|e| {
        let mut detail = e.to_string();
        detail.truncate(200);
        Rejection::bad("invalid_payload", detail)
    })
}

/// `api_key` and `token` are two names for one thing: both at once is a 400.
fn one_token<'a>(
    api_key: Option<&'a RawValue>,
    token: Option<&'a RawValue>,
) -> Result<Option<&'a RawValue>, Rejection> {
    match (api_key, token) {
        (Some(_), Some(_)) => {
            Err(Rejection::bad("both_api_key_and_token", "send either api_key or token, not both"))
        }
        (a, t) => Ok(a.or(t)),
    }
}

/// PostHog's token rules (401). Messages name the rule, never the key.
fn check_token(raw: Option<&RawValue>, expected: Option<&str>) -> Result<(), Rejection> {
    let raw = raw
        .filter(|r| r.get() != "null")
        .ok_or_else(|| Rejection::unauthorized("missing_token", "no api_key or token"))?;
    let token = json_str(raw).ok_or_else(|| Rejection::unauthorized("invalid_token", "not a string"))?;
    let token = token.trim();
    let broken = if token.is_empty() {
        Some("empty")
    } else if token.len() > 64 {
        Some("longer than 64 bytes")
    } else if !token.is_ascii() {
        Some("not ASCII")
    } else if token.contains('\0') {
        Some("contains NUL")
    } else if token.starts_with("phx_") {
        Some("a personal API key (phx_), not a project key")
    } else {
        None
    };
    if let Some(why) = broken {
        return Err(Rejection::unauthorized("invalid_token", format!("token is {why}")));
    }
    match expected {
        Some(want) if want.trim() != token => {
            Err(Rejection::unauthorized("unknown_token", "token is not this receiver's api key"))
        }
        _ => Ok(()),
    }
}

/// Checks one event; returns its uuid if it has a non-empty one.
fn check_event(ev: &EventRef<'_>) -> Result<Option<u128>, Rejection> {
    match ev.event.map(|r| (r, json_str(r))) {
        None => return Err(Rejection::bad("missing_event", "event name is missing")),
        Some((_, Some(name))) if !name.is_empty() => {}
        Some((_, Some(_))) => return Err(Rejection::bad("invalid_event", "event name is empty")),
        Some((_, None)) => return Err(Rejection::bad("invalid_event", "event name must be a string")),
    }
    check_distinct_id(ev.distinct_id)?;
    if let Some(props) = ev.properties {
        if !props.get().starts_with('{') {
            return Err(Rejection::bad("invalid_properties", "properties must be an object"));
        }
        // Most events lack it; only then is the object parsed a second time.
        if props.get().contains("$cookieless_mode") {
            let p: PropsRef<'_> = from_json(props.get().as_bytes())?;
            if p.cookieless_mode.is_some_and(|c| !matches!(c.get(), "true" | "false")) {
                return Err(Rejection::bad("invalid_cookieless_mode", "$cookieless_mode must be a bool"));
            }
        }
    }
    if ev.timestamp.is_some_and(|t| !is_str_or_null(t)) {
        return Err(Rejection::bad("invalid_timestamp", "timestamp must be a string"));
    }
    if ev.offset.is_some_and(|o| !is_integer_or_null(o)) {
        return Err(Rejection::bad("invalid_offset", "offset must be an integer"));
    }
    for (name, set) in [("$set", ev.set), ("$set_once", ev.set_once)] {
        if set.is_some_and(|s| !(s.get().starts_with('{') || s.get() == "null")) {
            return Err(Rejection::bad("invalid_set", format!("{name} must be an object")));
        }
    }
    let Some(raw) = ev.uuid.filter(|u| u.get() != "null") else {
        return Ok(None);
    };
    match json_str(raw) {
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => {
            parse_uuid(&s).map(Some).ok_or_else(|| Rejection::bad("invalid_uuid", "uuid is not a valid UUID"))
        }
        None => Err(Rejection::bad("invalid_uuid", "uuid must be a string")),
    }
}

fn check_distinct_id(raw: Option<&RawValue>) -> Result<(), Rejection> {
    let raw = raw
        .filter(|r| r.get() != "null")
        .ok_or_else(|| Rejection::bad("missing_distinct_id", "distinct_id is missing or null"))?;
    if let Some(id) = json_str(raw) {
        if id.trim().is_empty() {
            return Err(Rejection::bad("missing_distinct_id", "distinct_id is empty or whitespace"));
        }
        return Ok(());
    }
    // Numbers are stringified by PostHog; other types are almost surely a client bug.
    let first = raw.get().as_bytes()[0];
    if first == b'-' || first.is_ascii_digit() {
        return Ok(());
    }
    Err(Rejection::bad("invalid_distinct_id", "distinct_id must be a string or a number"))
}

impl EventRef<'_> {
    /// The fields PostHog keeps, with their names.
    fn kept_fields(&self) -> [(&'static str, Option<&RawValue>); 8] {
        [
            ("event", self.event),
            ("distinct_id", self.distinct_id),
            ("properties", self.properties),
            ("timestamp", self.timestamp),
            ("uuid", self.uuid),
            ("offset", self.offset),
            ("$set", self.set),
            ("$set_once", self.set_once),
        ]
    }

    /// About the size PostHog measures: the kept fields as compact JSON, embedded once more as
    /// a string (so `"` and `\` count twice), plus the wrapper. Exact escaping is only counted
    /// when the cheap bound (everything doubled) could pass `max`.
    fn encoded_size(&self, max: usize) -> usize {
        let fields = self.kept_fields();
        let present = fields.iter().filter_map(|(k, v)| v.map(|v| (k, v.get())));
        // `{` `}` plus, per field, `"k":v,`.
        let raw: usize = 2 + present.clone().map(|(k, v)| k.len() + 4 + v.len()).sum::<usize>();
        if 2 * raw + EVENT_OVERHEAD_BYTES <= max {
            return 2 * raw + EVENT_OVERHEAD_BYTES;
        }
        let escapes: usize = present.map(|(_, v)| 2 + count_escapes(v)).sum();
        raw + escapes + EVENT_OVERHEAD_BYTES
    }
}

fn count_escapes(s: &str) -> usize {
    s.bytes().filter(|&b| b == b'"' || b == b'\\').count()
}

/// The decoded content of a JSON string, borrowed when it has no escapes; `None` if `raw` is
/// not a string.
fn json_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let s = raw.get();
    if !s.starts_with('"') {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(s).ok().map(Cow::Owned)
}

fn is_str_or_null(raw: &RawValue) -> bool {
    raw.get().starts_with('"') || raw.get() == "null"
}

fn is_integer_or_null(raw: &RawValue) -> bool {
    let s = raw.get();
    s == "null" || serde_json::from_str::<i64>(s).is_ok()
}

/// Parses a UUID in the forms the `uuid` crate (and so PostHog) accepts: hyphenated, simple
/// (32 hex digits), braced, and `urn:uuid:`.
pub(crate) fn parse_uuid(s: &str) -> Option<u128> {
    let s = s.strip_prefix("urn:uuid:").unwrap_or(s);
    let s = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')).unwrap_or(s);
    let b = s.as_bytes();
    let hyphenated = b.len() == 36 && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-');
    if !(hyphenated || b.len() == 32) {
        return None;
    }
    let mut value: u128 = 0;
    let mut digits = 0;
    for (i, &c) in b.iter().enumerate() {
        if hyphenated && matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        value = value << 4 | (c as char).to_digit(16)? as u128;
        digits += 1;
    }
    (digits == 32).then_some(value)
}

/// The canonical (lowercase, hyphenated) text of a UUID.
pub(crate) fn format_uuid(u: u128) -> String {
    let h = format!("{u:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The events of an accepted request as `Value`s to store, without `api_key`/`token` (keys
/// are never stored). Only called after [`check`] accepted `json`.
pub(crate) fn events_to_store(json: &[u8]) -> Vec<Value> {
    let events = match serde_json::from_slice::<Value>(json) {
        Ok(Value::Array(events)) => events,
        Ok(Value::Object(mut obj)) => match obj.remove("batch") {
            Some(Value::Array(events)) => events,
            _ => vec![Value::Object(obj)],
        },
        _ => Vec::new(),
    };
    events
        .into_iter()
        .map(|mut e| {
            if let Value::Object(obj) = &mut e {
                strip_keys(obj);
            }
            e
        })
        .collect()
}

fn strip_keys(obj: &mut Map<String, Value>) {
    obj.remove("api_key");
    obj.remove("token");
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules<'static> = Rules { max_event_bytes: 1_000_000, expected_api_key: None };

    fn verdict(json: &str) -> Result<(), (u16, &'static str)> {
        check(json.as_bytes(), &RULES).verdict.map_err(|r| (r.status, r.code))
    }

    #[test]
    fn uuid_forms() {
        let u = 0x0190_a4b2_c3d4_7e5f_8a6b_1c2d_3e4f_5a6b_u128;
        let text = format_uuid(u);
        assert_eq!(text, "0190a4b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b");
        assert_eq!(parse_uuid(&text), Some(u));
        assert_eq!(parse_uuid(&text.to_uppercase()), Some(u));
        assert_eq!(parse_uuid(&text.replace('-', "")), Some(u));
        assert_eq!(parse_uuid(&format!("{{{text}}}")), Some(u));
        assert_eq!(parse_uuid(&format!("urn:uuid:{text}")), Some(u));
        assert_eq!(parse_uuid("0190a4b2-c3d4-7e5f-8a6b-1c2d3e4f5a6"), None);
        assert_eq!(parse_uuid("0190a4b2-c3d4-7e5f-8a6b-1c2d3e4f5a6g"), None);
        assert_eq!(parse_uuid("0190a4b2c-3d4-7e5f-8a6b-1c2d3e4f5a6b"), None);
        assert_eq!(parse_uuid("+190a4b2c3d47e5f8a6b1c2d3e4f5a6b"), None);
    }

    #[test]
    fn shapes() {
        let e = r#"{"event":"e","distinct_id":"d","api_key":"phc_x"}"#;
        assert_eq!(verdict(&format!("[{e},{e}]")), Ok(()));
        assert_eq!(verdict(e), Ok(()));
        assert_eq!(verdict("[]"), Err((401, "missing_token")));
        assert_eq!(verdict("3"), Err((400, "invalid_payload")));
        assert_eq!(verdict(r#"{"api_key":"k"}"#), Err((400, "missing_batch")));
    }

    #[test]
    fn null_is_not_absent() {
        let with = |field: &str| {
            verdict(&format!(r#"{{"api_key":"k","batch":[{{"event":"e","distinct_id":"d",{field}}}]}}"#))
        };
        assert_eq!(with(r#""properties":null"#), Err((400, "invalid_properties")));
        assert_eq!(with(r#""timestamp":null"#), Ok(()));
        assert_eq!(with(r#""uuid":null"#), Ok(()));
        assert_eq!(with(r#""offset":null"#), Ok(()));
        assert_eq!(with(r#""offset":1.5"#), Err((400, "invalid_offset")));
        assert_eq!(with(r#""$set":[]"#), Err((400, "invalid_set")));
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let json = r#"{"api_key":"\u0070hc_k","batch":[{"event":"\u0065","distinct_id":"\t\n"}]}"#;
        assert_eq!(verdict(json), Err((400, "missing_distinct_id")));
        let json = r#"{"api_key":"\u0070hx_k","batch":[{"event":"e","distinct_id":"d"}]}"#;
        assert_eq!(verdict(json), Err((401, "invalid_token")));
    }

    #[test]
    fn size_counts_escapes() {
        let quotes = "\\\"".repeat(300_000); // 600 KB raw, ~1.2 MB re-encoded
        let json = format!(
            r#"{{"api_key":"k","batch":[{{"event":"e","distinct_id":"d","properties":{{"q":"{quotes}"}}}}]}}"#
        );
        assert_eq!(verdict(&json), Err((413, "event_too_large")));
        let plain = "a".repeat(600_000);
        let json = format!(
            r#"{{"api_key":"k","batch":[{{"event":"e","distinct_id":"d","properties":{{"q":"{plain}"}}}}]}}"#
        );
        assert_eq!(verdict(&json), Ok(()));
    }

    #[test]
    fn stored_events_lose_their_keys() {
        let json = br#"[{"event":"e","distinct_id":"d","api_key":"k","x":1}]"#;
        let events = events_to_store(json);
        assert_eq!(events, vec![serde_json::json!({"event":"e","distinct_id":"d","x":1})]);
    }
}
