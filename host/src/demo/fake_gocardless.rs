//! A fake GoCardless Bank Account Data API (formerly Nordigen) on loopback
//! (<https://developer.gocardless.com/bank-account-data>), with the shapes
//! GoCardless answers with:
//!
//! * `POST /api/v2/token/new/` `{secret_id, secret_key}` → `{access,
//!   access_expires, refresh, refresh_expires}` (seconds) for [`SECRET_ID`] and
//!   [`SECRET_KEY`], else 401 "Authentication failed"; `POST
//!   /api/v2/token/refresh/` `{refresh}` → `{access, access_expires}`. Access
//!   tokens expire after [`GoCardlessData::set_access_lifetime`] seconds (a day
//!   by default); every other endpoint wants `Authorization: Bearer <access>`
//!   and answers 401 "Invalid token" without a live one.
//! * `GET /api/v2/requisitions/?limit&offset` → `{count, next, previous,
//!   results}` (`next` an absolute URL on GoCardless's host), one requisition
//!   `{id, created, redirect, status, institution_id, agreement, reference,
//!   accounts, link, ...}`, status `LN` (linked) until
//!   [`GoCardlessData::expire_requisition`] turns it `EX`; `GET
//!   /api/v2/requisitions/{id}/` → that one.
//! * `GET /api/v2/accounts/{id}/` → `{id, created, last_accessed, iban,
//!   institution_id, status, owner_name}`; `.../details/` → `{account:
//!   {resourceId, iban, currency, ownerName, name, product,
//!   cashAccountType}}`; `.../balances/` → `{balances: [{balanceAmount:
//!   {amount, currency}, balanceType, referenceDate}]}` (`closingBooked` from
//!   the booked transactions, `interimAvailable` with the pending ones too);
//!   `.../transactions/?date_from&date_to` → `{transactions: {booked,
//!   pending}}`, booked ones by `bookingDate` within the dates, every pending
//!   one. Once the requisition expired they answer 401 `AccessExpiredError`;
//!   an unknown account is 404.
//! * The bank's daily limit: [`DAILY_LIMIT`] successful calls per account to
//!   each of `details`, `balances` and `transactions` per UTC day, counted by
//!   [`GoCardlessData::calls`]; past it, 429 "Rate limit exceeded" with
//!   `HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_{LIMIT,REMAINING,RESET}` headers (reset
//!   in seconds, at the next midnight UTC), which successful answers carry too.
//!
//! GoCardless's tokens are not OAuth: the fake issues and checks its own, so
//! the shared OAuth provider accepts none and every request reaches
//! [`FakeApi::unauthorized`], which serves them all. Its `&self` is why the
//! bank sits behind a lock of its own.

use super::fake_oauth::FakeOAuth;
use super::upstream::{FakeApi, FakeUpstream, RecordedRequest, json_answer};
use axum::Json;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The secret pair the fake accepts (GoCardless → Developers → User secrets).
pub const SECRET_ID: &str = "6f0e3c1a-8b2d-4f5e-9a7c-1d2e3f4a5b6c";
pub const SECRET_KEY: &str = "9c2d7e4f1a6b3c8d5e0f2a7b4c9d1e6f3a8b5c0d2e7f4a9b6c1d3e8f5a0b7c2d4e9f6a1b";
/// The sample bank, GoCardless's sandbox institution.
pub const INSTITUTION: &str = "SANDBOXFINANCE_SFIN0000";
/// Successful calls a day per account and endpoint the sample bank allows.
pub const DAILY_LIMIT: u32 = 4;
/// The endpoints the bank limits.
const LIMITED: [&str; 3] = ["details", "balances", "transactions"];
const PREFIX: &str = "/api/v2";
const API: &str = "https://bankaccountdata.gocardless.com/api/v2";
const REQUISITION_ID: &str = "8126e9fb-93c9-4228-937c-68f0383c2df7";
const AGREEMENT_ID: &str = "2dea1b84-97b0-4cb4-8805-302c227587c8";
/// Days of booked history in the sample.
const SAMPLE_DAYS: i64 = 90;
/// A day's access token, a month's refresh token, as GoCardless grants them.
const ACCESS_SECONDS: i64 = 86_400;
const REFRESH_SECONDS: i64 = 30 * 86_400;

/// The fake GoCardless: [`GoCardlessData`] served on loopback.
pub type FakeGoCardless = FakeUpstream<GoCardlessData>;

/// What the fake serves; tests change it through `fake.update`.
pub struct GoCardlessData(Mutex<Bank>);

struct Bank {
    accounts: Vec<Account>,
    /// `LN` (linked) or `EX` (expired).
    requisition_status: &'static str,
    /// The accounts' ids when the first requisition linked them: GoCardless
    /// gives each requisition's accounts ids of their own.
    requisition_accounts: Vec<String>,
    /// Requisitions made through the API (`POST /requisitions/`), each `CR`
    /// until the account holder consents ([`GoCardlessData::consent`]),
    /// then `LN` for the same accounts.
    new_requisitions: Vec<Value>,
    requisition_created: String,
    tokens: Tokens,
    /// Successful calls by account, endpoint and UTC day.
    calls: BTreeMap<(String, String, NaiveDate), u32>,
    serial: u64,
}

struct Account {
    id: String,
    iban: String,
    owner_name: String,
    name: String,
    product: String,
    created: String,
    /// The balance before the first booked transaction, in cents.
    opening_cents: i64,
    booked: Vec<Value>,
    pending: Vec<Value>,
}

#[derive(Default)]
struct Tokens {
    /// Live access and refresh tokens, with when each expires.
    access: BTreeMap<String, DateTime<Utc>>,
    refresh: BTreeMap<String, DateTime<Utc>>,
    access_seconds: i64,
    exchanges: usize,
    refreshes: usize,
    /// Every token granted, for tests that look for leaks.
    issued: Vec<String>,
    serial: u64,
}

impl GoCardlessData {
    /// One linked requisition at [`INSTITUTION`] with two accounts: a current
    /// account with a card payment every other day, a salary each month and
    /// one booked transaction with only an `internalTransactionId`, and a
    /// savings account with a weekly transfer; two pending card payments on
    /// the first and one on the second. All within the last 90 days.
    pub fn sample(now_ms: i64) -> GoCardlessData {
        let now = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_default();
        let today = now.date_naive();
        let created = (now - Duration::days(SAMPLE_DAYS + 5)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let mut bank = Bank {
            accounts: vec![
                Account {
                    id: "7e944232-bda9-40bc-b784-660c7ab5fe78".into(),
                    iban: "GL0865410000000001".into(),
                    owner_name: "Jane Doe".into(),
                    name: "Main Account".into(),
                    product: "Current account".into(),
                    created: created.clone(),
                    opening_cents: 152_000,
                    booked: Vec::new(),
                    pending: Vec::new(),
                },
                Account {
                    id: "99a0bfe2-0bef-46df-bff2-e9ae0c6c5838".into(),
                    iban: "GL2981520000000002".into(),
                    owner_name: "Jane Doe".into(),
                    name: "Holiday Savings".into(),
                    product: "Savings account".into(),
                    created: created.clone(),
                    opening_cents: 480_000,
                    booked: Vec::new(),
                    pending: Vec::new(),
                },
            ],
            requisition_status: "LN",
            requisition_accounts: Vec::new(),
            new_requisitions: Vec::new(),
            requisition_created: created,
            tokens: Tokens { access_seconds: ACCESS_SECONDS, ..Tokens::default() },
            calls: BTreeMap::new(),
            serial: 0,
        };
        const MERCHANTS: [(&str, &str); 5] = [
            ("Freshto Ltd", "-12.80"),
            ("Cafe Central", "-3.40"),
            ("Metro Transit", "-2.90"),
            ("Bookshop Norde", "-24.99"),
            ("Grocer & Sons", "-56.15"),
        ];
        for back in (1..=SAMPLE_DAYS).rev() {
            let day = today - Duration::days(back);
            if back % 2 == 0 {
                let (merchant, amount) = MERCHANTS[(back as usize / 2) % MERCHANTS.len()];
                bank.book(0, day, card_payment(merchant, amount, day));
            }
            if back % 30 == 15 {
                bank.book(0, day, salary(day));
            }
            if back % 7 == 3 {
                bank.book(1, day, savings_transfer(day));
            }
        }
        // Some banks give only their internal id.
        if let Some(last) = bank.accounts[0].booked.last_mut().and_then(Value::as_object_mut) {
            last.remove("transactionId");
        }
        bank.accounts[0].pending.push(pending_payment("Cafe Central", "-4.10", today));
        bank.accounts[0].pending.push(pending_payment("Metro Transit", "-2.90", today));
        bank.accounts[1].pending.push(pending_payment("Transfer to Main Account", "-50.00", today));
        bank.requisition_accounts = bank.accounts.iter().map(|a| a.id.clone()).collect();
        GoCardlessData(Mutex::new(bank))
    }

    fn bank(&mut self) -> &mut Bank {
        self.0.get_mut().expect("fake GoCardless lock")
    }

    /// The accounts' ids, in order.
    pub fn account_ids(&mut self) -> Vec<String> {
        self.bank().accounts.iter().map(|a| a.id.clone()).collect()
    }

    pub fn booked(&mut self, account: &str) -> Vec<Value> {
        self.bank().account_mut(account).booked.clone()
    }

    pub fn pending(&mut self, account: &str) -> Vec<Value> {
        self.bank().account_mut(account).pending.clone()
    }

    /// The account's first pending transaction books today under a new
    /// `transactionId` (returned), and is no longer pending.
    pub fn book_pending(&mut self, account: &str) -> String {
        let bank = self.bank();
        let index = bank.index_of(account);
        let pending = bank.accounts[index].pending.remove(0);
        let today = Utc::now().date_naive();
        let mut booked = pending;
        booked["bookingDate"] = json!(today.to_string());
        bank.book(index, today, booked)
    }

    /// The second account takes the first's IBAN, as the currency pockets
    /// of one bank account may each be an account with its IBAN.
    pub fn share_iban(&mut self) {
        let bank = self.bank();
        bank.accounts[1].iban = bank.accounts[0].iban.clone();
    }

    /// A card payment pending on the account since `days_ago` (its value
    /// date), as a hotel's pre-authorisation is.
    pub fn add_pending(&mut self, account: &str, creditor: &str, amount: &str, days_ago: i64) {
        let day = Utc::now().date_naive() - Duration::days(days_ago);
        self.bank().account_mut(account).pending.push(pending_payment(creditor, amount, day));
    }

    /// The account's pending payment to `creditor` books under a new
    /// `transactionId` (returned), dated its value date, as banks may date a
    /// booking when the payment was made.
    pub fn book_pending_backdated(&mut self, account: &str, creditor: &str) -> String {
        let bank = self.bank();
        let index = bank.index_of(account);
        let pending = &mut bank.accounts[index].pending;
        let at = pending.iter().position(|p| p["creditorName"] == creditor).expect("a pending payment to creditor");
        let booked = pending.remove(at);
        let day = booked["valueDate"].as_str().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        bank.book(index, day.expect("a value date"), booked)
    }

    /// A transaction booked today on the account; returns its `transactionId`.
    pub fn add_transaction(&mut self, account: &str, creditor: &str, amount: &str) -> String {
        let bank = self.bank();
        let index = bank.index_of(account);
        let today = Utc::now().date_naive();
        bank.book(index, today, card_payment(creditor, amount, today))
    }

    /// The end-user agreement ran out: the requisition is `EX` and the
    /// account endpoints refuse with `AccessExpiredError`.
    pub fn expire_requisition(&mut self) {
        self.bank().requisition_status = "EX";
    }

    /// Successful calls to `endpoint` (`details`, `balances`, `transactions`)
    /// of the account today (UTC).
    pub fn calls(&mut self, account: &str, endpoint: &str) -> u32 {
        let key = (account.to_string(), endpoint.to_string(), Utc::now().date_naive());
        self.bank().calls.get(&key).copied().unwrap_or(0)
    }

    /// Another app spent the account's calls to `endpoint` for today.
    pub fn spend_daily_limit(&mut self, account: &str, endpoint: &str) {
        let key = (account.to_string(), endpoint.to_string(), Utc::now().date_naive());
        self.bank().calls.insert(key, DAILY_LIMIT);
    }

    /// Lifetime of the access tokens granted from now on.
    pub fn set_access_lifetime(&mut self, seconds: i64) {
        self.bank().tokens.access_seconds = seconds;
    }

    /// Every access token granted so far stops working (they expired).
    pub fn expire_access_tokens(&mut self) {
        self.bank().tokens.access.clear();
    }

    /// Secret pairs exchanged at `/token/new/` (accepted or not), and
    /// refresh tokens spent at `/token/refresh/`.
    pub fn token_requests(&mut self) -> (usize, usize) {
        let tokens = &self.bank().tokens;
        (tokens.exchanges, tokens.refreshes)
    }

    /// The account holder consents to the requisition `id` at the bank: it
    /// is linked to the same bank accounts, which GoCardless gives new ids
    /// (those of an earlier requisition answer no more), and the bank sends
    /// them back to the requisition's redirect with its reference (returned:
    /// the callback URL).
    pub fn consent(&mut self, id: &str) -> Option<String> {
        let bank = self.bank();
        bank.serial += 1;
        let serial = bank.serial;
        for (index, account) in bank.accounts.iter_mut().enumerate() {
            account.id = format!("{serial:08x}-0000-4000-8000-{index:012x}");
        }
        let accounts: Vec<String> = bank.accounts.iter().map(|a| a.id.clone()).collect();
        let requisition = bank.new_requisitions.iter_mut().find(|r| r["id"] == id)?;
        requisition["status"] = json!("LN");
        requisition["accounts"] = json!(accounts);
        Some(format!("{}?ref={}", requisition["redirect"].as_str()?, requisition["reference"].as_str()?))
    }

    /// An access token for a day, as an exchange would grant: for a group
    /// given a token instead of the pair (`inlet plugin test --record`, the demo).
    pub fn grant_access_token(&mut self) -> String {
        self.bank().tokens.grant("access", Utc::now(), 86_400)
    }

    /// Every access and refresh token granted so far.
    pub fn issued_tokens(&mut self) -> Vec<String> {
        self.bank().tokens.issued.clone()
    }

    fn serve(&self, request: &RecordedRequest) -> Response {
        route(&mut self.0.lock().expect("fake GoCardless lock"), request)
    }
}

impl FakeApi for GoCardlessData {
    fn provider(&self) -> FakeOAuth {
        let none = FakeOAuth::new("gocardless-issues-its-own-tokens");
        none.expire_access_token();
        none
    }

    fn unauthorized(&self, request: &RecordedRequest) -> Response {
        self.serve(request)
    }

    fn answer(&mut self, request: &RecordedRequest) -> Response {
        self.serve(request)
    }
}

fn route(bank: &mut Bank, request: &RecordedRequest) -> Response {
    let now = Utc::now();
    let Some(path) = request.path.strip_prefix(PREFIX) else { return not_found() };
    if request.method == Method::POST {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        return match path {
            "/token/new/" => bank.tokens.exchange(&body, now),
            "/token/refresh/" => bank.tokens.renew(&body, now),
            "/agreements/enduser/" | "/requisitions/" if !bank.tokens.accepts(request.header("authorization"), now) => {
                error(StatusCode::UNAUTHORIZED, "Invalid token", "Token is invalid or expired", None)
            }
            "/agreements/enduser/" => bank.agree(&body),
            "/requisitions/" => bank.requisition_for(&body),
            _ => method_not_allowed(),
        };
    }
    if !bank.tokens.accepts(request.header("authorization"), now) {
        return error(StatusCode::UNAUTHORIZED, "Invalid token", "Token is invalid or expired", None);
    }
    if request.method != Method::GET {
        return method_not_allowed();
    }
    if path == "/requisitions/" {
        return bank.requisitions(request);
    }
    if path == "/institutions/" {
        return Json(json!([{
            "id": INSTITUTION,
            "name": "Sandbox Finance",
            "bic": "SFIN0000",
            "transaction_total_days": "90",
            "countries": ["XX"],
            "logo": "https://cdn.nordigen.com/ais/SANDBOXFINANCE_SFIN0000.png",
        }]))
        .into_response();
    }
    if path == format!("/requisitions/{REQUISITION_ID}/") {
        return Json(bank.requisition()).into_response();
    }
    let Some(rest) = path.strip_prefix("/accounts/") else { return not_found() };
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match *segments.as_slice() {
        [account] => bank.account(account, None, request, now),
        [account, endpoint] => bank.account(account, Some(endpoint), request, now),
        _ => not_found(),
    }
}

impl Bank {
    /// `POST /agreements/enduser/`.
    fn agree(&mut self, body: &Value) -> Response {
        if body["institution_id"] != INSTITUTION {
            return error(
                StatusCode::BAD_REQUEST,
                "Unknown Institution ID",
                "Get Institution IDs from /institutions/",
                None,
            );
        }
        self.serial += 1;
        Json(json!({
            "id": format!("agreement-{}", self.serial),
            "institution_id": INSTITUTION,
            "max_historical_days": body["max_historical_days"],
            "access_valid_for_days": body["access_valid_for_days"],
            "access_scope": body["access_scope"],
        }))
        .into_response()
    }

    /// `POST /requisitions/`: created (`CR`), waiting for the account holder.
    fn requisition_for(&mut self, body: &Value) -> Response {
        self.serial += 1;
        let id = format!("requisition-{}", self.serial);
        let requisition = json!({
            "id": id,
            "status": "CR",
            "redirect": body["redirect"],
            "institution_id": body["institution_id"],
            "agreement": body["agreement"],
            "reference": body["reference"],
            "accounts": [],
            "link": format!("https://ob.gocardless.com/ob-psd2/start/{id}/{INSTITUTION}"),
        });
        self.new_requisitions.push(requisition.clone());
        (StatusCode::CREATED, Json(requisition)).into_response()
    }

    fn index_of(&self, account: &str) -> usize {
        self.accounts.iter().position(|a| a.id == account).unwrap_or_else(|| panic!("no account {account}"))
    }

    fn account_mut(&mut self, account: &str) -> &mut Account {
        let index = self.index_of(account);
        &mut self.accounts[index]
    }

    /// Book `transaction` on `day` with ids of its own; returns its `transactionId`.
    fn book(&mut self, account: usize, day: NaiveDate, mut transaction: Value) -> String {
        self.serial += 1;
        let id = format!("{}{:06}-1", day.format("%Y%m%d"), self.serial);
        transaction["transactionId"] = json!(id);
        transaction["internalTransactionId"] =
            json!(format!("{:032x}", self.serial.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        transaction["bookingDate"] = json!(day.to_string());
        if transaction.get("valueDate").is_none() {
            transaction["valueDate"] = json!(day.to_string());
        }
        self.accounts[account].booked.push(transaction);
        id
    }

    fn requisition(&self) -> Value {
        json!({
            "id": REQUISITION_ID,
            "created": self.requisition_created,
            "redirect": "http://127.0.0.1:8080/banks/callback",
            "status": self.requisition_status,
            "institution_id": INSTITUTION,
            "agreement": AGREEMENT_ID,
            "reference": "inlet-bank-1",
            "accounts": self.requisition_accounts,
            "user_language": "EN",
            "link": format!("https://ob.gocardless.com/ob-psd2/start/{REQUISITION_ID}/{INSTITUTION}"),
            "ssn": null,
            "account_selection": false,
            "redirect_immediate": false,
        })
    }

    /// The requisitions, paged by `limit` (default 100) and `offset`.
    fn requisitions(&self, request: &RecordedRequest) -> Response {
        let all: Vec<Value> =
            std::iter::once(self.requisition()).chain(self.new_requisitions.iter().cloned()).collect();
        let number = |name: &str, default: usize| request.param(name).and_then(|v| v.parse().ok()).unwrap_or(default);
        let (limit, offset) = (number("limit", 100).max(1), number("offset", 0));
        let page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
        let link = |offset: usize| format!("{API}/requisitions/?limit={limit}&offset={offset}");
        Json(json!({
            "count": all.len(),
            "next": (offset + limit < all.len()).then(|| link(offset + limit)),
            "previous": (offset > 0).then(|| link(offset.saturating_sub(limit))),
            "results": page,
        }))
        .into_response()
    }

    fn account(&mut self, id: &str, endpoint: Option<&str>, request: &RecordedRequest, now: DateTime<Utc>) -> Response {
        let relinked = self.new_requisitions.iter().any(|r| r["status"] == "LN");
        if self.requisition_status == "EX" && !relinked {
            return error(
                StatusCode::UNAUTHORIZED,
                "Access has expired or it has been revoked.",
                &format!(
                    "End User Agreement {AGREEMENT_ID} has expired or has been revoked. \
                     To re-establish access, create a new requisition."
                ),
                Some("AccessExpiredError"),
            );
        }
        let Some(index) = self.accounts.iter().position(|a| a.id == id) else {
            return error(StatusCode::NOT_FOUND, "Not found.", &format!("Account {id} not found"), None);
        };
        let Some(endpoint) = endpoint else { return Json(self.accounts[index].metadata()).into_response() };
        if !LIMITED.contains(&endpoint) {
            return not_found();
        }
        let key = (id.to_string(), endpoint.to_string(), now.date_naive());
        let spent = self.calls.get(&key).copied().unwrap_or(0);
        let reset = (now.date_naive() + Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let reset_seconds = (reset - now).num_seconds().max(1);
        if spent >= DAILY_LIMIT {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit exceeded",
                "Daily request limit set by the Institution has been exceeded.",
                None,
            );
            add_limit_headers(&mut response, 0, reset_seconds);
            return response;
        }
        let account = &self.accounts[index];
        let body = match endpoint {
            "details" => account.details(),
            "balances" => account.balances(now.date_naive()),
            _ => match account.transactions(request) {
                Ok(body) => body,
                Err(refusal) => return *refusal,
            },
        };
        self.calls.insert(key, spent + 1);
        let mut response = Json(body).into_response();
        add_limit_headers(&mut response, DAILY_LIMIT - spent - 1, reset_seconds);
        response
    }
}

impl Account {
    fn metadata(&self) -> Value {
        json!({
            "id": self.id,
            "created": self.created,
            "last_accessed": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "iban": self.iban,
            "bban": null,
            "institution_id": INSTITUTION,
            "status": "READY",
            "owner_name": self.owner_name,
        })
    }

    fn details(&self) -> Value {
        let cash_account_type = if self.product.starts_with("Savings") { "SVGS" } else { "CACC" };
        json!({"account": {
            "resourceId": format!("{}-res", &self.id[..8]),
            "iban": self.iban,
            "currency": "EUR",
            "ownerName": self.owner_name,
            "name": self.name,
            "product": self.product,
            "cashAccountType": cash_account_type,
        }})
    }

    /// `closingBooked` as of yesterday's bookings and `interimAvailable`
    /// with today's and the pending ones, in GoCardless's decimal strings.
    fn balances(&self, today: NaiveDate) -> Value {
        let sum = |items: &[Value]| items.iter().map(|t| cents(&t["transactionAmount"]["amount"])).sum::<i64>();
        let today_text = today.to_string();
        let booked_before_today: Vec<Value> =
            self.booked.iter().filter(|t| t["bookingDate"].as_str() < Some(today_text.as_str())).cloned().collect();
        let closing = self.opening_cents + sum(&booked_before_today);
        let available = self.opening_cents + sum(self.booked.as_slice()) + sum(self.pending.as_slice());
        let yesterday = today - Duration::days(1);
        json!({"balances": [
            {"balanceAmount": {"amount": decimal(closing), "currency": "EUR"}, "balanceType": "closingBooked", "referenceDate": yesterday.to_string()},
            {"balanceAmount": {"amount": decimal(available), "currency": "EUR"}, "balanceType": "interimAvailable", "referenceDate": today.to_string()},
        ]})
    }

    /// Booked ones whose `bookingDate` is within `date_from` and `date_to`
    /// (both optional, both included), and every pending one.
    fn transactions(&self, request: &RecordedRequest) -> Result<Value, Box<Response>> {
        let bound = |name: &str| match request.param(name) {
            None => Ok(None),
            Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d").map(Some).map_err(|_| {
                let detail = format!("{name} must be a valid date in YYYY-MM-DD format");
                Box::new(error(StatusCode::BAD_REQUEST, &format!("Invalid {name}"), &detail, None))
            }),
        };
        let (from, to) = (bound("date_from")?, bound("date_to")?);
        let booked: Vec<Value> = (self.booked.iter())
            .filter(|t| {
                let day = t["bookingDate"].as_str().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
                day.is_some_and(|day| from.is_none_or(|from| from <= day) && to.is_none_or(|to| day <= to))
            })
            .cloned()
            .collect();
        Ok(json!({"transactions": {"booked": booked, "pending": self.pending}}))
    }
}

impl Tokens {
    fn accepts(&self, authorization: Option<&str>, now: DateTime<Utc>) -> bool {
        let token = authorization.and_then(|value| value.strip_prefix("Bearer "));
        token.and_then(|token| self.access.get(token)).is_some_and(|expires| *expires > now)
    }

    fn grant(&mut self, kind: &str, now: DateTime<Utc>, seconds: i64) -> String {
        self.serial += 1;
        let token = format!("gc_{kind}.{:06}.{:016x}", self.serial, self.serial.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let expires = now + Duration::seconds(seconds);
        match kind {
            "access" => self.access.insert(token.clone(), expires),
            _ => self.refresh.insert(token.clone(), expires),
        };
        self.issued.push(token.clone());
        token
    }

    /// `POST /token/new/`.
    fn exchange(&mut self, body: &Value, now: DateTime<Utc>) -> Response {
        self.exchanges += 1;
        let missing: Vec<&str> = ["secret_id", "secret_key"].into_iter().filter(|f| !body[f].is_string()).collect();
        if !missing.is_empty() {
            let fields: serde_json::Map<String, Value> =
                missing.iter().map(|f| (f.to_string(), json!(["This field is required."]))).collect();
            let mut refusal = Value::Object(fields);
            refusal["status_code"] = json!(400);
            return json_answer(StatusCode::BAD_REQUEST, refusal);
        }
        if body["secret_id"] != SECRET_ID || body["secret_key"] != SECRET_KEY {
            return error(
                StatusCode::UNAUTHORIZED,
                "Authentication failed",
                "No active account found with the given credentials",
                None,
            );
        }
        let access_seconds = self.access_seconds;
        let access = self.grant("access", now, access_seconds);
        let refresh = self.grant("refresh", now, REFRESH_SECONDS);
        Json(json!({
            "access": access,
            "access_expires": access_seconds,
            "refresh": refresh,
            "refresh_expires": REFRESH_SECONDS,
        }))
        .into_response()
    }

    /// `POST /token/refresh/`.
    fn renew(&mut self, body: &Value, now: DateTime<Utc>) -> Response {
        self.refreshes += 1;
        let live = body["refresh"].as_str().and_then(|token| self.refresh.get(token)).is_some_and(|at| *at > now);
        if !live {
            return error(StatusCode::UNAUTHORIZED, "Invalid token", "Token is invalid or expired", None);
        }
        let access_seconds = self.access_seconds;
        let access = self.grant("access", now, access_seconds);
        Json(json!({ "access": access, "access_expires": access_seconds })).into_response()
    }
}

/// GoCardless's error body: `{summary, detail, status_code}` and, for some, a `type`.
fn error(status: StatusCode, summary: &str, detail: &str, kind: Option<&str>) -> Response {
    let mut body = json!({ "summary": summary, "detail": detail, "status_code": status.as_u16() });
    if let Some(kind) = kind {
        body["type"] = json!(kind);
    }
    json_answer(status, body)
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not found.", "Not found.", None)
}

fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", "This method is not allowed here.", None)
}

fn add_limit_headers(response: &mut Response, remaining: u32, reset_seconds: i64) {
    let headers = response.headers_mut();
    for (name, value) in [
        ("http_x_ratelimit_account_success_limit", DAILY_LIMIT.to_string()),
        ("http_x_ratelimit_account_success_remaining", remaining.to_string()),
        ("http_x_ratelimit_account_success_reset", reset_seconds.to_string()),
    ] {
        headers.insert(name, value.parse().expect("a number is a header value"));
    }
}

/// `"-12.80"` → -1280.
fn cents(amount: &Value) -> i64 {
    amount.as_str().and_then(|a| a.parse::<f64>().ok()).map_or(0, |a| (a * 100.0).round() as i64)
}

/// -1280 → `"-12.80"`.
fn decimal(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

fn card_payment(creditor: &str, amount: &str, day: NaiveDate) -> Value {
    json!({
        "valueDate": day.to_string(),
        "transactionAmount": {"amount": amount, "currency": "EUR"},
        "creditorName": creditor,
        "remittanceInformationUnstructured": format!("Card payment {creditor}"),
        "bankTransactionCode": "PMNT-CCRD-POSD",
        "proprietaryBankTransactionCode": "CARD_PAYMENT",
    })
}

fn salary(day: NaiveDate) -> Value {
    json!({
        "valueDate": day.to_string(),
        "transactionAmount": {"amount": "2650.00", "currency": "EUR"},
        "debtorName": "Acme Widgets GmbH",
        "debtorAccount": {"iban": "DE89370400440532013000"},
        "remittanceInformationUnstructured": format!("Salary {}", day.format("%B %Y")),
        "bankTransactionCode": "PMNT-RCDT-ESCT",
    })
}

fn savings_transfer(day: NaiveDate) -> Value {
    json!({
        "valueDate": day.to_string(),
        "transactionAmount": {"amount": "100.00", "currency": "EUR"},
        "debtorName": "Jane Doe",
        "debtorAccount": {"iban": "GL0865410000000001"},
        "remittanceInformationUnstructured": "Weekly savings",
        "bankTransactionCode": "PMNT-ICDT-STDO",
    })
}

/// A card payment not booked yet: no ids, no booking date.
fn pending_payment(creditor: &str, amount: &str, day: NaiveDate) -> Value {
    json!({
        "valueDate": day.to_string(),
        "transactionAmount": {"amount": amount, "currency": "EUR"},
        "creditorName": creditor,
        "remittanceInformationUnstructured": format!("Card payment {creditor}"),
    })
}
