//! The validated `openapi:` section: whether the public listener serves the OpenAPI document of
//! the live route table, and at which path.

use super::error::Place;

/// Where the OpenAPI document is served by default.
pub const DEFAULT_OPENAPI_PATH: &str = "/openapi.json";

/// Where the docs page is served by default (its script and style sheet below it).
pub const DEFAULT_DOCS_PATH: &str = "/docs";

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
    /// The docs page (`/docs`): a page that reads the document and can try its operations; its
    /// script and style sheet are `<docs_path>/app.js` and `<docs_path>/style.css`.
    pub docs_path: String,
    /// Where `docs_path` was written (the section's default place when it was not).
    pub docs_place: Place,
}

impl OpenApiConfig {
    /// Every path answered before routing while the section is enabled: the document (and its
    /// YAML form), the docs page and its two assets.
    pub fn served_paths(&self) -> Vec<(String, &'static str, Place)> {
        if !self.enabled {
            return Vec::new();
        }
        let mut paths = vec![(self.path.clone(), "openapi.path", self.place)];
        if let Some(yaml) = &self.yaml_path {
            paths.push((yaml.clone(), "openapi.path", self.place));
        }
        for path in self.docs_paths() {
            paths.push((path, "openapi.docs_path", self.docs_place));
        }
        paths
    }

    /// The docs page's paths: the page, its script and its style sheet.
    pub fn docs_paths(&self) -> [String; 3] {
        ["", "/app.js", "/style.css"].map(|asset| format!("{}{asset}", self.docs_path))
    }
}

impl Default for OpenApiConfig {
    fn default() -> Self {
        OpenApiConfig {
            enabled: true,
            path: DEFAULT_OPENAPI_PATH.to_owned(),
            yaml_path: yaml_path_of(DEFAULT_OPENAPI_PATH),
            place: Place::default(),
            docs_path: DEFAULT_DOCS_PATH.to_owned(),
            docs_place: Place::default(),
        }
    }
}

/// The `.yaml` sibling of a `.json` path (`/openapi.json` → `/openapi.yaml`).
pub fn yaml_path_of(path: &str) -> Option<String> {
    path.strip_suffix(".json")
        .map(|stem| format!("{stem}.yaml"))
}
