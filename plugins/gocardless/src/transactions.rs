//! The `transactions` instance type: `GET /accounts/{id}/transactions/
//! ?date_from&date_to` → `{transactions: {booked: [...], pending: [...]}}`,
//! one request per account and run, each transaction an event.
//!
//! Booked transactions are keyed by the bank's `transactionId` (else its
//! `internalTransactionId`), scoped by account since banks number them
//! independently (by the account's key, which a reconnect keeps: see
//! [`bank::Linked::key`]). Pending ones often have no id, and when one books it may
//! come back under a new id, so a pending transaction cannot be matched
//! with the booked one it becomes. Instead pending transactions are
//! replaced on every read: each is keyed by a hash of its content under a
//! `pending:` prefix, and the pending ids the last read emitted that this
//! one does not list are tombstoned. When a payment books, the same read
//! lists it as booked and no longer as pending: its pending event is
//! deleted and the booked one created, so it is never counted twice.
//!
//! Banks book late, so each run reads again the week before the newest
//! booking date it has seen, and back to the earliest day of the pending
//! ones it last read (a hotel's pre-authorisation may book ten days later,
//! dated when it was made: a read that missed it would only delete its
//! pending event); a first run reads 90 days, GoCardless's usual
//! `max_historical_days`.

use crate::bank::{self, BatchAccount, Linked, Skip, with_account};
use crate::{DEFAULT_BACKFILL_DAYS, money};
use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::snapshot::Snapshot;
use inlet_plugin_sdk::state::Key;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The quota-limited endpoint this instance type calls.
pub const ENDPOINT: &str = "transactions";
pub const BATCH: &str = "transactions";
const KIND: &str = "transaction";
/// Days before the newest booking date that each run reads again.
const REREAD_DAYS: i64 = 7;

pub fn fetch(accounts: &[Linked], mode: &FetchMode) -> Result<FetchSummary, PluginError> {
    bank::each_account(accounts, |account| read(account, mode))
}

/// Read one account's window, emit it, and move its cursor and its pending
/// ids together (one checkpoint); a refused read leaves both as they were.
fn read(account: &Linked, mode: &FetchMode) -> Result<u64, Skip> {
    let newest_booked: Key<String> = Key::new(format!("transactions.{}.newest_booked", account.key));
    let earliest_pending: Key<String> = Key::new(format!("transactions.{}.earliest_pending", account.key));
    let known = newest_booked.get()?.as_deref().and_then(money::parse_day);
    let pending_since = earliest_pending.get()?.as_deref().and_then(money::parse_day);
    let today = money::today();
    let from = match (mode, known) {
        (FetchMode::Backfill(from), _) => money::day_of(*from),
        (FetchMode::Incremental, Some(newest)) => {
            let reread = money::add_days(newest.min(today), -REREAD_DAYS);
            // Not past what GoCardless serves, for a pending one that never books.
            let furthest = money::add_days(today, -i64::from(DEFAULT_BACKFILL_DAYS));
            pending_since.map_or(reread, |day| reread.min(day.max(furthest)))
        }
        (FetchMode::Incremental, None) => money::add_days(today, -i64::from(DEFAULT_BACKFILL_DAYS)),
    };
    let query = [("date_from", from.to_string()), ("date_to", today.to_string())];
    let answer = bank::get(account, Some(ENDPOINT), &query)?;
    let listed = |status: &str| answer["transactions"][status].as_array().cloned().unwrap_or_default();
    let (booked, pending) = (listed("booked"), listed("pending"));
    let read_on = today.to_string();
    let (id, key) = (&account.id, &account.key);
    emit_json(
        BATCH,
        &json!({ "account_id": id, "account_key": key, "read_on": read_on, "booked": booked, "pending": pending }),
    )?;

    let newest = booked.iter().filter_map(|item| item["bookingDate"].as_str().and_then(money::parse_day)).chain(known);
    if let Some(newest) = newest.max() {
        newest_booked.set(&newest.to_string())?;
    }
    let day =
        |item: &Value| ["valueDate", "bookingDate"].iter().find_map(|field| money::parse_day(item[*field].as_str()?));
    match pending.iter().filter_map(day).min() {
        Some(earliest) => earliest_pending.set(&earliest.to_string())?,
        None => earliest_pending.delete(),
    }
    let mut still_pending = Snapshot::events(format!("transactions.{key}.pending"), KIND);
    still_pending.saw_all(pending_ids(key, &pending));
    // Tombstones what stopped being pending, and checkpoints it all.
    still_pending.complete()?;
    Ok((booked.len() + pending.len()) as u64)
}

pub fn process(payload: &Value) -> Result<Records, PluginError> {
    let account = BatchAccount::of(payload);
    let read_on = payload["read_on"].as_str().unwrap_or_default();
    let listed = |status: &str| payload[status].as_array().cloned().unwrap_or_default();
    let (booked, pending) = (listed("booked"), listed("pending"));
    let mut records = Records::default();
    for item in &booked {
        records.events.push(event(&account, item, booked_id(account.key, item), "booked", read_on)?);
    }
    for (item, id) in pending.iter().zip(pending_ids(account.key, &pending)) {
        records.events.push(event(&account, item, id, "pending", read_on)?);
    }
    Ok(records)
}

/// A transaction by the account, at its booking (else value) time or date,
/// valued in minor units of its currency (negative for a debit), the bank's
/// fields as data with its status (`booked` or `pending`).
fn event(
    account: &BatchAccount,
    item: &Value,
    id: String,
    status: &str,
    read_on: &str,
) -> Result<EventRecord, PluginError> {
    let occurred_at = money::first_time(item, &["bookingDateTime", "bookingDate", "valueDateTime", "valueDate"])
        .or_else(|| money::parse_day(read_on).map(money::midnight))
        .ok_or_else(|| PluginError::Permanent(format!("transaction {id} has no date")))?;
    let event = EventRecord::new(KIND, id, occurred_at).actor(account.key);
    let event = match money::minor_units(&item["transactionAmount"]) {
        Some((value, currency)) => event.value(value, currency),
        None => event,
    };
    let mut data = with_account(item, account.id);
    if let Some(fields) = data.as_object_mut() {
        fields.insert("status".into(), json!(status));
    }
    event.data(&data)
}

/// `<account>:<transactionId>` (else its `internalTransactionId`); a bank
/// that gives neither gets a hash of the content, as pending ones do.
fn booked_id(account: &str, item: &Value) -> String {
    match ["transactionId", "internalTransactionId"].iter().find_map(|field| item[*field].as_str()) {
        Some(id) => format!("{account}:{id}"),
        None => format!("booked:{account}:{}", content_hash(account, item)),
    }
}

/// The external ids of one read's pending transactions, in order:
/// `pending:<account>:<hash of the content>`, with `.2`, `.3`... for the
/// second and third identical ones (two coffees of one price on one day).
fn pending_ids(account: &str, pending: &[Value]) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    pending
        .iter()
        .map(|item| {
            let hash = content_hash(account, item);
            let count = seen.entry(hash.clone()).or_insert(0);
            *count += 1;
            match *count {
                1 => format!("pending:{account}:{hash}"),
                n => format!("pending:{account}:{hash}.{n}"),
            }
        })
        .collect()
}

/// 64-bit FNV-1a of the account and the item's JSON (keys in order), in
/// hex: stable across builds and platforms, unlike `std`'s hasher.
fn content_hash(account: &str, item: &Value) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let text = format!("{account}\n{item}");
    let hash = text.bytes().fold(OFFSET, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME));
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_pending_transactions_are_told_apart_and_ids_are_stable() {
        let coffee = json!({"transactionAmount": {"amount": "-3.20", "currency": "EUR"}, "valueDate": "2026-09-01"});
        let taxi = json!({"transactionAmount": {"amount": "-18.00", "currency": "EUR"}, "valueDate": "2026-09-01"});
        let ids = pending_ids("acc", &[coffee.clone(), taxi, coffee]);
        assert_eq!(ids[2], format!("{}.2", ids[0]));
        assert_ne!(ids[0], ids[1]);
        assert!(ids[0].starts_with("pending:acc:"));
        assert_eq!(content_hash("acc", &json!({})), content_hash("acc", &json!({})));
        assert_ne!(content_hash("acc", &json!({})), content_hash("other", &json!({})));
    }

    #[test]
    fn booked_ids_prefer_the_bank_s_transaction_id() {
        assert_eq!(booked_id("acc", &json!({"transactionId": "t1", "internalTransactionId": "i1"})), "acc:t1");
        assert_eq!(booked_id("acc", &json!({"internalTransactionId": "i1"})), "acc:i1");
        assert!(booked_id("acc", &json!({"bookingDate": "2026-09-01"})).starts_with("booked:acc:"));
    }
}
