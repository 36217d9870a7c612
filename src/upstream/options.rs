//! What one call may do ([`CallOptions`]: deadline, per-try timeout, which failures are retried,
//! who it is for) and what it ended with ([`CallOutcome`]: the answer, the attempts it took, the
//! endpoint).

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::client::ClientId;
use super::endpoint::Endpoint;
use super::reply::{GrpcReply, UpstreamError};
use crate::config::RouteRetryConfig;
use crate::trace::{AttemptSpan, CallTrace, RequestTrace};

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
    /// Who the call is for, which the breaker needs to tell one client's bad input from an
    /// endpoint's failure.
    pub caller: Caller,
    /// The request's trace: each attempt gets a span of its own, sent in its `traceparent`.
    pub trace: Option<CallTrace<'a>>,
}

/// What one attempt is given: its time bound and, in a traced call, its span.
#[derive(Debug, Clone)]
pub struct Try {
    /// Bound of the attempt (sent to the backend as `grpc-timeout` where the kind sends one).
    pub timeout: Duration,
    /// The attempt's span, whose `traceparent` goes with its metadata.
    pub span: Option<AttemptSpan>,
}

impl Try {
    /// An attempt bounded by `timeout`, outside any trace.
    pub fn untraced(timeout: Duration) -> Try {
        Try {
            timeout,
            span: None,
        }
    }

    /// The metadata of this attempt: `base` with the attempt's `traceparent` (replacing the
    /// client's) and the trace's valid `tracestate`.
    pub fn metadata(&self, base: &HeaderMap) -> HeaderMap {
        let mut metadata = base.clone();
        if let Some(span) = &self.span {
            span.stamp(&mut metadata);
        }
        metadata
    }
}

/// Who a call is for, as the endpoint's breaker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The client (its address, hashed: no allocation per call).
    pub client: ClientId,
    /// The call's deadline is the client's own: its `grpc-timeout` (or `x-request-timeout`) was
    /// shorter than the route's timeout, so a timeout says as much about the client as about
    /// the endpoint.
    pub client_deadline: bool,
}

impl Caller {
    /// `client`'s call with `deadline` through a route whose own timeout is `route_timeout`.
    pub fn new(client: ClientId, deadline: Duration, route_timeout: Duration) -> Caller {
        Caller {
            client,
            client_deadline: deadline < route_timeout,
        }
    }

    /// A call with no client to tell apart (tests, the gateway's own calls).
    pub const UNKNOWN: Caller = Caller {
        client: ClientId::UNKNOWN,
        client_deadline: false,
    };
}

impl<'a> CallOptions<'a> {
    /// The options of a call through a route: GET bindings are retryable unless the route says
    /// otherwise; other methods only when it says so.
    pub fn for_route(
        route: &'a RouteRetryConfig,
        http_method: &str,
        deadline: Duration,
        caller: Caller,
    ) -> CallOptions<'a> {
        CallOptions {
            deadline,
            per_try_timeout: route.per_try_timeout,
            retryable: route.retryable.unwrap_or(http_method == "GET"),
            retry_on: route.retry_on.as_deref(),
            caller,
            trace: None,
        }
    }

    /// The options of a call whose request body is streamed through and so cannot be sent
    /// twice: bounded by `deadline`, tried again only when an attempt never sent it.
    pub fn streamed(deadline: Duration, caller: Caller) -> CallOptions<'static> {
        CallOptions {
            deadline,
            per_try_timeout: None,
            retryable: false,
            retry_on: None,
            caller,
            trace: None,
        }
    }

    /// The same options for a call of `rpc` (`/pkg.Service/Method`) within `trace`.
    pub fn traced(mut self, trace: &'a RequestTrace, rpc: &'a str) -> CallOptions<'a> {
        self.trace = Some(CallTrace {
            request: trace,
            rpc,
        });
        self
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
        assert!(CallOptions::for_route(&default, "GET", deadline, Caller::UNKNOWN).retryable);
        assert!(!CallOptions::for_route(&default, "POST", deadline, Caller::UNKNOWN).retryable);
        let on = RouteRetryConfig {
            retryable: Some(true),
            ..RouteRetryConfig::default()
        };
        assert!(CallOptions::for_route(&on, "POST", deadline, Caller::UNKNOWN).retryable);
        let off = RouteRetryConfig {
            retryable: Some(false),
            ..RouteRetryConfig::default()
        };
        assert!(!CallOptions::for_route(&off, "GET", deadline, Caller::UNKNOWN).retryable);
    }

    #[test]
    fn a_deadline_shorter_than_the_routes_is_the_clients() {
        let route = Duration::from_secs(10);
        let client = ClientId::UNKNOWN;
        assert!(Caller::new(client, Duration::from_millis(5), route).client_deadline);
        assert!(!Caller::new(client, route, route).client_deadline);
    }
}
