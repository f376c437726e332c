//! Outbound requests through the host's `http` capability.
//!
//! The host adds the group's credentials to a request sent
//! [`Request::authenticated`], where the manifest's `auth` says; the plugin
//! never sees them.
//! [`Request::send_json`] maps the usual HTTP failures to [`PluginError`]s so
//! that retries and reconnects happen without each plugin re-deciding them.

use crate::PluginError;
use crate::bindings::inlet::plugin::http as host;
pub use host::{Error, Method, Response};
use serde::de::DeserializeOwned;

/// A request being built.
#[derive(Clone)]
pub struct Request {
    inner: host::Request,
    query: Vec<(String, String)>,
}

pub fn get(url: impl Into<String>) -> Request {
    Request::new(Method::Get, url)
}

pub fn post(url: impl Into<String>) -> Request {
    Request::new(Method::Post, url)
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            inner: host::Request {
                method,
                url: url.into(),
                headers: vec![("accept".into(), "application/json".into())],
                body: None,
                authenticated: false,
                timeout_ms: None,
            },
            query: Vec::new(),
        }
    }

    /// Ask the host to add the group's credentials, as the manifest declares.
    pub fn authenticated(mut self) -> Self {
        self.inner.authenticated = true;
        self
    }

    /// Set a header, replacing one of the same name (the default `accept`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.inner.headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(&name));
        self.inner.headers.push((name, value.into()));
        self
    }

    /// Append a query parameter (percent-encoded).
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Set a query parameter: the value of the first added with that name is
    /// replaced where it stands (others of the name dropped), or it is appended.
    pub fn set_query(mut self, name: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        match self.query.iter().position(|(existing, _)| existing == name) {
            Some(at) => {
                self.query[at].1 = value;
                let mut index = 0;
                self.query.retain(|(existing, _)| {
                    index += 1;
                    index - 1 == at || existing != name
                });
                self
            }
            None => self.query(name, value),
        }
    }

    /// The same request to another URL (a page's `next` link), which carries
    /// its own query.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.inner.url = url.into();
        self.query.clear();
        self
    }

    pub fn json_body<T: serde::Serialize>(mut self, body: &T) -> Result<Self, PluginError> {
        self.inner.body = Some(serde_json::to_vec(body)?);
        self.inner.headers.push(("content-type".into(), "application/json".into()));
        Ok(self)
    }

    pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
        self.inner.timeout_ms = Some(timeout_ms);
        self
    }

    /// The full URL, query included.
    pub fn url(&self) -> String {
        if self.query.is_empty() {
            return self.inner.url.clone();
        }
        let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(&self.query).finish();
        let separator = if self.inner.url.contains('?') { '&' } else { '?' };
        format!("{}{separator}{query}", self.inner.url)
    }

    /// Send and return the response whatever its status.
    pub fn send(self) -> Result<Response, PluginError> {
        let mut request = self.inner.clone();
        request.url = self.url();
        host::send(&request).map_err(PluginError::from)
    }

    /// Send and require a 2xx status ([`check_status`] says what else means).
    pub fn send_checked(self) -> Result<Response, PluginError> {
        let url = self.url();
        let response = self.send()?;
        check_status(&url, &response)?;
        Ok(response)
    }

    /// Send, require a 2xx status, and decode the JSON body.
    pub fn send_json<T: DeserializeOwned>(self) -> Result<T, PluginError> {
        Ok(serde_json::from_slice(&self.send_checked()?.body)?)
    }
}

/// Classify a non-2xx response: 401 means the credentials are refused (a
/// plugin that places raw credentials itself sees its 401s; the host answers
/// those of `authenticated` requests as `unauthorized` itself), 429 asks to
/// wait, 408 and 5xx may pass, any other 4xx will not.
pub fn check_status(url: &str, response: &Response) -> Result<(), PluginError> {
    let status = response.status;
    if (200..300).contains(&status) {
        return Ok(());
    }
    let snippet: String = String::from_utf8_lossy(&response.body).chars().take(300).collect();
    let message = format!("{status} from {}: {snippet}", strip_query(url));
    Err(match status {
        401 => PluginError::Unauthorized(message),
        429 => PluginError::RateLimited(crate::RateLimited {
            retry_after_seconds: retry_after(response).unwrap_or(60),
            message,
        }),
        408 | 500..=599 => PluginError::Transient(message),
        _ => PluginError::Permanent(message),
    })
}

fn retry_after(response: &Response) -> Option<u32> {
    response.header("retry-after")?.trim().parse().ok()
}

impl Response {
    /// The first value of the header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(existing, _)| existing.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// `Retry-After` in seconds, when the upstream sent one.
    pub fn retry_after(&self) -> Option<u32> {
        retry_after(self)
    }
}

/// Query strings may carry ids worth keeping out of error messages.
fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

impl From<Error> for PluginError {
    fn from(error: Error) -> Self {
        match error {
            Error::Denied(rule) => PluginError::Permanent(format!("request denied: {rule}")),
            Error::Timeout => PluginError::Transient("upstream request timed out".into()),
            Error::TooLarge(limit) => {
                PluginError::Permanent(format!("upstream response larger than the host's {limit}-byte cap"))
            }
            Error::RateLimited(seconds) => PluginError::RateLimited(crate::RateLimited {
                retry_after_seconds: seconds,
                message: "upstream asked to slow down".into(),
            }),
            Error::Unauthorized(message) => PluginError::Unauthorized(message),
            Error::Transport(message) => PluginError::Transient(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_parameter_is_replaced_where_it_stands() {
        let request = get("https://a.example/x").query("a", "1").query("since", "t0").query("b", "2");
        assert_eq!(request.clone().set_query("since", "t1").url(), "https://a.example/x?a=1&since=t1&b=2");
        assert_eq!(request.set_query("page", "2").url(), "https://a.example/x?a=1&since=t0&b=2&page=2");
    }

    #[test]
    fn statuses_are_classified() {
        let answer = |status, headers: &[(&str, &str)]| Response {
            status,
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            body: b"no".to_vec(),
        };
        let class = |response: &Response| match check_status("https://a.example/x?key=1", response) {
            Ok(()) => "ok".to_string(),
            Err(PluginError::RateLimited(limited)) => format!("rate-limited {}", limited.retry_after_seconds),
            Err(PluginError::Transient(_)) => "transient".to_string(),
            Err(PluginError::Permanent(_)) => "permanent".to_string(),
            Err(_) => "other".to_string(),
        };
        assert_eq!(class(&answer(204, &[])), "ok");
        assert_eq!(class(&answer(429, &[("Retry-After", "7")])), "rate-limited 7");
        assert_eq!(class(&answer(429, &[])), "rate-limited 60");
        assert_eq!(class(&answer(503, &[])), "transient");
        assert_eq!(class(&answer(404, &[])), "permanent");
        let Err(PluginError::Unauthorized(message)) = check_status("https://a.example/x?key=1", &answer(401, &[]))
        else {
            panic!("a 401 is unauthorized");
        };
        assert_eq!(message, "401 from https://a.example/x: no", "without the query, which may hold a key");
    }
}
