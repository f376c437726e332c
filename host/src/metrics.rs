//! Prometheus metrics of this process: runs by status and their durations,
//! job lateness, outbound requests by plugin and outcome. Queue depth is
//! read from the database when scraped, since other processes share it.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::LazyLock;
use std::time::Duration;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub queue: String,
    pub status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutboundLabels {
    pub plugin: String,
    /// The HTTP status, or what stopped the request: denied, timeout, too-large, ...
    pub status: String,
}

pub struct Metrics {
    registry: Registry,
    pub runs: Family<RunLabels, Counter>,
    pub run_duration: Family<QueueLabels, Histogram>,
    pub job_lateness: Family<QueueLabels, Histogram>,
    pub queue_depth: Family<QueueLabels, Gauge>,
    pub outbound_requests: Family<OutboundLabels, Counter>,
}

/// Metrics are per process, like the Prometheus client libraries' default registry.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("inlet");
        let runs = Family::<RunLabels, Counter>::default();
        registry.register("sync_runs", "Sync runs finished by this process, by queue and status", runs.clone());
        // 10 ms to about 11 minutes.
        let run_duration = Family::<QueueLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 2.0, 17))
        });
        registry.register("sync_run_duration_seconds", "How long sync runs took, by queue", run_duration.clone());
        let job_lateness = Family::<QueueLabels, Histogram>::new_with_constructor(|| {
            // 1 ms to about 65 s.
            Histogram::new(exponential_buckets(0.001, 2.0, 17))
        });
        registry.register(
            "job_lateness_seconds",
            "How long after its due time a job was claimed",
            job_lateness.clone(),
        );
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        registry.register("queue_depth", "Jobs waiting in each queue (due or not)", queue_depth.clone());
        let outbound_requests = Family::<OutboundLabels, Counter>::default();
        registry.register(
            "outbound_requests",
            "Plugins' upstream requests, by plugin and response status or refusal",
            outbound_requests.clone(),
        );
        Metrics { registry, runs, run_duration, job_lateness, queue_depth, outbound_requests }
    }

    pub fn run_finished(&self, queue: &str, status: &str, duration: Duration) {
        self.runs.get_or_create(&RunLabels { queue: queue.to_string(), status: status.to_string() }).inc();
        self.run_duration.get_or_create(&QueueLabels { queue: queue.to_string() }).observe(duration.as_secs_f64());
    }

    pub fn job_claimed(&self, queue: &str, lateness: Duration) {
        self.job_lateness.get_or_create(&QueueLabels { queue: queue.to_string() }).observe(lateness.as_secs_f64());
    }

    pub fn outbound_request(&self, plugin: &str, status: String) {
        self.outbound_requests.get_or_create(&OutboundLabels { plugin: plugin.to_string(), status }).inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}
