//! State the gateway keeps beyond one request and that replicas will share through Redis.
//!
//! # Layout
//! - [`cache`]: the response cache for GET routes — an in-process tier (bounded, per-entry TTL,
//!   request coalescing, tag invalidation) and the [`cache::SharedTier`] seam a Redis tier plugs
//!   into.

pub mod cache;
