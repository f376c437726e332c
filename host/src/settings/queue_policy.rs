//! Per-queue concurrency, timeout and retry policy: the design's defaults,
//! which `[queues.<name>]` in the config file may override; and what the
//! policy makes of a job after an attempt.

use crate::domain::error_class::ErrorClass;
use crate::domain::queue::Queue;
use crate::store::jobs::JobAction;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct QueuePolicy {
    /// Jobs of this queue running at once in one process.
    pub concurrency: usize,
    pub timeout: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: i64,
    /// Wait before attempt 2, 3, ...; the last entry repeats.
    pub backoff: Vec<Duration>,
    /// Each wait is moved by up to this fraction either way, so jobs that
    /// failed together do not retry together.
    pub jitter: f64,
}

impl QueuePolicy {
    /// The defaults of DESIGN.md ("Job semantics").
    pub fn default_for(queue: Queue) -> QueuePolicy {
        let secs = |list: &[u64]| list.iter().map(|s| Duration::from_secs(*s)).collect();
        match queue {
            Queue::Fetch => QueuePolicy {
                concurrency: 8,
                timeout: Duration::from_secs(120),
                max_attempts: 4,
                backoff: secs(&[60, 300, 600]),
                jitter: 0.1,
            },
            Queue::Process => QueuePolicy {
                concurrency: 4,
                timeout: Duration::from_secs(300),
                max_attempts: 3,
                backoff: secs(&[120, 300]),
                jitter: 0.1,
            },
            Queue::Webhook => QueuePolicy {
                concurrency: 4,
                timeout: Duration::from_secs(60),
                max_attempts: 4,
                backoff: secs(&[30, 120, 300]),
                jitter: 0.1,
            },
        }
    }

    /// The wait before attempt `next_attempt` (2 for the first retry) of job
    /// `job_id`. The jitter is derived from the job and attempt, so it is
    /// spread across jobs yet reproducible.
    pub fn backoff_before(&self, job_id: i64, next_attempt: i64) -> Duration {
        let index = usize::try_from(next_attempt - 2).unwrap_or(0).min(self.backoff.len().saturating_sub(1));
        let base = self.backoff.get(index).copied().unwrap_or(Duration::from_secs(60));
        let mut hasher = DefaultHasher::new();
        (job_id, next_attempt).hash(&mut hasher);
        let unit = (hasher.finish() % 10_000) as f64 / 10_000.0; // [0, 1)
        base.mul_f64(1.0 + self.jitter * (2.0 * unit - 1.0))
    }
}

/// What to do with a job after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Complete,
    /// Try again after this long.
    Retry(Duration),
    /// Wait this long without counting the attempt (the plugin is not loaded).
    Wait(Duration),
    /// No retry: to the failed list.
    Fail,
}

impl Decision {
    /// What to write to the job, at `now`, for an attempt that failed with
    /// `(class, message)` (empty when it did not).
    pub fn action(self, now: i64, class: String, message: String) -> JobAction {
        let at = |wait: Duration| now + wait.as_millis() as i64;
        match self {
            Decision::Complete => JobAction::Complete,
            Decision::Retry(wait) => JobAction::Retry { run_at: at(wait), refund_attempt: false, class, message },
            Decision::Wait(wait) => JobAction::Retry { run_at: at(wait), refund_attempt: true, class, message },
            Decision::Fail => JobAction::Fail { class, message },
        }
    }
}

/// Decide from how the attempt ended. `attempt` is the attempt that just ran.
pub fn decide(
    policy: &QueuePolicy,
    job_id: i64,
    attempt: i64,
    error: Option<ErrorClass>,
    retry_after: Option<Duration>,
) -> Decision {
    let Some(class) = error else { return Decision::Complete };
    let retryable = match class {
        ErrorClass::Transient
        | ErrorClass::RateLimited
        | ErrorClass::Trap
        | ErrorClass::Host
        | ErrorClass::LeaseExpired => true,
        ErrorClass::PluginMissing => return Decision::Wait(Duration::from_secs(60)),
        ErrorClass::Unauthorized | ErrorClass::InvalidConfig | ErrorClass::Permanent => false,
    };
    if !retryable || attempt >= policy.max_attempts {
        return Decision::Fail;
    }
    let backoff = policy.backoff_before(job_id, attempt + 1);
    Decision::Retry(retry_after.map_or(backoff, |asked| asked.max(backoff)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_backoff_follows_the_design_with_bounded_jitter() {
        let policy = QueuePolicy::default_for(Queue::Fetch);
        for (attempt, base) in [(2, 60.0), (3, 300.0), (4, 600.0), (9, 600.0)] {
            for job in 0..200 {
                let wait = policy.backoff_before(job, attempt).as_secs_f64();
                assert!((base * 0.9..=base * 1.1).contains(&wait), "attempt {attempt}: {wait}");
            }
        }
        let spread: std::collections::BTreeSet<u64> =
            (0..50).map(|job| policy.backoff_before(job, 2).as_millis() as u64).collect();
        assert!(spread.len() > 40, "jitter spreads jobs apart");
    }

    #[test]
    fn decisions_follow_the_error_class_and_attempts() {
        let policy = QueuePolicy::default_for(Queue::Fetch);
        assert_eq!(decide(&policy, 1, 1, None, None), Decision::Complete);
        assert!(matches!(decide(&policy, 1, 1, Some(ErrorClass::Transient), None), Decision::Retry(_)));
        assert!(matches!(decide(&policy, 1, 3, Some(ErrorClass::Trap), None), Decision::Retry(_)));
        assert_eq!(decide(&policy, 1, 4, Some(ErrorClass::Transient), None), Decision::Fail, "4 attempts in all");
        assert_eq!(decide(&policy, 1, 1, Some(ErrorClass::Permanent), None), Decision::Fail);
        assert_eq!(decide(&policy, 1, 1, Some(ErrorClass::InvalidConfig), None), Decision::Fail);
        assert_eq!(decide(&policy, 1, 1, Some(ErrorClass::Unauthorized), None), Decision::Fail);
        assert!(matches!(decide(&policy, 1, 4, Some(ErrorClass::PluginMissing), None), Decision::Wait(_)));
        // Rate limits wait at least as long as asked, and at least the backoff.
        let Decision::Retry(wait) =
            decide(&policy, 1, 1, Some(ErrorClass::RateLimited), Some(Duration::from_secs(900)))
        else {
            panic!()
        };
        assert_eq!(wait, Duration::from_secs(900));
        let Decision::Retry(wait) = decide(&policy, 1, 1, Some(ErrorClass::RateLimited), Some(Duration::from_secs(5)))
        else {
            panic!()
        };
        assert!(wait >= Duration::from_secs(54));
    }
}
