//! `openapi:` as written.

use serde::Deserialize;

use super::At;

/// `openapi:` the OpenAPI document on the public listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOpenApi {
    #[serde(default)]
    pub(crate) enabled: Option<At<bool>>,
    #[serde(default)]
    pub(crate) path: Option<At<String>>,
    #[serde(default)]
    pub(crate) docs_path: Option<At<String>>,
}
