//! A fake Monzo API on loopback that follows the documented shapes
//! (<https://docs.monzo.com>): bearer auth with `401 unauthorized.bad_access_token`,
//! `/accounts`, `/balance`, `/pots`, and `/transactions` ascending by `created`
//! with `since` (a time or a transaction id), `before` and `limit` (at most 100).
//! `POST /oauth2/token` grants and refreshes tokens ([`super::fake_oauth::FakeOAuth`]).
//! It backs the demo and the end-to-end tests, which also use it to inject
//! failures and to see which requests the plugin made.

use super::upstream::{FakeApi, FakeUpstream, RecordedRequest};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const MAX_LIMIT: usize = 100;
const HOUR_MS: i64 = 3_600_000;

/// What the fake serves.
#[derive(Debug, Clone, Default)]
pub struct MonzoDataset {
    pub accounts: Vec<Value>,
    pub balances: BTreeMap<String, Value>,
    pub pots: BTreeMap<String, Vec<Value>>,
    /// Per account, ascending by `created`.
    pub transactions: BTreeMap<String, Vec<Value>>,
    /// Per account, how its transactions were read: what a crash harness
    /// counts to tell a resumed read from one that started over.
    pub reads: BTreeMap<String, PageReads>,
    /// An account, and how many more of its transactions pages are served
    /// before one is answered 500 (once).
    failing: Option<(String, u64)>,
}

/// Pages of one account's transactions served, and those that began before
/// the furthest point already served (their transactions were read before).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageReads {
    pub pages: u64,
    pub reread_pages: u64,
    /// Transactions served up to here (an index into the account's list).
    pub served_to: usize,
}

impl PageReads {
    fn record(&mut self, start: usize, served: usize) {
        self.pages += 1;
        if start < self.served_to && served > 0 {
            self.reread_pages += 1;
        }
        self.served_to = self.served_to.max(start + served);
    }
}

impl MonzoDataset {
    /// Two open accounts and a closed one; pots including a deleted one;
    /// 230 transactions on the main account over the last 29 days (three pages)
    /// and 7 on the joint account.
    pub fn sample(now_ms: i64) -> MonzoDataset {
        let start = now_ms - 29 * 24 * HOUR_MS;
        let mut dataset = MonzoDataset::default();
        for (id, kind, description, closed) in [
            ("acc_main", "uk_retail", "Alex's current account", false),
            ("acc_joint", "uk_retail_joint", "Joint account", false),
            ("acc_old", "uk_prepaid", "Old prepaid card", true),
        ] {
            dataset.accounts.push(json!({
                "id": id,
                "closed": closed,
                "created": rfc3339(start - 400 * 24 * HOUR_MS),
                "description": description,
                "type": kind,
                "currency": "GBP",
                "country_code": "GB",
                "owners": [{"user_id": "user_00009", "preferred_name": "Alex", "preferred_first_name": "Alex"}],
                "account_number": "12345678",
                "sort_code": "040004",
            }));
        }
        dataset.balances.insert(
            "acc_main".into(),
            json!({"balance": 123456, "total_balance": 193456, "currency": "GBP", "spend_today": -2345}),
        );
        dataset.balances.insert(
            "acc_joint".into(),
            json!({"balance": 5000, "total_balance": 5000, "currency": "GBP", "spend_today": 0}),
        );
        dataset
            .balances
            .insert("acc_old".into(), json!({"balance": 0, "total_balance": 0, "currency": "GBP", "spend_today": 0}));
        dataset.pots.insert(
            "acc_main".into(),
            vec![
                pot("pot_holiday", "Holiday", 50000, false, start),
                pot("pot_rainy", "Rainy day", 20000, false, start),
                pot("pot_old", "Old laptop fund", 0, true, start),
            ],
        );
        dataset.pots.insert("acc_joint".into(), vec![]);
        dataset
            .transactions
            .insert("acc_main".into(), (0..230).map(|i| transaction("acc_main", i, start + i * 3 * HOUR_MS)).collect());
        dataset.transactions.insert(
            "acc_joint".into(),
            (0..7).map(|i| transaction("acc_joint", i, start + i * 24 * HOUR_MS)).collect(),
        );
        dataset
    }

    /// After `pages` more pages of the account's transactions are served,
    /// the next is answered 500, once.
    pub fn fail_transactions_page_after(&mut self, account_id: &str, pages: u64) {
        self.failing = Some((account_id.to_string(), pages));
    }
}

fn pot(id: &str, name: &str, balance: i64, deleted: bool, created: i64) -> Value {
    json!({
        "id": id,
        "name": name,
        "style": "beach_ball",
        "balance": balance,
        "currency": "GBP",
        "created": rfc3339(created),
        "updated": rfc3339(created + HOUR_MS),
        "deleted": deleted,
    })
}

const MERCHANTS: [(&str, &str, &str); 4] = [
    ("merch_deli", "The De Beauvoir Deli Co.", "eating_out"),
    ("merch_grocer", "Corner Grocer", "groceries"),
    ("merch_rail", "National Rail", "transport"),
    ("merch_books", "Booksellers Ltd", "shopping"),
];

/// A deterministic transaction: every other one has a merchant.
pub fn transaction(account_id: &str, index: i64, created_ms: i64) -> Value {
    let (merchant_id, merchant_name, category) = MERCHANTS[(index % 4) as usize];
    let has_merchant = index % 2 == 0;
    let merchant = if has_merchant {
        json!({
            "id": merchant_id,
            "group_id": format!("grp_{merchant_id}"),
            "name": merchant_name,
            "category": category,
            "logo": format!("https://example.invalid/{merchant_id}.png"),
            "address": {"city": "London", "country": "GBR", "postcode": "N1 4HA"},
        })
    } else {
        Value::Null
    };
    json!({
        "id": format!("tx_{account_id}_{index:05}"),
        "account_id": account_id,
        "created": rfc3339(created_ms),
        "settled": rfc3339(created_ms + 24 * HOUR_MS),
        "description": if has_merchant { merchant_name.to_uppercase() } else { format!("TRANSFER {index}") },
        "amount": -(100 + (index * 37) % 5000),
        "currency": "GBP",
        "local_amount": -(100 + (index * 37) % 5000),
        "local_currency": "GBP",
        "merchant": merchant,
        "category": if has_merchant { category } else { "transfers" },
        "notes": "",
        "metadata": {},
        "is_load": false,
        "account_balance": 100000 - index * 50,
    })
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The fake Monzo: [`MonzoDataset`] served on loopback.
pub type FakeMonzo = FakeUpstream<MonzoDataset>;

impl FakeMonzo {
    /// Append transactions to an account (as if they just happened).
    pub fn add_transactions(&self, account_id: &str, transactions: Vec<Value>) {
        self.update(|data| data.transactions.entry(account_id.to_string()).or_default().extend(transactions));
    }
}

impl FakeApi for MonzoDataset {
    const TOKEN_PATH: Option<&'static str> = Some("/oauth2/token");

    fn unauthorized(&self, _: &RecordedRequest) -> Response {
        error(StatusCode::UNAUTHORIZED, "unauthorized.bad_access_token", "The access token is invalid or has expired")
    }

    fn answer(&mut self, request: &RecordedRequest) -> Response {
        let data = &*self;
        let query = &request.query;
        let param = |name: &str| request.param(name).map(str::to_string);
        match request.path.as_str() {
            "/ping/whoami" => {
                Json(json!({"authenticated": true, "client_id": "oauth2client_demo", "user_id": "user_00009"}))
                    .into_response()
            }
            "/accounts" => Json(json!({"accounts": data.accounts})).into_response(),
            "/balance" => match param("account_id") {
                None => error(
                    StatusCode::BAD_REQUEST,
                    "bad_request.missing_param.account_id",
                    "Missing required parameter account_id",
                ),
                Some(id) => match data.balances.get(&id) {
                    Some(balance) => Json(balance.clone()).into_response(),
                    None => error(StatusCode::FORBIDDEN, "forbidden.insufficient_permissions", "Access forbidden"),
                },
            },
            "/pots" => match param("current_account_id") {
                None => error(
                    StatusCode::BAD_REQUEST,
                    "bad_request.missing_param.current_account_id",
                    "Missing required parameter current_account_id",
                ),
                Some(id) => match data.pots.get(&id) {
                    Some(pots) => Json(json!({"pots": pots})).into_response(),
                    None => error(StatusCode::FORBIDDEN, "forbidden.insufficient_permissions", "Access forbidden"),
                },
            },
            "/transactions" => match transactions(data, query) {
                Ok((account, _, _)) if self.failing.as_ref().is_some_and(|(a, left)| *a == account && *left == 0) => {
                    self.failing = None;
                    error(StatusCode::INTERNAL_SERVER_ERROR, "internal_service", "An internal error occurred")
                }
                Ok((account, start, page)) => {
                    if let Some((_, left)) = self.failing.as_mut().filter(|(a, _)| *a == account) {
                        *left -= 1;
                    }
                    self.reads.entry(account).or_default().record(start, page.len());
                    Json(json!({"transactions": page})).into_response()
                }
                Err((status, code, message)) => error(status, code, message),
            },
            _ => error(StatusCode::NOT_FOUND, "not_found", "Not found"),
        }
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message, "params": {}}))).into_response()
}

/// An API error: status, code and message.
type Refusal = (StatusCode, &'static str, &'static str);

/// A page of an account's transactions: the account, where the page starts
/// in its list, and the page; or the API's refusal.
fn transactions(data: &MonzoDataset, query: &[(String, String)]) -> Result<(String, usize, Vec<Value>), Refusal> {
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let Some(account_id) = param("account_id") else {
        return Err((
            StatusCode::BAD_REQUEST,
            "bad_request.missing_param.account_id",
            "Missing required parameter account_id",
        ));
    };
    let Some(all) = data.transactions.get(account_id) else {
        return Err((StatusCode::FORBIDDEN, "forbidden.insufficient_permissions", "Access forbidden"));
    };
    let limit = match param("limit").map(str::parse::<usize>) {
        None => MAX_LIMIT,
        Some(Ok(limit)) if (1..=MAX_LIMIT).contains(&limit) => limit,
        Some(_) => {
            return Err((StatusCode::BAD_REQUEST, "bad_request.bad_param.limit", "limit must be between 1 and 100"));
        }
    };
    let created = |t: &Value| t["created"].as_str().and_then(|c| DateTime::parse_from_rfc3339(c).ok());
    // `since` is a time (inclusive) or a transaction id (exclusive).
    let mut start = 0;
    if let Some(since) = param("since") {
        if let Ok(time) = DateTime::parse_from_rfc3339(since) {
            start = all.iter().position(|t| created(t).is_some_and(|c| c >= time)).unwrap_or(all.len());
        } else if let Some(index) = all.iter().position(|t| t["id"] == since) {
            start = index + 1;
        } else {
            return Err((
                StatusCode::BAD_REQUEST,
                "bad_request.bad_param.since",
                "since is neither a time nor a known transaction id",
            ));
        }
    }
    let before = match param("before").map(DateTime::parse_from_rfc3339) {
        None => None,
        Some(Ok(time)) => Some(time),
        Some(Err(_)) => {
            return Err((StatusCode::BAD_REQUEST, "bad_request.bad_param.before", "before must be an RFC 3339 time"));
        }
    };
    let expand_merchant = query.iter().any(|(k, v)| k == "expand[]" && v == "merchant");
    let page: Vec<Value> = all[start..]
        .iter()
        .filter(|t| before.is_none_or(|b| created(t).is_some_and(|c| c < b)))
        .take(limit)
        .map(|t| {
            let mut t = t.clone();
            if !expand_merchant && t["merchant"].is_object() {
                t["merchant"] = t["merchant"]["id"].clone();
            }
            t
        })
        .collect();
    Ok((account_id.to_string(), start, page))
}
