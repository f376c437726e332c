//! Host bindings for `inlet:plugin@0.1.0` (wit/0.1.0). A later contract version
//! gets a sibling module, and the runtime adapts its types to the current ones.

wasmtime::component::bindgen!({
    path: "../wit/0.1.0",
    world: "plugin",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use self::inlet::plugin::types::*;

impl From<Records> for crate::domain::records::Records {
    fn from(records: Records) -> Self {
        use crate::domain::records as domain;
        let class = |class: RecordClass| match class {
            RecordClass::Object => domain::RecordClass::Object,
            RecordClass::Event => domain::RecordClass::Event,
            RecordClass::Block => domain::RecordClass::Block,
        };
        Self {
            objects: (records.objects.into_iter())
                .map(|o| domain::ObjectRecord { external_id: o.external_id, kind: o.kind, name: o.name, data: o.data })
                .collect(),
            events: (records.events.into_iter())
                .map(|e| domain::EventRecord {
                    external_id: e.external_id,
                    kind: e.kind,
                    occurred_at: e.occurred_at,
                    actor: e.actor,
                    target: e.target,
                    value: e.value,
                    unit: e.unit,
                    data: e.data,
                })
                .collect(),
            blocks: (records.blocks.into_iter())
                .map(|b| domain::BlockRecord {
                    external_id: b.external_id,
                    kind: b.kind,
                    event_id: b.event_id,
                    data: b.data,
                })
                .collect(),
            deleted: (records.deleted.into_iter())
                .map(|t| domain::Tombstone { class: class(t.class), kind: t.kind, external_id: t.external_id })
                .collect(),
        }
    }
}

impl From<crate::domain::trigger::Trigger> for Trigger {
    fn from(trigger: crate::domain::trigger::Trigger) -> Self {
        use crate::domain::trigger::Trigger as Domain;
        match trigger {
            Domain::Schedule => Trigger::Schedule,
            Domain::Manual => Trigger::Manual,
            Domain::Webhook => Trigger::Webhook,
            Domain::Retry => Trigger::Retry,
            Domain::Backfill => Trigger::Backfill,
        }
    }
}

/// A manifest's default schedule, as the host's own type.
impl From<&Schedule> for crate::schedule::Schedule {
    fn from(schedule: &Schedule) -> Self {
        match schedule {
            Schedule::Interval(seconds) => Self::Interval { seconds: *seconds },
            Schedule::Cron(cron) => {
                Self::Cron { expressions: cron.expressions.clone(), timezone: cron.timezone.clone() }
            }
            Schedule::Manual => Self::Manual,
        }
    }
}
