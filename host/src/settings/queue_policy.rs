//! Per-queue concurrency, timeout and retry policy: the design's defaults,
//! which `[queues.<name>]` in the config file may override.

use crate::domain::queue::Queue;
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
}
