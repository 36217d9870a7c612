//! Checks of `openapi:`: the path is an absolute request path without query or fragment.
//! (That no route claims it is checked with the route table, in `runtime`.)

use super::checker::{Checker, place};
use crate::config::openapi::OpenApiConfig;
use crate::config::raw::RawOpenApi;

/// `openapi:`; the defaults (enabled, `/openapi.json`) when absent.
pub(super) fn openapi(c: &mut Checker<'_>, raw: Option<&RawOpenApi>) -> OpenApiConfig {
    let mut config = OpenApiConfig::default();
    let Some(raw) = raw else { return config };
    if let Some(enabled) = &raw.enabled {
        config.enabled = enabled.value;
    }
    if let Some(path) = &raw.path {
        config.place = place(path);
        let text = &path.value;
        let bad = !text.starts_with('/')
            || text.len() < 2
            || text
                .chars()
                .any(|ch| ch.is_whitespace() || ch.is_control() || "?#%{}".contains(ch));
        if bad {
            let reason = format!(
                "`{text}` is not a request path (start with `/`; no spaces, `?`, `#`, `%`, braces)"
            );
            c.error(config.place, "openapi.path", reason);
        } else {
            config.path = text.clone();
        }
    }
    config
}
