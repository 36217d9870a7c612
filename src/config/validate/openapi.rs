//! Checks of `openapi:`: the document's and the docs page's paths are absolute request paths
//! without query or fragment.
//! (That no route claims it is checked with the route table, in `runtime`.)

use super::checker::{Checker, place};
use crate::config::openapi::{OpenApiConfig, yaml_path_of};
use crate::config::raw::{At, RawOpenApi};

/// `openapi:`; the defaults (enabled, `/openapi.json`, `/docs`) when absent.
pub(super) fn openapi(c: &mut Checker<'_>, raw: Option<&RawOpenApi>) -> OpenApiConfig {
    let mut config = OpenApiConfig::default();
    let Some(raw) = raw else { return config };
    if let Some(enabled) = &raw.enabled {
        config.enabled = enabled.value;
    }
    if let Some(path) = &raw.path {
        config.place = place(path);
        if let Some(text) = request_path(c, path, "openapi.path") {
            config.yaml_path = yaml_path_of(&text);
            config.path = text;
        }
    }
    if let Some(path) = &raw.docs_path {
        config.docs_place = place(path);
        if let Some(text) = request_path(c, path, "openapi.docs_path") {
            config.docs_path = text;
        }
    }
    let document = |p: &String| *p == config.path || config.yaml_path.as_ref() == Some(p);
    if let Some(taken) = config.docs_paths().into_iter().find(document) {
        let reason = format!("`{taken}` is also the document's path: move one of them");
        c.error(config.docs_place, "openapi.docs_path", reason);
    }
    config
}

/// `at`'s text when it is an absolute request path, else an error at `key`.
fn request_path(c: &mut Checker<'_>, at: &At<String>, key: &str) -> Option<String> {
    let text = &at.value;
    // Requests reach the route step with dot segments removed: such a path never matches.
    let mut segments = text.split('/').skip(1);
    let bad = !text.starts_with('/')
        || text.len() < 2
        || text
            .chars()
            .any(|ch| ch.is_whitespace() || ch.is_control() || "?#%{}".contains(ch))
        || segments.any(|s| s == "." || s == "..")
        || text.contains("//");
    if bad {
        let reason = format!(
            "`{text}` is not a request path (start with `/`; no spaces, `?`, `#`, `%`, braces, `.` or `..` segments, `//`)"
        );
        c.error(place(at), key, reason);
        return None;
    }
    Some(text.clone())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    const BASE: &str = "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [p]\nupstreams:\n  a:\n    address: 127.0.0.1:1\nroutes:\n  - service: s.A\n    upstream: a\n";

    #[test]
    fn openapi_is_on_at_openapi_json_unless_moved_or_turned_off() {
        let parse = |extra: &str| Config::parse(Path::new("g.yaml"), &format!("{BASE}{extra}"));
        let default = parse("").expect("valid").openapi;
        assert!(default.enabled);
        assert_eq!(default.path, "/openapi.json");
        let moved = parse("openapi:\n  enabled: false\n  path: /api/spec.json\n").expect("valid");
        assert!(!moved.openapi.enabled);
        assert_eq!(moved.openapi.path, "/api/spec.json");
        assert_eq!(moved.openapi.yaml_path.as_deref(), Some("/api/spec.yaml"));
        assert_eq!(default.yaml_path.as_deref(), Some("/openapi.yaml"));
        let other = parse("openapi:\n  path: /spec\n").expect("valid").openapi;
        assert_eq!(other.yaml_path, None);
        assert_eq!(default.docs_path, "/docs");
        let docs = parse("openapi:\n  docs_path: /api/docs\n").expect("valid");
        assert_eq!(docs.openapi.docs_path, "/api/docs");
        let errors = parse("openapi:\n  docs_path: docs\n").expect_err("not a path");
        assert!(
            errors
                .to_string()
                .contains("g.yaml:13:14: openapi.docs_path: "),
            "{errors}"
        );
        assert_eq!(moved.openapi.place.line, 14);
        for bad in [
            "spec.json",
            "/",
            "/a b",
            "/x?y",
            "/a/../spec",
            "/a//b",
            "/{x}",
            "/a/./b",
        ] {
            let errors = parse(&format!("openapi:\n  path: \"{bad}\"\n")).expect_err(bad);
            let shown = errors.to_string();
            assert!(
                shown.contains("g.yaml:13:9: openapi.path: "),
                "{bad}: {shown}"
            );
        }
    }
}
