//! `/api/tokens`: the admin API's tokens. A new one is shown once; the list
//! shows names and last use, never a token.

use super::ApiState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Id, JsonBody};
use crate::operations::tokens::{self, NewToken, NewTokenInput};
use crate::store::api_tokens::ApiToken;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    /// The stored tokens, oldest first.
    pub tokens: Vec<ApiToken>,
    /// Whether `INLET_ADMIN_TOKEN` is also accepted: it is not stored, so
    /// not listed; unset it to revoke it.
    pub configured_token: bool,
}

#[utoipa::path(get, path = "/api/tokens", tag = "tokens", responses((status = 200, body = TokenList)))]
pub async fn list(State(api): State<ApiState>) -> ApiResult<Json<TokenList>> {
    let tokens = tokens::list(&api.host).await?;
    Ok(Json(TokenList { tokens, configured_token: api.tokens.has_configured() }))
}

#[utoipa::path(post, path = "/api/tokens", tag = "tokens", request_body = NewTokenInput,
    responses((status = 201, description = "The token, shown this once", body = NewToken), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(api): State<ApiState>,
    JsonBody(input): JsonBody<NewTokenInput>,
) -> ApiResult<(StatusCode, Json<NewToken>)> {
    Ok((StatusCode::CREATED, Json(tokens::create(&api.host, input).await?)))
}

#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "tokens", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody),
        (status = 409, description = "It is the only way into the API", body = ErrorBody)))]
pub async fn revoke(State(api): State<ApiState>, Id(id): Id) -> ApiResult<StatusCode> {
    tokens::revoke(&api.host, id, api.tokens.has_configured()).await?;
    Ok(StatusCode::NO_CONTENT)
}
