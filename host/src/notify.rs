//! Telling operators that something needs them: a warn log line always, and a
//! JSON POST to a webhook URL when one is configured. Posts are sent by a task
//! of their own, with retries, so a slow or dead URL never holds up the runs
//! whose completion raised them.

use crate::domain::pause_reason::PauseReason;
use crate::store::integrations::Integration;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// Waits before each further attempt to post a notification.
const RETRY_AFTER: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(10), Duration::from_secs(60)];

/// How long an exiting process waits for its notifications to be posted.
const FLUSH_WITHIN: Duration = Duration::from_secs(15);

pub struct Notifier {
    /// Notifications waiting to be posted, when a URL is configured.
    outbox: Option<mpsc::UnboundedSender<serde_json::Value>>,
    /// Notifications queued and not yet posted (or given up on).
    unsent: Arc<Unsent>,
}

#[derive(Default)]
struct Unsent {
    count: AtomicUsize,
    none_left: Notify,
}

impl Notifier {
    /// Must be called within a tokio runtime when `webhook_url` is set: it
    /// starts the task that posts.
    pub fn new(webhook_url: Option<String>) -> Notifier {
        let unsent = Arc::new(Unsent::default());
        let outbox = webhook_url.map(|url| {
            let (outbox, queued) = mpsc::unbounded_channel();
            tokio::spawn(post_all(reqwest::Client::new(), url, queued, Arc::clone(&unsent)));
            outbox
        });
        Notifier { outbox, unsent }
    }

    /// Wait, for a while at most, for queued notifications to be posted (a
    /// CLI command or a server about to exit).
    pub async fn flush(&self) {
        let all_sent = async {
            loop {
                let none_left = self.unsent.none_left.notified();
                if self.unsent.count.load(Ordering::SeqCst) == 0 {
                    return;
                }
                none_left.await;
            }
        };
        if tokio::time::timeout(FLUSH_WITHIN, all_sent).await.is_err() {
            tracing::warn!(unsent = self.unsent.count.load(Ordering::SeqCst), "notifications not sent before exit");
        }
    }

    /// An integration stopped running on its own and needs an operator.
    pub fn integration_paused(&self, integration: &Integration, reason: PauseReason, detail: &str, at: i64) {
        tracing::warn!(
            integration = integration.id,
            name = %integration.name,
            plugin = %integration.plugin_id,
            reason = reason.as_str(),
            detail,
            "integration paused"
        );
        self.post(json!({
            "event": "integration.paused",
            "integration_id": integration.id,
            "name": integration.name,
            "plugin": integration.plugin_id,
            "instance_type": integration.instance_type,
            "reason": reason.as_str(),
            "detail": detail,
            "at": at,
        }));
    }

    /// What an integration fetched cannot be turned into records: its
    /// processing failed for good and waits in the failed list for an
    /// operator (its fetches go on, so nothing pauses it).
    pub fn processing_failed(&self, integration: &Integration, detail: &str, at: i64) {
        tracing::warn!(
            integration = integration.id,
            name = %integration.name,
            plugin = %integration.plugin_id,
            detail,
            "processing failed for good"
        );
        self.post(json!({
            "event": "integration.processing_failed",
            "integration_id": integration.id,
            "name": integration.name,
            "plugin": integration.plugin_id,
            "instance_type": integration.instance_type,
            "detail": detail,
            "at": at,
        }));
    }

    /// Queue `body` for the webhook, if one is configured.
    fn post(&self, body: serde_json::Value) {
        let Some(outbox) = &self.outbox else { return };
        self.unsent.count.fetch_add(1, Ordering::SeqCst);
        let _ = outbox.send(body);
    }
}

/// Post each queued notification, retrying a failed post a few times.
async fn post_all(
    client: reqwest::Client,
    url: String,
    mut queued: mpsc::UnboundedReceiver<serde_json::Value>,
    unsent: Arc<Unsent>,
) {
    while let Some(body) = queued.recv().await {
        for wait in std::iter::once(Duration::ZERO).chain(RETRY_AFTER) {
            tokio::time::sleep(wait).await;
            let sent = client.post(&url).json(&body).timeout(Duration::from_secs(10)).send().await;
            match sent.and_then(|r| r.error_for_status()) {
                Ok(_) => break,
                Err(error) => tracing::warn!(error = %error.without_url(), "notification webhook failed"),
            }
        }
        if unsent.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            unsent.none_left.notify_waiters();
        }
    }
}
