//! The breaker in front of Redis: after a few calls in a row fail, Redis is not called at all
//! (callers fall back at once, no request waits on a timeout) until a probe, one call let through
//! after a pause that doubles while Redis stays down, finds it answering again.

use std::time::Duration;

use tokio::time::Instant;

/// Failures in a row that open the breaker.
const FAILURES_TO_OPEN: u32 = 3;
/// First pause before a probe; doubles per failed probe.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// Longest pause before a probe.
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Redis is called.
    Closed,
    /// Redis is not called until the next probe.
    Open,
    /// One probe call is on its way.
    HalfOpen,
}

impl BreakerState {
    /// Its name in logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// What a recorded outcome changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The breaker opened; the next probe in this long.
    Opened(Duration),
    /// The breaker closed: Redis answers again.
    Closed,
    /// Nothing changed.
    Same,
}

/// The breaker's state and counters.
#[derive(Debug)]
pub(crate) struct Breaker {
    state: BreakerState,
    failures: u32,
    pause: Duration,
    probe_at: Instant,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            state: BreakerState::Closed,
            failures: 0,
            pause: FIRST_PAUSE,
            probe_at: Instant::now(),
        }
    }
}

impl Breaker {
    /// The state now.
    pub(crate) fn state(&self) -> BreakerState {
        self.state
    }

    /// May a call go to Redis now? Open: only the probe, once its time has come.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::HalfOpen => false,
            BreakerState::Open if now >= self.probe_at => {
                self.state = BreakerState::HalfOpen;
                true
            }
            BreakerState::Open => false,
        }
    }

    /// Records a call's outcome.
    pub(crate) fn record(&mut self, ok: bool, now: Instant) -> Verdict {
        if ok {
            self.failures = 0;
            self.pause = FIRST_PAUSE;
            let was = std::mem::replace(&mut self.state, BreakerState::Closed);
            return if was == BreakerState::Closed {
                Verdict::Same
            } else {
                Verdict::Closed
            };
        }
        self.failures += 1;
        match self.state {
            BreakerState::Closed if self.failures >= FAILURES_TO_OPEN => {
                self.open(now);
                Verdict::Opened(self.pause)
            }
            BreakerState::HalfOpen => {
                self.pause = (self.pause * 2).min(LONGEST_PAUSE);
                self.open(now);
                Verdict::Same
            }
            _ => Verdict::Same,
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = BreakerState::Open;
        self.probe_at = now + self.pause;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_three_failures_and_closes_when_a_probe_succeeds() {
        let mut breaker = Breaker::default();
        let now = Instant::now();
        assert_eq!(breaker.record(false, now), Verdict::Same);
        assert_eq!(breaker.record(false, now), Verdict::Same);
        assert_eq!(breaker.record(false, now), Verdict::Opened(FIRST_PAUSE));
        assert!(!breaker.allow(now));
        assert!(!breaker.allow(now + Duration::from_millis(249)));
        assert!(breaker.allow(now + FIRST_PAUSE), "the probe");
        assert!(!breaker.allow(now + FIRST_PAUSE), "one probe at a time");
        assert_eq!(breaker.record(true, now), Verdict::Closed);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.allow(now));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_doubles_the_pause_up_to_five_seconds() {
        let mut breaker = Breaker::default();
        let mut now = Instant::now();
        for _ in 0..3 {
            breaker.record(false, now);
        }
        let mut pauses = Vec::new();
        for _ in 0..6 {
            now = breaker.probe_at;
            assert!(breaker.allow(now));
            breaker.record(false, now);
            pauses.push(breaker.probe_at - now);
        }
        let ms: Vec<u128> = pauses.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [500, 1000, 2000, 4000, 5000, 5000]);
    }
}
