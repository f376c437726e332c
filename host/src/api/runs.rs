//! `/api/runs/{id}/logs`: a run's log lines, written while it runs, so a
//! client follows a run in flight by asking again with `after`.

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Id, QueryParams};
use crate::store::sync_runs::{RunLogLine, SyncRun};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Lines after this one (`next` of the previous answer); from the first by default.
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Lines per answer, 1 to 1000 (default 500).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunLogPage {
    /// The run as it is now: while its status is `pending` or `running`,
    /// more lines may come.
    pub run: SyncRun,
    pub lines: Vec<RunLogLine>,
    /// Pass as `after` for the lines that follow.
    pub next: i64,
}

#[utoipa::path(get, path = "/api/runs/{id}/logs", tag = "integrations", params(("id" = i64, Path), LogQuery),
    responses((status = 200, body = RunLogPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn logs(
    State(api): State<ApiState>,
    Id(id): Id,
    QueryParams(query): QueryParams<LogQuery>,
) -> ApiResult<Json<RunLogPage>> {
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::invalid("after", format!("must be 0 or more, got {after}")));
    }
    let limit = super::page_limit(query.limit, 500, 1000)?;
    let store = api.host.store();
    // The run first: lines written after it was read are read too, so a
    // finished run's answer holds all of its lines.
    let run = store.sync_run(id).await?.ok_or_else(|| ApiError::not_found(format!("there is no run with id {id}")))?;
    let lines = store.sync_run_log_page(id, after, limit).await?;
    let next = lines.last().map_or(after, |line| line.seq);
    Ok(Json(RunLogPage { run, lines, next }))
}
