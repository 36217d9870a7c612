//! `compression:` as written.

use serde::Deserialize;

use super::At;

/// `compression:` gzip of JSON answers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCompression {
    #[serde(default)]
    pub(crate) enabled: Option<At<bool>>,
    #[serde(default)]
    pub(crate) min_size: Option<At<String>>,
    #[serde(default)]
    pub(crate) level: Option<At<u32>>,
    #[serde(default)]
    pub(crate) content_types: Option<Vec<At<String>>>,
}
