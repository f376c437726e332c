//! GoCardless Bank Account Data (formerly Nordigen): the accounts, balances
//! and transactions of the bank accounts a group has linked through
//! GoCardless's open-banking API (<https://developer.gocardless.com/bank-account-data>).
//!
//! The host exchanges the group's secret id and key for access tokens; the
//! plugin only sends requests marked authenticated. Which accounts to read
//! comes from the group's requisitions (one per bank connection): the
//! accounts of every linked one. Banks allow as few as 4 calls a day per
//! account to each of `details`, `balances` and `transactions`, which the
//! manifest declares as quotas; an account whose calls are spent is skipped
//! until they come back (see [`bank::each_account`]).

mod accounts;
mod balances;
mod bank;
mod money;
mod transactions;

use inlet_plugin_sdk::prelude::*;
use serde::Deserialize;
use serde_json::json;

const HOST: &str = "bankaccountdata.gocardless.com";
const API: &str = "https://bankaccountdata.gocardless.com/api/v2";
/// GoCardless's usual `max_historical_days` for an end-user agreement: a
/// first run reads this far back.
const DEFAULT_BACKFILL_DAYS: u32 = 90;
/// Banks behind GoCardless may allow as few as this many calls a day per
/// account to each of the account-data endpoints.
const DAILY_CALLS: u32 = 4;
/// Every 6 hours spends the 4 calls a day an account allows, and no more.
const EVERY_SIX_HOURS: u32 = 6 * 3_600;
/// GoCardless's own limit on account endpoints, across the company's
/// tokens: about 100 requests a minute.
const REQUESTS_PER_MINUTE: u32 = 100;

struct GoCardless;

/// The config every instance type takes.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"account_ids": ["7e944232-bda9-40bc-b784-660c7ab5fe78"]}))]
pub struct Config {
    /// Only these GoCardless account ids (default: every account of every
    /// linked bank connection).
    #[serde(default)]
    account_ids: Vec<String>,
}

fn instance_type(id: &str, name: &str, description: &str) -> InstanceType {
    InstanceType::new(id, name)
        .description(description)
        .every(EVERY_SIX_HOURS)
        .host(HOST)
        .config::<Config>()
        .backfill_days(DEFAULT_BACKFILL_DAYS)
}

/// The quota of one account-data endpoint: each account's calls counted apart.
fn daily_quota(endpoint: &str) -> Quota {
    Quota {
        id: endpoint.into(),
        url: format!("{API}/accounts/*/{endpoint}/"),
        requests: DAILY_CALLS,
        period: QuotaPeriod::Day,
    }
}

impl Plugin for GoCardless {
    fn describe() -> Manifest {
        Manifest::new("gocardless", "GoCardless Bank Account Data", env!("CARGO_PKG_VERSION"))
            .description("Accounts, balances and transactions of bank accounts linked through GoCardless open banking")
            .auth(AuthKind::secret_exchange(
                "Secret ID and secret key (GoCardless Bank Account Data → Developers → User secrets)",
                format!("{API}/token/new/"),
                format!("{API}/token/refresh/"),
                Some(&format!("{API}/")),
            ))
            .rate_limit(REQUESTS_PER_MINUTE, 60)
            .quota(daily_quota(accounts::ENDPOINT))
            .quota(daily_quota(balances::ENDPOINT))
            .quota(daily_quota(transactions::ENDPOINT))
            .instance_type(instance_type(
                "accounts",
                "Accounts",
                "Each linked bank account: IBAN, currency, owner, product and institution",
            ))
            .instance_type(instance_type(
                "balances",
                "Balances",
                "Each account's balances of each type (booked, available...), one event per day",
            ))
            .instance_type(instance_type(
                "transactions",
                "Transactions",
                "Booked and pending transactions; a pending one is replaced when it books",
            ))
    }

    fn fetch(request: FetchRequest) -> Result<FetchSummary, PluginError> {
        let config: Config = parse_config(&request.config)?;
        let linked = bank::linked_accounts(&config)?;
        dispatch!(request.instance_type, {
            "accounts" => accounts::fetch(&linked),
            "balances" => balances::fetch(&linked),
            "transactions" => transactions::fetch(&linked, &request.mode),
        })
    }

    fn process(batch: RawBatch) -> Result<Records, PluginError> {
        if let Some(removed) = snapshot::removed(&batch) {
            return removed;
        }
        let payload: serde_json::Value = serde_json::from_str(&batch.payload)?;
        match batch.kind.as_str() {
            accounts::BATCH => accounts::process(&payload),
            balances::BATCH => balances::process(&payload),
            transactions::BATCH => transactions::process(&payload),
            other => Err(PluginError::Permanent(format!("unknown batch kind {other:?}"))),
        }
    }
}

inlet_plugin_sdk::export_plugin!(GoCardless);
