//! The ureq transport keeps its threads and connections: requests go to long-lived sender
//! threads (the `blocking` pool it replaced started one for nearly every request), at most one
//! per request in flight, over reused connections. (That ureq's per-request lookup, which
//! started a thread too, goes through the remembering resolver is a unit test in
//! `src/client/http.rs`.) Alone in its test binary: it counts the process's threads.
#![cfg(all(feature = "ureq", target_os = "linux"))]

use std::time::Duration;

use fasthog::client::HttpTransport;
use fasthog::transport::{Request, Transport};
use fasthog_receiver::Receiver;
use futures_lite::future::block_on;

/// Threads of this process named `name` (as Linux keeps it: its first 15 bytes).
fn threads_named(name: &str) -> usize {
    let name = &name[..name.len().min(15)];
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .count()
}

fn request(body: &[u8]) -> Request<'_> {
    Request {
        head: b"{\"api_key\":\"phc_test_key_0000000000000000000000000\",\"batch\":[",
        events: body,
        tail: b"]}",
        event_count: 1,
        attempt: 1,
    }
}

#[test]
fn sends_reuse_sender_threads_and_connections() {
    let receiver = Receiver::start(Default::default()).expect("receiver");
    // The receiver serves each connection on a thread of its own (the names of its accept
    // thread and its connection threads share their first 15 bytes).
    let receiver_threads = || threads_named("fasthog-receiver-conn");
    let transport =
        HttpTransport::new(&receiver.url(), Duration::from_secs(2), Duration::from_secs(5), Some(1));
    let event = br#"{"event":"e","distinct_id":"u","properties":{}}"#;

    // One at a time: one sender thread, one connection, whatever the number of requests.
    let ok =
        |r: Result<fasthog::transport::Response, fasthog::transport::TransportError>| r.expect("sent").status;
    assert_eq!(ok(block_on(transport.send(request(event)))), 200);
    let senders = threads_named("fasthog-sender");
    // Counted once both have run (a thread takes its name when it starts).
    let with_one_connection = receiver_threads();
    for _ in 0..50 {
        assert_eq!(ok(block_on(transport.send(request(event)))), 200);
    }
    assert_eq!(senders, 1, "one sender for sequential requests");
    assert_eq!(threads_named("fasthog-sender"), 1);
    assert_eq!(receiver_threads(), with_one_connection, "one connection, reused");
    // Four at once: four senders, kept for the next four.
    let four = || {
        block_on(futures_lite::future::zip(
            futures_lite::future::zip(transport.send(request(event)), transport.send(request(event))),
            futures_lite::future::zip(transport.send(request(event)), transport.send(request(event))),
        ))
    };
    for _ in 0..3 {
        let ((a, b), (c, d)) = four();
        for r in [a, b, c, d] {
            assert_eq!(ok(r), 200);
        }
    }
    let senders = threads_named("fasthog-sender");
    assert!((2..=4).contains(&senders), "{senders} sender threads for 4 requests in flight");
    let connections = 1 + receiver_threads() - with_one_connection;
    assert!(connections <= 4, "{connections} connections for 4 requests in flight");

    // Dropping the transport ends its senders.
    drop(transport);
    let gone = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        threads_named("fasthog-sender") == 0
    });
    assert!(gone, "sender threads left after the transport was dropped");
}
