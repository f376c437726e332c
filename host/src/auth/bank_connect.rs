//! Connecting a bank for a secret-pair group (GoCardless Bank Account Data):
//! the operator picks an institution, the host creates an end-user agreement
//! (how much history, how long access lasts) and a requisition for it, and
//! returns the requisition's link. The account holder opens it and consents
//! at their bank; the bank sends their browser back to the host's callback
//! with the requisition's reference, and once the requisition is linked the
//! group is connected again (a group paused for an expired agreement
//! resumes). The host makes these calls with the group's access token; the
//! plugin then reads every linked requisition's accounts.

use super::OAuth;
use super::connect::ConnectError;
use super::oauth::{TokenError, random_token};
use crate::domain::manifest::{AuthKind, SecretExchangeEndpoints};
use crate::outbound::url_host_matches;
use crate::settings::PluginSettings;
use crate::store::groups::{Credentials, Group};
use crate::store::integrations::Integration;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

/// What GoCardless lets an agreement ask for, at most, at most banks.
pub const MAX_DAYS: u32 = 730;

/// The agreement to ask the account holder for.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BankConnectInput {
    /// The bank, from `institutions`, e.g. `SANDBOXFINANCE_SFIN0000`.
    pub institution_id: String,
    /// Days of transaction history to read (default 90).
    #[serde(default = "ninety")]
    #[schema(minimum = 1, maximum = 730)]
    pub max_historical_days: u32,
    /// Days the access lasts (default 90; most banks allow at most 90).
    #[serde(default = "ninety")]
    #[schema(minimum = 1, maximum = 730)]
    pub access_valid_for_days: u32,
}

fn ninety() -> u32 {
    90
}

/// A requisition waiting for the account holder.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BankLink {
    /// Open this to consent at the bank; the bank comes back to the host.
    pub link: String,
    pub requisition_id: String,
    pub agreement_id: String,
}

/// A linked requisition: the group is connected.
#[derive(Debug, Serialize)]
pub struct BankConnected {
    pub group: Group,
    pub accounts: Vec<String>,
}

impl OAuth {
    /// The banks of `country` (ISO 3166 two letters) the group may connect.
    pub async fn institutions(&self, group_id: i64, country: &str) -> Result<Value, ConnectError> {
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(ConnectError::Refused("country: give two letters (ISO 3166), e.g. gb".into()));
        }
        let bank = self.bank_api(group_id).await?;
        bank.call("GET", &format!("institutions/?country={}", country.to_ascii_lowercase()), None).await
    }

    /// Create the agreement and the requisition; the bank will send the
    /// account holder back to `{public_base}/connect/bank/{group}/callback`.
    pub async fn start_bank_connect(
        &self,
        group_id: i64,
        input: &BankConnectInput,
        public_base: &str,
    ) -> Result<BankLink, ConnectError> {
        for (field, days) in
            [("max_historical_days", input.max_historical_days), ("access_valid_for_days", input.access_valid_for_days)]
        {
            if !(1..=MAX_DAYS).contains(&days) {
                return Err(ConnectError::Refused(format!("{field}: must be 1 to {MAX_DAYS} days, got {days}")));
            }
        }
        let bank = self.bank_api(group_id).await?;
        let agreement = bank
            .call(
                "POST",
                "agreements/enduser/",
                Some(json!({
                    "institution_id": input.institution_id,
                    "max_historical_days": input.max_historical_days,
                    "access_valid_for_days": input.access_valid_for_days,
                    "access_scope": ["balances", "details", "transactions"],
                })),
            )
            .await?;
        let agreement_id = text(&agreement, "id")?;
        let redirect = format!("{}/connect/bank/{group_id}/callback", public_base.trim_end_matches('/'));
        let requisition = bank
            .call(
                "POST",
                "requisitions/",
                Some(json!({
                    "redirect": redirect,
                    "institution_id": input.institution_id,
                    "agreement": agreement_id,
                    // Names the group, so the callback finds the requisition.
                    "reference": self.bank_reference(group_id, &random_token()),
                    "user_language": "EN",
                })),
            )
            .await?;
        tracing::info!(group = group_id, institution = %input.institution_id, "bank connection started");
        Ok(BankLink { link: text(&requisition, "link")?, requisition_id: text(&requisition, "id")?, agreement_id })
    }

    /// The bank's callback with the requisition's `reference`: once it is
    /// linked, the group is connected again (status ok, its integrations
    /// paused for a reconnect resumed).
    pub async fn finish_bank_connect(&self, group_id: i64, reference: &str) -> Result<BankConnected, ConnectError> {
        // Checked before GoCardless is asked anything: anyone can open the
        // callback, and each look lists the group's requisitions with its
        // token, spending its rate limits.
        let genuine =
            (reference.strip_prefix(&format!("inlet-{group_id}-"))).and_then(|rest| rest.rsplit_once('-')).is_some_and(
                |(nonce, _)| bool::from(self.bank_reference(group_id, nonce).as_bytes().ct_eq(reference.as_bytes())),
            );
        if !genuine {
            return Err(ConnectError::Refused("ref: this is not a connection started for this group here".into()));
        }
        let bank = self.bank_api(group_id).await?;
        let mut next = Some("requisitions/?limit=100".to_string());
        while let Some(path) = next.take() {
            let page = bank.call("GET", &path, None).await?;
            let found = page["results"].as_array().into_iter().flatten().find(|r| r["reference"] == reference);
            if let Some(requisition) = found {
                let status = requisition["status"].as_str().unwrap_or_default();
                if status != "LN" {
                    return Err(ConnectError::Refused(format!(
                        "the bank connection is not linked (status {status}): the account holder did not finish \
                         at the bank; start connecting again"
                    )));
                }
                let accounts: Vec<String> = (requisition["accounts"].as_array().into_iter().flatten())
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect();
                let group = &bank.group;
                let keep = |current: Option<&Credentials>| current.cloned().unwrap_or_default();
                let on_schedule = |integration: &Integration| self.plugins.runs_on_schedule(integration);
                self.store.connect_group(&group.plugin_id, &group.name, keep, on_schedule).await?;
                let group = self.store.group(group_id).await?.ok_or_else(|| gone(group_id))?;
                tracing::info!(group = group_id, accounts = accounts.len(), "bank connected");
                return Ok(BankConnected { group, accounts });
            }
            // `next` is an absolute URL of the same API.
            next = page["next"].as_str().and_then(|url| url.split_once("/api/v2/")).map(|(_, rest)| rest.to_string());
        }
        Err(ConnectError::Refused("ref: GoCardless has no requisition with this reference".into()))
    }

    /// A requisition's reference: the group, a nonce, and this host's tag of
    /// both, so the callback knows a reference it made without a lookup.
    fn bank_reference(&self, group_id: i64, nonce: &str) -> String {
        let tag = self.store.tag_text("gocardless-reference", &format!("{group_id}-{nonce}"));
        format!("inlet-{group_id}-{nonce}-{tag}")
    }

    /// The group, its bank-connect API and a current access token.
    async fn bank_api(&self, group_id: i64) -> Result<BankApi<'_>, ConnectError> {
        let group = self.store.group(group_id).await?.ok_or_else(|| gone(group_id))?;
        let plugin = self
            .plugins
            .get(&group.plugin_id)
            .ok_or_else(|| ConnectError::Refused(format!("plugin {:?} is not loaded", group.plugin_id)))?;
        let (AuthKind::SecretExchange(endpoints), Some(base)) =
            (&plugin.manifest.auth, bank_connect_url(&plugin.manifest.auth))
        else {
            return Err(ConnectError::Refused(format!("{} does not connect banks", group.plugin_id)));
        };
        // The access token goes there: only to a host the operator approved.
        let approved = PluginSettings::approved_hosts(self.plugin_settings.get(&group.plugin_id), &plugin.hosts());
        if !url_host_matches(base, &approved) {
            return Err(ConnectError::Refused(format!("{base} is not on the plugin's approved hosts")));
        }
        let token = self.bank_token(&group, endpoints).await?;
        Ok(BankApi { oauth: self, group, base: base.trim_end_matches('/').to_string() + "/", token })
    }

    /// The group's access token, exchanged or renewed if it lapsed. Not
    /// through the refresh of runs: that one refuses a group that needs
    /// reconnecting, and reconnecting is what this is for.
    async fn bank_token(&self, group: &Group, endpoints: &SecretExchangeEndpoints) -> Result<String, ConnectError> {
        let (current, _) = self.store.group_credentials(group.id).await?;
        let now = self.store.now();
        if !super::refresh::expiring(&current, now)
            && let Some(token) = current.get("access_token")
        {
            return Ok(token.to_string());
        }
        let renewed = self.token_endpoint.exchange_secret(endpoints, &current, now).await.map_err(|e| match e {
            TokenError::InvalidGrant(m) => ConnectError::Refused(format!("GoCardless refused the secret pair: {m}")),
            TokenError::Failed(m) => ConnectError::Failed(m),
        })?;
        let stored = self.store.store_refreshed_credentials(group.id, current.version(), &renewed).await?;
        let credentials = stored.unwrap_or(renewed);
        Ok(credentials.get("access_token").unwrap_or_default().to_string())
    }
}

fn bank_connect_url(auth: &AuthKind) -> Option<&str> {
    match auth {
        AuthKind::SecretExchange(endpoints) => endpoints.bank_connect_url.as_deref(),
        _ => None,
    }
}

fn gone(group_id: i64) -> ConnectError {
    ConnectError::Refused(format!("group: there is no group {group_id}"))
}

fn text(value: &Value, field: &str) -> Result<String, ConnectError> {
    value[field]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ConnectError::Failed(format!("GoCardless's answer has no {field:?}: {value}")))
}

/// Calls to the bank-connect API with one group's token.
struct BankApi<'a> {
    oauth: &'a OAuth,
    group: Group,
    /// Ends with `/`.
    base: String,
    token: String,
}

impl BankApi<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, ConnectError> {
        let url = format!("{}{path}", self.base);
        let endpoint = &self.oauth.token_endpoint;
        let (url, target) = endpoint.target(&url).map_err(|e| ConnectError::Failed(e.to_string()))?;
        let request = match method {
            "POST" => endpoint.client.post(target).json(&body.unwrap_or(Value::Null)),
            _ => endpoint.client.get(target),
        };
        let response = request
            .bearer_auth(&self.token)
            .header("accept", "application/json")
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| ConnectError::Failed(format!("{method} {url} failed: {}", e.without_url())))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(answer);
        }
        let detail = [&answer["summary"], &answer["detail"]].iter().filter_map(|v| v.as_str()).collect::<Vec<_>>();
        let message = format!("GoCardless answered {status} to {method} {url}: {}", detail.join(" "));
        Err(match status.as_u16() {
            400..=499 => ConnectError::Refused(message),
            _ => ConnectError::Failed(message),
        })
    }
}
