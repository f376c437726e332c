//! `GET /oauth/<plugin>/start?ticket=...` (a start link an operator made)
//! shows whom it connects, and its button (`POST` of the same path) sends the
//! browser to the provider; `GET /oauth/<plugin>/callback` is where the
//! provider sends it back. `POST /api/oauth/<plugin>/links` makes the link.

use super::extract::FormBody;
use super::{ApiState, page};
use crate::auth::connect::{ConnectError, browser_binding};
use axum::extract::{Path, Query, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct StartQuery {
    /// The start link's sealed ticket: plugin, group name, expiry.
    ticket: Option<String>,
}

/// The cookie that ties a flow to the browser that started it, so a callback
/// replayed into someone else's browser (login CSRF) is refused.
const BROWSER_COOKIE: &str = "inlet_oauth";

/// A start link's page: which account it connects, and a button that goes
/// on to the provider. Opening the link uses nothing up: link previews and
/// mail scanners open links before the person they were sent to does, and a
/// start link works once.
pub async fn start(
    State(api): State<ApiState>,
    Path(plugin): Path<String>,
    Query(query): Query<StartQuery>,
) -> Response {
    let Some(ticket) = query.ticket else {
        let message = format!(
            "Connecting needs a start link from an operator: `inlet groups connect {plugin} --name <group>`, or \
             POST /api/oauth/{plugin}/links."
        );
        return (StatusCode::FORBIDDEN, page("Not connected", &message)).into_response();
    };
    let group = match api.host.runner.oauth.check_start_link(&plugin, &ticket).await {
        Ok(group) => group,
        Err(error) => return failure(&plugin, error),
    };
    let title = format!("Connect {plugin}");
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>{title} · inlet</title><h1>{title}</h1>\
         <p>This connects inlet to your {plugin} account as the group &quot;{group}&quot;: {plugin} asks you to \
         approve access next.</p>\
         <form method=post><input type=hidden name=ticket value=\"{ticket}\"><button type=submit>Continue to \
         {plugin}</button></form>",
        title = super::escape_html(&title),
        plugin = super::escape_html(&plugin),
        group = super::escape_html(&group),
        ticket = super::escape_html(&ticket),
    ))
    .into_response()
}

#[derive(Deserialize)]
pub struct StartForm {
    ticket: String,
}

/// The start page's button: use the link up and send the browser to the
/// provider, binding the flow to this browser.
pub async fn go_to_provider(
    State(api): State<ApiState>,
    Path(plugin): Path<String>,
    FormBody(form): FormBody<StartForm>,
) -> Response {
    let redirect_uri = api.url(&format!("/oauth/{plugin}/callback"));
    let oauth = &api.host.runner.oauth;
    let group = match oauth.redeem_start_link(&plugin, &form.ticket).await {
        Ok(group) => group,
        Err(error) => return failure(&plugin, error),
    };
    match oauth.begin(&plugin, &group, &redirect_uri).await {
        Ok((url, binding)) => {
            let secure = if api.public_url.scheme() == "https" { "; Secure" } else { "" };
            // Lax: sent on the provider's top-level redirect back to the callback.
            let cookie = format!(
                "{BROWSER_COOKIE}={binding}; Path=/oauth/{plugin}/callback; Max-Age=600; HttpOnly; SameSite=Lax{secure}"
            );
            ([(SET_COOKIE, cookie)], Redirect::to(url.as_str())).into_response()
        }
        Err(error) => failure(&plugin, error),
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    /// Set by the provider when the person declined or the request was bad.
    error: Option<String>,
    error_description: Option<String>,
}

pub async fn callback(
    State(api): State<ApiState>,
    Path(plugin): Path<String>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(error) = query.error {
        let detail = query.error_description.map(|d| format!(" ({d})")).unwrap_or_default();
        let message = format!("The provider did not grant access: {error}{detail}. Start connecting again to retry.");
        return (StatusCode::BAD_REQUEST, page("Not connected", &message)).into_response();
    }
    let (Some(code), Some(state)) = (query.code, query.state) else {
        let message = "The callback needs the code and state query parameters that the provider adds.";
        return (StatusCode::BAD_REQUEST, page("Not connected", message)).into_response();
    };
    if cookie(&headers, BROWSER_COOKIE) != Some(browser_binding(&state)) {
        let message = "This authorization was started in another browser (or its cookie expired); start connecting \
                       again from this browser.";
        return (StatusCode::BAD_REQUEST, page("Not connected", message)).into_response();
    }
    match api.host.runner.oauth.finish(&plugin, &code, &state).await {
        Ok(connected) => {
            api.host.wake(crate::domain::queue::Queue::Fetch);
            let message = format!(
                "{} is connected as group \"{}\" (id {}). You can close this tab.",
                connected.plugin_id, connected.group_name, connected.group_id
            );
            page("Connected", &message).into_response()
        }
        Err(error) => failure(&plugin, error),
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('=').map(str::to_string))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartLinkInput {
    /// The group to connect (or reconnect), by name.
    pub group: String,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct StartLink {
    /// Open this in the browser that will approve access at the provider.
    pub url: String,
    pub expires_at: i64,
}

#[utoipa::path(post, path = "/api/oauth/{plugin}/links", tag = "groups", params(("plugin" = String, Path)),
    request_body = StartLinkInput,
    responses((status = 201, body = StartLink), (status = 422, body = super::error::ErrorBody)))]
pub async fn start_link(
    State(api): State<ApiState>,
    Path(plugin): Path<String>,
    super::extract::JsonBody(input): super::extract::JsonBody<StartLinkInput>,
) -> Result<(StatusCode, axum::Json<StartLink>), super::error::ApiError> {
    match api.host.runner.oauth.start_link(&plugin, &input.group, &api.url("")) {
        Ok((url, expires_at)) => Ok((StatusCode::CREATED, axum::Json(StartLink { url, expires_at }))),
        Err(error) => Err(refused(error, "plugin")),
    }
}

/// A connect flow's error for the API: a refusal names its field (the
/// message's `field: ` prefix, else `field`), a failure is the host's.
pub(super) fn refused(error: ConnectError, field: &str) -> super::error::ApiError {
    match error {
        ConnectError::Refused(message) => match message.split_once(": ") {
            Some((named, message)) if !named.contains(' ') => super::error::ApiError::invalid(named, message),
            _ => super::error::ApiError::invalid(field, message),
        },
        ConnectError::Failed(message) => anyhow::anyhow!(message).into(),
    }
}

#[derive(Debug, Deserialize)]
pub struct BankCallbackQuery {
    /// The requisition's reference, which the bank adds.
    #[serde(rename = "ref")]
    reference: Option<String>,
}

/// Where the bank sends the account holder back after they consented.
pub async fn bank_callback(
    State(api): State<ApiState>,
    Path(group): Path<i64>,
    Query(query): Query<BankCallbackQuery>,
) -> Response {
    let Some(reference) = query.reference else {
        let message = "The callback needs the ref query parameter that the bank adds.";
        return (StatusCode::BAD_REQUEST, page("Not connected", message)).into_response();
    };
    match api.host.runner.oauth.finish_bank_connect(group, &reference).await {
        Ok(connected) => {
            api.host.wake(crate::domain::queue::Queue::Fetch);
            let message = format!(
                "The bank is connected to group \"{}\" (id {}) with {} account(s). You can close this tab.",
                connected.group.name,
                connected.group.id,
                connected.accounts.len()
            );
            page("Connected", &message).into_response()
        }
        Err(error) => failure("the bank", error),
    }
}

fn failure(plugin: &str, error: ConnectError) -> Response {
    let status = match error {
        ConnectError::Refused(_) => StatusCode::BAD_REQUEST,
        ConnectError::Failed(_) => StatusCode::BAD_GATEWAY,
    };
    tracing::warn!(plugin, error = %error, "connecting a group failed");
    (status, page(&format!("Cannot connect {plugin}"), &error.to_string())).into_response()
}
