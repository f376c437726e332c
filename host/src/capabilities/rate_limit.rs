//! Per-group ceilings on outbound requests (Google Sheets allows 60 reads a
//! minute per user). The manifest declares one; the operator may set or
//! override it per plugin. Requests over the ceiling wait for their turn
//! within the call's deadline instead of failing; only a wait that would
//! outlast the call becomes `rate-limited`.
//!
//! Requests are spaced evenly (`per_seconds / requests` apart, no burst), so no
//! window of `per_seconds` ever holds more than `requests`, whether the
//! upstream counts in fixed or sliding windows. The ceiling holds per process.

//!
//! With evenly spaced turns a limiter is one instant per group, the next free
//! turn, reserved under a lock: waiters are served in order and a turn past
//! the deadline is refused at once. (`governor` answers "not yet, retry
//! later" instead, which neither reserves a place nor says whether the turn
//! fits the deadline.)

use super::http::Error;
use crate::domain::manifest::RateLimit;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// The next free turn of one group, shared by all its runs.
type NextTurn = Arc<Mutex<Instant>>;

/// The next free turn of every group that has a ceiling.
#[derive(Default)]
pub struct GroupRateLimits(Mutex<HashMap<(i64, RateLimit), NextTurn>>);

impl GroupRateLimits {
    /// The turn-taker for `group_id` under `limit`, shared by all its runs.
    pub fn for_group(&self, group_id: i64, limit: RateLimit) -> GroupRateLimit {
        let next_turn = Arc::clone(
            self.0.lock().unwrap().entry((group_id, limit)).or_insert_with(|| Arc::new(Mutex::new(Instant::now()))),
        );
        GroupRateLimit { next_turn, limit }
    }
}

/// One group's ceiling, as a fetch uses it.
pub struct GroupRateLimit {
    next_turn: NextTurn,
    limit: RateLimit,
}

impl GroupRateLimit {
    /// Wait for this request's turn, unless it would come after `deadline`.
    pub async fn wait_turn(&self, deadline: Instant) -> Result<(), Error> {
        let turn = {
            let mut next_turn = self.next_turn.lock().unwrap();
            let turn = (*next_turn).max(Instant::now());
            if turn > deadline {
                let wait = turn.saturating_duration_since(Instant::now());
                return Err(Error::RateLimited(wait.as_secs_f64().ceil().max(1.0) as u32));
            }
            *next_turn = turn + self.limit.spacing();
            turn
        };
        tokio::time::sleep_until(turn).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // Tokio's paused clock: sleeps advance virtual time, so spacing is exact.
    #[tokio::test(start_paused = true)]
    async fn requests_of_one_group_are_spaced_and_other_groups_are_not_held_up() {
        let limits = GroupRateLimits::default();
        let limit = RateLimit { requests: 20, per_seconds: 1 }; // 50 ms apart
        let far = Instant::now() + Duration::from_secs(10);
        let started = Instant::now();
        for _ in 0..5 {
            limits.for_group(1, limit).wait_turn(far).await.unwrap();
        }
        assert_eq!(started.elapsed(), Duration::from_millis(200), "4 gaps of 50 ms");
        let other = Instant::now();
        limits.for_group(2, limit).wait_turn(far).await.unwrap();
        assert_eq!(other.elapsed(), Duration::ZERO, "group 2 has its own turns");
        // A turn later than the deadline is refused at once as rate-limited.
        let slow = RateLimit { requests: 1, per_seconds: 60 };
        limits.for_group(3, slow).wait_turn(far).await.unwrap();
        let refused = Instant::now();
        assert!(matches!(limits.for_group(3, slow).wait_turn(far).await, Err(Error::RateLimited(60))));
        assert_eq!(refused.elapsed(), Duration::ZERO, "without waiting for the deadline");
    }
}
