//! What processing a batch yields, as the store keeps it: objects (things),
//! events (what happened when), blocks (parts of an event) and tombstones of
//! records that no longer exist upstream.

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Records {
    pub objects: Vec<ObjectRecord>,
    pub events: Vec<EventRecord>,
    pub blocks: Vec<BlockRecord>,
    pub deleted: Vec<Tombstone>,
}

/// A thing: an account, a pot, a playlist, a repository.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectRecord {
    pub external_id: String,
    pub kind: String,
    pub name: Option<String>,
    /// JSON object with the upstream fields worth keeping.
    pub data: String,
}

/// Something that happened at a time: a transaction, a workout.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub external_id: String,
    pub kind: String,
    /// Unix milliseconds.
    pub occurred_at: i64,
    /// External id of the object that did it (e.g. the account).
    pub actor: Option<String>,
    /// External id of the object it was done to (e.g. the merchant).
    pub target: Option<String>,
    /// The headline quantity: money in minor units, metres, beats per minute.
    pub value: Option<f64>,
    /// Unit of `value`: an ISO 4217 currency code for money, else e.g. "m".
    pub unit: Option<String>,
    pub data: String,
}

/// A part of an event: a set of a workout, a sample of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockRecord {
    pub external_id: String,
    pub kind: String,
    /// `external_id` of the event this block belongs to.
    pub event_id: String,
    pub data: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordClass {
    Object,
    Event,
    Block,
}

/// A record that no longer exists upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct Tombstone {
    pub class: RecordClass,
    pub kind: String,
    pub external_id: String,
}
