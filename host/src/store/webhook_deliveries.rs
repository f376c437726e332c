//! `webhook_deliveries`: deliveries accepted from upstream services. The
//! delivery, its batches (one per integration they are addressed to) and the
//! jobs that process them are written in one transaction, so an answered
//! delivery is never lost and a replay is never stored twice.

use super::jobs::{JobArgs, NewJob};
use super::{Store, jobs};
use crate::domain::queue::Queue;
use crate::domain::trigger::Trigger;
use anyhow::Result;

/// A verified delivery and what its plugin made of it.
pub struct NewDelivery<'a> {
    pub plugin_id: &'a str,
    pub group_id: i64,
    /// Identifies the delivery: a replay has the same key.
    pub delivery_key: &'a str,
    pub body_bytes: usize,
    /// `(instance type, batch kind, payload)`.
    pub batches: &'a [(String, String, String)],
    pub max_attempts: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStored {
    /// Stored; these integrations have batches to process.
    New { delivery_id: i64, integrations: Vec<i64>, unrouted_batches: usize },
    /// The same delivery was accepted before; nothing was written.
    Duplicate { delivery_id: i64 },
    /// No integration of the group takes any of its batches; nothing was
    /// written, so the sender can try again once one exists.
    Unrouted { instance_types: Vec<String> },
}

impl Store {
    pub async fn store_webhook_delivery(&self, delivery: &NewDelivery<'_>) -> Result<DeliveryStored> {
        let now = self.now();
        // Answered 202 once committed: the sender will not send it again.
        let mut tx = self.begin_durable().await?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO webhook_deliveries (plugin_id, group_id, delivery_key, body_bytes, batches, received_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (group_id, delivery_key) DO NOTHING RETURNING id",
        )
        .bind(delivery.plugin_id)
        .bind(delivery.group_id)
        .bind(delivery.delivery_key)
        .bind(delivery.body_bytes as i64)
        .bind(delivery.batches.len() as i64)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(delivery_id) = inserted else {
            let delivery_id =
                sqlx::query_scalar("SELECT id FROM webhook_deliveries WHERE group_id = $1 AND delivery_key = $2")
                    .bind(delivery.group_id)
                    .bind(delivery.delivery_key)
                    .fetch_one(&mut *tx)
                    .await?;
            return Ok(DeliveryStored::Duplicate { delivery_id });
        };
        let mut routes = Vec::with_capacity(delivery.batches.len());
        for (instance_type, kind, payload) in delivery.batches {
            let targets: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM integrations WHERE group_id = $1 AND instance_type = $2 ORDER BY id",
            )
            .bind(delivery.group_id)
            .bind(instance_type)
            .fetch_all(&mut *tx)
            .await?;
            routes.push((targets, kind, payload));
        }
        let unrouted_batches = routes.iter().filter(|(targets, ..)| targets.is_empty()).count();
        let mut integrations: Vec<i64> = routes.iter().flat_map(|(targets, ..)| targets.iter().copied()).collect();
        integrations.sort_unstable();
        integrations.dedup();
        super::lock_order::hold_batch_order(&mut tx, &integrations).await?;
        for (targets, kind, payload) in &routes {
            for &integration_id in targets {
                super::raw_batches::insert_pending(&mut tx, integration_id, None, kind, payload, now).await?;
            }
        }
        if integrations.is_empty() {
            let mut instance_types: Vec<String> = delivery.batches.iter().map(|b| b.0.clone()).collect();
            instance_types.dedup();
            return Ok(DeliveryStored::Unrouted { instance_types });
        }
        for integration_id in &integrations {
            let job = NewJob {
                queue: Queue::Webhook,
                integration_id: *integration_id,
                args: JobArgs::new(Trigger::Webhook),
                max_attempts: delivery.max_attempts,
                run_at: now,
            };
            jobs::waiting_or_new(&mut tx, self.backend(), &job, now).await?;
        }
        tx.commit().await?;
        Ok(DeliveryStored::New { delivery_id, integrations, unrouted_batches })
    }

    /// Forget deliveries received before `before`: a replay older than that
    /// is stored again (its records still dedupe on their ids).
    pub async fn prune_webhook_deliveries(&self, before: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < $1")
            .bind(before)
            .execute(self.pool())
            .await?
            .rows_affected())
    }
}
