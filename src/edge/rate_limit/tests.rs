//! Limits as a route applies them, on tokio's paused clock.

use super::*;

fn limit(name: &str, burst: u32, key: LimitKey) -> LimitConfig {
    LimitConfig {
        name: name.into(),
        per_period: 1,
        period: Duration::from_secs(60),
        burst,
        key,
        max_keys: LimitConfig::DEFAULT_MAX_KEYS,
        max_key_bytes: LimitConfig::DEFAULT_MAX_KEY_BYTES,
        scope: crate::config::LimitScope::Local,
        on_redis_error: crate::config::OnRedisError::Local,
    }
}

fn config(limits: Vec<LimitConfig>) -> RateLimitConfig {
    RateLimitConfig {
        limits,
        ..RateLimitConfig::default()
    }
}

#[test]
fn a_reload_keeps_unchanged_limiters_and_rebuilds_changed_ones() {
    let config = |burst, max_keys| {
        let changed = LimitConfig {
            max_keys,
            ..limit("changed", burst, LimitKey::Ip)
        };
        config(vec![limit("kept", 2, LimitKey::Ip), changed])
    };
    let old = Limiters::new(&config(2, 10));
    let new = Limiters::reusing(&config(3, 10), Some(&old));
    let same = |new: &Limiters, name: &str| Arc::ptr_eq(&old.by_name[name], &new.by_name[name]);
    assert!(same(&new, "kept"), "unchanged: its buckets carry over");
    assert!(!same(&new, "changed"));
    assert!(!same(
        &Limiters::reusing(&config(2, 11), Some(&old)),
        "changed"
    ));
    assert!(!same(&Limiters::new(&config(2, 10)), "kept"));
}

fn limits(burst: u32, rate: &str) -> Limiters {
    let (per_period, period) = match rate {
        "1/s" => (1, Duration::from_secs(1)),
        _ => (10, Duration::from_secs(60)),
    };
    Limiters::new(&config(vec![LimitConfig {
        per_period,
        period,
        ..limit("per_ip", burst, LimitKey::Ip)
    }]))
}

fn peer(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n], 1000))
}

#[tokio::test(start_paused = true)]
async fn exactly_burst_pass_then_one_per_period() {
    let limiters = limits(3, "1/s");
    let route = limiters.route(&["per_ip".to_owned()]);
    let headers = HeaderMap::new();
    let mut budget = Budget::default();
    for remaining in [2, 1, 0] {
        assert!(
            route
                .check_before_auth(&headers, peer(1), &mut budget)
                .is_ok()
        );
        assert_eq!(
            budget.tightest,
            Some((3, remaining, 3 - u64::from(remaining)))
        );
        budget = Budget::default();
    }
    let refused = route
        .check_before_auth(&headers, peer(1), &mut budget)
        .expect_err("fourth request refused");
    let Refusal::Exceeded(refused) = refused else {
        panic!("{refused}");
    };
    assert_eq!(refused.retry_after, 1);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(
        route
            .check_before_auth(&headers, peer(1), &mut budget)
            .is_ok()
    );
    assert!(
        route
            .check_before_auth(&headers, peer(1), &mut budget)
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn prunes_keys_whose_bucket_refilled() {
    let limiters = limits(2, "10/m");
    let route = limiters.route(&["per_ip".to_owned()]);
    let mut budget = Budget::default();
    for n in 0..100 {
        let _ = route.check_before_auth(&HeaderMap::new(), peer(n), &mut budget);
    }
    let limiter = limiters.get("per_ip").expect("limit");
    limiters.prune();
    assert_eq!(limiter.key_count(), 100, "recently used keys stay");
    // One request costs 6 s of budget: after 6 s the old keys' buckets are full again.
    tokio::time::advance(Duration::from_secs(6)).await;
    let _ = route.check_before_auth(&HeaderMap::new(), peer(200), &mut budget);
    limiters.prune();
    assert_eq!(limiter.key_count(), 1, "only the fresh key stays");
    assert_eq!(limiter.evictions(), 0, "pruning is not evicting");
}

fn with_header(name: &'static str, value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(name, value.parse().expect("value"));
    headers
}

fn per_client(max_keys: usize, max_key_bytes: usize) -> Limiters {
    Limiters::new(&config(vec![
        LimitConfig {
            max_keys,
            max_key_bytes,
            ..limit("per_client", 2, LimitKey::Header("x-client-id".into()))
        },
        limit("per_ip", 100, LimitKey::Ip),
    ]))
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_new_keys_evicts_the_least_recently_used_but_not_an_active_client() {
    let limiters = per_client(4, 64);
    let route = limiters.route(&["per_client".to_owned()]);
    let check = |value: &str| {
        route.check_before_auth(
            &with_header("x-client-id", value),
            peer(1),
            &mut Budget::default(),
        )
    };
    for _ in 0..2 {
        assert!(check("hammer").is_ok());
    }
    for n in 0..1000 {
        assert!(
            check(&format!("flood-{n}")).is_ok(),
            "each new key has its burst"
        );
        // The over-limit client keeps asking: refused every time, so it stays held.
        assert!(matches!(check("hammer"), Err(Refusal::Exceeded(_))));
    }
    let limiter = limiters.get("per_client").expect("limit");
    assert_eq!(limiter.key_count(), 4);
    assert_eq!(limiter.evictions(), 1 + 1000 - 4);
    // An evicted key is forgotten: it comes back with a full burst (the price of the bound).
    assert!(check("flood-0").is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_too_long_header_value_is_refused_before_any_limit_counts_it() {
    let limiters = per_client(100, 8);
    let route = limiters.route(&["per_ip".to_owned(), "per_client".to_owned()]);
    let headers = with_header("x-client-id", "123456789");
    let refused = route
        .check_before_auth(&headers, peer(1), &mut Budget::default())
        .expect_err("9 bytes > 8");
    assert_eq!(
        refused.to_string(),
        "rate limit `per_client`: header `x-client-id` is longer than 8 bytes"
    );
    for name in ["per_ip", "per_client"] {
        let limiter = limiters.get(name).expect("limit");
        assert_eq!(limiter.key_count(), 0, "{name} stored nothing");
    }
    let headers = with_header("x-client-id", "12345678");
    assert!(
        route
            .check_before_auth(&headers, peer(1), &mut Budget::default())
            .is_ok()
    );
}

#[tokio::test(start_paused = true)]
async fn claim_values_are_bounded_and_counted_like_headers() {
    let limiters = Limiters::new(&config(vec![LimitConfig {
        max_key_bytes: 8,
        ..limit("per_sub", 1, LimitKey::Claim("sub".into()))
    }]));
    let route = limiters.route(&["per_sub".to_owned()]);
    let check = |sub: Value| {
        let claims = Map::from_iter([("sub".to_owned(), sub)]);
        route.check_after_auth(
            Some(&claims),
            &HeaderMap::new(),
            peer(1),
            &mut Budget::default(),
        )
    };
    let refused = check(Value::from("a-very-long-subject")).expect_err("too long");
    assert_eq!(
        refused.to_string(),
        "rate limit `per_sub`: claim `sub` is longer than 8 bytes"
    );
    assert!(check(Value::from("alice")).is_ok());
    assert!(matches!(
        check(Value::from("alice")),
        Err(Refusal::Exceeded(_))
    ));
    assert!(
        check(Value::from(12345)).is_ok(),
        "a number counts as its JSON text"
    );
    assert!(check(Value::from(123_456_789)).is_err(), "9 bytes of JSON");
    assert_eq!(limiters.get("per_sub").expect("limit").key_count(), 2);
}

#[test]
fn forwarded_for_counts_only_behind_trusted_hops() {
    let headers = with_header("x-forwarded-for", "1.1.1.1, 2.2.2.2");
    assert_eq!(client_ip(&headers, peer(9), 0), peer(9).ip());
    assert_eq!(client_ip(&headers, peer(9), 1).to_string(), "2.2.2.2");
    assert_eq!(client_ip(&headers, peer(9), 2).to_string(), "1.1.1.1");
    assert_eq!(client_ip(&headers, peer(9), 3), peer(9).ip());
}
