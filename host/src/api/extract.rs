//! Extractors that answer bad input with an [`ApiError`] naming the field:
//! JSON and form bodies, query strings and `{id}` path segments. A body
//! must arrive within [`BODY_READ_TIMEOUT`] of its headers.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// How long a request's body may take to arrive once its headers have: a
/// client that sends it slowly, or never, holds a connection (and for a
/// webhook one of the few delivery slots) meanwhile.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// 408: the body did not arrive within [`BODY_READ_TIMEOUT`].
pub fn body_timed_out() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body-timeout",
        format!("the request's body did not arrive within {}s", BODY_READ_TIMEOUT.as_secs()),
    )
}

/// The body, within the route's size limit and [`BODY_READ_TIMEOUT`], if
/// its content type is `content_type` (415 if not, saying `send_as`).
async fn body_of_type<S: Send + Sync>(
    request: Request,
    state: &S,
    content_type: &str,
    send_as: &str,
) -> Result<Bytes, ApiError> {
    let typed = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(content_type));
    if !typed {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!("send the body {send_as} with Content-Type: {content_type}"),
        ));
    }
    match tokio::time::timeout(BODY_READ_TIMEOUT, Bytes::from_request(request, state)).await {
        Ok(read) => read.map_err(|e| ApiError::new(e.status(), "bad-body", e.body_text())),
        Err(_) => Err(body_timed_out()),
    }
}

/// A JSON request body. Not JSON: 400 `bad-json`; JSON of the wrong shape:
/// 422 `invalid` naming the field (`schedule.kind`, ...).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_of_type(request, state, "application/json", "as JSON").await?;
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(&mut deserializer) {
            Ok(value) => Ok(JsonBody(value)),
            Err(error) => {
                let path = error.path().to_string();
                let inner = error.into_inner();
                if inner.is_syntax() || inner.is_eof() {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad-json",
                        format!("the body is not JSON: {inner}"),
                    ));
                }
                let field = if path == "." { "body".to_string() } else { path };
                Err(ApiError::invalid(field, inner.to_string()))
            }
        }
    }
}

/// A form's body (`application/x-www-form-urlencoded`); a bad field is 422
/// `invalid` naming it.
pub struct FormBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for FormBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_of_type(request, state, "application/x-www-form-urlencoded", "as a form").await?;
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(&bytes));
        serde_path_to_error::deserialize(deserializer).map(FormBody).map_err(|error| {
            let path = error.path().to_string();
            let field = if path == "." { "form".to_string() } else { path };
            ApiError::invalid(field, error.into_inner().to_string())
        })
    }
}

/// Query-string parameters; a bad one is 422 `invalid` naming it.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(QueryParams).map_err(|error| {
            let path = error.path().to_string();
            let field = if path == "." { "query".to_string() } else { path };
            ApiError::invalid(field, error.into_inner().to_string())
        })
    }
}

/// The `{id}` of a resource path. Ids are integers; anything else names no resource: 404.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad-path", e.body_text()))?;
        raw.parse().map(Id).map_err(|_| ApiError::not_found(format!("{raw:?} is not an id (ids are integers)")))
    }
}
