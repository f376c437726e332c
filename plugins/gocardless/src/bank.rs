//! What every instance type shares: which accounts the group has linked
//! (from its requisitions), the account endpoints and what their refusals
//! mean, and reading each account in turn while skipping the ones whose
//! daily calls are spent.

use crate::{API, Config, DAILY_CALLS};
use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::state::Key;
use inlet_plugin_sdk::{RateLimited, Timestamp};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;

/// A requisition's status once the end user has linked their accounts.
const LINKED: &str = "LN";
/// ... and once its end-user agreement ran out (usually after 90 days).
const EXPIRED: &str = "EX";
/// Requisitions per page.
const PAGE_SIZE: &str = "100";

/// An account of a linked requisition, and the bank that holds it.
pub struct Linked {
    /// GoCardless's id for the account, which is the requisition's: a
    /// connection made again gives the same bank account a new one.
    pub id: String,
    /// GoCardless's institution id, e.g. `SANDBOXFINANCE_SFIN0000`.
    pub institution: String,
    /// What the account's records and cursors are keyed by, the same
    /// through every connection (see [`account_key`]).
    pub key: String,
    /// The other accounts of its requisition.
    siblings: Vec<String>,
}

#[derive(Deserialize)]
struct RequisitionPage {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    results: Vec<Requisition>,
}

#[derive(Deserialize)]
struct Requisition {
    #[serde(default)]
    status: String,
    #[serde(default)]
    institution_id: String,
    #[serde(default)]
    accounts: Vec<String>,
}

/// The accounts of every linked requisition (each once), narrowed to the
/// config's `account_ids`. None linked is the group's to fix: the bank must
/// be connected (again), so the group needs reconnecting.
pub fn linked_accounts(config: &Config) -> Result<Vec<Linked>, PluginError> {
    let requisitions = requisitions()?;
    let mut linked: Vec<Linked> = Vec::new();
    for requisition in requisitions.iter().filter(|r| r.status == LINKED) {
        for id in &requisition.accounts {
            if !linked.iter().any(|account| &account.id == id) {
                let institution = requisition.institution_id.clone();
                let siblings = requisition.accounts.iter().filter(|other| *other != id).cloned().collect();
                linked.push(Linked { id: id.clone(), institution, key: String::new(), siblings });
            }
        }
    }
    if linked.is_empty() {
        return Err(not_linked(&requisitions));
    }
    if let Some(unknown) = config.account_ids.iter().find(|id| !linked.iter().any(|account| &account.id == *id)) {
        let known: Vec<&str> = linked.iter().map(|account| account.id.as_str()).collect();
        return Err(PluginError::InvalidConfig(format!(
            "config.account_ids: {unknown:?} is not an account of a linked bank connection (those are {})",
            known.join(", ")
        )));
    }
    if !config.account_ids.is_empty() {
        linked.retain(|account| config.account_ids.contains(&account.id));
    }
    for account in &mut linked {
        account.key = account_key(account)?;
    }
    Ok(linked)
}

/// The key of an account's records: its id as this integration first read
/// it, kept for the same bank account (institution and IBAN) read through a
/// later connection. GoCardless gives every requisition new account ids, and
/// access lasts 90 days at most, so without this each reconnect would store
/// the account's transactions again under the new id and strand its
/// pending ones. An account without an IBAN, or whose IBAN another account
/// of its requisition shares (currency pockets of one account), is keyed by
/// its id: the IBAN cannot tell those apart.
fn account_key(account: &Linked) -> Result<String, PluginError> {
    let known: Key<String> = Key::new(format!("account_keys.{}", account.id));
    if let Some(key) = known.get()? {
        return Ok(key);
    }
    let key = match iban_of(account, &account.id)? {
        Some(iban) if !shared_by_a_sibling(account, &iban)? => {
            let of_iban: Key<String> = Key::new(format!("account_keys.{}.{iban}", account.institution));
            let key = of_iban.get()?.unwrap_or_else(|| account.id.clone());
            of_iban.set(&key)?;
            key
        }
        _ => account.id.clone(),
    };
    known.set(&key)?;
    Ok(key)
}

fn shared_by_a_sibling(account: &Linked, iban: &str) -> Result<bool, PluginError> {
    for sibling in &account.siblings {
        if iban_of(account, sibling)?.as_deref() == Some(iban) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The IBAN of `id`, an account of `account`'s requisition, from its
/// metadata (not one of the bank's counted endpoints), kept once read.
fn iban_of(account: &Linked, id: &str) -> Result<Option<String>, PluginError> {
    let kept: Key<String> = Key::new(format!("account_ibans.{id}"));
    if let Some(iban) = kept.get()? {
        return Ok(Some(iban).filter(|iban| !iban.is_empty()));
    }
    let of =
        Linked { id: id.to_string(), institution: account.institution.clone(), key: String::new(), siblings: vec![] };
    let metadata = match get(&of, None, &[]) {
        Ok(metadata) => metadata,
        Err(Skip::Failed(error)) => return Err(error),
        Err(Skip::Refused(refusal)) => {
            let seconds = ((refusal.until - time::now()) / 1000).clamp(1, i64::from(u32::MAX));
            let retry_after_seconds = u32::try_from(seconds).unwrap_or(u32::MAX);
            return Err(PluginError::RateLimited(RateLimited { retry_after_seconds, message: refusal.reason }));
        }
    };
    let iban = metadata["iban"].as_str().unwrap_or_default().to_string();
    kept.set(&iban)?;
    Ok(Some(iban).filter(|iban| !iban.is_empty()))
}

/// Every requisition of the group: `GET /requisitions/`, following `next`.
fn requisitions() -> Result<Vec<Requisition>, PluginError> {
    let first = http::get(format!("{API}/requisitions/")).authenticated().query("limit", PAGE_SIZE);
    let mut request = first.clone();
    let mut asked = BTreeSet::new();
    let mut requisitions = Vec::new();
    loop {
        let page: RequisitionPage = request.send_json()?;
        requisitions.extend(page.results);
        // A `next` seen before would page forever.
        match page.next.filter(|next| !next.is_empty()) {
            Some(next) if asked.insert(next.clone()) => request = first.clone().with_url(next),
            _ => return Ok(requisitions),
        }
    }
}

/// Why no account can be read: an agreement that expired, or a connection
/// never finished.
fn not_linked(requisitions: &[Requisition]) -> PluginError {
    let institutions = |status: &str| {
        let names: BTreeSet<&str> =
            requisitions.iter().filter(|r| r.status == status).map(|r| r.institution_id.as_str()).collect();
        names.into_iter().collect::<Vec<_>>().join(", ")
    };
    let expired = institutions(EXPIRED);
    if !expired.is_empty() {
        return PluginError::Unauthorized(format!(
            "the bank connection (end-user agreement for {expired}) expired: connect the bank again"
        ));
    }
    if requisitions.is_empty() {
        return PluginError::Unauthorized(
            "no bank is connected to this group yet: connect one with `inlet groups connect-bank`".into(),
        );
    }
    let statuses: BTreeSet<&str> = requisitions.iter().map(|r| r.status.as_str()).collect();
    PluginError::Unauthorized(format!(
        "no bank connection of this group is linked (requisition status {}): connect the bank again",
        statuses.into_iter().collect::<Vec<_>>().join(", ")
    ))
}

/// The account's calls to an endpoint are spent until `until`.
pub struct Refusal {
    pub until: Timestamp,
    /// Shown to the operator.
    pub reason: String,
}

impl Refusal {
    fn new(account: &Linked, endpoint: &str, limit: u32, seconds: u32) -> Refusal {
        let until = time::now() + i64::from(seconds) * 1000;
        let reason = format!(
            "account {}'s bank ({}) allows {limit} {endpoint} calls a day; the next is possible at {}",
            account.id,
            account.institution,
            time::to_rfc3339(until)
        );
        Refusal { until, reason }
    }
}

/// Why an account was not read: its calls are spent for now (the others are
/// read all the same), or a failure that ends the run.
pub enum Skip {
    Refused(Refusal),
    Failed(PluginError),
}

impl From<PluginError> for Skip {
    fn from(error: PluginError) -> Self {
        Skip::Failed(error)
    }
}

impl From<serde_json::Error> for Skip {
    fn from(error: serde_json::Error) -> Self {
        Skip::Failed(error.into())
    }
}

/// Read each account with `read` (which answers how many items it saw).
/// An account whose calls are spent is skipped, keeping its cursor, and
/// the others are read. When every account was refused, the run still
/// succeeds (nothing failed: the bank allows no more today), holding the
/// next run back until the first of them can be read again. When only some
/// were, the next run keeps to the schedule, so as not to delay the others,
/// and the summary's note says which were skipped.
pub fn each_account(
    accounts: &[Linked],
    mut read: impl FnMut(&Linked) -> Result<u64, Skip>,
) -> Result<FetchSummary, PluginError> {
    let mut summary = FetchSummary::default();
    let mut refused: Vec<Refusal> = Vec::new();
    for (done, account) in accounts.iter().enumerate() {
        match read(account) {
            Ok(items) => summary.items_seen += items,
            Err(Skip::Refused(refusal)) => {
                log::warn(&refusal.reason);
                refused.push(refusal);
            }
            Err(Skip::Failed(error)) => return Err(error),
        }
        log::progress(done as u64 + 1, Some(accounts.len() as u64));
    }
    let Some(first) = refused.iter().min_by_key(|refusal| refusal.until) else { return Ok(summary) };
    if refused.len() == accounts.len() {
        return Ok(summary.not_before(first.until, first.reason.clone()));
    }
    let skipped: Vec<&str> = refused.iter().map(|refusal| refusal.reason.as_str()).collect();
    summary.note = Some(format!("skipped until their calls come back: {}", skipped.join("; ")));
    Ok(summary)
}

/// `GET /accounts/{id}/{endpoint}/` (the account itself without an
/// endpoint), decoded, with GoCardless's refusals sorted into those that
/// skip this account and those that end the run.
pub fn get(account: &Linked, endpoint: Option<&str>, query: &[(&str, String)]) -> Result<Value, Skip> {
    let url = match endpoint {
        Some(endpoint) => format!("{API}/accounts/{}/{endpoint}/", account.id),
        None => format!("{API}/accounts/{}/", account.id),
    };
    let request =
        query.iter().fold(http::get(url).authenticated(), |request, (name, value)| request.query(*name, value.clone()));
    let what = endpoint.unwrap_or("account");
    let url = request.url();
    let response = match request.send() {
        Ok(response) => response,
        // The host's count of the declared quota refused it before it left.
        Err(PluginError::RateLimited(limited)) => {
            return Err(Skip::Refused(Refusal::new(account, what, DAILY_CALLS, limited.retry_after_seconds)));
        }
        // A 401 a fresh token did not cure: the account's access is gone.
        Err(PluginError::Unauthorized(message)) => return Err(Skip::Failed(access_gone(account, &message))),
        Err(other) => return Err(Skip::Failed(other)),
    };
    let status = response.status;
    if (200..300).contains(&status) {
        return Ok(serde_json::from_slice(&response.body)?);
    }
    let refusal: ErrorBody = serde_json::from_slice(&response.body).unwrap_or_default();
    match status {
        429 => match account_limit(&response) {
            Some((limit, seconds)) => Err(Skip::Refused(Refusal::new(account, what, limit, seconds))),
            None => Err(Skip::Failed(PluginError::RateLimited(RateLimited {
                retry_after_seconds: header_number(&response, "ratelimit_reset")
                    .or(response.retry_after())
                    .unwrap_or(60),
                message: format!("GoCardless's rate limit ({what} of account {}): {}", account.id, refusal.text()),
            }))),
        },
        401 | 403 if refusal.is_access_expired() => Err(Skip::Failed(access_gone(account, &refusal.text()))),
        404 => Err(Skip::Failed(PluginError::Permanent(format!(
            "GoCardless has no account {} (404 from {what}): {}",
            account.id,
            refusal.text()
        )))),
        _ => {
            http::check_status(&url, &response)?;
            Err(Skip::Failed(PluginError::Permanent(format!("unexpected {status} from {what}"))))
        }
    }
}

fn access_gone(account: &Linked, detail: &str) -> PluginError {
    PluginError::Unauthorized(format!(
        "the bank connection (end-user agreement for {}) expired or was revoked, so account {} cannot be read: \
         connect the bank again ({detail})",
        account.institution, account.id
    ))
}

/// GoCardless's error body: `{"summary", "detail", "type", "status_code"}`.
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    summary: String,
    #[serde(default)]
    detail: String,
    #[serde(default, rename = "type")]
    kind: String,
}

impl ErrorBody {
    fn text(&self) -> String {
        format!("{} {}", self.summary, self.detail).trim().to_string()
    }

    /// The end-user agreement ran out or the user revoked it.
    fn is_access_expired(&self) -> bool {
        self.kind == "AccessExpiredError" || self.text().to_ascii_lowercase().contains("expired")
    }
}

/// The bank's own daily limit for this account: `(limit, seconds until
/// reset)` from the `HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_*` headers GoCardless
/// sends with it; `None` for its company-wide rate limit.
fn account_limit(response: &http::Response) -> Option<(u32, u32)> {
    let seconds = header_number(response, "ratelimit_account_success_reset")?;
    let limit = header_number(response, "ratelimit_account_success_limit").unwrap_or(DAILY_CALLS);
    Some((limit, seconds))
}

/// A number in GoCardless's rate-limit header `name` (given without its
/// prefix), which it writes `HTTP_X_<NAME>` and proxies may write `x-<name>`.
fn header_number(response: &http::Response, name: &str) -> Option<u32> {
    [format!("http_x_{name}"), format!("x-{}", name.replace('_', "-"))]
        .iter()
        .find_map(|header| response.header(header))
        .and_then(|value| value.trim().parse().ok())
}

/// What a batch says of its account, for its records.
pub struct BatchAccount<'a> {
    /// Their external ids and actor ([`Linked::key`]).
    pub key: &'a str,
    /// GoCardless's id for it when read, kept in their data.
    pub id: &'a str,
}

impl<'a> BatchAccount<'a> {
    /// A batch's `account_key` and `account_id`. Batches stored before keys
    /// were kept have only the id, which was the key.
    pub fn of(payload: &'a Value) -> BatchAccount<'a> {
        let id = payload["account_id"].as_str().unwrap_or_default();
        BatchAccount { key: payload["account_key"].as_str().unwrap_or(id), id }
    }
}

/// An upstream item with the account it belongs to.
pub fn with_account(item: &Value, account: &str) -> Value {
    let mut item = item.clone();
    if let Some(fields) = item.as_object_mut() {
        fields.insert("account_id".into(), Value::String(account.to_string()));
    }
    item
}
