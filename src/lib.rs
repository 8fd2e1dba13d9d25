#![doc = include_str!("../README.md")]
#![no_std]
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
#[cfg(feature = "std")]
mod error;
mod clock;
#[cfg(feature = "embassy")]
mod embassy;
mod event;
mod record;
pub mod flusher;
pub mod json;
pub mod ring;
mod stats;
mod sync;
pub mod transport;
mod uuid;
mod queue;
pub mod recorder;

pub use queue::{Captured, Queue, QueueParts, StaticQueue};
#[cfg(feature = "std")]
pub use queue::HeapQueue;
#[cfg(feature = "embassy")]
pub use embassy::{EmbassyClock, EmbassyTimer};
pub use clock::{Clock, FixedClock};
#[cfg(feature = "std")]
pub use client::{Builder, Client};
#[cfg(feature = "std")]
pub use error::Error;
pub use event::{AsRecord, Entry, Event, Many, Props, Static, Value};
pub use record::{Record, INLINE_BYTES, MAX_DISTINCT_ID, MAX_PROPS};
pub use stats::{Counters, Snapshot};
pub use uuid::UuidV7;
