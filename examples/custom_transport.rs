//! A `Transport` of your own: here a sink appending each delivered event to a JSON-lines file
//! (an outbox another process ships, or a log for an air-gapped host). It needs only the `std`
//! feature, no HTTP stack:
//!
//! ```text
//! cargo run --example custom_transport --no-default-features --features std
//! ```
//!
//! The contract (see `fasthog::transport`): answer `Ok(Response)` for anything the far side
//! answered (the flusher retries 408, 429 and 5xx, fails other 4xx), `Err(TransportError)`
//! only when there was no answer at all (retried), and bound your own time.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fasthog::recorder::split_events;
use fasthog::transport::{Request, Response, Transport, TransportError};
use fasthog::{Client, Event};

/// Appends every event of a request as one line of `path`.
struct JsonLinesFile {
    path: PathBuf,
}

impl JsonLinesFile {
    fn create(path: &Path) -> std::io::Result<Self> {
        File::create(path)?; // start empty
        Ok(JsonLinesFile { path: path.to_owned() })
    }

    fn append(&self, request: &Request<'_>) -> std::io::Result<()> {
        let mut out = BufWriter::new(OpenOptions::new().append(true).open(&self.path)?);
        // `request.events` holds the batch's event objects, comma-separated; the envelope
        // (`head`, `tail`, which carry the API key) is left out.
        for event in split_events(request.events) {
            out.write_all(event)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        out.get_ref().sync_data()
    }
}

impl Transport for JsonLinesFile {
    // The flusher runs on its own thread, so a short blocking write is fine here; a slow sink
    // would move the work off it (`HttpTransport` uses the `blocking` crate's pool).
    async fn send(&self, request: Request<'_>) -> Result<Response, TransportError> {
        match self.append(&request) {
            Ok(()) => Ok(Response::new(200)),
            // No "status" to report: an I/O error, which the flusher retries with backoff.
            Err(_) => Err(TransportError::Io),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join(format!("fasthog-outbox-{}.jsonl", std::process::id()));
    let transport = JsonLinesFile::create(&path)?;
    let client = Client::builder("phc_example").build_with_transport(transport)?;

    for order in 0..3i64 {
        let _ = client.capture(&Event::new("order_placed", "user-42").prop("order", order));
    }
    let stats = client.shutdown(Duration::from_secs(5))?;

    let lines = std::fs::read_to_string(&path)?;
    std::fs::remove_file(&path)?;
    println!("sent {} of {} events to {}:", stats.sent, stats.captured, path.display());
    for line in lines.lines() {
        println!("  {line}");
    }
    assert_eq!((stats.sent, lines.lines().count()), (3, 3));
    Ok(())
}
