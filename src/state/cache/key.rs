//! The cache key of a GET: method + host + path + the query's parameters in sorted order + the
//! values of the route's `vary` headers + the verified subject (only on `per_subject` routes).
//!
//! One key per line of text, so no part can pose as another: header values cannot hold a line
//! break, and the subject line starts with `@`, which no header name may. An anonymous request's
//! key has no subject line at all, so anonymous and authenticated answers never share a key.

use std::fmt::Write as _;
use std::sync::Arc;

use http::{HeaderMap, Uri, header};

/// What a GET's key is made of.
#[derive(Debug, Clone, Copy)]
pub struct KeyParts<'a> {
    /// The request URI (its authority, when the client sent an absolute one or over HTTP/2).
    pub uri: &'a Uri,
    /// The request headers (`Host`, and the `vary` headers).
    pub headers: &'a HeaderMap,
    /// The query as the backend sees it (without an access-token parameter).
    pub query: Option<&'a str>,
    /// The route's `vary` headers, lower-case.
    pub vary: &'a [String],
    /// The verified token subject, on `per_subject` routes.
    pub subject: Option<&'a str>,
}

/// The key of a GET with these parts.
pub fn cache_key(parts: &KeyParts<'_>) -> Arc<str> {
    let host = parts
        .uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| {
            parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
        })
        .unwrap_or_default();
    let mut key = String::with_capacity(64 + parts.uri.path().len());
    key.push_str("GET ");
    key.extend(host.chars().map(|c| c.to_ascii_lowercase()));
    key.push_str(parts.uri.path());
    let mut params: Vec<&str> = parts
        .query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .collect();
    params.sort_unstable();
    if !params.is_empty() {
        key.push('?');
        key.push_str(&params.join("&"));
    }
    for name in parts.vary {
        let values: Vec<&[u8]> = parts
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        let _ = write!(key, "\n{name}:");
        for (i, value) in values.iter().enumerate() {
            key.push_str(if i == 0 { " " } else { ", " });
            key.push_str(&String::from_utf8_lossy(value));
        }
    }
    if let Some(subject) = parts.subject {
        let _ = write!(key, "\n@subject {subject}");
    }
    Arc::from(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uri: &str, headers: &[(&str, &str)], vary: &[&str], subject: Option<&str>) -> String {
        let uri: Uri = uri.parse().expect("uri");
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        let vary: Vec<String> = vary.iter().map(|v| (*v).to_owned()).collect();
        let parts = KeyParts {
            uri: &uri,
            headers: &map,
            query: uri.query(),
            vary: &vary,
            subject,
        };
        cache_key(&parts).to_string()
    }

    #[test]
    fn the_query_order_does_not_matter_but_its_values_do() {
        let a = key("/v1/policies?b=2&a=1", &[("host", "GW:8080")], &[], None);
        assert_eq!(a, "GET gw:8080/v1/policies?a=1&b=2");
        assert_eq!(
            a,
            key("/v1/policies?a=1&b=2&", &[("host", "gw:8080")], &[], None)
        );
        assert_ne!(
            a,
            key("/v1/policies?a=1&b=3", &[("host", "gw:8080")], &[], None)
        );
        assert_ne!(
            a,
            key("/v1/policies?a=1&b=2", &[("host", "other")], &[], None)
        );
    }

    #[test]
    fn vary_headers_and_the_subject_are_part_of_the_key() {
        let vary = ["accept-language"];
        let en = key("/p", &[("accept-language", "en")], &vary, None);
        assert_eq!(en, "GET /p\naccept-language: en");
        assert_ne!(en, key("/p", &[("accept-language", "de")], &vary, None));
        assert_eq!(key("/p", &[], &vary, None), "GET /p\naccept-language:");
        let alice = key("/p", &[], &[], Some("alice"));
        assert_eq!(alice, "GET /p\n@subject alice");
        assert_ne!(alice, key("/p", &[], &[], Some("bob")));
        assert_ne!(alice, key("/p", &[], &[], None));
    }

    #[test]
    fn an_absolute_uri_gives_the_host() {
        assert_eq!(key("http://Gw/p?x=1", &[], &[], None), "GET gw/p?x=1");
    }
}
