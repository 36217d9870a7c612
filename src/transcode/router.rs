//! The HTTP router: maps a method and a raw request path to a rule and its variable bindings.
//!
//! This module owns route precedence and path decoding, modelled on Envoy's transcoder
//! (grpc-httpjson-transcoding `path_matcher`):
//!
//! - Routes live in a per-segment trie built once by [`RouterBuilder::build`]. At every segment a
//!   literal child is tried before `*`, and `*` before `**`; a failed subtree backtracks (DFS), so
//!   `/a/{x}/c` still matches `/a/b/c` next to `/a/b/d`.
//! - The method is part of the match: a subtree whose rule lacks the method is backtracked out of
//!   like any other miss. An exact method beats `*` (any method) on the same template.
//! - A custom verb is split off the last segment (at its last `:`) only if some rule registered
//!   it; if nothing matches that way, the unsplit path is tried.
//! - Bindings are percent-decoded: fully for single-segment variables, per [`UnescapeMode`] for
//!   the rest.

mod percent;
#[cfg(test)]
mod tests;
mod trie;

use std::collections::HashMap;

use super::template::{PathTemplate, Segment};
use trie::Trie;

/// How multi-segment variables (`{name=**}`, `{name=shelves/*}`) are percent-decoded.
///
/// Single-segment variables are always fully decoded. Mirrors Envoy's `url_unescape_spec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnescapeMode {
    /// Decode everything except RFC 6570 reserved characters (`:/?#[]@!$&'()*+,;=`).
    #[default]
    AllExceptReserved,
    /// Decode everything except `%2F`, so a decoded value still splits into the same segments.
    AllExceptSlash,
    /// Decode everything.
    All,
}

impl UnescapeMode {
    /// Whether a decoded byte must stay percent-encoded in a multi-segment binding.
    fn keeps(self, byte: u8) -> bool {
        match self {
            UnescapeMode::AllExceptReserved => b":/?#[]@!$&'()*+,;=".contains(&byte),
            UnescapeMode::AllExceptSlash => byte == b'/',
            UnescapeMode::All => false,
        }
    }
}

/// A successful lookup: the rule's value and its variables' decoded values.
#[derive(Debug, PartialEq, Eq)]
pub struct RouteMatch<'r, T> {
    /// The value given to [`RouterBuilder::insert`].
    pub value: &'r T,
    /// The template that matched (for logs and metrics labels).
    pub template: &'r PathTemplate,
    /// `(field path, decoded value)` for every variable, in template order.
    pub bindings: Vec<(&'r str, String)>,
}

/// Why a lookup found no rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteMiss {
    /// No template matches the path.
    #[error("no route matches the request path")]
    NotFound,
    /// Some template matches the path, but not for this method.
    #[error("method not allowed; allowed methods: {}", allow.join(", "))]
    MethodNotAllowed {
        /// Methods that would match the path, sorted and deduplicated (for the `Allow` header).
        allow: Vec<String>,
    },
    /// The path is not a valid request path, or a bound value does not percent-decode to UTF-8.
    #[error("malformed request path: {0}")]
    MalformedPath(String),
}

/// Two rules with the same method would match exactly the same paths.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "route `{method} {new}` conflicts with `{method} {existing}`: both match the paths `{canonical}`"
)]
pub struct RouteConflict {
    /// The shared HTTP method (or `*`).
    pub method: String,
    /// Template text of the rule inserted first.
    pub existing: String,
    /// Template text of the rejected rule.
    pub new: String,
    /// The canonical form both share.
    pub canonical: String,
}

/// One rule as inserted.
#[derive(Debug)]
struct Route<T> {
    method: Box<str>,
    template: PathTemplate,
    value: T,
}

/// Collects rules and rejects conflicts; [`RouterBuilder::build`] turns them into a [`Router`].
#[derive(Debug)]
pub struct RouterBuilder<T> {
    mode: UnescapeMode,
    routes: Vec<Route<T>>,
    /// `(method, canonical template)` -> index in `routes`, to refuse a silent winner.
    keys: HashMap<(Box<str>, String), usize>,
}

impl<T> RouterBuilder<T> {
    /// Starts an empty table whose multi-segment variables decode per `mode`.
    pub fn new(mode: UnescapeMode) -> Self {
        RouterBuilder {
            mode,
            routes: Vec::new(),
            keys: HashMap::new(),
        }
    }

    /// Adds a rule; `method` is an HTTP method name (`GET`, `PURGE`, ...) or `*` for any method.
    ///
    /// Fails if a rule with the same method and canonical template (verb included) exists.
    pub fn insert(
        &mut self,
        method: &str,
        template: PathTemplate,
        value: T,
    ) -> Result<(), RouteConflict> {
        let key = (Box::from(method), template.canonical());
        if let Some(&existing) = self.keys.get(&key) {
            return Err(RouteConflict {
                method: method.to_owned(),
                existing: self.routes[existing].template.to_string(),
                new: template.to_string(),
                canonical: key.1,
            });
        }
        self.keys.insert(key, self.routes.len());
        self.routes.push(Route {
            method: Box::from(method),
            template,
            value,
        });
        Ok(())
    }

    /// The value of the rule already holding `method` + `template`'s canonical form, if any
    /// (to name the other side of a [`RouteConflict`]).
    pub fn get(&self, method: &str, template: &PathTemplate) -> Option<&T> {
        let key = (Box::from(method), template.canonical());
        self.keys.get(&key).map(|&index| &self.routes[index].value)
    }

    /// Builds the trie; the table is immutable from here on.
    pub fn build(self) -> Router<T> {
        let templates = self
            .routes
            .iter()
            .map(|r| (r.template.segments(), r.template.verb()));
        Router {
            mode: self.mode,
            trie: Trie::build(templates),
            routes: self.routes,
        }
    }
}

/// An immutable routing table; cheap to look up from many threads.
#[derive(Debug)]
pub struct Router<T> {
    mode: UnescapeMode,
    routes: Vec<Route<T>>,
    trie: Trie,
}

impl<T> Router<T> {
    /// Finds the rule for `method` and the raw `path` (percent-encoded, no query string).
    pub fn lookup<'r>(&'r self, method: &str, path: &str) -> Result<RouteMatch<'r, T>, RouteMiss> {
        let body = segments_of(path)?;
        let split = self.split_verb(body);
        let attempts = split.into_iter().chain([(body, None)]);
        for (segments, verb) in attempts {
            if let Some(index) = self.find(method, segments, verb) {
                return self.bind(index, segments);
            }
        }
        let allow = self.methods_matching(body);
        if allow.is_empty() {
            return Err(RouteMiss::NotFound);
        }
        Err(RouteMiss::MethodNotAllowed { allow })
    }

    /// The methods of the rules matching `path`, sorted, without `*`: what exists there (a CORS
    /// preflight's `Access-Control-Allow-Methods`).
    pub fn methods_at(&self, path: &str) -> Result<Vec<String>, RouteMiss> {
        let allow = self.methods_matching(segments_of(path)?);
        if allow.is_empty() {
            return Err(RouteMiss::NotFound);
        }
        Ok(allow)
    }

    /// The methods of the rules matching the path `body`, sorted and deduplicated, without `*`.
    fn methods_matching(&self, body: &str) -> Vec<String> {
        let mut allow = Vec::new();
        for (segments, verb) in self.split_verb(body).into_iter().chain([(body, None)]) {
            self.trie.walk(segments, verb, &mut |routes| {
                let methods = routes.iter().map(|&r| &*self.routes[r].method);
                allow.extend(methods.filter(|m| *m != "*").map(str::to_owned));
                false
            });
        }
        allow.sort_unstable();
        allow.dedup();
        allow
    }

    /// Every rule as `(method, template, value)`, in insertion order.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &PathTemplate, &T)> {
        self.routes
            .iter()
            .map(|r| (&*r.method, &r.template, &r.value))
    }

    /// Splits a registered verb off the last segment: `(segments without it, verb)`.
    fn split_verb<'p>(&self, body: &'p str) -> Option<(&'p str, Option<&'p str>)> {
        let last_start = body.rfind('/').map_or(0, |i| i + 1);
        let colon = last_start + body[last_start..].rfind(':')?;
        let verb = &body[colon + 1..];
        // A segment that is only `:verb` would leave an empty segment behind: never split it.
        (colon > last_start && self.trie.has_verb(verb)).then(|| (&body[..colon], Some(verb)))
    }

    /// The index of the first rule (in precedence order) matching the path and `method`.
    fn find(&self, method: &str, segments: &str, verb: Option<&str>) -> Option<usize> {
        let mut found = None;
        self.trie.walk(segments, verb, &mut |routes| {
            let of = |wanted: &str| {
                routes
                    .iter()
                    .copied()
                    .find(|&r| &*self.routes[r].method == wanted)
            };
            found = of(method).or_else(|| of("*"));
            found.is_some()
        });
        found
    }

    /// Extracts and decodes the bindings of rule `index`, which is known to match `segments`.
    fn bind<'r>(&'r self, index: usize, segments: &str) -> Result<RouteMatch<'r, T>, RouteMiss> {
        let route = &self.routes[index];
        let template = &route.template;
        let count = if segments.is_empty() {
            0
        } else {
            segments.bytes().filter(|&b| b == b'/').count() + 1
        };
        // Only literals follow a `**`, so its share of the path is fixed by the segment counts.
        let double = template
            .segments()
            .iter()
            .position(|s| *s == Segment::DoubleWildcard)
            .map(|at| (at, (count + 1).saturating_sub(template.segments().len())));
        let path_index = |i: usize| match double {
            Some((at, taken)) if i > at => i - 1 + taken,
            _ => i,
        };
        let mut bindings = Vec::with_capacity(template.variable_spans().len());
        for var in template.variable_spans() {
            let raw = span(segments, path_index(var.start), path_index(var.end));
            let single = var.end - var.start == 1
                && template.segments().get(var.start) != Some(&Segment::DoubleWildcard);
            let decoded = if single {
                percent::decode(raw, |_| false)
            } else {
                percent::decode(raw, |b| self.mode.keeps(b))
            };
            bindings.push((
                var.field_path.as_str(),
                decoded.map_err(RouteMiss::MalformedPath)?,
            ));
        }
        Ok(RouteMatch {
            value: &route.value,
            template,
            bindings,
        })
    }
}

/// Validates a raw request path and returns its segments without the leading (and one trailing)
/// slash: `/v1/a/` -> `v1/a`, `/` -> ``.
fn segments_of(path: &str) -> Result<&str, RouteMiss> {
    let Some(body) = path.strip_prefix('/') else {
        return Err(RouteMiss::MalformedPath(format!(
            "request path {path:?} does not start with '/'"
        )));
    };
    // An empty segment matches nothing, except that Envoy drops a single trailing one.
    if path.contains("//") {
        return Err(RouteMiss::NotFound);
    }
    Ok(body.strip_suffix('/').unwrap_or(body))
}

/// The text of path segments `from..to` of `segments`, slashes between them included.
fn span(segments: &str, from: usize, to: usize) -> &str {
    if from >= to {
        return "";
    }
    let mut start = 0;
    let mut index = 0;
    for (at, byte) in segments.bytes().enumerate() {
        if byte != b'/' {
            continue;
        }
        index += 1;
        if index == from {
            start = at + 1;
        }
        if index == to {
            return &segments[start..at];
        }
    }
    &segments[start..]
}
