//! The checks for a plugin that is pushed its data: the cassette holds a
//! delivery, which goes through `handle-webhook` and the same storage and
//! `process` runs as a delivery to `/webhooks/...` does.

use super::{Report, Session, checks, expected, nothing_new, run_passed};
use crate::capabilities::cassette::{Delivery, Header, RunTape};
use crate::capabilities::signature::SigningKey;
use crate::domain::plugin_call::WebhookDelivery;
use crate::domain::queue::Queue;
use crate::domain::trigger::Trigger;
use crate::store::sync_runs::SyncRun;
use crate::store::webhook_deliveries::NewDelivery;
use crate::sync::RunRequest;
use anyhow::{Context, Result};

impl Session<'_> {
    pub(super) async fn delivery_checks(
        &self,
        delivery: &Delivery,
        options: &super::TestOptions,
        report: &mut Report,
    ) -> Result<()> {
        let first = match self.new_integration("first", self.config).await {
            Ok(id) => id,
            Err(refusal) => {
                report.fail("delivery", format!("the integration was refused: {refusal}"));
                return Ok(());
            }
        };
        let (run, batches) = match self.deliver(first, delivery, "first").await? {
            Ok(delivered) => delivered,
            Err(refusal) => {
                report.fail("delivery", refusal);
                return Ok(());
            }
        };
        if let Err(failure) = run_passed(&run, &RunTape::default()) {
            report.fail("delivery", failure);
            return Ok(());
        }
        report.pass("delivery", format!("{batches} batches, {} records created", run.records.created));
        let records = self.records(first).await?;
        report.outcome("external ids", checks::external_ids(&records));
        if let Some(expect) = &options.expect {
            report.outcome("expected records", expected::check(expect, &records, options.update));
        }
        report.records = Some(records.clone());

        // Senders send again (a retry, an overlapping export): records are kept once.
        let again = self.deliver(first, delivery, "sent again").await?;
        report.outcome(
            "second delivery",
            again.and_then(|(run, _)| {
                run_passed(&run, &RunTape::default())
                    .and_then(|()| nothing_new(&run, &RunTape::default()))
                    .map(|_| "the same delivery sent again changed no record".to_string())
            }),
        );

        let fresh = self.new_integration("again", self.config).await.map_err(anyhow::Error::msg)?;
        let replayed = match self.deliver(fresh, delivery, "fresh").await? {
            Ok((run, _)) => match run_passed(&run, &RunTape::default()) {
                Ok(()) => Ok(self.records(fresh).await?),
                Err(failure) => Err(failure),
            },
            Err(refusal) => Err(refusal),
        };
        report.outcome("stable ids", replayed.and_then(|again| checks::same_records(&records, &again)));
        report.skip("typed errors", "a delivery is pushed, not fetched");
        Ok(())
    }

    /// Hand `delivery` to the plugin as the group's webhook would, store its
    /// batches under `key` (a delivery sent again has another), and process
    /// them: the run, and how many batches the delivery made. `Err` when the
    /// plugin refused the delivery.
    async fn deliver(
        &self,
        integration: i64,
        delivery: &Delivery,
        key: &str,
    ) -> Result<Result<(SyncRun, usize), String>> {
        let store = self.host.store();
        let group = store.integration(integration).await?.context("the integration just created")?.group_id;
        let now = store.now();
        let body = delivery.body_bytes();
        let call = WebhookDelivery {
            headers: delivery.headers.iter().map(|Header(name, value)| (name.clone(), value.clone())).collect(),
            body: body.clone(),
            received_at: now,
        };
        let signing = Some(SigningKey { secret: super::PLACEHOLDER.as_bytes().to_vec(), now_ms: now });
        let plugin = self.plugin;
        let outcome = match self.host.runner.runtime.handle_webhook(&plugin.pre, plugin.id(), signing, call).await.0 {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => return Ok(Err(format!("handle-webhook refused the delivery: {error:?}"))),
            Err(error) => return Ok(Err(format!("handle-webhook failed: {error}"))),
        };
        let batches: Vec<(String, String, String)> = outcome
            .batches
            .into_iter()
            .filter(|b| b.instance_type == self.instance_type)
            .map(|b| (b.instance_type, b.batch.kind, b.batch.payload))
            .collect();
        if batches.is_empty() {
            return Ok(Err(format!("handle-webhook routed no batches to instance type {:?}", self.instance_type)));
        }
        let key = format!("{key}:{group}");
        let new = NewDelivery {
            plugin_id: plugin.id(),
            group_id: group,
            delivery_key: &key,
            body_bytes: body.len(),
            batches: &batches,
            max_attempts: 1,
        };
        store.store_webhook_delivery(&new).await?;
        let request =
            RunRequest { queue: Queue::Webhook, trigger: Trigger::Webhook, ..RunRequest::manual(integration) };
        let runs = self.host.runner.run(&request).await?;
        Ok(Ok((runs.outcome().clone(), batches.len())))
    }
}
