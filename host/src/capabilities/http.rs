//! `http.send`: the only network access a plugin has. The URL must be on a
//! host the plugin declared; the group's credentials are added here so the
//! plugin never holds them; an operator's upstream override may point a
//! declared host somewhere else (tests, staging, demos).

use super::CallScope;
use super::cassette::{Cassette, REDACTED, redact_bytes};
use super::quota::GroupQuotas;
use super::rate_limit::GroupRateLimit;
use crate::clock::{Millis, SharedClock};
use crate::domain::manifest::{AuthKind, KeyPlacement};
use crate::outbound::{UpstreamOverrides, host_matches, internal_address};
use crate::store::groups::Credentials;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// Which of the group's credentials the host adds to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    /// The group's credentials, placed as the plugin's manifest declares
    /// (contract 0.2.0 on): [`OutboundHttp::declared_auth`].
    Declared,
    /// `Authorization: Bearer` with the group's OAuth token or API key.
    Bearer,
    /// The group's API key in the named header.
    ApiKeyHeader(String),
    /// The group's API key in the named query parameter.
    ApiKeyQuery(String),
    /// Basic auth from the group's username and password.
    Basic,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub auth: Auth,
    /// Shorter than the host's timeout, in milliseconds.
    pub timeout_ms: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a request got no response the plugin can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Refused by the host; the text names the rule.
    Denied(String),
    Timeout,
    /// The body exceeded the cap, in bytes.
    TooLarge(u64),
    /// Wait this many seconds (the upstream's `Retry-After`, or the group's ceiling).
    RateLimited(u32),
    /// The upstream refused the credentials and refreshing did not help.
    Unauthorized(String),
    Transport(String),
}

impl Error {
    /// The outcome's name in metrics and logs.
    fn outcome(&self) -> &'static str {
        match self {
            Error::Denied(_) => "denied",
            Error::Timeout => "timeout",
            Error::TooLarge(_) => "too-large",
            Error::RateLimited(_) => "rate-limited",
            Error::Unauthorized(_) => "unauthorized",
            Error::Transport(_) => "transport",
        }
    }
}

impl Auth {
    /// Where the group's credentials go, as a manifest declares it.
    pub fn declared_by(auth: &AuthKind) -> Auth {
        match auth {
            AuthKind::None | AuthKind::ApiKey { placement: None, .. } => Auth::None,
            AuthKind::OAuth2(_)
            | AuthKind::SecretExchange(_)
            | AuthKind::ApiKey { placement: Some(KeyPlacement::Bearer), .. } => Auth::Bearer,
            AuthKind::ApiKey { placement: Some(KeyPlacement::Header(name)), .. } => Auth::ApiKeyHeader(name.clone()),
            AuthKind::ApiKey { placement: Some(KeyPlacement::Query(name)), .. } => Auth::ApiKeyQuery(name.clone()),
            AuthKind::Basic { .. } => Auth::Basic,
        }
    }
}

/// Outbound HTTP for one fetch: the hosts it may reach and the credentials
/// it may use.
pub struct OutboundHttp {
    pub client: reqwest::Client,
    /// What [`Auth::Declared`] stands for: the manifest's placement.
    pub declared_auth: Auth,
    pub allowed_hosts: Vec<String>,
    /// Hosts the plugin declares that the group was not approved for.
    pub unapproved: Option<UnapprovedHosts>,
    pub overrides: Arc<UpstreamOverrides>,
    pub credentials: Credentials,
    pub timeout: Duration,
    pub max_response_bytes: u64,
    /// Where to refresh the group's OAuth token when the upstream refuses it.
    pub tokens: Option<GroupTokens>,
    /// The group's ceiling on requests, if it has one.
    pub rate_limit: Option<GroupRateLimit>,
    /// The provider's quotas the plugin declares, counted per group.
    pub quotas: Option<GroupQuotas>,
    /// When the plugin call ends; a request waits for its turn until then.
    pub deadline: tokio::time::Instant,
    /// Reads the time an upstream's rate-limit reset is compared with.
    pub clock: SharedClock,
    /// The upstream said no requests are left until then (ms): the next
    /// request waits for it.
    pub exhausted_until: Option<Millis>,
    /// Set when a refresh found the group needs reconnecting (its
    /// integrations are paused and the operator told already).
    pub group_needs_reconnect: bool,
    /// A 401 already led to a refresh in this run.
    pub refreshed_after_401: bool,
    /// Record exchanges to it, or answer from it instead of the network
    /// (`inlet plugin test`).
    pub cassette: Option<Arc<Cassette>>,
}

/// Hosts a newer plugin file declares that a group's operator has not yet
/// approved: refused, with how to approve them.
pub struct UnapprovedHosts {
    pub hosts: Vec<String>,
    pub group_id: i64,
}

/// The group whose OAuth tokens a fetch uses, and where to renew them.
pub struct GroupTokens {
    pub refresh: Arc<dyn TokenRefresh>,
    pub group_id: i64,
}

/// Renews a group's OAuth credentials after the upstream refused them (or
/// hands over those another worker just renewed). `auth::OAuth` implements
/// it; the capability owns the trait so that it needs nothing from auth.
pub trait TokenRefresh: Send + Sync {
    fn refresh_refused(self: Arc<Self>, group_id: i64, refused: Credentials) -> RefreshFuture;
}

pub type RefreshFuture = std::pin::Pin<Box<dyn Future<Output = Result<Credentials, RefreshError>> + Send>>;

/// Why a group's OAuth credentials could not be renewed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The group must be connected again by an operator (it is marked so
    /// already, or has nothing to refresh with).
    #[error("{0}")]
    NeedsReconnect(String),
    /// This refresh found the refresh token refused: it marked the group,
    /// paused the group's integrations and told the operator.
    #[error("{0}")]
    GroupPaused(String),
    /// Worth retrying later (provider down, database busy).
    #[error("{0}")]
    Transient(String),
}

impl From<anyhow::Error> for RefreshError {
    fn from(error: anyhow::Error) -> Self {
        RefreshError::Transient(format!("{error:#}"))
    }
}

/// Redirects followed per request; each hop is checked like the first.
const MAX_REDIRECTS: usize = 5;

impl OutboundHttp {
    /// Decide whether `url` may be requested. Declared hosts are `api.example.com`
    /// (https, default port) or `*.example.com` (any subdomain).
    fn check(&self, url: &Url) -> Result<(), Error> {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if let Some(reason) = internal_address(url) {
            return Err(Error::Denied(format!(
                "{} is {reason}; plugins may reach it only through an operator's upstream override",
                redact(url)
            )));
        }
        if url.scheme() != "https" {
            return Err(Error::Denied(format!("{} uses {}; only https is allowed", redact(url), url.scheme())));
        }
        if url.port().is_some() {
            return Err(Error::Denied(format!("{} names a port; only the default https port is allowed", redact(url))));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::Denied(format!(
                "{} carries a user name or password; send credentials in a header (a URL is logged)",
                redact(url)
            )));
        }
        let declared = self.allowed_hosts.iter().any(|pattern| host_matches(pattern, &host));
        if let Some(unapproved) = self.unapproved.as_ref().filter(|u| u.hosts.iter().any(|p| host_matches(p, &host))) {
            let group = unapproved.group_id;
            return Err(Error::Denied(format!(
                "{} is declared by a newer file of the plugin than group {group} was approved for; approve it with \
                 `inlet groups approve {group}` (or POST /api/groups/{group}/approve)",
                redact(url)
            )));
        }
        if declared {
            Ok(())
        } else {
            Err(Error::Denied(format!(
                "{} is not on the plugin's declared hosts ({})",
                redact(url),
                self.allowed_hosts.join(", ")
            )))
        }
    }

    /// Send, following up to [`MAX_REDIRECTS`] redirects. Every hop is checked
    /// against the allowlist again, and credentials go only to the host the
    /// plugin addressed. A refused OAuth token is refreshed and the request
    /// sent again, once per run: a 401 that a fresh token does not cure (a
    /// scope the account lacks) must not spend a refresh per request.
    pub async fn send(&mut self, mut request: Request) -> Result<Response, Error> {
        let first =
            Url::parse(&request.url).map_err(|e| Error::Denied(format!("{:?} is not a URL: {e}", request.url)))?;
        if request.auth == Auth::Declared {
            if self.declared_auth == Auth::None {
                return Err(Error::Denied(
                    "the plugin's manifest declares no credentials; send the request unauthenticated".into(),
                ));
            }
            request.auth = self.declared_auth.clone();
        }
        for (name, _) in &request.headers {
            refuse_header(name, "set")?;
        }
        if let Auth::ApiKeyHeader(name) = &request.auth {
            refuse_header(name, "carry the API key in")?;
        }
        let (mut url, mut method, mut body) = (first.clone(), request.method, request.body);
        let mut redirects = 0;
        let mut waited_for_reset = false;
        loop {
            self.check(&url)?;
            let mut target = self.overrides.rewrite(&url).unwrap_or_else(|| url.clone());
            let mut headers = request.headers.clone();
            // Credentials go only to the host the plugin addressed: the
            // group's, and any the plugin set itself (with raw credentials).
            let same_host = url.host_str() == first.host_str();
            if !same_host {
                headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
            }
            let auth = if same_host { &request.auth } else { &Auth::None };
            let injected = self.inject_credentials(auth, &mut headers, &mut target)?;
            let replaying = self.cassette.as_ref().is_some_and(|c| c.is_replaying());
            // The upstream said none are left until its reset: kept until
            // waited out (a request refused for it leaves it for the next),
            // and before the group's own limit, whose turn it would waste.
            if let Some(until) = self.exhausted_until.filter(|_| !replaying) {
                self.wait_for_reset(until).await?;
                self.exhausted_until = None;
            }
            if let Some(limit) = self.rate_limit.as_ref().filter(|_| !replaying) {
                limit.wait_turn(self.deadline).await?;
            }
            // Counted once nothing here holds the request back: one refused
            // by a wait never reaches the provider. A replay reaches none either.
            if let Some(quotas) = self.quotas.as_ref().filter(|_| !replaying) {
                quotas.spend(&url).await?;
            }
            let mut response = match self.cassette.as_ref().filter(|_| replaying) {
                Some(cassette) => cassette
                    .replay(method, url.as_str(), body.as_deref())
                    .ok_or_else(|| Error::Denied(format!("{} {url} is not in the cassette", method.as_str())))?,
                None => self.send_once(&url, target, method, &headers, body.clone(), request.timeout_ms).await?,
            };
            // An upstream that echoes a request header (CORS reflection, a
            // debugging endpoint) must not hand the plugin its credential.
            // (A wait's body was dropped already, and an empty one hides nothing.)
            if !injected.is_empty()
                && !response.body.is_empty()
                && let Some(coding) = content_coding(&response.headers)
            {
                return Err(Error::Denied(format!(
                    "{url} answered with its body encoded ({coding}), though asked for it as it is; the host \
                     cannot check an encoded body for the credentials it sent, so the response was dropped"
                )));
            }
            for secret in injected.iter().filter(|s| !s.is_empty()) {
                redact_secret(&mut response, secret);
            }
            if let Some(cassette) = self.cassette.as_ref().filter(|_| !replaying) {
                cassette.record(method, url.as_str(), &request.headers, body.as_deref(), &response);
            }
            if is_wait(response.status, &response.headers) {
                return Err(Error::RateLimited(retry_after(&response.headers).unwrap_or(60)));
            }
            if let Some(until) = exhausted_until(&response.headers) {
                // The next request waits for the reset.
                self.exhausted_until = Some(until);
                if matches!(response.status, 403 | 429) {
                    if replaying || waited_for_reset {
                        return Err(Error::RateLimited(self.seconds_until(until)));
                    }
                    // Refused for the limit: ask again once it resets, if that is within the call.
                    waited_for_reset = true;
                    continue;
                }
            }
            let Some(location) = redirect_location(&response) else {
                if response.status == 401 && !matches!(auth, Auth::None) {
                    if matches!(auth, Auth::Bearer) && !self.refreshed_after_401 && self.refresh_refused_token().await?
                    {
                        self.refreshed_after_401 = true;
                        continue;
                    }
                    return Err(Error::Unauthorized(format!("{} refused the group's credentials (401)", redact(&url))));
                }
                return Ok(response);
            };
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(Error::Transport(format!("{} redirected more than {MAX_REDIRECTS} times", redact(&first))));
            }
            let mut next = url.join(&location).map_err(|e| {
                Error::Transport(format!("{} redirected to {location:?}, which is not a URL: {e}", redact(&url)))
            })?;
            // The key is added again on each hop to its host; a redirect that
            // repeats the query (as many do) carries it, masked, already.
            if let Auth::ApiKeyQuery(name) = &request.auth {
                remove_query_param(&mut next, name);
            }
            // A 303, or a 301/302 after a POST, turns into a GET without a body.
            if response.status == 303
                || (matches!(response.status, 301 | 302) && !matches!(method, Method::Get | Method::Head))
            {
                (method, body) = (Method::Get, None);
            }
            url = next;
        }
    }

    /// Wait until the upstream's requests come back at `until` (ms), or
    /// refuse at once when that is after the call's deadline.
    async fn wait_for_reset(&self, until: Millis) -> Result<(), Error> {
        let wait = Duration::from_millis(until.saturating_sub(self.clock.now_ms()).max(0) as u64);
        if tokio::time::Instant::now() + wait > self.deadline {
            return Err(Error::RateLimited(self.seconds_until(until)));
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }

    fn seconds_until(&self, until: Millis) -> u32 {
        (until.saturating_sub(self.clock.now_ms()).max(0) as f64 / 1000.0).ceil().max(1.0) as u32
    }

    /// After a 401: refresh the group's OAuth token (or take the one another
    /// worker just refreshed). False when the credentials cannot be refreshed.
    async fn refresh_refused_token(&mut self) -> Result<bool, Error> {
        let Some(tokens) = &self.tokens else { return Ok(false) };
        if !self.credentials.renewable() {
            return Ok(false);
        }
        match Arc::clone(&tokens.refresh).refresh_refused(tokens.group_id, self.credentials.clone()).await {
            Ok(renewed) => {
                self.credentials = renewed;
                Ok(true)
            }
            Err(RefreshError::GroupPaused(message)) => {
                self.group_needs_reconnect = true;
                Err(Error::Unauthorized(message))
            }
            Err(RefreshError::NeedsReconnect(message)) => Err(Error::Unauthorized(message)),
            Err(RefreshError::Transient(message)) => Err(Error::Transport(message)),
        }
    }

    async fn send_once(
        &self,
        url: &Url,
        target: Url,
        method: Method,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
        timeout_ms: Option<u32>,
    ) -> Result<Response, Error> {
        let left = self.deadline.saturating_duration_since(tokio::time::Instant::now());
        let timeout =
            timeout_ms.map_or(self.timeout, |ms| Duration::from_millis(ms.into()).min(self.timeout)).min(left);
        let mut builder = self.client.request(to_reqwest(method), target).timeout(timeout);
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        // Without it a server may compress the body as it likes (RFC 9110,
        // 12.5.3), and a compressed echo of a credential is not redacted.
        builder = builder.header("accept-encoding", "identity");
        if let Some(body) = body {
            builder = builder.body(body);
        }
        let mut response = builder.send().await.map_err(|e| transport_error(url, e))?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        // Told to wait: whatever the body says (however large, however slow)
        // changes nothing; the caller turns this into `rate-limited`.
        if is_wait(status, &headers) {
            return Ok(Response { status, headers, body: Vec::new() });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(url, e))? {
            if (body.len() + chunk.len()) as u64 > self.max_response_bytes {
                return Err(Error::TooLarge(self.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response { status, headers, body })
    }

    /// Add the group's credentials to the request; returns the values added,
    /// which are redacted from the response.
    fn inject_credentials(
        &self,
        auth: &Auth,
        headers: &mut Vec<(String, String)>,
        url: &mut Url,
    ) -> Result<Vec<String>, Error> {
        let missing = |what: &str| Error::Unauthorized(format!("the group has no {what}; connect it first"));
        let mut set_header = |name: &str, value: String| {
            headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
            headers.push((name.to_string(), value));
        };
        Ok(match auth {
            Auth::None | Auth::Declared => Vec::new(),
            Auth::Bearer => {
                let token = self
                    .credentials
                    .get("access_token")
                    .or_else(|| self.credentials.get("api_key"))
                    .ok_or_else(|| missing("access token"))?;
                set_header("authorization", format!("Bearer {token}"));
                vec![token.to_string()]
            }
            Auth::ApiKeyHeader(name) => {
                let key = self.credentials.get("api_key").ok_or_else(|| missing("API key"))?;
                set_header(name, key.to_string());
                vec![key.to_string()]
            }
            Auth::ApiKeyQuery(name) => {
                let key = self.credentials.get("api_key").ok_or_else(|| missing("API key"))?;
                url.query_pairs_mut().append_pair(name, key);
                vec![key.to_string(), form_urlencoded::byte_serialize(key.as_bytes()).collect()]
            }
            Auth::Basic => {
                let user = self.credentials.get("username").ok_or_else(|| missing("username"))?;
                let password = self.credentials.get("password").unwrap_or_default();
                let header = basic_auth(user, password);
                set_header("authorization", header.clone());
                // Without a password the user name is the key (Stripe, Freshdesk).
                let secret = if password.is_empty() { user } else { password };
                vec![secret.to_string(), header["Basic ".len()..].to_string()]
            }
        })
    }
}

/// `http.send` for a plugin call: only during `fetch`, within what is left
/// of the call, counted and logged.
pub async fn send(scope: &mut CallScope, request: Request) -> wasmtime::Result<Result<Response, Error>> {
    let fetch = scope.fetch_scope("http")?;
    let logged_url = Url::parse(&request.url).map(|u| redact(&u)).unwrap_or_default();
    // Redirect hops, the retry after a 401 and a token refresh all fit in
    // what is left of the call: none gets a fresh timeout of its own.
    let result = match tokio::time::timeout_at(fetch.http.deadline, fetch.http.send(request)).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout),
    };
    let now = fetch.store.now();
    let outcome = match &result {
        Ok(response) => response.status.to_string(),
        Err(error) => error.outcome().to_string(),
    };
    tracing::debug!(plugin = %scope.plugin_id, url = %logged_url, %outcome, "outbound request");
    crate::metrics::METRICS.outbound_request(&scope.plugin_id, outcome);
    // A refusal is kept with the run, whatever the plugin makes of it.
    if let Err(Error::Denied(rule)) = &result {
        scope.logs.push(now, "warn", format!("request refused by the host: {rule}"));
    }
    Ok(result)
}

/// Request headers a plugin may not set, nor name as its API-key header:
/// they route the request elsewhere (`Host`, forwarding headers), are echoed
/// back by servers (`Origin` into `Access-Control-Allow-Origin`), ask for a
/// body the host cannot search for an echoed credential (compressed, or cut
/// into ranges), carry another party's credentials, or belong to the
/// connection, not the request.
const REFUSED_HEADERS: &[&str] = &[
    "accept-encoding",
    "range",
    "if-range",
    "host",
    "origin",
    "referer",
    "cookie",
    "authorization-info",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "expect",
    "forwarded",
    "via",
    "location",
    "max-forwards",
];

/// Refuse a header name a plugin wants to `what` (set, carry the API key in).
pub fn refuse_header(name: &str, what: &str) -> Result<(), Error> {
    let lower = name.trim().to_ascii_lowercase();
    let valid = reqwest::header::HeaderName::from_bytes(lower.as_bytes()).is_ok();
    let refused = REFUSED_HEADERS.contains(&lower.as_str())
        || ["proxy-", "x-forwarded-", "sec-", "access-control-"].iter().any(|prefix| lower.starts_with(prefix));
    match (valid, refused) {
        (false, _) => Err(Error::Denied(format!("{name:?} is not a valid header name"))),
        (true, true) => Err(Error::Denied(format!(
            "plugins may not {what} the {name} header: it routes the request, is reflected by servers, asks for a \
             body the host cannot check for credentials, or belongs to the connection"
        ))),
        (true, false) => Ok(()),
    }
}

/// The content coding of a response's body, unless it is none (`identity`).
fn content_coding(headers: &[(String, String)]) -> Option<&str> {
    headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-encoding"))
        .map(|(_, value)| value.trim())
        .filter(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("identity"))
}

/// Mask `secret` in a response, as sent and as an echo commonly writes it:
/// percent-encoded (a URL or a query echoed back: as a form, or byte by
/// byte in either case of hex) and escaped in a JSON string (with `/` as it
/// is, or as `\/`).
fn redact_secret(response: &mut Response, secret: &str) {
    let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json.trim_matches('"').to_string();
    let mut forms = vec![
        form,
        percent_encoded(secret, false),
        percent_encoded(secret, true),
        json.replace('/', "\\/"),
        json,
        secret.to_string(),
    ];
    forms.sort();
    forms.dedup();
    for form in forms {
        mask(response, &form);
    }
}

/// `text` with every byte outside RFC 3986's unreserved set as `%XX`.
fn percent_encoded(text: &str, lowercase: bool) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(byte).to_string(),
            _ if lowercase => format!("%{byte:02x}"),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Replace every occurrence of `secret` in the response's headers and body.
fn mask(response: &mut Response, secret: &str) {
    for (_, value) in &mut response.headers {
        if value.contains(secret) {
            *value = value.replace(secret, REDACTED);
        }
    }
    response.body = redact_bytes(&response.body, secret.as_bytes());
}

/// `url` without the query parameter `name`; the rest of the query as it
/// was, byte for byte (a signed URL must stay as signed).
fn remove_query_param(url: &mut Url, name: &str) {
    let Some(query) = url.query() else { return };
    let named = |pair: &&str| form_urlencoded::parse(pair.as_bytes()).next().is_some_and(|(key, _)| key == name);
    if !query.split('&').any(|pair| named(&pair)) {
        return;
    }
    let kept: Vec<&str> = query.split('&').filter(|pair| !named(pair)).collect();
    let kept = kept.join("&");
    url.set_query(Some(&kept).filter(|kept| !kept.is_empty()).map(String::as_str));
}

/// Where a redirect response points, if it is one.
fn redirect_location(response: &Response) -> Option<String> {
    if !matches!(response.status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    response.headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("location")).map(|(_, value)| value.clone())
}

fn to_reqwest(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Head => reqwest::Method::HEAD,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

fn transport_error(url: &Url, error: reqwest::Error) -> Error {
    if error.is_timeout() {
        Error::Timeout
    } else {
        // reqwest's message can include the full URL; name only scheme, host
        // and path. The innermost cause says what actually went wrong.
        let cause = std::error::Error::source(&error).map_or_else(String::new, |source| {
            let mut innermost = source;
            while let Some(next) = innermost.source() {
                innermost = next;
            }
            format!(": {innermost}")
        });
        Error::Transport(format!("{}: {}{cause}", redact(url), error.without_url()))
    }
}

/// A 429 or 503 that says when to come back.
fn is_wait(status: u16, headers: &[(String, String)]) -> bool {
    // GitHub answers its secondary rate limits with 403 or 429 and a Retry-After.
    matches!(status, 403 | 429 | 503) && retry_after(headers).is_some()
}

/// When the upstream's own count of requests left (`x-ratelimit-remaining`,
/// GitHub and many others) is at zero: the reset it names
/// (`x-ratelimit-reset`, Unix seconds), in ms.
fn exhausted_until(headers: &[(String, String)]) -> Option<Millis> {
    let header = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
    if header("x-ratelimit-remaining")? != "0" {
        return None;
    }
    let reset: i64 = header("x-ratelimit-reset")?.parse().ok()?;
    Some(reset.saturating_mul(1000))
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs; it counts as a minute).
fn retry_after(headers: &[(String, String)]) -> Option<u32> {
    let (_, value) = headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))?;
    Some(value.trim().parse().unwrap_or(60))
}

/// A URL without its query, which may carry keys or personal ids, nor a
/// user name and password.
fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound(hosts: &[&str]) -> OutboundHttp {
        OutboundHttp {
            client: crate::outbound::client(&UpstreamOverrides::default()),
            declared_auth: Auth::None,
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            unapproved: None,
            overrides: Arc::default(),
            credentials: Credentials::default(),
            timeout: Duration::from_secs(1),
            max_response_bytes: 1024,
            tokens: None,
            rate_limit: None,
            quotas: None,
            deadline: tokio::time::Instant::now() + Duration::from_secs(1),
            clock: Arc::new(crate::clock::SystemClock),
            exhausted_until: None,
            group_needs_reconnect: false,
            refreshed_after_401: false,
            cassette: None,
        }
    }

    fn denied(http: &OutboundHttp, url: &str) -> String {
        match http.check(&Url::parse(url).unwrap()) {
            Err(Error::Denied(rule)) => rule,
            other => panic!("{url} was not denied: {other:?}"),
        }
    }

    #[test]
    fn only_declared_https_hosts_pass() {
        let http = outbound(&["api.monzo.com", "*.googleapis.com"]);
        assert!(http.check(&Url::parse("https://api.monzo.com/accounts").unwrap()).is_ok());
        assert!(http.check(&Url::parse("https://sheets.googleapis.com/v4").unwrap()).is_ok());
        assert!(denied(&http, "https://googleapis.com/").contains("not on the plugin's declared hosts"));
        assert!(denied(&http, "https://api.monzo.com.evil.example/").contains("not on the plugin's declared hosts"));
        assert!(denied(&http, "http://api.monzo.com/").contains("only https"));
        assert!(denied(&http, "https://api.monzo.com:8443/").contains("port"));
        let userinfo = denied(&http, "https://alice:hunter2@api.monzo.com/");
        assert!(userinfo.contains("user name or password") && !userinfo.contains("hunter2"), "{userinfo}");
    }

    /// A key sent as Basic auth's user name, with no password, is masked in
    /// what the upstream answers, as a password would be.
    #[test]
    fn a_key_sent_as_the_basic_user_name_is_masked() {
        let mut http = outbound(&["api.example.com"]);
        http.credentials = Credentials::new([("username".to_string(), "sk_key".to_string())].into_iter().collect());
        let (mut headers, mut url) = (vec![], Url::parse("https://api.example.com/").unwrap());
        let masked = http.inject_credentials(&Auth::Basic, &mut headers, &mut url).unwrap();
        assert!(masked.contains(&"sk_key".to_string()), "{masked:?}");
    }

    #[test]
    fn internal_addresses_are_refused_even_when_declared() {
        let http = outbound(&["127.0.0.1", "localhost", "10.0.0.8", "169.254.169.254", "[::1]", "192.168.1.1"]);
        for (url, reason) in [
            ("https://127.0.0.1/", "loopback address"),
            ("https://localhost/", "loopback name"),
            ("https://10.0.0.8/", "private address"),
            ("https://192.168.1.1/", "private address"),
            ("https://169.254.169.254/latest/meta-data", "link-local address"),
            ("https://[::1]/", "loopback address"),
            ("https://[::ffff:127.0.0.1]/", "loopback address"),
            ("https://[64:ff9b::10.0.0.1]/", "private address"),
            ("https://[2002:a9fe:a9fe::]/", "link-local address"),
            ("https://0.1.2.3/", "not a routable address"),
            ("https://198.18.0.1/", "not a routable address"),
        ] {
            assert!(denied(&http, url).contains(reason), "{url}");
        }
    }

    #[tokio::test]
    async fn authenticated_requests_take_the_manifests_placement() {
        let placed = |placement| Auth::declared_by(&AuthKind::ApiKey { label: "key".into(), placement });
        assert_eq!(placed(Some(KeyPlacement::Header("api-key".into()))), Auth::ApiKeyHeader("api-key".into()));
        assert_eq!(placed(Some(KeyPlacement::Query("key".into()))), Auth::ApiKeyQuery("key".into()));
        assert_eq!(placed(Some(KeyPlacement::Bearer)), Auth::Bearer);
        assert_eq!(Auth::declared_by(&AuthKind::Basic { label: "login".into() }), Auth::Basic);
        // A plugin that declares no credentials cannot ask for them.
        let mut http = outbound(&["api.example.com"]);
        let request = Request {
            method: Method::Get,
            url: "https://api.example.com/".into(),
            headers: vec![],
            body: None,
            auth: Auth::Declared,
            timeout_ms: None,
        };
        match http.send(request).await {
            Err(Error::Denied(why)) => assert!(why.contains("declares no credentials"), "{why}"),
            other => panic!("not refused: {other:?}"),
        }
    }

    /// A redirect takes no credential along that it should not: an API key
    /// in the query is sent once to its host, however the redirect repeats
    /// the query (it was sent twice, the second time masked, and upstreams
    /// that read the first refused it), and an `Authorization` the plugin
    /// set itself goes to no other host.
    #[tokio::test]
    async fn a_redirect_carries_no_credential_it_should_not() {
        use axum::extract::{OriginalUri, State};
        use axum::http::{HeaderMap, StatusCode};
        type Seen = Arc<std::sync::Mutex<Vec<String>>>;
        let seen: Seen = Arc::default();
        let app = axum::Router::new()
            .route(
                "/items",
                axum::routing::get(|OriginalUri(uri): OriginalUri| async move {
                    let location = format!("https://a.example.com/items/?{}", uri.query().unwrap_or_default());
                    (StatusCode::MOVED_PERMANENTLY, [("location", location)])
                }),
            )
            .route(
                "/away",
                axum::routing::get(|| async { (StatusCode::FOUND, [("location", "https://b.example.com/landed")]) }),
            )
            .fallback(|State(seen): State<Seen>, OriginalUri(uri): OriginalUri, headers: HeaderMap| async move {
                let authorization = headers.get("authorization").map(|v| v.to_str().unwrap().to_string());
                seen.lock().unwrap().push(format!("{uri} authorization={authorization:?}"));
            })
            .with_state(Arc::clone(&seen));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let mut http = outbound(&["a.example.com", "b.example.com"]);
        let overrides = format!("a.example.com={base},b.example.com={base}");
        http.overrides = Arc::new(UpstreamOverrides::parse_list(&overrides).unwrap());
        http.credentials = Credentials::new([("api_key".to_string(), "k3y".to_string())].into_iter().collect());
        (http.timeout, http.deadline) =
            (Duration::from_secs(10), tokio::time::Instant::now() + Duration::from_secs(10));
        let get = |url: &str, headers: Vec<(String, String)>, auth: Auth| Request {
            method: Method::Get,
            url: url.into(),
            headers,
            body: None,
            auth,
            timeout_ms: None,
        };

        let keyed = get("https://a.example.com/items?a=x%20y&flag", vec![], Auth::ApiKeyQuery("key".into()));
        assert_eq!(http.send(keyed).await.unwrap().status, 200);
        let own = vec![("Authorization".to_string(), "Bearer plugin-set".to_string())];
        assert_eq!(http.send(get("https://a.example.com/away", own, Auth::None)).await.unwrap().status, 200);
        assert_eq!(
            *seen.lock().unwrap(),
            ["/items/?a=x%20y&flag&key=k3y authorization=None", "/landed authorization=None"]
        );
    }

    /// An upstream that refused a request for its limit, until a reset
    /// beyond the call's deadline, gets no more, however many the plugin
    /// sends (the refusal forgot the reset, and the next request went out).
    #[tokio::test]
    async fn requests_wait_for_the_upstreams_reset_until_it_comes() {
        use axum::http::StatusCode;
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let reset =
            (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 600).to_string();
        let counter = Arc::clone(&asked);
        let app = axum::Router::new().fallback(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let headers = [("x-ratelimit-remaining", "0".to_string()), ("x-ratelimit-reset", reset.clone())];
            async move { (StatusCode::TOO_MANY_REQUESTS, headers) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let mut http = outbound(&["api.example.com"]);
        http.overrides = Arc::new(UpstreamOverrides::parse_list(&format!("api.example.com={base}")).unwrap());
        for _ in 0..3 {
            let request = Request {
                method: Method::Get,
                url: "https://api.example.com/".into(),
                headers: vec![],
                body: None,
                auth: Auth::None,
                timeout_ms: None,
            };
            assert!(matches!(http.send(request).await, Err(Error::RateLimited(_))));
        }
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1, "asked again before the reset");
    }

    #[test]
    fn headers_that_route_or_reflect_are_refused_and_credentials_never_come_back() {
        for name in ["Host", "origin", "Referer", "Cookie", "Transfer-Encoding", "X-Forwarded-Host", "Proxy-Foo"] {
            assert!(matches!(refuse_header(name, "set"), Err(Error::Denied(_))), "{name}");
        }
        assert!(refuse_header("x-api-key", "set").is_ok());
        assert!(matches!(refuse_header("bad name", "set"), Err(Error::Denied(_))));
        let mut response = Response {
            status: 200,
            headers: vec![("access-control-allow-origin".into(), "sk_live_secret".into())],
            body: b"{\"echo\":\"sk_live_secret\",\"n\":1}".to_vec(),
        };
        redact_secret(&mut response, "sk_live_secret");
        assert_eq!(response.headers[0].1, "[redacted]");
        assert_eq!(response.body, b"{\"echo\":\"[redacted]\",\"n\":1}");
    }
}
