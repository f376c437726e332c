//! A fake Monzo API on loopback that follows the documented shapes
//! (<https://docs.monzo.com>): bearer auth with `401 unauthorized.bad_access_token`,
//! `/accounts`, `/balance`, `/pots`, and `/transactions` ascending by `created`
//! with `since` (a time or a transaction id), `before` and `limit` (at most 100).
//! `POST /oauth2/token` grants and refreshes tokens ([`FakeOAuth`]).
//! It backs the demo and the end-to-end tests, which also use it to inject
//! failures and to see which requests the plugin made.

use super::fake_oauth::FakeOAuth;
use anyhow::Result;
use axum::Json;
use axum::extract::{Form, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

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

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub path: String,
    pub query: Vec<(String, String)>,
    pub authorized: bool,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl RecordedRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

struct CannedResponse {
    status: StatusCode,
    body: Value,
    headers: Vec<(String, String)>,
}

struct FakeState {
    oauth: FakeOAuth,
    data: Mutex<MonzoDataset>,
    requests: Mutex<Vec<RecordedRequest>>,
    canned: Mutex<VecDeque<CannedResponse>>,
    /// How long each API answer takes.
    latency: Mutex<std::time::Duration>,
}

pub struct FakeMonzo {
    addr: SocketAddr,
    state: Arc<FakeState>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeMonzo {
    pub async fn start(dataset: MonzoDataset) -> Result<FakeMonzo> {
        let state = Arc::new(FakeState {
            oauth: FakeOAuth::new("demo-access-token"),
            data: Mutex::new(dataset),
            requests: Mutex::default(),
            canned: Mutex::default(),
            latency: Mutex::default(),
        });
        let app = axum::Router::new()
            .route("/oauth2/token", post(token))
            .route("/{*path}", get(handle))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeMonzo { addr, state, server })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The access token the fake accepts now.
    pub fn access_token(&self) -> String {
        self.state.oauth.access_token().unwrap_or_default()
    }

    /// Its OAuth provider: approve authorizations, expire and revoke tokens.
    pub fn oauth(&self) -> &FakeOAuth {
        &self.state.oauth
    }

    /// Append transactions to an account (as if they just happened).
    pub fn add_transactions(&self, account_id: &str, transactions: Vec<Value>) {
        let mut data = self.state.data.lock().expect("fake state lock");
        data.transactions.entry(account_id.to_string()).or_default().extend(transactions);
    }

    /// Change the served data in place (close an account, delete a pot...).
    pub fn update(&self, change: impl FnOnce(&mut MonzoDataset)) {
        change(&mut self.state.data.lock().expect("fake state lock"));
    }

    /// Answer the next request with this status, headers and body instead
    /// (a 429 with `retry-after`, a 302 with `location`, a 500...).
    pub fn respond_next(&self, status: u16, headers: &[(&str, &str)], body: Value) {
        let status = StatusCode::from_u16(status).expect("a valid status code");
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.state.canned.lock().expect("fake state lock").push_back(CannedResponse { status, body, headers });
    }

    /// Make every API answer (not the token endpoint) take this long.
    pub fn set_latency(&self, latency: std::time::Duration) {
        *self.state.latency.lock().expect("fake state lock") = latency;
    }

    /// Requests received so far, and forget them.
    pub fn take_requests(&self) -> Vec<RecordedRequest> {
        std::mem::take(&mut *self.state.requests.lock().expect("fake state lock"))
    }
}

impl Drop for FakeMonzo {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message, "params": {}}))).into_response()
}

async fn handle(
    State(state): State<Arc<FakeState>>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let authorized = state.oauth.accepts(headers.get("authorization").and_then(|v| v.to_str().ok()));
    state.requests.lock().expect("fake state lock").push(RecordedRequest {
        path: format!("/{path}"),
        query: query.clone(),
        authorized,
        at: std::time::Instant::now(),
    });

    let latency = *state.latency.lock().expect("fake state lock");
    tokio::time::sleep(latency).await;
    if let Some(canned) = state.canned.lock().expect("fake state lock").pop_front() {
        let mut response = (canned.status, Json(canned.body)).into_response();
        for (name, value) in canned.headers {
            let name = axum::http::HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
            response.headers_mut().insert(name, value.parse().expect("a valid header value"));
        }
        return response;
    }
    if !authorized {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized.bad_access_token",
            "The access token is invalid or has expired",
        );
    }
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let data = state.data.lock().expect("fake state lock");
    match path.as_str() {
        "ping/whoami" => {
            Json(json!({"authenticated": true, "client_id": "oauth2client_demo", "user_id": "user_00009"}))
                .into_response()
        }
        "accounts" => Json(json!({"accounts": data.accounts})).into_response(),
        "balance" => match param("account_id") {
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
        "pots" => match param("current_account_id") {
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
        "transactions" => transactions(&data, &query),
        _ => error(StatusCode::NOT_FOUND, "not_found", "Not found"),
    }
}

async fn token(State(state): State<Arc<FakeState>>, Form(form): Form<HashMap<String, String>>) -> Response {
    state.requests.lock().expect("fake state lock").push(RecordedRequest {
        path: "/oauth2/token".into(),
        query: Vec::new(),
        authorized: false,
        at: std::time::Instant::now(),
    });
    // A provider takes a while: concurrent refreshes would overlap here.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (status, body) = state.oauth.token_response(&form);
    (status, Json(body)).into_response()
}

fn transactions(data: &MonzoDataset, query: &[(String, String)]) -> Response {
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let Some(account_id) = param("account_id") else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request.missing_param.account_id",
            "Missing required parameter account_id",
        );
    };
    let Some(all) = data.transactions.get(account_id) else {
        return error(StatusCode::FORBIDDEN, "forbidden.insufficient_permissions", "Access forbidden");
    };
    let limit = match param("limit").map(str::parse::<usize>) {
        None => MAX_LIMIT,
        Some(Ok(limit)) if (1..=MAX_LIMIT).contains(&limit) => limit,
        Some(_) => {
            return error(StatusCode::BAD_REQUEST, "bad_request.bad_param.limit", "limit must be between 1 and 100");
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
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request.bad_param.since",
                "since is neither a time nor a known transaction id",
            );
        }
    }
    let before = match param("before").map(DateTime::parse_from_rfc3339) {
        None => None,
        Some(Ok(time)) => Some(time),
        Some(Err(_)) => {
            return error(StatusCode::BAD_REQUEST, "bad_request.bad_param.before", "before must be an RFC 3339 time");
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
    Json(json!({"transactions": page})).into_response()
}
