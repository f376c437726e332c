//! `http.send`: the only network access a plugin has. The URL must be on a
//! host the plugin declared; the group's credentials are added here so the
//! plugin never holds them; an operator's upstream override may point a
//! declared host somewhere else (tests, staging, demos).

use crate::runtime::context::PluginCtx;
use crate::runtime::wit::inlet::plugin::http::{self, Auth, Error, Method, Request, Response};
use crate::store::groups::Credentials;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Declared host → base URL that replaces `scheme://host[:port]`.
#[derive(Debug, Clone, Default)]
pub struct UpstreamOverrides(BTreeMap<String, Url>);

impl UpstreamOverrides {
    /// Parse `host=url[,host=url...]`, as in `INLET_UPSTREAM_OVERRIDE`.
    pub fn parse_list(list: &str) -> anyhow::Result<Self> {
        let mut overrides = UpstreamOverrides::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (host, base) = entry.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("upstream override {entry:?} must look like host=http://127.0.0.1:9001")
            })?;
            overrides.insert(host, base)?;
        }
        Ok(overrides)
    }

    pub fn insert(&mut self, host: &str, base: &str) -> anyhow::Result<()> {
        let base_url = Url::parse(base)
            .map_err(|e| anyhow::anyhow!("upstream override for {host}: {base:?} is not a URL ({e})"))?;
        if !matches!(base_url.scheme(), "http" | "https") {
            anyhow::bail!("upstream override for {host}: {base:?} must be an http:// or https:// URL");
        }
        self.0.insert(host.trim().to_ascii_lowercase(), base_url);
        Ok(())
    }

    pub fn extend(&mut self, other: UpstreamOverrides) {
        self.0.extend(other.0);
    }

    fn rewrite(&self, url: &Url) -> Option<Url> {
        let base = self.0.get(url.host_str()?)?;
        let mut target = base.clone();
        let prefix = base.path().trim_end_matches('/');
        target.set_path(&format!("{prefix}{}", url.path()));
        target.set_query(url.query());
        Some(target)
    }
}

/// Outbound HTTP for one fetch: the hosts it may reach and the credentials
/// it may use.
pub struct OutboundHttp {
    pub client: reqwest::Client,
    pub allowed_hosts: Vec<String>,
    pub overrides: Arc<UpstreamOverrides>,
    pub credentials: Credentials,
    pub timeout: Duration,
    pub max_response_bytes: u64,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        // Following a redirect would skip the host check; the plugin sees the 3xx.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("inlet/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client's static configuration is valid")
}

impl OutboundHttp {
    /// Decide whether `url` may be requested. Declared hosts are `api.example.com`
    /// (https, default port) or `*.example.com` (any subdomain).
    fn check(&self, url: &Url) -> Result<(), Error> {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if url.scheme() != "https" {
            return Err(Error::Denied(format!("{} uses {}; only https is allowed", redact(url), url.scheme())));
        }
        if url.port().is_some() {
            return Err(Error::Denied(format!("{} names a port; only the default https port is allowed", redact(url))));
        }
        let declared = self.allowed_hosts.iter().any(|pattern| match pattern.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => host == *pattern,
        });
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

    async fn send(&self, request: Request) -> Result<Response, Error> {
        let url =
            Url::parse(&request.url).map_err(|e| Error::Denied(format!("{:?} is not a URL: {e}", request.url)))?;
        self.check(&url)?;
        let mut target = self.overrides.rewrite(&url).unwrap_or_else(|| url.clone());
        let mut headers = request.headers;
        self.inject_credentials(&request.auth, &mut headers, &mut target)?;

        let timeout =
            request.timeout_ms.map(|ms| Duration::from_millis(ms.into()).min(self.timeout)).unwrap_or(self.timeout);
        let mut builder = self.client.request(method(request.method), target).timeout(timeout);
        for (name, value) in &headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let mut response = builder.send().await.map_err(|e| transport_error(&url, e))?;

        let status = response.status().as_u16();
        if matches!(status, 429 | 503)
            && let Some(seconds) = retry_after(response.headers())
        {
            return Err(Error::RateLimited(seconds));
        }
        if status == 401 && !matches!(request.auth, Auth::None) {
            return Err(Error::Unauthorized(format!("{} refused the group's credentials (401)", redact(&url))));
        }
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(&url, e))? {
            if (body.len() + chunk.len()) as u64 > self.max_response_bytes {
                return Err(Error::TooLarge(self.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response { status, headers, body })
    }

    fn inject_credentials(&self, auth: &Auth, headers: &mut Vec<(String, String)>, url: &mut Url) -> Result<(), Error> {
        let missing = |what: &str| Error::Unauthorized(format!("the group has no {what}; connect it first"));
        let mut set_header = |name: &str, value: String| {
            headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
            headers.push((name.to_string(), value));
        };
        match auth {
            Auth::None => {}
            Auth::Bearer => {
                let token = self
                    .credentials
                    .get("access_token")
                    .or_else(|| self.credentials.get("api_key"))
                    .ok_or_else(|| missing("access token"))?;
                set_header("authorization", format!("Bearer {token}"));
            }
            Auth::ApiKeyHeader(name) => {
                let key = self.credentials.get("api_key").ok_or_else(|| missing("API key"))?;
                set_header(name, key.to_string());
            }
            Auth::ApiKeyQuery(name) => {
                let key = self.credentials.get("api_key").ok_or_else(|| missing("API key"))?;
                url.query_pairs_mut().append_pair(name, key);
            }
            Auth::Basic => {
                let user = self.credentials.get("username").ok_or_else(|| missing("username"))?;
                let password = self.credentials.get("password").unwrap_or_default();
                set_header("authorization", basic_auth(user, password));
            }
        }
        Ok(())
    }
}

impl http::Host for PluginCtx {
    async fn send(&mut self, request: Request) -> wasmtime::Result<Result<Response, Error>> {
        let scope = self.fetch_scope("http")?;
        let logged_url = Url::parse(&request.url).map(|u| redact(&u)).unwrap_or_default();
        let result = scope.http.send(request).await;
        let outcome = match &result {
            Ok(response) => response.status.to_string(),
            Err(error) => format!("{error:?}"),
        };
        tracing::debug!(plugin = %self.plugin_id, url = %logged_url, %outcome, "outbound request");
        Ok(result)
    }
}

fn method(method: Method) -> reqwest::Method {
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
        // reqwest's message can include the full URL; name only scheme, host and path.
        Error::Transport(format!("{}: {}", redact(url), error.without_url()))
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs; it counts as a minute).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<u32> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    Some(value.parse().unwrap_or(60))
}

/// A URL without its query, which may carry keys or personal ids.
fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}
