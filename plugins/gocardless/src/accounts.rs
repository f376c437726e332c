//! The `accounts` instance type: each linked account as an object, from
//! `GET /accounts/{id}/` (IBAN, institution, status, owner) and
//! `GET /accounts/{id}/details/` (`{account: {resourceId, iban, currency,
//! ownerName, name, product, cashAccountType}}`). The accounts are those of
//! the linked requisitions, so one no longer linked (its connection was
//! replaced or removed) is tombstoned after a run that read the list whole.
//! Each is keyed by its [`Linked::key`], which a reconnect keeps: the same
//! bank account linked again stays one object.

use crate::bank::{self, Linked};
use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::snapshot::Snapshot;
use serde_json::{Value, json};

/// The quota-limited endpoint this instance type calls.
pub const ENDPOINT: &str = "details";
pub const BATCH: &str = "account";
const KIND: &str = "account";

pub fn fetch(accounts: &[Linked]) -> Result<FetchSummary, PluginError> {
    let summary = bank::each_account(accounts, |account| {
        // Details first: when the bank has no calls left for them, the
        // account's record stays as it was rather than losing them.
        let details = bank::get(account, Some(ENDPOINT), &[])?;
        let metadata = bank::get(account, None, &[])?;
        emit_json(BATCH, &json!({ "key": account.key, "metadata": metadata, "details": details["account"] }))?;
        checkpoint()?;
        Ok(1)
    })?;
    // Which accounts exist comes from the requisitions, read whole whether
    // or not each account's details could be.
    let mut linked = Snapshot::objects("accounts", KIND);
    linked.saw_all(accounts.iter().map(|account| account.key.clone()));
    let removed = linked.complete()?;
    log::info(format!("{} accounts read, {removed} no longer linked", summary.items_seen));
    Ok(summary)
}

/// The account's metadata with its details under `details`, named by the
/// bank's name for it (or its product, or its IBAN). `last_accessed` is left
/// out: it changes on every read, which would make every run an update.
pub fn process(payload: &Value) -> Result<Records, PluginError> {
    let (metadata, details) = (&payload["metadata"], &payload["details"]);
    let id =
        metadata["id"].as_str().ok_or_else(|| PluginError::Permanent("GoCardless account without an id".into()))?;
    let mut data = metadata.clone();
    if let Some(fields) = data.as_object_mut() {
        fields.remove("last_accessed");
        fields.insert("details".into(), details.clone());
    }
    // Batches stored before keys were kept have none: the id was the key.
    let key = payload["key"].as_str().unwrap_or(id);
    let object = ObjectRecord::new(KIND, key);
    let name = [&details["name"], &details["product"], &metadata["iban"], &details["iban"]]
        .into_iter()
        .find_map(Value::as_str);
    let object = match name {
        Some(name) => object.name(name),
        None => object,
    };
    Ok(Records { objects: vec![object.data(&data)?], ..Records::default() })
}
