//! What to do with a job after an attempt, by its queue's policy.

use crate::domain::error_class::ErrorClass;
use crate::settings::QueuePolicy;
use crate::store::jobs::JobAction;
use std::time::Duration;

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
    use crate::domain::queue::Queue;

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
