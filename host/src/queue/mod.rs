//! Durable background jobs: the workers that claim and run jobs with leases,
//! by their queue's policy (`settings::queue_policy`). The job rows
//! themselves live in `store::jobs`.

pub mod worker;

pub use worker::{QueueWorker, WorkerConfig};
