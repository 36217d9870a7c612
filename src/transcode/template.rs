//! Path templates of `google.api.http` rules: parsing, validation and the canonical form.
//!
//! This module owns the grammar from `google/api/http.proto`:
//!
//! ```text
//! Template  = "/" Segments [ Verb ] ;      (or the root template "/" alone)
//! Segments  = Segment { "/" Segment } ;
//! Segment   = "*" | "**" | LITERAL | Variable ;
//! Variable  = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! Verb      = ":" LITERAL ;
//! ```
//!
//! It knows nothing about HTTP methods or request paths: matching them is the router's job, a
//! layer above this one. Like Envoy (`http_template.cc`), a literal may follow `**`
//! (`/v1/{name=**}/versions`), but no wildcard may.

use std::fmt;

#[cfg(test)]
mod tests;

/// One segment of a parsed template, with variable boundaries erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A literal, compared with the raw (still percent-encoded) request segment.
    Literal(String),
    /// `*`: exactly one non-empty segment.
    Wildcard,
    /// `**`: zero or more segments.
    DoubleWildcard,
}

impl Segment {
    /// The segment as written in a canonical template (`*`, `**` or the literal).
    pub fn as_str(&self) -> &str {
        match self {
            Segment::Literal(text) => text,
            Segment::Wildcard => "*",
            Segment::DoubleWildcard => "**",
        }
    }
}

/// A field path bound to the template segments `start..end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Variable {
    pub(crate) field_path: String,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// A parsed and validated `google.api.http` path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    text: String,
    segments: Vec<Segment>,
    verb: Option<String>,
    variables: Vec<Variable>,
}

/// Why a path template was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path template `{template}` at byte {position}: {kind}")]
pub struct TemplateError {
    /// The template text as given.
    pub template: String,
    /// Byte offset in `template` where the problem was found.
    pub position: usize,
    /// What is wrong.
    pub kind: TemplateErrorKind,
}

/// The reason inside a [`TemplateError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateErrorKind {
    /// The template does not start with `/`.
    #[error("a template must start with '/'")]
    MissingLeadingSlash,
    /// Two slashes in a row, a trailing slash, or nothing where a segment must be.
    #[error("empty segment")]
    EmptySegment,
    /// A `{` inside a variable.
    #[error("variables cannot be nested")]
    NestedVariable,
    /// A `{` without its `}`.
    #[error("variable is not closed with '}}'")]
    UnclosedVariable,
    /// A `}` without its `{`.
    #[error("'}}' without a matching '{{'")]
    UnmatchedClosingBrace,
    /// A field path that is not `IDENT { "." IDENT }`.
    #[error("invalid field path (expected identifiers separated by '.')")]
    BadFieldPath,
    /// The same field path appears in two variables.
    #[error("field path `{0}` is bound twice")]
    DuplicateVariable(String),
    /// A second `**`.
    #[error("only one '**' is allowed")]
    MultipleDoubleWildcards,
    /// A `*` after a `**`: the split between them would be ambiguous.
    #[error("'*' cannot follow '**'")]
    WildcardAfterDoubleWildcard,
    /// A `:` with nothing after it.
    #[error("empty verb after ':'")]
    EmptyVerb,
    /// A `%` not followed by two hex digits.
    #[error("'%' must be followed by two hex digits")]
    BadPercentEscape,
    /// A character that the grammar does not allow here.
    #[error("character {0:?} is not allowed here")]
    InvalidCharacter(char),
}

impl PathTemplate {
    /// Parses and validates `text`; the error names the template, the byte offset and the reason.
    pub fn parse(text: &str) -> Result<PathTemplate, TemplateError> {
        Parser {
            text,
            pos: 0,
            segments: Vec::new(),
            variables: Vec::new(),
            seen_double: false,
        }
        .run()
    }

    /// Field paths of the variables in template order, e.g. `"policy.id"`.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.variables.iter().map(|v| v.field_path.as_str())
    }

    /// The custom verb without its `:`, if the template has one.
    pub fn verb(&self) -> Option<&str> {
        self.verb.as_deref()
    }

    /// The segments with variables erased (empty for the root template `/`).
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The template with variables erased, e.g. `/v1/policies/*:enforce`.
    ///
    /// Two templates with equal canonical forms match exactly the same paths.
    pub fn canonical(&self) -> String {
        let mut out = String::with_capacity(self.text.len());
        for segment in &self.segments {
            out.push('/');
            out.push_str(segment.as_str());
        }
        if out.is_empty() {
            out.push('/');
        }
        if let Some(verb) = &self.verb {
            out.push(':');
            out.push_str(verb);
        }
        out
    }

    pub(crate) fn variable_spans(&self) -> &[Variable] {
        &self.variables
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for PathTemplate {
    type Err = TemplateError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        PathTemplate::parse(text)
    }
}

/// Recursive-descent parser; `pos` only ever advances over ASCII, so it stays on a char boundary.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
    segments: Vec<Segment>,
    variables: Vec<Variable>,
    seen_double: bool,
}

impl Parser<'_> {
    fn run(mut self) -> Result<PathTemplate, TemplateError> {
        if !self.text.starts_with('/') {
            return Err(self.error(TemplateErrorKind::MissingLeadingSlash));
        }
        self.pos = 1;
        // "/" alone is the root template (envoy PR #14585); anything longer needs segments.
        if self.text.len() > 1 {
            self.segments(false)?;
        }
        let verb = match self.peek() {
            None => None,
            Some(b':') => {
                self.pos += 1;
                let verb = self.literal(b"")?;
                if verb.is_empty() {
                    return Err(self.error(TemplateErrorKind::EmptyVerb));
                }
                Some(verb)
            }
            Some(b'}') => return Err(self.error(TemplateErrorKind::UnmatchedClosingBrace)),
            Some(_) => return Err(self.unexpected()),
        };
        Ok(PathTemplate {
            text: self.text.to_owned(),
            segments: self.segments,
            verb,
            variables: self.variables,
        })
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn error(&self, kind: TemplateErrorKind) -> TemplateError {
        self.error_at(self.pos, kind)
    }

    fn error_at(&self, position: usize, kind: TemplateErrorKind) -> TemplateError {
        TemplateError {
            template: self.text.to_owned(),
            position,
            kind,
        }
    }

    fn unexpected(&self) -> TemplateError {
        match self.text[self.pos..].chars().next() {
            Some(c) => self.error(TemplateErrorKind::InvalidCharacter(c)),
            None => self.error(TemplateErrorKind::EmptySegment),
        }
    }

    fn segments(&mut self, in_variable: bool) -> Result<(), TemplateError> {
        loop {
            self.segment(in_variable)?;
            if self.peek() != Some(b'/') {
                return Ok(());
            }
            self.pos += 1;
        }
    }

    fn segment(&mut self, in_variable: bool) -> Result<(), TemplateError> {
        match self.peek() {
            Some(b'}') if !in_variable => Err(self.error(TemplateErrorKind::UnmatchedClosingBrace)),
            None | Some(b'/' | b':' | b'}') => Err(self.error(TemplateErrorKind::EmptySegment)),
            Some(b'{') if in_variable => Err(self.error(TemplateErrorKind::NestedVariable)),
            Some(b'{') => self.variable(),
            Some(b'*') => {
                let double = self.text.as_bytes().get(self.pos + 1) == Some(&b'*');
                self.wildcard(double, self.pos)?;
                self.pos += if double { 2 } else { 1 };
                // A wildcard is a whole segment: `*a` or `***` is neither `*` nor a literal.
                match self.peek() {
                    None | Some(b'/' | b':' | b'}') => Ok(()),
                    Some(_) => Err(self.unexpected()),
                }
            }
            Some(_) => {
                let literal = self.literal(b"/:}")?;
                self.segments.push(Segment::Literal(literal));
                Ok(())
            }
        }
    }

    /// Records a `*` or `**`, enforcing that nothing wild follows a `**`.
    fn wildcard(&mut self, double: bool, at: usize) -> Result<(), TemplateError> {
        if self.seen_double {
            let kind = if double {
                TemplateErrorKind::MultipleDoubleWildcards
            } else {
                TemplateErrorKind::WildcardAfterDoubleWildcard
            };
            return Err(self.error_at(at, kind));
        }
        self.seen_double = double;
        self.segments.push(if double {
            Segment::DoubleWildcard
        } else {
            Segment::Wildcard
        });
        Ok(())
    }

    /// Reads literal characters up to one of `stop` (or the end); anything else is an error.
    fn literal(&mut self, stop: &[u8]) -> Result<String, TemplateError> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if stop.contains(&b) {
                break;
            }
            if b == b'%' {
                let hex = self.text.as_bytes().get(self.pos + 1..self.pos + 3);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return Err(self.error(TemplateErrorKind::BadPercentEscape));
                }
                self.pos += 3;
            } else if is_literal_byte(b) {
                self.pos += 1;
            } else {
                return Err(self.unexpected());
            }
        }
        Ok(self.text[start..self.pos].to_owned())
    }

    fn variable(&mut self) -> Result<(), TemplateError> {
        let open = self.pos;
        self.pos += 1;
        let path_at = self.pos;
        let field_path = self.field_path()?;
        let start = self.segments.len();
        match self.peek() {
            Some(b'=') => {
                self.pos += 1;
                self.segments(true)?;
            }
            // `{id}` is shorthand for `{id=*}`.
            Some(b'}') => self.wildcard(false, open)?,
            Some(b'{') => return Err(self.error(TemplateErrorKind::NestedVariable)),
            None => return Err(self.error_at(open, TemplateErrorKind::UnclosedVariable)),
            Some(_) => return Err(self.error(TemplateErrorKind::BadFieldPath)),
        }
        match self.peek() {
            Some(b'}') => self.pos += 1,
            None => return Err(self.error_at(open, TemplateErrorKind::UnclosedVariable)),
            Some(_) => return Err(self.unexpected()),
        }
        if self.variables.iter().any(|v| v.field_path == field_path) {
            return Err(self.error_at(path_at, TemplateErrorKind::DuplicateVariable(field_path)));
        }
        self.variables.push(Variable {
            field_path,
            start,
            end: self.segments.len(),
        });
        Ok(())
    }

    fn field_path(&mut self) -> Result<String, TemplateError> {
        let start = self.pos;
        loop {
            if !self
                .peek()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            {
                return Err(self.error(TemplateErrorKind::BadFieldPath));
            }
            while self
                .peek()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                self.pos += 1;
            }
            if self.peek() != Some(b'.') {
                return Ok(self.text[start..self.pos].to_owned());
            }
            self.pos += 1;
        }
    }
}

/// RFC 3986 `pchar` minus `%` (checked separately) and the grammar's own `* = : { } /`.
fn is_literal_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()+,;@".contains(&b)
}
