//! fasthog in an axum service: the `Client` in the router's state, a capture in a handler, and
//! a graceful shutdown that delivers what is still queued.
//!
//! ```text
//! POSTHOG_API_KEY=phc_... cargo run --example axum          # serves 127.0.0.1:3000 until Ctrl-C
//! curl http://127.0.0.1:3000/order/user-42
//! POSTHOG_API_KEY=phc_... cargo run --example axum -- --once # one request to itself, then exits
//! ```
//!
//! `POSTHOG_HOST` picks the PostHog instance (`.ci/run` points it at the local receiver);
//! without `POSTHOG_API_KEY` the client is disabled: it counts events and sends nothing.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use fasthog::{Client, Event, Static};

/// `capture` is wait-free and makes no syscall: call it straight from async code; it never
/// blocks the runtime.
async fn order(State(client): State<Client>, Path(user): Path<String>) -> &'static str {
    let _ = client.capture(&Event::new("order_placed", &user).prop("source", Static("axum")));
    "ordered\n"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let once = std::env::args().any(|arg| arg == "--once");
    let client = Client::from_env()?;
    // `Client` is a cheap `Clone + Send + Sync` handle: it is the state itself.
    let app = Router::new().route("/order/{user}", get(order)).with_state(client.clone());
    let listener = tokio::net::TcpListener::bind(if once { "127.0.0.1:0" } else { "127.0.0.1:3000" }).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");

    let shutdown = async move {
        if once {
            request_once(addr).await;
        } else {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;

    // Deliver what is still queued (or give up at the deadline) without blocking a runtime
    // worker; the client's `Drop` then finds the flusher stopped and returns at once.
    let stats = client.shutdown_async(Duration::from_secs(5)).await?;
    println!(
        "captured {}, sent {}, failed {}, dropped {}",
        stats.captured, stats.sent, stats.failed, stats.dropped
    );
    if once && (stats.captured == 0 || stats.sent != stats.captured) {
        return Err("--once: the event was not delivered (is POSTHOG_API_KEY set?)".into());
    }
    Ok(())
}

/// One `GET /order/user-42` to ourselves over a plain socket (no HTTP client needed).
async fn request_once(addr: SocketAddr) {
    let response = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.write_all(b"GET /order/user-42 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    })
    .await;
    match response {
        Ok(Ok(text)) => println!("{}", text.lines().next().unwrap_or("(no response)")),
        other => eprintln!("request failed: {other:?}"),
    }
}
