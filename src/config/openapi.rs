//! The validated `openapi:` section: whether the public listener serves the OpenAPI document of
//! the live route table, and at which path.

use super::error::Place;

/// Where the OpenAPI document is served by default.
pub const DEFAULT_OPENAPI_PATH: &str = "/openapi.json";

/// `openapi:` — `GET <path>` on the public listeners answers the document (before routing, with
/// no rate limit or token check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenApiConfig {
    /// Off: the path is an ordinary (unrouted) path.
    pub enabled: bool,
    /// The request path answered, e.g. `/openapi.json`.
    pub path: String,
    /// Where the YAML form is answered: `path` with `.yaml` for its `.json` (`None` when `path`
    /// does not end in `.json`).
    pub yaml_path: Option<String>,
    /// Where `path` was written (the section's default place when it was not), for the check
    /// that no route claims the same path.
    pub place: Place,
}

impl Default for OpenApiConfig {
    fn default() -> Self {
        OpenApiConfig {
            enabled: true,
            path: DEFAULT_OPENAPI_PATH.to_owned(),
            yaml_path: yaml_path_of(DEFAULT_OPENAPI_PATH),
            place: Place::default(),
        }
    }
}

/// The `.yaml` sibling of a `.json` path (`/openapi.json` → `/openapi.yaml`).
pub fn yaml_path_of(path: &str) -> Option<String> {
    path.strip_suffix(".json")
        .map(|stem| format!("{stem}.yaml"))
}
