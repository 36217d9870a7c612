//! The validated `cors` policy (top level as every route's default, `routes[].cors` to override):
//! which browser origins may call, with which headers and credentials.

use std::time::Duration;

/// Cross-origin access from browsers to a route's methods (JSON and gRPC-Web alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfig {
    /// Origins allowed.
    pub allow_origins: Vec<OriginPattern>,
    /// Browsers may send cookies and `Authorization` (`Access-Control-Allow-Credentials: true`).
    pub allow_credentials: bool,
    /// Request headers a browser may send (answered to preflights).
    pub allow_headers: Vec<String>,
    /// Response headers a browser script may read.
    pub expose_headers: Vec<String>,
    /// How long a browser may cache a preflight answer.
    pub max_age: Duration,
}

impl CorsConfig {
    /// Whether the well-formed `origin` may call.
    pub fn allows(&self, origin: &Origin<'_>) -> bool {
        self.allow_origins.iter().any(|p| p.matches(origin))
    }
}

/// One entry of `allow_origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `*`: any origin (never with credentials).
    Any,
    /// `https://app.example.com[:port]`: that origin only.
    Exact {
        /// `https`.
        scheme: String,
        /// `app.example.com`, lower case.
        host: String,
        /// The port when the origin names one.
        port: Option<u16>,
    },
    /// `https://*.example.com[:port]`: any host one or more labels below `example.com`.
    Subdomains {
        /// `https`.
        scheme: String,
        /// `.example.com`, lower case.
        suffix: String,
        /// The port when the pattern names one; else only origins without a port.
        port: Option<u16>,
    },
}

impl OriginPattern {
    /// Parses an `allow_origins` entry; the reason when it is not one.
    pub fn parse(text: &str) -> Result<OriginPattern, String> {
        if text == "*" {
            return Ok(OriginPattern::Any);
        }
        let origin = Origin::parse(text).map_err(|reason| {
            format!("`{text}` is not an origin ({reason}); write scheme://host[:port], e.g. https://app.example.com, or https://*.example.com, or *")
        })?;
        if origin.host.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(format!(
                "`{text}`: write the host in lower case, as browsers send it"
            ));
        }
        let (scheme, port) = (origin.scheme.to_owned(), origin.port);
        match origin.host.strip_prefix('*') {
            Some(suffix) if suffix.starts_with('.') && !suffix[1..].contains('*') => {
                Ok(OriginPattern::Subdomains {
                    scheme,
                    suffix: suffix.to_owned(),
                    port,
                })
            }
            _ if origin.host.contains('*') => Err(format!(
                "`{text}`: `*` may only stand for the leftmost labels of a host (https://*.example.com)"
            )),
            _ => Ok(OriginPattern::Exact {
                scheme,
                host: origin.host.to_owned(),
                port,
            }),
        }
    }

    /// Whether `origin` matches.
    pub fn matches(&self, origin: &Origin<'_>) -> bool {
        match self {
            OriginPattern::Any => true,
            OriginPattern::Exact { scheme, host, port } => {
                origin.scheme == scheme
                    && origin.host.eq_ignore_ascii_case(host)
                    && origin.port == *port
            }
            OriginPattern::Subdomains {
                scheme,
                suffix,
                port,
            } => {
                let host = origin.host.as_bytes();
                origin.scheme == scheme
                    && origin.port == *port
                    && host.len() > suffix.len()
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
            }
        }
    }
}

/// A browser's `Origin` header value, split: `scheme://host[:port]` (or the opaque `null`,
/// which only `*` matches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    /// `https` (lower case, as the serialization requires).
    pub scheme: &'a str,
    /// The host as sent (a name, an IPv4 address, or a bracketed IPv6 address); empty for `null`.
    pub host: &'a str,
    /// The port, when the origin names one.
    pub port: Option<u16>,
}

impl<'a> Origin<'a> {
    /// Parses an origin serialization (RFC 6454 §6.1): no path, no query, no user info.
    pub fn parse(text: &'a str) -> Result<Origin<'a>, &'static str> {
        if text == "null" {
            return Ok(Origin {
                scheme: "null",
                host: "",
                port: None,
            });
        }
        let (scheme, rest) = text.split_once("://").ok_or("no scheme://")?;
        let scheme_ok = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
        if !scheme_ok {
            return Err("the scheme must be lower-case letters, digits, `+`, `-` or `.`");
        }
        if rest.is_empty() {
            return Err("no host");
        }
        if rest.contains(['/', '?', '#', '@']) {
            return Err("an origin has no path, query, fragment or user info");
        }
        let (host, port) = split_port(rest)?;
        let host_ok = host.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.*_".contains(&b));
        if host.is_empty() || !host_ok {
            return Err("the host has characters a host name cannot have");
        }
        Ok(Origin { scheme, host, port })
    }
}

/// `host[:port]` → the host and the port, if any (brackets kept around an IPv6 address).
fn split_port(authority: &str) -> Result<(&str, Option<u16>), &'static str> {
    let colon = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => i,
        _ => return Ok((authority, None)),
    };
    let (host, port) = (&authority[..colon], &authority[colon + 1..]);
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|_| port.bytes().all(|b| b.is_ascii_digit()))
        .ok_or("the port is not a number from 0 to 65535")?;
    Ok((host, Some(port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> OriginPattern {
        OriginPattern::parse(text).expect("a pattern")
    }

    fn allows(pattern_text: &str, origin: &str) -> bool {
        pattern(pattern_text).matches(&Origin::parse(origin).expect("an origin"))
    }

    #[test]
    fn exact_origins_match_scheme_host_and_port() {
        assert!(allows("http://localhost:3000", "http://localhost:3000"));
        assert!(!allows("http://localhost:3000", "http://localhost:3001"));
        assert!(!allows("http://localhost:3000", "https://localhost:3000"));
        assert!(!allows(
            "https://app.example.com",
            "https://app.example.com:443"
        ));
        assert!(allows("https://app.example.com", "https://APP.example.com"));
    }

    #[test]
    fn a_wildcard_stands_for_one_or_more_leftmost_labels() {
        assert!(allows("https://*.example.com", "https://a.example.com"));
        assert!(allows("https://*.example.com", "https://a.b.example.com"));
        assert!(!allows("https://*.example.com", "https://example.com"));
        assert!(!allows("https://*.example.com", "https://evilexample.com"));
        assert!(!allows(
            "https://*.example.com",
            "https://a.example.com.evil.net"
        ));
        assert!(!allows("https://*.example.com", "http://a.example.com"));
        assert!(!allows(
            "https://*.example.com",
            "https://a.example.com:8443"
        ));
        assert!(allows(
            "https://*.example.com:8443",
            "https://a.example.com:8443"
        ));
        assert!(allows("*", "null"));
        assert!(!allows("https://*.example.com", "null"));
    }

    #[test]
    fn malformed_origins_and_patterns_are_refused_with_a_reason() {
        for bad in [
            "example.com",
            "https://",
            "https://a.example.com/",
            "https://a.example.com/path",
            "https://user@a.example.com",
            "https://a.example.com:99999",
            "https://a.example.com:",
            "HTTPS://a.example.com",
            "https://a b.example.com",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
        assert!(OriginPattern::parse("https://a.*.example.com").is_err());
        assert!(OriginPattern::parse("https://*example.com").is_err());
        assert!(OriginPattern::parse("https://App.example.com").is_err());
        assert_eq!(
            Origin::parse("http://[::1]:8080").map(|o| o.port),
            Ok(Some(8080))
        );
    }
}
