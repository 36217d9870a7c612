//! The TAI event stream: an event per successful write, delivered at least once.
//!
//! # Layout
//! - [`event`]: the event record, its id, and its stream-entry fields.

pub mod event;

pub use event::{DEAD_LETTERS, Event, EventIds, STREAM};
