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

/// The longest kind or external id kept. PostgreSQL refuses an index key
/// over about 2,700 bytes; no upstream's id comes near this.
pub const MAX_KEY_BYTES: usize = 512;

impl Records {
    /// Whether every record can be stored and read back: kinds and external
    /// ids short enough to index, no NUL character in any text (PostgreSQL
    /// refuses one), and data that is JSON (every reader parses it). The
    /// first problem, naming its record, when not.
    pub fn storable(&self) -> Result<(), String> {
        for object in &self.objects {
            check_record("object", &object.kind, &object.external_id, &[object.name.as_deref()], &object.data)?;
        }
        for event in &self.events {
            let texts = [event.actor.as_deref(), event.target.as_deref(), event.unit.as_deref()];
            check_record("event", &event.kind, &event.external_id, &texts, &event.data)?;
        }
        for block in &self.blocks {
            check_record("block", &block.kind, &block.external_id, &[Some(&block.event_id)], &block.data)?;
            if block.event_id.len() > MAX_KEY_BYTES {
                return Err(format!("block {:?}: its event id is longer than {MAX_KEY_BYTES} bytes", block.kind));
            }
        }
        for tombstone in &self.deleted {
            check_keys("deleted record", &tombstone.kind, &tombstone.external_id)?;
        }
        Ok(())
    }
}

fn check_record(class: &str, kind: &str, external_id: &str, texts: &[Option<&str>], data: &str) -> Result<(), String> {
    check_keys(class, kind, external_id)?;
    let named = || named(class, kind, external_id);
    if texts.iter().flatten().chain([&data]).any(|text| text.contains('\0')) {
        return Err(format!("{}: a text holds a NUL character, which the database cannot store", named()));
    }
    if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(data) {
        return Err(format!("{}: its data is not JSON ({error})", named()));
    }
    Ok(())
}

/// A record as an error names it: its class, kind and (the start of) its
/// external id.
fn named(class: &str, kind: &str, external_id: &str) -> String {
    format!("{class} {kind:?} {:?}", external_id.chars().take(80).collect::<String>())
}

fn check_keys(class: &str, kind: &str, external_id: &str) -> Result<(), String> {
    let named = || named(class, kind, external_id);
    if kind.len() > MAX_KEY_BYTES || external_id.len() > MAX_KEY_BYTES {
        return Err(format!("{}: its kind or external id is longer than {MAX_KEY_BYTES} bytes", named()));
    }
    if kind.contains('\0') || external_id.contains('\0') {
        return Err(format!("{}: its kind or external id holds a NUL character", named()));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_the_database_would_refuse_is_named() {
        let object = |external_id: &str, data: &str| Records {
            objects: vec![ObjectRecord {
                external_id: external_id.into(),
                kind: "k".into(),
                name: None,
                data: data.into(),
            }],
            ..Records::default()
        };
        assert!(object("x", "{}").storable().is_ok());
        let long = object(&"x".repeat(MAX_KEY_BYTES + 1), "{}").storable().unwrap_err();
        assert!(long.contains("longer than 512 bytes"), "{long}");
        assert!(object("x\0y", "{}").storable().unwrap_err().contains("NUL"));
        assert!(object("x", "{nope").storable().unwrap_err().contains("not JSON"));
        let block = |event_id: String| Records {
            blocks: vec![BlockRecord { external_id: "b".into(), kind: "set".into(), event_id, data: "{}".into() }],
            ..Records::default()
        };
        assert!(block("e".into()).storable().is_ok());
        let long = block("e".repeat(MAX_KEY_BYTES + 1)).storable().unwrap_err();
        assert!(long.contains("event id is longer than 512 bytes"), "{long}");
    }
}
