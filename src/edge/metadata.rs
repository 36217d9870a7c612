//! What crosses between HTTP headers and gRPC metadata: the allowlists of a route (transcoded
//! calls) or every end-to-end header (gRPC pass-through), the request id, and the call deadline.
//!
//! Credentials follow one rule on every kind of route, in [`forwarded`]: `Authorization` (and
//! the configured token header) reaches a backend only when the route says `forward_authorization: true`,
//! whatever an allowlist or pass-through would let through; `Cookie` and `Proxy-Authorization`
//! only when the route's `request_to_metadata` names them exactly (a wildcard never does).

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::HeaderRules;
use crate::upstream::parse_timeout;

/// Header carrying the request id both ways.
pub const REQUEST_ID: &str = "x-request-id";

/// Which request headers become metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarding {
    /// Transcoded calls: only the route's `request_to_metadata` allowlist (and trace context).
    Allowlist,
    /// gRPC and gRPC-Web pass-through: every header but the connection's and the gateway's own.
    PassThrough,
}

/// Request headers that describe the client's connection or are set by the gateway itself, never
/// passed through.
const NOT_PASSED_THROUGH: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    "te",
    "content-length",
    "content-type",
    "grpc-timeout",
    "user-agent",
    "x-request-id",
];

/// What a call may carry of the request's credentials.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// The header tokens are read from (`authorization` unless configured).
    pub token_header: &'a HeaderName,
    /// The route's `forward_authorization`: the token header goes to the backend.
    pub forward_token: bool,
}

/// Credential headers that cross only when the allowlist names them exactly.
const NAMED_CREDENTIALS: [HeaderName; 2] =
    [http::header::COOKIE, http::header::PROXY_AUTHORIZATION];

/// A client-supplied header the deadline could not be read from (400).
#[derive(Debug, thiserror::Error)]
pub enum DeadlineError {
    /// The client's `grpc-timeout` header is malformed.
    #[error("invalid grpc-timeout header `{0}`")]
    GrpcTimeout(String),
    /// The client's `x-request-timeout` header is not a positive duration (`250ms`, `2s`).
    #[error("invalid x-request-timeout header `{0}`: use a positive duration such as 250ms or 2s")]
    RequestTimeout(String),
}

/// The outgoing metadata of a call, before the token's claims are applied: the request headers
/// `forwarding` lets through, the credentials the route allows (the same rule for every kind
/// of route), and the request id.
pub fn forwarded(
    forwarding: Forwarding,
    headers: &HeaderMap,
    rules: &HeaderRules,
    credentials: Credentials<'_>,
    request_id: &HeaderValue,
) -> HeaderMap {
    let mut out = match forwarding {
        Forwarding::Allowlist => {
            let mut out = forward_request_headers(headers, rules);
            // The gateway reads these answers itself: a backend may gzip them.
            out.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
            out
        }
        Forwarding::PassThrough => pass_through(headers),
    };
    limit_credentials(&mut out, headers, rules, credentials);
    // Unique per request: mark it never-indexed so HPACK does not churn its dynamic table.
    let mut request_id = request_id.clone();
    request_id.set_sensitive(true);
    out.insert(HeaderName::from_static(REQUEST_ID), request_id);
    out
}

/// Takes out of `out` every credential the route does not allow, and puts in the token header
/// when it does.
fn limit_credentials(
    out: &mut HeaderMap,
    headers: &HeaderMap,
    rules: &HeaderRules,
    credentials: Credentials<'_>,
) {
    let token = credentials.token_header;
    out.remove(http::header::AUTHORIZATION);
    out.remove(token);
    for name in &NAMED_CREDENTIALS {
        if !rules.request_to_metadata.iter().any(|e| e == name.as_str()) {
            out.remove(name);
        }
    }
    if !credentials.forward_token {
        return;
    }
    let mut names = vec![&http::header::AUTHORIZATION];
    if *token != http::header::AUTHORIZATION {
        names.push(token);
    }
    for name in names {
        for value in headers.get_all(name) {
            let mut value = value.clone();
            value.set_sensitive(true);
            out.append(name.clone(), value);
        }
    }
}

/// Every end-to-end request header.
fn pass_through(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if !NOT_PASSED_THROUGH.contains(&name.as_str()) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The message codings a gRPC client can read (the gateway, for the calls it transcodes).
const ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");

/// W3C Trace Context headers, propagated to backends on every call (each upstream attempt then
/// writes its own `traceparent` over the client's, and drops an invalid `tracestate`).
const TRACE_CONTEXT: &[&str] = &["traceparent", "tracestate"];

/// True when `name` is covered by an allowlist entry (exact, or prefix when the entry ends in `*`).
fn allowed(list: &[String], name: &str) -> bool {
    list.iter().any(|entry| match entry.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => entry == name,
    })
}

/// Header values gRPC metadata can carry: visible ASCII and spaces. Others are dropped, not mangled.
fn is_metadata_safe(value: &http::HeaderValue) -> bool {
    value.as_bytes().iter().all(|b| (0x20..0x7f).contains(b))
}

/// Request headers named by the allowlist, and the trace context, as outgoing metadata.
fn forward_request_headers(headers: &HeaderMap, rules: &HeaderRules) -> HeaderMap {
    let mut out = HeaderMap::new();
    if !rules.request_to_metadata.is_empty() {
        for (name, value) in headers {
            let binary = name.as_str().ends_with("-bin");
            // The connection's own headers never cross, whatever a wildcard allows.
            let own = NOT_PASSED_THROUGH.contains(&name.as_str());
            if allowed(&rules.request_to_metadata, name.as_str()) && !own {
                if binary || is_metadata_safe(value) {
                    out.append(name.clone(), value.clone());
                } else {
                    tracing::debug!(header = %name, "header value not valid as gRPC metadata; not forwarded");
                }
            }
        }
    }
    // W3C trace context always reaches the backend, whatever the allowlist says.
    for name in TRACE_CONTEXT {
        if !out.contains_key(*name)
            && let Some(value) = headers.get(*name).filter(|v| is_metadata_safe(v))
        {
            out.insert(HeaderName::from_static(name), value.clone());
        }
    }
    out
}

/// Backend metadata (headers and trailers) named by the allowlist, as response headers.
pub fn response_headers(metadata: &HeaderMap, rules: &HeaderRules) -> HeaderMap {
    let mut out = HeaderMap::new();
    if rules.metadata_to_response.is_empty() {
        return out;
    }
    for (name, value) in metadata {
        if allowed(&rules.metadata_to_response, name.as_str()) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The HTTP header in which a client may bound its call, as a duration (`250ms`, `2s`, `1.5s`).
pub const REQUEST_TIMEOUT_HEADER: &str = "x-request-timeout";

/// The call deadline: the shortest of the route's timeout, the client's `grpc-timeout` and its
/// `x-request-timeout`. A malformed value of either header is a 400.
pub fn deadline(route_timeout: Duration, headers: &HeaderMap) -> Result<Duration, DeadlineError> {
    let mut deadline = route_timeout;
    if let Some(value) = headers.get("grpc-timeout") {
        let text = value.to_str().unwrap_or_default();
        let client =
            parse_timeout(text).ok_or_else(|| DeadlineError::GrpcTimeout(text.to_owned()))?;
        deadline = deadline.min(client);
    }
    if let Some(value) = headers.get(REQUEST_TIMEOUT_HEADER) {
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let client = crate::config::parse_duration(&text)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or(DeadlineError::RequestTimeout(text))?;
        deadline = deadline.min(client);
    }
    Ok(deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_matches_exact_names_and_prefixes() {
        let list = vec!["x-tenant-id".to_owned(), "x-tai-*".to_owned()];
        assert!(allowed(&list, "x-tenant-id"));
        assert!(allowed(&list, "x-tai-trace"));
        assert!(!allowed(&list, "x-tenant"));
        assert!(!allowed(&list, "authorization"));
    }

    #[test]
    fn client_timeout_wins_only_when_shorter() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", "100m".parse().expect("value"));
        assert_eq!(
            deadline(Duration::from_secs(10), &headers).ok(),
            Some(Duration::from_millis(100))
        );
        headers.insert("grpc-timeout", "100S".parse().expect("value"));
        assert_eq!(
            deadline(Duration::from_secs(10), &headers).ok(),
            Some(Duration::from_secs(10))
        );
        headers.insert("grpc-timeout", "soon".parse().expect("value"));
        assert!(deadline(Duration::from_secs(10), &headers).is_err());
    }

    #[test]
    fn request_timeout_header_bounds_the_call_and_the_shortest_bound_wins() {
        let ten = Duration::from_secs(10);
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_TIMEOUT_HEADER, "250ms".parse().expect("value"));
        assert_eq!(
            deadline(ten, &headers).ok(),
            Some(Duration::from_millis(250))
        );
        headers.insert(REQUEST_TIMEOUT_HEADER, "1.5s".parse().expect("value"));
        assert_eq!(
            deadline(ten, &headers).ok(),
            Some(Duration::from_millis(1500))
        );
        headers.insert(REQUEST_TIMEOUT_HEADER, "1m".parse().expect("value"));
        assert_eq!(deadline(ten, &headers).ok(), Some(ten));
        headers.insert("grpc-timeout", "100m".parse().expect("value"));
        assert_eq!(
            deadline(ten, &headers).ok(),
            Some(Duration::from_millis(100))
        );
        headers.insert(REQUEST_TIMEOUT_HEADER, "20ms".parse().expect("value"));
        assert_eq!(
            deadline(ten, &headers).ok(),
            Some(Duration::from_millis(20))
        );
        for bad in ["250", "soon", "0s", "-1s", "2 weeks"] {
            headers.insert(REQUEST_TIMEOUT_HEADER, bad.parse().expect("value"));
            assert!(
                matches!(
                    deadline(ten, &headers),
                    Err(DeadlineError::RequestTimeout(_))
                ),
                "{bad}"
            );
        }
    }

    const NO_CREDENTIALS: Credentials<'static> = Credentials {
        token_header: &http::header::AUTHORIZATION,
        forward_token: false,
    };

    #[test]
    fn credentials_follow_one_rule_for_allowlists_and_pass_through() {
        let request = http::Request::post("/pkg.S/M")
            .header("authorization", "Bearer t")
            .header("x-api-token", "k")
            .header("cookie", "session=1")
            .header("proxy-authorization", "Basic p")
            .header("x-tenant-id", "acme")
            .body(())
            .expect("request");
        let id = HeaderValue::from_static("id");
        let token_header = HeaderName::from_static("x-api-token");
        let names = |forwarding, list: &[&str], forward_token| {
            let rules = HeaderRules {
                request_to_metadata: list.iter().map(|s| (*s).to_owned()).collect(),
                ..HeaderRules::default()
            };
            let credentials = Credentials {
                token_header: &token_header,
                forward_token,
            };
            let out = forwarded(forwarding, request.headers(), &rules, credentials, &id);
            // The gateway's own offer of gzip (transcoded calls) is not a client header.
            let mut names: Vec<_> = out
                .keys()
                .filter(|k| *k != ACCEPT_ENCODING)
                .map(|k| k.as_str().to_owned())
                .collect();
            names.sort();
            names.join(" ")
        };
        let everything = ["authorization", "x-api-token", "c*", "x-*", "p*"];
        for forwarding in [Forwarding::Allowlist, Forwarding::PassThrough] {
            assert_eq!(
                names(forwarding, &everything, false),
                "x-request-id x-tenant-id",
                "{forwarding:?}: no credential by wildcard, none without forward_authorization"
            );
            assert_eq!(
                names(forwarding, &["cookie", "x-tenant-id"], true),
                "authorization cookie x-api-token x-request-id x-tenant-id",
                "{forwarding:?}"
            );
        }
    }

    #[test]
    fn trace_context_is_forwarded_without_an_allowlist() {
        let request = http::Request::get("/x")
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .header("tracestate", "congo=t61rcWkgMzE")
            .header("authorization", "Bearer secret")
            .body(())
            .expect("request");
        let id = HeaderValue::from_static("id-1");
        let out = forwarded(
            Forwarding::Allowlist,
            request.headers(),
            &HeaderRules::default(),
            NO_CREDENTIALS,
            &id,
        );
        assert_eq!(
            out.get("traceparent").map(|v| v.as_bytes()),
            Some(&b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"[..])
        );
        assert_eq!(
            out.get("tracestate").map(|v| v.as_bytes()),
            Some(&b"congo=t61rcWkgMzE"[..])
        );
        assert!(out.get("authorization").is_none());
        assert_eq!(out.get(REQUEST_ID), Some(&id));
    }

    #[test]
    fn pass_through_keeps_end_to_end_headers_only() {
        let request = http::Request::post("/pkg.S/M")
            .header("content-type", "application/grpc")
            .header("content-length", "12")
            .header("te", "trailers")
            .header("x-request-id", "client-id")
            .header("x-tenant-id", "acme")
            .body(())
            .expect("request");
        let id = HeaderValue::from_static("id-2");
        let out = forwarded(
            Forwarding::PassThrough,
            request.headers(),
            &HeaderRules::default(),
            NO_CREDENTIALS,
            &id,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(
            out.get("x-tenant-id").map(|v| v.as_bytes()),
            Some(&b"acme"[..])
        );
        assert_eq!(out.get(REQUEST_ID), Some(&id));
    }
}
