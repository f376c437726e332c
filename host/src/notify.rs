//! Telling operators that something needs them: a warn log line always, and a
//! JSON POST to a webhook URL when one is configured.

use crate::store::integrations::Integration;
use serde_json::json;
use std::time::Duration;

pub struct Notifier {
    webhook_url: Option<String>,
    client: reqwest::Client,
}

impl Notifier {
    pub fn new(webhook_url: Option<String>) -> Notifier {
        Notifier { webhook_url, client: reqwest::Client::new() }
    }

    /// An integration stopped running on its own and needs an operator.
    pub async fn integration_paused(&self, integration: &Integration, reason: &str, detail: &str, at: i64) {
        tracing::warn!(
            integration = integration.id,
            name = %integration.name,
            plugin = %integration.plugin_id,
            reason,
            detail,
            "integration paused"
        );
        let Some(url) = &self.webhook_url else { return };
        let body = json!({
            "event": "integration.paused",
            "integration_id": integration.id,
            "name": integration.name,
            "plugin": integration.plugin_id,
            "instance_type": integration.instance_type,
            "reason": reason,
            "detail": detail,
            "at": at,
        });
        let sent = self.client.post(url).json(&body).timeout(Duration::from_secs(10)).send().await;
        match sent.and_then(|r| r.error_for_status()) {
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error.without_url(), "notification webhook failed"),
        }
    }
}
