//! The segment trie behind the router: it owns match precedence and backtracking.
//!
//! Each node is the position after some run of template segments. At a request segment the walk
//! tries the literal child, then `*`, then `**` (Envoy's order), and backs out of any subtree that
//! does not end in an accepted rule. It never allocates.

use crate::transcode::template::Segment;

type NodeId = usize;
const ROOT: NodeId = 0;

/// A trie node.
#[derive(Debug, Default)]
struct Node {
    /// Literal children, sorted by text for binary search.
    literals: Vec<(Box<str>, NodeId)>,
    wildcard: Option<NodeId>,
    double: Option<NodeId>,
    /// Rules whose template ends here, grouped by verb.
    ends: Vec<End>,
}

/// The rules sharing one canonical template and verb (one per method, by the builder's check).
#[derive(Debug)]
struct End {
    verb: Option<Box<str>>,
    routes: Vec<usize>,
}

/// An immutable trie of templates whose leaves hold route indices.
#[derive(Debug)]
pub(super) struct Trie {
    nodes: Vec<Node>,
    /// Every verb some template declares, sorted: only these are split off a request path.
    verbs: Vec<Box<str>>,
}

impl Trie {
    /// Builds the trie from `(segments, verb)` per route, route indices counting from zero.
    pub(super) fn build<'a>(
        templates: impl Iterator<Item = (&'a [Segment], Option<&'a str>)>,
    ) -> Trie {
        let mut trie = Trie {
            nodes: vec![Node::default()],
            verbs: Vec::new(),
        };
        for (route, (segments, verb)) in templates.enumerate() {
            let node = segments.iter().fold(ROOT, |node, s| trie.child(node, s));
            let ends = &mut trie.nodes[node].ends;
            match ends.iter_mut().find(|end| end.verb.as_deref() == verb) {
                Some(end) => end.routes.push(route),
                None => ends.push(End {
                    verb: verb.map(Box::from),
                    routes: vec![route],
                }),
            }
            trie.verbs.extend(verb.map(Box::from));
        }
        for node in &mut trie.nodes {
            node.literals.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        }
        trie.verbs.sort_unstable();
        trie.verbs.dedup();
        trie
    }

    /// Returns the child of `node` for `segment`, creating it if needed.
    fn child(&mut self, node: NodeId, segment: &Segment) -> NodeId {
        let parent = &self.nodes[node];
        let existing = match segment {
            Segment::Literal(text) => parent
                .literals
                .iter()
                .find(|(lit, _)| **lit == **text)
                .map(|&(_, id)| id),
            Segment::Wildcard => parent.wildcard,
            Segment::DoubleWildcard => parent.double,
        };
        if let Some(id) = existing {
            return id;
        }
        let id = self.nodes.len();
        self.nodes.push(Node::default());
        let parent = &mut self.nodes[node];
        match segment {
            Segment::Literal(text) => parent.literals.push((Box::from(text.as_str()), id)),
            Segment::Wildcard => parent.wildcard = Some(id),
            Segment::DoubleWildcard => parent.double = Some(id),
        }
        id
    }

    /// Whether some template declares `verb`.
    pub(super) fn has_verb(&self, verb: &str) -> bool {
        self.verbs.binary_search_by(|v| (**v).cmp(verb)).is_ok()
    }

    /// Walks the path `segments` (no leading slash, `""` for the root) in precedence order.
    ///
    /// `visit` sees the route indices of each template that matches, and returns `true` to stop
    /// there; `walk` then returns `true`.
    pub(super) fn walk<'t>(
        &'t self,
        segments: &str,
        verb: Option<&str>,
        visit: &mut impl FnMut(&'t [usize]) -> bool,
    ) -> bool {
        let rest = (!segments.is_empty()).then_some(segments);
        self.walk_from(ROOT, rest, verb, visit)
    }

    /// `rest` is the unmatched part of the path, `None` once every segment is consumed.
    fn walk_from<'t>(
        &'t self,
        node: NodeId,
        rest: Option<&str>,
        verb: Option<&str>,
        visit: &mut impl FnMut(&'t [usize]) -> bool,
    ) -> bool {
        let here = &self.nodes[node];
        let Some(rest) = rest else {
            let end = here.ends.iter().find(|end| end.verb.as_deref() == verb);
            if end.is_some_and(|end| visit(&end.routes)) {
                return true;
            }
            // A trailing `**` may take zero segments.
            return here
                .double
                .is_some_and(|d| self.walk_from(d, None, verb, visit));
        };
        let (segment, tail) = match rest.split_once('/') {
            Some((segment, tail)) => (segment, Some(tail)),
            None => (rest, None),
        };
        let literal = here
            .literals
            .binary_search_by(|(lit, _)| (**lit).cmp(segment))
            .ok()
            .map(|i| here.literals[i].1);
        if literal.is_some_and(|id| self.walk_from(id, tail, verb, visit)) {
            return true;
        }
        if here
            .wildcard
            .is_some_and(|id| self.walk_from(id, tail, verb, visit))
        {
            return true;
        }
        here.double
            .is_some_and(|double| self.walk_double(double, rest, verb, visit))
    }

    /// Tries the `**` child `double` on `rest` (at least one segment).
    ///
    /// `**` takes zero or more segments, fewest first. Only literals can follow it (the grammar
    /// forbids wildcards there), so at most one split fits a given template and the order does
    /// not change any template's bindings.
    fn walk_double<'t>(
        &'t self,
        double: NodeId,
        rest: &str,
        verb: Option<&str>,
        visit: &mut impl FnMut(&'t [usize]) -> bool,
    ) -> bool {
        let mut remaining = Some(rest);
        loop {
            if self.walk_from(double, remaining, verb, visit) {
                return true;
            }
            let Some(r) = remaining else {
                return false;
            };
            remaining = r.split_once('/').map(|(_, tail)| tail);
        }
    }
}
