//! Monzo: accounts, balances, pots and transactions from the Monzo API
//! (<https://docs.monzo.com>). Amounts stay in minor units with their currency.

mod pending;

use inlet_plugin_sdk::prelude::*;
use pending::PendingPayments;
use serde::Deserialize;
use serde_json::{Value, json};

const API: &str = "https://api.monzo.com";
/// Monzo's maximum page size for /transactions.
const PAGE_SIZE: usize = 100;
/// Monzo serves only the last 90 days once a login is older than 5 minutes.
const DEFAULT_BACKFILL_DAYS: u32 = 89;
/// The batch that lists the payments released while pending (see [`pending`]).
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

/// Page forward from the cursor (after the last transaction stored for the
/// account, see [`position_after`]), or from the backfill start on a first
/// run; from the earliest payment still pending if there is one (see
/// [`pending`]), so that it is read again until it has settled or been
/// released. Each page is emitted and checkpointed together with the cursor
/// that points past it and the pending payments as that page left them: a
/// pass cut short starts again where neither has been passed. A backfill
/// resumed after its process was killed continues after the last page it
/// stored. `done_before` counts earlier accounts' transactions, for progress.
fn fetch_transactions(
    account: &str,
    config: &Config,
    request: &FetchRequest,
    done_before: u64,
) -> Result<u64, PluginError> {
    let cursor_key = format!("transactions.cursor.{account}");
    let mut pending = PendingPayments::load(account)?;
    let progress: backfill::Progress<String> = backfill::Progress::new(format!("transactions.{account}"));
    let resumed = progress.resume_from(request)?;
    let served_from = time::now() - i64::from(DEFAULT_BACKFILL_DAYS) * time::DAY_MS;
    let (since, pending_from) = match (&request.mode, state::get(&cursor_key), pending.read_from()) {
        (FetchMode::Backfill(from), _, _) => (resumed.unwrap_or_else(|| time::to_rfc3339(*from)), None),
        // Before the cursor, so this reads everything after it too.
        (FetchMode::Incremental, Some(_), Some(from)) => {
            let from = from.max(served_from);
            (time::to_rfc3339(from), Some(from))
        }
        (FetchMode::Incremental, Some(cursor), None) => match time::parse_rfc3339(&cursor) {
            // After a pending payment (see `position_after`), but not before what Monzo serves.
            Ok(at) => (time::to_rfc3339(at.max(served_from)), None),
            Err(_) => (cursor, None),
        },
        (FetchMode::Incremental, None, _) => match &config.since {
            Some(since) => {
                time::parse_rfc3339(since)
                    .map_err(|_| PluginError::InvalidConfig(format!("since: {since:?} is not an RFC 3339 time")))?;
                (since.clone(), None)
            }
            None => (time::to_rfc3339(served_from), None),
        },
    };
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
    for page in paginate::by_cursor(first, "since", next) {
        let page: Value = page?;
        // An answer without the list must not pass for the end of it: the
        // pending payments it did not list would count as released.
        let transactions = page["transactions"].as_array().cloned().ok_or_else(|| {
            PluginError::Transient(format!("Monzo answered transactions for account {account} without a list"))
        })?;
        let Some(last) = transactions.last() else { break };
        let position = position_after(last)?;
        state::set(&cursor_key, &position);
        pending.saw_page(&transactions)?;
        pending.save()?;
        progress.reached(request, position)?;
        seen += transactions.len() as u64;
        emit_json("transactions", &json!({ "account_id": account, "transactions": transactions }))?;
        checkpoint()?;
        log::progress(done_before + seen, None);
    }
    if let Some(from) = pending_from {
        let released = pending.pass_ended(from);
        if !released.is_empty() {
            log::info(format!("{} pending payments of account {account} were released", released.len()));
            emit_json(RELEASED_BATCH, &json!({ "transactions": released }))?;
        }
        // Marks and releases are kept now: a later account's pass may fail.
        if pending.save()? {
            checkpoint()?;
        }
        log::info(format!("{seen} transactions for account {account}, from the earliest pending ({since})"));
    } else {
        log::info(format!("{seen} new transactions for account {account}"));
    }
    Ok(seen)
}

/// Where a read goes on from after `last`: its id, or, for a payment still
/// pending, a second before it was made. Monzo drops a pending payment whose
/// authorisation is released (one held for weeks, too, which is no longer
/// waited for), and an id it no longer has cannot be read after. Reading the
/// pending one again is harmless.
fn position_after(last: &Value) -> Result<String, PluginError> {
    if pending::is_pending(last) {
        let made = time::parse_rfc3339(&string(last, "created")?)?;
        return Ok(time::to_rfc3339(made - 1_000));
    }
    string(last, "id")
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
