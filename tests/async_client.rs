//! `flush_async` and `shutdown_async` from tokio and smol, each on a single-threaded runtime:
//! the loopback server answers only once a task *on that same thread* has run, so a wait that
//! blocked the runtime thread would never see its answer (and the test would fail by its
//! timeout, not hang). Nothing leaves 127.0.0.1.
#![cfg(feature = "std")]

#[path = "common/delivery.rs"]
mod support;

#[path = "common/faults.rs"]
mod faults;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fasthog::Client;
use faults::{response, FaultServer};
use support::*;

/// A server that answers 200 once `gate` is open (or fails the request after 10 s).
fn gated_server(gate: Arc<AtomicBool>) -> FaultServer {
    FaultServer::start(move |_| {
        if wait_for(Duration::from_secs(10), || gate.load(Ordering::Acquire)) {
            response(200, &[], r#"{"status":"Ok"}"#)
        } else {
            response(500, &[], "the gate never opened: the runtime thread was blocked")
        }
    })
}

fn client(server: &FaultServer) -> Client {
    install_logger();
    builder(&server.url()).http_timeout(Duration::from_secs(20)).build().unwrap()
}

#[test]
fn flush_and_shutdown_async_leave_a_tokio_current_thread_runtime_running() {
    let gate = Arc::new(AtomicBool::new(false));
    let server = gated_server(gate.clone());
    let client = client(&server);
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let stats = rt.block_on(async {
        capture_n(&client, 5, "tokio-flush");
        let opener = gate.clone();
        // Runs only while the awaits below yield this thread.
        let task = tokio::spawn(async move { opener.store(true, Ordering::Release) });
        client.flush_async(Duration::from_secs(15)).await.expect("flush_async");
        task.await.unwrap();
        capture_n(&client, 3, "tokio-shutdown");
        client.shutdown_async(Duration::from_secs(5)).await.expect("shutdown_async")
    });
    assert_accounted(&stats);
    assert_eq!((stats.sent, stats.failed), (8, 0), "{stats:?}");
    drop(client); // already shut down: returns at once
    assert_no_key_logged();
}

#[test]
fn flush_and_shutdown_async_leave_a_smol_local_executor_running() {
    let gate = Arc::new(AtomicBool::new(false));
    let server = gated_server(gate.clone());
    let client = client(&server);
    let ex = smol::LocalExecutor::new();
    let opener = gate.clone();
    ex.spawn(async move { opener.store(true, Ordering::Release) }).detach();
    let stats = smol::block_on(ex.run(async {
        capture_n(&client, 4, "smol");
        client.flush_async(Duration::from_secs(15)).await.expect("flush_async");
        client.shutdown_async(Duration::from_secs(5)).await.expect("shutdown_async")
    }));
    assert_accounted(&stats);
    assert_eq!((stats.sent, stats.failed), (4, 0), "{stats:?}");
    assert_no_key_logged();
}

#[test]
fn the_async_futures_are_send_so_tokio_spawn_takes_them() {
    fn send<T: Send + 'static>(t: T) -> T {
        t
    }
    let client = Client::disabled();
    let (a, b) = (client.clone(), client.clone());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_time().build().unwrap();
    rt.block_on(async move {
        let flush = tokio::spawn(send(async move { a.flush_async(Duration::from_secs(1)).await }));
        let stop = tokio::spawn(send(async move { b.shutdown_async(Duration::from_secs(1)).await }));
        flush.await.unwrap().expect("a disabled client flushes at once");
        let s = stop.await.unwrap().expect("and shuts down at once");
        assert_accounted(&s);
    });
}

#[test]
fn async_waits_time_out_and_report_it() {
    // A server that never answers: flush_async times out, shutdown_async still counts all.
    install_logger();
    let server = FaultServer::start(|_| faults::Reply::Hang);
    let client = builder(&server.url()).http_timeout(Duration::from_secs(30)).build().unwrap();
    capture_n(&client, 2, "async-timeout");
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async {
        let flushed = client.flush_async(Duration::from_millis(200)).await;
        assert!(matches!(flushed, Err(fasthog::Error::FlushTimeout)), "{flushed:?}");
        let s = client.shutdown_async(Duration::from_millis(200)).await.expect("shutdown_async");
        assert_accounted(&s);
        assert_eq!((s.sent, s.failed), (0, 2));
    });
    assert_no_key_logged();
}
