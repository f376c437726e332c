//! `GET /api/console`: what needs the operator, in counts (the console's
//! menu; the Updates stream sends it too, as `console` events).

use super::ApiState;
use super::error::ApiResult;
use crate::operations::console::{self, ConsoleSummary};
use axum::Json;
use axum::extract::State;

#[utoipa::path(get, path = "/api/console", tag = "updates", responses((status = 200, body = ConsoleSummary)))]
pub async fn summary(State(api): State<ApiState>) -> ApiResult<Json<ConsoleSummary>> {
    Ok(Json(console::summary(&api.host).await?))
}
