//! How to test your own code's analytics: build the client over a `Recorder` instead of
//! PostHog, run the code, flush, and assert on what would have been delivered. Copy this into
//! your crate's `tests/`; it needs no network.

use std::time::Duration;

use fasthog::recorder::Recorder;
use fasthog::{Client, Event, Static};

/// The code under test: a checkout that reports what happened.
fn checkout(analytics: &Client, user: &str, items: u32, total: f64) {
    let _ = analytics.capture(
        &Event::new("checkout_completed", user)
            .prop("items", items)
            .prop("total", total)
            .prop("currency", Static("EUR"))
            .set("last_checkout_items", items),
    );
}

fn recording_client() -> (Client, Recorder) {
    let recorder = Recorder::new();
    // Any valid-looking project key: the recorder never sends it anywhere.
    let client = Client::builder("phc_test").build_with_transport(recorder.clone()).expect("a client");
    (client, recorder)
}

#[test]
fn checkout_reports_one_event_with_its_properties() {
    let (client, recorder) = recording_client();

    checkout(&client, "user-42", 3, 59.9);
    client.flush(Duration::from_secs(5)).expect("delivered to the recorder");

    assert_eq!(recorder.names(), ["checkout_completed"]);
    let event = &recorder.events()[0];
    assert_eq!(event.distinct_id(), "user-42");
    // Property values are the JSON text as sent.
    assert_eq!(event.property("items"), Some("3"));
    assert_eq!(event.property("total"), Some("59.9"));
    assert_eq!(event.get_str(&["properties", "currency"]).as_deref(), Some("EUR"));
    assert_eq!(event.get(&["properties", "$set", "last_checkout_items"]), Some("3"));
}

#[test]
fn a_failing_server_is_retried_and_the_event_still_arrives() {
    let (client, recorder) = recording_client();
    // The next request gets a 503; the flusher retries it.
    recorder.respond_with([503]);

    checkout(&client, "user-7", 1, 5.0);
    let stats = client.shutdown(Duration::from_secs(10)).expect("shut down in time");

    assert_eq!(recorder.names(), ["checkout_completed"]);
    assert_eq!(recorder.requests(), 2);
    assert_eq!((stats.sent, stats.failed, stats.retried), (1, 0, 1));
}

/// With fasthog's `serde_json` feature (`fasthog = { version = "..", features = ["serde_json"] }`
/// in your `[dev-dependencies]`), values come back as `serde_json::Value`s.
#[cfg(feature = "serde_json")]
#[test]
fn properties_as_serde_json_values() {
    use serde_json::json;
    let (client, recorder) = recording_client();

    checkout(&client, "user-42", 3, 59.9);
    client.flush(Duration::from_secs(5)).expect("delivered to the recorder");

    let event = &recorder.events()[0];
    assert_eq!(event.property_value("items"), Some(json!(3)));
    assert_eq!(event.property_value("currency"), Some(json!("EUR")));
    assert_eq!(event.value_at(&["properties", "$set"]), Some(json!({ "last_checkout_items": 3 })));
}
