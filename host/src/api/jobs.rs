//! `/api/jobs`: the failed list; retry one, retry all, flush. `/api/batches`:
//! stored batches that failed to process; retry one, retry all.

use super::ApiState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Id, QueryParams};
use crate::domain::queue::Queue;
use crate::operations::batches::{self, BatchesRetried};
use crate::store::jobs::Job;
use crate::store::raw_batches::FailedBatch;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FailedQuery {
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Affected {
    /// How many jobs the request changed.
    pub count: u64,
}

/// A failed job, with the name of its integration for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedJob {
    #[serde(flatten)]
    pub job: Job,
    /// `None` once the integration is deleted (its jobs go with it).
    pub integration_name: Option<String>,
}

#[utoipa::path(get, path = "/api/jobs/failed", tag = "jobs", params(FailedQuery),
    responses((status = 200, body = Vec<FailedJob>), (status = 422, body = ErrorBody)))]
pub async fn failed(
    State(api): State<ApiState>,
    QueryParams(query): QueryParams<FailedQuery>,
) -> ApiResult<Json<Vec<FailedJob>>> {
    let limit = super::page_limit(query.limit, 50, 500)?;
    let store = api.host.store();
    let jobs = store.failed_jobs(limit).await?;
    let ids: Vec<i64> = jobs.iter().filter_map(|j| j.integration_id).collect();
    let names: BTreeMap<i64, String> =
        store.integrations_by_id(&ids).await?.into_iter().map(|i| (i.id, i.name)).collect();
    let failed = jobs
        .into_iter()
        .map(|job| FailedJob { integration_name: job.integration_id.and_then(|id| names.get(&id).cloned()), job })
        .collect();
    Ok(Json(failed))
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

#[utoipa::path(get, path = "/api/batches/failed", tag = "jobs", params(FailedQuery),
    responses((status = 200, body = Vec<FailedBatch>), (status = 422, body = ErrorBody)))]
pub async fn failed_batches(
    State(api): State<ApiState>,
    QueryParams(query): QueryParams<FailedQuery>,
) -> ApiResult<Json<Vec<FailedBatch>>> {
    let limit = super::page_limit(query.limit, 50, 500)?;
    Ok(Json(api.host.store().failed_batches(limit).await?))
}

#[utoipa::path(post, path = "/api/batches/{id}/retry", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, body = BatchesRetried), (status = 404, description = "Not a failed batch", body = ErrorBody)))]
pub async fn retry_batch(State(api): State<ApiState>, Id(id): Id) -> ApiResult<Json<BatchesRetried>> {
    Ok(Json(batches::retry_failed(&api.host, Some(id)).await?))
}

#[utoipa::path(post, path = "/api/batches/failed/retry", tag = "jobs", responses((status = 200, body = BatchesRetried)))]
pub async fn retry_all_batches(State(api): State<ApiState>) -> ApiResult<Json<BatchesRetried>> {
    Ok(Json(batches::retry_failed(&api.host, None).await?))
}

fn wake_all(api: &ApiState) {
    for queue in Queue::ALL {
        api.host.wake(queue);
    }
}
