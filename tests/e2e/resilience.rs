//! Upstream resilience through the real gateway: retries with the attempt header, which calls are
//! retried, deadlines, refused and shut-down endpoints, the circuit breaker's full cycle, the retry
//! budget, and active health checks. Faults come from the stubs' `x-stub-*` metadata, forwarded
//! by the default test config's `request_to_metadata: [.., x-stub-*]`.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use tai_gateway::upstream::Upstream;
use tai_stubs::{ServingStatus, StubServers};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::harness::{Reply, TestEnv, default_config, start_stubs};

const ECHO: &str = "tai.Governor/Echo";

/// The default config with the governor upstream replaced by `upstream` (the lines under
/// `  governor:`) and `route` added to the governor route.
pub(crate) fn config(stubs: &StubServers, upstream: &str, route: &str) -> String {
    let text = default_config(stubs).replace(
        &format!("  governor:\n    address: {}\n", stubs.governor_addr),
        &format!("  governor:\n{upstream}"),
    );
    text.replace(
        "  - service: tai.Governor\n    upstream: governor\n",
        &format!("  - service: tai.Governor\n    upstream: governor\n{route}"),
    )
}

/// An address nothing listens on.
fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

fn governor(env: &TestEnv) -> Arc<Upstream> {
    env.gateway.gateway.runtime().upstreams["governor"].clone()
}

/// Polls `condition` every 10 ms for at most 5 s; panics with `what` if it never holds.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < give_up, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn get(env: &TestEnv, path: &str, headers: &[(&str, &str)]) -> Reply {
    env.send(Method::GET, path, headers, None).await
}

fn attempts(reply: &Reply) -> Option<&str> {
    reply.header("x-tai-attempts")
}

#[tokio::test]
async fn failing_first_calls_are_retried_and_the_attempts_counted() {
    let env = TestEnv::start().await;
    let ok = get(&env, "/v1/echo/plain", &[]).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(attempts(&ok), Some("1"));

    let reply = get(
        &env,
        "/v1/echo/flaky",
        &[("x-stub-fail-first", "2"), ("x-stub-fail-key", "flaky")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(attempts(&reply), Some("3"));
    assert_eq!(env.stubs.store().calls(ECHO), 4);
    assert_eq!(governor(&env).stats().retries, 2);
}

#[tokio::test]
async fn a_call_that_keeps_failing_stops_after_three_retries() {
    let env = TestEnv::start().await;
    let reply = get(
        &env,
        "/v1/echo/down",
        &[("x-stub-fail-code", "UNAVAILABLE")],
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(attempts(&reply), Some("4"));
    assert_eq!(env.stubs.store().calls(ECHO), 4);
}

#[tokio::test]
async fn post_is_not_retried_unless_the_route_says_so() {
    let env = TestEnv::start().await;
    let headers = [
        ("content-type", "application/json"),
        ("x-stub-fail-first", "1"),
        ("x-stub-fail-key", "post"),
    ];
    let reply = env
        .send(Method::POST, "/v1/echo", &headers, Some("{}"))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(attempts(&reply), Some("1"));
    assert_eq!(env.stubs.store().calls(ECHO), 1);

    let stubs = start_stubs().await;
    let text = config(
        &stubs,
        &format!("    address: {}\n", stubs.governor_addr),
        "    retryable: true\n",
    );
    let env = TestEnv::start_on(stubs, &text).await;
    let reply = env
        .send(Method::POST, "/v1/echo", &headers, Some("{}"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(attempts(&reply), Some("2"));
}

#[tokio::test]
async fn client_errors_are_neither_retried_nor_failures() {
    let env = TestEnv::start().await;
    for _ in 0..6 {
        let reply = get(&env, "/v1/echo/x", &[("x-stub-fail-code", "NOT_FOUND")]).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
        assert_eq!(attempts(&reply), Some("1"));
    }
    assert_eq!(governor(&env).stats().breaker_opened, 0);
}

#[tokio::test]
async fn slow_backend_is_504_at_the_route_deadline() {
    let stubs = start_stubs().await;
    let text = config(
        &stubs,
        &format!("    address: {}\n", stubs.governor_addr),
        "    timeout: 300ms\n",
    );
    let env = TestEnv::start_on(stubs, &text).await;
    let started = std::time::Instant::now();
    let reply = get(&env, "/v1/echo/slow", &[("x-stub-delay-ms", "10000")]).await;
    let took = started.elapsed();
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{}", reply.body);
    assert_eq!(
        reply.json()["message"],
        "upstream `governor` did not answer within 300ms"
    );
    assert_eq!(attempts(&reply), Some("1"));
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(
        took < Duration::from_secs(5),
        "answered long after the deadline: {took:?}"
    );
}

#[tokio::test]
async fn per_try_timeouts_are_retried_within_the_deadline() {
    let stubs = start_stubs().await;
    let text = config(
        &stubs,
        &format!("    address: {}\n", stubs.governor_addr),
        "    timeout: 5s\n    per_try_timeout: 100ms\n",
    );
    let env = TestEnv::start_on(stubs, &text).await;
    let reply = get(&env, "/v1/echo/slow", &[("x-stub-delay-ms", "10000")]).await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{}", reply.body);
    assert_eq!(attempts(&reply), Some("4"));
    assert_eq!(env.stubs.store().calls(ECHO), 4);
}

#[tokio::test]
async fn refused_connections_send_requests_to_the_other_endpoint() {
    let stubs = start_stubs().await;
    let upstream = format!(
        "    endpoints: [\"{}\", \"{}\"]\n",
        closed_port(),
        stubs.governor_addr
    );
    let text = config(&stubs, &upstream, "");
    let env = TestEnv::start_on(stubs, &text).await;
    // POST is not retryable: a refused connection is retried anyway (the request never left).
    for i in 0..20 {
        let reply = env
            .post_json("/v1/echo", &format!(r#"{{"stringValue":"{i}"}}"#))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "request {i}: {}", reply.body);
        let n: u32 = attempts(&reply)
            .and_then(|a| a.parse().ok())
            .expect("attempts");
        assert!((1..=2).contains(&n), "request {i}: {n} attempts");
    }
    assert_eq!(env.stubs.store().calls(ECHO), 20);
}

#[tokio::test]
async fn a_stub_shut_down_mid_run_loses_no_retryable_request() {
    let doomed = start_stubs().await;
    let survivor = start_stubs().await;
    let upstream = format!(
        "    endpoints: [\"{}\", \"{}\"]\n",
        doomed.governor_addr, survivor.governor_addr
    );
    let text = config(&survivor, &upstream, "");
    let doomed_store = doomed.store();
    let env = TestEnv::start_on(survivor, &text).await;
    let client = &env;
    let before: Vec<_> = (0..20)
        .map(|i| {
            let path = format!("/v1/echo/before-{i}");
            async move { get(client, &path, &[("x-stub-delay-ms", "20")]).await }
        })
        .collect();
    // Requests in flight on both endpoints while one of them shuts down.
    let (replies, ()) = tokio::join!(join_all(before), doomed.shutdown());
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let shut = doomed_store.calls(ECHO);
    for i in 0..20 {
        let reply = get(&env, &format!("/v1/echo/after-{i}"), &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "request {i}: {}", reply.body);
    }
    assert_eq!(doomed_store.calls(ECHO), shut);
    assert!(env.stubs.store().calls(ECHO) >= 20);
}

/// Runs every future concurrently on this task and returns their outputs.
async fn join_all<F: std::future::Future<Output = Reply>>(futures: Vec<F>) -> Vec<Reply> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    // Poll all together: each is a client request; order does not matter.
    let mut done: Vec<Option<Reply>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => done[i] = Some(r),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

#[tokio::test]
async fn breaker_opens_fails_fast_probes_and_closes() {
    let stubs = start_stubs().await;
    let upstream = format!(
        "    address: {}\n    retry: {{max_retries: 0}}\n    circuit_breaker: {{consecutive_failures: 5, open_for: 500ms, half_open_successes: 2}}\n",
        stubs.governor_addr
    );
    let text = config(&stubs, &upstream, "");
    let env = TestEnv::start_on(stubs, &text).await;
    let fail = [("x-stub-fail-code", "UNAVAILABLE")];
    for i in 0..5 {
        let reply = get(&env, "/v1/echo/x", &fail).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{i}");
        assert_eq!(reply.json()["message"], "injected failure");
    }
    assert_eq!(governor(&env).stats().endpoints_open, 1);

    let fast = get(&env, "/v1/echo/x", &[]).await;
    assert_eq!(
        fast.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        fast.body
    );
    assert_eq!(fast.header("retry-after"), Some("1"));
    assert_eq!(attempts(&fast), Some("0"));
    assert_eq!(fast.json()["code"], 14);
    let message = fast.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.starts_with(
            "upstream `governor` is unavailable: every endpoint's circuit breaker is open"
        ),
        "{message}"
    );
    assert_eq!(
        env.stubs.store().calls(ECHO),
        5,
        "an open breaker sends nothing"
    );

    let upstream = governor(&env);
    wait_until("the open interval ends", || {
        upstream.stats().endpoints_open == 0
    })
    .await;
    let probe = get(&env, "/v1/echo/probe", &[]).await;
    assert_eq!(probe.status, StatusCode::OK, "{}", probe.body);
    assert_eq!(upstream.stats().endpoints_half_open, 1);
    let second = get(&env, "/v1/echo/probe", &[]).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    let stats = upstream.stats();
    assert_eq!(
        (
            stats.breaker_opened,
            stats.breaker_half_opened,
            stats.breaker_closed
        ),
        (1, 1, 1)
    );
    assert_eq!((stats.endpoints_open, stats.endpoints_half_open), (0, 0));
    assert_eq!(stats.rejected_open, 1);
}

#[tokio::test]
async fn retries_stop_when_the_budget_is_spent() {
    let stubs = start_stubs().await;
    let upstream = format!(
        "    address: {}\n    retry: {{budget_ratio: 0.0, budget_min_retries: 2}}\n    circuit_breaker: {{consecutive_failures: 100}}\n",
        stubs.governor_addr
    );
    let text = config(&stubs, &upstream, "");
    let env = TestEnv::start_on(stubs, &text).await;
    let fail = |key: &'static str| [("x-stub-fail-first", "10"), ("x-stub-fail-key", key)];
    let first = get(&env, "/v1/echo/x", &fail("one")).await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        attempts(&first),
        Some("3"),
        "two retries, then the budget is spent"
    );
    let second = get(&env, "/v1/echo/x", &fail("two")).await;
    assert_eq!(second.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(attempts(&second), Some("1"));
    let stats = governor(&env).stats();
    assert_eq!((stats.retries, stats.budget_exhausted), (2, 2));
}

#[tokio::test]
async fn health_checks_eject_a_not_serving_endpoint_and_restore_it() {
    let sick = start_stubs().await;
    let well = start_stubs().await;
    let upstream = format!(
        "    endpoints: [\"{}\", \"{}\"]\n    health_check: {{interval: 20ms, timeout: 500ms, unhealthy_threshold: 1, healthy_threshold: 1}}\n",
        sick.governor_addr, well.governor_addr
    );
    let text = config(&well, &upstream, "");
    let env = TestEnv::start_on(well, &text).await;
    let upstream = governor(&env);

    sick.health().set("", ServingStatus::NotServing);
    wait_until("the endpoint is ejected", || {
        upstream.stats().endpoints_unhealthy == 1
    })
    .await;
    let before = sick.store().calls(ECHO);
    for i in 0..20 {
        let reply = get(&env, &format!("/v1/echo/{i}"), &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    assert_eq!(
        sick.store().calls(ECHO),
        before,
        "an ejected endpoint takes no calls"
    );

    sick.health().set("", ServingStatus::Serving);
    wait_until("the endpoint is restored", || {
        upstream.stats().endpoints_unhealthy == 0
    })
    .await;
    let mut reached = false;
    for i in 0..100 {
        let reply = get(&env, &format!("/v1/echo/{i}"), &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        if sick.store().calls(ECHO) > before {
            reached = true;
            break;
        }
    }
    assert!(reached, "the restored endpoint takes calls again");
    let stats = upstream.stats();
    assert_eq!((stats.ejected, stats.restored), (1, 1));
}

#[tokio::test]
async fn a_route_can_retry_other_codes() {
    let stubs = start_stubs().await;
    let text = config(
        &stubs,
        &format!("    address: {}\n", stubs.governor_addr),
        "    retry_on: [ABORTED]\n",
    );
    let env = TestEnv::start_on(stubs, &text).await;
    let aborted = [
        ("x-stub-fail-first", "1"),
        ("x-stub-fail-key", "aborted"),
        ("x-stub-fail-code", "ABORTED"),
    ];
    let reply = get(&env, "/v1/echo/x", &aborted).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(attempts(&reply), Some("2"));
    // UNAVAILABLE is no longer in this route's list.
    let reply = get(&env, "/v1/echo/x", &[("x-stub-fail-code", "UNAVAILABLE")]).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(attempts(&reply), Some("1"));
}

/// A TCP forwarder in front of a backend that can be killed like a crashed process: every open
/// connection is dropped mid-stream and new ones are refused.
pub(crate) struct Proxy {
    pub(crate) addr: std::net::SocketAddr,
    kill: watch::Sender<bool>,
}

impl Proxy {
    pub(crate) async fn to(target: std::net::SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let (kill, killed) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let mut stop = killed.clone();
                let (mut inbound, _) = tokio::select! {
                    _ = stop.wait_for(|k| *k) => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => return,
                    },
                };
                let mut stop = killed.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = stop.wait_for(|k| *k) => {}
                    }
                });
            }
        });
        Proxy { addr, kill }
    }

    pub(crate) fn kill(&self) {
        self.kill.send_replace(true);
    }
}

/// Ten slow GETs in flight over both endpoints of `env`'s governor upstream while `kill` runs (ten:
/// within the retry budget's reserve); then ten more. Every one must succeed, and at least one of
/// the first ten must have been retried on the other endpoint.
async fn load_survives(env: &TestEnv, kill: impl std::future::Future<Output = ()>) {
    let load: Vec<_> = (0..10)
        .map(|i| {
            let path = format!("/v1/echo/load-{i}");
            async move { get(env, &path, &[("x-stub-delay-ms", "300")]).await }
        })
        .collect();
    let (replies, ()) = tokio::join!(join_all(load), kill);
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/json"));
    }
    assert!(
        replies
            .iter()
            .any(|r| attempts(r).is_some_and(|a| a != "1")),
        "the calls cut off by the kill were retried on the other endpoint"
    );
    assert!(governor(env).stats().retries > 0);
    // Later requests skip the dead endpoint (refused, then its breaker or reconnect backoff).
    for i in 0..10 {
        let reply = get(env, &format!("/v1/echo/after-{i}"), &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
}

#[tokio::test]
async fn a_backend_killed_mid_load_loses_no_retryable_request() {
    let doomed = start_stubs().await;
    let survivor = start_stubs().await;
    let proxy = Proxy::to(doomed.governor_addr).await;
    let upstream = format!(
        "    endpoints: [\"{}\", \"{}\"]\n",
        proxy.addr, survivor.governor_addr
    );
    let text = config(&survivor, &upstream, "");
    let env = TestEnv::start_on(survivor, &text).await;
    let doomed_store = doomed.store();
    let kill = async {
        wait_until("a call is in flight on the doomed backend", || {
            doomed_store.calls(ECHO) > 0
        })
        .await;
        proxy.kill();
    };
    load_survives(&env, kill).await;
}

/// Starts stub backends in a separate `tai-gateway run --with-stubs` process (its own gateway on
/// ephemeral ports is unused) and returns the process and its Governor address, once it accepts.
async fn stub_process(
    dir: &crate::harness::TempDir,
) -> (std::process::Child, std::net::SocketAddr) {
    let (governor, coordinator) = (closed_port(), closed_port());
    let config = format!(
        "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [\"{}\"]\nupstreams:\n  governor:\n    address: {governor}\nroutes:\n  - service: tai.Governor\n    upstream: governor\naccess_log:\n  enabled: false\nreload:\n  watch: false\n",
        crate::harness::proto_dir().display()
    );
    let path = dir.write("stubs.yaml", &config);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
        .args(["run", "--with-stubs", "--config"])
        .arg(&path)
        .args(["--stub-governor", &governor.to_string()])
        .args(["--stub-coordinator", &coordinator.to_string()])
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the stub process");
    // At most 100 tries, 50 ms apart.
    for _ in 0..100 {
        if TcpStream::connect(governor).await.is_ok() {
            return (child, governor);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the stub process did not listen on {governor}");
}

#[tokio::test]
async fn a_stub_process_killed_mid_load_loses_no_retryable_request() {
    let dir = crate::harness::TempDir::new();
    let (mut doomed, doomed_addr) = stub_process(&dir).await;
    let survivor = start_stubs().await;
    let upstream = format!(
        "    endpoints: [\"{doomed_addr}\", \"{}\"]\n",
        survivor.governor_addr
    );
    let text = config(&survivor, &upstream, "");
    let env = TestEnv::start_on(survivor, &text).await;
    let upstream = governor(&env);
    let kill = async {
        wait_until("ten calls are in flight", || {
            upstream.stats().in_flight >= 10
        })
        .await;
        // SIGKILL: the process dies with its connections, nothing is drained.
        doomed.kill().expect("kill the stub process");
        doomed.wait().expect("reap the stub process");
    };
    load_survives(&env, kill).await;
}
