//! Request-path normalisation before routing, with Envoy's `normalize_path: true` semantics:
//! RFC 3986 §5.2.4 `remove_dot_segments` removes `.` and `..` segments, `%2E` / `%2e` read as
//! `.` (a `..` at the root stays at the root). Other segments are left byte for byte — `%2F`
//! stays encoded — and empty segments are kept (Envoy's `merge_slashes: false`; the router matches no
//! template against them).
//!
//! Normalising the path alone is not enough: a path variable is percent-decoded after routing,
//! so `..%2F..%2Fetc` (or `..` before a `:verb`) can still bind a value that climbs. A value
//! with a dot segment is refused instead ([`has_dot_segment`]).

use std::borrow::Cow;

/// The path with its dot segments (`%2E` counting as `.`) removed; borrowed when nothing changes.
/// A path that does not start with `/` (`*`, or garbage the router refuses) is returned as is.
pub fn normalize_path(path: &str) -> Cow<'_, str> {
    if !path.starts_with('/') || !might_have_dot_segment(path) {
        return Cow::Borrowed(path);
    }
    let mut out: Vec<&str> = Vec::new();
    let mut segments = path[1..].split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match dots(segment) {
            Some(1) => {}
            Some(_) => {
                out.pop();
            }
            None => {
                out.push(segment);
                continue;
            }
        }
        // A dot segment at the end leaves the folder it names: `/a/b/..` is `/a/`.
        if last {
            out.push("");
        }
    }
    let normalized = format!("/{}", out.join("/"));
    if normalized == path {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(normalized)
    }
}

/// True when a (decoded) path-variable value has a `.` or `..` segment, counting `/`, `\` and
/// their escapes `%2F`, `%5C` as separators and `%2E` as a dot: the value would name another
/// resource than the one routed to, if the backend used it as a path.
pub fn has_dot_segment(value: &str) -> bool {
    if !value.contains(['%', '\\']) {
        return value.split('/').any(|s| s == "." || s == "..");
    }
    let unescaped = value
        .replace("%2e", ".")
        .replace("%2E", ".")
        .replace("%2f", "/")
        .replace("%2F", "/")
        .replace("%5c", "/")
        .replace("%5C", "/")
        .replace('\\', "/");
    unescaped.split('/').any(|s| s == "." || s == "..")
}

/// Cheap pre-check: could the path hold a dot segment at all?
fn might_have_dot_segment(path: &str) -> bool {
    path.contains("/.") || path.contains("/%2e") || path.contains("/%2E")
}

/// `Some(1)` for a `.` segment, `Some(2)` for `..`, with `%2E` / `%2e` read as `.`.
fn dots(segment: &str) -> Option<usize> {
    let (mut rest, mut count) = (segment.as_bytes(), 0);
    while !rest.is_empty() {
        rest = match rest {
            [b'.', tail @ ..] => tail,
            [b'%', b'2', b'e' | b'E', tail @ ..] => tail,
            _ => return None,
        };
        count += 1;
    }
    (1..=2).contains(&count).then_some(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_dot_segments_as_rfc_3986_and_envoy_do() {
        for (path, expected) in [
            ("/v1/policies", "/v1/policies"),
            ("/v1/documents/../../etc/passwd", "/etc/passwd"),
            ("/v1/documents/%2e%2e/%2E%2E/etc/passwd", "/etc/passwd"),
            ("/v1/documents/.%2e/x", "/v1/x"),
            ("/v1/./policies", "/v1/policies"),
            ("/v1/policies/.", "/v1/policies/"),
            ("/v1/policies/a/..", "/v1/policies/"),
            ("/..", "/"),
            ("/../../a", "/a"),
            ("/a//../b", "/a/b"),
            ("/a//b", "/a//b"),
            ("/v1/documents/..%2F..%2Fetc", "/v1/documents/..%2F..%2Fetc"),
            ("/v1/policies/p1/..:enforce", "/v1/policies/p1/..:enforce"),
            ("/v1/a.b/.c/..d", "/v1/a.b/.c/..d"),
            ("/v1/files/a%2etxt", "/v1/files/a%2etxt"),
            ("/v1/%2e%2e%2e/x", "/v1/%2e%2e%2e/x"),
            ("/v1/files/a%2etxt/%2E", "/v1/files/a%2etxt/"),
            ("*", "*"),
        ] {
            assert_eq!(normalize_path(path), expected, "{path}");
        }
    }

    #[test]
    fn leaves_a_clean_path_borrowed() {
        assert!(matches!(normalize_path("/v1/a/b.c"), Cow::Borrowed(_)));
        assert!(matches!(normalize_path("/v1/a/.b"), Cow::Borrowed(_)));
    }

    #[test]
    fn finds_dot_segments_behind_escaped_separators() {
        for (value, expected) in [
            ("policies/p1", false),
            ("a.b", false),
            ("..a", false),
            ("..", true),
            (".", true),
            ("../../etc/passwd", true),
            ("..%2F..%2Fetc", true),
            ("a%2f%2e%2e", true),
            ("..\\windows", true),
            ("a%5C..", true),
            ("policies/..", true),
        ] {
            assert_eq!(has_dot_segment(value), expected, "{value}");
        }
    }
}
