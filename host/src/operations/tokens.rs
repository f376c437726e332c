//! Admin API tokens: make, list and revoke them. A token is shown once, when
//! it is made; only its digest is stored.

use super::{OperationError, OperationResult};
use crate::Host;
use crate::auth::oauth::random_token;
use crate::store::Store;
use crate::store::api_tokens::ApiToken;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenInput {
    /// What it is for, e.g. "backup script" (1 to 100 characters).
    pub name: String,
}

/// A token just made: `token` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewToken {
    pub id: i64,
    pub name: String,
    pub token: String,
}

pub async fn create(host: &Host, input: NewTokenInput) -> OperationResult<NewToken> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        let got = name.chars().count();
        return Err(OperationError::invalid("name", format!("must be 1 to {MAX_NAME_CHARS} characters, got {got}")));
    }
    let (id, token) = mint(host.store(), name).await?;
    Ok(NewToken { id, name: name.to_string(), token })
}

/// Make a token named `name` and store its digest; returns its id and the
/// token, which is seen this once.
pub async fn mint(store: &Store, name: &str) -> anyhow::Result<(i64, String)> {
    let token = format!("inlet_{}", random_token());
    let id = store.insert_api_token(name, &digest(&token)).await?;
    Ok((id, token))
}

/// What is stored of a token, and what a presented one is compared by.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub async fn list(host: &Host) -> OperationResult<Vec<ApiToken>> {
    Ok(host.store().api_tokens().await?)
}

/// Revoke token `id`. Unless there is another way in (`INLET_ADMIN_TOKEN`,
/// or the CLI on this machine), the last stored token is kept: revoking it
/// would lock every client out of the API.
pub async fn revoke(host: &Host, id: i64, another_way_in: bool) -> OperationResult<()> {
    // The delete checks for the last token itself; only a refusal is explained.
    if host.store().delete_api_token(id, !another_way_in).await? {
        return Ok(());
    }
    if !host.store().api_tokens().await?.iter().any(|t| t.id == id) {
        return Err(OperationError::not_found("admin token", id));
    }
    Err(OperationError::Conflict {
        code: "last-token",
        message: format!(
            "token {id} is the only admin token: revoking it would lock every client out of the API. Create \
             another first (POST /api/tokens), or revoke it with `inlet tokens revoke {id}` on the host"
        ),
    })
}
