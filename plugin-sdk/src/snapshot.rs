//! Deletions inferred from absence, safely. Many APIs list what exists
//! (a sheet's rows, the repositories you star) but never say what was
//! removed. A [`Snapshot`] collects the external ids of one complete read;
//! only when the read has finished does [`Snapshot::complete`] compare them
//! with the previous complete read's and emit tombstones for the missing.
//! A run that fails or stops midway never reaches `complete`, so it never
//! deletes what it did not get to, and the previous read's ids stay the
//! reference for the next attempt.
//!
//! A listing paged by position (`page=`, `offset=`) can miss an item that is
//! still there: one removed while the read is between pages moves the items
//! after it up a place, and one of them onto a page already read. Mark such
//! a snapshot [`Snapshot::paged_by_position`]: an item is then removed only
//! when two complete reads in a row miss it, a run later than otherwise.
//!
//! ```no_run
//! use inlet_plugin_sdk::prelude::*;
//! use inlet_plugin_sdk::snapshot::Snapshot;
//!
//! fn fetch(request: FetchRequest) -> Result<FetchSummary, PluginError> {
//!     let mut seen = Snapshot::objects("repositories", "repository");
//!     let first = http::get("https://api.example.com/repos").authenticated();
//!     for page in paginate::by_link_header::<Vec<serde_json::Value>>(first) {
//!         let page = page?;
//!         seen.saw_all(page.iter().filter_map(|repo| repo["id"].as_i64()).map(|id| id.to_string()));
//!         emit_json("repositories", &page)?;
//!     }
//!     seen.complete()?; // every page was read: tombstone what is gone
//!     Ok(FetchSummary::default())
//! }
//!
//! fn process(batch: RawBatch) -> Result<Records, PluginError> {
//!     if let Some(removed) = inlet_plugin_sdk::snapshot::removed(&batch) {
//!         return removed;
//!     }
//!     // ... the plugin's own batches
//! #   Ok(Records::default())
//! }
//! ```

use crate::output::emit_json;
use crate::{PluginError, RawBatch, Records, Tombstone, state};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The batch kind [`Snapshot::complete`] emits and [`removed`] reads.
pub const REMOVED_BATCH: &str = "inlet.snapshot.removed";

/// State values are capped by the host (64 KiB); ids are kept in parts below that.
const PART_BYTES: usize = 48 * 1024;
/// Tombstones are emitted in batches of ids up to this size, well below the
/// host's cap on a batch (8 MiB by default): a listing emptied upstream may
/// remove hundreds of thousands at once.
const REMOVED_BATCH_BYTES: usize = 1024 * 1024;

/// The external ids one complete read saw, of one record class and kind.
pub struct Snapshot {
    name: String,
    class: &'static str,
    kind: String,
    seen: BTreeSet<String>,
    paged_by_position: bool,
}

#[derive(Serialize, Deserialize)]
struct Removed {
    class: String,
    kind: String,
    external_ids: Vec<String>,
}

impl Snapshot {
    /// Objects of `kind`; `name` tells this snapshot apart in the
    /// integration's state (one per listing: "rows", "starred").
    pub fn objects(name: impl Into<String>, kind: impl Into<String>) -> Snapshot {
        Snapshot::of("object", name.into(), kind.into())
    }

    /// Events of `kind` (a listing of everything that happened, such as
    /// the plays a service still keeps).
    pub fn events(name: impl Into<String>, kind: impl Into<String>) -> Snapshot {
        Snapshot::of("event", name.into(), kind.into())
    }

    fn of(class: &'static str, name: String, kind: String) -> Snapshot {
        Snapshot { name, class, kind, seen: BTreeSet::new(), paged_by_position: false }
    }

    /// The listing is paged by position: what a complete read misses is
    /// removed only if the next complete read misses it too.
    pub fn paged_by_position(self) -> Snapshot {
        Snapshot { paged_by_position: true, ..self }
    }

    pub fn saw(&mut self, external_id: impl Into<String>) {
        self.seen.insert(external_id.into());
    }

    pub fn saw_all(&mut self, external_ids: impl IntoIterator<Item = String>) {
        self.seen.extend(external_ids);
    }

    /// The read saw everything there is: emit batches of tombstones for the
    /// ids the previous complete read saw and this one did not (paged by
    /// position: that the last two complete reads missed), keep this read's
    /// ids for the next, and checkpoint both together. Returns how many were
    /// removed. The first complete read removes nothing.
    pub fn complete(mut self) -> Result<usize, PluginError> {
        let previous = self.stored(&self.reference_key())?;
        let missing: Vec<String> = previous.into_iter().filter(|id| !self.seen.contains(id)).collect();
        let gone = if self.paged_by_position {
            let missed_before = self.stored(&self.missed_key())?;
            let (gone, missed_once): (Vec<String>, Vec<String>) =
                missing.into_iter().partition(|id| missed_before.contains(id));
            if !missed_once.is_empty() {
                let count = missed_once.len();
                crate::log::info(format!("{count} {} not listed: removed if the next read misses them too", self.kind));
            }
            self.store(&self.missed_key(), &missed_once)?;
            // Compared again by the next read, as if this one had listed them.
            self.seen.extend(missed_once);
            gone
        } else {
            missing
        };
        for part in in_parts(&gone, REMOVED_BATCH_BYTES) {
            let external_ids = part.into_iter().cloned().collect();
            let removed = Removed { class: self.class.into(), kind: self.kind.clone(), external_ids };
            emit_json(REMOVED_BATCH, &removed)?;
        }
        self.store(&self.reference_key(), &self.seen)?;
        crate::output::checkpoint()?;
        Ok(gone.len())
    }

    /// The ids the last complete read listed (and, paged by position, those
    /// it missed for the first time), kept in parts under this prefix.
    fn reference_key(&self) -> String {
        format!("snapshot.{}", self.name)
    }

    /// Paged by position: the ids the last complete read missed for the first time.
    fn missed_key(&self) -> String {
        format!("snapshot-missed.{}", self.name)
    }

    fn stored(&self, prefix: &str) -> Result<BTreeSet<String>, PluginError> {
        let parts: usize = state::get_json(&format!("{prefix}.parts"))?.unwrap_or(0);
        let mut ids = BTreeSet::new();
        for index in 0..parts {
            let part: Vec<String> = state::get_json(&format!("{prefix}.{index}"))?.unwrap_or_default();
            ids.extend(part);
        }
        Ok(ids)
    }

    fn store<'a>(&self, prefix: &str, ids: impl IntoIterator<Item = &'a String>) -> Result<(), PluginError> {
        let parts_key = format!("{prefix}.parts");
        let old_parts: usize = state::get_json(&parts_key)?.unwrap_or(0);
        let mut parts = in_parts(ids, PART_BYTES);
        if parts.is_empty() {
            parts.push(Vec::new()); // an empty read is kept as one empty part
        }
        for (index, part) in parts.iter().enumerate() {
            state::set_json(&format!("{prefix}.{index}"), part)?;
        }
        for index in parts.len()..old_parts {
            state::delete(&format!("{prefix}.{index}"));
        }
        state::set_json(&parts_key, &parts.len())
    }
}

/// `ids` in order, in parts whose JSON (a list of strings) is at most
/// `max_bytes`, but for an id longer than that alone; none for no ids.
fn in_parts<'a>(ids: impl IntoIterator<Item = &'a String>, max_bytes: usize) -> Vec<Vec<&'a String>> {
    let mut parts: Vec<Vec<&String>> = Vec::new();
    let mut bytes = 0;
    for id in ids {
        // Quotes and a comma around each id (ids with characters JSON escapes
        // grow more; the margins below the caps cover that).
        if parts.is_empty() || (bytes + id.len() + 3 > max_bytes && !parts.last().is_some_and(Vec::is_empty)) {
            parts.push(Vec::new());
            bytes = 0;
        }
        bytes += id.len() + 3;
        parts.last_mut().expect("one part at least").push(id);
    }
    parts
}

/// The tombstones of a batch [`Snapshot::complete`] emitted; `None` for any
/// other batch. Call it first thing in `process`.
pub fn removed(batch: &RawBatch) -> Option<Result<Records, PluginError>> {
    (batch.kind == REMOVED_BATCH).then(|| {
        let removed: Removed = serde_json::from_str(&batch.payload)?;
        let tombstone = match removed.class.as_str() {
            "object" => Tombstone::object,
            "event" => Tombstone::event,
            other => return Err(PluginError::Permanent(format!("snapshot of unknown record class {other:?}"))),
        };
        let deleted = removed.external_ids.into_iter().map(|id| tombstone(removed.kind.clone(), id)).collect();
        Ok(Records { deleted, ..Records::default() })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_million_removals_go_in_batches_the_host_takes() {
        let gone: Vec<String> = (0..250_000).map(|n| format!("{n:08x}-0000-4000-8000-000000000000")).collect();
        let parts = in_parts(&gone, REMOVED_BATCH_BYTES);
        assert!(parts.len() >= 9, "{} parts", parts.len());
        for part in &parts {
            let removed = Removed {
                class: "object".into(),
                kind: "row".into(),
                external_ids: part.iter().map(|id| id.to_string()).collect(),
            };
            assert!(serde_json::to_vec(&removed).unwrap().len() <= REMOVED_BATCH_BYTES + 100);
        }
        let rejoined: Vec<&String> = parts.into_iter().flatten().collect();
        assert_eq!(rejoined, gone.iter().collect::<Vec<_>>(), "every id once, in order");
        assert!(in_parts(&Vec::<String>::new(), PART_BYTES).is_empty());
        let long = vec!["x".repeat(100)];
        assert_eq!(in_parts(&long, 10).len(), 1, "an id over the size goes alone");
    }
}
