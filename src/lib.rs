// The README links its items to docs.rs, so they work on GitHub and crates.io; these
// definitions come first and win in rustdoc, so local docs link locally (and are checked).
//! [`Event`]: Event
//! [`Entry`]: Entry
//! [`recorder::Recorder`]: recorder::Recorder
//! [`recorder::BufRecorder`]: recorder::BufRecorder
//! [`Sampler`]: Sampler
#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]
#![warn(clippy::std_instead_of_core, clippy::std_instead_of_alloc, clippy::alloc_instead_of_core)]

#[cfg(any(test, feature = "std", fasthog_loom))]
extern crate std;

#[cfg(any(feature = "std", fasthog_loom))]
extern crate alloc;

pub mod batch;
#[cfg(feature = "std")]
pub mod client;
mod clock;
#[cfg(feature = "embassy")]
mod embassy;
pub mod entry;
#[cfg(feature = "std")]
mod error;
mod event;
mod exception;
pub mod filter;
pub mod flusher;
pub mod json;
mod queue;
pub mod recorder;
pub mod ring;
mod sample;
#[cfg(feature = "serde")]
mod serde;
mod stats;
mod sync;
#[cfg(feature = "tracing")]
pub mod tracing;
pub mod transport;
mod uuid;

#[cfg(feature = "std")]
pub use client::{Builder, Client};
pub use clock::{Clock, FixedClock};
#[cfg(feature = "embassy")]
pub use embassy::{EmbassyClock, EmbassyTimer};
#[cfg(feature = "std")]
pub use entry::OwnedEntry;
pub use entry::{AsEntry, EntryView, EntryWriter, MAX_DEPTH};
#[cfg(feature = "std")]
pub use error::Error;
pub use event::{
    Entry, Event, IntoEntry, Many, Prop, PropValue, Props, Static, Value, When, DEFAULT_MAX_EVENT_BYTES,
    MAX_DISTINCT_ID_CHARS,
};
#[cfg(feature = "std")]
pub use exception::{install_panic_hook, MAX_FRAMES, PANIC_FLUSH_TIMEOUT};
pub use exception::{AsError, Exception, MAX_EXCEPTION_CHAIN, SOURCE_TYPE};
/// What `Builder::retry` and `Builder::on_delivery` take, at the root (they live with
/// the flusher).
pub use flusher::{Outcome, RetryPolicy};
#[cfg(feature = "std")]
pub use queue::HeapQueue;
#[cfg(not(fasthog_loom))]
pub use queue::StaticQueue;
pub use queue::{Captured, Queue, QueueParts};
pub use sample::{distinct_id_hash, Rate, SampleError, Sampler, MAX_SAMPLE_NAME, MAX_SAMPLE_RULES};
#[cfg(feature = "serde")]
pub use serde::Serde;
pub use stats::{Counters, Snapshot};
/// The ureq this crate's HTTP transport is built with, to configure an agent for
/// [`client::HttpTransport::with_agent`] (proxy, CA, TLS) without a second ureq dependency.
#[cfg(feature = "ureq")]
pub use ureq;
pub use uuid::UuidV7;
