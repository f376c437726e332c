//! Durable background jobs: per-queue policies and the workers that claim and
//! run jobs with leases. The job rows themselves live in `store::jobs`.

pub mod policy;
pub mod worker;

pub use policy::{Decision, decide};
pub use worker::{QueueWorker, WorkerConfig};
