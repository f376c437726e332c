//! `/api/integrations`: create, read, replace, delete; sync settings,
//! "Update now", pause/resume and the sync history.

use super::ApiState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Id, JsonBody, QueryParams};
use crate::operations::integrations::{
    self, IntegrationUpdate, IntegrationView, NewIntegrationInput, SyncRequested, SyncSettingsPatch,
};
use crate::store::integrations::IntegrationFilter;
use crate::store::sync_runs::SyncRun;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this plugin's, e.g. `monzo`.
    plugin: Option<String>,
    /// Only this group's.
    group: Option<i64>,
    /// Only those whose name contains this, in any case.
    name: Option<String>,
    /// Only enabled (`true`) or only paused (`false`) ones.
    enabled: Option<bool>,
    /// Integrations per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationsPage {
    /// By id.
    pub integrations: Vec<IntegrationView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<i64>,
}

#[utoipa::path(get, path = "/api/integrations", tag = "integrations", params(ListQuery),
    responses((status = 200, body = IntegrationsPage), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(api): State<ApiState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> ApiResult<Json<IntegrationsPage>> {
    let limit = super::page_limit(query.limit, 100, 500)?;
    let filter = IntegrationFilter {
        plugin_id: query.plugin,
        group_id: query.group,
        name_contains: super::search_text(query.name),
        enabled: query.enabled,
        // integrations::list leaves the host's tasks out.
        ..IntegrationFilter::default()
    };
    let mut integrations = integrations::list(&api.host, filter, query.cursor, limit + 1).await?;
    let next_cursor = crate::store::next_page(&mut integrations, limit + 1).map(|last| last.id);
    let integrations = integrations.into_iter().map(|i| IntegrationView::of(&api.host, i)).collect();
    Ok(Json(IntegrationsPage { integrations, next_cursor }))
}

#[utoipa::path(post, path = "/api/integrations", tag = "integrations", request_body = NewIntegrationInput,
    responses((status = 201, body = IntegrationView), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(api): State<ApiState>,
    JsonBody(input): JsonBody<NewIntegrationInput>,
) -> ApiResult<(StatusCode, Json<IntegrationView>)> {
    let integration = integrations::create(&api.host, input).await?;
    Ok((StatusCode::CREATED, Json(IntegrationView::of(&api.host, integration))))
}

#[utoipa::path(get, path = "/api/integrations/{id}", tag = "integrations", params(("id" = i64, Path)),
    responses((status = 200, body = IntegrationView), (status = 404, body = ErrorBody)))]
pub async fn get(State(api): State<ApiState>, Id(id): Id) -> ApiResult<Json<IntegrationView>> {
    Ok(Json(IntegrationView::of(&api.host, integrations::get(&api.host, id).await?)))
}

#[utoipa::path(put, path = "/api/integrations/{id}", tag = "integrations", params(("id" = i64, Path)),
    request_body = IntegrationUpdate,
    responses((status = 200, body = IntegrationView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replace(
    State(api): State<ApiState>,
    Id(id): Id,
    JsonBody(input): JsonBody<IntegrationUpdate>,
) -> ApiResult<Json<IntegrationView>> {
    Ok(Json(IntegrationView::of(&api.host, integrations::update(&api.host, id, input).await?)))
}

#[utoipa::path(delete, path = "/api/integrations/{id}", tag = "integrations", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody),
        (status = 409, description = "One of the host's own tasks (`host-task`)", body = ErrorBody)))]
pub async fn delete(State(api): State<ApiState>, Id(id): Id) -> ApiResult<StatusCode> {
    integrations::delete(&api.host, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(patch, path = "/api/integrations/{id}/sync-settings", tag = "integrations", params(("id" = i64, Path)),
    request_body = SyncSettingsPatch,
    responses((status = 200, body = IntegrationView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn sync_settings(
    State(api): State<ApiState>,
    Id(id): Id,
    JsonBody(patch): JsonBody<SyncSettingsPatch>,
) -> ApiResult<Json<IntegrationView>> {
    Ok(Json(IntegrationView::of(&api.host, integrations::set_sync_settings(&api.host, id, patch).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SyncQuery {
    /// Run even when paused, and however recently a run was asked for.
    #[serde(default)]
    force: bool,
}

#[utoipa::path(post, path = "/api/integrations/{id}/sync", tag = "integrations", params(("id" = i64, Path), SyncQuery),
    responses((status = 202, body = SyncRequested), (status = 404, body = ErrorBody),
        (status = 409, description = "Paused; pass force=true", body = ErrorBody),
        (status = 429, description = "Asked again too soon; see Retry-After", body = ErrorBody)))]
pub async fn sync(
    State(api): State<ApiState>,
    Id(id): Id,
    QueryParams(query): QueryParams<SyncQuery>,
) -> ApiResult<(StatusCode, Json<SyncRequested>)> {
    Ok((StatusCode::ACCEPTED, Json(integrations::request_sync(&api.host, id, query.force).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReprocessQuery {
    /// Only batches stored at or after this time (epoch ms); all kept ones by default.
    since: Option<i64>,
}

#[utoipa::path(post, path = "/api/integrations/{id}/reprocess", tag = "integrations",
    params(("id" = i64, Path), ReprocessQuery),
    responses((status = 202, description = "A run of trigger `reprocess` is queued: the current plugin processes the kept batches again, without fetching", body = SyncRequested),
        (status = 404, body = ErrorBody),
        (status = 409, description = "A host task: it stores no data", body = ErrorBody)))]
pub async fn reprocess(
    State(api): State<ApiState>,
    Id(id): Id,
    QueryParams(query): QueryParams<ReprocessQuery>,
) -> ApiResult<(StatusCode, Json<SyncRequested>)> {
    Ok((StatusCode::ACCEPTED, Json(integrations::request_reprocess(&api.host, id, query.since).await?)))
}

#[utoipa::path(post, path = "/api/integrations/{id}/pause", tag = "integrations", params(("id" = i64, Path)),
    responses((status = 200, body = IntegrationView), (status = 404, body = ErrorBody)))]
pub async fn pause(State(api): State<ApiState>, Id(id): Id) -> ApiResult<Json<IntegrationView>> {
    Ok(Json(IntegrationView::of(&api.host, integrations::pause(&api.host, id).await?)))
}

#[utoipa::path(post, path = "/api/integrations/{id}/resume", tag = "integrations", params(("id" = i64, Path)),
    responses((status = 200, body = IntegrationView), (status = 404, body = ErrorBody)))]
pub async fn resume(State(api): State<ApiState>, Id(id): Id) -> ApiResult<Json<IntegrationView>> {
    Ok(Json(IntegrationView::of(&api.host, integrations::resume(&api.host, id).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Runs per page, 1 to 200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncHistoryPage {
    /// Newest first.
    pub runs: Vec<SyncRun>,
    /// Pass as `cursor` for older runs; null on the last page.
    pub next_cursor: Option<i64>,
}

#[utoipa::path(get, path = "/api/integrations/{id}/sync-history", tag = "integrations",
    params(("id" = i64, Path), HistoryQuery),
    responses((status = 200, body = SyncHistoryPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn sync_history(
    State(api): State<ApiState>,
    Id(id): Id,
    QueryParams(query): QueryParams<HistoryQuery>,
) -> ApiResult<Json<SyncHistoryPage>> {
    integrations::get(&api.host, id).await?;
    let limit = super::page_limit(query.limit, 20, 200)?;
    let mut runs = api.host.store().sync_runs_page(id, query.cursor, limit + 1).await?;
    let next_cursor = crate::store::next_page(&mut runs, limit + 1).map(|last| last.id);
    Ok(Json(SyncHistoryPage { runs, next_cursor }))
}
