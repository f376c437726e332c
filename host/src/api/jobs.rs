//! `/api/jobs`: the failed list; retry one, retry all, flush.

use super::ApiState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Id, QueryParams};
use crate::store::jobs::{Job, Queue};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FailedQuery {
    /// 1 to 500 (default 50).
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Affected {
    /// How many jobs the request changed.
    pub count: u64,
}

#[utoipa::path(get, path = "/api/jobs/failed", tag = "jobs", params(FailedQuery),
    responses((status = 200, body = Vec<Job>), (status = 422, body = ErrorBody)))]
pub async fn failed(
    State(api): State<ApiState>,
    QueryParams(query): QueryParams<FailedQuery>,
) -> ApiResult<Json<Vec<Job>>> {
    let limit = super::page_limit(query.limit, 50, 500)?;
    Ok(Json(api.host.store().failed_jobs(limit).await?))
}

#[utoipa::path(post, path = "/api/jobs/{id}/retry", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, body = Affected), (status = 404, description = "Not in the failed list", body = ErrorBody)))]
pub async fn retry(State(api): State<ApiState>, Id(id): Id) -> ApiResult<Json<Affected>> {
    let count = api.host.store().retry_failed_jobs(Some(id)).await?;
    if count == 0 {
        return Err(super::error::ApiError::not_found(format!("job {id} is not in the failed list")));
    }
    wake_all(&api);
    Ok(Json(Affected { count }))
}

#[utoipa::path(post, path = "/api/jobs/failed/retry", tag = "jobs", responses((status = 200, body = Affected)))]
pub async fn retry_all(State(api): State<ApiState>) -> ApiResult<Json<Affected>> {
    let count = api.host.store().retry_failed_jobs(None).await?;
    wake_all(&api);
    Ok(Json(Affected { count }))
}

#[utoipa::path(delete, path = "/api/jobs/failed", tag = "jobs", responses((status = 200, body = Affected)))]
pub async fn flush(State(api): State<ApiState>) -> ApiResult<Json<Affected>> {
    Ok(Json(Affected { count: api.host.store().flush_failed_jobs().await? }))
}

fn wake_all(api: &ApiState) {
    for queue in Queue::ALL {
        api.host.wake(queue);
    }
}
