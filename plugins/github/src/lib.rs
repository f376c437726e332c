//! GitHub: the user's events, repositories and starred repositories from the
//! REST API (<https://docs.github.com/rest>), with a personal access token.
//! Events are polled with `If-None-Match` (a 304 costs no rate limit) and
//! honour `X-Poll-Interval`; repositories and stars are read whole, and what a
//! complete read no longer lists is tombstoned.

mod events;
mod lists;

use inlet_plugin_sdk::prelude::*;
use serde_json::{Map, Value};

const API: &str = "https://api.github.com";
/// The REST API version the plugin is written against.
const API_VERSION: &str = "2022-11-28";
/// GitHub's largest page.
const PER_PAGE: &str = "100";

struct Github;

impl Plugin for Github {
    fn describe() -> Manifest {
        Manifest::new("github", "GitHub", env!("CARGO_PKG_VERSION"))
            .description("Your GitHub activity, repositories and stars")
            .auth(AuthKind::api_key("Personal access token (fine-grained or classic)", KeyPlacement::Bearer))
            // GitHub's secondary limit: at most 900 points (a GET is one) a minute.
            .rate_limit(900, 60)
            .instance_type(
                InstanceType::new("events", "Events")
                    .description("What you did on GitHub: pushes, issues, pull requests, stars... (the last 90 days)")
                    .every(15 * 60)
                    .host("api.github.com")
                    .config::<events::Config>()
                    .backfill_days(events::KEPT_DAYS),
            )
            .instance_type(
                InstanceType::new("repositories", "Repositories")
                    .description("The repositories you own or can reach as a collaborator or organization member")
                    .every(6 * 3600)
                    .host("api.github.com")
                    .config::<lists::RepositoriesConfig>(),
            )
            .instance_type(
                InstanceType::new("starred", "Starred repositories")
                    .description("The repositories you starred, with when you starred them")
                    .every(6 * 3600)
                    .host("api.github.com"),
            )
    }

    fn fetch(request: FetchRequest) -> Result<FetchSummary, PluginError> {
        dispatch!(request.instance_type, {
            "events" => events::fetch(&request.config, &request.mode),
            "repositories" => lists::fetch_repositories(&request.config),
            "starred" => lists::fetch_starred(),
        })
    }

    fn process(batch: RawBatch) -> Result<Records, PluginError> {
        if let Some(removed) = snapshot::removed(&batch) {
            return removed;
        }
        let payload: Value = serde_json::from_str(&batch.payload)?;
        match batch.kind.as_str() {
            "events" => events::process(&payload),
            "repositories" => lists::process_repositories(&payload),
            "starred" => lists::process_starred(&payload),
            other => Err(PluginError::Permanent(format!("unknown batch kind {other:?}"))),
        }
    }
}

inlet_plugin_sdk::export_plugin!(Github);

/// An authenticated GET of the REST API, in its JSON media type and version.
/// (The SDK adds `accept: application/json` to every request; GitHub's own
/// media type, added here, is the one it honours.)
fn get(path: &str) -> http::Request {
    get_as(path, "application/vnd.github+json")
}

/// Like [`get`], asking for a custom media type (`application/vnd.github.star+json`).
fn get_as(path: &str, media_type: &str) -> http::Request {
    http::get(format!("{API}{path}"))
        .authenticated()
        .header("accept", media_type)
        .header("x-github-api-version", API_VERSION)
}

/// Send, and require a 2xx answer (see [`check`]).
fn send(request: http::Request) -> Result<http::Response, PluginError> {
    let url = request.url();
    let response = request.send()?;
    http::check_status(&url, &response)?;
    Ok(response)
}

fn string(value: &Value, field: &str) -> Result<String, PluginError> {
    match &value[field] {
        Value::String(s) => Ok(s.clone()),
        // Repository ids are numbers; external ids are strings.
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(PluginError::Permanent(format!("upstream object has no field {field:?}"))),
    }
}

/// A repository as worth keeping: without the API's URL templates
/// (`issues_url`, `keys_url`...), and its owner reduced to who it is.
fn trim_repository(repository: &Value) -> Value {
    let Some(fields) = repository.as_object() else { return repository.clone() };
    const KEPT_URLS: [&str; 4] = ["html_url", "clone_url", "ssh_url", "mirror_url"];
    let mut kept: Map<String, Value> = fields
        .iter()
        .filter(|(name, _)| !name.ends_with("_url") || KEPT_URLS.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    if let Some(owner) = fields.get("owner").and_then(Value::as_object) {
        let owner: Map<String, Value> = ["login", "id", "type", "html_url"]
            .iter()
            .filter_map(|field| owner.get(*field).map(|value| (field.to_string(), value.clone())))
            .collect();
        kept.insert("owner".into(), Value::Object(owner));
    }
    Value::Object(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_repository_keeps_its_fields_without_url_templates() {
        let repository = json!({
            "id": 1296269,
            "full_name": "octocat/Hello-World",
            "html_url": "https://github.com/octocat/Hello-World",
            "issues_url": "https://api.github.com/repos/octocat/Hello-World/issues{/number}",
            "owner": {"login": "octocat", "id": 1, "type": "User", "avatar_url": "https://a.example/1"},
        });
        assert_eq!(
            trim_repository(&repository),
            json!({
                "id": 1296269,
                "full_name": "octocat/Hello-World",
                "html_url": "https://github.com/octocat/Hello-World",
                "owner": {"login": "octocat", "id": 1, "type": "User"},
            })
        );
        assert_eq!(string(&repository, "id").unwrap(), "1296269");
    }
}
