//! What one decode carries and reports: its options, the state its seeds share, and the error
//! a client sees.

use std::cell::{Cell, RefCell};
use std::fmt;

/// Knobs for decoding a JSON document or the JSON of one field.
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
    pub(super) fn new(opts: &'o DecodeOptions) -> Self {
        Self {
            opts,
            depth: Cell::new(0),
            reason: RefCell::new(None),
            segments: RefCell::new(Vec::new()),
            unsupported: Cell::new(false),
        }
    }

    pub(super) fn opts(&self) -> &DecodeOptions {
        self.opts
    }

    /// Records `reason` as the cause and returns an error to propagate.
    pub(super) fn fail<E: serde::de::Error>(&self, reason: impl Into<String>) -> E {
        let mut slot = self.reason.borrow_mut();
        // The first failure is the real one; anything later is a consequence.
        if slot.is_none() {
            *slot = Some(reason.into());
        }
        E::custom("transcoding failed")
    }

    /// True once [`Ctx::unsupported`] was called: the failure is not the client's.
    pub(super) fn is_unsupported(&self) -> bool {
        self.unsupported.get()
    }

    /// Abandons a direct encode: the caller redoes the request the `DynamicMessage` way.
    pub(super) fn unsupported<E: serde::de::Error>(&self) -> E {
        self.unsupported.set(true);
        E::custom("needs the DynamicMessage path")
    }

    /// Adds one path segment (a key, or `[i]` for a list index) while an error unwinds.
    pub(super) fn at<E>(&self, segment: impl Into<String>, err: E) -> E {
        self.segments.borrow_mut().push(segment.into());
        err
    }

    /// Enters one level of JSON nesting, failing beyond `max_depth`.
    pub(super) fn enter<E: serde::de::Error>(&self) -> Result<(), E> {
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
    pub(super) fn in_outermost_object(&self) -> bool {
        self.depth.get() == 1
    }

    /// Leaves one level of nesting entered with [`Ctx::enter`].
    pub(super) fn leave(&self) {
        self.depth.set(self.depth.get().saturating_sub(1));
    }

    /// Builds the final error: our recorded reason, or serde_json's own (syntax, UTF-8, EOF).
    pub(super) fn into_error(self, err: &serde_json::Error) -> JsonError {
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
    pub(super) fn rethrow<E: serde::de::Error>(&self, err: serde_json::Error) -> E {
        if self.reason.borrow().is_some() {
            E::custom("transcoding failed")
        } else {
            self.fail(err.to_string())
        }
    }
}
