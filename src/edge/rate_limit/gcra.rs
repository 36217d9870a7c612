//! The generic cell rate algorithm (GCRA) as plain arithmetic on nanoseconds: no clock, no
//! storage. A key's whole state is one number, its *theoretical arrival time* (TAT): when its
//! budget would be full again. Kept apart from the store so that any store — this process's
//! bounded map, or a shared one — runs the same decision.
//!
//! With `interval` the budget one request costs (`period / per_period`) and `tolerance` =
//! `burst × interval`, a request at `now` passes when `max(tat, now) + interval - now ≤ tolerance`
//! and moves the TAT there; a refused request leaves it alone. So exactly `burst` requests pass at
//! once, then one per `interval`. A TAT at or before `now` means a full budget: such a key is
//! indistinguishable from one never seen, which is what lets the store forget it.

use std::time::Duration;

/// GCRA parameters of one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Gcra {
    /// Nanoseconds of budget one request costs (at least 1).
    interval: u64,
    /// How far a TAT may run ahead of now: `burst × interval`.
    tolerance: u64,
}

/// A request that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Allowed {
    /// The key's new theoretical arrival time.
    pub(super) tat: u64,
    /// Requests that could still pass at once after this one.
    pub(super) remaining: u32,
}

impl Gcra {
    /// One request per `interval`, `burst` at once (a zero burst counts as 1).
    pub(super) fn new(interval: Duration, burst: u32) -> Gcra {
        let interval = u64::try_from(interval.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        Gcra {
            interval,
            tolerance: interval.saturating_mul(u64::from(burst.max(1))),
        }
    }

    /// What one request costs.
    pub(super) fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval)
    }

    /// Decides a request at `now` for a key whose TAT is `tat` (`None`: a key not held). The
    /// refusal is the wait in nanoseconds until a request would pass.
    pub(super) fn check(&self, tat: Option<u64>, now: u64) -> Result<Allowed, u64> {
        let next = tat.unwrap_or(now).max(now).saturating_add(self.interval);
        let ahead = next - now;
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        let remaining = (self.tolerance - ahead) / self.interval;
        Ok(Allowed {
            tat: next,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn exactly_burst_pass_at_once_then_one_per_interval() {
        let gcra = Gcra::new(Duration::from_secs(1), 3);
        let mut tat = None;
        let mut remaining = Vec::new();
        for _ in 0..3 {
            let allowed = gcra.check(tat, 0).expect("within the burst");
            tat = Some(allowed.tat);
            remaining.push(allowed.remaining);
        }
        assert_eq!(remaining, [2, 1, 0]);
        assert_eq!(
            gcra.check(tat, 0),
            Err(SECOND),
            "the fourth waits one interval"
        );
        assert_eq!(gcra.check(tat, SECOND / 2), Err(SECOND / 2));
        let allowed = gcra.check(tat, SECOND).expect("one refilled");
        assert_eq!(allowed.remaining, 0);
        assert!(gcra.check(Some(allowed.tat), SECOND).is_err());
    }

    #[test]
    fn a_refilled_key_behaves_like_a_new_one() {
        let gcra = Gcra::new(Duration::from_secs(1), 2);
        let spent = gcra.check(None, 0).expect("first").tat;
        let later = 5 * SECOND;
        assert!(spent <= later, "its TAT has passed: the budget is full");
        assert_eq!(gcra.check(Some(spent), later), gcra.check(None, later));
    }

    #[test]
    fn extreme_parameters_neither_overflow_nor_divide_by_zero() {
        let gcra = Gcra::new(Duration::ZERO, 0);
        assert_eq!(gcra.check(None, u64::MAX - 1).map(|a| a.remaining), Ok(0));
        let slow = Gcra::new(Duration::MAX, u32::MAX);
        assert!(
            slow.check(None, u64::MAX).is_ok(),
            "a first request always passes"
        );
    }
}
