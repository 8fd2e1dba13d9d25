//! fasthog next to its peers: the same typical event captured by fasthog, by bare SPSC rings
//! (ringbuf, rtrb, fasthog's own ring), by crossbeam's `ArrayQueue` and channel, std's
//! `sync_channel`, a `Mutex<VecDeque>`, the Go client's design in Rust, and posthog-rs 0.30.
//!
//! - `benches/peers.rs`: criterion, single-thread capture cost with a consumer on the other core.
//! - `src/bin/tail.rs`: the per-call tail-latency harness (TSC timed, HDR-style histograms).
//! - `src/bin/bench-report.rs`: the one command; runs the harness and the end-to-end runs and
//!   writes `bench-report/REPORT.md` and `bench-report/latency.svg`.
//!
//! The peers live in this crate only, so fasthog's own dependency tree stays clean.

pub mod alloc;
pub mod e2e;
pub mod hist;
pub mod peers;
pub mod report;
pub mod sys;
pub mod tail;
pub mod workload;
