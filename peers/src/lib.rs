//! fasthog next to its peers: the same event captured by fasthog (a lane, the client), by bare
//! SPSC rings (ringbuf, rtrb) and by crossbeam's `ArrayQueue` and channel, std's
//! `sync_channel` and a `Mutex<VecDeque>` (each pushing a compact record of the same values),
//! by the Go client's design in Rust, and by posthog-rs 0.30.
//!
//! - `benches/peers.rs`: criterion, single-thread capture cost with a consumer on the other core.
//! - `src/bin/tail.rs`: the per-call tail-latency harness (TSC timed, HDR-style histograms).
//! - `src/bin/bench-report.rs`: the one command; runs the harness and the end-to-end runs and
//!   writes `bench-report/REPORT.md` and `bench-report/latency.svg`.
//!
//! The peers live in this crate only, so fasthog's own dependency tree stays clean.

pub mod alloc;
pub mod e2e;
pub mod encode;
pub mod hist;
pub mod paths;
pub mod peers;
pub mod report;
pub mod sys;
pub mod tail;
pub mod workload;
