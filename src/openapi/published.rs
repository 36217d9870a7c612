//! The document as served: its bytes and a strong `ETag` (the SHA-1 of the bytes), kept by the
//! runtime snapshot it describes. A leaf: the runtime holds one without knowing how it is made.

use bytes::Bytes;
use serde_json::Value;

/// The served bytes of one runtime's document and their entity tag.
#[derive(Debug, Clone)]
pub struct Published {
    body: Bytes,
    etag: String,
}

impl Published {
    /// Compact JSON of `document`, tagged by its SHA-1.
    pub fn of(document: &Value) -> Published {
        let body = Bytes::from(document.to_string());
        let etag = format!("\"{}\"", sha1_smol::Sha1::from(&body[..]).digest());
        Published { body, etag }
    }

    /// The JSON bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The strong entity tag, quoted (`"…"`).
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// Whether an `If-None-Match` value (`*`, or a list of tags, weak ones compared weakly as
    /// RFC 9110 §13.1.2 says) names this document; the tag of its gzip form
    /// (`"…-gzip"`, see `compression`) names it too.
    pub fn matches(&self, if_none_match: &str) -> bool {
        let bare = self.etag.trim_matches('"');
        if_none_match.split(',').map(str::trim).any(|tag| {
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            tag == "*" || tag == self.etag || tag.trim_matches('"') == format!("{bare}-gzip")
        })
    }
}
