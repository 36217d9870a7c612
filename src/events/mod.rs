//! The TAI event stream: an event per successful write, delivered at least once.
//!
//! # Layout
//! - [`event`]: the event record, its id, and its stream-entry fields.
//! - [`entry`]: a stream entry as consumers read it, and the replies that carry entries.
//! - [`redelivery`]: a consumer's options, and when a pending entry is delivered again or
//!   dead-lettered (pure).
//! - [`consume`]: a consumer in a consumer group: acknowledge after handling, redeliver after a
//!   doubling backoff, dead-letter after `max_deliveries`.
//! - [`group`]: a consumer group's consumers, pending entries and lag.
//! - [`dead_letter`]: `tai-events-dlq`: the atomic move, listing, replay.
//! - [`audit`]: the audit subscriber: each event once in an append-only, fsynced JSON-lines file.
//! - [`tail`]: a read-only follower with type and aggregate filters, for operators.
//! - [`commands`]: what `tai-gateway events …` does, returning the text it prints.
//! - [`stream_error`]: the consuming side's failures.

pub mod audit;
pub mod commands;
pub mod consume;
pub mod dead_letter;
pub mod entry;
pub mod event;
pub mod group;
pub mod redelivery;
pub mod stream_error;
pub mod tail;

pub use consume::{Consumer, ConsumerStats, Delivery, HandleError, Handler};
pub use event::{DEAD_LETTERS, Event, EventIds, STREAM};
pub use redelivery::ConsumerOptions;
pub use stream_error::StreamError;
