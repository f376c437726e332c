//! Card payments read while pending. Monzo settles one a day or more after
//! it was made, and its amount may change then (a tip, the day's exchange
//! rate), or it is declined; an authorisation the merchant never collects is
//! released after about a week, and leaves Monzo's list without a trace.
//! So each run reads again from the earliest payment still pending, and one
//! that two such passes in a row, read to their end, no longer list was
//! released (two: a page Monzo served short once must not delete a payment).
//!
//! Kept per account in state, written with each page's checkpoint, so that
//! a pass cut short starts again from what it had not yet read.

use crate::string;
use inlet_plugin_sdk::Timestamp;
use inlet_plugin_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Only payments made at most this long ago are waited for.
const READ_AGAIN_DAYS: i64 = 14;
/// The newest are kept up to about this many bytes, within the 64 KiB a
/// state value may hold: a business account may have more pending at once.
const MAX_KEPT_BYTES: usize = 56 * 1024;

/// A transaction read while pending.
#[derive(Serialize, Deserialize, PartialEq)]
struct Pending {
    created: String,
    /// The last complete pass from the earliest pending one did not list it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    missed: bool,
}

pub struct PendingPayments {
    key: String,
    /// Id → the payment, of those made since `window_start`.
    payments: BTreeMap<String, Pending>,
    window_start: Timestamp,
    /// Where the earliest pending one was kept before this map (one value,
    /// no ids): read from there once, then forgotten.
    earlier_key: String,
    earlier_from: Option<Timestamp>,
    /// Ids this pass has read.
    listed: BTreeSet<String>,
    /// Differs from what is stored: [`PendingPayments::save`] writes it.
    changed: bool,
}

impl PendingPayments {
    pub fn load(account: &str) -> Result<PendingPayments, PluginError> {
        let key = format!("transactions.pending.{account}");
        let window_start = time::now() - READ_AGAIN_DAYS * time::DAY_MS;
        let stored: Option<BTreeMap<String, Pending>> = state::get_json(&key)?;
        let earlier_key = format!("transactions.earliest_pending.{account}");
        let earlier_from = match stored {
            Some(_) => None,
            None => state::get(&earlier_key).and_then(|created| time::parse_rfc3339(&created).ok()),
        };
        let mut payments = stored.unwrap_or_default();
        let stored_count = payments.len();
        payments.retain(|_, payment| made_at(payment).is_some_and(|at| at >= window_start));
        let changed = payments.len() != stored_count || earlier_from.is_some();
        Ok(PendingPayments { key, payments, window_start, earlier_key, earlier_from, listed: BTreeSet::new(), changed })
    }

    /// Where a pass that reads them again starts: a second before the
    /// earliest, so that it is read whether Monzo's `since` takes its own
    /// time in or not. `None` when nothing is pending.
    pub fn read_from(&self) -> Option<Timestamp> {
        let earliest = self.payments.values().filter_map(made_at).chain(self.earlier_from).min()?;
        Some(earliest - 1_000)
    }

    /// A page of transactions read: those pending (and recent enough) are
    /// kept, the others forgotten (settled, declined).
    pub fn saw_page(&mut self, transactions: &[Value]) -> Result<(), PluginError> {
        for transaction in transactions {
            let id = string(transaction, "id")?;
            let created = string(transaction, "created")?;
            let recent = time::parse_rfc3339(&created).is_ok_and(|at| at >= self.window_start);
            let read = Pending { created, missed: false };
            let kept = self.payments.get(&id);
            if is_pending(transaction) && recent {
                self.changed |= kept != Some(&read);
                self.payments.insert(id.clone(), read);
            } else {
                self.changed |= kept.is_some();
                self.payments.remove(&id);
            }
            self.listed.insert(id);
        }
        Ok(())
    }

    /// A pass that started at `from` has read to its end. Those it should
    /// have listed and did not are marked; those marked already (the last
    /// such pass missed them too) were released, and are returned.
    pub fn pass_ended(&mut self, from: Timestamp) -> Vec<String> {
        let mut released = Vec::new();
        for (id, payment) in &mut self.payments {
            let checked = made_at(payment).is_some_and(|at| at >= from);
            if !checked || self.listed.contains(id) {
                continue;
            }
            if payment.missed {
                released.push(id.clone());
            }
            payment.missed = true;
            self.changed = true;
        }
        self.payments.retain(|id, _| !released.contains(id));
        released
    }

    /// Kept with the next checkpoint, if anything changed since it was
    /// loaded or last saved; says whether it was.
    pub fn save(&mut self) -> Result<bool, PluginError> {
        if !self.changed {
            return Ok(false);
        }
        // `"id":{"created":"...","missed":true},` and a margin for escapes.
        let size = |id: &String, payment: &Pending| id.len() + payment.created.len() + 40;
        let mut bytes: usize = self.payments.iter().map(|(id, payment)| size(id, payment)).sum();
        if bytes > MAX_KEPT_BYTES {
            let mut by_age: Vec<(Timestamp, String)> =
                self.payments.iter().map(|(id, p)| (made_at(p).unwrap_or_default(), id.clone())).collect();
            by_age.sort();
            let mut dropped = 0;
            for (_, id) in by_age {
                if bytes <= MAX_KEPT_BYTES {
                    break;
                }
                let payment = self.payments.remove(&id).expect("listed above");
                bytes -= size(&id, &payment);
                dropped += 1;
            }
            log::warn(format!("{dropped} older pending payments are not read again: too many are pending"));
        }
        state::set_json(&self.key, &self.payments)?;
        if self.earlier_from.take().is_some() {
            state::delete(&self.earlier_key);
        }
        self.changed = false;
        Ok(true)
    }
}

fn made_at(payment: &Pending) -> Option<Timestamp> {
    time::parse_rfc3339(&payment.created).ok()
}

/// Authorised, not yet settled, and not declined (a declined one never settles).
pub fn is_pending(transaction: &Value) -> bool {
    transaction["settled"].as_str().is_some_and(str::is_empty)
        && transaction["decline_reason"].as_str().is_none_or(str::is_empty)
}
