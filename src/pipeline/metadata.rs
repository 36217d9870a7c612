//! What crosses between HTTP headers and gRPC metadata: the allowlists of a route, the request id,
//! and the call deadline.

use std::time::Duration;

use http::{HeaderMap, HeaderName};

use super::ctx::{REQUEST_ID, RequestCtx};
use crate::config::HeaderRules;
use crate::error::GatewayError;
use crate::upstream::parse_timeout;

/// W3C Trace Context headers, propagated to backends on every call.
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

/// Request headers named by the allowlist, plus the request id, as outgoing metadata.
pub(super) fn forward_request_headers(
    headers: &HeaderMap,
    rules: &HeaderRules,
    ctx: &RequestCtx,
) -> HeaderMap {
    let mut out = HeaderMap::new();
    if !rules.request_to_metadata.is_empty() {
        for (name, value) in headers {
            let binary = name.as_str().ends_with("-bin");
            if allowed(&rules.request_to_metadata, name.as_str()) && name.as_str() != REQUEST_ID {
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
    // Unique per request: mark it never-indexed so HPACK does not churn its dynamic table.
    let mut request_id = ctx.request_id.clone();
    request_id.set_sensitive(true);
    out.insert(HeaderName::from_static(REQUEST_ID), request_id);
    out
}

/// Backend metadata (headers and trailers) named by the allowlist, as response headers.
pub(super) fn response_headers(metadata: &HeaderMap, rules: &HeaderRules) -> HeaderMap {
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
pub(super) const REQUEST_TIMEOUT_HEADER: &str = "x-request-timeout";

/// The call deadline: the shortest of the route's timeout, the client's `grpc-timeout` and its
/// `x-request-timeout`. A malformed value of either header is a 400.
pub(super) fn deadline(
    route_timeout: Duration,
    headers: &HeaderMap,
) -> Result<Duration, GatewayError> {
    let mut deadline = route_timeout;
    if let Some(value) = headers.get("grpc-timeout") {
        let text = value.to_str().unwrap_or_default();
        let client =
            parse_timeout(text).ok_or_else(|| GatewayError::InvalidTimeout(text.to_owned()))?;
        deadline = deadline.min(client);
    }
    if let Some(value) = headers.get(REQUEST_TIMEOUT_HEADER) {
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let client = crate::config::parse_duration(&text)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or(GatewayError::InvalidRequestTimeout(text))?;
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
                    Err(GatewayError::InvalidRequestTimeout(_))
                ),
                "{bad}"
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
        let peer = "127.0.0.1:1".parse().expect("addr");
        let ctx = RequestCtx::new(&request, peer, &super::super::RequestIds::new());
        let out = forward_request_headers(request.headers(), &HeaderRules::default(), &ctx);
        assert_eq!(
            out.get("traceparent").map(|v| v.as_bytes()),
            Some(&b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"[..])
        );
        assert_eq!(
            out.get("tracestate").map(|v| v.as_bytes()),
            Some(&b"congo=t61rcWkgMzE"[..])
        );
        assert!(out.get("authorization").is_none());
        assert!(out.get(REQUEST_ID).is_some());
    }
}
