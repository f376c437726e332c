//! Conditional requests: ask again only for what changed. The `ETag` of the
//! last answer is kept in the integration's state and sent back as
//! `If-None-Match`; a `304 Not Modified` means nothing new.
//!
//! ```no_run
//! use inlet_plugin_sdk::prelude::*;
//!
//! # fn main() -> Result<(), PluginError> {
//! let request = http::get("https://api.example.com/profile").authenticated();
//! match conditional::get_json_if_changed::<serde_json::Value>(request, "profile.etag")? {
//!     Some(profile) => emit_json("profile", &profile)?,
//!     None => log::info("profile unchanged"),
//! }
//! # Ok(())
//! # }
//! ```

use crate::PluginError;
use crate::http::Request;
use crate::state;
use serde::de::DeserializeOwned;

/// Send `request` with the ETag kept under `state_key`. `None` when the
/// upstream answers 304; otherwise the decoded body, and the new ETag is
/// kept: durable with the next checkpoint, together with what the plugin
/// has emitted by then. So emit everything the body leads to before the
/// next `checkpoint()`: an ETag made durable before the rest is emitted
/// would answer the next run 304, and what a crash left unread would never
/// be read.
pub fn get_json_if_changed<T: DeserializeOwned>(request: Request, state_key: &str) -> Result<Option<T>, PluginError> {
    let request = match state::get(state_key) {
        Some(etag) => request.header("if-none-match", etag),
        None => request,
    };
    let url = request.url();
    let response = request.send()?;
    if response.status == 304 {
        return Ok(None);
    }
    crate::http::check_status(&url, &response)?;
    let body = serde_json::from_slice(&response.body)?;
    match response.headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("etag")) {
        Some((_, etag)) => state::set(state_key, etag),
        None => state::delete(state_key),
    }
    Ok(Some(body))
}
