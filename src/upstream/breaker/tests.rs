//! Tests of the breaker's state machine on tokio's paused clock, with the real 30 s numbers.

use super::*;

fn breaker() -> Breaker {
    Breaker::new(BreakerConfig::default())
}

fn allowed(b: &Breaker) -> bool {
    matches!(b.admit(Instant::now()).0, Admission::Allowed { .. })
}

/// Client number `n` (10.0.0.n).
fn client(n: u8) -> ClientId {
    ClientId::of(std::net::IpAddr::from([10, 0, 0, n]))
}

/// A client's failure from client `n`, through the admission a real call makes.
fn client_failure(b: &Breaker, n: u8) -> Option<Transition> {
    assert!(allowed(b), "the call is admitted");
    b.record(Evidence::ClientFailure, client(n), Instant::now())
}

#[tokio::test(start_paused = true)]
async fn opens_breaker_after_five_consecutive_failures() {
    let b = breaker();
    for _ in 0..4 {
        assert!(allowed(&b));
        assert_eq!(b.on_failure(Instant::now(), client(1)), None);
    }
    assert_eq!(b.state(Instant::now()), BreakerState::Closed);
    assert_eq!(
        b.on_failure(Instant::now(), client(1)),
        Some(Transition::Opened)
    );
    assert_eq!(b.state(Instant::now()), BreakerState::Open);
    assert_eq!(
        b.admit(Instant::now()).0,
        Admission::Rejected {
            retry_after: Duration::from_secs(30)
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_failure_count() {
    let b = breaker();
    for _ in 0..4 {
        b.on_failure(Instant::now(), client(1));
    }
    b.on_success();
    for _ in 0..4 {
        assert_eq!(b.on_failure(Instant::now(), client(1)), None);
    }
    assert_eq!(b.state(Instant::now()), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn full_cycle_open_half_open_closed_on_the_real_numbers() {
    let b = breaker();
    for _ in 0..5 {
        b.on_failure(Instant::now(), client(1));
    }
    tokio::time::advance(Duration::from_secs(29)).await;
    assert_eq!(b.retry_after(Instant::now()), Duration::from_secs(1));
    assert!(!allowed(&b));
    tokio::time::advance(Duration::from_secs(1)).await;
    let (admission, transition) = b.admit(Instant::now());
    assert_eq!(admission, Admission::Allowed { probe: true });
    assert_eq!(transition, Some(Transition::HalfOpened));
    // One probe at a time.
    assert!(!allowed(&b));
    assert_eq!(b.on_success(), None);
    assert_eq!(
        b.admit(Instant::now()).0,
        Admission::Allowed { probe: true }
    );
    assert_eq!(b.on_success(), Some(Transition::Closed));
    assert_eq!(b.state(Instant::now()), BreakerState::Closed);
    assert_eq!(
        b.admit(Instant::now()).0,
        Admission::Allowed { probe: false }
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_for_a_full_interval() {
    let b = breaker();
    for _ in 0..5 {
        b.on_failure(Instant::now(), client(1));
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(allowed(&b));
    assert_eq!(
        b.on_failure(Instant::now(), client(1)),
        Some(Transition::Opened)
    );
    assert_eq!(b.retry_after(Instant::now()), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn a_released_probe_lets_the_next_one_through() {
    let b = breaker();
    for _ in 0..5 {
        b.on_failure(Instant::now(), client(1));
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(allowed(&b));
    assert!(!allowed(&b));
    b.release_probe();
    assert!(allowed(&b));
}

#[tokio::test(start_paused = true)]
async fn one_clients_failures_never_open_the_breaker() {
    let b = breaker();
    for _ in 0..1000 {
        assert_eq!(client_failure(&b, 1), None);
    }
    assert_eq!(b.state(Instant::now()), BreakerState::Closed);
    // Two clients are still not three.
    for _ in 0..100 {
        assert_eq!(client_failure(&b, 2), None);
    }
    assert_eq!(b.state(Instant::now()), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn client_failures_from_three_clients_open_after_five() {
    let b = breaker();
    for n in [1, 2, 3, 1] {
        assert_eq!(client_failure(&b, n), None);
    }
    assert_eq!(client_failure(&b, 2), Some(Transition::Opened));
    assert_eq!(b.retry_after(Instant::now()), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn a_success_forgets_the_clients_of_the_run() {
    let b = breaker();
    client_failure(&b, 1);
    client_failure(&b, 2);
    b.on_success();
    for _ in 0..10 {
        assert_eq!(client_failure(&b, 3), None);
    }
    assert_eq!(b.state(Instant::now()), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn one_clients_failures_do_not_help_an_unrelated_failure_open_it() {
    let b = breaker();
    for _ in 0..4 {
        client_failure(&b, 1);
    }
    // One real failure: five failures in the run, but only two clients behind them.
    assert_eq!(b.on_failure(Instant::now(), client(2)), None);
    assert_eq!(b.state(Instant::now()), BreakerState::Closed);
    // Real failures still open it after five of their own.
    for _ in 0..3 {
        assert_eq!(b.on_failure(Instant::now(), client(2)), None);
    }
    assert_eq!(
        b.on_failure(Instant::now(), client(2)),
        Some(Transition::Opened)
    );
}

#[tokio::test(start_paused = true)]
async fn one_client_cannot_keep_a_half_open_breaker_open() {
    let b = breaker();
    for _ in 0..5 {
        b.on_failure(Instant::now(), client(9));
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    // The probe is one client's bad input: it frees the slot and changes nothing else.
    assert_eq!(client_failure(&b, 1), None);
    assert_eq!(client_failure(&b, 1), None);
    assert_eq!(b.state(Instant::now()), BreakerState::HalfOpen);
    assert!(allowed(&b));
    assert_eq!(b.on_success(), None);
    assert!(allowed(&b));
    assert_eq!(b.on_success(), Some(Transition::Closed));
}

#[tokio::test(start_paused = true)]
async fn half_open_probes_failing_for_three_clients_reopen_it() {
    let b = breaker();
    for _ in 0..5 {
        b.on_failure(Instant::now(), client(9));
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(client_failure(&b, 1), None);
    assert_eq!(client_failure(&b, 2), None);
    assert_eq!(client_failure(&b, 3), Some(Transition::Opened));
}

#[tokio::test(start_paused = true)]
async fn one_distinct_client_makes_client_failures_count_like_any_other() {
    let b = Breaker::new(BreakerConfig {
        distinct_clients: 1,
        ..BreakerConfig::default()
    });
    for _ in 0..4 {
        assert_eq!(client_failure(&b, 1), None);
    }
    assert_eq!(client_failure(&b, 1), Some(Transition::Opened));
}

#[tokio::test(start_paused = true)]
async fn no_news_frees_the_probe_slot_only() {
    let b = breaker();
    for _ in 0..5 {
        b.on_failure(Instant::now(), client(1));
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(allowed(&b));
    assert_eq!(b.record(Evidence::None, client(1), Instant::now()), None);
    assert!(allowed(&b));
    assert_eq!(b.state(Instant::now()), BreakerState::HalfOpen);
}
