//! `POST /api/schedules/preview`: what a schedule would do, before saving it.

use super::ApiState;
use super::error::{ApiResult, ErrorBody};
use super::extract::JsonBody;
use crate::operations::integrations::{self, ScheduleInput, SchedulePreview};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewInput {
    pub schedule: ScheduleInput,
    /// How many runs to show, 1 to 20 (default 5).
    #[schema(minimum = 1, maximum = 20)]
    pub count: Option<u8>,
}

#[utoipa::path(post, path = "/api/schedules/preview", tag = "integrations", request_body = PreviewInput,
    responses((status = 200, body = SchedulePreview), (status = 422, body = ErrorBody)))]
pub async fn preview(
    State(api): State<ApiState>,
    JsonBody(input): JsonBody<PreviewInput>,
) -> ApiResult<Json<SchedulePreview>> {
    let count = match input.count.unwrap_or(5) {
        count @ 1..=20 => count,
        count => return Err(super::error::ApiError::invalid("count", format!("must be 1 to 20, got {count}"))),
    };
    let now = api.host.store().now();
    Ok(Json(integrations::preview_schedule(input.schedule, usize::from(count), now)?))
}
