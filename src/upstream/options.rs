//! What one call may do ([`CallOptions`]: deadline, per-try timeout, which failures are retried)
//! and what it ended with ([`CallOutcome`]: the answer, the attempts it took, the endpoint).

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::endpoint::Endpoint;
use super::reply::{GrpcReply, UpstreamError};
use crate::config::RouteRetryConfig;

/// Response header carrying how many attempts a call took.
pub const ATTEMPTS_HEADER: &str = "x-tai-attempts";

/// How one call may be retried and how long it may take.
#[derive(Debug, Clone, Copy)]
pub struct CallOptions<'a> {
    /// Bound of the whole call, retries included.
    pub deadline: Duration,
    /// Bound of one attempt, when shorter than what is left of the deadline.
    pub per_try_timeout: Option<Duration>,
    /// Failures that reached the backend may be retried (the call is safe to repeat).
    pub retryable: bool,
    /// Codes retried instead of the upstream's `retryable_codes`.
    pub retry_on: Option<&'a [i32]>,
}

impl<'a> CallOptions<'a> {
    /// The options of a call through a route: GET bindings are retryable unless the route says
    /// otherwise; other methods only when it says so.
    pub fn for_route(
        route: &'a RouteRetryConfig,
        http_method: &str,
        deadline: Duration,
    ) -> CallOptions<'a> {
        CallOptions {
            deadline,
            per_try_timeout: route.per_try_timeout,
            retryable: route.retryable.unwrap_or(http_method == "GET"),
            retry_on: route.retry_on.as_deref(),
        }
    }

    /// The options of a call whose request body is streamed through and so cannot be sent
    /// twice: bounded by `deadline`, tried again only when an attempt never sent it.
    pub fn streamed(deadline: Duration) -> CallOptions<'static> {
        CallOptions {
            deadline,
            per_try_timeout: None,
            retryable: false,
            retry_on: None,
        }
    }
}

/// What a call ended with, and how many attempts it took.
#[derive(Debug)]
pub struct CallOutcome {
    /// The backend's answer, or why there is none.
    pub result: Result<GrpcReply, UpstreamError>,
    /// Attempts made (0 when every breaker was open).
    pub attempts: u32,
    /// The endpoint of the last attempt (`None` when no attempt was made).
    pub endpoint: Option<Arc<Endpoint>>,
}

impl CallOutcome {
    /// The attempt-count header for the response.
    pub fn attempts_header(&self) -> HeaderMap {
        CallOutcome::attempts_only(self.attempts)
    }

    /// The attempt-count header for a call that took `attempts`.
    pub fn attempts_only(attempts: u32) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static(ATTEMPTS_HEADER),
            HeaderValue::from(attempts),
        );
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_routes_are_retryable_by_default_and_others_only_when_configured() {
        let deadline = Duration::from_secs(10);
        let default = RouteRetryConfig::default();
        assert!(CallOptions::for_route(&default, "GET", deadline).retryable);
        assert!(!CallOptions::for_route(&default, "POST", deadline).retryable);
        let on = RouteRetryConfig {
            retryable: Some(true),
            ..RouteRetryConfig::default()
        };
        assert!(CallOptions::for_route(&on, "POST", deadline).retryable);
        let off = RouteRetryConfig {
            retryable: Some(false),
            ..RouteRetryConfig::default()
        };
        assert!(!CallOptions::for_route(&off, "GET", deadline).retryable);
    }
}
