//! `credentials.get`: a group's raw credential, for plugins whose manifest
//! says they need one and whose operator approved it (`[plugins.<id>]
//! approve_raw_credentials = true`). The fetch scope holds the credentials
//! only then; every other call gets `none`.

use super::CallScope;

/// The fields a plugin may read, as the WIT lists them.
const RAW_FIELDS: [&str; 5] = ["api_key", "access_token", "username", "password", "webhook_secret"];

pub fn get(scope: &mut CallScope, field: String) -> wasmtime::Result<Option<String>> {
    let scope = scope.fetch_scope("credentials")?;
    // Never the refresh token: a plugin spending it would break the
    // single-flight refresh (and lock out providers that rotate it).
    if !RAW_FIELDS.contains(&field.as_str()) {
        return Ok(None);
    }
    Ok(scope.raw_credentials.as_ref().and_then(|c| c.get(&field)).map(str::to_string))
}
