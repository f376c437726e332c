//! Deletions inferred from absence, safely. Many APIs list what exists
//! (a sheet's rows, the repositories you star) but never say what was
//! removed. A [`Snapshot`] collects the external ids of one complete read;
//! only when the read has finished does [`Snapshot::complete`] compare them
//! with the previous complete read's and emit tombstones for the missing.
//! A run that fails or stops midway never reaches `complete`, so it never
//! deletes what it did not get to, and the previous read's ids stay the
//! reference for the next attempt.
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
        Snapshot { name: name.into(), class: "object", kind: kind.into(), seen: BTreeSet::new() }
    }

    /// Events of `kind` (a listing of everything that happened, such as
    /// the plays a service still keeps).
    pub fn events(name: impl Into<String>, kind: impl Into<String>) -> Snapshot {
        Snapshot { name: name.into(), class: "event", kind: kind.into(), seen: BTreeSet::new() }
    }

    pub fn saw(&mut self, external_id: impl Into<String>) {
        self.seen.insert(external_id.into());
    }

    pub fn saw_all(&mut self, external_ids: impl IntoIterator<Item = String>) {
        self.seen.extend(external_ids);
    }

    /// The read saw everything there is: emit batches of tombstones for the
    /// ids the previous complete read saw and this one did not, keep this
    /// read's ids for the next, and checkpoint both together. Returns how
    /// many were removed. The first complete read removes nothing.
    ///
    /// For a listing paged by position (`page=`, `offset=`), use
    /// [`Snapshot::complete_rechecked`].
    pub fn complete(self) -> Result<usize, PluginError> {
        let previous = self.stored()?;
        let gone: Vec<String> = previous.into_iter().filter(|id| !self.seen.contains(id)).collect();
        self.remove(gone)
    }

    /// [`Snapshot::complete`] for a listing paged by position. An item
    /// removed upstream while the read is between pages moves the items
    /// after it up a place, and one of them onto a page already read: the
    /// read misses it although it is still listed. So when this read misses
    /// anything, `read_ids_again` reads the listing's ids once more (without
    /// emitting), and only what both reads missed is removed. A listing with
    /// nothing missing is read once.
    pub fn complete_rechecked(
        mut self,
        read_ids_again: impl FnOnce() -> Result<Vec<String>, PluginError>,
    ) -> Result<usize, PluginError> {
        let previous = self.stored()?;
        let mut gone: Vec<String> = previous.into_iter().filter(|id| !self.seen.contains(id)).collect();
        if !gone.is_empty() {
            let again: BTreeSet<String> = read_ids_again()?.into_iter().collect();
            let (still_listed, missed_twice): (Vec<String>, Vec<String>) =
                gone.into_iter().partition(|id| again.contains(id));
            if !still_listed.is_empty() {
                let kept = still_listed.len();
                crate::log::info(format!("{kept} {} missed by the read were listed by a second: kept", self.kind));
            }
            // Kept for the next read to compare with, as if this one had seen them.
            self.seen.extend(still_listed);
            gone = missed_twice;
        }
        self.remove(gone)
    }

    /// Tombstone `gone`, keep this read's ids, and checkpoint both.
    fn remove(self, gone: Vec<String>) -> Result<usize, PluginError> {
        for part in in_parts(&gone, REMOVED_BATCH_BYTES) {
            let external_ids = part.into_iter().cloned().collect();
            let removed = Removed { class: self.class.into(), kind: self.kind.clone(), external_ids };
            emit_json(REMOVED_BATCH, &removed)?;
        }
        self.store()?;
        crate::output::checkpoint()?;
        Ok(gone.len())
    }

    fn parts_key(&self) -> String {
        format!("snapshot.{}.parts", self.name)
    }

    fn part_key(&self, index: usize) -> String {
        format!("snapshot.{}.{index}", self.name)
    }

    fn stored(&self) -> Result<BTreeSet<String>, PluginError> {
        let parts: usize = state::get_json(&self.parts_key())?.unwrap_or(0);
        let mut ids = BTreeSet::new();
        for index in 0..parts {
            let part: Vec<String> = state::get_json(&self.part_key(index))?.unwrap_or_default();
            ids.extend(part);
        }
        Ok(ids)
    }

    fn store(&self) -> Result<(), PluginError> {
        let old_parts: usize = state::get_json(&self.parts_key())?.unwrap_or(0);
        let mut parts = in_parts(&self.seen, PART_BYTES);
        if parts.is_empty() {
            parts.push(Vec::new()); // an empty read is kept as one empty part
        }
        for (index, part) in parts.iter().enumerate() {
            state::set_json(&self.part_key(index), part)?;
        }
        for index in parts.len()..old_parts {
            state::delete(&self.part_key(index));
        }
        state::set_json(&self.parts_key(), &parts.len())
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
