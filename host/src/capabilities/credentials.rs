//! `credentials.get`: a group's raw credential, for plugins whose manifest
//! says they need one and whose operator approved it (`[plugins.<id>]
//! approve_raw_credentials = true`). The fetch scope holds the credentials
//! only then; every other call gets `none`.

use crate::runtime::context::PluginCtx;
use crate::runtime::wit::inlet::plugin::credentials;

impl credentials::Host for PluginCtx {
    async fn get(&mut self, field: String) -> wasmtime::Result<Option<String>> {
        let scope = self.fetch_scope("credentials")?;
        Ok(scope.raw_credentials.as_ref().and_then(|c| c.get(&field)).map(str::to_string))
    }
}
