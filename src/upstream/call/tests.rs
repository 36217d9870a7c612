//! Tests of the call loop on tokio's paused clock (attempts scripted, timing real).

use std::sync::atomic::Ordering;

use super::*;
use crate::config::{BreakerConfig, Ratio, RetryConfig, UpstreamConfig};
use crate::upstream::codec::GrpcStatus;
use crate::upstream::options::Caller;
use crate::upstream::resolve;

fn upstream(retry: RetryConfig) -> Upstream {
    Upstream::new(&UpstreamConfig {
        name: "u".to_owned(),
        authority: "127.0.0.1:1".to_owned(),
        connect_timeout: Duration::from_secs(1),
        max_response_bytes: 1024,
        endpoints: vec!["127.0.0.1:1".to_owned()],
        retry: RetryConfig {
            jitter: Ratio(0.0),
            ..retry
        },
        circuit_breaker: BreakerConfig::default(),
        health_check: None,
        resolve_interval: Duration::from_secs(30),
        send_gzip_from: None,
        tls: None,
        reflection: false,
    })
    .expect("upstream")
}

fn options(deadline_ms: u64, per_try_ms: Option<u64>, retryable: bool) -> CallOptions<'static> {
    CallOptions {
        deadline: Duration::from_millis(deadline_ms),
        per_try_timeout: per_try_ms.map(Duration::from_millis),
        retryable,
        retry_on: None,
        caller: Caller::UNKNOWN,
        trace: None,
    }
}

fn reply(code: i32) -> Result<GrpcReply, AttemptError> {
    Ok(GrpcReply {
        status: GrpcStatus {
            code,
            message: String::new(),
            details: None,
        },
        message: None,
        metadata: HeaderMap::new(),
    })
}

fn code(outcome: &CallOutcome) -> Option<i32> {
    outcome.result.as_ref().ok().map(|r| r.status.code)
}

/// An attempt that takes its whole timeout and times out.
async fn hang(timeout: Duration) -> Result<GrpcReply, AttemptError> {
    tokio::time::sleep(timeout).await;
    Err(AttemptError {
        error: UpstreamError::DeadlineExceeded {
            upstream: "u".to_owned(),
            timeout,
        },
        outcome: AttemptOutcome::TimedOut,
    })
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_then_return_the_last_answer() {
    let u = upstream(RetryConfig::default());
    let started = Instant::now();
    let outcome = u
        .call_with(&options(10_000, None, true), |_, _| async { reply(14) })
        .await;
    assert_eq!((outcome.attempts, code(&outcome)), (4, Some(14)));
    assert_eq!(started.elapsed(), Duration::from_millis(25 + 50 + 100));
    assert_eq!(u.stats().retries, 3);
}

#[tokio::test(start_paused = true)]
async fn no_backoff_waits_past_the_deadline() {
    let u = upstream(RetryConfig::default());
    let started = Instant::now();
    let outcome = u
        .call_with(&options(100, None, true), |_, _| async { reply(14) })
        .await;
    // Tries at 0, 25 and 75 ms; the next wait (100 ms) would end past the deadline.
    assert_eq!((outcome.attempts, code(&outcome)), (3, Some(14)));
    assert_eq!(started.elapsed(), Duration::from_millis(75));
}

#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_a_slow_attempt_exactly() {
    let u = upstream(RetryConfig::default());
    let started = Instant::now();
    let outcome = u
        .call_with(&options(250, None, true), |_, attempt: Try| {
            hang(attempt.timeout)
        })
        .await;
    assert_eq!(started.elapsed(), Duration::from_millis(250));
    assert_eq!(outcome.attempts, 1);
    assert!(matches!(
        outcome.result,
        Err(UpstreamError::DeadlineExceeded { timeout, .. }) if timeout == Duration::from_millis(250)
    ));
}

#[tokio::test(start_paused = true)]
async fn per_try_timeouts_retry_within_the_deadline() {
    let u = upstream(RetryConfig::default());
    let started = Instant::now();
    let outcome = u
        .call_with(&options(250, Some(100), true), |_, attempt: Try| {
            hang(attempt.timeout)
        })
        .await;
    // 100 ms try, 25 ms wait, 100 ms try; a 50 ms wait would end past 250 ms.
    assert_eq!(outcome.attempts, 2);
    assert_eq!(started.elapsed(), Duration::from_millis(225));
    assert!(matches!(
        outcome.result,
        Err(UpstreamError::DeadlineExceeded { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn non_retryable_calls_are_retried_only_when_the_request_never_left() {
    let u = upstream(RetryConfig::default());
    let outcome = u
        .call_with(&options(10_000, None, false), |_, _| async { reply(14) })
        .await;
    assert_eq!((outcome.attempts, code(&outcome)), (1, Some(14)));
    let tries = std::sync::atomic::AtomicU32::new(0);
    let outcome = u
        .call_with(&options(10_000, None, false), |_, _| {
            let first = tries.fetch_add(1, Ordering::Relaxed) == 0;
            async move {
                if first {
                    Err(AttemptError {
                        error: UpstreamError::Unavailable {
                            upstream: "u".to_owned(),
                            reason: "connect failed".to_owned(),
                        },
                        outcome: AttemptOutcome::NotSent,
                    })
                } else {
                    reply(0)
                }
            }
        })
        .await;
    assert_eq!((outcome.attempts, code(&outcome)), (2, Some(0)));
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_fails_fast_until_the_probe() {
    let u = upstream(RetryConfig {
        max_retries: 0,
        ..RetryConfig::default()
    });
    let call = async || {
        u.call_with(&options(10_000, None, true), |_, _| async { reply(14) })
            .await
    };
    for _ in 0..5 {
        assert_eq!(call().await.attempts, 1);
    }
    let fast = call().await;
    assert_eq!(fast.attempts, 0);
    assert!(matches!(
        fast.result,
        Err(UpstreamError::CircuitOpen { retry_after, .. }) if retry_after == Duration::from_secs(30)
    ));
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(call().await.attempts, 1, "the half-open probe goes through");
    assert_eq!(u.stats().endpoints_open, 1, "the failed probe reopened it");
}

/// Options of a call from client 10.0.0.`n`, its deadline the client's own when `client_deadline`.
fn from_client(n: u8, client_deadline: bool) -> CallOptions<'static> {
    let client = crate::upstream::ClientId::of(std::net::IpAddr::from([10, 0, 0, n]));
    CallOptions {
        caller: Caller {
            client,
            client_deadline,
        },
        ..options(100, None, false)
    }
}

#[tokio::test(start_paused = true)]
async fn internal_answers_open_the_breaker_only_when_three_clients_get_them() {
    let u = upstream(RetryConfig::default());
    for _ in 0..20 {
        let outcome = u
            .call_with(&from_client(1, false), |_, _| async { reply(13) })
            .await;
        assert_eq!((outcome.attempts, code(&outcome)), (1, Some(13)));
    }
    assert_eq!(u.stats().endpoints_open, 0, "one client's INTERNALs");
    for n in [2, 3] {
        u.call_with(&from_client(n, false), |_, _| async { reply(2) })
            .await;
    }
    assert_eq!(
        u.stats().endpoints_open,
        1,
        "INTERNAL/UNKNOWN from three clients"
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_that_shortens_its_deadline_times_out_alone() {
    let u = upstream(RetryConfig::default());
    for _ in 0..10 {
        let outcome = u
            .call_with(&from_client(1, true), |_, attempt: Try| {
                hang(attempt.timeout)
            })
            .await;
        assert!(matches!(
            outcome.result,
            Err(UpstreamError::DeadlineExceeded { .. })
        ));
    }
    assert_eq!(
        u.stats().endpoints_open,
        0,
        "its own deadline, not the endpoint's"
    );
    for _ in 0..5 {
        u.call_with(&from_client(2, false), |_, attempt: Try| {
            hang(attempt.timeout)
        })
        .await;
    }
    assert_eq!(
        u.stats().endpoints_open,
        1,
        "the route's own deadline passing"
    );
}

/// An upstream whose one endpoint is the host name `backend:80` (never dialed: attempts are
/// scripted).
fn named_upstream() -> Arc<Upstream> {
    let mut config = upstream(RetryConfig::default()).config().clone();
    config.endpoints = vec!["backend:80".to_owned()];
    config.authority = "backend:80".to_owned();
    Arc::new(Upstream::new(&config).expect("upstream"))
}

#[tokio::test(start_paused = true)]
async fn an_address_dns_drops_finishes_its_attempt_and_takes_no_retry() {
    let u = named_upstream();
    let (a, b): (std::net::SocketAddr, std::net::SocketAddr) = (
        "10.0.0.1:80".parse().expect("a"),
        "10.0.0.2:80".parse().expect("b"),
    );
    resolve::apply(&u, &[("backend:80".to_owned(), vec![a])]);
    let tried = std::sync::Mutex::new(Vec::new());
    let outcome = u
        .call_with(&options(10_000, None, true), |endpoint, _| {
            let first = tried.lock().expect("lock").is_empty();
            tried.lock().expect("lock").push(endpoint.authority.clone());
            let u = u.clone();
            async move {
                if first {
                    // DNS moves the name to b while this attempt is on a: it still finishes.
                    resolve::apply(&u, &[("backend:80".to_owned(), vec![b])]);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    reply(14)
                } else {
                    reply(0)
                }
            }
        })
        .await;
    assert_eq!((outcome.attempts, code(&outcome)), (2, Some(0)));
    assert_eq!(
        *tried.lock().expect("lock"),
        ["10.0.0.1:80", "10.0.0.2:80"],
        "the retry went to the address DNS gives now"
    );
    let now: Vec<String> = u.endpoints().iter().map(|e| e.authority.clone()).collect();
    assert_eq!(now, ["10.0.0.2:80"]);
}
