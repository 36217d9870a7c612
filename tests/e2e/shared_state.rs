//! The Redis client every replica shares (issue 13): calls bounded by `redis.timeout`, a breaker
//! that stops calling a Redis that is down and finds it again without a restart, and the fleet's
//! replica count — against a real `redis-server`.

use std::path::Path;
use std::time::Duration;

use tai_gateway::config::Config;
use tai_gateway::state::BreakerState;
use tai_gateway::state::redis::{Redis, Unavailable};
use tai_gateway::state::replicas::Replicas;

use crate::redis_server::RedisServer;

/// A minimal config with a `redis:` section for `url` (without one when `url` is `None`).
pub(crate) fn config_text(url: Option<&str>) -> String {
    let mut text = "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [p]\nupstreams:\n  a:\n    address: 127.0.0.1:1\nroutes:\n  - service: s.A\n    upstream: a\n".to_owned();
    if let Some(url) = url {
        text.push_str(&format!("redis:\n  url: {url}\n  timeout: 200ms\n"));
    }
    text
}

/// The `redis:` section of [`config_text`].
pub(crate) fn redis_config(url: &str) -> tai_gateway::config::RedisConfig {
    Config::parse(Path::new("g.yaml"), &config_text(Some(url)))
        .expect("config")
        .redis
        .expect("redis section")
}

#[tokio::test]
async fn a_dead_redis_opens_the_breaker_and_a_restarted_one_is_used_again() {
    let mut server = RedisServer::start().await;
    let redis = Redis::new(&redis_config(&server.url())).expect("client");
    let mut recoveries = redis.recoveries();
    let set = redis::cmd("SET").arg(redis.key("k")).arg("v").clone();
    let ok: Result<(), Unavailable> = redis.query(&set).await;
    assert_eq!(ok, Ok(()));
    server.kill();
    let mut refused = 0;
    for _ in 0..20 {
        if redis.query::<()>(&set).await.is_err() {
            refused += 1;
        }
    }
    assert_eq!(refused, 20, "every call failed fast while Redis was down");
    assert_ne!(redis.state(), BreakerState::Closed);
    let started = tokio::time::Instant::now();
    assert_eq!(redis.query::<()>(&set).await, Err(Unavailable::Open));
    assert!(
        started.elapsed() < Duration::from_millis(5),
        "an open breaker does not wait"
    );
    server.resume().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while redis.query::<()>(&set).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "redis never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(redis.state(), BreakerState::Closed);
    assert!(
        recoveries.has_changed().expect("sender alive"),
        "the recovery was announced"
    );
    recoveries.mark_unchanged();
}

#[tokio::test]
async fn replicas_count_each_other_through_redis() {
    let server = RedisServer::start().await;
    let redis = Redis::new(&redis_config(&server.url())).expect("client");
    let (one, two) = (Replicas::new(), Replicas::new());
    assert_eq!(one.live(), 1, "alone until Redis says otherwise");
    let a = tokio::spawn(one.clone().announce(redis.clone()));
    let b = tokio::spawn(two.clone().announce(redis.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while one.live() != 2 || two.live() != 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "replicas never saw each other"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.abort();
    // A silent replica is forgotten after 3 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while one.live() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a silent replica was never forgotten"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.abort();
}
