//! A backfill that continues where a stopped attempt left it.
//!
//! When a backfill's process is killed (or its attempt fails) after it
//! checkpointed, the host runs it again with mode `backfill` and trigger
//! `retry`. [`Progress::resume_from`] answers where that attempt got to, so
//! the pages already stored are not read again; on any other run it forgets
//! earlier progress, and the backfill starts from its start.
//!
//! Progress is kept when the backfill reaches its end: a process killed after
//! the last page but before the host recorded the run as finished resumes
//! from the end, not from the start.
//!
//! ```no_run
//! use inlet_plugin_sdk::backfill::Progress;
//! use inlet_plugin_sdk::prelude::*;
//!
//! # fn page_after(_: Option<&str>) -> (Vec<String>, Option<String>) { (vec![], None) }
//! fn fetch(request: &FetchRequest) -> Result<(), PluginError> {
//!     let progress: Progress<String> = Progress::new("items");
//!     let mut after = progress.resume_from(request)?; // None: from the start
//!     loop {
//!         let (items, last) = page_after(after.as_deref());
//!         emit_json("items", &items)?;
//!         let Some(last) = last else { break };
//!         progress.reached(request, last.clone())?; // durable with the page
//!         checkpoint()?;
//!         after = Some(last);
//!     }
//!     Ok(())
//! }
//! ```

use crate::state::Key;
use crate::{FetchMode, FetchRequest, PluginError, Trigger};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Where a backfill of one scope (an account, a collection) got to: a
/// position of the plugin's choosing, such as the last id stored.
pub struct Progress<P> {
    key: Key<Reached<P>>,
}

/// The position, and the start of the backfill that reached it.
#[derive(Serialize, Deserialize)]
struct Reached<P> {
    since: i64,
    at: P,
}

impl<P: Serialize + DeserializeOwned> Progress<P> {
    /// Progress kept under the state key `backfill.<scope>`.
    pub fn new(scope: impl std::fmt::Display) -> Progress<P> {
        Progress { key: Key::new(format!("backfill.{scope}")) }
    }

    /// Where to continue: the position an earlier attempt of this backfill
    /// reached, when the host says this run resumes one and that attempt
    /// reached back at least as far. `None` means from the backfill's start
    /// (and earlier progress is forgotten, at the next checkpoint).
    pub fn resume_from(&self, request: &FetchRequest) -> Result<Option<P>, PluginError> {
        let FetchMode::Backfill(since) = request.mode else { return Ok(None) };
        if request.trigger == Trigger::Retry
            && let Some(reached) = self.key.get()?.filter(|r| r.since <= since)
        {
            return Ok(Some(reached.at));
        }
        self.key.delete();
        Ok(None)
    }

    /// The backfill reached `at`: durable with the next checkpoint, so set
    /// it with the page it follows. Outside a backfill it does nothing.
    pub fn reached(&self, request: &FetchRequest, at: P) -> Result<(), PluginError> {
        match request.mode {
            FetchMode::Backfill(since) => self.key.set(&Reached { since, at }),
            FetchMode::Incremental => Ok(()),
        }
    }
}
