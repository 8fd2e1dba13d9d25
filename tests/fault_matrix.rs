//! Every fault server from one table (issue 9): for each row the real client (smol flusher,
//! ureq) captures a few events, flushes, and shuts down with a short deadline, and for every row
//! - `captured == outcomes()` (sent + failed + dropped + rejected + sampled + filtered), and `pending == 0` after shutdown;
//! - shutdown returned within its deadline + 1 s;
//! - no log line, at any level and from any crate, holds the key or 8 bytes of its secret part
//!   (ureq-proto's `Trace` hex dumps excepted: see `assert_no_key_logged`).
//!
//! Rows run at once, each on its own thread against its own loopback server, so the whole
//! table takes about one deadline. Nothing leaves 127.0.0.1.
#![cfg(feature = "std")]

#[path = "common/delivery.rs"]
mod support;

#[path = "common/faults.rs"]
mod faults;

use std::time::{Duration, Instant};

use fasthog::flusher::RetryPolicy;
use fasthog::{Client, Event, Static};
use faults::{response, FaultServer, Reply};
use support::*;

/// Retries quick enough that each row goes through its whole policy within the flush below.
const RETRY: RetryPolicy =
    RetryPolicy { max_attempts: 3, initial_backoff_ms: 5, max_backoff_ms: 20, max_retry_after_ms: 100 };
const FLUSH: Duration = Duration::from_millis(800);
const DEADLINE: Duration = Duration::from_millis(300);
const EVENTS: usize = 40;

/// What a row sends.
#[derive(Clone, Copy)]
enum Input {
    /// `EVENTS` ordinary events.
    Plain,
    /// Hostile events: empty and blank ids, NaN, a long string, many properties, control
    /// characters and the key itself as a property value.
    Hostile,
}

struct Row {
    name: &'static str,
    reply: fn(usize, &str) -> Reply,
    input: Input,
}

fn far_date() -> String {
    imf_fixdate(4_102_444_800) // 2100-01-01
}

fn rows() -> Vec<Row> {
    vec![
        Row { name: "500 always", reply: |_, _| response(500, &[], "internal error"), input: Input::Plain },
        Row {
            name: "503 with a huge Retry-After",
            reply: |_, _| response(503, &[("Retry-After", "999999999999")], ""),
            input: Input::Plain,
        },
        Row {
            name: "429 with a far HTTP date",
            reply: |_, _| response(429, &[("Retry-After", &far_date())], ""),
            input: Input::Plain,
        },
        Row { name: "connection reset", reply: |_, _| Reply::Reset, input: Input::Plain },
        Row { name: "endless headers", reply: |_, _| Reply::EndlessHeaders, input: Input::Plain },
        Row { name: "503 with an endless body", reply: |_, _| Reply::EndlessBody(503), input: Input::Plain },
        Row { name: "200 with an endless body", reply: |_, _| Reply::EndlessBody(200), input: Input::Plain },
        Row {
            name: "garbage response",
            reply: |_, _| Reply::Raw(b"\x00\xffNOT HTTP AT ALL\r\n\r\n{]".to_vec()),
            input: Input::Plain,
        },
        Row { name: "hang", reply: |_, _| Reply::Hang, input: Input::Plain },
        Row {
            name: "redirect",
            reply: |_, _| response(302, &[("Location", "http://127.0.0.1:9/batch/")], ""),
            input: Input::Plain,
        },
        Row {
            name: "400 with the key in the body",
            reply: |_, _| response(400, &[], &format!("{}{KEY}{}", "x".repeat(140), " rest")),
            input: Input::Plain,
        },
        Row {
            name: "400 echoing the key at every offset",
            reply: |i, _| response(400, &[], &format!("{}{KEY}", "y".repeat(120 + i % 64))),
            input: Input::Plain,
        },
        Row { name: "413 always", reply: |_, _| response(413, &[], "too large"), input: Input::Plain },
        Row {
            name: "hostile inputs to a server that accepts",
            reply: |_, _| response(200, &[], r#"{"status":"Ok"}"#),
            input: Input::Hostile,
        },
    ]
}

fn capture(client: &Client, input: Input) {
    match input {
        Input::Plain => {
            for i in 0..EVENTS {
                let _ = client.capture(&Event::new("matrix", "matrix-user").prop("i", i as i64));
            }
        }
        Input::Hostile => {
            let long: &'static str = Box::leak("é".repeat(5_000).into_boxed_str());
            let many: Vec<(String, i64)> = (0..100).map(|k| (format!("p{k}"), k)).collect();
            let _ = client.capture(&Event::new("hostile", ""));
            let _ = client.capture(&Event::new("hostile", " \t "));
            let _ = client.capture(&Event::new("", "u"));
            let _ =
                client.capture(&Event::new("hostile", "u").prop("nan", f64::NAN).prop("inf", f64::INFINITY));
            let _ = client.capture(&Event::new("hostile", "u").prop("long", Static(long)));
            let _ =
                client.capture(&Event::new("hostile", "u").props(many.iter().map(|(k, v)| (k.as_str(), *v))));
            let _ = client
                .capture(&Event::new("hostile\u{0}\u{1b}[31m", "u\n\r\"\\").prop("k\u{7f}", "v\u{2028}"));
            let _ = client.capture(&Event::new("hostile", "u").prop("key", KEY));
            let _ = client.capture(&Event::new("hostile", long).set(long, long));
        }
    }
}

/// Runs one row; returns a description of what broke, if anything.
fn run(row: &Row) -> Result<(), String> {
    let reply = row.reply;
    let server = FaultServer::start(move |i| reply(i, KEY));
    let client = Client::builder(KEY)
        .host(server.url())
        .environment("fault-matrix")
        .retry(RETRY)
        .batch_size(16)
        .connect_timeout(Duration::from_millis(200))
        .http_timeout(Duration::from_millis(300))
        .build()
        .map_err(|e| format!("build: {e}"))?;
    capture(&client, row.input);
    let _ = client.flush(FLUSH); // may time out (hangs): the shutdown below must still hold
    let started = Instant::now();
    let stats = client.shutdown(DEADLINE).map_err(|e| format!("shutdown: {e}"))?;
    let took = started.elapsed();
    if took > DEADLINE + Duration::from_secs(1) {
        return Err(format!("shutdown took {took:?}"));
    }
    if stats.pending != 0 {
        return Err(format!("pending after shutdown: {stats:?}"));
    }
    if stats.captured
        != stats.sent + stats.failed + stats.dropped + stats.rejected + stats.sampled + stats.filtered
    {
        return Err(format!("accounting: {stats:?}"));
    }
    if stats.captured == 0 {
        return Err("nothing captured".into());
    }
    Ok(())
}

#[test]
fn every_fault_server_keeps_the_accounting_the_deadline_and_the_key() {
    install_logger();
    let rows = rows();
    let results: Vec<(&str, Result<(), String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = rows.iter().map(|row| (row.name, s.spawn(move || run(row)))).collect();
        handles
            .into_iter()
            .map(|(name, h)| (name, h.join().unwrap_or_else(|_| Err("panicked".into()))))
            .collect()
    });
    let broken: Vec<String> =
        results.iter().filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name}: {e}"))).collect();
    assert!(broken.is_empty(), "rows that broke:\n{}", broken.join("\n"));
    assert!(!lines().is_empty(), "the logger captured lines");
    assert_no_key_logged();
}
