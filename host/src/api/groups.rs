//! `/api/groups`: connected accounts. Credentials go in, never come out.

use super::ApiState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Id, JsonBody, QueryParams};
use crate::auth::bank_connect::{BankConnectInput, BankLink};
use crate::operations::groups::{self, GroupView, NewGroupInput};
use crate::store::groups::ApprovedPlugin;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::IntoParams;

#[utoipa::path(get, path = "/api/groups", tag = "groups", responses((status = 200, body = Vec<GroupView>)))]
pub async fn list(State(api): State<ApiState>) -> ApiResult<Json<Vec<GroupView>>> {
    let store = api.host.store();
    let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
    for integration in store.integrations().await? {
        *counts.entry(integration.group_id).or_default() += 1;
    }
    let groups = groups::list(&api.host).await?;
    Ok(Json(
        groups
            .into_iter()
            .map(|g| {
                let count = counts.get(&g.id).copied().unwrap_or(0);
                GroupView::of(&api.host, g, count)
            })
            .collect(),
    ))
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
}

#[utoipa::path(delete, path = "/api/groups/{id}", tag = "groups", params(("id" = i64, Path), DeleteQuery),
    responses((status = 204), (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "The group has integrations and confirm=true was not given", body = super::error::ErrorBody)))]
pub async fn delete(
    State(api): State<ApiState>,
    Id(id): Id,
    QueryParams(query): QueryParams<DeleteQuery>,
) -> ApiResult<StatusCode> {
    groups::delete(&api.host, id, query.confirm).await?;
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
