//! Admission: the edge rules every request passes before the gateway calls a backend for it —
//! transcoded JSON routes, native gRPC and gRPC-Web alike, through the one [`admit`].
//!
//! In order: the per-client rate limits (address, header, global: cheap, before the token is
//! looked at), authentication of the token, the per-subject rate limits, the call deadline, and
//! the metadata the backend will see (verified claims in, client-sent copies out).
//!
//! # Layout
//! - [`auth`]: JWT providers, verification, the route's scope/claim requirements.
//! - [`rate_limit`]: the named limits and the `RateLimit-*` budget.
//! - [`metadata`]: headers → gRPC metadata (allowlist or pass-through), the deadline.
//! - [`cors`]: preflights and the CORS grant of actual responses.

pub mod auth;
pub mod cors;
pub mod metadata;
pub mod rate_limit;

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};

use crate::runtime::RouteOptions;
use crate::state::Shared;
use auth::{AuthError, AuthRuntime};
use metadata::{Credentials, DeadlineError, Forwarding};
use rate_limit::{Budget, Exceeded, KeyTooLong, Refusal, Unavailable as RateLimitUnavailable};

/// What the edge learned about a request, kept whether it was admitted or not: the rate-limit
/// budget its answer reports, and the verified token's subject for the access log.
#[derive(Debug, Default)]
pub struct Admission {
    /// The tightest rate-limit budget the request passed.
    pub budget: Budget,
    /// `sub` of the verified token.
    pub subject: Option<String>,
}

/// An admitted request: what its backend call needs from the edge.
#[derive(Debug)]
pub struct Admitted {
    /// Bound of the whole call.
    pub deadline: Duration,
    /// The call's metadata: forwarded headers, verified claims, the request id.
    pub metadata: HeaderMap,
    /// The query string without the token parameter (bound to fields by transcoded routes).
    pub query: Option<String>,
}

/// The request as the edge sees it.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// The query string, if any.
    pub query: Option<&'a str>,
    /// The socket peer.
    pub peer: SocketAddr,
    /// The request id sent to the backend.
    pub request_id: &'a HeaderValue,
}

impl<'a> RequestHead<'a> {
    /// The head of `request` from `peer`, with the id its backend call carries.
    pub fn of<B>(
        request: &'a http::Request<B>,
        peer: SocketAddr,
        request_id: &'a HeaderValue,
    ) -> RequestHead<'a> {
        RequestHead {
            headers: request.headers(),
            query: request.uri().query(),
            peer,
            request_id,
        }
    }
}

/// Why the edge refused a request.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// A rate limit refused it (429).
    #[error(transparent)]
    RateLimited(#[from] Exceeded),
    /// The header or claim a rate limit counts by is over its `max_key_bytes` (400).
    #[error(transparent)]
    RateLimitKey(#[from] KeyTooLong),
    /// No valid token (401), or one without the route's audience, scope or claims (403).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The client's deadline header is malformed (400).
    #[error(transparent)]
    Deadline(#[from] DeadlineError),
    /// A global rate limit could not be checked and refuses when it cannot (503).
    #[error(transparent)]
    RateLimitUnavailable(#[from] RateLimitUnavailable),
}

impl From<Refusal> for EdgeError {
    fn from(refusal: Refusal) -> EdgeError {
        match refusal {
            Refusal::Exceeded(e) => EdgeError::RateLimited(e),
            Refusal::KeyTooLong(e) => EdgeError::RateLimitKey(e),
            Refusal::Unavailable(e) => EdgeError::RateLimitUnavailable(e),
        }
    }
}

/// Runs the route's edge rules on one request, in order (global rate limits ask the fleet's
/// budget in Redis after their local check passed), noting in `admission` what it learns
/// on the way (also when it refuses).
pub async fn admit(
    (auth, shared): (&AuthRuntime, &Shared),
    route: &RouteOptions,
    request: RequestHead<'_>,
    forwarding: Forwarding,
    admission: &mut Admission,
) -> Result<Admitted, EdgeError> {
    let (limits, policy, headers) = (&route.rate_limits, &route.auth, request.headers);
    let global = limits.check_before_auth(headers, request.peer, &mut admission.budget)?;
    rate_limit::check_global(global, shared, &mut admission.budget).await?;
    let verified = auth.authenticate(policy, headers, request.query).await?;
    let claims = verified.as_ref().map(|v| &*v.claims);
    admission.subject = auth::subject(claims);
    let global = limits.check_after_auth(claims, headers, request.peer, &mut admission.budget)?;
    rate_limit::check_global(global, shared, &mut admission.budget).await?;
    let deadline = metadata::deadline(route.timeout, headers)?;
    let credentials = Credentials {
        token_header: auth.token_header(),
        forward_token: policy.rules().forward_authorization,
    };
    let mut forwarded = metadata::forwarded(
        forwarding,
        headers,
        &route.headers,
        credentials,
        request.request_id,
    );
    auth.forward(&mut forwarded, verified.as_ref());
    Ok(Admitted {
        deadline,
        metadata: forwarded,
        query: auth.query_without_token(request.query),
    })
}
