//! Monzo: accounts, balances, pots and transactions from the Monzo API
//! (<https://docs.monzo.com>). Amounts stay in minor units with their currency.

use inlet_plugin_sdk::Timestamp;
use inlet_plugin_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const API: &str = "https://api.monzo.com";
/// Monzo's maximum page size for /transactions.
const PAGE_SIZE: usize = 100;
/// Monzo serves only the last 90 days once a login is older than 5 minutes.
const DEFAULT_BACKFILL_DAYS: u32 = 89;
/// A card payment settles a day or more after it was made, and may change
/// then (a tip, the day's exchange rate) or be declined; an authorisation
/// the merchant never collects is released after about a week, and leaves
/// the list. A transaction read while pending is read again by each run
/// until it has settled or left, if it was made at most this long ago.
const PENDING_READ_AGAIN_DAYS: i64 = 14;
/// The batch that lists the transactions gone from Monzo's list while pending.
const RELEASED_BATCH: &str = "released-transactions";

struct Monzo;

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"since": "2026-09-01T00:00:00Z"}))]
struct Config {
    /// Only these accounts (default: every open account).
    #[serde(default)]
    account_ids: Vec<String>,
    /// How far back the first transactions run reaches (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    since: Option<String>,
}

fn instance_type(id: &str, name: &str, description: &str, every_seconds: u32) -> InstanceType {
    InstanceType::new(id, name)
        .description(description)
        .every(every_seconds)
        .host("api.monzo.com")
        .config::<Config>()
        .backfill_days(DEFAULT_BACKFILL_DAYS)
}

impl Plugin for Monzo {
    fn describe() -> Manifest {
        Manifest::new("monzo", "Monzo", env!("CARGO_PKG_VERSION"))
            .description("Accounts, balances, pots and transactions from a Monzo account")
            .auth(AuthKind::Oauth2(Oauth2Auth {
                authorize_url: "https://auth.monzo.com/".into(),
                token_url: "https://api.monzo.com/oauth2/token".into(),
                scopes: vec![],
                refresh_token_rotates: true,
                pkce: false,
            }))
            .instance_type(instance_type("accounts", "Accounts", "Your Monzo accounts", 86_400))
            .instance_type(instance_type("balances", "Balances", "Current balance of each account", 3_600))
            .instance_type(instance_type("pots", "Pots", "Savings pots and their balances", 3_600))
            .instance_type(instance_type("transactions", "Transactions", "Card payments, transfers and more", 900))
    }

    fn fetch(request: FetchRequest) -> Result<FetchSummary, PluginError> {
        let config: Config = parse_config(&request.config)?;
        let accounts = list_accounts(&config)?;
        let mut summary = FetchSummary::default();
        dispatch!(request.instance_type, {
            "accounts" => {
                summary.items_seen = accounts.len() as u64;
                emit_json("accounts", &json!({ "accounts": accounts }))
            },
            "balances" => accounts.iter().try_for_each(|account| {
                let balance: Value = get("/balance").query("account_id", account_id(account)?).send_json()?;
                summary.items_seen += 1;
                emit_json("balance", &json!({ "account_id": account_id(account)?, "balance": balance }))
            }),
            "pots" => accounts.iter().try_for_each(|account| {
                let page: Value = get("/pots").query("current_account_id", account_id(account)?).send_json()?;
                summary.items_seen += page["pots"].as_array().map_or(0, Vec::len) as u64;
                emit_json("pots", &json!({ "account_id": account_id(account)?, "pots": page["pots"] }))
            }),
            "transactions" => accounts.iter().try_for_each(|account| {
                summary.items_seen += fetch_transactions(account_id(account)?, &config, &request, summary.items_seen)?;
                Ok(())
            }),
        })?;
        Ok(summary)
    }

    fn process(batch: RawBatch) -> Result<Records, PluginError> {
        let payload: Value = serde_json::from_str(&batch.payload)?;
        let mut records = Records::default();
        match batch.kind.as_str() {
            "accounts" => {
                for account in array(&payload["accounts"]) {
                    let object = ObjectRecord::new("account", string(account, "id")?);
                    let object = match account["description"].as_str() {
                        Some(description) => object.name(description),
                        None => object,
                    };
                    records.objects.push(object.data(account)?);
                }
            }
            "balance" => {
                let balance = &payload["balance"];
                records.objects.push(ObjectRecord::new("balance", string(&payload, "account_id")?).data(&json!({
                    "balance": balance["balance"],
                    "total_balance": balance["total_balance"],
                    "spend_today": balance["spend_today"],
                    "currency": balance["currency"],
                }))?);
            }
            "pots" => {
                for pot in array(&payload["pots"]) {
                    let external_id = string(pot, "id")?;
                    if pot["deleted"].as_bool() == Some(true) {
                        records.deleted.push(Tombstone::object("pot", external_id));
                        continue;
                    }
                    let object = ObjectRecord::new("pot", external_id);
                    let object = match pot["name"].as_str() {
                        Some(name) => object.name(name),
                        None => object,
                    };
                    records.objects.push(object.data(pot)?);
                }
            }
            "transactions" => {
                let account = string(&payload, "account_id")?;
                for transaction in array(&payload["transactions"]) {
                    process_transaction(&account, transaction, &mut records)?;
                }
            }
            RELEASED_BATCH => {
                for id in array(&payload["transactions"]).filter_map(Value::as_str) {
                    records.deleted.push(Tombstone::event("transaction", id));
                    records.deleted.push(Tombstone::block("merchant", id));
                }
            }
            other => {
                return Err(PluginError::Permanent(format!("unknown batch kind {other:?}")));
            }
        }
        Ok(records)
    }
}

inlet_plugin_sdk::export_plugin!(Monzo);

fn get(path: &str) -> http::Request {
    http::get(format!("{API}{path}")).authenticated()
}

fn list_accounts(config: &Config) -> Result<Vec<Value>, PluginError> {
    let response: Value = get("/accounts").send_json()?;
    Ok(array(&response["accounts"])
        .filter(|a| a["closed"].as_bool() != Some(true))
        .filter(|a| {
            config.account_ids.is_empty()
                || a["id"].as_str().is_some_and(|id| config.account_ids.iter().any(|c| c == id))
        })
        .cloned()
        .collect())
}

/// Page forward from the cursor (the last transaction id stored for the
/// account), or from the backfill start on a first run; from the earliest
/// transaction pending at the last read if there is one, so that it is read
/// again once settled. Such a pass, read to its end, deletes what was
/// pending at the last read and is no longer listed: its authorisation was
/// released. Each page is emitted and checkpointed together with
/// the cursor that points past it and the earliest pending transaction (of
/// the last [`PENDING_READ_AGAIN_DAYS`]) read so far, or kept from before:
/// a pass cut short starts again where neither has been passed. A backfill
/// resumed after its process was killed continues after the last page it
/// stored. `done_before` counts earlier accounts' transactions, for progress.
fn fetch_transactions(
    account: &str,
    config: &Config,
    request: &FetchRequest,
    done_before: u64,
) -> Result<u64, PluginError> {
    let cursor_key = format!("transactions.cursor.{account}");
    let pending_key = format!("transactions.earliest_pending.{account}");
    // Id → created of each transaction pending when last read (in the window).
    let pending_ids_key = format!("transactions.pending.{account}");
    let recorded_ids: BTreeMap<String, String> = state::get_json(&pending_ids_key)?.unwrap_or_default();
    let progress: backfill::Progress<String> = backfill::Progress::new(format!("transactions.{account}"));
    let resumed = progress.resume_from(request)?;
    let served_from = time::now() - i64::from(DEFAULT_BACKFILL_DAYS) * time::DAY_MS;
    let recorded_pending = state::get(&pending_key);
    let (since, from_pending) = match (&request.mode, state::get(&cursor_key), &recorded_pending) {
        (FetchMode::Backfill(from), _, _) => (resumed.unwrap_or_else(|| time::to_rfc3339(*from)), false),
        // Before the cursor, so this reads everything after it too; a second
        // early, so that the pending one is read whether Monzo's `since`
        // takes its own time in or not.
        (FetchMode::Incremental, Some(_), Some(pending)) => {
            let from = time::parse_rfc3339(pending).map_or(served_from, |at| (at - 1_000).max(served_from));
            (time::to_rfc3339(from), true)
        }
        (FetchMode::Incremental, Some(last_id), None) => (last_id, false),
        (FetchMode::Incremental, None, _) => match &config.since {
            Some(since) => {
                time::parse_rfc3339(since)
                    .map_err(|_| PluginError::InvalidConfig(format!("since: {since:?} is not an RFC 3339 time")))?;
                (since.clone(), false)
            }
            None => (time::to_rfc3339(served_from), false),
        },
    };
    let window_start = time::now() - PENDING_READ_AGAIN_DAYS * time::DAY_MS;
    let pending_at = |created: &str| time::parse_rfc3339(created).ok().filter(|at| *at >= window_start);
    // A pass that does not start from the pending one recorded keeps it.
    let mut earliest_pending: Option<(Timestamp, String)> =
        recorded_pending.filter(|_| !from_pending).and_then(|created| pending_at(&created).map(|at| (at, created)));
    let first = get("/transactions")
        .query("account_id", account)
        .query("since", &since)
        .query("limit", PAGE_SIZE.to_string())
        .query("expand[]", "merchant");
    // A full page may have more after it: ask again from its last id.
    let next = |page: &Value| {
        let transactions = page["transactions"].as_array()?;
        let last = transactions.last().filter(|_| transactions.len() >= PAGE_SIZE)?;
        last["id"].as_str().map(str::to_string)
    };
    let mut seen = 0u64;
    let (mut listed, mut pending_now) = (BTreeSet::new(), BTreeMap::new());
    for page in paginate::by_cursor(first, "since", next) {
        let page: Value = page?;
        let transactions = page["transactions"].as_array().cloned().unwrap_or_default();
        let Some(last) = transactions.last() else {
            // Nothing from the earliest pending one on: it is gone upstream.
            if seen == 0 && from_pending {
                state::delete(&pending_key);
            }
            break;
        };
        let last_id = string(last, "id")?;
        state::set(&cursor_key, &last_id);
        for transaction in &transactions {
            listed.insert(string(transaction, "id")?);
        }
        for pending in transactions.iter().filter(|t| is_pending(t)) {
            let created = string(pending, "created")?;
            let Some(at) = pending_at(&created) else { continue };
            pending_now.insert(string(pending, "id")?, created.clone());
            if earliest_pending.as_ref().is_none_or(|(earliest, _)| at < *earliest) {
                earliest_pending = Some((at, created));
            }
        }
        match &earliest_pending {
            Some((_, created)) => state::set(&pending_key, created),
            None => state::delete(&pending_key),
        }
        progress.reached(request, last_id)?;
        seen += transactions.len() as u64;
        emit_json("transactions", &json!({ "account_id": account, "transactions": transactions }))?;
        checkpoint()?;
        log::progress(done_before + seen, None);
    }
    // Read whole from the earliest pending one: what was pending then and
    // is no longer listed was released. The rest not listed is kept.
    let checked_from = time::parse_rfc3339(&since).ok().filter(|_| from_pending);
    let (released, kept): (Vec<_>, Vec<_>) =
        (recorded_ids.iter()).filter(|(id, created)| !listed.contains(*id) && pending_at(created).is_some()).partition(
            |(_, created)| checked_from.is_some_and(|from| time::parse_rfc3339(created).is_ok_and(|at| at >= from)),
        );
    let still_pending: BTreeMap<String, String> =
        kept.into_iter().map(|(id, created)| (id.clone(), created.clone())).chain(pending_now).collect();
    if !released.is_empty() {
        let ids: Vec<&String> = released.iter().map(|(id, _)| *id).collect();
        log::info(format!("{} pending transactions of account {account} were released: deleted", ids.len()));
        emit_json(RELEASED_BATCH, &json!({ "account_id": account, "transactions": ids }))?;
    }
    if still_pending != recorded_ids {
        state::set_json(&pending_ids_key, &still_pending)?;
        checkpoint()?;
    }
    if from_pending {
        log::info(format!("{seen} transactions for account {account}, from the earliest pending ({since})"));
    } else {
        log::info(format!("{seen} new transactions for account {account}"));
    }
    Ok(seen)
}

fn process_transaction(account: &str, transaction: &Value, records: &mut Records) -> Result<(), PluginError> {
    let id = string(transaction, "id")?;
    let merchant = &transaction["merchant"];
    let merchant_id = merchant.as_str().or_else(|| merchant["id"].as_str()).map(str::to_string);
    let mut data = transaction.clone();
    if merchant.is_object() {
        // The merchant's details live in their own block; the event keeps its id.
        data["merchant"] = json!(merchant_id);
        records.blocks.push(BlockRecord::new("merchant", id.clone(), id.clone()).data(merchant)?);
    }
    let occurred_at = time::parse_rfc3339(&string(transaction, "created")?)?;
    let mut event = EventRecord::new("transaction", id, occurred_at).actor(account).data(&data)?;
    event.target = merchant_id;
    event.value = transaction["amount"].as_i64().map(|minor_units| minor_units as f64);
    event.unit = transaction["currency"].as_str().map(str::to_string);
    records.events.push(event);
    Ok(())
}

/// Authorised, not yet settled, and not declined (a declined one never settles).
fn is_pending(transaction: &Value) -> bool {
    transaction["settled"].as_str().is_some_and(str::is_empty)
        && transaction["decline_reason"].as_str().is_none_or(str::is_empty)
}

fn array(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

fn string(value: &Value, field: &str) -> Result<String, PluginError> {
    value[field]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| PluginError::Permanent(format!("upstream object has no string field {field:?}")))
}

fn account_id(account: &Value) -> Result<&str, PluginError> {
    account["id"].as_str().ok_or_else(|| PluginError::Permanent("account without an id".into()))
}
