//! `/api/groups`: connected accounts. Credentials go in, never come out.

use super::ApiState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Id, JsonBody, QueryParams};
use crate::auth::bank_connect::{BankConnectInput, BankLink};
use crate::domain::group_status::GroupStatus;
use crate::operations::OperationError;
use crate::operations::groups::{self, GroupView, NewGroupInput};
use crate::store::groups::{ApprovedPlugin, ConfirmedIntegrations, GroupFilter};
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
    /// Only those whose name contains this, in any case.
    name: Option<String>,
    /// `ok` or `needs-reconnect`.
    #[param(inline)]
    status: Option<GroupStatus>,
    /// Groups per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupsPage {
    /// By id.
    pub groups: Vec<GroupView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<i64>,
}

#[utoipa::path(get, path = "/api/groups", tag = "groups", params(ListQuery),
    responses((status = 200, body = GroupsPage), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(api): State<ApiState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> ApiResult<Json<GroupsPage>> {
    let limit = super::page_limit(query.limit, 100, 500)?;
    let filter = GroupFilter {
        plugin_id: query.plugin,
        name_contains: super::search_text(query.name),
        status: query.status,
        // groups::list leaves the host's own group out.
        ..GroupFilter::default()
    };
    let mut groups = groups::list(&api.host, filter, query.cursor, limit + 1).await?;
    let next_cursor = crate::store::next_page(&mut groups, limit + 1).map(|last| last.id);
    let ids: Vec<i64> = groups.iter().map(|g| g.id).collect();
    let counts = api.host.store().integration_counts(&ids).await?;
    let groups = groups
        .into_iter()
        .map(|g| {
            let count = counts.get(&g.id).copied().unwrap_or(0);
            GroupView::of(&api.host, g, count)
        })
        .collect();
    Ok(Json(GroupsPage { groups, next_cursor }))
}

#[utoipa::path(post, path = "/api/groups", tag = "groups", request_body = NewGroupInput,
    responses((status = 201, body = GroupView), (status = 409, body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody)))]
pub async fn create(
    State(api): State<ApiState>,
    JsonBody(input): JsonBody<NewGroupInput>,
) -> ApiResult<(StatusCode, Json<GroupView>)> {
    let group = groups::create(&api.host, input).await?;
    Ok((StatusCode::CREATED, Json(GroupView::of(&api.host, group, 0))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// Required when the group has integrations: they are deleted with it.
    #[serde(default)]
    confirm: bool,
    /// With `confirm=true`: how many integrations the caller was shown. If
    /// the group has another number now, nothing is deleted (409
    /// `confirmation-stale`).
    integrations: Option<i64>,
}

#[utoipa::path(delete, path = "/api/groups/{id}", tag = "groups", params(("id" = i64, Path), DeleteQuery),
    responses((status = 204), (status = 404, body = super::error::ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 409, description = "The group has integrations and confirm=true was not given, or not as many as `integrations` says, or it holds the host's own tasks", body = super::error::ErrorBody)))]
pub async fn delete(
    State(api): State<ApiState>,
    Id(id): Id,
    QueryParams(query): QueryParams<DeleteQuery>,
) -> ApiResult<StatusCode> {
    let confirmed = match (query.confirm, query.integrations) {
        (false, None) => ConfirmedIntegrations::None,
        (true, None) => ConfirmedIntegrations::All,
        (true, Some(count)) if count >= 0 => ConfirmedIntegrations::Count(count),
        (true, Some(_)) => return Err(OperationError::invalid("integrations", "must be 0 or more").into()),
        (false, Some(_)) => {
            return Err(OperationError::invalid("integrations", "counts only with confirm=true").into());
        }
    };
    groups::delete(&api.host, id, confirmed).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/groups/{id}/approve", tag = "groups", params(("id" = i64, Path)),
    responses((status = 200, description = "The plugin file and hosts now approved for the group", body = ApprovedPlugin),
        (status = 404, body = ErrorBody), (status = 409, description = "The plugin is not loaded", body = ErrorBody)))]
pub async fn approve(State(api): State<ApiState>, Id(id): Id) -> ApiResult<Json<ApprovedPlugin>> {
    Ok(Json(groups::approve(&api.host, id).await?))
}

#[utoipa::path(post, path = "/api/groups/{id}/bank-connections", tag = "groups", params(("id" = i64, Path)),
    request_body = BankConnectInput,
    responses((status = 201, description = "The link the account holder opens to consent at their bank", body = BankLink),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn connect_bank(
    State(api): State<ApiState>,
    Id(id): Id,
    JsonBody(input): JsonBody<BankConnectInput>,
) -> ApiResult<(StatusCode, Json<BankLink>)> {
    let link = api.host.runner.oauth.start_bank_connect(id, &input, &api.url("")).await;
    Ok((StatusCode::CREATED, Json(link.map_err(|e| super::oauth::refused(e, "group"))?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InstitutionsQuery {
    /// Two letters (ISO 3166), e.g. `gb`.
    #[param(pattern = "^[A-Za-z]{2}$")]
    country: String,
}

#[utoipa::path(get, path = "/api/groups/{id}/institutions", tag = "groups", params(("id" = i64, Path), InstitutionsQuery),
    responses((status = 200, description = "GoCardless's institutions: id, name, bic, transaction_total_days, countries", body = Object),
        (status = 422, body = ErrorBody)))]
pub async fn institutions(
    State(api): State<ApiState>,
    Id(id): Id,
    QueryParams(query): QueryParams<InstitutionsQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let institutions = api.host.runner.oauth.institutions(id, &query.country).await;
    Ok(Json(institutions.map_err(|e| super::oauth::refused(e, "group"))?))
}
