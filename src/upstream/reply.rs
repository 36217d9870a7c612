//! What a backend call ends with: a well-formed gRPC answer ([`GrpcReply`]) or why there is
//! none ([`UpstreamError`]); and, for one attempt, that error with the outcome the retry
//! classification reads ([`AttemptError`]).

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;

use super::codec::GrpcStatus;
use super::retry::AttemptOutcome;

/// Why a backend call produced no gRPC answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The connection could not be made or broke before an answer (maps to 503).
    #[error("upstream `{upstream}` is unreachable: {reason}")]
    Unavailable {
        /// Upstream name.
        upstream: String,
        /// What the transport said.
        reason: String,
    },
    /// TLS to the backend failed: the handshake (certificate not trusted, wrong name, expired;
    /// no client certificate the backend accepts) or the backend did not choose HTTP/2 (maps
    /// to 502). A connection failure for retries and breakers.
    #[error("TLS to upstream `{upstream}` failed: {reason}")]
    Tls {
        /// Upstream name.
        upstream: String,
        /// The endpoint and what went wrong.
        reason: String,
    },
    /// The deadline passed before the answer was complete (maps to 504).
    #[error("upstream `{upstream}` did not answer within {timeout:?}")]
    DeadlineExceeded {
        /// Upstream name.
        upstream: String,
        /// The deadline that was applied.
        timeout: Duration,
    },
    /// The backend answered with something that is not a valid gRPC response (maps to 502).
    #[error("upstream `{upstream}` sent an invalid gRPC response: {reason}")]
    InvalidResponse {
        /// Upstream name.
        upstream: String,
        /// What was wrong with it.
        reason: String,
    },
    /// Every endpoint's circuit breaker is open (maps to 503 with `Retry-After`).
    #[error(
        "upstream `{upstream}` is unavailable: every endpoint's circuit breaker is open (next probe in {}s)",
        retry_after_secs(*.retry_after)
    )]
    CircuitOpen {
        /// Upstream name.
        upstream: String,
        /// Time until an endpoint lets a probe through.
        retry_after: Duration,
    },
}

/// Whole seconds for a `Retry-After` header: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// The outcome of a unary call that reached the backend and got a well-formed gRPC answer.
#[derive(Debug)]
pub struct GrpcReply {
    /// `grpc-status` and friends (OK or an error the backend chose).
    pub status: GrpcStatus,
    /// The response message bytes (unframed), when status is OK.
    pub message: Option<Bytes>,
    /// Response headers, then trailers, as the backend sent them.
    pub metadata: HeaderMap,
}

impl GrpcReply {
    /// An answer without a message: a status the backend sent (or OK for a pass-through head).
    pub fn status_only(status: GrpcStatus, metadata: HeaderMap) -> GrpcReply {
        GrpcReply {
            status,
            message: None,
            metadata,
        }
    }
}

/// Why one attempt produced no gRPC answer, and what that means for retrying.
#[derive(Debug)]
pub struct AttemptError {
    /// The error the client sees if this is the last attempt.
    pub error: UpstreamError,
    /// Its classification input.
    pub outcome: AttemptOutcome,
}

impl AttemptError {
    /// The transport of `upstream` failed (`reason`) in the way `outcome` says.
    pub(super) fn unavailable(upstream: &str, reason: String, outcome: AttemptOutcome) -> Self {
        AttemptError {
            error: UpstreamError::Unavailable {
                upstream: upstream.to_owned(),
                reason,
            },
            outcome,
        }
    }

    /// TLS to `upstream` failed (`reason`) in the way `outcome` says.
    pub(super) fn tls(upstream: &str, reason: String, outcome: AttemptOutcome) -> Self {
        AttemptError {
            error: UpstreamError::Tls {
                upstream: upstream.to_owned(),
                reason,
            },
            outcome,
        }
    }

    /// Why TLS failed, when it did.
    pub(super) fn tls_reason(&self) -> Option<&str> {
        match &self.error {
            UpstreamError::Tls { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// `upstream` answered with something that is not a gRPC answer (`reason`).
    pub(super) fn invalid(upstream: &str, reason: String) -> Self {
        AttemptError {
            error: UpstreamError::InvalidResponse {
                upstream: upstream.to_owned(),
                reason,
            },
            outcome: AttemptOutcome::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_at_least_one() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(300)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(30)), 30);
        assert_eq!(retry_after_secs(Duration::from_millis(29_001)), 30);
    }
}
