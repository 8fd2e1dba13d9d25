// The README links its items to docs.rs, so they work on GitHub and crates.io; these
// definitions come first and win in rustdoc, so local docs link locally (and are checked).
//! [`Event`]: Event
//! [`Record`]: Record
//! [`Entry`]: Entry
//! [`recorder::Recorder`]: recorder::Recorder
//! [`recorder::BufRecorder`]: recorder::BufRecorder
#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]
#![warn(clippy::std_instead_of_core, clippy::std_instead_of_alloc, clippy::alloc_instead_of_core)]

#[cfg(any(test, feature = "std"))]
extern crate std;

#[cfg(feature = "std")]
extern crate alloc;

pub mod batch;
#[cfg(feature = "std")]
pub mod client;
mod clock;
#[cfg(feature = "embassy")]
mod embassy;
#[cfg(feature = "std")]
mod error;
mod event;
pub mod flusher;
pub mod json;
mod queue;
mod record;
pub mod recorder;
pub mod ring;
mod stats;
mod sync;
pub mod transport;
mod uuid;

#[cfg(feature = "std")]
pub use client::{Builder, Client};
pub use clock::{Clock, FixedClock};
#[cfg(feature = "embassy")]
pub use embassy::{EmbassyClock, EmbassyTimer};
#[cfg(feature = "std")]
pub use error::Error;
pub use event::{AsRecord, Entry, Event, Many, Props, Static, Value};
#[cfg(feature = "std")]
pub use queue::HeapQueue;
pub use queue::{Captured, Queue, QueueParts, StaticQueue};
pub use record::{Record, INLINE_BYTES, MAX_DISTINCT_ID, MAX_PROPS};
pub use stats::{Counters, Snapshot};
/// The ureq this crate's HTTP transport is built with, to configure an agent for
/// [`client::HttpTransport::with_agent`] (proxy, CA, TLS) without a second ureq dependency.
#[cfg(feature = "ureq")]
pub use ureq;
pub use uuid::UuidV7;
