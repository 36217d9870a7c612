//! Where a request's token comes from: the configured header (after its scheme) or, only when
//! enabled, the query parameter — and never from both, nor from two copies of either.
//!
//! Ambiguous credentials are refused rather than resolved by position: with "the first header
//! wins", a proxy or client library that appends a second `Authorization` decides which identity
//! the gateway checks and a backend or log may see the other (RFC 6750 §3.1 lists "uses more than
//! one method for including an access token" under `invalid_request`).

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::AuthConfig;

/// Why no single token can be read from a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenSourceError {
    /// The token header appears more than once.
    #[error("more than one `{0}` header")]
    RepeatedHeader(&'static str),
    /// The token query parameter appears more than once.
    #[error("more than one token query parameter")]
    RepeatedParameter,
    /// A token in the header and another in the query parameter.
    #[error("a token in both the header and the query parameter")]
    HeaderAndParameter,
    /// The token (after the scheme) holds a byte outside visible ASCII: it is no JWS, and
    /// must not be mistaken for an absent token.
    #[error("the token has a byte outside visible ASCII")]
    NotAscii,
}

impl TokenSourceError {
    /// True when the request is ambiguous (400 `invalid_request`); false for a malformed token
    /// (401 `invalid_token`).
    pub fn is_ambiguous(&self) -> bool {
        !matches!(self, TokenSourceError::NotAscii)
    }
}

/// Where tokens are read from (`auth.token`).
#[derive(Debug, Clone)]
pub(crate) struct TokenSource {
    /// The header (`authorization` unless configured).
    pub(crate) header: HeaderName,
    /// Its scheme, matched case-insensitively (`Bearer`); empty: the whole value is the token.
    prefix: String,
    /// The query parameter, when enabled.
    parameter: Option<String>,
}

impl TokenSource {
    /// The source of `auth.token`'s settings (`header` was checked to be a header name).
    pub(crate) fn new(header: &str, prefix: &str, parameter: Option<&str>) -> TokenSource {
        TokenSource {
            header: HeaderName::try_from(header).unwrap_or(http::header::AUTHORIZATION),
            prefix: prefix.to_owned(),
            parameter: parameter.map(str::to_owned),
        }
    }

    /// The source `auth.token` configures.
    pub(crate) fn of(config: &AuthConfig) -> TokenSource {
        let parameter = config.query_parameter.as_deref();
        TokenSource::new(&config.header, &config.prefix, parameter)
    }

    /// The request's one token; `Ok(None)` when it carries none.
    pub(crate) fn find<'r>(
        &self,
        headers: &'r HeaderMap,
        query: Option<&'r str>,
    ) -> Result<Option<Cow<'r, str>>, TokenSourceError> {
        let mut values = headers.get_all(&self.header).iter();
        let from_header = match (values.next(), values.next()) {
            (Some(_), Some(_)) => {
                return Err(TokenSourceError::RepeatedHeader(header_label(&self.header)));
            }
            (Some(value), None) => self.header_token(value)?,
            (None, _) => None,
        };
        let from_query = self.query_token(query)?;
        match (from_header, from_query) {
            (Some(_), Some(_)) => Err(TokenSourceError::HeaderAndParameter),
            (Some(token), None) => Ok(Some(Cow::Borrowed(token))),
            (None, query) => Ok(query),
        }
    }

    /// The token of one header value; `None` when it uses another scheme (`Basic …`).
    fn header_token<'r>(
        &self,
        value: &'r HeaderValue,
    ) -> Result<Option<&'r str>, TokenSourceError> {
        let text = value.as_bytes().trim_ascii();
        let token = if self.prefix.is_empty() {
            text
        } else {
            let Some(space) = text.iter().position(|b| *b == b' ') else {
                return Ok(None);
            };
            let (scheme, rest) = text.split_at(space);
            if !scheme.eq_ignore_ascii_case(self.prefix.as_bytes()) {
                return Ok(None);
            }
            rest.trim_ascii()
        };
        if !token.iter().all(u8::is_ascii_graphic) {
            return Err(TokenSourceError::NotAscii);
        }
        // Visible ASCII is UTF-8.
        Ok(std::str::from_utf8(token).ok())
    }

    /// The token of the query parameter, when enabled (`%2E` read as `.`).
    fn query_token<'r>(
        &self,
        query: Option<&'r str>,
    ) -> Result<Option<Cow<'r, str>>, TokenSourceError> {
        let (Some(name), Some(query)) = (self.parameter.as_deref(), query) else {
            return Ok(None);
        };
        let mut values = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v);
        match (values.next(), values.next()) {
            (Some(_), Some(_)) => Err(TokenSourceError::RepeatedParameter),
            (Some(v), None) => Ok(Some(Cow::Owned(v.replace("%2E", ".").replace("%2e", ".")))),
            (None, _) => Ok(None),
        }
    }

    /// The query without the token parameter (when one is configured), so it is neither bound
    /// to a field nor reported as unknown.
    pub(crate) fn query_without_token(&self, query: Option<&str>) -> Option<String> {
        let query = query?;
        let Some(name) = self.parameter.as_deref() else {
            return Some(query.to_owned());
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| pair.split('=').next() != Some(name))
            .collect();
        Some(kept.join("&"))
    }
}

impl Default for TokenSource {
    /// `Authorization: Bearer …`, no query parameter (the `auth.token` defaults).
    fn default() -> TokenSource {
        TokenSource::new("authorization", "Bearer", None)
    }
}

/// The header's name for messages: `Authorization` as RFCs write it, else as configured.
fn header_label(name: &HeaderName) -> &'static str {
    if name == http::header::AUTHORIZATION {
        "Authorization"
    } else {
        "token"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append("authorization", HeaderValue::from_bytes(v).expect("value"));
        }
        map
    }

    #[test]
    fn one_token_from_one_place_or_an_error() {
        let source = TokenSource::new("authorization", "Bearer", Some("jwt"));
        let find = |h: &[&[u8]], q: Option<&'static str>| {
            source
                .find(&headers(h), q)
                .map(|t| t.map(|t| t.into_owned()))
        };
        assert_eq!(find(&[b"Bearer a.b.c"], None), Ok(Some("a.b.c".to_owned())));
        assert_eq!(
            find(&[b"bearer  a.b.c "], None),
            Ok(Some("a.b.c".to_owned()))
        );
        assert_eq!(find(&[b"Basic YWxp"], None), Ok(None));
        assert_eq!(find(&[], Some("jwt=x%2Ey")), Ok(Some("x.y".to_owned())));
        assert_eq!(
            find(&[b"Basic YWxp"], Some("jwt=q")),
            Ok(Some("q".to_owned()))
        );
        let repeated = Err(TokenSourceError::RepeatedHeader("Authorization"));
        assert_eq!(find(&[b"Bearer a", b"Bearer b"], None), repeated);
        assert_eq!(find(&[b"Bearer a", b"Basic b"], None), repeated);
        assert_eq!(
            find(&[], Some("jwt=a&jwt=b")),
            Err(TokenSourceError::RepeatedParameter)
        );
        assert_eq!(
            find(&[b"Bearer a"], Some("jwt=b")),
            Err(TokenSourceError::HeaderAndParameter)
        );
        assert_eq!(
            find(&[b"Bearer a\xe9b"], None),
            Err(TokenSourceError::NotAscii)
        );
        assert_eq!(
            find(&[b"Bearer a b"], None),
            Err(TokenSourceError::NotAscii)
        );
    }

    #[test]
    fn the_parameter_is_no_source_unless_enabled() {
        let source = TokenSource::new("authorization", "Bearer", None);
        assert_eq!(source.find(&headers(&[]), Some("jwt=a")), Ok(None));
        assert_eq!(
            source.query_without_token(Some("a=1&jwt=x")).as_deref(),
            Some("a=1&jwt=x")
        );
        let enabled = TokenSource::new("authorization", "Bearer", Some("jwt"));
        assert_eq!(
            enabled.query_without_token(Some("a=1&jwt=x")).as_deref(),
            Some("a=1")
        );
    }
}
