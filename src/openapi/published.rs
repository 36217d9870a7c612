//! The document as served: its JSON and YAML forms, each with a strong `ETag` (the SHA-1 of its
//! bytes), kept by the runtime snapshot it describes. A leaf: the runtime holds one without
//! knowing how it is made.

use bytes::Bytes;
use serde_json::Value;

/// Why the YAML form could not be written (the JSON form is still served).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the OpenAPI document cannot be written as YAML: {0}")]
pub struct YamlError(String);

/// One form of the document: its bytes and their entity tag.
#[derive(Debug, Clone)]
pub struct Form {
    body: Bytes,
    etag: String,
}

impl Form {
    /// `body` with its tag.
    pub(crate) fn of(body: String) -> Form {
        let body = Bytes::from(body);
        let etag = format!("\"{}\"", sha1_smol::Sha1::from(&body[..]).digest());
        Form { body, etag }
    }

    /// The bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The strong entity tag, quoted (`"…"`).
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// Whether an `If-None-Match` value (`*`, or a list of tags, weak ones compared weakly as
    /// RFC 9110 §13.1.2 says) names this form; the tag of its gzip form (`"…-gzip"`, see
    /// `compression`) names it too.
    pub fn matches(&self, if_none_match: &str) -> bool {
        let bare = self.etag.trim_matches('"');
        if_none_match.split(',').map(str::trim).any(|tag| {
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            tag == "*" || tag == self.etag || tag.trim_matches('"') == format!("{bare}-gzip")
        })
    }
}

/// Both forms of one runtime's document.
#[derive(Debug, Clone)]
pub struct Published {
    json: Form,
    yaml: Result<Form, YamlError>,
}

impl Published {
    /// Compact JSON and block-style YAML of `document`.
    pub fn of(document: &Value) -> Published {
        let yaml = serde_saphyr::to_string(document)
            .map(Form::of)
            .map_err(|e| YamlError(e.to_string()));
        Published {
            json: Form::of(document.to_string()),
            yaml,
        }
    }

    /// The JSON form.
    pub fn json(&self) -> &Form {
        &self.json
    }

    /// The YAML form.
    pub fn yaml(&self) -> Result<&Form, &YamlError> {
        self.yaml.as_ref()
    }
}
