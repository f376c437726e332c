//! The `repositories` and `starred` instance types: lists GitHub serves
//! whole (`GET /user/repos`, `GET /user/starred`), paged by the `Link`
//! header. Every run reads them completely; what two complete reads in a row
//! miss (a deleted repository, an unstarred one) is tombstoned after the last
//! page of the second. One read is not enough: pages are numbered, and a
//! removal during a read shifts the pages after it.

use crate::{PER_PAGE, get, get_as, send, string, trim_repository};
use inlet_plugin_sdk::prelude::*;
use inlet_plugin_sdk::snapshot::Snapshot;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = json!({"visibility": "all", "affiliation": ["owner", "collaborator"]}))]
pub struct RepositoriesConfig {
    /// Only public or only private repositories (default: all).
    visibility: Option<Visibility>,
    /// Only repositories reached this way (default: all three).
    #[serde(default)]
    affiliation: Vec<Affiliation>,
}

#[derive(Deserialize, Clone, Copy, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Visibility {
    All,
    Public,
    Private,
}

#[derive(Deserialize, Clone, Copy, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Affiliation {
    /// Repositories the user owns.
    Owner,
    /// Repositories the user was added to as a collaborator.
    Collaborator,
    /// Repositories the user reaches through an organization's teams.
    OrganizationMember,
}

impl Visibility {
    fn as_str(self) -> &'static str {
        match self {
            Visibility::All => "all",
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }
}

impl Affiliation {
    fn as_str(self) -> &'static str {
        match self {
            Affiliation::Owner => "owner",
            Affiliation::Collaborator => "collaborator",
            Affiliation::OrganizationMember => "organization_member",
        }
    }
}

pub fn fetch_repositories(config: &str) -> Result<FetchSummary, PluginError> {
    let config: RepositoriesConfig = parse_config(config)?;
    let mut first = get("/user/repos").query("per_page", PER_PAGE);
    if let Some(visibility) = config.visibility {
        first = first.query("visibility", visibility.as_str());
    }
    if !config.affiliation.is_empty() {
        let names: Vec<&str> = config.affiliation.iter().map(|a| a.as_str()).collect();
        first = first.query("affiliation", names.join(","));
    }
    read_all(first, "repositories", Snapshot::objects("repositories", "repository").paged_by_position(), |repository| {
        string(repository, "id")
    })
}

/// Asked in the star media type, each item is `{"starred_at", "repo"}`.
pub fn fetch_starred() -> Result<FetchSummary, PluginError> {
    let first = get_as("/user/starred", "application/vnd.github.star+json").query("per_page", PER_PAGE);
    read_all(first, "starred", Snapshot::objects("starred", "starred").paged_by_position(), |item| {
        string(starred_repository(item), "id")
    })
}

/// Read every page from `first` on, emitting each as a `kind` batch, then
/// tombstone what this complete read and the one before missed.
fn read_all(
    first: http::Request,
    kind: &str,
    mut seen: Snapshot,
    external_id: fn(&Value) -> Result<String, PluginError>,
) -> Result<FetchSummary, PluginError> {
    let mut summary = FetchSummary::default();
    let mut next = Some(first);
    while let Some(request) = next.take() {
        let response = send(request.clone())?;
        let page: Vec<Value> = serde_json::from_slice(&response.body)?;
        for item in &page {
            seen.saw(external_id(item)?);
        }
        summary.items_seen += page.len() as u64;
        if !page.is_empty() {
            emit_json(kind, &page)?;
            checkpoint()?;
        }
        log::progress(summary.items_seen, None);
        next = paginate::next_link(&response).map(|url| request.with_url(url));
    }
    let removed = seen.complete()?;
    log::info(format!("{} {kind} listed, {removed} gone (missed by two complete reads)", summary.items_seen));
    Ok(summary)
}

pub fn process_repositories(payload: &Value) -> Result<Records, PluginError> {
    let mut records = Records::default();
    for repository in payload.as_array().into_iter().flatten() {
        records.objects.push(
            ObjectRecord::new("repository", string(repository, "id")?)
                .name(string(repository, "full_name")?)
                .data(&trim_repository(repository))?,
        );
    }
    Ok(records)
}

/// A starred repository: the repository, and when it was starred.
pub fn process_starred(payload: &Value) -> Result<Records, PluginError> {
    let mut records = Records::default();
    for item in payload.as_array().into_iter().flatten() {
        let repository = starred_repository(item);
        let object = ObjectRecord::new("starred", string(repository, "id")?).name(string(repository, "full_name")?);
        let mut data = trim_repository(repository);
        if let Some(fields) = data.as_object_mut() {
            fields.insert("starred_at".into(), item.get("starred_at").cloned().unwrap_or(Value::Null));
        }
        records.objects.push(object.data(&data)?);
    }
    Ok(records)
}

/// The repository of a starred item: `repo` in the star media type, else
/// the item itself (a plain repository).
fn starred_repository(item: &Value) -> &Value {
    match item.get("repo") {
        Some(repository) if item.get("starred_at").is_some() => repository,
        _ => item,
    }
}
