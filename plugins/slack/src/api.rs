//! Calls to Slack's Web API (<https://docs.slack.dev/apis/web-api/>) with
//! the bot token, and what Slack's refusals mean. Slack answers most
//! failures with HTTP 200 and `{"ok": false, "error": "<code>"}`, so the
//! status alone says little: every answer's `ok` is read.

use inlet_plugin_sdk::RateLimited;
use inlet_plugin_sdk::prelude::*;
use serde_json::Value;
use std::collections::BTreeSet;

const API: &str = "https://slack.com/api";

/// How long to wait on a `ratelimited` answer without `Retry-After`: Slack's
/// limits are per minute.
const DEFAULT_RETRY_AFTER_SECONDS: u32 = 60;

/// An authenticated GET of the Web API method `name` (`conversations.list`).
pub fn method(name: &str) -> http::Request {
    http::get(format!("{API}/{name}")).authenticated()
}

/// Send one call and return Slack's answer when it says `ok`. `channel` is
/// the configured channel the call reads, if any, so that Slack's refusal of
/// it names the config field.
pub fn call(request: http::Request, channel: Option<&str>) -> Result<Value, PluginError> {
    let url = request.url();
    let response = request.send()?;
    // 429 (with Retry-After), 5xx, and a 401 from a proxy: typed as usual.
    http::check_status(&url, &response)?;
    let answer: Value = serde_json::from_slice(&response.body)?;
    if answer["ok"] == Value::Bool(true) {
        return Ok(answer);
    }
    let error = answer["error"].as_str().unwrap_or("unknown_error");
    Err(refusal(method_of(&url), error, &answer, response.retry_after(), channel))
}

/// Call `first`, then the same request with each answer's
/// `response_metadata.next_cursor` as `cursor`, until an answer has none (or
/// repeats one, which would page forever). `each` gets every answer, in order.
pub fn each_page(
    first: http::Request,
    channel: Option<&str>,
    mut each: impl FnMut(Value) -> Result<(), PluginError>,
) -> Result<(), PluginError> {
    let mut request = first.clone();
    let mut cursors = BTreeSet::new();
    loop {
        let answer = call(request, channel)?;
        let next = answer["response_metadata"]["next_cursor"].as_str().filter(|c| !c.is_empty()).map(str::to_string);
        each(answer)?;
        match next {
            Some(cursor) if cursors.insert(cursor.clone()) => request = first.clone().set_query("cursor", cursor),
            _ => return Ok(()),
        }
    }
}

/// The method a call went to: the last path segment, without the query.
fn method_of(url: &str) -> &str {
    let path = url.split('?').next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path)
}

/// What an `{"ok": false}` answer means for the run. Slack's error codes:
/// <https://docs.slack.dev/reference/methods/conversations.history#errors>.
fn refusal(method: &str, error: &str, answer: &Value, retry_after: Option<u32>, channel: Option<&str>) -> PluginError {
    let refused = format!("Slack refused {method} ({error})");
    match (error, channel) {
        ("invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive", _) => {
            PluginError::Unauthorized(format!(
                "{refused}: the bot token no longer works (the app was uninstalled, or the token revoked); connect \
                 the group again with the app's current xoxb- token"
            ))
        }
        ("missing_scope", _) => PluginError::Unauthorized(format!(
            "{refused}: the app lacks the scope {}; add it under OAuth & Permissions, reinstall the app, then \
             connect the group again",
            answer["needed"].as_str().unwrap_or("the method needs")
        )),
        ("ratelimited", _) => PluginError::RateLimited(RateLimited {
            retry_after_seconds: retry_after.unwrap_or(DEFAULT_RETRY_AFTER_SECONDS),
            message: refused,
        }),
        ("channel_not_found", Some(channel)) => PluginError::InvalidConfig(format!(
            "config.channel: Slack has no channel {channel:?} that the app can see ({error}); use the channel's \
             id (C…), not its name"
        )),
        ("not_in_channel", Some(channel)) => PluginError::InvalidConfig(format!(
            "config.channel: the app is not a member of {channel} ({error}); add it to the channel (/invite \
             @your-app in Slack)"
        )),
        ("internal_error" | "fatal_error" | "service_unavailable" | "request_timeout", _) => {
            PluginError::Transient(refused)
        }
        _ => PluginError::Permanent(refused),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(error: &str, channel: Option<&str>) -> PluginError {
        refusal("conversations.history", error, &json!({"ok": false, "error": error}), Some(30), channel)
    }

    #[test]
    fn slacks_error_codes_become_the_errors_the_host_acts_on() {
        for error in ["invalid_auth", "not_authed", "token_revoked", "account_inactive"] {
            assert!(matches!(refused(error, None), PluginError::Unauthorized(_)), "{error}");
        }
        let PluginError::RateLimited(limited) = refused("ratelimited", None) else { panic!("not rate-limited") };
        assert_eq!(limited.retry_after_seconds, 30);
        for error in ["channel_not_found", "not_in_channel"] {
            let PluginError::InvalidConfig(message) = refused(error, Some("C0NOSUCH01")) else { panic!("{error}") };
            assert!(message.starts_with("config.channel: ") && message.contains("C0NOSUCH01"), "{message}");
        }
        assert!(matches!(refused("channel_not_found", None), PluginError::Permanent(_)));
        assert!(matches!(refused("internal_error", None), PluginError::Transient(_)));
        assert_eq!(method_of("https://slack.com/api/conversations.list?limit=999"), "conversations.list");
    }
}
