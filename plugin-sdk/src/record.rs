//! Builders for the records `process` returns: the required parts in `new`,
//! the rest by name, the data from anything serde can serialise.
//!
//! ```
//! use inlet_plugin_sdk::prelude::*;
//! use serde_json::json;
//!
//! # fn main() -> Result<(), PluginError> {
//! let mut records = Records::default();
//! records.events.push(
//!     EventRecord::new("payment", "tx_1", 1_767_225_600_000)
//!         .value(-350.0, "GBP")
//!         .target("merchant_9")
//!         .data(&json!({"description": "Coffee"}))?,
//! );
//! records.objects.push(ObjectRecord::new("account", "acc_1").name("Current account").data(&json!({}))?);
//! records.deleted.push(Tombstone::object("pot", "pot_3"));
//! assert_eq!(records.events[0].unit.as_deref(), Some("GBP"));
//! # Ok(())
//! # }
//! ```

use crate::{BlockRecord, EventRecord, ObjectRecord, PluginError, RecordClass, Timestamp, Tombstone};
use serde::Serialize;

fn json<T: Serialize + ?Sized>(data: &T) -> Result<String, PluginError> {
    Ok(serde_json::to_string(data)?)
}

impl ObjectRecord {
    pub fn new(kind: impl Into<String>, external_id: impl Into<String>) -> ObjectRecord {
        ObjectRecord { external_id: external_id.into(), kind: kind.into(), name: None, data: "{}".into() }
    }

    pub fn name(self, name: impl Into<String>) -> ObjectRecord {
        ObjectRecord { name: Some(name.into()), ..self }
    }

    pub fn data<T: Serialize + ?Sized>(self, data: &T) -> Result<ObjectRecord, PluginError> {
        Ok(ObjectRecord { data: json(data)?, ..self })
    }
}

impl EventRecord {
    /// An event that happened at `occurred_at` (ms since the epoch).
    pub fn new(kind: impl Into<String>, external_id: impl Into<String>, occurred_at: Timestamp) -> EventRecord {
        EventRecord {
            external_id: external_id.into(),
            kind: kind.into(),
            occurred_at,
            actor: None,
            target: None,
            value: None,
            unit: None,
            data: "{}".into(),
        }
    }

    pub fn actor(self, actor: impl Into<String>) -> EventRecord {
        EventRecord { actor: Some(actor.into()), ..self }
    }

    pub fn target(self, target: impl Into<String>) -> EventRecord {
        EventRecord { target: Some(target.into()), ..self }
    }

    /// The event's measure: an amount in minor units, a distance, a count.
    pub fn value(self, value: f64, unit: impl Into<String>) -> EventRecord {
        EventRecord { value: Some(value), unit: Some(unit.into()), ..self }
    }

    pub fn data<T: Serialize + ?Sized>(self, data: &T) -> Result<EventRecord, PluginError> {
        Ok(EventRecord { data: json(data)?, ..self })
    }
}

impl BlockRecord {
    /// Detail that belongs to the event `event_id` (a merchant, a lap).
    pub fn new(kind: impl Into<String>, external_id: impl Into<String>, event_id: impl Into<String>) -> BlockRecord {
        BlockRecord { external_id: external_id.into(), kind: kind.into(), event_id: event_id.into(), data: "{}".into() }
    }

    pub fn data<T: Serialize + ?Sized>(self, data: &T) -> Result<BlockRecord, PluginError> {
        Ok(BlockRecord { data: json(data)?, ..self })
    }
}

impl Tombstone {
    /// The upstream deleted this object.
    pub fn object(kind: impl Into<String>, external_id: impl Into<String>) -> Tombstone {
        Tombstone { class: RecordClass::Object, kind: kind.into(), external_id: external_id.into() }
    }

    /// The upstream deleted this event.
    pub fn event(kind: impl Into<String>, external_id: impl Into<String>) -> Tombstone {
        Tombstone { class: RecordClass::Event, kind: kind.into(), external_id: external_id.into() }
    }

    /// The upstream deleted this block, or the event it belongs to.
    pub fn block(kind: impl Into<String>, external_id: impl Into<String>) -> Tombstone {
        Tombstone { class: RecordClass::Block, kind: kind.into(), external_id: external_id.into() }
    }
}
