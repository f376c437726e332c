//! The `balances` instance type: `GET /accounts/{id}/balances/` →
//! `{balances: [{balanceAmount: {amount, currency}, balanceType,
//! referenceDate, lastChangeDateTime}]}`.
//!
//! Balances are events, not objects: a balance is a measurement as of a
//! day, and keeping one per account, balance type and day gives the
//! account's history, which an object overwritten by each run would lose.
//! Reading the same day again (4 runs a day) updates that day's event, so
//! it holds the day's latest figure.

use crate::bank::{self, BatchAccount, Linked, with_account};
use crate::money;
use inlet_plugin_sdk::prelude::*;
use serde_json::{Value, json};

/// The quota-limited endpoint this instance type calls.
pub const ENDPOINT: &str = "balances";
pub const BATCH: &str = "balances";
const KIND: &str = "balance";

pub fn fetch(accounts: &[Linked]) -> Result<FetchSummary, PluginError> {
    let read_on = money::today().to_string();
    bank::each_account(accounts, |account| {
        let answer = bank::get(account, Some(ENDPOINT), &[])?;
        let balances = answer["balances"].as_array().cloned().unwrap_or_default();
        let batch =
            json!({ "account_id": account.id, "account_key": account.key, "read_on": read_on, "balances": balances });
        emit_json(BATCH, &batch)?;
        checkpoint()?;
        Ok(balances.len() as u64)
    })
}

/// One event per balance: external id `<account key>:<balanceType>:<day>` (the
/// balance's `referenceDate`, else the day it was read), at its last change
/// (else midnight UTC of that day), valued in minor units of its currency.
pub fn process(payload: &Value) -> Result<Records, PluginError> {
    let account = BatchAccount::of(payload);
    let read_on = payload["read_on"].as_str().unwrap_or_default();
    let mut records = Records::default();
    for balance in payload["balances"].as_array().into_iter().flatten() {
        let balance_type = balance["balanceType"].as_str().unwrap_or("unknown");
        let day = balance["referenceDate"].as_str().unwrap_or(read_on);
        let occurred_at = money::first_time(balance, &["lastChangeDateTime", "referenceDate"])
            .or_else(|| money::parse_day(read_on).map(money::midnight))
            .ok_or_else(|| PluginError::Permanent(format!("balance of account {} without a date", account.id)))?;
        let id = format!("{}:{balance_type}:{day}", account.key);
        let event = EventRecord::new(KIND, id, occurred_at).actor(account.key);
        let event = match money::minor_units(&balance["balanceAmount"]) {
            Some((value, currency)) => event.value(value, currency),
            None => event,
        };
        records.events.push(event.data(&with_account(balance, account.id))?);
    }
    Ok(records)
}
