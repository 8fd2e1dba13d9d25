//! The `tracing` layer under a real `tracing_subscriber::registry()`, delivering to the test
//! `Recorder`: selection by target, names, distinct_ids from fields and (nested) spans, every
//! field type, ERROR events as `$exception`, limits, and the accounting of every selected
//! event.

use std::fmt;
use std::time::Duration;

use fasthog::recorder::{RecordedEvent, Recorder};
use fasthog::tracing::PostHogLayer;
use fasthog::{Client, Snapshot};
use serde_json::{json, Value};
use tracing_subscriber::layer::SubscriberExt;

fn recording_client() -> (Client, Recorder) {
    let recorder = Recorder::new();
    let client = Client::builder("phc_test").build_with_transport(recorder.clone()).expect("a client");
    (client, recorder)
}

/// Runs `f` with a registry holding `layer` as this thread's subscriber, then flushes, and
/// returns what was delivered (parsed) and the client's counters.
fn run(layer: impl FnOnce(&Client) -> PostHogLayer, f: impl FnOnce()) -> (Vec<Value>, Snapshot) {
    let (client, recorder) = recording_client();
    let subscriber = tracing_subscriber::registry().with(layer(&client));
    tracing::subscriber::with_default(subscriber, f);
    client.flush(Duration::from_secs(10)).expect("flushed");
    let events = recorder.events().iter().map(parse).collect();
    let stats = client.stats();
    assert_eq!(
        stats.captured,
        stats.outcomes() + stats.pending,
        "every captured event is in exactly one counter: {stats:?}"
    );
    (events, stats)
}

fn parse(e: &RecordedEvent) -> Value {
    serde_json::from_str(&e.json).expect("the encoder writes valid JSON")
}

fn plain(client: &Client) -> PostHogLayer {
    PostHogLayer::new(client)
}

#[test]
fn a_selected_event_becomes_the_event_it_names_with_typed_properties() {
    let (events, stats) = run(plain, || {
        tracing::info!(
            target: "posthog",
            event = "order_filled",
            distinct_id = "user-42",
            qty = 3,
            lots = 2u64,
            big = u128::MAX,
            small_big = 7i128,
            price = 101.25,
            ok = true,
            venue = "XNAS",
            shown = %"displayed",
            debugged = ?Some(5),
            bytes = &b"ab"[..],
            "filled {} lots",
            2
        );
    });
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["event"], "order_filled");
    assert_eq!(e["distinct_id"], "user-42");
    let p = &e["properties"];
    assert_eq!(p["qty"], json!(3));
    assert_eq!(p["lots"], json!(2));
    assert_eq!(p["big"], json!(u128::MAX.to_string()), "past 64 bits: a string");
    assert_eq!(p["small_big"], json!(7));
    assert_eq!(p["price"], json!(101.25));
    assert_eq!(p["ok"], json!(true));
    assert_eq!(p["venue"], "XNAS");
    assert_eq!(p["shown"], "displayed");
    assert_eq!(p["debugged"], "Some(5)");
    assert_eq!(p["bytes"], "[61 62]", "bytes as tracing formats them");
    assert_eq!(p["message"], "filled 2 lots", "with an `event` field the message is a property");
    assert!(p.get("event").is_none() && p.get("distinct_id").is_none(), "the name and id are not properties");
    assert_eq!((stats.sent, stats.rejected, stats.truncated), (1, 0, 0));
}

#[test]
fn without_an_event_field_the_message_is_the_name() {
    let (events, _) = run(plain, || {
        let plan = "pro";
        tracing::warn!(target: "posthog", distinct_id = "user-1", plan, "signed_up");
        tracing::info!(target: "posthog", distinct_id = 42, "upgraded to {}", plan);
        tracing::info!(target: "posthog", event = %format_args!("step_{}", 3), distinct_id = %"u-3");
    });
    let names: Vec<_> = events.iter().map(|e| (e["event"].clone(), e["distinct_id"].clone())).collect();
    assert_eq!(
        names,
        [
            (json!("signed_up"), json!("user-1")),
            (json!("upgraded to pro"), json!("42")),
            (json!("step_3"), json!("u-3"))
        ]
    );
    assert!(events[0]["properties"].get("message").is_none(), "the message was the name");
    assert_eq!(events[0]["properties"]["plan"], "pro");
}

#[test]
fn events_not_selected_produce_nothing() {
    let (events, stats) = run(plain, || {
        tracing::info!(event = "order_filled", distinct_id = "user-42", "another target");
        tracing::error!(target: "posthog_other", event = "x", distinct_id = "u");
        tracing::error!(error = "boom", "errors are not exceptions unless asked");
        let span = tracing::info_span!("request", distinct_id = "user-9");
        let _g = span.enter();
        tracing::debug!(target: "app", "inside a span");
    });
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(stats.captured, 0);
}

#[test]
fn the_target_is_configurable() {
    let (events, _) = run(
        |c| PostHogLayer::new(c).target("analytics"),
        || {
            tracing::info!(target: "analytics", event = "a", distinct_id = "u");
            tracing::info!(target: "posthog", event = "b", distinct_id = "u");
        },
    );
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event"], "a");
}

#[test]
fn the_distinct_id_comes_from_the_innermost_span_that_has_one_and_the_event_field_wins() {
    let (events, _) = run(plain, || {
        let outer = tracing::info_span!("session", distinct_id = "outer-user");
        let _o = outer.enter();
        tracing::info!(target: "posthog", event = "in_outer");
        {
            let middle = tracing::info_span!("request", route = "/pay");
            let _m = middle.enter();
            tracing::info!(target: "posthog", event = "in_middle_without_id");
            let inner = tracing::info_span!("user", distinct_id = %"inner-user");
            let _i = inner.enter();
            tracing::info!(target: "posthog", event = "in_inner");
            tracing::info!(target: "posthog", event = "field_wins", distinct_id = "field-user");
        }
        tracing::info!(target: "posthog", event = "back_in_outer");
        // An explicit parent is looked up in the registry.
        let other = tracing::info_span!(parent: None, "other", distinct_id = "parent-user");
        tracing::info!(target: "posthog", parent: &other, event = "explicit_parent");
        // A root event has no span.
        tracing::info!(target: "posthog", parent: None, event = "root", distinct_id = "root-user");
    });
    let got: Vec<_> = events.iter().map(|e| format!("{}={}", e["event"], e["distinct_id"])).collect();
    assert_eq!(
        got,
        [
            r#""in_outer"="outer-user""#,
            r#""in_middle_without_id"="outer-user""#,
            r#""in_inner"="inner-user""#,
            r#""field_wins"="field-user""#,
            r#""back_in_outer"="outer-user""#,
            r#""explicit_parent"="parent-user""#,
            r#""root"="root-user""#,
        ]
    );
}

#[test]
fn a_distinct_id_recorded_later_on_an_entered_span_is_seen() {
    let (events, _) = run(plain, || {
        let span = tracing::info_span!("request", distinct_id = tracing::field::Empty);
        let _g = span.enter();
        tracing::info!(target: "posthog", event = "before_login");
        span.record("distinct_id", "user-after-login");
        tracing::info!(target: "posthog", event = "after_login");
    });
    assert_eq!(events.len(), 1, "before the record there is no id: rejected");
    assert_eq!(events[0]["event"], "after_login");
    assert_eq!(events[0]["distinct_id"], "user-after-login");
}

#[test]
fn spans_deeper_than_the_tracked_stack_are_resolved_through_the_registry() {
    let depth = fasthog::tracing::MAX_SPAN_DEPTH + 8;
    let (events, _) = run(plain, || {
        let root = tracing::info_span!("root", distinct_id = "deep-user");
        let _r = root.enter();
        let spans: Vec<_> = (0..depth).map(|_| tracing::info_span!("level")).collect();
        let guards: Vec<_> = spans.iter().map(|s| s.enter()).collect();
        tracing::info!(target: "posthog", event = "deep");
        drop(guards);
        tracing::info!(target: "posthog", event = "shallow_again");
    });
    let got: Vec<_> = events.iter().map(|e| (e["event"].clone(), e["distinct_id"].clone())).collect();
    assert_eq!(got, [(json!("deep"), json!("deep-user")), (json!("shallow_again"), json!("deep-user"))]);
}

#[test]
fn an_event_without_any_distinct_id_is_rejected_or_takes_the_default() {
    let (events, stats) = run(plain, || {
        tracing::info!(target: "posthog", event = "anonymous");
        tracing::info!(target: "posthog", distinct_id = "u");
    });
    assert!(events.is_empty());
    assert_eq!((stats.captured, stats.rejected), (2, 2), "no id, and no name: both counted rejected");

    let (events, stats) = run(
        |c| PostHogLayer::new(c).default_distinct_id("billing-service"),
        || tracing::info!(target: "posthog", event = "nightly_run"),
    );
    assert_eq!(stats.sent, 1);
    assert_eq!(events[0]["distinct_id"], "billing-service");
    assert_eq!(events[0]["properties"]["$process_person_profile"], false, "a service is not a person");
}

#[test]
fn names_and_distinct_ids_over_the_limit_are_cut_and_counted() {
    let long_name = "n".repeat(250);
    let long_id = "é".repeat(300); // 600 bytes: past the first buffer, within the long one
    let (events, stats) = run(plain, || {
        tracing::info!(target: "posthog", event = long_name.as_str(), distinct_id = long_id.as_str());
        tracing::info!(target: "posthog", event = "debug_id", distinct_id = ?long_id);
        tracing::info!(target: "posthog", event = "short", distinct_id = "u");
    });
    assert_eq!(events.len(), 3);
    let name = events[0]["event"].as_str().unwrap();
    let id = events[0]["distinct_id"].as_str().unwrap();
    assert_eq!((name.chars().count(), id.chars().count()), (200, 200));
    assert!(long_name.starts_with(name) && long_id.starts_with(id));
    let debug_id = events[1]["distinct_id"].as_str().unwrap();
    assert_eq!(debug_id.chars().count(), 200);
    assert!(debug_id.starts_with("\"éé"), "{debug_id}");
    assert_eq!(stats.truncated, 3, "two in the first event, one in the second");
    assert_eq!(stats.sent, 3);
}

#[derive(Debug)]
struct Refused;
impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection refused")
    }
}
impl std::error::Error for Refused {}

#[derive(Debug)]
struct Fetch(Refused);
impl fmt::Display for Fetch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fetching prices failed")
    }
}
impl std::error::Error for Fetch {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn error_events_become_exceptions_when_asked() {
    let (events, stats) = run(
        |c| PostHogLayer::new(c).exceptions(true),
        || {
            let span = tracing::info_span!("request", distinct_id = "user-5");
            let _g = span.enter();
            let err = Fetch(Refused);
            tracing::error!(error = &err as &dyn std::error::Error, attempt = 3, "quote failed");
            tracing::error!(target: "app::db", code = 7, "pool exhausted");
            tracing::error!(target: "app::db", code = 8);
            tracing::warn!("a warning is not an exception");
            tracing::error!(target: "fasthog::flusher", "fasthog's own lines are never captured");
            tracing::error!(target: "posthog", event = "payment_failed", reason = "card");
        },
    );
    assert_eq!(events.len(), 4, "{events:#?}");
    let chained = &events[0];
    assert_eq!(chained["event"], "$exception");
    assert_eq!(chained["distinct_id"], "user-5");
    let p = &chained["properties"];
    assert_eq!(
        p["$exception_list"],
        json!([
            {"type": "Error", "value": "fetching prices failed",
             "mechanism": {"type": "generic", "handled": true, "synthetic": false, "exception_id": 0}},
            {"type": "Error", "value": "connection refused",
             "mechanism": {"type": "chained", "handled": true, "synthetic": false, "exception_id": 1, "parent_id": 0}},
        ])
    );
    assert_eq!(p["$exception_level"], "error");
    assert_eq!(p["message"], "quote failed");
    assert_eq!(p["attempt"], 3);
    assert!(p.get("error").is_none(), "the error is the list");

    let message = &events[1]["properties"];
    assert_eq!(
        message["$exception_list"],
        json!([{"type": "app::db", "value": "pool exhausted",
                "mechanism": {"type": "generic", "handled": true, "synthetic": true}}])
    );
    assert_eq!(message["code"], 7);
    assert!(message.get("message").is_none());

    let bare = &events[2]["properties"]["$exception_list"][0];
    assert_eq!(bare["type"], "app::db");
    assert!(bare["value"].as_str().unwrap().starts_with("event tests/tracing.rs:"), "{bare}");

    assert_eq!(events[3]["event"], "payment_failed", "a selected ERROR event keeps its name");
    assert_eq!(stats.sent, 4);
}

#[test]
fn every_selected_event_ends_in_exactly_one_counter() {
    // A small client and a burst past its memory: events may be dropped, some are rejected,
    // the rest sent; nothing is unaccounted for.
    let recorder = Recorder::new();
    let client = Client::builder("phc_test")
        .memory(256 << 10)
        .lanes(1)
        .build_with_transport(recorder.clone())
        .expect("a client");
    let subscriber = tracing_subscriber::registry().with(PostHogLayer::new(&client));
    let selected = 5_000u64;
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..selected {
            if i % 10 == 0 {
                tracing::info!(target: "posthog", event = "no_id", i);
            } else {
                tracing::info!(target: "posthog", event = "burst", distinct_id = "u", i, pad = "x".repeat(40).as_str());
            }
            tracing::info!(target: "other", "never captured {i}");
        }
    });
    let stats = client.shutdown(Duration::from_secs(10)).expect("shut down");
    assert_eq!(stats.captured, selected);
    assert_eq!(stats.pending, 0);
    assert_eq!(stats.outcomes(), selected, "{stats:?}");
    assert_eq!(stats.rejected, selected / 10);
    assert_eq!(stats.sent as usize, recorder.events().len());
}

#[test]
fn a_long_message_beside_an_event_field_is_sent_whole() {
    let long = "m".repeat(300);
    let (events, stats) = run(plain, || {
        tracing::info!(target: "posthog", event = "noted", distinct_id = "u", "{long}");
        // More properties than the one-visit buffer holds: written into the lane instead.
        tracing::info!(
            target: "posthog", event = "wide", distinct_id = "u",
            a = long.as_str(), b = 1, c = 2.5, d = true, e = "x", f = 3u64
        );
    });
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"], "noted");
    assert_eq!(events[0]["properties"]["message"].as_str(), Some(long.as_str()));
    let p = &events[1]["properties"];
    assert_eq!(
        (p["a"].as_str(), &p["b"], &p["c"], &p["d"], &p["e"], &p["f"]),
        (Some(long.as_str()), &json!(1), &json!(2.5), &json!(true), &json!("x"), &json!(3))
    );
    assert_eq!(stats.truncated, 0);
}

#[test]
fn a_layer_beside_it_still_sees_every_event() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts the events it is given.
    struct Counting(Arc<AtomicUsize>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Counting {
        fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    let seen = Arc::new(AtomicUsize::new(0));
    let (client, recorder) = recording_client();
    let subscriber =
        tracing_subscriber::registry().with(PostHogLayer::new(&client)).with(Counting(seen.clone()));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..3 {
            tracing::info!(target: "app", i, "not selected");
            tracing::info!(target: "posthog", event = "selected", distinct_id = "u", i);
        }
    });
    client.flush(Duration::from_secs(10)).expect("flushed");
    assert_eq!(seen.load(Ordering::Relaxed), 6, "the PostHog layer filters for itself, not for the stack");
    assert_eq!(recorder.names(), ["selected"; 3]);
}
