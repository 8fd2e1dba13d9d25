#![doc = include_str!("../README.md")]
#![no_std]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]
#![warn(clippy::std_instead_of_core, clippy::std_instead_of_alloc, clippy::alloc_instead_of_core)]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod ring;
mod sync;
mod event;

pub use event::{Event, Static, Value, INLINE_BYTES, MAX_DISTINCT_ID, MAX_PROPS};
mod clock;
pub mod json;
mod uuid;

pub use clock::{Clock, FixedClock};
#[cfg(feature = "embassy")]
pub use clock::EmbassyClock;
pub use uuid::UuidV7;
