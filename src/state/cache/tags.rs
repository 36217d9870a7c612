//! Invalidation tags, derived from a binding's `google.api.http` path template with no
//! configuration: a cached GET is tagged with what it depends on, a write with what it changed.
//!
//! - A GET answer's tags: its resource (the path without a leading `/` or custom verb) and, for
//!   every variable of the template, the collection before it and the resource it names:
//!   `GET /v1/policies/{id}/rules` with `pol-1` → `v1/policies/pol-1/rules`, `v1/policies`,
//!   `v1/policies/pol-1`; `GET /v1/policies` → `v1/policies`.
//! - A write's tags: its resource and the parent collection (the resource less its last
//!   segment): `POST /v1/policies/pol-1:enforce` → `v1/policies/pol-1`, `v1/policies`.
//!
//! A write therefore drops the cached resource, its sub-resources' answers and the lists of its
//! collection. Segments are percent-decoded so `pol%2D1` and `pol-1` give one tag; a decoded `/`
//! only makes a tag broader, which can invalidate more, never less.

use std::sync::Arc;

use crate::transcode::template::{PathTemplate, Segment};

/// A set of tags, shared by an entry, its flight and the tag index.
pub type Tags = Arc<[Arc<str>]>;

/// Where a template's variables cut a path into collection and resource prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagPlan {
    /// Template segment boundaries at which a prefix is a tag (before and after each variable).
    cuts: Vec<usize>,
    /// Segments in the template.
    template_len: usize,
    /// Index of the template's `**`, after which boundaries shift by the extra path segments.
    double_wildcard: Option<usize>,
    /// The template's custom verb, stripped from the last path segment.
    verb: Option<String>,
}

impl TagPlan {
    /// The plan of `template`.
    pub fn of(template: &PathTemplate) -> TagPlan {
        let segments = template.segments();
        let mut cuts: Vec<usize> = template
            .variable_spans()
            .iter()
            .flat_map(|v| [v.start, v.end])
            .filter(|&b| b > 0)
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        TagPlan {
            cuts,
            template_len: segments.len(),
            double_wildcard: segments.iter().position(|s| *s == Segment::DoubleWildcard),
            verb: template.verb().map(str::to_owned),
        }
    }

    /// The tags of a cached answer to `path` (a path this plan's template matched).
    pub fn entry_tags(&self, path: &str) -> Tags {
        let segments = self.segments(path);
        let mut tags = vec![segments.join("/")];
        for &cut in &self.cuts {
            let end = self.request_boundary(cut, segments.len());
            if end > 0 && end < segments.len() {
                tags.push(segments[..end].join("/"));
            }
        }
        into_tags(tags)
    }

    /// The tags a successful write to `path` invalidates: its resource, its parent collection,
    /// and the route's `extra` tags.
    pub fn write_tags(&self, path: &str, extra: &[String]) -> Tags {
        let segments = self.segments(path);
        let mut tags = vec![segments.join("/")];
        if segments.len() > 1 {
            tags.push(segments[..segments.len() - 1].join("/"));
        }
        tags.extend(extra.iter().cloned());
        into_tags(tags)
    }

    /// The path's segments, percent-decoded, without the custom verb.
    fn segments(&self, path: &str) -> Vec<String> {
        let mut body = path.trim_start_matches('/');
        if let Some(verb) = &self.verb
            && let Some(rest) = body.strip_suffix(verb.as_str())
            && let Some(rest) = rest.strip_suffix(':')
        {
            body = rest;
        }
        body.split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decoded)
            .collect()
    }

    /// Template boundary `b` as a boundary in a path of `len` segments (`**` takes the extra).
    fn request_boundary(&self, b: usize, len: usize) -> usize {
        match self.double_wildcard {
            Some(d) if b > d => (b + len).saturating_sub(self.template_len),
            _ => b,
        }
    }
}

/// Distinct, non-empty tags.
fn into_tags(mut tags: Vec<String>) -> Tags {
    tags.retain(|t| !t.is_empty());
    let mut seen: Vec<Arc<str>> = Vec::with_capacity(tags.len());
    for tag in tags {
        if !seen.iter().any(|s| **s == *tag) {
            seen.push(Arc::from(tag));
        }
    }
    seen.into()
}

/// A tag as an operator writes it (`/v1/policies`, `v1%2Fpolicies`): the form entries carry.
pub fn normalized_tag(text: &str) -> String {
    percent_decoded(text.trim().trim_matches('/'))
}

/// `%XX` escapes decoded (invalid ones kept as written), then read as UTF-8 lossily.
fn percent_decoded(segment: &str) -> String {
    if !segment.contains('%') {
        return segment.to_owned();
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(template: &str) -> TagPlan {
        TagPlan::of(&PathTemplate::parse(template).expect("template"))
    }

    fn names(tags: &Tags) -> Vec<&str> {
        tags.iter().map(|t| &**t).collect()
    }

    #[test]
    fn get_answers_are_tagged_with_their_resource_and_every_enclosing_collection() {
        let table: &[(&str, &str, &[&str])] = &[
            (
                "/v1/policies/{id}",
                "/v1/policies/pol-1",
                &["v1/policies/pol-1", "v1/policies"],
            ),
            ("/v1/policies", "/v1/policies", &["v1/policies"]),
            (
                "/v1/policies/{id}/rules",
                "/v1/policies/pol-1/rules",
                &[
                    "v1/policies/pol-1/rules",
                    "v1/policies",
                    "v1/policies/pol-1",
                ],
            ),
            (
                "/v1/policies/{id}:export",
                "/v1/policies/pol-1:export",
                &["v1/policies/pol-1", "v1/policies"],
            ),
            (
                "/v1/{parent=tenants/*}/policies:search",
                "/v1/tenants/acme/policies:search",
                &["v1/tenants/acme/policies", "v1", "v1/tenants/acme"],
            ),
            (
                "/v1/files/{name=**}/meta",
                "/v1/files/a/b/c/meta",
                &["v1/files/a/b/c/meta", "v1/files", "v1/files/a/b/c"],
            ),
            (
                "/v1/policies/{id}",
                "/v1/policies/pol%2D1",
                &["v1/policies/pol-1", "v1/policies"],
            ),
        ];
        for (template, path, want) in table {
            assert_eq!(
                names(&plan(template).entry_tags(path)),
                *want,
                "{template} {path}"
            );
        }
    }

    #[test]
    fn writes_invalidate_their_resource_its_collection_and_the_routes_extra_tags() {
        let table: &[(&str, &str, &[&str])] = &[
            (
                "/v1/policies/{id}:enforce",
                "/v1/policies/pol-1:enforce",
                &["v1/policies/pol-1", "v1/policies"],
            ),
            (
                "/v1/policies/{policy.id}",
                "/v1/policies/pol-1",
                &["v1/policies/pol-1", "v1/policies"],
            ),
            (
                "/v1/policies/propose",
                "/v1/policies/propose",
                &["v1/policies/propose", "v1/policies"],
            ),
            ("/v1/actions", "/v1/actions", &["v1/actions", "v1"]),
        ];
        for (template, path, want) in table {
            assert_eq!(
                names(&plan(template).write_tags(path, &[])),
                *want,
                "{template}"
            );
        }
        let extra = ["v1/audit".to_owned(), "v1/policies".to_owned()];
        let tags = plan("/v1/policies/{id}").write_tags("/v1/policies/p", &extra);
        assert_eq!(names(&tags), ["v1/policies/p", "v1/policies", "v1/audit"]);
    }

    #[test]
    fn operator_tags_are_normalised_like_path_tags() {
        assert_eq!(normalized_tag("/v1/policies/"), "v1/policies");
        assert_eq!(normalized_tag("v1%2Fpolicies"), "v1/policies");
    }

    #[test]
    fn a_verb_is_only_stripped_when_the_template_has_it() {
        let tags = plan("/v1/notes/{id}").entry_tags("/v1/notes/a:b");
        assert_eq!(names(&tags), ["v1/notes/a:b", "v1/notes"]);
    }
}
