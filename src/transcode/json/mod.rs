//! Proto3 JSON mapping for run-time descriptors.
//!
//! Decoding is our own: prost-reflect's deserializer clamps out-of-range 64-bit numbers, rounds
//! big floats, keeps the last of duplicate keys and has no depth limit, and a gateway must reject
//! all of those instead of forwarding a silently different request. The decoder streams straight
//! from `serde_json` into a `DynamicMessage`, driven by the `MessageDescriptor`. For whole-body
//! requests, `direct` runs the same checks but writes protobuf wire bytes instead (see
//! `request::encode_request`), reusing the decoder's seeds for everything but plain messages,
//! strings, Timestamp and Duration.
//!
//! Encoding delegates to prost-reflect's serializer, whose output is already what clients expect
//! (see [`encode`]); replies in the common shapes are printed straight from their wire bytes by
//! `print`, which produces the same bytes without building a `DynamicMessage`.

mod decode;
mod direct;
mod dynamic;
pub mod encode;
mod number;
mod print;
mod scalar;
#[cfg(test)]
pub(crate) mod test_pool;
#[cfg(test)]
mod tests;
mod wkt;

use std::cell::{Cell, RefCell};
use std::fmt;

use prost_reflect::{DynamicMessage, FieldDescriptor, MessageDescriptor, Value};
use serde::de::DeserializeSeed;

pub(crate) use direct::encode_wire;
pub use encode::{EncodeError, EncodeOptions, encode_field_json, encode_message_json};
pub(crate) use print::print_wire_message;
pub(crate) use scalar::{TextMode, value_from_text};
pub(crate) use wkt::{Wkt, classify as classify_wkt};

/// Knobs for [`decode_message`] and [`decode_field`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Skip (still depth-limited) values of keys that name no field, instead of failing.
    pub ignore_unknown_fields: bool,
    /// Deepest nesting of JSON objects and arrays accepted; the root object is level 1.
    ///
    /// serde_json stops at 128 levels on its own, so larger values act like 128.
    pub max_depth: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            ignore_unknown_fields: false,
            max_depth: 64,
        }
    }
}

/// Why a JSON document could not become a message, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct JsonError {
    /// Dotted path to the offending value using the keys the client sent (`policy.rules.k`,
    /// `repeatedNested[1].name`); empty for the document root.
    pub path: String,
    /// What is wrong with the value, in words a client can act on.
    pub reason: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "invalid JSON: {}", self.reason)
        } else {
            write!(f, "invalid JSON at `{}`: {}", self.path, self.reason)
        }
    }
}

/// Decodes one JSON document into a message of type `desc`.
///
/// The whole input must be a single JSON object (or `null`, meaning an empty message) followed
/// by nothing but whitespace.
pub fn decode_message(
    desc: &MessageDescriptor,
    json: &[u8],
    opts: &DecodeOptions,
) -> Result<DynamicMessage, JsonError> {
    let kind = prost_reflect::Kind::Message(desc.clone());
    let value = run(json, opts, |ctx, de| {
        decode::SingularSeed::new(&kind, ctx).deserialize(de)
    })?;
    match value {
        Some(Value::Message(msg)) => Ok(msg),
        // `null` at the root: nothing was set.
        _ => Ok(DynamicMessage::new(desc.clone())),
    }
}

/// Decodes the JSON of one field (a message, scalar, array for repeated or object for maps).
///
/// Used for `body: "field"` rules. `null` yields the field's default value, which callers treat
/// as "leave the field unset".
pub fn decode_field(
    field: &FieldDescriptor,
    json: &[u8],
    opts: &DecodeOptions,
) -> Result<Value, JsonError> {
    let value = decode_field_opt(field, json, opts)?;
    Ok(value.unwrap_or_else(|| field.default_value()))
}

/// Like [`decode_field`], but `null` is reported as `None`.
pub(crate) fn decode_field_opt(
    field: &FieldDescriptor,
    json: &[u8],
    opts: &DecodeOptions,
) -> Result<Option<Value>, JsonError> {
    run(json, opts, |ctx, de| {
        decode::FieldSeed::new(field, ctx).deserialize(de)
    })
}

/// Runs a seed over the whole input and turns failures into a [`JsonError`].
fn run<T>(
    json: &[u8],
    opts: &DecodeOptions,
    body: impl FnOnce(
        &Ctx<'_>,
        &mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>,
    ) -> Result<T, serde_json::Error>,
) -> Result<T, JsonError> {
    let ctx = Ctx::new(opts);
    let mut de = serde_json::Deserializer::from_slice(json);
    let result = body(&ctx, &mut de).and_then(|value| de.end().map(|()| value));
    result.map_err(|err| ctx.into_error(&err))
}

/// State shared by every seed of one decode: options, current depth and, once something fails,
/// the error's reason and path.
///
/// The path is assembled while the error unwinds (each level pushes its own key), so the happy
/// path allocates nothing for it.
pub(crate) struct Ctx<'o> {
    opts: &'o DecodeOptions,
    depth: Cell<usize>,
    reason: RefCell<Option<String>>,
    /// Path segments, innermost first.
    segments: RefCell<Vec<String>>,
    /// Set by the direct wire encoder when the input needs the `DynamicMessage` path (a group
    /// field): the error it unwinds with is not the client's fault.
    unsupported: Cell<bool>,
}

impl<'o> Ctx<'o> {
    fn new(opts: &'o DecodeOptions) -> Self {
        Self {
            opts,
            depth: Cell::new(0),
            reason: RefCell::new(None),
            segments: RefCell::new(Vec::new()),
            unsupported: Cell::new(false),
        }
    }

    fn opts(&self) -> &DecodeOptions {
        self.opts
    }

    /// Records `reason` as the cause and returns an error to propagate.
    fn fail<E: serde::de::Error>(&self, reason: impl Into<String>) -> E {
        let mut slot = self.reason.borrow_mut();
        // The first failure is the real one; anything later is a consequence.
        if slot.is_none() {
            *slot = Some(reason.into());
        }
        E::custom("transcoding failed")
    }

    /// Abandons a direct encode: the caller redoes the request the `DynamicMessage` way.
    fn unsupported<E: serde::de::Error>(&self) -> E {
        self.unsupported.set(true);
        E::custom("needs the DynamicMessage path")
    }

    /// Adds one path segment (a key, or `[i]` for a list index) while an error unwinds.
    fn at<E>(&self, segment: impl Into<String>, err: E) -> E {
        self.segments.borrow_mut().push(segment.into());
        err
    }

    /// Enters one level of JSON nesting, failing beyond `max_depth`.
    fn enter<E: serde::de::Error>(&self) -> Result<(), E> {
        let depth = self.depth.get() + 1;
        if depth > self.opts.max_depth {
            return Err(self.fail(format!(
                "nesting deeper than {} levels",
                self.opts.max_depth
            )));
        }
        self.depth.set(depth);
        Ok(())
    }

    /// True while the outermost JSON object (or array) of the document is being read.
    fn in_outermost_object(&self) -> bool {
        self.depth.get() == 1
    }

    /// Leaves one level of nesting entered with [`Ctx::enter`].
    fn leave(&self) {
        self.depth.set(self.depth.get().saturating_sub(1));
    }

    /// Builds the final error: our recorded reason, or serde_json's own (syntax, UTF-8, EOF).
    fn into_error(self, err: &serde_json::Error) -> JsonError {
        let reason = self.reason.into_inner().unwrap_or_else(|| {
            // Type mismatches report our descriptor-based wording; the position is noise
            // there, while syntax errors keep it because it is all the client has.
            let text = err.to_string();
            match (err.classify(), text.rfind(" at line ")) {
                (serde_json::error::Category::Data, Some(at)) => text[..at].to_owned(),
                _ => text,
            }
        });
        let mut path = String::new();
        for segment in self.segments.into_inner().iter().rev() {
            if !path.is_empty() && !segment.starts_with('[') {
                path.push('.');
            }
            path.push_str(segment);
        }
        JsonError { path, reason }
    }

    /// Wraps an error from a nested deserializer (used for `Any` payloads) into `E`.
    fn rethrow<E: serde::de::Error>(&self, err: serde_json::Error) -> E {
        if self.reason.borrow().is_some() {
            E::custom("transcoding failed")
        } else {
            self.fail(err.to_string())
        }
    }
}
