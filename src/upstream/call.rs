//! The call loop of [`Upstream`]: pick an endpoint, run one attempt within its timeout, classify
//! the result, feed the endpoint's breaker, and decide on a retry — the retry policy, the retry
//! budget and the deadline must all allow it, and the backoff must end before the deadline.
//!
//! The steps are methods of [`Call`], the state one call carries across its attempts, so the
//! loop in [`Upstream::call_with`] reads in the order things happen.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http::uri::PathAndQuery;
use tokio::time::Instant;

use super::backend::Upstream;
use super::balancer::{self, Pick};
use super::breaker::{Breaker, Transition};
use super::endpoint::Endpoint;
use super::options::{CallOptions, CallOutcome, Try};
use super::random::random_unit;
use super::reply::{AttemptError, GrpcReply, UpstreamError};
use super::retry::{self, AttemptOutcome, Evidence, Retry, Verdict};
use super::stats::bump;
use crate::trace::AttemptEnd;

/// Releases a half-open probe slot when an attempt ends without an outcome (client went away).
struct ProbeGuard<'a>(Option<&'a Breaker>);

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if let Some(breaker) = self.0 {
            breaker.release_probe();
        }
    }
}

/// One call in progress: its bounds, and what its attempts so far ended with.
struct Call<'a> {
    upstream: &'a Upstream,
    options: CallOptions<'a>,
    /// Codes retried: the route's `retry_on`, else the upstream's `retryable_codes`.
    retry_codes: &'a [i32],
    deadline_at: Instant,
    attempts: u32,
    /// The answer given if no further attempt is made.
    last: Option<Result<GrpcReply, UpstreamError>>,
    /// The endpoint of the latest attempt, reported with the outcome (access log).
    used: Option<Arc<Endpoint>>,
    /// The latest attempt was bounded by the client's own deadline (not a per-try timeout).
    client_bound: bool,
}

impl Upstream {
    /// Sends one request message to `grpc_path` (`/pkg.Service/Method`), retrying as `options`
    /// allow, and never past `options.deadline`.
    pub async fn call(
        &self,
        grpc_path: &PathAndQuery,
        message: Bytes,
        metadata: HeaderMap,
        options: &CallOptions<'_>,
    ) -> CallOutcome {
        self.call_with(options, |endpoint: Arc<Endpoint>, attempt: Try| {
            let (message, metadata) = (message.clone(), attempt.metadata(&metadata));
            async move {
                endpoint
                    .attempt(grpc_path, message, metadata, attempt.timeout)
                    .await
            }
        })
        .await
    }

    /// The call loop, with the attempt itself given by the caller (the network in [`Upstream::call`];
    /// scripted outcomes in the paused-clock tests of the loop's timing).
    pub(super) async fn call_with<F, Fut>(
        &self,
        options: &CallOptions<'_>,
        attempt: F,
    ) -> CallOutcome
    where
        F: Fn(Arc<Endpoint>, Try) -> Fut,
        Fut: Future<Output = Result<GrpcReply, AttemptError>>,
    {
        let mut call = Call::start(self, options);
        // The endpoint that just failed, avoided by the retry when another one exists.
        let mut avoid: Option<Arc<Endpoint>> = None;
        loop {
            let now = Instant::now();
            let Some(remaining) = call.remaining(now) else {
                return call.deadline_exceeded();
            };
            // Each attempt sees the endpoints now: one that DNS dropped takes no new attempts.
            let endpoints = self.endpoints();
            let (index, probe) = match self.pick(&endpoints, avoid.as_ref(), now) {
                Pick::Endpoint { index, probe } => (index, probe),
                Pick::AllOpen { retry_after } => return call.all_open(retry_after),
            };
            let endpoint = &endpoints[index];
            let probe = ProbeGuard(probe.then_some(&endpoint.breaker));
            let result = call.attempt(endpoint, remaining, &attempt).await;
            let (outcome, verdict) = call.classify(&result);
            self.feed_breaker(endpoint, verdict, options, probe);
            let timed_out = matches!(
                outcome,
                AttemptOutcome::TimedOut | AttemptOutcome::RequestStalled
            );
            let now = Instant::now();
            if (timed_out && now >= call.deadline_at) || call.backend_timed_out(outcome, now) {
                return call.deadline_exceeded();
            }
            call.keep(outcome, result);
            let Some(wait) = call.retry_wait(verdict) else {
                break;
            };
            tokio::time::sleep(wait).await;
            avoid = Some(endpoint.clone());
        }
        call.finish()
    }

    /// The balancer's choice among `endpoints`, avoiding `avoid` when it is still one of them.
    fn pick(
        &self,
        endpoints: &[Arc<Endpoint>],
        avoid: Option<&Arc<Endpoint>>,
        now: Instant,
    ) -> Pick {
        let avoid_index = avoid.and_then(|a| endpoints.iter().position(|e| Arc::ptr_eq(e, a)));
        balancer::pick(endpoints, avoid_index, now, |i, t| {
            self.note(&endpoints[i], t);
        })
    }

    /// Tells the endpoint's breaker how the attempt went, and for whom; a refusal during
    /// reconnect backoff is no news to it (and releases a probe slot the attempt held, through
    /// `probe`'s drop).
    fn feed_breaker(
        &self,
        endpoint: &Endpoint,
        verdict: Verdict,
        options: &CallOptions<'_>,
        mut probe: ProbeGuard<'_>,
    ) {
        if verdict.evidence == Evidence::None {
            return;
        }
        probe.0 = None;
        let client = options.caller.client;
        let transition = endpoint
            .breaker
            .record(verdict.evidence, client, Instant::now());
        if let Some(t) = transition {
            self.note(endpoint, t);
        }
    }

    /// Counts and logs a breaker's state change.
    fn note(&self, endpoint: &Endpoint, transition: Transition) {
        let events = &endpoint.events;
        let endpoint = &endpoint.authority;
        match transition {
            Transition::Opened => {
                bump(&events.opened);
                bump(&self.stats.breaker_opened);
                tracing::warn!(upstream = %self.name, %endpoint, "circuit breaker opened");
            }
            Transition::HalfOpened => {
                bump(&events.half_opened);
                bump(&self.stats.breaker_half_opened);
                tracing::info!(upstream = %self.name, %endpoint, "circuit breaker half-open: probing");
            }
            Transition::Closed => {
                bump(&events.closed);
                bump(&self.stats.breaker_closed);
                tracing::info!(upstream = %self.name, %endpoint, "circuit breaker closed");
            }
        }
    }
}

impl<'a> Call<'a> {
    /// Starts a call through `upstream` now (it counts as a request, for stats and the budget).
    fn start(upstream: &'a Upstream, options: &CallOptions<'a>) -> Call<'a> {
        let started = Instant::now();
        upstream.budget.record_request(started);
        bump(&upstream.stats.requests);
        Call {
            upstream,
            options: *options,
            retry_codes: options.retry_on.unwrap_or(&upstream.retry.retryable_codes),
            deadline_at: started + options.deadline,
            attempts: 0,
            last: None,
            used: None,
            client_bound: false,
        }
    }

    /// The time the next attempt may take; `None` once the deadline has passed.
    fn remaining(&self, now: Instant) -> Option<Duration> {
        // The first attempt starts the call: it gets the whole deadline, as sent by the client.
        let remaining = if self.attempts == 0 {
            self.options.deadline
        } else {
            self.deadline_at.saturating_duration_since(now)
        };
        (!remaining.is_zero()).then_some(remaining)
    }

    /// Runs one attempt on `endpoint`, bounded by the per-try timeout and `remaining`; in a
    /// traced call, as a span of its own (a retry is a second span).
    async fn attempt<F, Fut>(
        &mut self,
        endpoint: &Arc<Endpoint>,
        remaining: Duration,
        attempt: &F,
    ) -> Result<GrpcReply, AttemptError>
    where
        F: Fn(Arc<Endpoint>, Try) -> Fut,
        Fut: Future<Output = Result<GrpcReply, AttemptError>>,
    {
        let per_try = self.options.per_try_timeout;
        let try_timeout = per_try.map_or(remaining, |t| t.min(remaining));
        self.client_bound =
            self.options.caller.client_deadline && per_try.is_none_or(|t| t >= remaining);
        self.attempts += 1;
        self.used = Some(endpoint.clone());
        bump(&self.upstream.stats.attempts);
        let trace = self.options.trace;
        let span = trace.map(|t| t.request.attempt());
        let given = Try {
            timeout: try_timeout,
            span: span.clone(),
        };
        let result = attempt(endpoint.clone(), given).await;
        if let (Some(trace), Some(span)) = (trace, span) {
            let end = AttemptEnd {
                endpoint: &endpoint.authority,
                grpc_status: result.as_ref().ok().map(|r| r.status.code),
                error: result
                    .as_ref()
                    .err()
                    .map(|e| &e.error as &dyn std::fmt::Display),
            };
            trace.request.end_attempt(span, trace.rpc, &end);
        }
        result
    }

    /// How the attempt ended, and what that means for the breaker and for retrying.
    fn classify(&self, result: &Result<GrpcReply, AttemptError>) -> (AttemptOutcome, Verdict) {
        let outcome = match result {
            Ok(reply) => AttemptOutcome::Status(reply.status.code),
            Err(e) => e.outcome,
        };
        let breaker = &self.upstream.config.circuit_breaker;
        let verdict = retry::classify(outcome, self.retry_codes, breaker, self.client_bound);
        (outcome, verdict)
    }

    /// The backend gave up on the `grpc-timeout` it was sent: tonic answers CANCELLED then (gRPC
    /// Go DEADLINE_EXCEEDED), and its timer races the gateway's own, which ticks in whole
    /// milliseconds. Either way the client's deadline passed: 504, not 499.
    fn backend_timed_out(&self, outcome: AttemptOutcome, now: Instant) -> bool {
        const TIMER_TICK: Duration = Duration::from_millis(1);
        outcome == AttemptOutcome::Status(retry::CANCELLED) && now + TIMER_TICK >= self.deadline_at
    }

    /// Keeps the attempt's result as the call's answer, unless it is a fast refusal during
    /// reconnect backoff, which says less than the dial error before it.
    fn keep(&mut self, outcome: AttemptOutcome, result: Result<GrpcReply, AttemptError>) {
        if outcome != AttemptOutcome::Backoff || self.last.is_none() {
            self.last = Some(result.map_err(|e| e.error));
        }
    }

    /// The wait before another attempt, or `None` when there is none: the verdict and the route
    /// must allow a retry, retries must be left, the wait must end before the deadline, and the
    /// upstream's retry budget must have one (taken here).
    fn retry_wait(&self, verdict: Verdict) -> Option<Duration> {
        let may_retry = match verdict.retry {
            Retry::Never => false,
            Retry::IfRetryable => self.options.retryable,
            Retry::Always => true,
        };
        let upstream = self.upstream;
        if !may_retry || self.attempts > upstream.retry.max_retries {
            return None;
        }
        let now = Instant::now();
        let wait = retry::backoff(&upstream.retry, self.attempts - 1, random_unit());
        if now + wait >= self.deadline_at {
            return None;
        }
        if !upstream.budget.try_retry(now) {
            bump(&upstream.stats.budget_exhausted);
            tracing::debug!(upstream = %upstream.name, "retry budget spent; not retrying");
            return None;
        }
        bump(&upstream.stats.retries);
        Some(wait)
    }

    /// Ends the call because every endpoint's breaker is open: the last answer if there was an
    /// attempt, else a fast refusal.
    fn all_open(self, retry_after: Duration) -> CallOutcome {
        let upstream = self.upstream;
        let result = self.last.unwrap_or_else(|| {
            bump(&upstream.stats.rejected_open);
            Err(UpstreamError::CircuitOpen {
                upstream: upstream.name.clone(),
                retry_after,
            })
        });
        CallOutcome {
            result,
            attempts: self.attempts,
            endpoint: self.used,
        }
    }

    /// Ends the call because its deadline passed.
    fn deadline_exceeded(self) -> CallOutcome {
        CallOutcome {
            result: Err(self.deadline_error()),
            attempts: self.attempts,
            endpoint: self.used,
        }
    }

    /// Ends the call with the last answer (no attempt made: the deadline passed).
    fn finish(self) -> CallOutcome {
        let result = match self.last {
            Some(result) => result,
            None => Err(self.deadline_error()),
        };
        CallOutcome {
            result,
            attempts: self.attempts,
            endpoint: self.used,
        }
    }

    fn deadline_error(&self) -> UpstreamError {
        UpstreamError::DeadlineExceeded {
            upstream: self.upstream.name.clone(),
            timeout: self.options.deadline,
        }
    }
}

#[cfg(test)]
mod tests;
